package ntfs

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// naiveAllocation is allocation's specification: one cluster at a time.
func naiveAllocation(bm []byte, clusters, csize, size int64) []Range {
	keep := make([]bool, 0)
	unit := csize
	n := (size + unit - 1) / unit
	keep = make([]bool, n)
	for c := int64(0); c < clusters; c++ {
		if c/8 < int64(len(bm)) && bm[c/8]&(1<<(c%8)) != 0 {
			keep[c] = true
		}
	}
	for c := int64(0); c*unit < max(bootArea, csize) && c < n; c++ {
		keep[c] = true
	}
	for c := clusters; c < n; c++ {
		keep[c] = true
	}
	var out []Range
	for c := int64(0); c < n; c++ {
		if !keep[c] {
			continue
		}
		off, end := c*unit, min((c+1)*unit, size)
		if k := len(out); k > 0 && out[k-1].Off+out[k-1].Len == off {
			out[k-1].Len = end - out[k-1].Off
		} else {
			out = append(out, Range{off, end - off})
		}
	}
	return out
}

// TestAllocationWalk compares the word-at-a-time bitmap walk with the
// naive one on random bitmaps of runs, odd cluster counts and bitmaps
// shorter than the volume.
func TestAllocationWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	for i := range 300 {
		clusters := int64(3 + rng.IntN(5000))
		bm := make([]byte, (clusters+7)/8+int64(rng.IntN(16)))
		if i%7 == 0 {
			bm = bm[:rng.IntN(len(bm))]
		}
		for c := int64(0); c < int64(len(bm))*8; {
			run := int64(1 + rng.IntN([]int{3, 70, 300}[i%3]))
			if rng.IntN(2) == 0 {
				for j := c; j < min(c+run, int64(len(bm))*8); j++ {
					bm[j/8] |= 1 << (j % 8)
				}
			}
			c += run
		}
		csize := int64(512 << rng.IntN(4))
		size := clusters*csize + int64(rng.IntN(3))*512
		got := allocation(bm, clusters, csize, size)
		want := naiveAllocation(bm, clusters, csize, size)
		if len(got.Ranges) != len(want) {
			t.Fatalf("case %d (%d clusters of %d, bitmap %d bytes): %d ranges, want %d\n got %v\nwant %v", i, clusters, csize, len(bm), len(got.Ranges), len(want), got.Ranges, want)
		}
		for j := range want {
			if got.Ranges[j] != want[j] {
				t.Fatalf("case %d: range %d is %+v, want %+v", i, j, got.Ranges[j], want[j])
			}
		}
	}
}

