package ntfs

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

// growImage makes an mkntfs volume of 64 MiB at sector 63 of an image
// that is then extended to size bytes, as a grown container would be.
func growImage(t *testing.T, size int64, files map[string][]byte) (*os.File, string) {
	t.Helper()
	img := makeVolume(t, 63*512, files)
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, img
}

// extractVolume writes the n bytes at off of img to their own file for
// the ntfs-3g tools, which take no offset.
func extractVolume(t *testing.T, img string, off, n int64) string {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "vol.ntfs")
	if err := os.WriteFile(p, b[off:off+n], 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGrowThenWrite grows a volume and then fills it with xpboot's own
// writer past the old end: the new clusters are usable, and ntfsfix and
// ntfscat agree.
func TestGrowThenWrite(t *testing.T) {
	ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
	ntfscat := peertest.Need(t, "ntfscat", "ntfs-3g")
	const part = 200 << 20
	f, img := growImage(t, 63*512+part, map[string][]byte{"/old.txt": []byte("old file")})
	g, err := PlanGrow(f, 63*512, part)
	if err != nil {
		t.Fatal(err)
	}
	// 51199 clusters need 6400 bitmap bytes: a second cluster for $Bitmap.
	if g.NewSectors != part/512-1 || g.NewClusters != g.NewSectors*512/g.ClusterSize || g.BitmapClusters != 1 {
		t.Errorf("plan: %d sectors, %d clusters, %d new $Bitmap clusters", g.NewSectors, g.NewClusters, g.BitmapClusters)
	}
	if err := g.Apply(f); err != nil {
		t.Fatal(err)
	}
	fs, err := OpenWritable(f, 63*512, 63*512+part)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 100<<20/16) // more than the old volume held
	if err := fs.WriteFile("/big.bin", bytes.NewReader(big), int64(len(big)), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	vol := extractVolume(t, img, 63*512, part)
	if out := peertest.Run(t, time.Minute, ntfsfix, "-n", vol); !strings.Contains(string(out), "alternate boot sector... OK") {
		t.Errorf("ntfsfix -n:\n%s", out)
	}
	if got := peertest.Run(t, time.Minute, ntfscat, vol, "/big.bin"); !bytes.Equal(got, big) {
		t.Errorf("ntfscat big.bin: %d bytes differ", len(got))
	}
	if got := peertest.Run(t, time.Minute, ntfscat, vol, "/old.txt"); string(got) != "old file" {
		t.Errorf("ntfscat old.txt: %q", got)
	}
}

// TestGrowRefused: a damaged or shrinking volume is refused before
// anything is written.
func TestGrowRefused(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, f *os.File)
		size    int64
		wantErr error
	}{
		{"shrink", nil, 32 << 20, nil},
		{"same size", nil, 64 << 20, nil}, // no-op, not an error
		{"mirror differs", func(t *testing.T, f *os.File) {
			b := make([]byte, 512)
			f.ReadAt(b, 63*512)
			mirr := int64(le.Uint64(b[0x38:])) * int64(b[0x0D]) * 512
			if _, err := f.WriteAt([]byte("XXXX"), 63*512+mirr+0x100); err != nil {
				t.Fatal(err)
			}
		}, 128 << 20, ErrRefused},
		{"not NTFS", func(t *testing.T, f *os.File) {
			if _, err := f.WriteAt([]byte("MSDOS5.0"), 63*512+3); err != nil {
				t.Fatal(err)
			}
		}, 128 << 20, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, img := growImage(t, 63*512+256<<20, nil)
			if tt.damage != nil {
				tt.damage(t, f)
			}
			before, _ := os.ReadFile(img)
			g, err := PlanGrow(f, 63*512, tt.size)
			if tt.name == "same size" {
				if err != nil || g.Changed() {
					t.Fatalf("same size: %v, %+v", err, g)
				}
				return
			}
			if err == nil {
				t.Fatalf("planned %+v, want an error", g)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			t.Log(err)
			if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
				t.Error("a refused grow changed the image")
			}
		})
	}
}

// FuzzGrow patches the small test volume and grows it by extra sectors:
// PlanGrow must refuse or plan without panicking, and an applied plan must
// give a volume that opens for writing with the planned cluster count.
func FuzzGrow(f *testing.F) {
	base := smallVolume(f)
	f.Add(uint32(0), []byte{}, uint32(4096))
	f.Add(uint32(0x28), []byte{0x00, 0x10}, uint32(1))
	f.Add(uint32(0x4018), []byte{0x00, 0x10}, uint32(100000))
	f.Fuzz(func(t *testing.T, at uint32, patch []byte, extra uint32) {
		extra %= 1 << 20
		img := append(bytes.Clone(base), make([]byte, int(extra)*512)...)
		if int(at) < len(base) {
			copy(img[at:len(base)], patch)
		}
		dev := &memDev{b: img}
		before := bytes.Clone(img)
		g, err := PlanGrow(dev, 0, int64(len(img)))
		if !bytes.Equal(before, img) {
			t.Fatal("planning wrote to the volume")
		}
		if err != nil {
			return
		}
		if err := g.Apply(dev); err != nil {
			t.Fatal(err)
		}
		v, err := openVol(dev, 0, int64(len(img)))
		if err != nil {
			t.Fatalf("grown volume does not open: %v", err)
		}
		if v.clusters != g.NewClusters {
			t.Fatalf("grown volume has %d clusters, planned %d", v.clusters, g.NewClusters)
		}
	})
}

