package ntfs

// Creating files and directories: the new MFT record and its names, the
// security descriptor it gets, and MFT records and clusters for them
// (growing $MFT when it is full).

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
)

// create makes a new file or directory record named name in parent and
// links it into the parent's index.
func (t *tx) create(parent *record, name string, dir bool, mt, now uint64) (*record, error) {
	v := t.v
	d, err := t.openIndex(parent.num)
	if err != nil {
		return nil, err
	}
	if err := d.editable(); err != nil {
		return nil, err
	}
	long := utf16.Encode([]rune(name))
	// Names: one WIN32_AND_DOS name for 8.3 names, else WIN32 plus a
	// generated DOS name unique in the directory.
	type fname struct {
		name []uint16
		ns   byte
	}
	names := []fname{{long, nsWin32AndDOS}}
	if !validDOSName(name) {
		names[0].ns = nsWin32
		var short []uint16
		for cand := range shortNames(name) {
			u := utf16.Encode([]rune(cand))
			_, _, ok, err := d.search(u, false)
			if err != nil {
				return nil, err
			}
			if !ok {
				short = u
				break
			}
		}
		if short == nil {
			return nil, fmt.Errorf("no free short name for %q", name)
		}
		names = append(names, fname{short, nsDOS})
	}
	secID, sd, err := t.security(parent, d, dir)
	if err != nil {
		return nil, err
	}
	num, seq, err := t.allocRecord()
	if err != nil {
		return nil, err
	}
	r := &record{num: num, b: emptyRecord(num, seq, v.recSize)}
	t.recs[num] = r
	flags := uint16(recInUse)
	if dir {
		flags |= recDirectory
	}
	put16(r.b, 0x16, flags)
	put16(r.b, 0x12, uint16(len(names)))
	si := make([]byte, 72)
	put64(si, 0x00, mt)
	put64(si, 0x08, mt)
	put64(si, 0x10, now)
	put64(si, 0x18, now)
	if !dir {
		put32(si, 0x20, faArchive)
	}
	put32(si, 0x34, secID)
	r.insertAttr(residentAttr(atStandardInformation, nil, si, 0))
	fa := uint32(faArchive)
	if dir {
		fa = faIndexPresent
	}
	var keys [][]byte
	for _, n := range names {
		fn := make([]byte, 0x42+2*len(n.name))
		put64(fn, 0, parent.ref())
		for o := 0x08; o < 0x28; o += 8 {
			put64(fn, o, now)
		}
		put64(fn, 0x08, mt)
		put64(fn, 0x10, mt)
		put32(fn, 0x38, fa)
		fn[0x40] = byte(len(n.name))
		fn[0x41] = n.ns
		for i, c := range n.name {
			put16(fn, 0x42+2*i, c)
		}
		if r.insertAttr(residentAttr(atFileName, nil, fn, 1)) < 0 {
			return nil, fmt.Errorf("name %q does not fit an MFT record", name)
		}
		keys = append(keys, fn)
	}
	if sd != nil {
		if r.insertAttr(residentAttr(atSecurityDescriptor, nil, sd, 0)) < 0 {
			return nil, fmt.Errorf("security descriptor does not fit an MFT record")
		}
	}
	if dir {
		root := make([]byte, 0x30)
		put32(root, 0, atFileName)
		put32(root, 4, collationFileName)
		put32(root, 8, uint32(d.bsize))
		if int64(d.bsize) >= v.csize {
			root[0x0C] = byte(int64(d.bsize) / v.csize)
		} else {
			root[0x0C] = byte(d.bsize / 512)
		}
		put32(root, 0x10, 0x10)
		put32(root, 0x14, 0x20)
		put32(root, 0x18, 0x20)
		put16(root, 0x20+8, 0x10)
		put16(root, 0x20+12, ieEnd)
		r.insertAttr(residentAttr(atIndexRoot, i30, root, 0))
	}
	for _, k := range keys {
		if err := d.insert(k, r.ref()); err != nil {
			return nil, err
		}
	}
	if err := d.flush(); err != nil {
		return nil, err
	}
	return r, nil
}

