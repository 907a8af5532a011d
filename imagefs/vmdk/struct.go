package vmdk

// On-disk structures of VMDK, after VMware's "Virtual Disk Format 5.0"
// technote (sparse extent header, grain directory and tables, stream
// markers, descriptor text). Reference implementations consulted: qemu
// block/vmdk.c and VMware open-vmdk vmdk/sparse.c.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Constants of the sparse extent format.
const (
	// Magic is "KDMV" read as a little-endian uint32.
	Magic = 0x564d444b
	// HeaderSize is the size of the sparse extent header (one sector).
	HeaderSize = 512
	// DefaultGrainSectors is the grain size of every image xpboot writes:
	// 128 sectors, 64 KiB, as qemu and VMware write them.
	DefaultGrainSectors = 128
	// GTEsPerGT is the number of entries per grain table; qemu refuses
	// other values and VMware only writes 512.
	GTEsPerGT = 512
	// DescriptorSectors is the space reserved for an embedded descriptor.
	DescriptorSectors = 20
	// GDAtEnd in the header's gdOffset says the grain directory is found
	// through the footer at the end of a streamOptimized file.
	GDAtEnd = ^uint64(0)
	// MaxSize is the largest capacity accepted, 64 TiB (VMware's limit for
	// sparse extents is 2 TiB per extent; qemu accepts more).
	MaxSize = 64 << 40

	sectorSize    = 512
	maxDescriptor = 1 << 20 // text descriptors larger than this are refused
	maxDepth      = 16      // longest delta chain followed
	maxGrain      = 1 << 16 // sectors (32 MiB)
)

// Header flags.
const (
	FlagNewlineTest   = 1 << 0  // the newline detection bytes are valid
	FlagRedundantGD   = 1 << 1  // a redundant grain directory is kept
	FlagZeroedGTE     = 1 << 2  // GTE 1 means "zeroed grain"
	FlagCompressed    = 1 << 16 // grains are compressed
	FlagMarkers       = 1 << 17 // stream markers (grain LBA headers) are used
	knownIncompatible = FlagCompressed | FlagMarkers
)

// Compression algorithms.
const (
	CompressNone    = 0
	CompressDeflate = 1
)

// Stream marker types (streamOptimized).
const (
	MarkerEOS    = 0
	MarkerGT     = 1
	MarkerGD     = 2
	MarkerFooter = 3
)

// Create types written in descriptors.
const (
	TypeMonolithicSparse = "monolithicSparse"
	TypeMonolithicFlat   = "monolithicFlat"
	TypeStreamOptimized  = "streamOptimized"
)

// NoParentCID is the parentCID of a disk without a parent.
const NoParentCID = 0xffffffff

// Errors for errors.Is; every *FormatError wraps one of them.
var (
	// ErrFormat reports structures that break the format.
	ErrFormat = errors.New("vmdk: invalid format")
	// ErrUnsupported reports a valid image xpboot does not handle.
	ErrUnsupported = errors.New("vmdk: unsupported")
	// ErrParent reports a delta disk whose parent is missing or has
	// changed since the delta was made (CID mismatch).
	ErrParent = errors.New("vmdk: parent disk mismatch")
)

// FormatError describes malformed VMDK data: which file, at which byte
// offset, and what is wrong.
type FormatError struct {
	File string // file name, when known
	Off  int64  // byte offset in File
	Msg  string
	Err  error // ErrFormat or ErrUnsupported
}

// Error formats the error as "vmdk: FILE: at 0xOFF: MSG".
func (e *FormatError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("vmdk: %s: at 0x%x: %s", e.File, e.Off, e.Msg)
	}
	return fmt.Sprintf("vmdk: at 0x%x: %s", e.Off, e.Msg)
}

// Unwrap returns the sentinel the error belongs to.
func (e *FormatError) Unwrap() error { return e.Err }

// Header is the SparseExtentHeader at sector 0 of a sparse extent (and the
// footer copy of a streamOptimized one). Offsets and sizes are in sectors.
type Header struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64
	GrainSize         uint64
	DescriptorOffset  uint64
	DescriptorSize    uint64
	NumGTEsPerGT      uint32
	RGDOffset         uint64
	GDOffset          uint64
	Overhead          uint64
	UncleanShutdown   bool
	CompressAlgorithm uint16
}

// newlineBytes is the newline detection sequence at offset 73.
var newlineBytes = [4]byte{'\n', ' ', '\r', '\n'}

