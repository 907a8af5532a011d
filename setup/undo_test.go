package setup

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// TestUndoDevice: writes anywhere on a disk, some across protected and
// free ranges and some twice; restore puts back exactly the protected
// bytes (block-rounded) and leaves what was written to free blocks.
func TestUndoDevice(t *testing.T) {
	const size = 1 << 20
	p := filepath.Join(t.TempDir(), "disk")
	orig := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range orig {
		orig[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(p, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := blockdev.OpenRaw(p, true)
	if err != nil {
		t.Fatal(err)
	}
	// Protected: [0, 32K), [100K, 132K) given as two overlapping spans, and
	// the last block; the rest is "free".
	keep := []span{{size - 512, size}, {100 << 10, 120 << 10}, {0, 32 << 10}, {110 << 10, 132 << 10}, {5, 5}}
	d, err := newUndoDevice(raw, keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.keep) != 3 {
		t.Fatalf("merged spans %v", d.keep)
	}
	for _, tc := range []struct {
		off, end int64
		kept     bool
	}{{0, 1, true}, {32 << 10, 100 << 10, false}, {(32 << 10) - 1, 32 << 10, true}, {99 << 10, (100 << 10) + 1, true}, {132 << 10, size - 512, false}, {size - 1, size, true}} {
		if got := d.kept(tc.off, tc.end); got != tc.kept {
			t.Errorf("kept(%d, %d) = %v", tc.off, tc.end, got)
		}
	}
	written := append([]byte(nil), orig...)
	for i := 0; i < 200; i++ {
		off := rng.Int64N(size - 1)
		n := 1 + rng.Int64N(min(20000, size-off))
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if _, err := d.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(written[off:], b)
	}
	if _, err := d.WriteAt(make([]byte, 10), size-5); err == nil {
		t.Fatal("a write past the end was accepted")
	}
	if err := d.restore(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	if _, err := raw.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for b := int64(0); b < size/undoBlock; b++ {
		lo, hi := b*undoBlock, (b+1)*undoBlock
		want := written[lo:hi]
		if d.kept(lo, hi) {
			want = orig[lo:hi]
		}
		if !bytes.Equal(got[lo:hi], want) {
			t.Fatalf("block %d (protected %v) not as expected after restore", b, d.kept(lo, hi))
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
