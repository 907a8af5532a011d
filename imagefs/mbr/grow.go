package mbr

import (
	"fmt"
	"io"
)

// Growth is a planned change of the last partition's size: the partition
// that ends highest on the disk, a primary one or the last logical one
// (whose extended container grows with it). PlanGrow computes it without
// writing; Apply writes it.
type Growth struct {
	Index      int    // 1..4 primary, 5… logical (chain order)
	Type       byte   // partition type
	Start      uint32 // first sector (absolute LBA)
	OldSectors uint32
	NewSectors uint32
	Extended   int // index (1..4) of the extended container that grows too, or 0
	// writes are whole sectors, applied in order: the MBR (an extended
	// container grows first), then the EBR that links to the partition's
	// EBR, then the partition's own EBR (or the MBR for a primary one).
	writes []sectorWrite
}

type sectorWrite struct {
	lba  uint32
	data []byte
}

// Changed reports whether applying g changes anything.
func (g *Growth) Changed() bool { return g.NewSectors != g.OldSectors }

// End returns the sector after the grown partition.
func (g *Growth) End() uint64 { return uint64(g.Start) + uint64(g.NewSectors) }

// LastEnd returns the sector after the partition (primary or logical) that
// ends highest on the disk, 0 for an empty table. A damaged chain of
// extended boot records is an error.
func LastEnd(r io.ReaderAt, m *MBR) (uint64, error) {
	var end uint64
	for _, e := range m.Entries {
		if e.Empty() {
			continue
		}
		end = max(end, e.End())
		if IsExtended(e.Type) {
			if _, err := ReadLogical(r, e); err != nil {
				return 0, err
			}
		}
	}
	return end, nil
}

// PlanGrow plans growing the last partition of the disk (diskSectors long)
// read from r with table m. With sectors 0 the partition grows to the end
// of the disk, rounded down to a cylinder boundary of the table's geometry
// when the partition ended on one before (as XP's Disk Management lays
// partitions out); otherwise it gets exactly sectors sectors. Shrinking is
// refused: the file system inside would be cut off. A partition that does
// not lie last (another partition or the extended container's end beyond
// it) is refused too.
func PlanGrow(r io.ReaderAt, m *MBR, diskSectors uint64, sectors uint64) (*Growth, error) {
	if diskSectors > MaxDiskSectors {
		diskSectors = MaxDiskSectors // the MBR cannot describe more
	}
	last := -1
	for i, e := range m.Entries {
		if e.Empty() {
			continue
		}
		if last < 0 || e.End() > m.Entries[last].End() {
			last = i
		}
	}
	if last < 0 {
		return nil, fmt.Errorf("mbr: the partition table is empty: no partition to grow")
	}
	geo := tableGeometry(m)
	pe := m.Entries[last]
	g := &Growth{Index: last + 1, Type: pe.Type, Start: pe.Start, OldSectors: pe.Sectors}
	var logical *Logical
	var chain []Logical
	if IsExtended(pe.Type) {
		var err error
		chain, err = ReadLogical(r, pe)
		if err != nil {
			return nil, err
		}
		if len(chain) == 0 {
			return nil, fmt.Errorf("mbr: the last partition is extended partition %d and holds no logical partition to grow", last+1)
		}
		li := 0
		for i, l := range chain {
			if l.End() > chain[li].End() {
				li = i
			}
		}
		logical = &chain[li]
		g.Index, g.Type, g.Start, g.OldSectors, g.Extended = 5+li, logical.Type, logical.Start, logical.Sectors, last+1
	}
	oldEnd := uint64(g.Start) + uint64(g.OldSectors)
	var end uint64
	if sectors != 0 {
		end = uint64(g.Start) + sectors
		if end > diskSectors {
			return nil, fmt.Errorf("mbr: partition %d of %d sectors from sector %d would end at sector %d, past the end of the %d-sector disk", g.Index, sectors, g.Start, end, diskSectors)
		}
	} else {
		end = diskSectors
		unit := uint64(geo.CylinderSectors())
		if oldEnd%unit == 0 && end/unit*unit >= oldEnd {
			end = end / unit * unit
		}
	}
	if end < oldEnd {
		return nil, fmt.Errorf("mbr: partition %d would shrink from %d to %d sectors; the file system in it would be cut off", g.Index, g.OldSectors, end-uint64(g.Start))
	}
	if end-uint64(g.Start) > MaxDiskSectors {
		return nil, fmt.Errorf("mbr: partition %d of %d sectors exceeds the MBR's limit of %d", g.Index, end-uint64(g.Start), uint64(MaxDiskSectors))
	}
	g.NewSectors = uint32(end - uint64(g.Start))
	if !g.Changed() {
		return g, nil
	}
	newEntry := func(e Entry, start uint32, n uint32) Entry {
		e.Sectors = n
		e.EndCHS = geo.CHSOf(uint32(uint64(start) + uint64(n) - 1))
		return e
	}
	if logical == nil {
		m2 := *m
		m2.Entries[last] = newEntry(pe, pe.Start, g.NewSectors)
		g.writes = append(g.writes, sectorWrite{0, m2.Bytes()})
		return g, nil
	}
	// The extended container grows first, so that every later state has
	// the logical partition inside it.
	if end > pe.End() {
		m2 := *m
		m2.Entries[last] = newEntry(pe, pe.Start, uint32(end-uint64(pe.Start)))
		g.writes = append(g.writes, sectorWrite{0, m2.Bytes()})
	}
	// The EBR before the partition's EBR links to it with an entry that
	// spans the next EBR and its logical partition.
	for _, l := range chain {
		if l.EBR == logical.EBR {
			continue
		}
		sec := make([]byte, SectorSize)
		if _, err := r.ReadAt(sec, int64(l.EBR)*SectorSize); err != nil {
			return nil, fmt.Errorf("mbr: extended boot record at sector %d: %w", l.EBR, err)
		}
		link := parseEntry(sec[tableOffset+entrySize:])
		if !IsExtended(link.Type) || pe.Start+link.Start != logical.EBR {
			continue
		}
		link = newEntry(link, logical.EBR, uint32(end-uint64(logical.EBR)))
		putEntry(sec[tableOffset+entrySize:], link)
		g.writes = append(g.writes, sectorWrite{l.EBR, sec})
	}
	// An EBR whose first entry is empty links to the partition's EBR too
	// (ReadLogical skips it); those are not rewritten, since no reader
	// uses the link length to bound the logical partition.
	sec := make([]byte, SectorSize)
	if _, err := r.ReadAt(sec, int64(logical.EBR)*SectorSize); err != nil {
		return nil, fmt.Errorf("mbr: extended boot record at sector %d: %w", logical.EBR, err)
	}
	first := parseEntry(sec[tableOffset:])
	first = newEntry(first, logical.Start, g.NewSectors)
	putEntry(sec[tableOffset:], first)
	g.writes = append(g.writes, sectorWrite{logical.EBR, sec})
	return g, nil
}

