package vmdk

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// grainState is what a delta grain holds in the reference model.
type grainState uint8

const (
	grainParent grainState = iota // unallocated (GTE 0): read from the parent
	grainData                     // allocated in the delta
	grainZero                     // zeroed (GTE 1 with FlagZeroedGTE)
)

const testGrain = DefaultGrainSectors * sectorSize

// makeParent creates a monolithicSparse disk at path of size bytes in
// which about half the grains hold random data: some written in multi-grain
// runs (contiguous in the file), the others one by one in random order (not
// contiguous). It returns the expected content.
func makeParent(t testing.TB, path string, size int64, rng *rand.Rand) []byte {
	t.Helper()
	d, err := Create(path, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	grains := (size + testGrain - 1) / testGrain
	var single []int64
	for g := int64(0); g < grains; {
		switch rng.IntN(4) {
		case 0: // a run of 2 to 20 grains in one write
			n := min(grains-g, 2+rng.Int64N(19))
			end := min(size, (g+n)*testGrain)
			fillRandom(rng, want[g*testGrain:end])
			if _, err := d.WriteAt(want[g*testGrain:end], g*testGrain); err != nil {
				t.Fatal(err)
			}
			g += n + 1
		case 1:
			single = append(single, g)
			g++
		default:
			g++
		}
	}
	rng.Shuffle(len(single), func(i, j int) { single[i], single[j] = single[j], single[i] })
	for _, g := range single {
		b := want[g*testGrain : min(size, (g+1)*testGrain)]
		fillRandom(rng, b)
		if _, err := d.WriteAt(b, g*testGrain); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// makeDelta creates a delta at path over parentPath (content parent) and
// writes its grain tables by hand: grain g follows states[g]. Data grains
// get random bytes and are appended in runs of random length in random
// order, so that some neighbours are contiguous in the file and some are
// not. The grain tables listed in noGT get a zero directory entry, so every
// grain under them reads from the parent. It returns the expected content.
func makeDelta(t testing.TB, path, parentPath string, parent []byte, states []grainState, noGT []int64, rng *rand.Rand) []byte {
	t.Helper()
	d, err := CreateDelta(path, parentPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(h.Capacity) * sectorSize
	per := int64(h.NumGTEsPerGT)
	dirs := []int64{int64(h.GDOffset) * sectorSize, int64(h.RGDOffset) * sectorSize}
	setGTE := func(g int64, e uint32) {
		for _, gd := range dirs {
			gt := int64(binary.LittleEndian.Uint32(b[gd+4*(g/per):])) * sectorSize
			binary.LittleEndian.PutUint32(b[gt+4*(g%per):], e)
		}
	}
	want := bytes.Clone(parent[:size])
	var runs [][2]int64 // first grain, count
	for g := int64(0); g < int64(len(states)); g++ {
		switch states[g] {
		case grainZero:
			setGTE(g, 1)
			clear(want[g*testGrain : min(size, (g+1)*testGrain)])
		case grainData:
			if n := len(runs); n > 0 && runs[n-1][0]+runs[n-1][1] == g && rng.IntN(4) != 0 {
				runs[n-1][1]++
			} else {
				runs = append(runs, [2]int64{g, 1})
			}
		}
	}
	rng.Shuffle(len(runs), func(i, j int) { runs[i], runs[j] = runs[j], runs[i] })
	for _, r := range runs {
		at := int64(len(b))
		data := make([]byte, r[1]*testGrain)
		fillRandom(rng, data)
		b = append(b, data...)
		for k := int64(0); k < r[1]; k++ {
			g := r[0] + k
			setGTE(g, uint32(at/sectorSize+k*DefaultGrainSectors))
			copy(want[g*testGrain:min(size, (g+1)*testGrain)], data[k*testGrain:])
		}
	}
	binary.LittleEndian.PutUint32(b[8:], h.Flags|FlagZeroedGTE)
	for _, i := range noGT {
		for _, gd := range dirs {
			binary.LittleEndian.PutUint32(b[gd+4*i:], 0)
		}
		copy(want[i*per*testGrain:min(size, (i+1)*per*testGrain)], parent[i*per*testGrain:])
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return want
}

// randomStates returns n grain states: runs of each state of random
// length, so that reads meet long runs as well as single grains.
func randomStates(rng *rand.Rand, n int64, weights [3]int) []grainState {
	states := make([]grainState, 0, n)
	total := weights[0] + weights[1] + weights[2]
	for int64(len(states)) < n {
		x := rng.IntN(total)
		s := grainParent
		switch {
		case x >= weights[0]+weights[1]:
			s = grainZero
		case x >= weights[0]:
			s = grainData
		}
		for k := 1 + rng.IntN(24); k > 0 && int64(len(states)) < n; k-- {
			states = append(states, s)
		}
	}
	return states
}

// checkReads compares reads of d against want: the whole disk, reads at
// and around grain and grain-table boundaries and the end, and random
// (offset, length) pairs.
func checkReads(t *testing.T, d blockdev.Device, want []byte, rng *rand.Rand) {
	t.Helper()
	size := int64(len(want))
	if d.Size() != size {
		t.Fatalf("size %d, want %d", d.Size(), size)
	}
	type read struct{ off, n int64 }
	reads := []read{{0, size}, {0, 1}, {size - 1, 1}, {size - 512, 512}, {size - testGrain - 100, testGrain + 100}}
	gt := int64(GTEsPerGT) * testGrain
	for _, at := range []int64{testGrain, 5 * testGrain, gt, 2 * gt} {
		for _, n := range []int64{1, 512, testGrain, 3*testGrain + 7, 1 << 20} {
			for _, off := range []int64{at - n, at - n/2, at - 1, at} {
				if off >= 0 && off+n <= size {
					reads = append(reads, read{off, n})
				}
			}
		}
	}
	for range 250 {
		var n int64
		switch rng.IntN(3) {
		case 0:
			n = 1 + rng.Int64N(2*testGrain)
		case 1:
			n = 1 + rng.Int64N(2<<20)
		default:
			n = (1 + rng.Int64N(32)) * testGrain // grain multiples, often unaligned
		}
		n = min(n, size)
		off := rng.Int64N(size - n + 1)
		if rng.IntN(2) == 0 {
			off = off / sectorSize * sectorSize
		}
		reads = append(reads, read{off, n})
	}
	for _, r := range reads {
		got := make([]byte, r.n)
		if _, err := d.ReadAt(got, r.off); err != nil {
			t.Fatalf("ReadAt(%d bytes at %d): %v", r.n, r.off, err)
		}
		if w := want[r.off : r.off+r.n]; !bytes.Equal(got, w) {
			i := 0
			for got[i] == w[i] {
				i++
			}
			t.Fatalf("ReadAt(%d bytes at %d): first difference at disk offset %d (grain %d)", r.n, r.off, r.off+int64(i), (r.off+int64(i))/testGrain)
		}
	}
}

// TestSparseReadModel reads sparse disks and deltas whose grains are a
// random mix of unallocated, zeroed and allocated (contiguous in the file
// or not) and compares every read with a flat model of the content.
func TestSparseReadModel(t *testing.T) {
	// Two grain tables and a bit, with a partial last grain.
	size := int64(GTEsPerGT)*testGrain + 8<<20 + 3*sectorSize
	grains := (size + testGrain - 1) / testGrain
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(41, 7))
	parentPath := filepath.Join(dir, "parent.vmdk")
	parent := makeParent(t, parentPath, size, rng)

	tests := []struct {
		name     string
		weights  [3]int // parent, data, zero
		noGT     []int64
		noParent bool // read the delta with NewReader: unallocated grains are zeros
	}{
		{name: "mixed", weights: [3]int{4, 4, 2}},
		{name: "mostly parent", weights: [3]int{8, 1, 1}},
		{name: "mostly data", weights: [3]int{1, 8, 1}},
		{name: "all parent", weights: [3]int{1, 0, 0}},
		{name: "all data", weights: [3]int{0, 1, 0}},
		{name: "all zero", weights: [3]int{0, 0, 1}},
		{name: "missing grain table", weights: [3]int{4, 4, 2}, noGT: []int64{1}},
		{name: "no parent", weights: [3]int{4, 4, 2}, noParent: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			path := filepath.Join(dir, fmt.Sprintf("delta%d.vmdk", i))
			states := randomStates(rng, grains, tt.weights)
			p := parent
			if tt.noParent {
				p = make([]byte, size)
			}
			want := makeDelta(t, path, parentPath, p, states, tt.noGT, rng)
			var d blockdev.Device
			if tt.noParent {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if d, err = NewReader(bytes.NewReader(b), int64(len(b))); err != nil {
					t.Fatal(err)
				}
			} else {
				disk, err := Open(path, false)
				if err != nil {
					t.Fatal(err)
				}
				defer disk.Close()
				d = disk
			}
			checkReads(t, d, want, rng)
		})
	}
	t.Run("parent itself", func(t *testing.T) {
		d, err := Open(parentPath, false)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		checkReads(t, d, parent, rand.New(rand.NewPCG(5, 5)))
	})
	t.Run("streamOptimized", func(t *testing.T) {
		// Compressed grains keep their one-grain-at-a-time path; absent
		// grains of the stream form runs.
		want := bytes.Clone(parent)
		var buf bytes.Buffer
		sw, err := NewStreamWriter(&buf, size, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := NewGrainCompressor(flate.BestSpeed)
		for g := range sw.Grains() {
			grain := make([]byte, testGrain)
			copy(grain, want[g*testGrain:])
			if g%7 == 3 || bytes.Count(grain, []byte{0}) == len(grain) {
				clear(want[g*testGrain : min(size, (g+1)*testGrain)])
				continue
			}
			z, err := c.Compress(grain)
			if err != nil {
				t.Fatal(err)
			}
			if err := sw.WriteGrain(g, z); err != nil {
				t.Fatal(err)
			}
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		d, err := NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		checkReads(t, d, want, rand.New(rand.NewPCG(6, 6)))
	})
}

// countingReaderAt counts the ReadAt calls that reach a file.
type countingReaderAt struct {
	r     *os.File
	calls int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	return c.r.ReadAt(p, off)
}

// TestSparseReadRuns checks that runs of grains take one read each: a
// 1 MiB read of 16 grains allocated back to back is one file read, and a
// 1 MiB read through an empty delta one parent read.
func TestSparseReadRuns(t *testing.T) {
	dir := t.TempDir()
	size := int64(4 << 20)
	path := filepath.Join(dir, "base.vmdk")
	parent := makeSequential(t, path, size)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	cr := &countingReaderAt{r: f}
	d, err := NewReader(cr, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1<<20)
	d.ReadAt(got, 1<<20) // loads the grain table
	cr.calls = 0
	if _, err := d.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if cr.calls != 1 || !bytes.Equal(got, parent[1<<20:2<<20]) {
		t.Errorf("1 MiB read of contiguous grains: %d file reads (want 1), content equal %v", cr.calls, bytes.Equal(got, parent[1<<20:2<<20]))
	}

	delta := filepath.Join(dir, "delta.vmdk")
	c, err := CreateDelta(delta, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sp := c.exts[0].sp
	calls := 0
	fb := c.fallback(0)
	for _, off := range []int64{1 << 20, 1<<20 + 4096} {
		calls = 0
		if err := sp.readAt(got, off, func(p []byte, off int64) error { calls++; return fb(p, off) }); err != nil {
			t.Fatal(err)
		}
		if calls != 1 || !bytes.Equal(got, parent[off:off+1<<20]) {
			t.Errorf("1 MiB read at %d through an empty delta: %d parent reads (want 1)", off, calls)
		}
	}
}

// makeSequential creates a monolithicSparse disk at path of size bytes full
// of random data written front to back, so that its grains lie back to back
// in the file (as `xpboot image convert --to vmdk` lays them out).
func makeSequential(t testing.TB, path string, size int64) []byte {
	t.Helper()
	d, err := Create(path, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	fillRandom(rand.New(rand.NewPCG(1, 2)), want)
	if _, err := d.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// BenchmarkSparseSequentialRead reads 64 MiB in 1 MiB requests, the
// pattern of `iscsi-perf -m 16 -b 2048` through `xpboot serve`: from a
// sparse disk whose grains lie back to back (base), through an empty delta
// over it (overlay, every grain from the parent), through a delta holding
// every other run of 8 grains, and from an unallocated disk with no parent
// (zeros).
func BenchmarkSparseSequentialRead(b *testing.B) {
	const size = 64 << 20
	dir := b.TempDir()
	base := filepath.Join(dir, "base.vmdk")
	parent := makeSequential(b, base, size)
	empty := filepath.Join(dir, "empty.vmdk")
	if d, err := CreateDelta(empty, base, nil); err != nil {
		b.Fatal(err)
	} else {
		d.Close()
	}
	half := filepath.Join(dir, "half.vmdk")
	if d, err := CreateDelta(half, base, nil); err != nil {
		b.Fatal(err)
	} else {
		for off := int64(0); off < size; off += 16 * testGrain {
			d.WriteAt(parent[off:off+8*testGrain], off)
		}
		d.Close()
	}
	zero := filepath.Join(dir, "zero.vmdk")
	if d, err := Create(zero, size, nil); err != nil {
		b.Fatal(err)
	} else {
		d.Close()
	}
	for _, bc := range []struct{ name, path string }{
		{"base", base}, {"overlay", empty}, {"half", half}, {"zero", zero},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, err := Open(bc.path, false)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(size)
			for b.Loop() {
				for off := int64(0); off < size; off += int64(len(buf)) {
					if _, err := d.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