// TestAllocatedRangesSmall reads the allocation of a volume made by mkntfs:
// every cluster $Bitmap sets, the boot area and the backup boot sector in
// the ranges; the count matches the bitmap.
func TestAllocatedRangesSmall(t *testing.T) {
	img := smallVolume(t)
	size := int64(len(img))
	a, err := AllocatedRanges(bytes.NewReader(img), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	v, err := loadVol(&memDev{b: img}, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	for c := range v.clusters {
		if bit(v.bitmap, c) {
			used++
		}
	}
	if a.Used != used || a.Clusters != v.clusters || a.ClusterSize != v.csize {
		t.Errorf("Used %d of %d clusters of %d bytes, want %d of %d of %d", a.Used, a.Clusters, a.ClusterSize, used, v.clusters, v.csize)
	}
	want := naiveAllocation(v.bitmap, v.clusters, v.csize, size)
	if len(a.Ranges) != len(want) {
		t.Fatalf("ranges %v, want %v", a.Ranges, want)
	}
	last := a.Ranges[len(a.Ranges)-1]
	if last.Off+last.Len != size {
		t.Errorf("the backup boot sector at the end (%d) is not kept: last range %+v", size-512, last)
	}
	if free := size - sumRanges(a.Ranges); free <= 0 {
		t.Errorf("nothing is free on a volume with %d of %d clusters used", used, v.clusters)
	}
}

func sumRanges(rs []Range) (n int64) {
	for _, r := range rs {
		n += r.Len
	}
	return n
}

// TestAllocatedRangesUnclean: a volume marked dirty is refused with
// ErrUnclean, which makes a capture copy it whole.
func TestAllocatedRangesUnclean(t *testing.T) {
	img := smallVolume(t)
	dev := &memDev{b: img}
	v, err := loadVol(dev, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.record(recVolume)
	if err != nil {
		t.Fatal(err)
	}
	as, err := r.attrs()
	if err != nil {
		t.Fatal(err)
	}
	vi := find(as, atVolumeInformation, "")
	put16(r.b, vi.valOff+10, u16(r.b, vi.valOff+10)|volDirty)
	off, err := v.locate(v.mftRuns, recVolume*int64(v.recSize), int64(v.recSize), recVolume)
	if err != nil {
		t.Fatal(err)
	}
	copy(img[off:], fixup(r.b))
	_, err = AllocatedRanges(bytes.NewReader(img), 0, int64(len(img)))
	if !errors.Is(err, ErrUnclean) {
		t.Fatalf("dirty volume: %v, want ErrUnclean", err)
	}
}

// FuzzAllocatedRanges patches the small volume anywhere: errors are fine;
// panics, hangs and ranges outside the volume are not.
func FuzzAllocatedRanges(f *testing.F) {
	base := smallVolume(f)
	f.Add(uint32(0), []byte{})
	f.Add(uint32(0x28), []byte{0xFF, 0xFF, 0xFF, 0x7F})
	f.Add(uint32(0x4000), []byte{0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, at uint32, patch []byte) {
		img := bytes.Clone(base)
		if int(at) < len(img) {
			copy(img[at:], patch)
		}
		size := int64(len(img))
		a, err := AllocatedRanges(bytes.NewReader(img), 0, size)
		if err != nil {
			return
		}
		end := int64(-1)
		for i, r := range a.Ranges {
			if r.Len <= 0 || r.Off <= end || r.Off+r.Len > size {
				t.Fatalf("range %d %+v after %d in a %d-byte volume", i, r, end, size)
			}
			end = r.Off + r.Len
		}
	})
}

// BenchmarkAllocation walks the $Bitmap of a 4 GiB volume with 4 KiB
// clusters (1 Mi clusters, 128 KiB of bitmap), 25 % used in runs of 1 to
// 256 clusters, into ranges.
func BenchmarkAllocation(b *testing.B) {
	const clusters = 1 << 20
	bm := make([]byte, clusters/8)
	rng := rand.New(rand.NewPCG(4, 4))
	for c := 0; c < clusters; {
		run := 1 + rng.IntN(256)
		if rng.IntN(4) == 0 {
			for j := c; j < min(c+run, clusters); j++ {
				bm[j/8] |= 1 << (j % 8)
			}
		}
		c += run
	}
	b.SetBytes(int64(len(bm)))
	for range b.N {
		allocation(bm, clusters, 4096, clusters*4096+512)
	}
}

// TestAllocatedRangesBadClusters marks a free cluster bad the way chkdsk
// does ($Bitmap bit set, the cluster mapped by $BadClus's $Bad stream): it
// is counted in Bad and left out of the ranges.
func TestAllocatedRangesBadClusters(t *testing.T) {
	img := smallVolume(t)
	dev := &memDev{b: img}
	v, err := loadVol(dev, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	bad := v.clusters - 5
	for bit(v.bitmap, bad) {
		bad--
	}
	boff, err := v.locate(v.bmRuns, bad/8, 1, recBitmap)
	if err != nil {
		t.Fatal(err)
	}
	img[boff] |= 1 << (bad % 8)
	r, err := v.record(8)
	if err != nil {
		t.Fatal(err)
	}
	as, err := r.attrs()
	if err != nil {
		t.Fatal(err)
	}
	d := find(as, atData, "$Bad")
	if d == nil || !d.nonRes {
		t.Fatal("no $Bad stream")
	}
	runs := encodeRuns([]run{{lcn: -1, n: bad}, {lcn: bad, n: 1}, {lcn: -1, n: v.clusters - bad - 1}})
	if !r.resizeAttr(d.off, align8(d.runsOff-d.off+len(runs)+1)) {
		t.Fatal("no room in $BadClus")
	}
	copy(r.b[d.runsOff:], runs)
	roff, err := v.locate(v.mftRuns, 8*int64(v.recSize), int64(v.recSize), 8)
	if err != nil {
		t.Fatal(err)
	}
	copy(img[roff:], fixup(r.b))

	a, err := AllocatedRanges(bytes.NewReader(img), 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Bad != 1 {
		t.Errorf("Bad = %d, want 1", a.Bad)
	}
	for _, x := range a.Ranges {
		if bad*v.csize < x.Off+x.Len && x.Off < (bad+1)*v.csize {
			t.Fatalf("bad cluster %d is in range %+v", bad, x)
		}
	}
}