// security picks how a new file gets its access rights without touching
// $Secure: the security_id of a sibling of the same kind, else the
// parent's; on volumes without ids (fresh mkntfs) a resident descriptor
// copied from a sibling or the parent, else one granting Everyone full
// access (what ntfs-3g gives new files).
func (t *tx) security(parent *record, d *dirIndex, dir bool) (uint32, []byte, error) {
	key := parent.num << 1
	if dir {
		key |= 1
	}
	if c, ok := t.v.secCache[key]; ok {
		return c.id, c.sd, nil
	}
	id, sd, err := t.pickSecurity(parent, d, dir)
	if err == nil {
		t.v.secCache[key] = secChoice{id, sd}
	}
	return id, sd, err
}

func (t *tx) pickSecurity(parent *record, d *dirIndex, dir bool) (uint32, []byte, error) {
	var sid uint32
	var sd []byte
	seen := 0
	look := func(r *record) {
		as, err := r.attrs()
		if err != nil {
			return
		}
		if si := find(as, atStandardInformation, ""); si != nil && !si.nonRes && si.valLen >= 0x38 && sid == 0 {
			sid = u32(r.value(si), 0x34)
		}
		if s := find(as, atSecurityDescriptor, ""); s != nil && !s.nonRes && s.valLen <= 512 && sd == nil {
			sd = bytes.Clone(r.value(s))
		}
	}
	err := d.each(func(e *ientry) bool {
		seen++
		if n := refRecord(e.ref); n >= firstUserRecord || parent.num != recRoot {
			if fa := u32(e.key, 0x38); (fa&faIndexPresent != 0) == dir {
				if r, err := t.peek(n); err == nil && r.inUse() {
					look(r)
				}
			}
		}
		return sid == 0 && seen < 64
	})
	if err != nil {
		return 0, nil, err
	}
	if sid == 0 {
		look(parent)
	}
	if sid != 0 {
		return sid, nil, nil
	}
	if sd == nil {
		sd = everyoneSD(dir)
	}
	return 0, sd, nil
}

// everyoneSD builds a self-relative security descriptor: owner
// Administrators, group SYSTEM, a DACL granting Everyone full control
// (inherited by children for directories).
func everyoneSD(dir bool) []byte {
	sid := func(auth byte, subs ...uint32) []byte {
		b := make([]byte, 8+4*len(subs))
		b[0], b[1], b[7] = 1, byte(len(subs)), auth
		for i, s := range subs {
			put32(b, 8+4*i, s)
		}
		return b
	}
	owner, group, everyone := sid(5, 32, 544), sid(5, 18), sid(1, 0)
	ace := make([]byte, 8, 8+len(everyone))
	ace[0] = 0 // ACCESS_ALLOWED
	if dir {
		ace[1] = 0x03 // object and container inherit
	}
	put32(ace, 4, 0x1F01FF)
	ace = append(ace, everyone...)
	put16(ace, 2, uint16(len(ace)))
	acl := make([]byte, 8, 8+len(ace))
	acl[0] = 2
	put16(acl, 4, 1)
	acl = append(acl, ace...)
	put16(acl, 2, uint16(len(acl)))
	b := make([]byte, 20)
	b[0] = 1
	put16(b, 2, 0x8004) // self-relative, DACL present
	put32(b, 4, 20)
	put32(b, 8, uint32(20+len(owner)))
	put32(b, 16, uint32(20+len(owner)+len(group)))
	b = append(b, owner...)
	b = append(b, group...)
	return append(b, acl...)
}

// allocRecord takes a free MFT record, growing $MFT when none is left.
func (t *tx) allocRecord() (uint64, uint16, error) {
	v := t.v
	for pass := 0; pass < 2; pass++ {
		for i := int64(firstUserRecord); i < v.mftRecs; i++ {
			if v.mftBitmap[i>>3] == 0xFF {
				i |= 7
				continue
			}
			if bit(v.mftBitmap, i) {
				continue
			}
			if r, ok := t.recs[uint64(i)]; ok && r.inUse() {
				continue
			}
			seq := uint16(1)
			if r, ok := t.recs[uint64(i)]; ok {
				seq = max(1, r.seq())
			} else if old, err := v.record(uint64(i)); err == nil {
				if u16(old.b, 0x16)&recInUse != 0 {
					return 0, 0, recErr(i, 0x16, "record is in use but free in $MFT's $BITMAP; run chkdsk")
				}
				if s := u16(old.b, 0x10); s != 0 {
					seq = s
				}
			}
			t.setBitmap(true, i, true)
			return uint64(i), seq, nil
		}
		if pass == 0 {
			if err := t.growMFT(); err != nil {
				return 0, 0, err
			}
		}
	}
	return 0, 0, errors.New("no free MFT record after growing $MFT")
}

