package fat32

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// newVolume formats a sparse file of size bytes labelled XPBOOT.
func newVolume(t testing.TB, size int64) (*os.File, *FS) {
	t.Helper()
	return newVolumeLabel(t, size, "XPBOOT")
}

func newVolumeLabel(t testing.TB, size int64, label string) (*os.File, *FS) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "vol.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := Format(f, 0, size, FormatOptions{Label: label, HiddenSectors: 63, Heads: 255, SectorsPerTrack: 63}); err != nil {
		t.Fatal(err)
	}
	fs, err := Open(f, 0, size, false)
	if err != nil {
		t.Fatal(err)
	}
	return f, fs
}

func fsck(t *testing.T, path string) {
	t.Helper()
	peertest.Need(t, "fsck.fat", "dosfstools")
	out, err := peertest.Try(t, time.Minute, "fsck.fat", "-n", "-v", path)
	if err != nil || bytes.Contains(out, []byte("Free cluster summary wrong")) {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
}

func TestFormatCheckedByFsck(t *testing.T) {
	for _, size := range []int64{MinSize + 1<<20, 300 << 20, 1 << 30} {
		t.Run(fmt.Sprint(size>>20, "MiB"), func(t *testing.T) {
			f, fs := newVolume(t, size)
			bs := fs.BootSector()
			if bs.Heads != 255 || bs.SectorsPerTrack != 63 || bs.HiddenSectors != 63 || bs.DriveNumber != 0x80 {
				t.Errorf("BPB geometry %d/%d hidden %d drive %#x", bs.Heads, bs.SectorsPerTrack, bs.HiddenSectors, bs.DriveNumber)
			}
			backup := make([]byte, 512)
			primary := make([]byte, 512)
			f.ReadAt(primary, 0)
			f.ReadAt(backup, int64(bs.BackupBootSector)*512)
			if !bytes.Equal(primary, backup) {
				t.Error("backup boot sector differs from the primary")
			}
			if l, err := fs.Label(); err != nil || l != "XPBOOT" {
				t.Errorf("label %q %v", l, err)
			}
			fsck(t, f.Name())
		})
	}
}

func TestSizeLimits(t *testing.T) {
	if err := CheckSize(20 << 20); err == nil || !strings.Contains(err.Error(), "65525") {
		t.Errorf("20 MiB: %v", err)
	}
	if err := CheckSize(MinSize); err != nil {
		t.Errorf("MinSize: %v", err)
	}
	if err := CheckSize(MinSize - 64<<10); err == nil {
		t.Error("just below MinSize accepted")
	}
	if err := CheckSize(MaxSize); err != nil {
		t.Errorf("MaxSize (2 TiB less a sector): %v", err)
	}
	if err := CheckSize(MaxSize + 512); err == nil || !strings.Contains(err.Error(), "maximum") {
		t.Errorf("beyond 2^32-1 sectors: %v", err)
	}
}

// TestFormatLargeCheckedByFsck formats volumes beyond go-diskfs's and
// Windows' format tool's limits (XP reads them) up to the MBR maximum, on
// sparse files, and has fsck.fat check them and a file written to each.
func TestFormatLargeCheckedByFsck(t *testing.T) {
	sizes := []int64{40 << 30, 300 << 30, MaxSize}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size>>30, "GiB"), func(t *testing.T) {
			f, fs := newVolume(t, size)
			bs := fs.BootSector()
			clusters, spf, cb := layout(size)
			if int64(bs.SectorsPerCluster)*512 != cb || int64(bs.FATSize) != spf || bs.RootCluster != 2 {
				t.Errorf("BPB: %d-sector clusters, %d-sector FAT; want %d bytes, %d", bs.SectorsPerCluster, bs.FATSize, cb, spf)
			}
			if got := fs.FreeBytes(); got != int64(clusters-1)*cb {
				t.Errorf("free %d bytes, want %d", got, int64(clusters-1)*cb)
			}
			w, err := Open(f, 0, size, false)
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("large volume "), 10000)
			if err := w.WriteFile("/BIG/file.bin", bytes.NewReader(data), int64(len(data)), time.Now()); err != nil {
				if err := w.MkdirAll("/BIG", time.Now()); err != nil {
					t.Fatal(err)
				}
				if err := w.WriteFile("/BIG/file.bin", bytes.NewReader(data), int64(len(data)), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			fsck(t, f.Name())
		})
	}
}

