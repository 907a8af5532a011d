package imagefs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWithLocalCopy(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if _, err := Create(disk, CreateOptions{Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "SYSTEM")
	os.WriteFile(src, []byte("regf original"), 0o644)
	img, _ := Open(disk, true)
	fs, _ := img.FS(0)
	if _, err := Put(fs, []string{src}, "/WINDOWS/system32/config/SYSTEM", nil); err != nil {
		t.Fatal(err)
	}
	img.Close()
	loc := Location{Image: disk, Path: "/windows/SYSTEM32/config/system"}

	// A failing edit leaves the image as it was.
	boom := errors.New("boom")
	err := WithLocalCopy(loc, 0, true, func(p string) error {
		os.WriteFile(p, []byte("half-written"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	// A successful edit is written back; read-only runs see the new content.
	if err := WithLocalCopy(loc, 0, true, func(p string) error {
		if filepath.Base(p) != "system" {
			t.Errorf("local name %q", filepath.Base(p))
		}
		return os.WriteFile(p, []byte("regf edited, and longer than before"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	WithLocalCopy(loc, 0, false, func(p string) error { got, _ = os.ReadFile(p); return nil })
	if !bytes.Equal(got, []byte("regf edited, and longer than before")) {
		t.Errorf("content %q", got)
	}
	fsckPartition(t, disk)
	if err := WithLocalCopy(Location{disk, "/missing"}, 0, false, func(string) error { return nil }); err == nil {
		t.Error("missing file accepted")
	}
}