// TestGrowSmallVolume grows the 1 KiB-cluster test volume in memory (no
// peers): the plan is applied and the grown volume opens, twice in a row.
func TestGrowSmallVolume(t *testing.T) {
	base := smallVolume(t)
	img := append(bytes.Clone(base), make([]byte, 8<<20)...)
	dev := &memDev{b: img}
	for _, size := range []int64{int64(len(base)) + 4<<20, int64(len(img))} {
		g, err := PlanGrow(dev, 0, size)
		if err != nil {
			t.Fatal(err)
		}
		if !g.Changed() || g.NewClusters != (size/512-1)/2 {
			t.Fatalf("plan for %d bytes: %d -> %d clusters", size, g.OldClusters, g.NewClusters)
		}
		if err := g.Apply(dev); err != nil {
			t.Fatal(err)
		}
		v, err := openVol(dev, 0, size)
		if err != nil || v.clusters != g.NewClusters {
			t.Fatalf("grown volume: %v", err)
		}
		free := int64(0)
		for c := int64(0); c < v.clusters; c++ {
			if !bit(v.bitmap, c) {
				free++
			}
		}
		if free < g.AddedBytes()/g.ClusterSize {
			t.Errorf("%d free clusters, the growth added %d", free, g.AddedBytes()/g.ClusterSize)
		}
	}
}

// crashDev is a device whose writes stop (fail) after limit writes, as if
// the machine lost power there.
type crashDev struct {
	*memDev
	limit, n int
}

var errCrash = errors.New("simulated crash")

func (c *crashDev) WriteAt(p []byte, off int64) (int, error) {
	if c.n >= c.limit {
		return 0, errCrash
	}
	c.n++
	return c.memDev.WriteAt(p, off)
}

// TestGrowCrashOrder cuts Apply off after every number of writes: each
// prefix must leave a volume that opens for writing (guard rails included)
// with the old or the new size, and that ntfsfix -n accepts. The device
// stands for the grown partition, so Prepare, which resize runs before the
// partition grows, has been applied in every case; without it ntfsfix
// finds no backup boot sector at the partition's end.
func TestGrowCrashOrder(t *testing.T) {
	ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
	base := smallVolume(t)
	img := append(bytes.Clone(base), make([]byte, 16<<20)...)
	g, err := PlanGrow(&memDev{b: bytes.Clone(img)}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if g.BitmapClusters == 0 {
		t.Fatal("the growth should need new $Bitmap clusters")
	}
	staleSeen := 0
	for k := 0; ; k++ {
		dev := &crashDev{memDev: &memDev{b: bytes.Clone(img)}, limit: k}
		g, err := PlanGrow(dev, 0, int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Prepare(dev.memDev); err != nil {
			t.Fatal(err)
		}
		done := g.Apply(dev) == nil
		v, err := openVol(dev, 0, int64(len(img)))
		if err != nil {
			t.Fatalf("after %d writes: %v", k, err)
		}
		if v.clusters != g.OldClusters && v.clusters != g.NewClusters {
			t.Fatalf("after %d writes: %d clusters", k, v.clusters)
		}
		p := filepath.Join(t.TempDir(), "vol.ntfs")
		if err := os.WriteFile(p, dev.b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := peertest.Try(t, time.Minute, ntfsfix, "-n", p)
		if err != nil {
			// Between the primary boot sector (the commit) and its
			// backup, the backup is stale: ntfsfix (and chkdsk) copy
			// the primary over it. Nothing else may be wrong.
			stale := v.clusters == g.NewClusters && strings.Contains(string(out), "alternate boot sector... BAD") &&
				strings.Contains(string(out), "$MFTMirr completed successfully")
			if !stale || dev.n != k {
				t.Fatalf("after %d writes: ntfsfix -n: %v\n%s", k, err, out)
			}
			staleSeen++
		}
		if done {
			if v.clusters != g.NewClusters {
				t.Fatalf("complete Apply left %d clusters", v.clusters)
			}
			if staleSeen > 1 {
				t.Errorf("%d prefixes with a stale backup boot sector, want at most the one before the last write", staleSeen)
			}
			t.Logf("%d writes, every prefix consistent", k)
			return
		}
	}
}