// TestLabels: labels Windows refuses are refused; a label is stored in
// upper case in the BPB and the root directory.
func TestLabels(t *testing.T) {
	for _, bad := range []string{"A/B", "WHAT?", "STAR*", "TOO LONG LABEL", "TAB\tX"} {
		if err := Format(discard{}, 0, MinSize, FormatOptions{Label: bad}); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
	_, fs := newVolumeLabel(t, 64<<20, "Setup Disk")
	if l, err := fs.Label(); err != nil || l != "SETUP DISK" {
		t.Errorf("label %q %v", l, err)
	}
}

type discard struct{}

func (discard) ReadAt(p []byte, _ int64) (int, error)  { return len(p), nil }
func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// tree writes a test tree through fs and returns path → content.
func writeTree(t *testing.T, fs *FS) map[string][]byte {
	t.Helper()
	now := time.Date(2024, 5, 6, 7, 8, 10, 0, time.Local)
	want := map[string][]byte{}
	put := func(p string, size int) {
		b := make([]byte, size)
		rand.Read(b)
		if err := fs.WriteFile(p, bytes.NewReader(b), int64(size), now); err != nil {
			t.Fatal(err)
		}
		want[p] = b
	}
	for _, d := range []string{"/I386", "/I386/SYSTEM32", "/Docs and Settings", "/Docs and Settings/All Users"} {
		if err := fs.Mkdir(d, now); err != nil {
			t.Fatal(err)
		}
	}
	put("/NTLDR", 250_000)
	put("/boot.ini", 200)
	put("/I386/TXTSETUP.SIF", 400_000)
	put("/I386/index.html", 10)
	put("/I386/index.htm", 11) // same basis as index.html: needs a ~N tail
	put("/I386/a+b.txt", 3)
	put("/I386/a=b.txt", 4) // collides with a+b.txt after substitution
	put("/I386/Mixed.Txt", 5)
	put("/I386/lower.txt", 6)
	put("/I386/SYSTEM32/empty.dat", 0)
	put("/Docs and Settings/All Users/Ünïcödé name — long.txt", 5000)
	put("/Docs and Settings/All Users/.hidden", 1)
	for i := 0; i < 300; i++ {
		put(fmt.Sprintf("/I386/driver_file_%03d.sys", i), i*7)
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	return want
}

func TestWriteTreeCheckedByPeers(t *testing.T) {
	f, fs := newVolume(t, 64<<20)
	want := writeTree(t, fs)
	fsck(t, f.Name())

	// Read back through a fresh Open.
	fs2, err := Open(f, 0, 64<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range want {
		got := readAll(t, fs2, p)
		if !bytes.Equal(got, b) {
			t.Errorf("%s: content differs", p)
		}
	}
	// Case-insensitive lookups and short names.
	if _, err := fs2.Stat("/i386/txtsetup.sif"); err != nil {
		t.Error(err)
	}
	shorts := map[string]bool{}
	list, _ := fs2.ReadDir("/I386")
	for _, fi := range list {
		if shorts[fi.ShortName()] {
			t.Errorf("duplicate short name %s", fi.ShortName())
		}
		shorts[fi.ShortName()] = true
	}

	// mtools must see the same tree and the same bytes.
	peertest.Need(t, "mcopy", "mtools")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	dir := t.TempDir()
	peertest.Run(t, time.Minute, "mcopy", "-s", "-n", "-i", f.Name(), "::/", dir)
	for p, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("mcopy %s: %v (equal %v)", p, err, bytes.Equal(got, b))
		}
	}
	out := peertest.Run(t, time.Minute, "mdir", "-i", f.Name(), "::/I386")
	if !bytes.Contains(out, []byte("lower    txt")) || !bytes.Contains(out, []byte("INDEX~1  HTM        10 2024-05-06   7:08  index.html")) {
		t.Errorf("mdir does not list the expected names:\n%s", out)
	}
}

func readAll(t *testing.T, fs *FS, p string) []byte {
	t.Helper()
	f, err := fs.OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && f.Size() > 0 {
		t.Fatalf("%s: %v", p, err)
	}
	return b
}

// TestReadMtoolsVolume reads a volume made and filled by dosfstools and mtools.
func TestReadMtoolsVolume(t *testing.T) {
	peertest.Need(t, "mkfs.fat", "dosfstools")
	peertest.Need(t, "mcopy", "mtools")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	dir := t.TempDir()
	img := filepath.Join(dir, "v.img")
	peertest.Run(t, time.Minute, "mkfs.fat", "-F", "32", "-C", img, "65536")
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "Sub Dir", "deeper"), 0o755)
	want := map[string][]byte{}
	for i, name := range []string{"Sub Dir/deeper/Long File Name.txt", "Sub Dir/x.bin", "README"} {
		b := bytes.Repeat([]byte{byte(i + 1)}, 100_000*i+17)
		os.WriteFile(filepath.Join(src, name), b, 0o644)
		want["/"+name] = b
	}
	peertest.Run(t, time.Minute, "mcopy", "-s", "-i", img, filepath.Join(src, "Sub Dir"), filepath.Join(src, "README"), "::/")
	f, _ := os.Open(img)
	defer f.Close()
	st, _ := f.Stat()
	fs, err := Open(f, 0, st.Size(), true)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range want {
		if got := readAll(t, fs, p); !bytes.Equal(got, b) {
			t.Errorf("%s differs", p)
		}
	}
	if err := fs.WriteFile("/x", bytes.NewReader(nil), 0, time.Now()); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write to read-only FS: %v", err)
	}
}

