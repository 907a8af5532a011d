package blockdev

import (
	"errors"
	"fmt"
	"io"
)

// SectorSize is the logical sector size of every device xpboot creates or
// serves. Windows XP and its boot path only know 512-byte sectors.
const SectorSize = 512

// ErrReadOnly is returned by WriteAt and Discard on a device opened without
// write access.
var ErrReadOnly = errors.New("blockdev: device is read-only")

// ErrNotSupported is returned by Discard on a device that cannot deallocate
// (a VMDK or VHD, a block device, a wrapper that must see every change).
var ErrNotSupported = errors.New("blockdev: discard is not supported by this device")

// ReaderWriterAt is the byte access a file system needs from the disk it
// lives on: package fat32 and package ntfs take one, so that a Device, a
// plain file or a test's in-memory disk all serve.
type ReaderWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Device is a virtual disk of a fixed size.
//
// ReadAt and WriteAt follow io.ReaderAt and io.WriterAt and may be called
// concurrently on distinct ranges; a range past Size is an error, never a
// silent extension. Flush returns once every write that completed before it is
// on stable storage. Close flushes and releases the backing files.
//
// The capabilities of a device are methods every backend implements, so
// that a server decides what to offer (write protection, thin provisioning)
// by asking the device, never by asserting its concrete type.
type Device interface {
	ReaderWriterAt
	Size() int64
	Flush() error
	Close() error
	// Extents describes how [off, off+length) is stored, in ascending,
	// contiguous, non-overlapping extents that together cover the range.
	Extents(off, length int64) ([]Extent, error)
	// ReadOnly reports whether every WriteAt and Discard is refused with
	// ErrReadOnly. It does not change while the device is open.
	ReadOnly() bool
	// Discard deallocates [off, off+length): afterwards the range reads as
	// zeros and, where the backend can say so, its Extents are Zero. A
	// device that cannot deallocate returns an error wrapping
	// ErrNotSupported (and changes nothing); a read-only one ErrReadOnly.
	// A zero-length Discard changes nothing and answers whether the device
	// can deallocate at all (see CanDiscard).
	Discard(off, length int64) error
}

// CanDiscard reports whether d can deallocate ranges: its zero-length
// Discard succeeds. Servers call it once, when they decide whether to
// offer thin provisioning (iSCSI UNMAP and the logical block provisioning
// VPD page).
func CanDiscard(d Device) bool { return d.Discard(0, 0) == nil }

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

// AppendExtent appends [off, end) in state s to extents that end at off,
// joining it to the last extent when that has the same state; an empty
// range appends nothing. Backends build their Extents answers with it.
func AppendExtent(extents []Extent, off, end int64, s State) []Extent {
	if end <= off {
		return extents
	}
	if n := len(extents); n > 0 && extents[n-1].State == s && extents[n-1].Off+extents[n-1].Len == off {
		extents[n-1].Len += end - off
		return extents
	}
	return append(extents, Extent{Off: off, Len: end - off, State: s})
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
