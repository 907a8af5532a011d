package ntfs

import (
	"bytes"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// makeVolume builds an NTFS volume with mkntfs and fills it with ntfscp,
// placed at byte offset off of the returned image, as in a partitioned disk.
func makeVolume(t *testing.T, off int64, files map[string][]byte) string {
	t.Helper()
	peertest.Need(t, "mkntfs", "ntfs-3g")
	peertest.Need(t, "ntfscp", "ntfs-3g")
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol.ntfs")
	f, _ := os.Create(vol)
	f.Truncate(64 << 20)
	f.Close()
	peertest.Run(t, time.Minute, "mkntfs", "-F", "-Q", "-q", "-p", "63", "-H", "255", "-S", "63", "-L", "XPSYS", vol)
	for name, data := range files {
		src := filepath.Join(dir, "src")
		os.WriteFile(src, data, 0o644)
		peertest.Run(t, time.Minute, "ntfscp", "-q", vol, src, name)
	}
	raw, _ := os.ReadFile(vol)
	img := filepath.Join(dir, "disk.img")
	out := make([]byte, off+int64(len(raw)))
	copy(out[off:], raw)
	os.WriteFile(img, out, 0o644)
	return img
}

func TestReadNTFS(t *testing.T) {
	files := map[string][]byte{
		"/NTLDR":         bytes.Repeat([]byte{0x4E}, 250_000),
		"/boot.ini":      []byte("[boot loader]\r\ntimeout=30\r\n"),
		"/Long Name.txt": []byte("small resident file"),
	}
	img := makeVolume(t, 63*512, files)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Open(f, 63*512)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		for _, p := range []string{name, bytes.NewBuffer(bytes.ToUpper([]byte(name))).String()} {
			file, err := fs.OpenFile(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			got := make([]byte, file.Size())
			if _, err := file.ReadAt(got, 0); err != nil && file.Size() > 0 {
				t.Fatalf("%s: %v", p, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: content differs", p)
			}
		}
	}
	list, err := fs.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fi := range list {
		names = append(names, fi.Name())
	}
	if len(names) != 3 || names[0] != "boot.ini" || names[1] != "Long Name.txt" || names[2] != "NTLDR" {
		t.Errorf("root lists %q", names)
	}
	if _, err := fs.Stat("/missing"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestNotNTFS(t *testing.T) {
	if _, err := Open(bytes.NewReader(make([]byte, 1<<20)), 0); err == nil {
		t.Fatal("zeros accepted as NTFS")
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := Open(bytes.NewReader(b), 0)
		if err != nil {
			return
		}
		list, _ := fs.ReadDir("/")
		for _, fi := range list {
			fs.OpenFile("/" + fi.Name())
		}
	})
}