func TestReplaceRemoveAndErrors(t *testing.T) {
	f, fs := newVolume(t, 64<<20)
	now := time.Now()
	free0 := fs.FreeBytes()
	big := bytes.Repeat([]byte("x"), 3<<20)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fs.MkdirAll("/a/b/c", now))
	must(fs.WriteFile("/a/b/c/f", bytes.NewReader(big), int64(len(big)), now))
	must(fs.WriteFile("/a/b/c/f", strings.NewReader("small"), 5, now))
	if got := readAll(t, fs, "/A/B/C/F"); string(got) != "small" {
		t.Fatalf("replaced content %q", got)
	}
	must(fs.Remove("/a/b/c/f"))
	if err := fs.Remove("/a/b"); err == nil {
		t.Error("removing a non-empty directory succeeded")
	}
	must(fs.Remove("/a/b/c"))
	must(fs.Remove("/a/b"))
	must(fs.Remove("/a"))
	must(fs.Flush())
	if fs.FreeBytes() != free0 {
		t.Errorf("free space %d after removing everything, want %d", fs.FreeBytes(), free0)
	}
	fsck(t, f.Name())

	for _, tc := range []struct {
		name string
		err  error
	}{
		{"/missing/file", nil},
		{"/bad:name", nil},
		{"/trailing.", nil},
	} {
		if err := fs.WriteFile(tc.name, strings.NewReader("x"), 1, now); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := fs.WriteFile("/short", strings.NewReader("x"), 5, now); err == nil {
		t.Error("short source accepted")
	}
	if err := fs.WriteFile("/huge", strings.NewReader(""), 1<<32, now); err == nil {
		t.Error("4 GiB file accepted")
	}
	if _, err := fs.OpenFile("/nope"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := fs.WriteFile("/full", bytes.NewReader(make([]byte, 70<<20)), 70<<20, now); err == nil {
		t.Error("file larger than the volume accepted")
	}
}

// TestManyFilesLinear guards the property that motivated this package: a
// 4,000-file directory must not be quadratic (go-diskfs takes 39 s).
func TestManyFilesFsck(t *testing.T) {
	f, fs := newVolume(t, 256<<20)
	now := time.Now()
	fs.Mkdir("/I386", now)
	data := make([]byte, 3000)
	for i := 0; i < 4000; i++ {
		if err := fs.WriteFile(fmt.Sprintf("/I386/setup_component_%04d.dl_", i), bytes.NewReader(data), int64(len(data)), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	fsck(t, f.Name())
	list, _ := fs.ReadDir("/I386")
	if len(list) != 4000 {
		t.Errorf("%d entries", len(list))
	}
}

// FuzzOpen mutates the metadata region of a volume (boot sector, FSInfo,
// FAT start) and walks whatever tree then opens. The seeds in
// testdata/fuzz/FuzzOpen are the first sectors of volumes made by Format.
func FuzzOpen(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, meta []byte) {
		dev := &sparseDev{meta: meta, size: MinSize + 1<<20}
		fs, err := Open(dev, 0, dev.size, true)
		if err != nil {
			return
		}
		var walk func(string, int)
		walk = func(p string, depth int) {
			if depth > 8 {
				return
			}
			list, err := fs.ReadDir(p)
			if err != nil {
				return
			}
			for _, fi := range list {
				child := strings.TrimSuffix(p, "/") + "/" + fi.Name()
				if fi.IsDir() {
					walk(child, depth+1)
				} else if f, err := fs.OpenFile(child); err == nil {
					b := make([]byte, min(f.Size(), 1<<16))
					f.ReadAt(b, 0)
				}
			}
		}
		walk("/", 0)
	})
}

// sparseDev is a read-only volume whose first bytes are meta and the rest zeros.
type sparseDev struct {
	meta []byte
	size int64
}

func (m *sparseDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.size {
		return 0, errors.New("out of range")
	}
	clear(p)
	if off < int64(len(m.meta)) {
		copy(p, m.meta[off:])
	}
	return len(p), nil
}

func (m *sparseDev) WriteAt(p []byte, off int64) (int, error) { return 0, errors.New("read-only") }

// TestFailedWriteLeavesVolumeUntouched: a write refused on a damaged volume
// changes no byte, not even a stale FSInfo free count.
func TestFailedWriteLeavesVolumeUntouched(t *testing.T) {
	f, fs0 := newVolume(t, 64<<20)
	bs := fs0.BootSector()
	le := binary.LittleEndian
	// A stale free count ("unknown"), as other formatters leave it, and a
	// root directory whose chain points at cluster 1, which does not exist.
	f.WriteAt([]byte{0xFF, 0xFF, 0xFF, 0xFF}, 512+488)
	entry := make([]byte, 4)
	le.PutUint32(entry, 1)
	for i := 0; i < int(bs.NumFATs); i++ {
		f.WriteAt(entry, bs.fatStart(i)+int64(bs.RootCluster)*4)
	}
	before, _ := os.ReadFile(f.Name())
	fs, err := Open(f, 0, 64<<20, false)
	if err != nil {
		t.Skipf("damaged volume refused at open (also fine): %v", err)
	}
	data := []byte("never written")
	if err := fs.WriteFile("/new.txt", bytes.NewReader(data), int64(len(data)), time.Now()); err == nil {
		t.Fatal("write into a directory with a broken chain succeeded")
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(f.Name())
	if !bytes.Equal(before, after) {
		for i := range before {
			if before[i] != after[i] {
				t.Fatalf("byte %d changed (%#x → %#x) by a failed write", i, before[i], after[i])
			}
		}
	}
}
