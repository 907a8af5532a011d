package blockdev

import (
	"errors"
	"fmt"
	"io"
)

// SectorSize is the logical sector size of every device xpboot creates or
// serves. Windows XP and its boot path only know 512-byte sectors.
const SectorSize = 512

// ErrReadOnly is returned by WriteAt on a device opened without write access.
var ErrReadOnly = errors.New("blockdev: device is read-only")

// Device is a virtual disk of a fixed size.
//
// ReadAt and WriteAt follow io.ReaderAt and io.WriterAt and may be called
// concurrently on distinct ranges; a range past Size is an error, never a
// silent extension. Flush returns once every write that completed before it is
// on stable storage. Close flushes and releases the backing files.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
	Flush() error
	Close() error
	// Extents describes how [off, off+length) is stored, in ascending,
	// contiguous, non-overlapping extents that together cover the range.
	Extents(off, length int64) ([]Extent, error)
}

// State says how a range of a device is stored.
type State uint8

const (
	// Data is stored in the image; it may still happen to read as zeros.
	Data State = iota
	// Zero is known to read as zeros and occupies no data space (a hole in
	// a sparse file, an unallocated grain or block with no parent).
	Zero
	// Parent is not stored in this image; reads come from a backing image.
	Parent
)

func (s State) String() string {
	switch s {
	case Data:
		return "data"
	case Zero:
		return "zero"
	case Parent:
		return "parent"
	}
	return "unknown"
}

// Extent is a run of bytes that share one State.
type Extent struct {
	Off, Len int64
	State    State
}

// RangeError reports an access outside a device.
type RangeError struct {
	Op       string // "read" or "write"
	Off, Len int64
	Size     int64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("blockdev: %s of %d bytes at offset %d is outside the device (size %d)", e.Op, e.Len, e.Off, e.Size)
}

// CheckRange returns a *RangeError when [off, off+n) does not lie inside a
// device of the given size. Backends call it first in ReadAt and WriteAt.
func CheckRange(op string, off int64, n int, size int64) error {
	if off < 0 || int64(n) > size || off > size-int64(n) {
		return &RangeError{Op: op, Off: off, Len: int64(n), Size: size}
	}
	return nil
}

// Section returns a reader over [off, off+n) of d, the way a partition is seen.
func Section(d Device, off, n int64) *io.SectionReader {
	return io.NewSectionReader(d, off, n)
}

// OffsetWriter returns an io.WriterAt that writes d at base+off.
func OffsetWriter(d Device, base int64) io.WriterAt {
	return offsetWriter{d, base}
}

type offsetWriter struct {
	d    Device
	base int64
}

func (w offsetWriter) WriteAt(p []byte, off int64) (int, error) { return w.d.WriteAt(p, w.base+off) }
