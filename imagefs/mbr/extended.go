package mbr

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MaxLogical bounds the chain of extended boot records ReadLogical follows:
// far more logical drives than any real disk has, and a guard against a
// chain that loops.
const MaxLogical = 128

// IsExtended reports whether a partition type is an extended partition
// (a container of logical partitions), CHS or LBA.
func IsExtended(t byte) bool { return t == TypeExtended || t == TypeExtLBA }

// Logical is one logical partition inside the extended partition, with its
// start as an absolute LBA.
type Logical struct {
	Entry        // Start is absolute (the EBR stores it relative to itself)
	EBR   uint32 // LBA of the extended boot record that describes it
}

// ReadLogical follows the chain of extended boot records (EBRs) of the
// extended partition ext and returns its logical partitions in chain
// order, which is the order Windows and Linux number them (5, 6, …). Each
// EBR's first entry is a logical partition relative to that EBR; its second
// entry links to the next EBR, relative to the start of ext. Every start
// and size is checked against ext, and a chain that loops or runs longer
// than MaxLogical is an error naming the EBR's sector.
func ReadLogical(r io.ReaderAt, ext Entry) ([]Logical, error) {
	if !IsExtended(ext.Type) {
		return nil, fmt.Errorf("mbr: partition type 0x%02x is not an extended partition", ext.Type)
	}
	var out []Logical
	seen := map[uint32]bool{}
	sector := make([]byte, SectorSize)
	next := uint32(0) // relative to ext.Start
	for {
		if len(out) >= MaxLogical {
			return out, fmt.Errorf("mbr: more than %d logical partitions in the extended partition at sector %d", MaxLogical, ext.Start)
		}
		lba := ext.Start + next
		if seen[lba] {
			return out, fmt.Errorf("mbr: extended boot record at sector %d: the chain loops back to it", lba)
		}
		seen[lba] = true
		if _, err := r.ReadAt(sector, int64(lba)*SectorSize); err != nil {
			return out, fmt.Errorf("mbr: extended boot record at sector %d: %w", lba, err)
		}
		if sector[magicOffset] != 0x55 || sector[magicOffset+1] != 0xAA {
			return out, fmt.Errorf("mbr: extended boot record at sector %d does not end in 55 AA", lba)
		}
		first, link := parseEntry(sector[tableOffset:]), parseEntry(sector[tableOffset+entrySize:])
		if !first.Empty() {
			start := uint64(lba) + uint64(first.Start)
			if first.Start == 0 || first.Sectors == 0 || start+uint64(first.Sectors) > ext.End() {
				return out, fmt.Errorf("mbr: extended boot record at sector %d: logical partition at %d+%d sectors lies outside the extended partition (sectors %d..%d)",
					lba, first.Start, first.Sectors, ext.Start, ext.End()-1)
			}
			first.Start = uint32(start)
			out = append(out, Logical{Entry: first, EBR: lba})
		}
		if link.Empty() {
			return out, nil
		}
		if !IsExtended(link.Type) {
			return out, fmt.Errorf("mbr: extended boot record at sector %d: second entry has type 0x%02x, want a link (0x05 or 0x0f)", lba, link.Type)
		}
		if uint64(ext.Start)+uint64(link.Start) >= ext.End() {
			return out, fmt.Errorf("mbr: extended boot record at sector %d: next record at %d lies outside the extended partition", lba, link.Start)
		}
		next = link.Start
	}
}

func parseEntry(b []byte) Entry {
	e := Entry{
		Active:  b[0] == 0x80,
		Type:    b[4],
		Start:   binary.LittleEndian.Uint32(b[8:]),
		Sectors: binary.LittleEndian.Uint32(b[12:]),
	}
	copy(e.StartCHS[:], b[1:4])
	copy(e.EndCHS[:], b[5:8])
	return e
}
