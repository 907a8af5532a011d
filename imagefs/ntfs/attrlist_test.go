package ntfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// listName is the name of file i in the $ATTRIBUTE_LIST volume's /big:
// 45 characters, so that 300 of them make ntfs-3g move the directory's
// index attributes out of its full base record.
func listName(i int) string { return fmt.Sprintf("entry number %04d of the big directory.txt", i) }

// mkntfsVolume makes a 24 MiB volume with mkntfs -c 4096 and applies ops
// to it through an ntfs-3g mount; it returns the volume's bytes.
func mkntfsVolume(t *testing.T, ops []ntfstest.Op) []byte {
	t.Helper()
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	vol := filepath.Join(t.TempDir(), "list.ntfs")
	if err := os.WriteFile(vol, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol, 24<<20); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, mkntfs, "-F", "-f", "-q", "-c", "4096", vol).CombinedOutput(); err != nil {
		t.Fatalf("mkntfs: %v\n%s", err, b)
	}
	img, err := os.ReadFile(ntfstest.Twin(t, vol, 0, ops))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// listOps makes /big and puts i30Files files of 45-character names into
// it, then removes the first remove of them.
func listOps(remove int) []ntfstest.Op {
	ops := []ntfstest.Op{{Kind: ntfstest.OpMkdir, Path: "big"}}
	for i := range i30Files {
		ops = append(ops, ntfstest.Op{Kind: ntfstest.OpPut, Path: "big/" + listName(i), Data: []byte(listName(i))})
	}
	for i := range remove {
		ops = append(ops, ntfstest.Op{Kind: ntfstest.OpRemove, Path: "big/" + listName(i)})
	}
	return ops
}

// patchAttrList lets fn change the value of the $ATTRIBUTE_LIST of record
// rec in img (resident or not), keeping its length.
func patchAttrList(t *testing.T, img []byte, rec uint64, fn func(val []byte, l *attrList)) {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.record(rec)
	if err != nil {
		t.Fatal(err)
	}
	as, _ := r.attrs()
	la := find(as, atAttributeList, "")
	if la == nil {
		t.Fatalf("record %d has no $ATTRIBUTE_LIST", rec)
	}
	l, err := v.readAttrList(r, la)
	if err != nil {
		t.Fatal(err)
	}
	if !la.nonRes {
		corruptRecord(t, img, rec, func(r *record) {
			as, _ := r.attrs()
			fn(r.value(find(as, atAttributeList, "")), l)
		})
		return
	}
	val, runs, err := v.attrData(r, la)
	if err != nil {
		t.Fatal(err)
	}
	fn(val, l)
	for i := range val[:la.init] {
		off, err := v.locate(runs, int64(i), 1, int64(rec))
		if err != nil {
			t.Fatal(err)
		}
		img[off] = val[i]
	}
}

// listEntryOf returns the entry of l for attribute typ $I30 at VCN 0.
func listEntryOf(t *testing.T, l *attrList, typ uint32) listEntry {
	t.Helper()
	for _, e := range l.entries {
		if e.typ == typ && sameName(e.name, "$I30") && e.lowVCN == 0 {
			return e
		}
	}
	t.Fatalf("the $ATTRIBUTE_LIST of record %d lists no 0x%x $I30", l.base.num, typ)
	return listEntry{}
}

// freeRecord returns a record number of img that is not in use.
func freeRecord(t *testing.T, img []byte) uint64 {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(firstUserRecord); n < v.mftRecs; n++ {
		if r, err := v.record(uint64(n)); err == nil && !r.inUse() && !bit(v.mftBitmap, n) {
			return uint64(n)
		}
	}
	t.Fatal("no free MFT record")
	return 0
}

// listVolumes makes the volumes whose /big keeps $INDEX_ROOT:$I30 in an
// extension record behind an $ATTRIBUTE_LIST (ntfs-3g moves it there when
// the base record fills): 300 files of 45-character names, and the same
// after ntfs-3g removed 200 of them.
func listVolumes(t *testing.T) map[string][]byte {
	t.Helper()
	return map[string][]byte{
		"300 files":           mkntfsVolume(t, listOps(0)),
		"200 of them removed": mkntfsVolume(t, listOps(200)),
	}
}

