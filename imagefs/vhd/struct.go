package vhd

// On-disk structures of the VHD format, after Microsoft's "Virtual Hard Disk
// Image Format Specification" v1.0 (2006), sections "Hard Disk Footer Format"
// and "Dynamic Disk Header Format". Reference implementations consulted: qemu
// block/vpc.c and VirtualBox src/VBox/Storage/VHD.cpp.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// Sizes of the fixed structures, in bytes.
const (
	FooterSize = 512
	HeaderSize = 1024
	// DefaultBlockSize is the block size of dynamic disks made by Create,
	// the one Virtual PC, Hyper-V and qemu use.
	DefaultBlockSize = 2 << 20
	// MaxSize is the largest disk the specification allows (2040 GiB); qemu
	// refuses larger ones too.
	MaxSize = 0xff000000 * 512
	// MaxCHSSectors is the number of sectors of the largest CHS geometry,
	// 65535 cylinders, 16 heads, 255 sectors per track.
	MaxCHSSectors = 65535 * 16 * 255

	sectorSize = 512
	// noOffset marks an absent offset (fixed disk data offset, header data
	// offset) and an unallocated BAT entry (as uint32).
	noOffset   = ^uint64(0)
	unusedBAT  = ^uint32(0)
	maxBlock   = 1 << 28 // larger blocks are refused as absurd
	minBlock   = 1 << 12
	maxDepth   = 16 // longest differencing chain followed
	maxLocator = 64 << 10
)

// DiskType is the kind of a VHD, from the footer's disk type field.
type DiskType uint32

// Disk types defined by the specification.
const (
	TypeFixed        DiskType = 2
	TypeDynamic      DiskType = 3
	TypeDifferencing DiskType = 4
)