// growMFT extends $MFT's $DATA (and its $BITMAP when needed) by a batch of
// formatted, unused records, next to the current end of $MFT when
// possible (the MFT zone exists for this).
func (t *tx) growMFT() error {
	v := t.v
	per := max(1, v.csize/int64(v.recSize))
	clusters := max(1, 256/per)
	last := v.mftRuns[len(v.mftRuns)-1]
	add, err := t.allocMFTClusters(clusters, last.lcn+last.n)
	if err != nil {
		return fmt.Errorf("growing $MFT: %w", err)
	}
	mft, err := t.rec(recMFT)
	if err != nil {
		return err
	}
	as, err := mft.attrs()
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	runs := appendRuns(append([]run(nil), v.mftRuns...), add...)
	oldRecs := v.mftRecs
	newRecs := runClusters(runs) * v.csize / int64(v.recSize)
	if !setRuns(mft, d, runs, v.csize, newRecs*int64(v.recSize), newRecs*int64(v.recSize)) {
		return refused("$MFT is too fragmented to grow without an $ATTRIBUTE_LIST")
	}
	v.mftRuns, v.mftRecs = runs, newRecs
	for i := oldRecs; i < newRecs; i++ {
		t.recs[uint64(i)] = &record{num: uint64(i), b: emptyRecord(uint64(i), 0, v.recSize)}
		t.fresh[uint64(i)] = true
	}
	// $MFT's $BITMAP: data size covers the records (in 8-byte steps).
	as, err = mft.attrs()
	if err != nil {
		return err
	}
	bm := find(as, atBitmap, "")
	want := int64(align8(int((newRecs + 7) / 8)))
	if want > bm.alloc {
		bruns, err := v.runs(mft, bm)
		if err != nil {
			return err
		}
		more := (want - bm.alloc + v.csize - 1) / v.csize
		last := bruns[len(bruns)-1]
		extra, err := t.allocClusters(more, last.lcn+last.n)
		if err != nil {
			return fmt.Errorf("growing $MFT's bitmap: %w", err)
		}
		bruns = appendRuns(bruns, extra...)
		if !setRuns(mft, bm, bruns, v.csize, -1, -1) {
			return refused("$MFT record is full: its bitmap cannot grow")
		}
		bc := runClusters(bruns)
		grown := make([]byte, bc*v.csize)
		copy(grown, v.mftBitmap)
		v.mftBitmap, v.mbmRuns = grown, bruns
		// The new bitmap clusters hold garbage on disk: write them whole.
		for p := bm.alloc / 512; p < bc*v.csize/512; p++ {
			t.mbDirt[p] = true
		}
	}
	if want > bm.size {
		put64(mft.b, bm.off+0x30, uint64(want))
		put64(mft.b, bm.off+0x38, uint64(want))
		for p := bm.size / 512; p <= (want-1)/512; p++ {
			t.mbDirt[p] = true
		}
	}
	return nil
}

// allocMFTClusters prefers the clusters right after $MFT, then the MFT
// zone, then anywhere.
func (t *tx) allocMFTClusters(n, near int64) ([]run, error) {
	v := t.v
	ok := true
	for c := near; c < near+n; c++ {
		if c >= v.clusters || bit(v.bitmap, c) {
			ok = false
			break
		}
	}
	if ok {
		for c := near; c < near+n; c++ {
			t.setBitmap(false, c, true)
		}
		return []run{{near, n}}, nil
	}
	for c := v.zoneStart; c+n <= v.zoneEnd; c++ {
		s := c
		for c < s+n && !bit(v.bitmap, c) {
			c++
		}
		if c == s+n {
			for x := s; x < s+n; x++ {
				t.setBitmap(false, x, true)
			}
			return []run{{s, n}}, nil
		}
	}
	return t.allocClusters(n, -1)
}
