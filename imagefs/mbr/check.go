package mbr

import (
	"fmt"
	"io"
)

// Severities of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Finding is one problem CheckTable found. Offset is a byte offset on the
// disk (sector 0 is the MBR).
type Finding struct {
	Severity  string
	Structure string // "partition table" or "extended boot record"
	Offset    int64
	Message   string
}

// CheckTable reads sector 0 of a disk of diskSize bytes and reports what
// Parse would refuse and more, without stopping at the first problem:
// boot indicators other than 0x00 and 0x80, more than one active
// partition (none is fine: a data disk), an active flag on an extended partition, empty
// entries with sectors, entries starting at sector 0 or of no sectors,
// partitions past the end of the disk, overlapping partitions, and a chain
// of extended boot records that loops, leaves its extended partition or
// lacks a signature. It returns ErrNoTable when sector 0 holds no table.
func CheckTable(r io.ReaderAt, diskSize int64) ([]Finding, error) {
	sector := make([]byte, SectorSize)
	if _, err := r.ReadAt(sector, 0); err != nil {
		return nil, fmt.Errorf("mbr: read sector 0: %w", err)
	}
	if sector[magicOffset] != 0x55 || sector[magicOffset+1] != 0xAA {
		return nil, ErrNoTable
	}
	var out []Finding
	add := func(sev string, off int, format string, a ...any) {
		out = append(out, Finding{Severity: sev, Structure: "partition table", Offset: int64(off), Message: fmt.Sprintf(format, a...)})
	}
	disk := uint64(diskSize / SectorSize)
	var entries [4]Entry
	valid := [4]bool{}
	active := 0
	for i := range entries {
		off := tableOffset + i*entrySize
		e := parseEntry(sector[off:])
		entries[i] = e
		if b := sector[off]; b != 0 && b != 0x80 {
			add(SeverityError, off, "partition %d: boot indicator 0x%02x is neither 0x00 nor 0x80", i+1, b)
		}
		if e.Active {
			active++
			if IsExtended(e.Type) {
				add(SeverityError, off, "partition %d: an extended partition is marked active", i+1)
			}
		}
		if e.Type == TypeEmpty {
			if e.Sectors != 0 || e.Active {
				add(SeverityError, off, "partition %d: type 0 (empty) but active or with %d sectors", i+1, e.Sectors)
			}
			continue
		}
		if e.Type == TypeGPT {
			continue // a protective entry may cover more than the disk
		}
		if e.Sectors == 0 || e.Start == 0 {
			add(SeverityError, off+8, "partition %d (type 0x%02x): start sector %d, %d sectors", i+1, e.Type, e.Start, e.Sectors)
			continue
		}
		if e.End() > disk {
			add(SeverityError, off+8, "partition %d: sectors %d..%d lie past the end of the %d-sector disk", i+1, e.Start, e.End()-1, disk)
		}
		valid[i] = true
	}
	if active > 1 {
		add(SeverityError, tableOffset, "%d partitions are marked active; the MBR boot code refuses to boot", active)
	}
	for i := range entries {
		for j := i + 1; j < len(entries); j++ {
			a, b := entries[i], entries[j]
			if valid[i] && valid[j] && uint64(a.Start) < b.End() && uint64(b.Start) < a.End() {
				add(SeverityError, tableOffset+j*entrySize+8, "partitions %d (sectors %d..%d) and %d (sectors %d..%d) overlap", i+1, a.Start, a.End()-1, j+1, b.Start, b.End()-1)
			}
		}
	}
	for i, e := range entries {
		if !valid[i] || !IsExtended(e.Type) || e.End() > disk {
			continue
		}
		logical, err := ReadLogical(r, e)
		if err != nil {
			out = append(out, Finding{Severity: SeverityError, Structure: "extended boot record", Offset: int64(faultyEBR(r, e)) * SectorSize, Message: err.Error()})
		}
		for k := 1; k < len(logical); k++ {
			a, b := logical[k-1], logical[k]
			if uint64(b.Start) < a.End() && uint64(a.Start) < b.End() {
				out = append(out, Finding{Severity: SeverityError, Structure: "extended boot record", Offset: int64(b.EBR) * SectorSize,
					Message: fmt.Sprintf("logical partitions %d and %d overlap", k+4, k+5)})
			}
		}
	}
	return out, nil
}

// faultyEBR returns the sector of the extended boot record at which the
// chain of ext stops: the record without a signature, with a bad entry or
// link, or whose link leads back into the chain. ReadLogical's error
// names the sector it was reading, which for a loop is the record linked
// to, not the one holding the bad link.
func faultyEBR(r io.ReaderAt, ext Entry) uint32 {
	sector := make([]byte, SectorSize)
	seen := map[uint32]bool{}
	cur := ext.Start
	for range MaxLogical {
		seen[cur] = true
		if _, err := r.ReadAt(sector, int64(cur)*SectorSize); err != nil || sector[magicOffset] != 0x55 || sector[magicOffset+1] != 0xAA {
			return cur
		}
		first, link := parseEntry(sector[tableOffset:]), parseEntry(sector[tableOffset+entrySize:])
		if !first.Empty() && (first.Start == 0 || first.Sectors == 0 || uint64(cur)+uint64(first.Start)+uint64(first.Sectors) > ext.End()) {
			return cur
		}
		if link.Empty() || !IsExtended(link.Type) || uint64(ext.Start)+uint64(link.Start) >= ext.End() {
			return cur
		}
		next := ext.Start + link.Start
		if seen[next] {
			return cur
		}
		cur = next
	}
	return cur
}

// Entries decodes the four primary entries of sector 0 as stored, without
// the checks Parse applies, so that a damaged table can still be walked.
func Entries(sector []byte) [4]Entry {
	var out [4]Entry
	if len(sector) < SectorSize {
		return out
	}
	for i := range out {
		out[i] = parseEntry(sector[tableOffset+i*entrySize:])
	}
	return out
}
