package integrate

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// journalImage makes a FAT32 image and returns its path.
func journalImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if _, err := imagefs.Create(p, imagefs.CreateOptions{Size: 40 << 20, FS: "fat32"}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUndoJournal writes through OpenVolume, then UndoImage restores the
// image byte for byte; a sector changed since refuses the undo.
func TestUndoJournal(t *testing.T) {
	img := journalImage(t)
	pristine, _ := os.ReadFile(img)
	f, err := OpenVolume(img, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.MkdirAll("WINDOWS/system32", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := imagefs.WriteBytes(f, "WINDOWS/system32/a.sys", bytes.Repeat([]byte("x"), 70000)); err != nil {
		t.Fatal(err)
	}
	b0, err := f.ReadSector(0)
	if err != nil {
		t.Fatal(err)
	}
	b0[0x1a] = 16
	if err := f.WriteSector(0, b0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(img)
	if bytes.Equal(written, pristine) {
		t.Fatal("nothing written")
	}
	if _, err := os.Stat(filepath.Join(JournalDir(img), "001.journal")); err != nil {
		t.Fatal(err)
	}

	// Changed since: refused, nothing written.
	changed := bytes.Clone(written)
	changed[63*512+0x1a] = 17
	os.WriteFile(img, changed, 0o644)
	if _, err := UndoImage(img, false, false); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("undo of a changed image: %v", err)
	}
	if b, _ := os.ReadFile(img); !bytes.Equal(b, changed) {
		t.Fatal("a refused undo wrote")
	}
	os.WriteFile(img, written, 0o644)
	res, err := UndoImage(img, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Extents == 0 || res.Bytes%512 != 0 {
		t.Errorf("undo: %+v", res)
	}
	if b, _ := os.ReadFile(img); !bytes.Equal(b, pristine) {
		t.Error("undo did not restore the image byte for byte")
	}
	if _, err := os.Stat(JournalDir(img)); !os.IsNotExist(err) {
		t.Errorf("journal directory left: %v", err)
	}
	if _, err := UndoImage(img, false, false); err != ErrNoJournal {
		t.Errorf("undo without a journal: %v", err)
	}
}

// TestNoJournalWithoutWrites: an image opened writable and closed without
// a write gets no journal.
func TestNoJournalWithoutWrites(t *testing.T) {
	img := journalImage(t)
	f, err := OpenVolume(img, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(JournalDir(img)); !os.IsNotExist(err) {
		t.Errorf("journal written without writes: %v", err)
	}
}

// FuzzReadJournal: a damaged journal is an error naming the file and
// offset, never a panic or an allocation beyond the file.
func FuzzReadJournal(f *testing.F) {
	var b bytes.Buffer
	b.WriteString(journalMagic)
	binary.Write(&b, binary.LittleEndian, uint64(1<<20))
	binary.Write(&b, binary.LittleEndian, uint32(1))
	binary.Write(&b, binary.LittleEndian, uint64(512))
	binary.Write(&b, binary.LittleEndian, uint32(512))
	b.Write(make([]byte, 32+512))
	f.Add(b.Bytes())
	f.Add([]byte(journalMagic))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "j")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		exts, err := readJournal(p, 1<<20)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		for _, e := range exts {
			if e.off < 0 || e.off+int64(len(e.orig)) > 1<<20 || len(e.orig)%512 != 0 {
				t.Errorf("extent outside the device: %d+%d", e.off, len(e.orig))
			}
		}
	})
}

// TestAbort: Abort leaves the image byte for byte as opened, without a
// journal, after file and sector writes.
func TestAbort(t *testing.T) {
	img := journalImage(t)
	pristine, _ := os.ReadFile(img)
	f, err := OpenVolume(img, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagefs.WriteBytes(f, "big.bin", bytes.Repeat([]byte("y"), 200000)); err != nil {
		t.Fatal(err)
	}
	b0, _ := f.ReadSector(0)
	b0[0x18] = 1
	if err := f.WriteSector(0, b0); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(img); !bytes.Equal(b, pristine) {
		t.Error("Abort did not restore the image")
	}
	if _, err := os.Stat(JournalDir(img)); !os.IsNotExist(err) {
		t.Errorf("journal left after Abort: %v", err)
	}
}
