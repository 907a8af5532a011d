package mbr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// On-disk layout of sector 0.
const (
	SectorSize      = 512
	CodeSize        = 440 // boot code, bytes 0..439
	signatureOffset = 440 // disk signature, 4 bytes little-endian
	tableOffset     = 446 // four 16-byte partition entries
	entrySize       = 16
	magicOffset     = 510 // 0x55 0xAA
)

// Partition type bytes xpboot writes or recognises.
const (
	TypeEmpty    = 0x00
	TypeFAT32CHS = 0x0B
	TypeFAT32LBA = 0x0C
	TypeNTFS     = 0x07
	TypeFAT16LBA = 0x0E
	TypeExtended = 0x05
	TypeExtLBA   = 0x0F
	TypeGPT      = 0xEE
)

// Standard XP-era translated geometry: the BIOS reports 255 heads and 63
// sectors per track for every disk larger than 8 GB and XP's partitioning
// tools lay disks out for it.
var XPGeometry = Geometry{Heads: 255, SectorsPerTrack: 63}

// ErrNoTable is returned for a sector without the 0x55AA signature.
var ErrNoTable = errors.New("mbr: no partition table (sector 0 does not end in 55 AA)")

// FormatError reports a malformed MBR field at a byte offset in sector 0.
type FormatError struct {
	Off int
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("mbr: byte 0x%03x: %s", e.Off, e.Msg) }

// Geometry is a BIOS CHS translation.
type Geometry struct {
	Heads           uint32 // 1..255
	SectorsPerTrack uint32 // 1..63
}

// CylinderSectors is the number of sectors in one cylinder.
func (g Geometry) CylinderSectors() uint32 { return g.Heads * g.SectorsPerTrack }

// CHS is a packed three-byte cylinder/head/sector address as stored in a
// partition entry.
type CHS [3]byte

// CHSOf converts an LBA to the packed CHS address under g. Addresses beyond
// cylinder 1023 are stored as the conventional maximum 1023/254/63 (FE FF FF
// for 255 heads), which tells every reader to use the LBA fields instead.
func (g Geometry) CHSOf(lba uint32) CHS {
	cyl := lba / g.CylinderSectors()
	rem := lba % g.CylinderSectors()
	head := rem / g.SectorsPerTrack
	sec := rem%g.SectorsPerTrack + 1
	if cyl > 1023 {
		cyl, head, sec = 1023, g.Heads-1, g.SectorsPerTrack
	}
	return CHS{byte(head), byte(sec) | byte((cyl>>2)&0xC0), byte(cyl)}
}

// Cylinder, Head and Sector unpack a CHS address.
func (c CHS) Cylinder() uint32 { return uint32(c[2]) | uint32(c[1]&0xC0)<<2 }

// Head returns the head number of c.
func (c CHS) Head() uint32 { return uint32(c[0]) }

// Sector returns the 1-based sector number of c.
func (c CHS) Sector() uint32 { return uint32(c[1] & 0x3F) }

func (c CHS) String() string { return fmt.Sprintf("%d/%d/%d", c.Cylinder(), c.Head(), c.Sector()) }

// Entry is one primary partition entry.
type Entry struct {
	Active   bool
	Type     byte
	StartCHS CHS
	EndCHS   CHS
	Start    uint32 // first sector (LBA)
	Sectors  uint32 // length in sectors
}

// Empty reports whether the slot is unused.
func (e Entry) Empty() bool { return e.Type == TypeEmpty && e.Sectors == 0 }

// End returns the sector after the partition.
func (e Entry) End() uint64 { return uint64(e.Start) + uint64(e.Sectors) }

// MBR is a decoded sector 0.
type MBR struct {
	Code      [CodeSize]byte
	Signature uint32 // disk signature; XP's MountedDevices refers to it
	Entries   [4]Entry
}

