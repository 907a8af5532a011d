package fat32

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// checkRanges asserts the invariants of an Allocation of a size-byte
// volume: ascending, disjoint, non-empty ranges inside it.
func checkRanges(t *testing.T, a *Allocation, size int64) {
	t.Helper()
	end := int64(-1)
	for i, r := range a.Ranges {
		if r.Len <= 0 || r.Off <= end || r.Off+r.Len > size {
			t.Fatalf("range %d %+v after end %d in a %d-byte volume", i, r, end, size)
		}
		end = r.Off + r.Len
	}
	if a.Used+a.Bad > a.Clusters {
		t.Fatalf("used %d + bad %d of %d clusters", a.Used, a.Bad, a.Clusters)
	}
}

// covered reports whether [off, off+n) lies inside one range.
func covered(a *Allocation, off, n int64) bool {
	for _, r := range a.Ranges {
		if off >= r.Off && off+n <= r.Off+r.Len {
			return true
		}
	}
	return false
}

// overlaps reports whether [off, off+n) meets any range.
func overlaps(a *Allocation, off, n int64) bool {
	for _, r := range a.Ranges {
		if off < r.Off+r.Len && r.Off < off+n {
			return true
		}
	}
	return false
}

// TestAllocatedRanges writes files, removes some (leaving their old
// clusters free) and marks a cluster bad: every cluster of every remaining
// file, the reserved area and both FATs must be in the ranges, every free
// or bad cluster outside them.
func TestAllocatedRanges(t *testing.T) {
	const size = 64 << 20
	f, fs := newVolume(t, size)
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, n := range []int{100_000, 3 << 20, 1, 70_000, 5 << 20} {
		name := "/F" + strings.Repeat("X", i) + ".BIN"
		if err := fs.WriteFile(name, bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, n)), int64(n), mt); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Remove("/FX.BIN"); err != nil {
		t.Fatal(err)
	}
	// A bad cluster among the free ones.
	bad := uint32(len(fs.fat) - 3)
	fs.setEntry(bad, badCluster)
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	a, err := AllocatedRanges(f, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	checkRanges(t, a, size)
	if a.Bad != 1 {
		t.Errorf("bad clusters %d, want 1", a.Bad)
	}
	if !covered(a, 0, fs.bs.dataStart()) {
		t.Errorf("reserved area and FATs (%d bytes) not in %v", fs.bs.dataStart(), a.Ranges)
	}
	used := int64(0)
	for c := uint32(2); c < uint32(len(fs.fat)); c++ {
		off := fs.clusterOffset(c)
		switch e := fs.entry(c); {
		case e == 0 || e == badCluster:
			if overlaps(a, off, fs.csize) {
				t.Fatalf("free or bad cluster %d (entry 0x%x) is in the ranges", c, e)
			}
		default:
			used++
			if !covered(a, off, fs.csize) {
				t.Fatalf("cluster %d (entry 0x%x) is not in the ranges", c, e)
			}
		}
	}
	if a.Used != used {
		t.Errorf("Used %d, want %d", a.Used, used)
	}
	if tail := fs.bs.dataStart() + a.Clusters*a.ClusterSize; tail < size && !covered(a, tail, size-tail) {
		t.Errorf("tail after the last cluster at %d not kept", tail)
	}
}

// TestAllocatedRangesErrors: a volume that is not FAT32 or whose FAT
// cannot be read gives an error, never ranges.
func TestAllocatedRangesErrors(t *testing.T) {
	f, _ := newVolume(t, 40<<20)
	if _, err := AllocatedRanges(f, 0, 1<<20); err == nil {
		t.Error("a partition smaller than the file system: no error")
	}
	if _, err := AllocatedRanges(&sparseDev{size: 1 << 20}, 0, 1<<20); err == nil {
		t.Error("an all-zero volume: no error")
	}
	short := &sparseDev{size: 600}
	b := make([]byte, 512)
	f.ReadAt(b, 0)
	short.meta = b
	if _, err := AllocatedRanges(short, 0, 40<<20); err == nil || !strings.Contains(err.Error(), "FAT") {
		t.Errorf("FAT past the end of the device: %v", err)
	}
}

// FuzzAllocatedRanges feeds arbitrary boot sectors and FATs: errors are
// fine; panics, hangs and ranges outside the volume are not.
func FuzzAllocatedRanges(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, meta []byte) {
		dev := &sparseDev{meta: meta, size: MinSize + 1<<20}
		a, err := AllocatedRanges(dev, 0, dev.size)
		if err != nil {
			return
		}
		checkRanges(t, a, dev.size)
	})
}
