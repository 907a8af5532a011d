package ntfs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
)

// i30Files is how many files the $I30 $BITMAP tests put into /big: enough
// for a two-level index of several INDX blocks on every volume.
const i30Files = 300

// i30Name is the name of file i in /big; long names fill INDX blocks
// faster.
func i30Name(i int) string { return fmt.Sprintf("file%04d.txt", i) }

// fillWithXpboot makes /big in the volume img with xpboot's writer and
// puts i30Files small files into it.
func fillWithXpboot(t *testing.T, img []byte) {
	t.Helper()
	fs, err := OpenWritable(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Mkdir("/big", testTime); err != nil {
		t.Fatal(err)
	}
	for i := range i30Files {
		d := []byte(i30Name(i))
		if err := fs.WriteFile("/big/"+i30Name(i), bytes.NewReader(d), int64(len(d)), testTime); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
}

// i30Volumes makes the volumes the $I30 $BITMAP tests damage, each with a
// directory /big whose index has INDX blocks: mkntfs's small test volume
// and a volume of ntfs.Format, both filled by xpboot's writer, and a
// volume of mkntfs filled through an ntfs-3g mount, which then removed
// the first two thirds of the files so that ntfs-3g freed the blocks
// that emptied (it keeps them in $INDEX_ALLOCATION with a clear bit).
func i30Volumes(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}

	img := smallVolume(t)
	fillWithXpboot(t, img)
	out["mkntfs+xpboot"] = img

	img = make([]byte, 24<<20)
	if err := Format(&memDev{b: img}, 0, int64(len(img)), FormatOptions{Time: testTime, Serial: 0x1234}); err != nil {
		t.Fatal(err)
	}
	fillWithXpboot(t, img)
	out["Format+xpboot"] = img
	img = bytes.Clone(img)
	i30BitmapNonResident(t, img, recordOf(t, img, "big"))
	out["Format+xpboot, non-resident $BITMAP"] = img

	ops := []ntfstest.Op{{Kind: ntfstest.OpMkdir, Path: "big"}}
	for i := range i30Files {
		ops = append(ops, ntfstest.Op{Kind: ntfstest.OpPut, Path: "big/" + i30Name(i), Data: []byte(i30Name(i))})
	}
	for i := range 2 * i30Files / 3 {
		ops = append(ops, ntfstest.Op{Kind: ntfstest.OpRemove, Path: "big/" + i30Name(i)})
	}
	out["mkntfs+ntfs-3g"] = mkntfsVolume(t, ops)
	return out
}

// i30Layout is what a test needs to know of a directory's $I30 index.
type i30Layout struct {
	rec      uint64
	blocks   int64 // INDX blocks in $INDEX_ALLOCATION
	bsize    int64
	unit     int64
	reached  map[int64]bool // VCNs the tree reaches
	bm       []byte         // $BITMAP:$I30
	resident bool           // $BITMAP:$I30 is resident
}

func (l *i30Layout) vcn(idx int64) int64 { return idx * l.bsize / l.unit }

// i30Of walks the index of directory /name of img independently of Check.
func i30Of(t *testing.T, img []byte, name string) *i30Layout {
	t.Helper()
	rec := recordOf(t, img, name)
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := (&tx{v: v}).openIndex(rec)
	if err != nil {
		t.Fatal(err)
	}
	l := &i30Layout{rec: rec, bsize: int64(d.bsize), unit: d.unit, reached: map[int64]bool{}}
	var walk func(vcn int64)
	walk = func(vcn int64) {
		if vcn >= 0 {
			l.reached[vcn] = true
		}
		n, err := d.node(vcn)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range n.entries {
			if e.child >= 0 {
				walk(e.child)
			}
		}
	}
	walk(-1)
	runs, size, bm, err := d.allocation()
	if err != nil || runs == nil {
		t.Fatalf("/%s has no index allocation: %v", name, err)
	}
	bx, err := d.t.i30Attr(rec, atBitmap)
	if err != nil || bx == nil {
		t.Fatalf("/%s: $BITMAP:$I30: %v", name, err)
	}
	_, ba := bx.head()
	l.blocks, l.bm, l.resident = size/l.bsize, bm, !ba.nonRes
	return l
}

// patchI30Bitmap lets fn change the bits of $BITMAP:$I30 of directory
// record rec in img (resident or not), keeping its length.
func patchI30Bitmap(t *testing.T, img []byte, rec uint64, fn func(bm []byte)) {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	// The bitmap may sit in an extension record behind an $ATTRIBUTE_LIST.
	bx, err := (&tx{v: v}).i30Attr(rec, atBitmap)
	if err != nil || bx == nil {
		t.Fatalf("record %d: $BITMAP:$I30: %v", rec, err)
	}
	r, ba := bx.head()
	if !ba.nonRes {
		corruptRecord(t, img, r.num, func(r *record) {
			as, _ := r.attrs()
			fn(r.value(find(as, atBitmap, "$I30")))
		})
		return
	}
	bm, runs, err := v.attrData(r, ba)
	if err != nil {
		t.Fatal(err)
	}
	fn(bm)
	for i := range bm {
		off, err := v.locate(runs, int64(i), 1, int64(r.num))
		if err != nil {
			t.Fatal(err)
		}
		img[off] = bm[i]
	}
}

// i30BitmapNonResident moves $BITMAP:$I30 of directory record rec out of
// the record into the last free cluster, as Windows and ntfs-3g store the
// bitmap of a directory too large for a resident one. The volume stays
// consistent: the cluster is marked in $Bitmap.
func i30BitmapNonResident(t *testing.T, img []byte, rec uint64) {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	lcn := v.clusters - 1
	for lcn > 0 && bit(v.bitmap, lcn) {
		lcn--
	}
	off, err := v.locate(v.bmRuns, lcn/8, 1, recBitmap)
	if err != nil || lcn == 0 {
		t.Fatalf("no free cluster for the bitmap: %v", err)
	}
	img[off] |= 1 << (lcn % 8)
	corruptRecord(t, img, rec, func(r *record) {
		as, _ := r.attrs()
		ba := find(as, atBitmap, "$I30")
		bm := bytes.Clone(r.value(ba))
		copy(img[lcn*v.csize:(lcn+1)*v.csize], make([]byte, v.csize))
		copy(img[lcn*v.csize:], bm)
		r.removeAttr(ba.off)
		if r.insertAttr(nonResidentAttr(atBitmap, i30, encodeRuns([]run{{lcn: lcn, n: 1}}), 1, int64(len(bm)), int64(len(bm)), v.csize)) < 0 {
			t.Fatal("no room for a non-resident $BITMAP:$I30")
		}
	})
}

// setI30Size changes the length of $BITMAP:$I30 (the value length when
// resident, the data and initialized sizes when not).
func setI30Size(r *record, n int) {
	as, _ := r.attrs()
	ba := find(as, atBitmap, "$I30")
	if ba.nonRes {
		put64(r.b, ba.off+0x30, uint64(n))
		put64(r.b, ba.off+0x38, uint64(n))
		return
	}
	put32(r.b, ba.off+0x10, uint32(n))
}

// TestCheckI30Bitmap: the three writers' directories of several INDX
// blocks check clean, and each damage to $BITMAP:$I30 gives exactly one
// "$I30 $BITMAP" finding of the right severity naming /big and the VCN.
//
// What the peers make of the same damage (ntfs-3g 2022.10.3, observed on
// images this test wrote): `ntfsfix -n` reads neither $BITMAP:$I30 nor the
// INDX blocks and exits 0 on every case. `ntfsls -p /big` (libntfs's
// readdir, the one an ntfs-3g mount uses) walks the INDX blocks in bitmap
// order rather than down the tree, so the damage changes what it lists:
// with $BITMAP:$I30 removed it fails ("Failed to open index bitmap
// attribute"); a reached block's bit cleared silently drops that block's
// names (18 of 300 on the xpboot volumes); an unreached bit set makes it read the block: xpboot's zeroed
// spare block gives "Corrupt index block signature", ntfs-3g's freed block
// brings a deleted name (file0016.txt) back into the listing; a bit past
// the allocation gives "Failed to read index block"; the truncated bitmap
// hides the last blocks' names (ntfs-3g volume: 71 of 101 lines). None of
// these makes a Linux tool report an inconsistency; chkdsk would.
func TestCheckI30Bitmap(t *testing.T) {
	type damage struct {
		name     string
		severity string
		// apply damages img and returns the substrings the finding's
		// message must hold.
		apply func(t *testing.T, img []byte, l *i30Layout) (want []string)
	}
	damages := []damage{
		{"reached block's bit cleared", SeverityError, func(t *testing.T, img []byte, l *i30Layout) []string {
			vcn := sortedKeys(l.reached)[len(l.reached)-1]
			idx := vcn * l.unit / l.bsize
			patchI30Bitmap(t, img, l.rec, func(bm []byte) { bm[idx/8] &^= 1 << (idx % 8) })
			return []string{fmt.Sprintf("VCN %d at byte", vcn), "bit is clear"}
		}},
		{"unreached block's bit set", SeverityWarning, func(t *testing.T, img []byte, l *i30Layout) []string {
			for idx := int64(0); idx < l.blocks; idx++ {
				if !bit(l.bm, idx) && !l.reached[l.vcn(idx)] {
					patchI30Bitmap(t, img, l.rec, func(bm []byte) { bm[idx/8] |= 1 << (idx % 8) })
					return []string{fmt.Sprintf("VCN %d at byte", l.vcn(idx)), "never reaches"}
				}
			}
			t.Fatalf("all %d INDX blocks of /big are in use: the volume has no free block to mark", l.blocks)
			return nil
		}},
		{"$BITMAP:$I30 removed", SeverityError, func(t *testing.T, img []byte, l *i30Layout) []string {
			corruptRecord(t, img, l.rec, func(r *record) {
				as, _ := r.attrs()
				r.removeAttr(find(as, atBitmap, "$I30").off)
			})
			return []string{"no $BITMAP:$I30"}
		}},
		{"$BITMAP:$I30 truncated", SeverityError, func(t *testing.T, img []byte, l *i30Layout) []string {
			n := (l.blocks - 1) / 8 // the last block loses its bit
			corruptRecord(t, img, l.rec, func(r *record) { setI30Size(r, int(n)) })
			return []string{"too short", fmt.Sprintf("from VCN %d on", l.vcn(n*8))}
		}},
		{"bit past the allocation set", SeverityError, func(t *testing.T, img []byte, l *i30Layout) []string {
			if l.blocks >= int64(len(l.bm))*8 {
				t.Fatalf("$BITMAP:$I30 of %d bytes has no bit past the %d blocks", len(l.bm), l.blocks)
			}
			idx := l.blocks
			patchI30Bitmap(t, img, l.rec, func(bm []byte) { bm[idx/8] |= 1 << (idx % 8) })
			return []string{fmt.Sprintf("bit %d of $BITMAP:$I30 (VCN %d) is set", idx, l.vcn(idx)), fmt.Sprintf("only %d INDX blocks", l.blocks)}
		}},
	}
	for vname, clean := range i30Volumes(t) {
		t.Run(vname, func(t *testing.T) {
			l := i30Of(t, clean, "big")
			t.Logf("/big: %d INDX blocks of %d bytes, %d reached, bitmap %d bytes (resident %v)", l.blocks, l.bsize, len(l.reached), len(l.bm), l.resident)
			if len(l.reached) < 2 {
				t.Fatalf("/big reaches %d INDX blocks; the test needs a two-level index", len(l.reached))
			}
			if fs, err := Check(bytes.NewReader(clean), 0, int64(len(clean))); err != nil || len(fs) != 0 {
				t.Fatalf("clean volume: %v %+v", err, fs)
			}
			for _, dm := range damages {
				t.Run(dm.name, func(t *testing.T) {
					img := bytes.Clone(clean)
					want := dm.apply(t, img, l)
					fs, err := Check(bytes.NewReader(img), 0, int64(len(img)))
					if err != nil {
						t.Fatal(err)
					}
					var mine []Finding
					for _, f := range fs {
						if f.Structure == "$I30 $BITMAP" {
							mine = append(mine, f)
						}
					}
					if len(mine) != 1 {
						t.Fatalf("want one $I30 $BITMAP finding, got %+v", fs)
					}
					f := mine[0]
					if f.Severity != dm.severity || f.Path != "/big" || f.Offset <= 0 || f.Offset >= int64(len(img)) {
						t.Errorf("finding %+v: want severity %s, path /big, an offset inside the volume", f, dm.severity)
					}
					for _, w := range want {
						if !strings.Contains(f.Message, w) {
							t.Errorf("message %q lacks %q", f.Message, w)
						}
					}
				})
			}
		})
	}
}