// Parse decodes sector 0. diskSectors, when non-zero, is the size of the
// disk; partitions reaching past it are an error.
func Parse(sector []byte, diskSectors uint64) (*MBR, error) {
	if len(sector) < SectorSize {
		return nil, &FormatError{0, fmt.Sprintf("sector is %d bytes, want %d", len(sector), SectorSize)}
	}
	if sector[magicOffset] != 0x55 || sector[magicOffset+1] != 0xAA {
		return nil, ErrNoTable
	}
	m := &MBR{Signature: binary.LittleEndian.Uint32(sector[signatureOffset:])}
	copy(m.Code[:], sector[:CodeSize])
	for i := range m.Entries {
		off := tableOffset + i*entrySize
		b := sector[off : off+entrySize]
		if b[0] != 0 && b[0] != 0x80 {
			return nil, &FormatError{off, fmt.Sprintf("partition %d: boot indicator 0x%02x is neither 0x00 nor 0x80", i+1, b[0])}
		}
		e := Entry{
			Active:  b[0] == 0x80,
			Type:    b[4],
			Start:   binary.LittleEndian.Uint32(b[8:]),
			Sectors: binary.LittleEndian.Uint32(b[12:]),
		}
		copy(e.StartCHS[:], b[1:4])
		copy(e.EndCHS[:], b[5:8])
		if e.Type == TypeEmpty {
			if e.Sectors != 0 || e.Active {
				return nil, &FormatError{off, fmt.Sprintf("partition %d: type 0 (empty) but active or with %d sectors", i+1, e.Sectors)}
			}
			m.Entries[i] = e
			continue
		}
		if e.Sectors == 0 || e.Start == 0 {
			return nil, &FormatError{off + 8, fmt.Sprintf("partition %d: start %d, %d sectors", i+1, e.Start, e.Sectors)}
		}
		if diskSectors > 0 && e.End() > diskSectors {
			return nil, &FormatError{off + 8, fmt.Sprintf("partition %d: sectors %d..%d lie past the end of the %d-sector disk", i+1, e.Start, e.End()-1, diskSectors)}
		}
		m.Entries[i] = e
	}
	for i := range m.Entries {
		for j := i + 1; j < len(m.Entries); j++ {
			a, b := m.Entries[i], m.Entries[j]
			if a.Empty() || b.Empty() {
				continue
			}
			if uint64(a.Start) < b.End() && uint64(b.Start) < a.End() {
				return nil, &FormatError{tableOffset + j*entrySize + 8, fmt.Sprintf("partitions %d and %d overlap", i+1, j+1)}
			}
		}
	}
	return m, nil
}

// Bytes encodes the MBR as a 512-byte sector.
func (m *MBR) Bytes() []byte {
	s := make([]byte, SectorSize)
	copy(s, m.Code[:])
	binary.LittleEndian.PutUint32(s[signatureOffset:], m.Signature)
	for i, e := range m.Entries {
		b := s[tableOffset+i*entrySize:]
		if e.Active {
			b[0] = 0x80
		}
		copy(b[1:4], e.StartCHS[:])
		b[4] = e.Type
		copy(b[5:8], e.EndCHS[:])
		binary.LittleEndian.PutUint32(b[8:], e.Start)
		binary.LittleEndian.PutUint32(b[12:], e.Sectors)
	}
	s[magicOffset], s[magicOffset+1] = 0x55, 0xAA
	return s
}

// Active returns the index of the single active partition, or -1 if there is
// none. More than one active partition is an error: the MBR code refuses it.
func (m *MBR) Active() (int, error) {
	idx := -1
	for i, e := range m.Entries {
		if e.Active {
			if idx >= 0 {
				return -1, &FormatError{tableOffset + i*entrySize, fmt.Sprintf("partitions %d and %d are both active", idx+1, i+1)}
			}
			idx = i
		}
	}
	return idx, nil
}

// GuessGeometry returns the geometry the partition table was laid out for, the
// way BIOSes and QEMU guess it: from the end CHS of a partition that ends on a
// cylinder boundary. ok is false when no entry tells.
func (m *MBR) GuessGeometry() (g Geometry, ok bool) {
	for _, e := range m.Entries {
		if e.Empty() {
			continue
		}
		h, s := e.EndCHS.Head()+1, e.EndCHS.Sector()
		if s == 0 || h == 0 {
			continue
		}
		return Geometry{Heads: h, SectorsPerTrack: s}, true
	}
	return Geometry{}, false
}

// MaxDiskSectors is the largest disk an MBR can describe: LBA fields are 32
// bits wide.
const MaxDiskSectors = 1<<32 - 1

// Layout computes a single-partition layout for a disk of diskSectors
// sectors: the partition starts at align (63 for the XP layout, 2048 for
// 1 MiB alignment) and always ends on a cylinder boundary of g, because BIOSes
// derive the disk's translation geometry from the end CHS of the partitions
// (QEMU's SeaBIOS setup does exactly that). It returns an error when the disk
// holds no whole cylinder after the start or is too large for an MBR.
func Layout(diskSectors uint64, align uint32, g Geometry, partType byte) (Entry, error) {
	if align == 0 {
		return Entry{}, errors.New("mbr: partition alignment must be positive")
	}
	if diskSectors > MaxDiskSectors {
		return Entry{}, fmt.Errorf("mbr: a %d-sector disk exceeds the MBR limit of %d sectors (2 TiB)", diskSectors, uint64(MaxDiskSectors))
	}
	unit := uint64(g.CylinderSectors())
	end := diskSectors / unit * unit
	if end <= uint64(align) {
		return Entry{}, fmt.Errorf("mbr: a %d-sector disk has no room for a partition starting at sector %d and ending on a %d-sector boundary", diskSectors, align, unit)
	}
	e := Entry{
		Active:  true,
		Type:    partType,
		Start:   align,
		Sectors: uint32(end - uint64(align)),
	}
	e.StartCHS = g.CHSOf(e.Start)
	e.EndCHS = g.CHSOf(uint32(end - 1))
	return e, nil
}
