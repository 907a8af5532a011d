package setup

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestBenchMedia writes XP-shaped installation media for
// bench/iso/stage.sh to $XPBOOT_BENCH_MEDIA: the test tree's setup files
// and loaders plus $XPBOOT_BENCH_FILES files (default 6,000) of
// $XPBOOT_BENCH_MB MB in all (default 600) in I386 and two
// subdirectories, sizes spread from 1 KB to 4 MB, as on an XP CD.
func TestBenchMedia(t *testing.T) {
	out := os.Getenv("XPBOOT_BENCH_MEDIA")
	if out == "" {
		t.Skip("writes the staging benchmark's media when XPBOOT_BENCH_MEDIA=DIR is set (bench/iso/stage.sh)")
	}
	files, mb := 6000, 600
	if v, err := strconv.Atoi(os.Getenv("XPBOOT_BENCH_FILES")); err == nil && v > 0 {
		files = v
	}
	if v, err := strconv.Atoi(os.Getenv("XPBOOT_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	root := writeMedia(t, nil)
	rng := rand.New(rand.NewPCG(11, 12))
	// Pareto-like sizes scaled to the total.
	sizes := make([]float64, files)
	var sum float64
	for i := range sizes {
		sizes[i] = 1 / (0.02 + rng.Float64())
		sum += sizes[i]
	}
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	dirs := []string{"I386", "I386/SYSTEM32", "I386/LANG"}
	for i, s := range sizes {
		n := int(s / sum * float64(mb) * 1e6)
		n = min(max(n, 1000), len(buf))
		name := filepath.Join(root, filepath.FromSlash(dirs[i%len(dirs)]), fmt.Sprintf("F%05d.SY_", i))
		off := rng.IntN(len(buf) - n + 1)
		if err := os.WriteFile(name, buf[off:off+n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root, out); err != nil {
		t.Fatalf("move %s to %s: %v (use a directory on the same file system as TMPDIR)", root, out, err)
	}
}
