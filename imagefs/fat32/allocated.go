package fat32

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Range is a run of bytes of a volume, relative to its first byte.
type Range struct {
	Off, Len int64
}

// Allocation says which parts of a FAT32 volume hold anything a reader of
// the volume can reach.
type Allocation struct {
	// Ranges are ascending, merged and inside [0, size): the reserved
	// area (boot sector, FSInfo, backup boot sector, XP's second boot
	// code sector), every FAT copy, each data cluster whose FAT entry is
	// neither free nor bad, and whatever lies between the end of the last
	// cluster and the end of the partition (never read by FAT drivers,
	// but not known to be unused either).
	Ranges []Range
	// ClusterSize is the cluster size in bytes.
	ClusterSize int64
	// Clusters is the number of data clusters; Used of them are
	// allocated, Bad are marked bad (and left out of Ranges: a bad
	// cluster holds nothing a file refers to, and reading it from a
	// failing disk only errors).
	Clusters, Used, Bad int64
}

// fatReadChunk is how much of the FAT AllocatedRanges reads at once: the
// FAT of a 2 TiB volume is up to 2 GiB, which is never held in memory.
const fatReadChunk = 1 << 20

// AllocatedRanges reads the boot sector and the active FAT of the FAT32
// volume occupying [off, off+size) of r and returns the parts of the
// volume in use; see Allocation. It reads only those two structures, so it
// is cheap next to copying the volume; damage gives a *FormatError naming
// the byte.
func AllocatedRanges(r io.ReaderAt, off, size int64) (*Allocation, error) {
	boot := make([]byte, 512)
	if _, err := r.ReadAt(boot, off); err != nil {
		return nil, fmt.Errorf("fat32: read boot sector: %w", err)
	}
	bs, err := ParseBootSector(boot, size)
	if err != nil {
		return nil, err
	}
	a := &Allocation{ClusterSize: bs.ClusterSize(), Clusters: int64(bs.Clusters())}
	data := bs.dataStart()
	// Reserved area and every FAT copy: the sectors before cluster 2.
	a.Ranges = append(a.Ranges, Range{0, data})
	add := func(o, n int64) {
		if l := &a.Ranges[len(a.Ranges)-1]; l.Off+l.Len == o {
			l.Len += n
			return
		}
		a.Ranges = append(a.Ranges, Range{o, n})
	}

	n := a.Clusters + 2 // FAT entries 0 and 1 are reserved
	start := bs.fatStart(bs.activeFAT())
	buf := make([]byte, min(fatReadChunk, n*4))
	runStart := int64(-1) // first cluster of the current run of used clusters
	flush := func(end int64) {
		if runStart >= 0 {
			add(data+(runStart-2)*a.ClusterSize, (end-runStart)*a.ClusterSize)
			runStart = -1
		}
	}
	for first := int64(0); first < n; first += int64(len(buf)) / 4 {
		b := buf[:min(int64(len(buf)), (n-first)*4)]
		if _, err := r.ReadAt(b, off+start+first*4); err != nil {
			return nil, &FormatError{start + first*4, fmt.Sprintf("read FAT: %v", err)}
		}
		c := first
		for i := 0; i < len(b); i, c = i+4, c+1 {
			if c < 2 {
				continue
			}
			v := binary.LittleEndian.Uint32(b[i:]) & fatEntryMask
			switch {
			case v == 0:
				flush(c)
			case v == badCluster:
				a.Bad++
				flush(c)
			default:
				a.Used++
				if runStart < 0 {
					runStart = c
				}
			}
		}
	}
	flush(n)
	// The sectors after the last whole cluster, to the partition's end.
	if end := data + a.Clusters*a.ClusterSize; end < size {
		add(end, size-end)
	}
	return a, nil
}
