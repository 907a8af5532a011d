package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrLocked is returned when another process holds a conflicting lock on an
// image file, typically a running `xpboot serve`.
var ErrLocked = errors.New("blockdev: image is in use by another process")

// Raw is a Device backed by a plain file (or block device) holding the disk
// byte for byte.
type Raw struct {
	f        *os.File
	size     int64
	readOnly bool
	regular  bool // a regular file (holes can be punched), not a block device
}

// Lock takes an advisory lock on f: exclusive for writers, shared for readers,
// without waiting. Every xpboot command that opens an image goes through it,
// so an image served read-write cannot be changed or read half-written by
// another xpboot process.
func Lock(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%s: %w", f.Name(), ErrLocked)
		}
		return fmt.Errorf("%s: lock: %w", f.Name(), err)
	}
	return nil
}

// OpenFile opens an image file (a raw image, a VMDK extent, a VHD) for
// reading, or for reading and writing.
func OpenFile(path string, writable bool) (*os.File, error) {
	if writable {
		return os.OpenFile(path, os.O_RDWR, 0)
	}
	return os.Open(path)
}

// OpenRaw opens a raw image. A writable open takes an exclusive lock, a
// read-only open a shared one.
func OpenRaw(path string, writable bool) (*Raw, error) {
	f, err := OpenFile(path, writable)
	if err != nil {
		return nil, err
	}
	r, err := NewRaw(f, writable)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// OpenRawUnlocked opens a raw image read-only without taking a lock, so
// that an image another process holds (xpboot serve) can be inspected, as
// qemu-img's -U does; it may read a state the writer is changing.
func OpenRawUnlocked(path string) (*Raw, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewRawUnlocked(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewRawUnlocked wraps a file opened read-only, without a lock. The Raw
// owns f.
func NewRawUnlocked(f *os.File) (*Raw, error) {
	return newRaw(f, false)
}

// NewRaw wraps an open file, taking the lock OpenRaw would. The Raw owns f.
func NewRaw(f *os.File, writable bool) (*Raw, error) {
	if err := Lock(f, writable); err != nil {
		return nil, err
	}
	return newRaw(f, writable)
}

func newRaw(f *os.File, writable bool) (*Raw, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: size: %w", f.Name(), err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return &Raw{f: f, size: size, readOnly: !writable, regular: st.Mode().IsRegular()}, nil
}

// File returns the backing file, for callers that need its name or
// descriptor. Writes must still go through WriteAt.
func (r *Raw) File() *os.File { return r.f }

// Size returns the size of the disk in bytes.
func (r *Raw) Size() int64 { return r.size }

// ReadAt reads from the disk; reads past the end are errors.
func (r *Raw) ReadAt(p []byte, off int64) (int, error) {
	if err := CheckRange("read", off, len(p), r.size); err != nil {
		return 0, err
	}
	return r.f.ReadAt(p, off)
}

// WriteAt writes to the disk; it never extends the file.
func (r *Raw) WriteAt(p []byte, off int64) (int, error) {
	if r.readOnly {
		return 0, ErrReadOnly
	}
	if err := CheckRange("write", off, len(p), r.size); err != nil {
		return 0, err
	}
	return r.f.WriteAt(p, off)
}

// ReadOnly reports whether the image was opened without write access.
func (r *Raw) ReadOnly() bool { return r.readOnly }

// Linux fallocate modes (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE).
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

// Discard punches a hole into a regular file (FALLOC_FL_PUNCH_HOLE with
// FALLOC_FL_KEEP_SIZE), so the range reads as zeros and stores nothing.
// A block device returns ErrNotSupported: BLKDISCARD does not promise that
// the range reads back as zeros, which is what callers rely on. A file
// system without hole punching fails with an error wrapping
// ErrNotSupported when the hole is punched, not in the zero-length probe,
// because only the real call can tell.
func (r *Raw) Discard(off, length int64) error {
	if r.readOnly {
		return ErrReadOnly
	}
	if !r.regular {
		return fmt.Errorf("%s: %w (not a regular file)", r.f.Name(), ErrNotSupported)
	}
	if length < 0 || off < 0 || off > r.size || length > r.size-off {
		return &RangeError{Op: "discard", Off: off, Len: length, Size: r.size}
	}
	if length == 0 {
		return nil
	}
	if err := syscall.Fallocate(int(r.f.Fd()), fallocPunchHole|fallocKeepSize, off, length); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			return fmt.Errorf("%s: punch hole: %w: %w", r.f.Name(), ErrNotSupported, err)
		}
		return fmt.Errorf("%s: punch hole at %d (+%d): %w", r.f.Name(), off, length, err)
	}
	return nil
}

// Flush makes completed writes durable.
func (r *Raw) Flush() error {
	if r.readOnly {
		return nil
	}
	return r.f.Sync()
}

// Close flushes and closes the file, releasing its lock.
func (r *Raw) Close() error {
	ferr := r.Flush()
	cerr := r.f.Close()
	if ferr != nil {
		return ferr
	}
	return cerr
}

// Linux lseek whence values for sparse files (not in package syscall).
const (
	seekData = 3
	seekHole = 4
)

// Extents reports holes of the sparse file as Zero and everything else as
// Data. File systems without SEEK_DATA support report the whole range as Data,
// which is always correct, merely slower to copy.
func (r *Raw) Extents(off, length int64) ([]Extent, error) {
	if err := CheckRange("extents", off, 0, r.size); err != nil {
		return nil, err
	}
	end := off + length
	if end > r.size {
		end = r.size
	}
	var out []Extent
	fd := int(r.f.Fd())
	pos := off
	for pos < end {
		data, err := syscall.Seek(fd, pos, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) { // no data after pos
				out = AppendExtent(out, pos, end, Zero)
				break
			}
			// SEEK_DATA unsupported: everything is data.
			out = AppendExtent(out, pos, end, Data)
			break
		}
		if data > end {
			data = end
		}
		out = AppendExtent(out, pos, data, Zero)
		if data >= end {
			break
		}
		hole, err := syscall.Seek(fd, data, seekHole)
		if err != nil || hole > end {
			hole = end
		}
		out = AppendExtent(out, data, hole, Data)
		pos = hole
	}
	return out, nil
}
