package convert

import (
	"fmt"
	"sort"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/fsid"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
)

// How Options.SkipFree copied a partition (PartitionCapture.Method).
const (
	// MethodAllocated: only what the file system uses was read.
	MethodAllocated = "allocated"
	// MethodWhole: every byte was read (PartitionCapture.Fallback says
	// why).
	MethodWhole = "whole"
	// MethodContainer: an extended partition; its extended boot records
	// and the gaps between its logical partitions are copied, the logical
	// partitions are listed on their own.
	MethodContainer = "container"
)

// PartitionCapture reports how a capture (Options.SkipFree) copied one
// partition.
type PartitionCapture struct {
	Index  int    `json:"index"` // 1-4 primary, 5… logical, as Windows numbers them
	Type   string `json:"type"`  // partition type byte, "0x07"
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	FS     string `json:"fs"`     // fat32, ntfs, fat16, extended or unknown
	Method string `json:"method"` // allocated, whole or container
	// Fallback says why a partition was copied whole.
	Fallback string `json:"fallback,omitempty"`
	// UsedBytes is what the file system uses (clusters in use and its
	// metadata); the partition's size when copied whole.
	UsedBytes int64 `json:"used_bytes"`
	// BytesRead is what is read of the partition: the used bytes that
	// the source stores (holes of a sparse source are not read).
	BytesRead int64 `json:"bytes_read"`
	// BytesSkipped is the rest of the partition, written as holes.
	BytesSkipped int64 `json:"bytes_skipped"`
	// BadClusters counts clusters marked bad (FAT entries 0x0FFFFFF7,
	// NTFS $BadClus), which are not read.
	BadClusters int64 `json:"bad_clusters,omitempty"`
}

// span is a byte range of the disk.
type span struct{ off, end int64 }

// plan is what a capture reads of a disk: keep lists the ranges read,
// ascending and disjoint; everything else is written as zeros.
type plan struct {
	keep    []span
	parts   []PartitionCapture
	notices []string
}

// Partition file system names in PartitionCapture.FS.
const (
	fsFAT32    = "fat32"
	fsFAT16    = "fat16"
	fsNTFS     = "ntfs"
	fsExtended = "extended"
	fsUnknown  = "unknown"
)