// Apply writes the planned sectors in order. Each write is one sector,
// and every prefix of the sequence leaves a valid table whose partitions
// still hold their file systems.
func (g *Growth) Apply(w io.WriterAt) error {
	for _, s := range g.writes {
		if _, err := w.WriteAt(s.data, int64(s.lba)*SectorSize); err != nil {
			return fmt.Errorf("mbr: write sector %d: %w", s.lba, err)
		}
	}
	return nil
}

// tableGeometry returns the CHS translation the table's entries were
// written for: the first common one under which every entry's CHS
// addresses match its LBA fields, else the XP geometry. (GuessGeometry
// trusts the first entry's end, which is wrong for a partition that does
// not end on a cylinder boundary.)
func tableGeometry(m *MBR) Geometry {
	candidates := []Geometry{XPGeometry, {240, 63}, {128, 63}, {64, 63}, {64, 32}, {16, 63}}
next:
	for _, g := range candidates {
		for _, e := range m.Entries {
			if e.Empty() || e.End() > MaxDiskSectors {
				continue
			}
			if g.CHSOf(e.Start) != e.StartCHS || g.CHSOf(uint32(e.End()-1)) != e.EndCHS {
				continue next
			}
		}
		return g
	}
	return XPGeometry
}

func putEntry(b []byte, e Entry) {
	b[0] = 0
	if e.Active {
		b[0] = 0x80
	}
	copy(b[1:4], e.StartCHS[:])
	b[4] = e.Type
	copy(b[5:8], e.EndCHS[:])
	b[8], b[9], b[10], b[11] = byte(e.Start), byte(e.Start>>8), byte(e.Start>>16), byte(e.Start>>24)
	b[12], b[13], b[14], b[15] = byte(e.Sectors), byte(e.Sectors>>8), byte(e.Sectors>>16), byte(e.Sectors>>24)
}
