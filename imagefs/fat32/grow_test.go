package fat32

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestGrowMkfsFAT grows a FAT32 volume mkfs.fat made as far as its FATs
// map, checks it with fsck.fat and mtools, and has a larger growth
// refused without a write.
func TestGrowMkfsFAT(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	mcopy := peertest.Need(t, "mcopy", "mtools")
	mtype := peertest.Need(t, "mtype", "mtools")
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol.img")
	const size = 300 << 20
	if err := os.WriteFile(vol, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol, size); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, mkfs, "-F", "32", "-s", "8", "-n", "GROWME", vol)
	src := filepath.Join(dir, "src.txt")
	data := bytes.Repeat([]byte("grown FAT32\r\n"), 10000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, mcopy, "-i", vol, src, "::/SRC.TXT")

	f, err := os.OpenFile(vol, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Far beyond the FAT: refused, nothing written.
	before, _ := os.ReadFile(vol)
	if _, err := PlanGrow(f, 0, 4*size); !errors.Is(err, ErrFATTooSmall) || !strings.Contains(err.Error(), "sectors per FAT") {
		t.Fatalf("4x growth: %v", err)
	}
	// mkfs.fat may leave a few sectors of the file unused: the same size
	// can grow by a cluster or two.
	g, err := PlanGrow(f, 0, size)
	if err != nil || g.NewSectors > size/512 {
		t.Fatalf("same size: %v (%d sectors)", err, g.NewSectors)
	}
	max := int64(g.MaxSectors) * 512
	if max <= size {
		t.Skipf("mkfs.fat left no room in the FAT (%d sectors max)", g.MaxSectors)
	}
	if after, _ := os.ReadFile(vol); !bytes.Equal(before, after) {
		t.Fatal("planning changed the volume")
	}
	if err := f.Truncate(max); err != nil {
		t.Fatal(err)
	}
	if g, err = PlanGrow(f, 0, max); err != nil {
		t.Fatal(err)
	}
	if g.NewSectors != g.MaxSectors || g.NewClusters <= g.OldClusters {
		t.Fatalf("plan: %d sectors (max %d), clusters %d -> %d", g.NewSectors, g.MaxSectors, g.OldClusters, g.NewClusters)
	}
	if err := g.Apply(f); err != nil {
		t.Fatal(err)
	}
	out, err := peertest.Try(t, time.Minute, fsck, "-n", "-v", vol)
	if err != nil || strings.Contains(string(out), "Free cluster summary wrong") || strings.Contains(string(out), "differences between boot sector") {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	if got := peertest.Run(t, time.Minute, mtype, "-i", vol, "::/SRC.TXT"); !bytes.Equal(got, data) {
		t.Errorf("mtype: %d bytes differ", len(got))
	}
	fs, err := Open(f, 0, max, false)
	if err != nil {
		t.Fatal(err)
	}
	if bs := fs.BootSector(); bs.Clusters() != g.NewClusters {
		t.Errorf("reopened: %d clusters, want %d", bs.Clusters(), g.NewClusters)
	}
	// The new clusters can be allocated: fill the volume past its old size.
	big := bytes.Repeat([]byte{0x5a}, int(fs.FreeBytes()))
	if err := fs.WriteFile("/FILL.BIN", bytes.NewReader(big), int64(len(big)), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	if out, err := peertest.Try(t, time.Minute, fsck, "-n", vol); err != nil {
		t.Errorf("fsck.fat -n after filling: %v\n%s", err, out)
	}
}

// crashFile is a device whose writes stop (fail) after limit writes, as if
// the machine lost power there.
type crashFile struct {
	*os.File
	limit, n int
}

func (c *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if c.n >= c.limit {
		return 0, errors.New("simulated crash")
	}
	c.n++
	return c.File.WriteAt(p, off)
}

// TestGrowCrashOrder stops Apply after every number of writes: each state
// must open with the old or the new cluster count, and fsck.fat -n must
// find nothing wrong but, between the backup and the primary boot sector,
// a backup that differs.
func TestGrowCrashOrder(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.img")
	if err := os.WriteFile(orig, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(orig, 100<<20); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, mkfs, "-F", "32", "-s", "1", orig)
	f0, err := os.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	g0, err := PlanGrow(f0, 0, 100<<20)
	f0.Close()
	if err != nil {
		t.Fatal(err)
	}
	size := int64(g0.MaxSectors) * 512
	if size <= 100<<20 {
		t.Skip("mkfs.fat left no room in the FAT")
	}
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; ; k++ {
		p := filepath.Join(t.TempDir(), "vol.img")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		g, err := PlanGrow(f, 0, size)
		if err != nil {
			t.Fatal(err)
		}
		dev := &crashFile{File: f, limit: k}
		done := g.Apply(dev) == nil
		fs, err := Open(f, 0, size, true)
		f.Close()
		if err != nil {
			t.Fatalf("after %d writes: %v", k, err)
		}
		bs := fs.BootSector()
		if c := bs.Clusters(); c != g.OldClusters && c != g.NewClusters {
			t.Fatalf("after %d writes: %d clusters", k, c)
		}
		out, err := peertest.Try(t, time.Minute, fsck, "-n", p)
		if err != nil {
			backup := strings.Contains(string(out), "differences between boot sector and its backup")
			if !backup || bs.Clusters() != g.OldClusters {
				t.Fatalf("after %d writes: fsck.fat -n: %v\n%s", k, err, out)
			}
		}
		if done {
			if bs.Clusters() != g.NewClusters {
				t.Fatalf("complete Apply left %d clusters", bs.Clusters())
			}
			t.Logf("%d writes, every prefix consistent", k)
			return
		}
	}
}