// planCapture reads the partition table of dev and the allocation of every
// FAT32 and NTFS partition on it. The MBR, the gap before the first
// partition, extended boot records, space outside partitions, and every
// partition whose file system is unknown or cannot be read safely are
// kept whole; a partition table that cannot be read keeps the whole disk.
// Only what the file systems mark free is left out.
func planCapture(dev blockdev.Device) (*plan, error) {
	size := dev.Size()
	p := &plan{}
	whole := func(why string) *plan {
		p.keep = []span{{0, size}}
		p.notices = append(p.notices, why+": the whole disk is copied")
		return p
	}
	if size < mbr.SectorSize {
		return whole(fmt.Sprintf("the disk is %d bytes, too small for a partition table", size)), nil
	}
	sector := make([]byte, mbr.SectorSize)
	if _, err := dev.ReadAt(sector, 0); err != nil {
		return nil, fmt.Errorf("read MBR: %w", err)
	}
	m, err := mbr.Parse(sector, uint64(size/mbr.SectorSize))
	if err != nil {
		return whole(fmt.Sprintf("no usable MBR partition table (%v)", err)), nil
	}
	type part struct {
		PartitionCapture
		typ     byte
		logical bool
	}
	var parts []part
	for i, e := range m.Entries {
		if e.Empty() {
			continue
		}
		if e.Type == mbr.TypeGPT {
			return whole("the disk has a GPT partition table (protective MBR), which xpboot does not read"), nil
		}
		pc := PartitionCapture{Index: i + 1, Type: fmt.Sprintf("0x%02x", e.Type), Offset: int64(e.Start) * mbr.SectorSize, Size: int64(e.Sectors) * mbr.SectorSize}
		if pc.Offset+pc.Size > size {
			// mbr.Parse refuses these; kept as a guard.
			return whole(fmt.Sprintf("partition %d ends past the end of the disk", i+1)), nil
		}
		parts = append(parts, part{PartitionCapture: pc, typ: e.Type})
	}
	n := 5
	for i, e := range m.Entries {
		if e.Empty() || !mbr.IsExtended(e.Type) {
			continue
		}
		logical, err := mbr.ReadLogical(dev, e)
		if err != nil {
			// The logical partitions found before the break are read as
			// usual; the rest of the extended partition is copied whole.
			p.notices = append(p.notices, fmt.Sprintf("partition %d: %v: the extended partition past the break is copied whole", i+1, err))
		}
		for _, l := range logical {
			pc := PartitionCapture{Index: n, Type: fmt.Sprintf("0x%02x", l.Type), Offset: int64(l.Start) * mbr.SectorSize, Size: int64(l.Sectors) * mbr.SectorSize}
			parts = append(parts, part{PartitionCapture: pc, typ: l.Type, logical: true})
			n++
		}
	}

	var skip []span
	for i := range parts {
		pc := &parts[i].PartitionCapture
		if mbr.IsExtended(parts[i].typ) && !parts[i].logical {
			pc.FS, pc.Method, pc.UsedBytes = fsExtended, MethodContainer, pc.Size
			continue
		}
		// A partition that overlaps another (other than its extended
		// container) is copied whole: leaving out what one file system
		// calls free could drop what the other stores there.
		for j := range parts {
			q := parts[j].PartitionCapture
			if j == i || (mbr.IsExtended(parts[j].typ) && !parts[j].logical) {
				continue
			}
			if pc.Offset < q.Offset+q.Size && q.Offset < pc.Offset+pc.Size {
				pc.Fallback = fmt.Sprintf("overlaps partition %d", q.Index)
				break
			}
		}
		pc.FS = detectFS(dev, pc.Offset, pc.Size)
		if pc.Fallback == "" {
			var ranges []span
			var err error
			ranges, pc.BadClusters, err = allocatedSpans(dev, pc.FS, pc.Offset, pc.Size)
			switch {
			case err != nil:
				pc.Fallback = err.Error()
			case ranges == nil:
				pc.Fallback = fmt.Sprintf("file system %s is not one xpboot reads (FAT32, NTFS)", pc.FS)
			default:
				pc.Method = MethodAllocated
				prev := pc.Offset
				for _, r := range ranges {
					pc.UsedBytes += r.end - r.off
					if r.off > prev {
						skip = append(skip, span{prev, r.off})
					}
					prev = r.end
				}
				if end := pc.Offset + pc.Size; prev < end {
					skip = append(skip, span{prev, end})
				}
			}
		}
		if pc.Method == "" {
			pc.Method, pc.UsedBytes = MethodWhole, pc.Size
		}
	}
	for _, q := range parts {
		p.parts = append(p.parts, q.PartitionCapture)
	}
	// keep is the complement of skip; skip spans of different partitions
	// never overlap (overlapping partitions are kept whole).
	sort.Slice(skip, func(i, j int) bool { return skip[i].off < skip[j].off })
	pos := int64(0)
	for _, s := range skip {
		if s.off > pos {
			p.keep = append(p.keep, span{pos, s.off})
		}
		pos = max(pos, s.end)
	}
	if pos < size {
		p.keep = append(p.keep, span{pos, size})
	}
	return p, nil
}

// detectFS names the file system of a partition from its boot sector
// (fsid.Detect), in PartitionCapture.FS's names.
func detectFS(dev blockdev.Device, off, size int64) string {
	if size < fsid.SectorSize {
		return fsUnknown
	}
	boot := make([]byte, fsid.SectorSize)
	if _, err := dev.ReadAt(boot, off); err != nil {
		return fsUnknown
	}
	switch kind, _ := fsid.Detect(boot, size); kind {
	case fsid.FAT32:
		// A damaged FAT32 boot sector is named so too, and fat32's
		// error becomes the reason it is copied whole.
		return fsFAT32
	case fsid.FAT12, fsid.FAT16:
		return fsFAT16
	case fsid.NTFS:
		return fsNTFS
	}
	return fsUnknown
}

// allocatedSpans returns the disk ranges a file system at [off, off+size)
// uses, ascending and disjoint, or nil for a file system it does not read.
func allocatedSpans(dev blockdev.Device, fs string, off, size int64) ([]span, int64, error) {
	var out []span
	switch fs {
	case fsFAT32:
		a, err := fat32.AllocatedRanges(dev, off, size)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range a.Ranges {
			out = append(out, span{off + r.Off, off + r.Off + r.Len})
		}
		return out, a.Bad, nil
	case fsNTFS:
		a, err := ntfs.AllocatedRanges(dev, off, size)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range a.Ranges {
			out = append(out, span{off + r.Off, off + r.Off + r.Len})
		}
		return out, a.Bad, nil
	}
	return nil, 0, nil
}
