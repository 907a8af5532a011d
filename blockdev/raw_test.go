package blockdev

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func sparseFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(16 << 20)
	f.WriteAt(make([]byte, 1<<20), 4<<20) // explicit zeros are still data
	f.WriteAt([]byte("end"), 16<<20-3)
	return p
}

func TestRawExtents(t *testing.T) {
	d, err := OpenRaw(sparseFile(t), false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exts, err := d.Extents(0, d.Size())
	if err != nil {
		t.Fatal(err)
	}
	var pos, data int64
	for _, e := range exts {
		if e.Off != pos {
			t.Fatalf("extents not contiguous at %d: %+v", pos, exts)
		}
		pos += e.Len
		if e.State == Data {
			data += e.Len
		}
	}
	if pos != d.Size() {
		t.Fatalf("extents cover %d of %d bytes", pos, d.Size())
	}
	// File systems without SEEK_DATA report everything as data; with it, the
	// holes must show up and the written ranges must be data.
	if len(exts) > 1 && (data < 1<<20 || data > 2<<20+4096) {
		t.Errorf("%d data bytes, want the 1 MiB written plus the last block: %+v", data, exts)
	}
	sub, _ := d.Extents(4<<20, 4096)
	if len(sub) != 1 || sub[0].State != Data || sub[0].Off != 4<<20 || sub[0].Len != 4096 {
		t.Errorf("sub-range extents %+v", sub)
	}
}

func TestRawRangeAndReadOnly(t *testing.T) {
	p := sparseFile(t)
	d, _ := OpenRaw(p, false)
	defer d.Close()
	var re *RangeError
	if _, err := d.ReadAt(make([]byte, 10), d.Size()-5); !errors.As(err, &re) || re.Op != "read" {
		t.Errorf("read past end: %v", err)
	}
	if _, err := d.WriteAt([]byte("x"), 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write to read-only: %v", err)
	}
	w, err := OpenRaw(filepath.Join(t.TempDir(), "none"), true)
	if err == nil {
		w.Close()
		t.Error("missing file opened")
	}
}

// TestRawLocks: a writer excludes everyone; readers share.
func TestRawLocks(t *testing.T) {
	p := sparseFile(t)
	w, err := OpenRaw(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRaw(p, false); !errors.Is(err, ErrLocked) {
		t.Errorf("reader while writing: %v", err)
	}
	if _, err := OpenRaw(p, true); !errors.Is(err, ErrLocked) {
		t.Errorf("second writer: %v", err)
	}
	if _, err := w.WriteAt([]byte("x"), 0); err != nil {
		t.Error(err)
	}
	w.Close()
	r1, err := OpenRaw(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := OpenRaw(p, false)
	if err != nil {
		t.Errorf("second reader: %v", err)
	} else {
		r2.Close()
	}
	if _, err := OpenRaw(p, true); !errors.Is(err, ErrLocked) {
		t.Errorf("writer while reading: %v", err)
	}
}

// TestRawDiscard: a writable regular file punches holes that read as zeros
// and show as Zero extents; read-only images, ranges outside the device and
// files that are not regular refuse, each with its own error.
func TestRawDiscard(t *testing.T) {
	p := sparseFile(t)
	d, err := OpenRaw(p, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.ReadOnly() || !CanDiscard(d) {
		t.Fatalf("writable raw file: ReadOnly %v, CanDiscard %v", d.ReadOnly(), CanDiscard(d))
	}
	data := bytes.Repeat([]byte{0xa5}, 1<<20)
	if _, err := d.WriteAt(data, 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := d.Discard(8<<20, 512<<10); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1<<20)
	if _, err := d.ReadAt(got, 8<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:512<<10], make([]byte, 512<<10)) || !bytes.Equal(got[512<<10:], data[512<<10:]) {
		t.Error("discarded range does not read as zeros, or the rest changed")
	}
	if supportsSeekData(t, d) {
		if exts, err := d.Extents(8<<20, 512<<10); err != nil || len(exts) != 1 || exts[0].State != Zero {
			t.Errorf("discarded range still stored: %+v, %v", exts, err)
		}
	}
	if st, _ := os.Stat(p); st.Size() != 16<<20 {
		t.Errorf("discard changed the file size to %d", st.Size())
	}
	var re *RangeError
	for _, c := range [][2]int64{{-1, 1}, {16 << 20, 1}, {0, 17 << 20}, {0, -5}} {
		if err := d.Discard(c[0], c[1]); !errors.As(err, &re) || re.Op != "discard" {
			t.Errorf("Discard(%d, %d) = %v, want a RangeError", c[0], c[1], err)
		}
	}

	ro, err := OpenRawUnlocked(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if !ro.ReadOnly() || CanDiscard(ro) {
		t.Errorf("read-only raw file: ReadOnly %v, CanDiscard %v", ro.ReadOnly(), CanDiscard(ro))
	}
	if err := ro.Discard(0, 512); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Discard on a read-only image: %v", err)
	}

	// A character device is not a file with holes.
	dev, err := OpenRaw(os.DevNull, true)
	if err != nil {
		t.Skipf("%s: %v", os.DevNull, err)
	}
	defer dev.Close()
	if err := dev.Discard(0, 0); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Discard on %s: %v, want ErrNotSupported", os.DevNull, err)
	}
}

// supportsSeekData reports whether the test file system reports holes, so
// that an all-Data extent map is only an error where holes are visible.
func supportsSeekData(t *testing.T, d *Raw) bool {
	t.Helper()
	exts, err := d.Extents(0, d.Size())
	return err == nil && len(exts) > 1
}
