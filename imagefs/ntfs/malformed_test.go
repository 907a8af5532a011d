package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
)

// corruptRecord decodes MFT record n of the volume img, lets fn change it,
// and writes it back with valid fixups, so that only fn's lie remains.
func corruptRecord(t *testing.T, img []byte, n uint64, fn func(r *record)) {
	t.Helper()
	v, err := openVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.record(n)
	if err != nil {
		t.Fatal(err)
	}
	fn(r)
	off, _ := v.locate(v.mftRuns, int64(n)*int64(v.recSize), int64(v.recSize), int64(n))
	copy(img[off:], fixup(r.b))
}

func attrOf(t *testing.T, r *record, typ uint32) *attr {
	as, err := r.attrs()
	if err != nil {
		t.Fatal(err)
	}
	for i := range as {
		if as[i].typ == typ {
			return &as[i]
		}
	}
	t.Fatalf("record %d has no attribute 0x%x", r.num, typ)
	return nil
}

// recordOf finds the record number of a root entry.
func recordOf(t *testing.T, img []byte, name string) uint64 {
	v, err := openVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := v.record(recRoot)
	ref, _, ok, err := (&tx{v: v}).lookup(root, utf16.Encode([]rune(name)))
	if err != nil || !ok {
		t.Fatalf("%s: %v", name, err)
	}
	return refRecord(ref)
}

// TestMalformed corrupts a good volume at known places: every case must
// give an error naming the record (or volume) and offset, and must not
// write a byte.
func TestMalformed(t *testing.T) {
	good := smallVolume(t)
	nonres := recordOf(t, good, "NONRES.BIN")
	cases := []struct {
		name  string
		mess  func(t *testing.T, b []byte)
		op    func(fs *FS) error
		wants []string
	}{
		{"boot sector bytes per sector", func(t *testing.T, b []byte) { b[0x0B], b[0x0C] = 0, 0 },
			nil, []string{"boot sector", "bytes per sector"}},
		{"MFT outside the volume", func(t *testing.T, b []byte) { put64(b, 0x30, 1<<40) },
			nil, []string{"outside the volume"}},
		{"torn MFT record", func(t *testing.T, b []byte) {
			v, _ := openVol(&memDev{b: b}, 0, int64(len(b)))
			off, _ := v.locate(v.mftRuns, 5*int64(v.recSize), 1024, 5)
			b[off+510] ^= 0xFF
		}, nil, []string{"MFT record 5", "fixup"}},
		{"attribute offset lies", func(t *testing.T, b []byte) {
			corruptRecord(t, b, recRoot, func(r *record) { put16(r.b, 0x14, 0x3F8) })
		}, nil, []string{"MFT record 5", "0x18"}},
		{"attribute length lies", func(t *testing.T, b []byte) {
			corruptRecord(t, b, recRoot, func(r *record) { put32(r.b, int(u16(r.b, 0x14))+4, 0xFFF0) })
		}, nil, []string{"MFT record 5", "length"}},
		{"index entry length lies", func(t *testing.T, b []byte) {
			corruptRecord(t, b, recRoot, func(r *record) {
				a := attrOf(t, r, atIndexRoot)
				put16(r.b, a.valOff+0x20+8, 0x7FF8)
			})
		}, nil, []string{"MFT record 5", "index entry length"}},
		{"runlist outside the volume", func(t *testing.T, b []byte) {
			corruptRecord(t, b, nonres, func(r *record) {
				a := attrOf(t, r, atData)
				r.b[a.runsOff] = 0x41 // 1-byte length, 4-byte LCN
				put32(r.b, a.runsOff+2, 0x7FFFFFF0)
				r.b[a.runsOff+6] = 0
			})
		}, func(fs *FS) error {
			return fs.WriteFile("/NONRES.BIN", strings.NewReader("x"), 1, testTime)
		}, []string{fmt.Sprintf("MFT record %d", nonres), "outside the volume"}},
		{"subnode VCN in a root without allocation", func(t *testing.T, b []byte) {
			corruptRecord(t, b, recRoot, func(r *record) {
				// Make the END entry claim a subnode (VCN 0) that does
				// not exist: the entry grows by 8 bytes in place of
				// nothing, so point its flags only and lengthen it.
				a := attrOf(t, r, atIndexRoot)
				val := r.b[a.valOff:]
				eo, il := int(u32(val, 0x10)), int(u32(val, 0x14))
				for pos := 0x10 + eo; pos < 0x10+il; pos += int(u16(val, pos+8)) {
					if u16(val, pos+12)&ieEnd != 0 {
						put16(val, pos+12, ieEnd|ieSubnode)
						put16(val, pos+8, 0x10)
						break
					}
				}
			})
		}, nil, []string{"MFT record 5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := bytes.Clone(good)
			c.mess(t, img)
			before := bytes.Clone(img)
			dev := &memDev{b: img}
			var err error
			fs := &FS{r: dev, dev: dev, size: int64(len(img))}
			if c.op != nil {
				err = c.op(fs)
			} else {
				err = fs.WriteFile("/new.txt", strings.NewReader("hello"), 5, testTime)
			}
			if err == nil {
				t.Fatal("corrupted volume accepted")
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var fe *FormatError
			if !errors.As(err, &fe) && !errors.Is(err, ErrRefused) {
				t.Errorf("error %v is neither a FormatError nor a refusal", err)
			}
			if !bytes.Equal(before, img) {
				t.Error("a corrupted volume was written")
			}
		})
	}
}

// TestIndexLoop makes an INDX block point to itself: lookups must stop with
// an error naming the directory, not loop.
func TestIndexLoop(t *testing.T) {
	img := smallVolume(t)
	dev := &memDev{b: img}
	fs, err := OpenWritable(dev, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		if err := fs.WriteFile(fmt.Sprintf("/file-with-a-long-name-%03d.txt", i), strings.NewReader("x"), 1, testTime); err != nil {
			t.Fatal(err)
		}
	}
	v := fs.w
	tx := v.begin()
	d, err := tx.openIndex(recRoot)
	if err != nil {
		t.Fatal(err)
	}
	root, err := d.node(-1)
	if err != nil || root.leaf() {
		t.Fatalf("root is still a leaf after 60 files (%v)", err)
	}
	child := root
	for !child.leaf() {
		if child, err = d.node(child.entries[0].child); err != nil {
			t.Fatal(err)
		}
	}
	// Turn the leftmost leaf into a node whose entries point back to
	// itself.
	for i := range child.entries {
		child.entries[i].child = child.vcn
	}
	child.dirty = true
	if err := d.flush(); err != nil {
		t.Fatal(err)
	}
	if err := tx.commit(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(img)
	fs2, _ := OpenWritable(dev, 0, int64(len(img)))
	err = fs2.WriteFile("/a-before-all.txt", strings.NewReader("x"), 1, testTime)
	if err == nil || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("index loop: %v", err)
	}
	if !bytes.Equal(before, img) {
		t.Error("volume written despite the loop")
	}
}
