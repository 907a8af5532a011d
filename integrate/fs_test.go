package integrate

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// TestDirFSStreaming covers what DirFS does as an imagefs.FS beyond the
// whole-file helpers (TestDirFS): the size contract of WriteFile, the
// modification time, Open, Mkdir and the reported capabilities.
func TestDirFSStreaming(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "I386", "TXTSETUP.SIF"), []byte("original"))
	fsys := DirFS(root)

	for _, c := range []struct {
		name string
		r    io.Reader
		size int64
		ok   bool
	}{
		{"short reader", strings.NewReader("abc"), 10, false},
		{"longer reader", strings.NewReader("0123456789"), 4, true},
		{"exact", strings.NewReader("new"), 3, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := os.ReadFile(filepath.Join(root, "I386", "TXTSETUP.SIF"))
			mtime := time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC)
			err := fsys.WriteFile("i386/txtsetup.sif", c.r, c.size, mtime)
			after, _ := os.ReadFile(filepath.Join(root, "I386", "TXTSETUP.SIF"))
			if !c.ok {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("WriteFile: %v, want io.ErrUnexpectedEOF", err)
				}
				if !bytes.Equal(before, after) {
					t.Errorf("a failed write changed the file: %q -> %q", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(after)) != c.size {
				t.Errorf("file holds %q, want %d bytes", after, c.size)
			}
			if fi, err := fsys.Stat("I386/TXTSETUP.SIF"); err != nil || !fi.ModTime().Equal(mtime) {
				t.Errorf("ModTime %v, %v; want %v", fi.ModTime(), err, mtime)
			}
		})
	}
	ents, err := os.ReadDir(filepath.Join(root, "I386"))
	if err != nil || len(ents) != 1 {
		t.Errorf("I386 holds %v, %v: a write must leave no temporary file", ents, err)
	}

	f, err := fsys.Open("I386/txtsetup.SIF")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "new" {
		t.Errorf("Open: %q, %v", b, err)
	}
	if err := fsys.Mkdir("i386/Sub", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mkdir("MISSING/Sub", time.Time{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Mkdir below a missing directory: %v", err)
	}
	list, err := fsys.ReadDir("I386")
	if err != nil || len(list) != 2 || list[0].Name() != "Sub" || !list[0].IsDir() || list[1].Name() != "TXTSETUP.SIF" {
		t.Errorf("ReadDir: %v, %v", list, err)
	}
	if fsys.FreeBytes() >= 0 {
		t.Errorf("FreeBytes %d: a directory does not promise free space", fsys.FreeBytes())
	}
	if err := imagefs.CheckWritable(fsys); err != nil {
		t.Errorf("CheckWritable: %v", err)
	}
}