// TestCheckAttrList: a directory whose $I30 attributes sit where its
// $ATTRIBUTE_LIST says checks clean, its index walk and $BITMAP:$I30
// comparison run (a cleared bit of a reached block is found), and a list
// entry naming a free record, or an extension record naming another base,
// gives exactly one "$ATTRIBUTE_LIST" finding naming /big and the entry.
func TestCheckAttrList(t *testing.T) {
	type damage struct {
		name      string
		structure string
		apply     func(t *testing.T, img []byte, l *i30Layout, al *attrList) (want []string)
	}
	damages := []damage{
		{"$INDEX_ROOT entry names a free record", "$ATTRIBUTE_LIST", func(t *testing.T, img []byte, l *i30Layout, al *attrList) []string {
			e := listEntryOf(t, al, atIndexRoot)
			free := freeRecord(t, img)
			patchAttrList(t, img, l.rec, func(val []byte, _ *attrList) { put64(val, e.off+0x10, mftRef(free, uint16(e.ref>>48))) })
			return []string{fmt.Sprintf("entry %d ($INDEX_ROOT $I30", e.num), fmt.Sprintf("record %d, which is not in use", free)}
		}},
		{"extension record names another base", "$ATTRIBUTE_LIST", func(t *testing.T, img []byte, l *i30Layout, al *attrList) []string {
			e := listEntryOf(t, al, atIndexRoot)
			ext := refRecord(e.ref)
			if ext == l.rec {
				t.Fatal("$INDEX_ROOT is in the base record; the volume does not exercise extension records")
			}
			corruptRecord(t, img, ext, func(r *record) { put64(r.b, 0x20, mftRef(recRoot, recRoot)) })
			return []string{fmt.Sprintf("entry %d ($INDEX_ROOT $I30", e.num), fmt.Sprintf("record %d, an extension of record 5, not of record %d", ext, l.rec)}
		}},
		{"reached block's bit cleared", "$I30 $BITMAP", func(t *testing.T, img []byte, l *i30Layout, al *attrList) []string {
			vcn := sortedKeys(l.reached)[len(l.reached)-1]
			idx := vcn * l.unit / l.bsize
			patchI30Bitmap(t, img, l.rec, func(bm []byte) { bm[idx/8] &^= 1 << (idx % 8) })
			return []string{fmt.Sprintf("VCN %d at byte", vcn), "bit is clear"}
		}},
	}
	for vname, clean := range listVolumes(t) {
		t.Run(vname, func(t *testing.T) {
			l := i30Of(t, clean, "big")
			v, err := loadVol(&memDev{b: clean}, 0, int64(len(clean)))
			if err != nil {
				t.Fatal(err)
			}
			base, _ := v.record(l.rec)
			as, _ := base.attrs()
			la := find(as, atAttributeList, "")
			if la == nil {
				t.Fatalf("/big (record %d) has no $ATTRIBUTE_LIST: the test needs ntfs-3g to have moved its index out", l.rec)
			}
			al, err := v.readAttrList(base, la)
			if err != nil {
				t.Fatal(err)
			}
			root := listEntryOf(t, al, atIndexRoot)
			t.Logf("/big: record %d, $ATTRIBUTE_LIST of %d entries (non-resident %v), $INDEX_ROOT in record %d; %d INDX blocks, %d reached",
				l.rec, len(al.entries), la.nonRes, refRecord(root.ref), l.blocks, len(l.reached))
			if refRecord(root.ref) == l.rec || len(l.reached) < 2 {
				t.Fatal("the test needs $INDEX_ROOT in an extension record and a two-level index")
			}
			if fs, err := Check(bytes.NewReader(clean), 0, int64(len(clean))); err != nil || len(fs) != 0 {
				t.Fatalf("clean volume: %v %+v", err, fs)
			}
			for _, dm := range damages {
				t.Run(dm.name, func(t *testing.T) {
					img := bytes.Clone(clean)
					want := dm.apply(t, img, l, al)
					fs, err := Check(bytes.NewReader(img), 0, int64(len(img)))
					if err != nil {
						t.Fatal(err)
					}
					if len(fs) != 1 {
						t.Fatalf("want one finding, got %+v", fs)
					}
					f := fs[0]
					t.Logf("%s at 0x%x: %s", f.Structure, f.Offset, f.Message)
					if f.Structure != dm.structure || f.Severity != SeverityError || f.Path != "/big" || f.Offset <= 0 || f.Offset >= int64(len(img)) {
						t.Errorf("finding %+v: want structure %s, severity error, path /big, an offset inside the volume", f, dm.structure)
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

// TestAttrListDirectoryReadOnly: xpboot lists and reads a directory whose
// index lives behind an $ATTRIBUTE_LIST, and refuses every change of its
// index (put, overwrite, mkdir, rm of an entry, rm of the directory) with
// ErrRefused naming the directory, leaving the volume byte for byte as it
// was. Other directories stay writable.
func TestAttrListDirectoryReadOnly(t *testing.T) {
	clean := mkntfsVolume(t, listOps(0))
	img := bytes.Clone(clean)
	fs, err := OpenWritable(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	list, err := fs.ReadDir("/big")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != i30Files || list[0].Name() != listName(0) || list[i30Files-1].Name() != listName(i30Files-1) {
		t.Fatalf("ReadDir(/big): %d entries, want %d from %q", len(list), i30Files, listName(0))
	}
	f, err := fs.OpenFile("/big/" + listName(123))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, f.Size())
	if _, err := f.ReadAt(got, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if string(got) != listName(123) {
		t.Fatalf("read %q, want %q", got, listName(123))
	}
	data := []byte("new data")
	ops := []struct {
		name string
		do   func() error
	}{
		{"put", func() error { return fs.WriteFile("/big/new.txt", bytes.NewReader(data), int64(len(data)), testTime) }},
		{"overwrite", func() error {
			return fs.WriteFile("/big/"+listName(7), bytes.NewReader(data), int64(len(data)), testTime)
		}},
		{"mkdir", func() error { return fs.Mkdir("/big/sub", testTime) }},
		{"rm entry", func() error { return fs.Remove("/big/" + listName(9)) }},
		{"rm directory", func() error { return fs.Remove("/big") }},
	}
	for _, op := range ops {
		err := op.do()
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), `"big" (MFT record`) || !strings.Contains(err.Error(), "$ATTRIBUTE_LIST") {
			t.Errorf("%s: %v; want a refusal naming the directory and its $ATTRIBUTE_LIST", op.name, err)
		}
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, clean) {
		for i := range img {
			if img[i] != clean[i] {
				t.Fatalf("the refused changes wrote the volume (first difference at byte 0x%x)", i)
			}
		}
	}
	if err := fs.WriteFile("/other.txt", bytes.NewReader(data), int64(len(data)), testTime); err != nil {
		t.Fatalf("put beside /big: %v", err)
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	if fs, err := Check(bytes.NewReader(img), 0, int64(len(img))); err != nil || len(fs) != 0 {
		t.Fatalf("after a put beside /big: %v %+v", err, fs)
	}
}

// listSeed is a FuzzCheckNTFS input that gives a directory of the small
// test volume an $ATTRIBUTE_LIST: one patch of whole MFT records.
type listSeed struct {
	at    uint32
	patch []byte
	// want is the structure of the one finding Check must give on the
	// patched volume, or "" for none.
	want string
}

// moveExtendRoot moves $INDEX_ROOT:$I30 of $Extend (record 11) of the
// small volume img into record 12 (a reserved record mkntfs leaves in
// use), which becomes an extension record of 11, and gives 11 a resident
// $ATTRIBUTE_LIST; edit may then change record 11's list value and
// record 12. It returns the patch covering both records.
func moveExtendRoot(t *testing.T, img []byte, edit func(list []byte, ext *record)) ([]byte, uint32) {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := v.record(11)
	bas, _ := base.attrs()
	ra := find(bas, atIndexRoot, "$I30")
	if ra == nil {
		t.Fatal("$Extend has no $INDEX_ROOT $I30")
	}
	rootAttr := bytes.Clone(base.b[ra.off : ra.off+ra.length])
	old, _ := v.record(12)
	ext := &record{num: 12, b: emptyRecord(12, old.seq(), v.recSize)}
	put16(ext.b, 0x16, recInUse)
	put64(ext.b, 0x20, mftRef(11, base.seq()))
	pos := ext.insertAttr(rootAttr)
	extID := u16(ext.b, pos+0x0E)
	var list []byte
	for _, a := range bas {
		ref, id := base.ref(), a.id
		if a.typ == atIndexRoot {
			ref, id = ext.ref(), extID
		}
		e := make([]byte, align8(0x1A+2*len(a.name)))
		put32(e, 0, a.typ)
		put16(e, 4, uint16(len(e)))
		e[6], e[7] = byte(len(a.name)), 0x1A
		put64(e, 0x10, ref)
		put16(e, 0x18, id)
		for i, c := range a.name {
			put16(e, 0x1A+2*i, c)
		}
		list = append(list, e...)
	}
	if edit != nil {
		edit(list, ext)
	}
	off11, _ := v.locate(v.mftRuns, 11*int64(v.recSize), int64(v.recSize), 11)
	corruptRecord(t, img, 11, func(r *record) {
		as, _ := r.attrs()
		r.removeAttr(find(as, atIndexRoot, "$I30").off)
		if r.insertAttr(residentAttr(atAttributeList, nil, list, 0)) < 0 {
			t.Fatal("no room for the $ATTRIBUTE_LIST in record 11")
		}
	})
	copy(img[off11+int64(v.recSize):], fixup(ext.b))
	return bytes.Clone(img[off11 : off11+2*int64(v.recSize)]), uint32(off11)
}

// selfList gives record rec of img a resident $ATTRIBUTE_LIST naming its
// own attributes, all in the record itself (as Windows lists the
// attributes that stay in a base record).
func selfList(t *testing.T, img []byte, rec uint64) {
	t.Helper()
	corruptRecord(t, img, rec, func(r *record) {
		as, _ := r.attrs()
		var list []byte
		for _, a := range as {
			e := make([]byte, align8(0x1A+2*len(a.name)))
			put32(e, 0, a.typ)
			put16(e, 4, uint16(len(e)))
			e[6], e[7] = byte(len(a.name)), 0x1A
			put64(e, 0x08, uint64(a.lowVCN))
			put64(e, 0x10, r.ref())
			put16(e, 0x18, a.id)
			for i, c := range a.name {
				put16(e, 0x1A+2*i, c)
			}
			list = append(list, e...)
		}
		if r.insertAttr(residentAttr(atAttributeList, nil, list, 0)) < 0 {
			t.Fatalf("no room for an $ATTRIBUTE_LIST in record %d", rec)
		}
	})
}

// attrListSeeds builds the FuzzCheckNTFS seeds that give the small
// volume's directories an $ATTRIBUTE_LIST, by file name.
func attrListSeeds(t *testing.T) map[string]listSeed {
	t.Helper()
	out := map[string]listSeed{}
	// The root lists its own attributes, all in its base record.
	img := smallVolume(t)
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	off5, _ := v.locate(v.mftRuns, recRoot*int64(v.recSize), int64(v.recSize), recRoot)
	selfList(t, img, recRoot)
	out["attrlist_root_self"] = listSeed{uint32(off5), bytes.Clone(img[off5 : off5+int64(v.recSize)]), ""}

	patch, at := moveExtendRoot(t, smallVolume(t), nil)
	out["attrlist_extend_ext"] = listSeed{at, patch, ""}
	patch, at = moveExtendRoot(t, smallVolume(t), func(list []byte, _ *record) {
		for pos := 0; pos < len(list); pos += int(u16(list, pos+4)) {
			if u32(list, pos) == atIndexRoot {
				put64(list, pos+0x10, mftRef(16, 1)) // a free record
			}
		}
	})
	out["attrlist_extend_free"] = listSeed{at, patch, "$ATTRIBUTE_LIST"}
	patch, at = moveExtendRoot(t, smallVolume(t), func(_ []byte, ext *record) {
		put64(ext.b, 0x20, mftRef(recRoot, recRoot)) // another file's extension
	})
	out["attrlist_extend_otherbase"] = listSeed{at, patch, "$ATTRIBUTE_LIST"}
	return out
}

// TestAttrListSeeds: the FuzzCheckNTFS seeds with an $ATTRIBUTE_LIST are
// what attrListSeeds builds (UPDATE_GOLDEN=1 rewrites them), and they
// reach what they are meant to: the root's list naming only itself and
// $Extend's $INDEX_ROOT in an extension record check clean; an entry
// naming a free record, or an extension naming another base, gives one
// $ATTRIBUTE_LIST finding.
func TestAttrListSeeds(t *testing.T) {
	for name, s := range attrListSeeds(t) {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", "fuzz", "FuzzCheckNTFS", name)
			enc := fmt.Sprintf("go test fuzz v1\nuint32(%d)\n[]byte(%q)\n", s.at, s.patch)
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(file, []byte(enc), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := os.ReadFile(file); err != nil || string(got) != enc {
				t.Fatalf("%s is not the seed attrListSeeds builds (%v); UPDATE_GOLDEN=1 rewrites it", file, err)
			}
			img := smallVolume(t)
			copy(img[s.at:], s.patch)
			fs, err := Check(bytes.NewReader(img), 0, int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				t.Logf("%s at 0x%x (%s): %s", f.Structure, f.Offset, f.Path, f.Message)
			}
			switch {
			case s.want == "" && len(fs) != 0:
				t.Fatalf("want no findings, got %d", len(fs))
			case s.want != "" && (len(fs) != 1 || fs[0].Structure != s.want):
				t.Fatalf("want one %s finding, got %+v", s.want, fs)
			}
		})
	}
}

// setAttrList replaces the value of the $ATTRIBUTE_LIST of record rec in
// img with val (within the list's allocation when non-resident).
func setAttrList(t *testing.T, img []byte, rec uint64, val []byte) {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := v.record(rec)
	as, _ := r.attrs()
	la := find(as, atAttributeList, "")
	if !la.nonRes {
		corruptRecord(t, img, rec, func(r *record) {
			as, _ := r.attrs()
			la := find(as, atAttributeList, "")
			if !r.resizeAttr(la.off, align8(la.valOff-la.off+len(val))) {
				t.Fatal("no room for the longer $ATTRIBUTE_LIST")
			}
			put32(r.b, la.off+0x10, uint32(len(val)))
			copy(r.b[la.valOff:], val)
		})
		return
	}
	if int64(len(val)) > la.alloc {
		t.Fatalf("$ATTRIBUTE_LIST of %d bytes does not fit its %d-byte allocation", len(val), la.alloc)
	}
	runs, err := v.runs(r, la)
	if err != nil {
		t.Fatal(err)
	}
	for i := range val {
		off, err := v.locate(runs, int64(i), 1, int64(rec))
		if err != nil {
			t.Fatal(err)
		}
		img[off] = val[i]
	}
	corruptRecord(t, img, rec, func(r *record) {
		as, _ := r.attrs()
		la := find(as, atAttributeList, "")
		put64(r.b, la.off+0x30, uint64(len(val)))
		put64(r.b, la.off+0x38, uint64(len(val)))
	})
}

// splitAllocation splits $INDEX_ALLOCATION:$I30 of directory record rec
// (which has an $ATTRIBUTE_LIST) at VCN at: the VCNs from at on move into
// a second attribute record in extension record ext, listed after the
// first, as Windows and ntfs-3g store a runlist that outgrew its record.
// gap shifts the second piece's lowest VCN (0 for a valid split).
func splitAllocation(t *testing.T, img []byte, rec, ext uint64, at, gap int64) {
	t.Helper()
	v, err := loadVol(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := v.record(rec)
	as, _ := base.attrs()
	ia := find(as, atIndexAllocation, "$I30")
	if ia == nil {
		t.Fatal("$INDEX_ALLOCATION:$I30 is not in the base record")
	}
	runs, err := v.runs(base, ia)
	if err != nil {
		t.Fatal(err)
	}
	keep, cut := truncRuns(runs, at)
	if len(cut) == 0 {
		t.Fatalf("$INDEX_ALLOCATION:$I30 has only %d clusters", runClusters(runs))
	}
	corruptRecord(t, img, rec, func(r *record) {
		as, _ := r.attrs()
		ia := find(as, atIndexAllocation, "$I30")
		enc := encodeRuns(keep)
		ro := ia.runsOff - ia.off
		if !r.resizeAttr(ia.off, align8(ro+len(enc))) {
			t.Fatal("resize")
		}
		copy(r.b[ia.off+ro:], enc)
		put64(r.b, ia.off+0x18, uint64(at-1))
	})
	piece := nonResidentAttr(atIndexAllocation, i30, encodeRuns(cut), runClusters(cut), 0, 0, v.csize)
	put64(piece, 0x10, uint64(at+gap))
	put64(piece, 0x18, uint64(at+gap+runClusters(cut)-1))
	put64(piece, 0x28, 0) // sizes live in the first piece only
	var id uint16
	var extRef uint64
	corruptRecord(t, img, ext, func(r *record) {
		pos := r.insertAttr(piece)
		if pos < 0 {
			t.Fatal("no room for the second piece")
		}
		id, extRef = u16(r.b, pos+0x0E), r.ref()
	})
	la := find(as, atAttributeList, "")
	l, err := v.readAttrList(base, la)
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := v.attrData(base, la)
	if err != nil {
		t.Fatal(err)
	}
	e := make([]byte, align8(0x1A+2*len(i30)))
	put32(e, 0, atIndexAllocation)
	put16(e, 4, uint16(len(e)))
	e[6], e[7] = byte(len(i30)), 0x1A
	put64(e, 0x08, uint64(at+gap))
	put64(e, 0x10, extRef)
	put16(e, 0x18, id)
	for i, c := range i30 {
		put16(e, 0x1A+2*i, c)
	}
	pos := listEntryOf(t, l, atIndexAllocation).off
	pos += int(u16(old, pos+4))
	val := append(append(bytes.Clone(old[:pos]), e...), old[pos:]...)
	setAttrList(t, img, rec, val)
}

// TestCheckAttrListSplitAllocation: a directory's $INDEX_ALLOCATION:$I30
// split over its base record and an extension record (by lowest VCN)
// checks clean, its index reads the same through the writer's reader,
// and a gap between the pieces is an $ATTRIBUTE_LIST error.
func TestCheckAttrListSplitAllocation(t *testing.T) {
	clean := mkntfsVolume(t, listOps(0))
	l := i30Of(t, clean, "big")
	v, err := loadVol(&memDev{b: clean}, 0, int64(len(clean)))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := v.record(l.rec)
	as, _ := base.attrs()
	al, err := v.readAttrList(base, find(as, atAttributeList, ""))
	if err != nil {
		t.Fatal(err)
	}
	ext := refRecord(listEntryOf(t, al, atIndexRoot).ref)
	at := l.blocks * l.bsize / v.csize / 2

	img := bytes.Clone(clean)
	splitAllocation(t, img, l.rec, ext, at, 0)
	if fs, err := Check(bytes.NewReader(img), 0, int64(len(img))); err != nil || len(fs) != 0 {
		t.Fatalf("split at VCN %d: %v %+v", at, err, fs)
	}
	split := i30Of(t, img, "big")
	if len(split.reached) != len(l.reached) || split.blocks != l.blocks {
		t.Fatalf("split index reaches %d of %d blocks, want %d of %d", len(split.reached), split.blocks, len(l.reached), l.blocks)
	}
	fs, err := OpenWritable(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if list, err := fs.ReadDir("/big"); err != nil || len(list) != i30Files {
		t.Fatalf("ReadDir(/big) of the split index: %d entries, %v", len(list), err)
	}

	img = bytes.Clone(clean)
	splitAllocation(t, img, l.rec, ext, at, 1)
	found, err := Check(bytes.NewReader(img), 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Structure != "$ATTRIBUTE_LIST" || found[0].Path != "/big" ||
		!strings.Contains(found[0].Message, fmt.Sprintf("ends at VCN %d", at-1)) {
		t.Fatalf("pieces with a gap: want one $ATTRIBUTE_LIST finding naming VCN %d, got %+v", at-1, found)
	}
	t.Logf("%s", found[0].Message)
}

// TestAttrListBaseRecordIndex: a directory whose $ATTRIBUTE_LIST keeps
// every $I30 attribute in the base record is written in place as before
// (put, mkdir, rm in the root of the small volume, which then checks
// clean and lists the same through ntfs-3g's library); only a first INDX
// block, which would add attributes the list does not name, is refused
// ($Extend, a root-only index), leaving the volume as it was.
func TestAttrListBaseRecordIndex(t *testing.T) {
	img := smallVolume(t)
	selfList(t, img, recRoot)
	selfList(t, img, 11)
	fs, err := OpenWritable(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("in the listed root")
	for _, err := range []error{
		fs.WriteFile("/new.txt", bytes.NewReader(data), int64(len(data)), testTime),
		fs.Mkdir("/newdir", testTime),
		fs.WriteFile("/newdir/inner.txt", bytes.NewReader(data), int64(len(data)), testTime),
		fs.WriteFile("/gone.txt", bytes.NewReader(data), int64(len(data)), testTime),
		fs.Remove("/gone.txt"),
		fs.Flush(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if found, err := Check(bytes.NewReader(img), 0, int64(len(img))); err != nil || len(found) != 0 {
		t.Fatalf("after writing into the listed root: %v %+v", err, found)
	}
	ntfsls := peertest.Need(t, "ntfsls", "ntfs-3g")
	vol := filepath.Join(t.TempDir(), "listed.ntfs")
	if err := os.WriteFile(vol, img, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ntfsls, "-f", vol).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "new.txt\n") || !strings.Contains(string(out), "newdir\n") || strings.Contains(string(out), "gone.txt") {
		t.Fatalf("ntfsls of the listed root: %v\n%s", err, out)
	}

	// $Extend's index is root-only: the puts that fit the root go in,
	// the one that needs the first INDX block is refused.
	var refusal error
	for i := 0; i < 20 && refusal == nil; i++ {
		before := bytes.Clone(img)
		name := fmt.Sprintf("/$Extend/a file with a rather long name %02d.txt", i)
		if refusal = fs.WriteFile(name, bytes.NewReader(data), int64(len(data)), testTime); refusal == nil {
			if err := fs.Flush(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := fs.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, img) {
			t.Fatalf("the refused put %d changed the volume", i)
		}
		t.Logf("put %d: %v", i, refusal)
	}
	if !errors.Is(refusal, ErrRefused) || !strings.Contains(refusal.Error(), "first index block") || !strings.Contains(refusal.Error(), "(MFT record 11)") {
		t.Fatalf("want the first INDX block of $Extend refused, got %v", refusal)
	}
	if found, err := Check(bytes.NewReader(img), 0, int64(len(img))); err != nil || len(found) != 0 {
		t.Fatalf("after the puts into $Extend: %v %+v", err, found)
	}
}