// String names the disk type.
func (t DiskType) String() string {
	switch t {
	case TypeFixed:
		return "fixed"
	case TypeDynamic:
		return "dynamic"
	case TypeDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// Cookies identifying the footer and the dynamic disk header.
const (
	FooterCookie = "conectix"
	HeaderCookie = "cxsparse"
)

// Creator values xpboot writes. "win " makes qemu (before and after 10.0),
// Hyper-V and libvhdi all use the current size field as the disk size.
var (
	creatorApp     = [4]byte{'w', 'i', 'n', ' '}
	creatorHostOS  = [4]byte{'W', 'i', '2', 'k'}
	creatorVersion = uint32(0x000a0000)
)

// vhdEpochUnix is 2000-01-01 00:00:00 UTC, the origin of VHD time stamps.
const vhdEpochUnix = 946684800

// Errors for errors.Is; every *FormatError wraps one of them.
var (
	// ErrFormat reports a structure that breaks the specification.
	ErrFormat = errors.New("vhd: invalid format")
	// ErrChecksum reports a footer or header whose checksum does not match.
	ErrChecksum = errors.New("vhd: checksum mismatch")
	// ErrUnsupported reports a valid image xpboot does not handle, such as
	// writing a differencing disk.
	ErrUnsupported = errors.New("vhd: unsupported")
	// ErrNoParent reports a read of a differencing disk's parent range when
	// no parent was opened (NewReader).
	ErrNoParent = errors.New("vhd: differencing disk has no parent opened")
)

// FormatError describes malformed VHD metadata: which file, at which byte
// offset, and what is wrong.
type FormatError struct {
	File string // file name, when known
	Off  int64  // byte offset of the offending structure or field
	Msg  string
	Err  error // ErrFormat or ErrChecksum
}

// Error formats the error as "vhd: FILE: at 0xOFF: MSG".
func (e *FormatError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("vhd: %s: at 0x%x: %s", e.File, e.Off, e.Msg)
	}
	return fmt.Sprintf("vhd: at 0x%x: %s", e.Off, e.Msg)
}

// Unwrap returns the sentinel the error belongs to.
func (e *FormatError) Unwrap() error { return e.Err }

// Geometry is the footer's CHS disk geometry.
type Geometry struct {
	Cylinders       uint16
	Heads           uint8
	SectorsPerTrack uint8
}

// Sectors returns cylinders × heads × sectors per track.
func (g Geometry) Sectors() int64 {
	return int64(g.Cylinders) * int64(g.Heads) * int64(g.SectorsPerTrack)
}

// String formats the geometry as C/H/S.
func (g Geometry) String() string {
	return fmt.Sprintf("%d/%d/%d", g.Cylinders, g.Heads, g.SectorsPerTrack)
}

// CHS computes the geometry of a disk of the given number of sectors by the
// algorithm in the specification's appendix (identical to qemu's
// calculate_geometry). C×H×S may be smaller than sectors.
func CHS(sectors int64) Geometry {
	if sectors > MaxCHSSectors {
		sectors = MaxCHSSectors
	}
	var spt, heads, cth int64
	if sectors >= 65535*16*63 {
		spt, heads = 255, 16
		cth = sectors / spt
	} else {
		spt = 17
		cth = sectors / spt
		heads = (cth + 1023) / 1024
		if heads < 4 {
			heads = 4
		}
		if cth >= heads*1024 || heads > 16 {
			spt, heads = 31, 16
			cth = sectors / spt
		}
		if cth >= heads*1024 {
			spt, heads = 63, 16
			cth = sectors / spt
		}
	}
	return Geometry{Cylinders: uint16(cth / heads), Heads: uint8(heads), SectorsPerTrack: uint8(spt)}
}

// RoundSize returns the smallest size of at least size bytes on which every
// VHD reader agrees: a multiple of 512 that is C×H×S×512 of its own geometry,
// searched the way qemu-img create does. Above the largest CHS geometry any
// sector multiple qualifies (readers then use the current size). exact
// reports whether size itself qualifies.
func RoundSize(size int64) (rounded int64, exact bool) {
	sectors := (size + sectorSize - 1) / sectorSize
	if sectors > MaxCHSSectors {
		return sectors * sectorSize, sectors*sectorSize == size
	}
	for s := sectors; ; s++ {
		g := CHS(s)
		if g.Sectors() >= sectors {
			r := g.Sectors() * sectorSize
			return r, r == size
		}
	}
}

// checksum is the one's complement of the byte sum of b, with the 4 bytes at
// skip (the checksum field) counted as zero.
func checksum(b []byte, skip int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= skip && i < skip+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

// Footer is the hard disk footer, the last 512 bytes of every VHD (and, for
// dynamic and differencing disks, also the first 512).
type Footer struct {
	Features       uint32
	Version        uint32
	DataOffset     uint64 // offset of the dynamic header; ^0 for fixed disks
	Timestamp      uint32 // seconds since 2000-01-01 UTC
	CreatorApp     [4]byte
	CreatorVersion uint32
	CreatorHostOS  [4]byte
	OriginalSize   uint64
	CurrentSize    uint64
	Geometry       Geometry
	DiskType       DiskType
	Checksum       uint32
	UniqueID       [16]byte
	SavedState     uint8
}

// ParseFooter decodes a 512-byte footer and checks its cookie and checksum.
// Errors are *FormatError with offsets relative to b.
func ParseFooter(b []byte) (*Footer, error) {
	if len(b) < FooterSize {
		return nil, &FormatError{Off: int64(len(b)), Msg: fmt.Sprintf("footer truncated: %d of %d bytes", len(b), FooterSize), Err: ErrFormat}
	}
	b = b[:FooterSize]
	if string(b[:8]) != FooterCookie {
		return nil, &FormatError{Msg: fmt.Sprintf("footer cookie %q, want %q", b[:8], FooterCookie), Err: ErrFormat}
	}
	c := cursor{b: b, off: 8}
	f := &Footer{}
	f.Features = c.u32()
	f.Version = c.u32()
	f.DataOffset = c.u64()
	f.Timestamp = c.u32()
	copy(f.CreatorApp[:], c.bytes(4))
	f.CreatorVersion = c.u32()
	copy(f.CreatorHostOS[:], c.bytes(4))
	f.OriginalSize = c.u64()
	f.CurrentSize = c.u64()
	f.Geometry.Cylinders = c.u16()
	f.Geometry.Heads = c.u8()
	f.Geometry.SectorsPerTrack = c.u8()
	f.DiskType = DiskType(c.u32())
	f.Checksum = c.u32()
	copy(f.UniqueID[:], c.bytes(16))
	f.SavedState = c.u8()
	if sum := checksum(b, 64); sum != f.Checksum {
		return nil, &FormatError{Off: 64, Msg: fmt.Sprintf("footer checksum 0x%08x, computed 0x%08x", f.Checksum, sum), Err: ErrChecksum}
	}
	if f.Version>>16 != 1 {
		return nil, &FormatError{Off: 12, Msg: fmt.Sprintf("file format version 0x%08x, want 1.x", f.Version), Err: ErrFormat}
	}
	switch f.DiskType {
	case TypeFixed, TypeDynamic, TypeDifferencing:
	default:
		return nil, &FormatError{Off: 60, Msg: fmt.Sprintf("unknown disk type %d", uint32(f.DiskType)), Err: ErrFormat}
	}
	if f.CurrentSize%sectorSize != 0 || f.CurrentSize > MaxSize {
		return nil, &FormatError{Off: 48, Msg: fmt.Sprintf("current size %d is not a multiple of 512 up to %d", f.CurrentSize, uint64(MaxSize)), Err: ErrFormat}
	}
	return f, nil
}

// Marshal encodes f with a freshly computed checksum, which it also stores
// in f.Checksum.
func (f *Footer) Marshal() []byte {
	b := make([]byte, FooterSize)
	copy(b, FooterCookie)
	w := wcursor{b: b, off: 8}
	w.u32(f.Features)
	w.u32(f.Version)
	w.u64(f.DataOffset)
	w.u32(f.Timestamp)
	w.bytes(f.CreatorApp[:])
	w.u32(f.CreatorVersion)
	w.bytes(f.CreatorHostOS[:])
	w.u64(f.OriginalSize)
	w.u64(f.CurrentSize)
	w.u16(f.Geometry.Cylinders)
	w.u8(f.Geometry.Heads)
	w.u8(f.Geometry.SectorsPerTrack)
	w.u32(uint32(f.DiskType))
	w.u32(0)
	w.bytes(f.UniqueID[:])
	w.u8(f.SavedState)
	f.Checksum = checksum(b, 64)
	binary.BigEndian.PutUint32(b[64:], f.Checksum)
	return b
}

// Locator is a parent locator entry of a differencing disk's header.
type Locator struct {
	Code       [4]byte // "W2ru" relative, "W2ku" absolute (UTF-16LE paths)
	DataSpace  uint32  // sectors (some writers store bytes)
	DataLength uint32  // bytes
	DataOffset uint64  // absolute file offset
}

// Header is the dynamic disk header of dynamic and differencing disks.
type Header struct {
	DataOffset      uint64
	TableOffset     uint64 // offset of the block allocation table
	HeaderVersion   uint32
	MaxTableEntries uint32
	BlockSize       uint32
	Checksum        uint32
	ParentUUID      [16]byte
	ParentTimestamp uint32
	ParentName      string // decoded from UTF-16BE
	Locators        [8]Locator
}

// ParseHeader decodes a 1024-byte dynamic disk header and checks its cookie,
// checksum, version and block size. Offsets in errors are relative to b.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < HeaderSize {
		return nil, &FormatError{Off: int64(len(b)), Msg: fmt.Sprintf("dynamic header truncated: %d of %d bytes", len(b), HeaderSize), Err: ErrFormat}
	}
	b = b[:HeaderSize]
	if string(b[:8]) != HeaderCookie {
		return nil, &FormatError{Msg: fmt.Sprintf("dynamic header cookie %q, want %q", b[:8], HeaderCookie), Err: ErrFormat}
	}
	c := cursor{b: b, off: 8}
	h := &Header{}
	h.DataOffset = c.u64()
	h.TableOffset = c.u64()
	h.HeaderVersion = c.u32()
	h.MaxTableEntries = c.u32()
	h.BlockSize = c.u32()
	h.Checksum = c.u32()
	copy(h.ParentUUID[:], c.bytes(16))
	h.ParentTimestamp = c.u32()
	c.u32() // reserved
	name := c.bytes(512)
	u := make([]uint16, 0, 256)
	for i := 0; i+1 < len(name); i += 2 {
		v := binary.BigEndian.Uint16(name[i:])
		if v == 0 {
			break
		}
		u = append(u, v)
	}
	h.ParentName = string(utf16.Decode(u))
	for i := range h.Locators {
		l := &h.Locators[i]
		copy(l.Code[:], c.bytes(4))
		l.DataSpace = c.u32()
		l.DataLength = c.u32()
		c.u32()
		l.DataOffset = c.u64()
	}
	if sum := checksum(b, 36); sum != h.Checksum {
		return nil, &FormatError{Off: 36, Msg: fmt.Sprintf("dynamic header checksum 0x%08x, computed 0x%08x", h.Checksum, sum), Err: ErrChecksum}
	}
	if h.HeaderVersion>>16 != 1 {
		return nil, &FormatError{Off: 24, Msg: fmt.Sprintf("header version 0x%08x, want 1.x", h.HeaderVersion), Err: ErrFormat}
	}
	if bs := h.BlockSize; bs < minBlock || bs > maxBlock || bs&(bs-1) != 0 {
		return nil, &FormatError{Off: 32, Msg: fmt.Sprintf("block size %d is not a power of two from %d to %d", bs, minBlock, maxBlock), Err: ErrFormat}
	}
	return h, nil
}

