package vhd

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// countingDevice counts the reads that reach a parent.
type countingDevice struct {
	blockdev.Device
	reads int
}

func (c *countingDevice) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.Device.ReadAt(p, off)
}

// TestReadModel reads a dynamic disk with random allocated blocks and a
// differencing disk over it, some of whose blocks are unallocated in runs
// and some partly present, and compares random reads with a flat model.
// A read over a run of unallocated blocks must reach the parent once.
func TestReadModel(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	size, _ := RoundSize(24 << 20)
	pp := filepath.Join(dir, "base.vhd")
	p, err := Create(pp, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for range 12 {
		off := rng.Int64N(size-1) / 512 * 512
		b := want[off : off+min(size-off, 1+rng.Int64N(3<<20))]
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if _, err := p.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	parent := bytes.Clone(want)
	// Present sectors in blocks 1, 2, 6 and the last one; blocks 0, 3-5
	// and 7-10 are unallocated in the child.
	var present []int64
	blocks := (size + DefaultBlockSize - 1) / DefaultBlockSize
	for _, bi := range []int64{1, 2, 6, blocks - 1} {
		for range 8 {
			s := (bi*DefaultBlockSize + rng.Int64N(DefaultBlockSize)) / 512
			for n := rng.Int64N(20); n >= 0 && s*512 < size; n, s = n-1, s+1 {
				present = append(present, s)
				copy(want[s*512:(s+1)*512], bytes.Repeat([]byte{0xc5}, 512))
			}
		}
	}
	makeDiff(t, filepath.Join(dir, "child.vhd"), p, "base.vhd", present, 0xc5)
	p.Close()

	for _, tc := range []struct {
		name string
		path string
		want []byte
	}{{"dynamic", pp, parent}, {"differencing", filepath.Join(dir, "child.vhd"), want}} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(tc.path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := readAll(t, d); !bytes.Equal(got, tc.want) {
				t.Fatal("full read differs")
			}
			for range 300 {
				n := 1 + rng.Int64N(min(size, 9<<20))
				off := rng.Int64N(size-n+1) / 512 * 512
				n = min(n, size-off)
				got := make([]byte, n)
				if _, err := d.ReadAt(got, off); err != nil {
					t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
				}
				if !bytes.Equal(got, tc.want[off:off+n]) {
					t.Fatalf("ReadAt(%d bytes at %d) differs", n, off)
				}
			}
		})
	}

	c, err := Open(filepath.Join(dir, "child.vhd"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cd := &countingDevice{Device: c.parent}
	c.parent = cd
	got := make([]byte, 3*DefaultBlockSize+1024) // the last sector of block 2, blocks 3 to 5, the first sector of 6
	off := int64(3*DefaultBlockSize - 512)
	if _, err := c.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[off:off+int64(len(got))]) {
		t.Fatal("read across unallocated blocks differs")
	}
	// Block 2 ends with at most one absent run before block 3, blocks 3-5
	// are one run; block 6 starts with at most one absent run.
	if cd.reads > 3 {
		t.Errorf("read over 3 unallocated blocks reached the parent %d times, want at most 3", cd.reads)
	}
	c.parent = cd.Device
}
