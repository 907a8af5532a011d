package imagefs

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/internal/peertest"
)

// extractPartition copies partition p of img to its own sparse file, copying
// only the ranges that hold data, for peers without an offset option.
func extractPartition(t *testing.T, img *Image, p Partition) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("part%d.img", p.Index))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(p.Size)
	exts, err := img.Dev.Extents(p.Offset, p.Size)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for _, e := range exts {
		if e.State != 0 { // only Data
			continue
		}
		for off := e.Off; off < e.Off+e.Len; off += int64(len(buf)) {
			n := min(int64(len(buf)), e.Off+e.Len-off)
			if _, err := img.Dev.ReadAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
			f.WriteAt(buf[:n], off-p.Offset)
		}
	}
	return out
}

func fsckPartition(t *testing.T, path string) {
	t.Helper()
	peertest.Need(t, "fsck.fat", "dosfstools")
	img, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	part := extractPartition(t, img, img.Partitions()[0])
	out, err := peertest.Try(t, 2*time.Minute, "fsck.fat", "-n", "-v", part)
	if err != nil || bytes.Contains(out, []byte("Free cluster summary wrong")) {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
}

type sfdiskDump struct {
	PartitionTable struct {
		Label      string `json:"label"`
		ID         string `json:"id"`
		Partitions []struct {
			Start    uint64 `json:"start"`
			Size     uint64 `json:"size"`
			Type     string `json:"type"`
			Bootable bool   `json:"bootable"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

func TestCreateLayoutCheckedByPeers(t *testing.T) {
	tests := []struct {
		size      int64
		align     uint32
		fs        string
		wantStart uint64
		wantSize  uint64
		wantType  string
	}{
		{4 << 30, 63, "fat32", 63, 522*16065 - 63, "c"},
		{64 << 20, 63, "fat32", 63, 8*16065 - 63, "c"},
		{100 << 20, 2048, "fat32", 2048, 12*16065 - 2048, "c"},
		{1 << 30, 63, "none", 63, 130*16065 - 63, "7"},
	}
	peertest.Need(t, "sfdisk", "fdisk")
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dMiB-%d-%s", tt.size>>20, tt.align, tt.fs), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			res, err := Create(path, CreateOptions{Size: tt.size, Align: tt.align, FS: tt.fs, Label: "TESTVOL", DiskSignature: 0x1234abcd})
			if err != nil {
				t.Fatal(err)
			}
			if res.DiskSignature != 0x1234abcd {
				t.Errorf("signature %08x", res.DiskSignature)
			}
			var dump sfdiskDump
			if err := json.Unmarshal(peertest.Run(t, time.Minute, "sfdisk", "-J", path), &dump); err != nil {
				t.Fatal(err)
			}
			pt := dump.PartitionTable
			if pt.Label != "dos" || pt.ID != "0x1234abcd" || len(pt.Partitions) != 1 {
				t.Fatalf("sfdisk sees %+v", pt)
			}
			p := pt.Partitions[0]
			if p.Start != tt.wantStart || p.Size != tt.wantSize || p.Type != tt.wantType || !p.Bootable {
				t.Errorf("sfdisk partition %+v, want start %d size %d type %s bootable", p, tt.wantStart, tt.wantSize, tt.wantType)
			}
			img, err := Open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			info := img.Info()
			img.Close()
			pi := info.Partitions[0]
			if !pi.CHSMatches || info.Geometry == nil || info.Geometry.Heads != 255 || info.Geometry.SectorsPerTrack != 63 {
				t.Errorf("CHS fields do not match the 255/63 geometry: %+v %+v", pi, info.Geometry)
			}
			if tt.fs == "fat32" {
				if pi.FS != FSFAT32 || pi.Label != "TESTVOL" {
					t.Errorf("fs %q label %q", pi.FS, pi.Label)
				}
				fsckPartition(t, path)
				peertest.Need(t, "mdir", "mtools")
				t.Setenv("MTOOLS_SKIP_CHECK", "1")
				out := peertest.Run(t, time.Minute, "mdir", "-i", fmt.Sprintf("%s@@%d", path, tt.wantStart*512), "::/")
				if !bytes.Contains(out, []byte("TESTVOL")) {
					t.Errorf("mdir:\n%s", out)
				}
			}
		})
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.img")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	tests := []struct {
		name string
		path string
		opts CreateOptions
		want string
	}{
		{"too small for FAT32", "small.img", CreateOptions{Size: 20 << 20}, "65,525"},
		{"no whole cylinder", "tiny.img", CreateOptions{Size: 4 << 20, FS: "none"}, "no room"},
		{"too large for MBR", "huge.img", CreateOptions{Size: 3 << 40, FS: "none"}, "2^32-1 sectors"},
		{"existing output", "existing.img", CreateOptions{Size: 64 << 20}, "exists"},
		{"bad alignment", "a.img", CreateOptions{Size: 64 << 20, Align: 100}, "alignment"},
		{"bad fs", "b.img", CreateOptions{Size: 64 << 20, FS: "ext4"}, "ext4"},
		{"long label", "c.img", CreateOptions{Size: 64 << 20, Label: "MUCH TOO LONG LABEL"}, "label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Create(filepath.Join(dir, tt.path), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Error("existing file was changed")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left behind: %v", names)
	}
	// --force replaces.
	if _, err := Create(existing, CreateOptions{Size: 64 << 20, Force: true}); err != nil {
		t.Fatal(err)
	}
}

func randomTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i, rel := range []string{
		"I386/TXTSETUP.SIF", "I386/System32/drivers/e1000.sys", "I386/lang/Ünicode file.txt",
		"$WIN_NT$.~BT/winnt.sif", "empty.txt", "big.bin", "Documents and Settings/a b/c.d.e.txt",
	} {
		size := []int{400_000, 90_000, 12, 1000, 0, 5 << 20, 77}[i]
		b := make([]byte, size)
		rand.Read(b)
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files[rel] = b
	}
	os.MkdirAll(filepath.Join(root, "I386", "empty dir"), 0o755)
	return files
}

func TestPutGetRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.img")
	if _, err := Create(path, CreateOptions{Size: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	files := randomTree(t, src)

	img, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	// Directory contents into the root, and one file to a new nested name.
	entries, _ := os.ReadDir(src)
	var srcs []string
	for _, e := range entries {
		srcs = append(srcs, filepath.Join(src, e.Name()))
	}
	stats, err := Put(fs, srcs, "/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != len(files) {
		t.Errorf("put %d files, want %d", stats.Files, len(files))
	}
	if _, err := Put(fs, []string{filepath.Join(src, "empty.txt")}, "/new/parents/renamed.txt", nil); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	fsckPartition(t, path)

	img, err = Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	fs, _ = img.FS(0)
	out := filepath.Join(dir, "out")
	if _, err := Get(fs, "/", out, nil); err != nil {
		t.Fatal(err)
	}
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(rel)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, equal %v", rel, err, bytes.Equal(got, want))
		}
	}
	if st, err := os.Stat(filepath.Join(out, "I386", "empty dir")); err != nil || !st.IsDir() {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := fs.Stat("/NEW/PARENTS/RENAMED.TXT"); err != nil {
		t.Error(err)
	}
	// A single file out, case-insensitively, into an existing directory.
	if _, err := Get(fs, "/i386/txtsetup.sif", dir, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "TXTSETUP.SIF")); !bytes.Equal(got, files["I386/TXTSETUP.SIF"]) {
		t.Error("single-file get differs")
	}
	if _, err := Get(fs, "/no/such/file", dir, nil); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	// mtools reads what Put wrote.
	peertest.Need(t, "mcopy", "mtools")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	got := peertest.Run(t, time.Minute, "mtype", "-i", path+"@@32256", "::/Documents and Settings/a b/c.d.e.txt")
	if !bytes.Equal(got, files["Documents and Settings/a b/c.d.e.txt"]) {
		t.Error("mtype differs")
	}
}

func TestPutRefusals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk.img")
	Create(path, CreateOptions{Size: 64 << 20})
	big := filepath.Join(dir, "big")
	f, _ := os.Create(big)
	f.Truncate(100 << 20)
	f.Close()
	img, _ := Open(path, true)
	defer img.Close()
	fs, _ := img.FS(0)
	if _, err := Put(fs, []string{big}, "/", nil); err == nil || !strings.Contains(err.Error(), "free") {
		t.Errorf("oversized put: %v", err)
	}
	if _, err := Put(fs, []string{filepath.Join(dir, "missing")}, "/", nil); err == nil {
		t.Error("missing source accepted")
	}
	if list, _ := fs.ReadDir("/"); len(list) != 0 {
		t.Errorf("refused puts left %d entries", len(list))
	}
}

func TestOpenRefusesNonDisks(t *testing.T) {
	dir := t.TempDir()
	zeros := filepath.Join(dir, "zeros.img")
	os.WriteFile(zeros, make([]byte, 1<<20), 0o644)
	gpt := filepath.Join(dir, "gpt.img")
	m := &mbr.MBR{}
	m.Entries[0] = mbr.Entry{Type: mbr.TypeGPT, Start: 1, Sectors: 2047}
	os.WriteFile(gpt, append(m.Bytes(), make([]byte, 1<<20-512)...), 0o644)
	short := filepath.Join(dir, "short.img")
	os.WriteFile(short, []byte("x"), 0o644)
	for path, want := range map[string]string{
		zeros: "no partition table", gpt: "GPT", short: "too small", filepath.Join(dir, "missing"): "no such file",
	} {
		_, err := Open(path, false)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming the file and %q", filepath.Base(path), err, want)
		}
	}
}

// TestNTFSPartition reads an NTFS partition made by mkntfs inside an image
// created with --fs none, and refuses to write to it.
func TestNTFSPartition(t *testing.T) {
	peertest.Need(t, "mkntfs", "ntfs-3g")
	peertest.Need(t, "ntfscp", "ntfs-3g")
	dir := t.TempDir()
	path := filepath.Join(dir, "ntfs.img")
	res, err := Create(path, CreateOptions{Size: 128 << 20, FS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(dir, "vol")
	f, _ := os.Create(vol)
	f.Truncate(res.Partition.Size)
	f.Close()
	peertest.Run(t, time.Minute, "mkntfs", "-F", "-Q", "-q", "-p", "63", "-H", "255", "-S", "63", vol)
	os.WriteFile(filepath.Join(dir, "boot.ini"), []byte("[boot loader]\r\n"), 0o644)
	peertest.Run(t, time.Minute, "ntfscp", "-q", vol, filepath.Join(dir, "boot.ini"), "/BOOT.INI")
	raw, _ := os.ReadFile(vol)
	disk, _ := os.OpenFile(path, os.O_RDWR, 0)
	disk.WriteAt(raw, res.Partition.Offset)
	disk.Close()

	img, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if info := img.Info(); info.Partitions[0].FS != FSNTFS {
		t.Fatalf("detected %q", info.Partitions[0].FS)
	}
	fs, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Get(fs, "/boot.ini", filepath.Join(dir, "got.ini"), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "got.ini")); string(b) != "[boot loader]\r\n" {
		t.Errorf("got %q", b)
	}
	// NTFS is writable (imagefs/ntfs; the NTFS peers check it in
	// TestNTFSContainers): the put reads back.
	if _, err = Put(fs, []string{filepath.Join(dir, "boot.ini")}, "/x.ini", nil); err != nil {
		t.Fatalf("NTFS write: %v", err)
	}
	if _, err := Get(fs, "/X.INI", filepath.Join(dir, "got2.ini"), nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "got2.ini")); string(b) != "[boot loader]\r\n" {
		t.Errorf("got %q after put", b)
	}
}

func TestParseLocation(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a:b.img")
	os.WriteFile(img, nil, 0o644)
	tests := []struct {
		in   string
		ok   bool
		want Location
	}{
		{img, true, Location{img, "/"}},
		{img + ":", true, Location{img, "/"}},
		{img + ":/I386/x", true, Location{img, "/I386/x"}},
		{img + `:\I386\x`, true, Location{img, "/I386/x"}},
		{img + ":/a/../b/", true, Location{img, "/b"}},
		{filepath.Join(dir, "missing") + ":/x", false, Location{}},
		{dir, false, Location{}},
	}
	for _, tt := range tests {
		got, ok := ParseLocation(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseLocation(%q) = %+v %v, want %+v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