// Marshal encodes h with a freshly computed checksum, which it also stores
// in h.Checksum.
func (h *Header) Marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, HeaderCookie)
	w := wcursor{b: b, off: 8}
	w.u64(h.DataOffset)
	w.u64(h.TableOffset)
	w.u32(h.HeaderVersion)
	w.u32(h.MaxTableEntries)
	w.u32(h.BlockSize)
	w.u32(0)
	w.bytes(h.ParentUUID[:])
	w.u32(h.ParentTimestamp)
	w.u32(0)
	name := utf16.Encode([]rune(h.ParentName))
	for i := 0; i < len(name) && i < 256; i++ {
		binary.BigEndian.PutUint16(b[w.off+2*i:], name[i])
	}
	w.off += 512
	for _, l := range h.Locators {
		w.bytes(l.Code[:])
		w.u32(l.DataSpace)
		w.u32(l.DataLength)
		w.u32(0)
		w.u64(l.DataOffset)
	}
	h.Checksum = checksum(b, 36)
	binary.BigEndian.PutUint32(b[36:], h.Checksum)
	return b
}

// bitmapSize is the size of a block's sector bitmap: one bit per sector,
// padded to a sector.
func bitmapSize(blockSize int64) int64 {
	n := (blockSize/sectorSize + 7) / 8
	return (n + sectorSize - 1) / sectorSize * sectorSize
}

// cursor decodes big-endian fields in sequence; callers size b first.
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) bytes(n int) []byte { v := c.b[c.off : c.off+n]; c.off += n; return v }
func (c *cursor) u8() uint8          { return c.bytes(1)[0] }
func (c *cursor) u16() uint16        { return binary.BigEndian.Uint16(c.bytes(2)) }
func (c *cursor) u32() uint32        { return binary.BigEndian.Uint32(c.bytes(4)) }
func (c *cursor) u64() uint64        { return binary.BigEndian.Uint64(c.bytes(8)) }

// wcursor encodes big-endian fields in sequence.
type wcursor struct {
	b   []byte
	off int
}

func (w *wcursor) bytes(v []byte) { copy(w.b[w.off:], v); w.off += len(v) }
func (w *wcursor) u8(v uint8)     { w.b[w.off] = v; w.off++ }
func (w *wcursor) u16(v uint16)   { binary.BigEndian.PutUint16(w.b[w.off:], v); w.off += 2 }
func (w *wcursor) u32(v uint32)   { binary.BigEndian.PutUint32(w.b[w.off:], v); w.off += 4 }
func (w *wcursor) u64(v uint64)   { binary.BigEndian.PutUint64(w.b[w.off:], v); w.off += 8 }
