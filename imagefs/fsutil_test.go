package imagefs_test

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// newFAT32 creates a small FAT32 image and returns its file system,
// opened writable.
func newFAT32(t *testing.T) imagefs.FS {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if _, err := imagefs.Create(p, imagefs.CreateOptions{Size: 40 << 20, FS: imagefs.FSFAT32}); err != nil {
		t.Fatal(err)
	}
	img, err := imagefs.Open(p, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	fsys, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestReadFileWriteBytes(t *testing.T) {
	fsys := newFAT32(t)
	if err := fsys.MkdirAll("/I386", time.Now()); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("txtsetup"), 5000)
	if err := imagefs.WriteBytes(fsys, "/I386/TXTSETUP.SIF", want); err != nil {
		t.Fatal(err)
	}
	got, err := imagefs.ReadFile(fsys, "/i386/txtsetup.sif")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadFile: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	if _, err := imagefs.ReadFile(fsys, "/I386/MISSING.INF"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestSub(t *testing.T) {
	fsys := newFAT32(t)
	if err := fsys.MkdirAll("/SETUP/I386", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := imagefs.WriteBytes(fsys, "/TOP.TXT", []byte("outside")); err != nil {
		t.Fatal(err)
	}
	sub := imagefs.Sub(fsys, `\setup`)
	for _, c := range []struct {
		name string // as given to the view
		full string // where it lands in fsys
	}{
		{"I386/A.INF", "/SETUP/I386/A.INF"},
		{"/I386/B.INF", "/SETUP/I386/B.INF"},
		{`I386\C.INF`, "/SETUP/I386/C.INF"},
		{"../../I386/D.INF", "/SETUP/I386/D.INF"}, // cannot climb above the view
	} {
		data := []byte(c.name)
		if err := imagefs.WriteBytes(sub, c.name, data); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, err := imagefs.ReadFile(fsys, c.full); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %s holds %q, %v", c.name, c.full, got, err)
		}
	}
	if _, err := sub.Stat("../TOP.TXT"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat ../TOP.TXT through the view: %v, want fs.ErrNotExist", err)
	}
	ents, err := sub.ReadDir("/")
	if err != nil || len(ents) != 1 || !strings.EqualFold(ents[0].Name(), "I386") {
		t.Errorf("ReadDir of the view's root: %v, %v", ents, err)
	}
	// A view of a view joins the directories.
	if got, err := imagefs.ReadFile(imagefs.Sub(sub, "I386"), "A.INF"); err != nil || string(got) != "I386/A.INF" {
		t.Errorf("nested view: %q, %v", got, err)
	}
	if sub.FreeBytes() != fsys.FreeBytes() {
		t.Errorf("FreeBytes %d, file system %d", sub.FreeBytes(), fsys.FreeBytes())
	}
	if err := imagefs.CheckWritable(sub); err != nil {
		t.Errorf("CheckWritable of a writable FAT32 view: %v", err)
	}
}

// readOnly is an FS that says it cannot be written.
type readOnly struct{ imagefs.FS }

func (readOnly) CheckWritable() error { return errors.New("read-only") }

func TestCheckWritableForwarded(t *testing.T) {
	fsys := readOnly{newFAT32(t)}
	if err := imagefs.CheckWritable(imagefs.Sub(fsys, "/")); err == nil {
		t.Error("a view of a read-only file system passes CheckWritable")
	}
}