// ParseHeader decodes and validates a 512-byte sparse extent header.
// Offsets in errors are relative to b.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, &FormatError{Off: int64(len(b)), Msg: fmt.Sprintf("sparse header truncated: %d of %d bytes", len(b), HeaderSize), Err: ErrFormat}
	}
	c := cursor{b: b[:HeaderSize]}
	if m := c.u32(); m != Magic {
		return nil, &FormatError{Msg: fmt.Sprintf("magic 0x%08x, want 0x%08x (KDMV)", m, Magic), Err: ErrFormat}
	}
	h := &Header{}
	h.Version = c.u32()
	h.Flags = c.u32()
	h.Capacity = c.u64()
	h.GrainSize = c.u64()
	h.DescriptorOffset = c.u64()
	h.DescriptorSize = c.u64()
	h.NumGTEsPerGT = c.u32()
	h.RGDOffset = c.u64()
	h.GDOffset = c.u64()
	h.Overhead = c.u64()
	h.UncleanShutdown = c.u8() != 0
	nl := c.bytes(4)
	h.CompressAlgorithm = c.u16()
	if h.Version < 1 || h.Version > 3 {
		return nil, &FormatError{Off: 4, Msg: fmt.Sprintf("version %d, want 1 to 3", h.Version), Err: ErrUnsupported}
	}
	if h.Flags&FlagNewlineTest != 0 && [4]byte(nl) != newlineBytes {
		// Like open-vmdk: corrupted newlines mean a text-mode FTP transfer.
		return nil, &FormatError{Off: 73, Msg: fmt.Sprintf("newline detection bytes %q, want %q (file transferred in text mode?)", nl, newlineBytes[:]), Err: ErrFormat}
	}
	if f := h.Flags &^ 0xffff &^ knownIncompatible; f != 0 {
		return nil, &FormatError{Off: 8, Msg: fmt.Sprintf("unknown incompatible flags 0x%08x", f), Err: ErrUnsupported}
	}
	if h.Capacity > MaxSize/sectorSize {
		return nil, &FormatError{Off: 12, Msg: fmt.Sprintf("capacity of %d sectors exceeds %d", h.Capacity, uint64(MaxSize/sectorSize)), Err: ErrFormat}
	}
	if g := h.GrainSize; g < 8 || g > maxGrain || g&(g-1) != 0 {
		return nil, &FormatError{Off: 20, Msg: fmt.Sprintf("grain size of %d sectors is not a power of two from 8 to %d", g, maxGrain), Err: ErrFormat}
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > GTEsPerGT {
		return nil, &FormatError{Off: 44, Msg: fmt.Sprintf("%d entries per grain table, want 1 to %d", h.NumGTEsPerGT, GTEsPerGT), Err: ErrUnsupported}
	}
	if h.Flags&FlagCompressed != 0 && h.CompressAlgorithm != CompressDeflate {
		return nil, &FormatError{Off: 77, Msg: fmt.Sprintf("compression algorithm %d, want 1 (deflate)", h.CompressAlgorithm), Err: ErrUnsupported}
	}
	if h.DescriptorSize > maxDescriptor/sectorSize {
		return nil, &FormatError{Off: 36, Msg: fmt.Sprintf("descriptor of %d sectors exceeds %d", h.DescriptorSize, maxDescriptor/sectorSize), Err: ErrFormat}
	}
	return h, nil
}

// Marshal encodes h as a 512-byte sector.
func (h *Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	w := wcursor{b: b}
	w.u32(Magic)
	w.u32(h.Version)
	w.u32(h.Flags)
	w.u64(h.Capacity)
	w.u64(h.GrainSize)
	w.u64(h.DescriptorOffset)
	w.u64(h.DescriptorSize)
	w.u32(h.NumGTEsPerGT)
	w.u64(h.RGDOffset)
	w.u64(h.GDOffset)
	w.u64(h.Overhead)
	if h.UncleanShutdown {
		w.u8(1)
	} else {
		w.u8(0)
	}
	w.bytes(newlineBytes[:])
	w.u16(h.CompressAlgorithm)
	return b
}

// marker returns a 512-byte stream marker sector.
func marker(val uint64, typ uint32) []byte {
	b := make([]byte, sectorSize)
	binary.LittleEndian.PutUint64(b, val)
	binary.LittleEndian.PutUint32(b[12:], typ)
	return b
}

// cursor decodes little-endian fields in sequence; callers size b first.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) bytes(n int) []byte { v := c.b[c.off : c.off+n]; c.off += n; return v }
func (c *cursor) u8() uint8          { return c.bytes(1)[0] }
func (c *cursor) u16() uint16        { return binary.LittleEndian.Uint16(c.bytes(2)) }
func (c *cursor) u32() uint32        { return binary.LittleEndian.Uint32(c.bytes(4)) }
func (c *cursor) u64() uint64        { return binary.LittleEndian.Uint64(c.bytes(8)) }

// wcursor encodes little-endian fields in sequence.
type wcursor struct {
	b   []byte
	off int
}

func (w *wcursor) bytes(v []byte) { copy(w.b[w.off:], v); w.off += len(v) }
func (w *wcursor) u8(v uint8)     { w.b[w.off] = v; w.off++ }
func (w *wcursor) u16(v uint16)   { binary.LittleEndian.PutUint16(w.b[w.off:], v); w.off += 2 }
func (w *wcursor) u32(v uint32)   { binary.LittleEndian.PutUint32(w.b[w.off:], v); w.off += 4 }
func (w *wcursor) u64(v uint64)   { binary.LittleEndian.PutUint64(w.b[w.off:], v); w.off += 8 }
