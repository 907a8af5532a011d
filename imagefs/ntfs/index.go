package ntfs

import (
	"bytes"
	"fmt"
	"unicode/utf16"
)

// The $I30 index of a directory is a B+tree: the root lives in the
// $INDEX_ROOT attribute of the directory's MFT record, the other nodes in
// INDX blocks of $INDEX_ALLOCATION, whose use is tracked by $BITMAP:$I30.
// Every entry may point (subnode VCN) to the node holding the keys sorted
// before it; the closing END entry points to the node of the keys after
// the last one. A dirIndex loads nodes on demand into memory, edits them
// there and serialises the changed ones into the tx at flush.

var i30 = utf16.Encode([]rune("$I30"))

// maxIndexDepth bounds descents: NTFS trees are a handful of levels deep,
// so a deeper walk means a loop in a damaged index.
const maxIndexDepth = 32

type ientry struct {
	ref   uint64
	key   []byte // the FILE_NAME value; nil for the END entry
	child int64  // subnode VCN, or -1
}

type inode struct {
	vcn     int64 // -1 for the root
	entries []ientry
	off     int64 // volume offset of the INDX block
	dirty   bool
	freed   bool
}

func (n *inode) leaf() bool { return n.entries[len(n.entries)-1].child < 0 }

func entrySize(e *ientry) int {
	s := align8(0x10 + len(e.key))
	if e.child >= 0 {
		s += 8
	}
	return s
}

func (n *inode) size() int {
	s := 0
	for i := range n.entries {
		s += entrySize(&n.entries[i])
	}
	return s
}

func keyName(key []byte) []uint16 {
	nl := int(key[0x40])
	out := make([]uint16, nl)
	for i := range out {
		out[i] = u16(key, 0x42+2*i)
	}
	return out
}

// cmpIC orders names the way $I30 does: code units compared after mapping
// through the volume's $UpCase, then by length.
func (v *vol) cmpIC(a, b []uint16) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := v.upcase[a[i]], v.upcase[b[i]]
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// cmpKey is cmpIC (full: cmpFull) of name against the name inside an
// index key, without decoding the key.
func (v *vol) cmpKey(name []uint16, key []byte, full bool) int {
	nl := int(key[0x40])
	for i := 0; i < len(name) && i < nl; i++ {
		x, y := v.upcase[name[i]], v.upcase[u16(key, 0x42+2*i)]
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(name) < nl:
		return -1
	case len(name) > nl:
		return 1
	}
	if full {
		for i := range name {
			if c := u16(key, 0x42+2*i); name[i] != c {
				if name[i] < c {
					return -1
				}
				return 1
			}
		}
	}
	return 0
}

// cmpFull breaks cmpIC ties by the raw code units (names differing only in
// case, possible in the POSIX namespace).
func (v *vol) cmpFull(a, b []uint16) int {
	if c := v.cmpIC(a, b); c != 0 {
		return c
	}
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

type dirIndex struct {
	t      *tx
	rec    uint64
	bsize  int
	unit   int64 // bytes per VCN
	nodes  map[int64]*inode
	visits int
	// runs and asize cache $INDEX_ALLOCATION's runlist and size (valid
	// when haveRuns); setAllocation drops them.
	runs     []run
	asize    int64
	haveRuns bool
	// listed: the directory's base record has an $ATTRIBUTE_LIST; ext:
	// one of its $I30 attributes lives (partly) in an extension record,
	// or could not be resolved. An ext index is read, never changed (see
	// editable); a listed one is changed only in place.
	listed, ext bool
}

// i30Attr finds the $I30 attribute typ of directory record rec, in the
// record or where its $ATTRIBUTE_LIST says (nil when there is none).
func (t *tx) i30Attr(rec uint64, typ uint32) (*xattr, error) {
	r, err := t.peek(rec)
	if err != nil {
		return nil, err
	}
	as, err := r.attrs()
	if err != nil {
		return nil, err
	}
	return t.fileAttr(r, as, typ, "$I30")
}

// editable refuses changes to an index whose attributes sit (partly) in
// extension records behind the directory's $ATTRIBUTE_LIST: growing them
// may need new pieces, new records and new list entries, which this
// writer does not make. An index whose attributes are all in the base
// record is changed in place as without a list (the entries name the
// record and the attribute instance, which stay), but newBlock refuses
// to add the first $INDEX_ALLOCATION there.
func (d *dirIndex) editable() error {
	if !d.ext {
		return nil
	}
	r, err := d.t.peek(d.rec)
	if err != nil {
		return err
	}
	return refused("directory %s has an $ATTRIBUTE_LIST (its attributes outgrew the MFT record and some live in extension records); xpboot reads such directories but does not change them", fileLabel(r))
}

// openIndex prepares the $I30 index of directory record rec.
func (t *tx) openIndex(rec uint64) (*dirIndex, error) {
	r, err := t.peek(rec)
	if err != nil {
		return nil, err
	}
	if !r.inUse() || !r.isDir() {
		return nil, recErr(int64(rec), 0x16, "not a directory in use")
	}
	as, err := r.attrs()
	if err != nil {
		return nil, err
	}
	if t.idx == nil { // a bare tx used for reading only
		t.idx, t.parsed = map[uint64]*dirIndex{}, map[int64][]ientry{}
	}
	if d, ok := t.idx[rec]; ok {
		// One dirIndex per directory and tx: every user sees the nodes
		// the others changed, and nothing is decoded twice.
		return d, nil
	}
	rx, err := t.fileAttr(r, as, atIndexRoot, "$I30")
	if err != nil {
		return nil, err
	}
	if rx == nil {
		return nil, recErr(int64(rec), 0, "directory has no resident $INDEX_ROOT $I30")
	}
	rr, ra := rx.head()
	if ra.nonRes || ra.valLen < 0x20 {
		return nil, recErr(int64(rr.num), 0, "directory has no resident $INDEX_ROOT $I30")
	}
	val := rr.value(ra)
	if u32(val, 0) != atFileName || u32(val, 4) != collationFileName {
		return nil, recErr(int64(rr.num), ra.valOff, "$I30 indexes type 0x%x with collation %d, not file names", u32(val, 0), u32(val, 4))
	}
	d := &dirIndex{t: t, rec: rec, bsize: int(u32(val, 8)), nodes: map[int64]*inode{}}
	if d.bsize < blockSize || d.bsize > 64<<10 || d.bsize&(d.bsize-1) != 0 {
		return nil, recErr(int64(rr.num), ra.valOff+8, "index block size %d", d.bsize)
	}
	if find(as, atAttributeList, "") != nil {
		d.listed = true
		outside := func(x *xattr) bool { return x != nil && (len(x.pieces) > 1 || x.pieces[0].r.num != rec) }
		d.ext = outside(rx)
		for _, typ := range []uint32{atIndexAllocation, atBitmap} {
			// A broken entry does not stop reading here; reads that
			// need the attribute report it.
			x, err := t.fileAttr(r, as, typ, "$I30")
			d.ext = d.ext || err != nil || outside(x)
		}
	}
	d.unit = t.v.csize
	if int64(d.bsize) < t.v.csize {
		d.unit = 512
	}
	t.idx[rec] = d
	return d, nil
}

// parseEntries decodes the entries of a node in b[start:end].
func parseEntries(b []byte, start, end int, where func(off int, msg string, a ...any) error) ([]ientry, error) {
	var out []ientry
	for pos := start; ; {
		if pos+0x10 > end {
			return nil, where(pos, "index entries run past the node without an END entry")
		}
		ln, kl, fl := int(u16(b, pos+8)), int(u16(b, pos+10)), u16(b, pos+12)
		if ln < 0x10 || ln%8 != 0 || pos+ln > end {
			return nil, where(pos, "index entry length %d is invalid", ln)
		}
		e := ientry{ref: u64(b, pos), child: -1}
		body := ln
		if fl&ieSubnode != 0 {
			if ln < 0x18 {
				return nil, where(pos, "index entry of %d bytes cannot hold a subnode VCN", ln)
			}
			e.child = int64(u64(b, pos+ln-8))
			if e.child < 0 {
				return nil, where(pos+ln-8, "negative subnode VCN")
			}
			body -= 8
		}
		if fl&ieEnd != 0 {
			out = append(out, ientry{child: e.child})
			return out, nil
		}
		if kl < 0x42 || 0x10+kl > body {
			return nil, where(pos+10, "index key length %d is invalid", kl)
		}
		key := b[pos+0x10 : pos+0x10+kl]
		if 0x42+2*int(key[0x40]) > kl {
			return nil, where(pos+0x10+0x40, "file name of %d characters runs past the key", key[0x40])
		}
		e.key = bytes.Clone(key)
		out = append(out, e)
		pos += ln
	}
}

// rootAttr returns $INDEX_ROOT:$I30 and the record holding it (an
// extension record when the directory has an $ATTRIBUTE_LIST).
func (d *dirIndex) rootAttr() (*record, *attr, error) {
	rx, err := d.t.i30Attr(d.rec, atIndexRoot)
	if err != nil {
		return nil, nil, err
	}
	if rx == nil {
		return nil, nil, recErr(int64(d.rec), 0, "$INDEX_ROOT vanished")
	}
	r, ra := rx.head()
	return r, ra, nil
}

func (d *dirIndex) node(vcn int64) (*inode, error) {
	if n, ok := d.nodes[vcn]; ok {
		return n, nil
	}
	d.visits++
	if d.visits > 1<<20 {
		return nil, recErr(int64(d.rec), 0, "index walk visits too many nodes (a loop?)")
	}
	if vcn < 0 {
		r, ra, err := d.rootAttr()
		if err != nil {
			return nil, err
		}
		val := r.value(ra)
		eo, il := int(u32(val, 0x10)), int(u32(val, 0x14))
		if 0x10+eo > len(val) || 0x10+il > len(val) || eo > il {
			return nil, recErr(int64(r.num), ra.valOff+0x10, "$INDEX_ROOT header (entries at 0x%x, length %d) runs past the value", eo, il)
		}
		es, err := parseEntries(val, 0x10+eo, 0x10+il, func(off int, msg string, a ...any) error {
			return recErr(int64(r.num), ra.valOff+off, "$INDEX_ROOT: "+msg, a...)
		})
		if err != nil {
			return nil, err
		}
		n := &inode{vcn: -1, entries: es}
		d.nodes[vcn] = n
		return n, nil
	}
	off, err := d.blockOffset(vcn)
	if err != nil {
		return nil, err
	}
	if _, mine := d.t.blks[off]; !mine {
		if es, ok := d.t.v.nodeCache[off]; ok {
			n := &inode{vcn: vcn, entries: append([]ientry(nil), es...), off: off}
			d.nodes[vcn] = n
			return n, nil
		}
	}
	b, err := d.t.block(off, d.bsize, d.rec)
	if err != nil {
		return nil, err
	}
	where := func(o int, msg string, a ...any) error {
		return fmt.Errorf("directory record %d: %w", d.rec, &FormatError{Record: -1, Off: off + int64(o), Msg: fmt.Sprintf("INDX block VCN %d: "+msg, append([]any{vcn}, a...)...)})
	}
	if int64(u64(b, 0x10)) != vcn {
		return nil, where(0x10, "header names VCN %d", int64(u64(b, 0x10)))
	}
	eo, il := int(u32(b, 0x18)), int(u32(b, 0x1C))
	if 0x18+eo > d.bsize || 0x18+il > d.bsize || eo > il || eo < 0x10 {
		return nil, where(0x18, "header (entries at 0x%x, length %d) runs past the block", eo, il)
	}
	es, err := parseEntries(b, 0x18+eo, 0x18+il, where)
	if err != nil {
		return nil, err
	}
	n := &inode{vcn: vcn, entries: es, off: off}
	d.nodes[vcn] = n
	if _, mine := d.t.blks[off]; !mine {
		d.t.v.nodeCache[off] = append([]ientry(nil), es...)
	}
	return n, nil
}

// allocation returns the $INDEX_ALLOCATION runs and size, and the $BITMAP
// value, of the directory (nil when the index is root-only).
func (d *dirIndex) allocation() (runs []run, size int64, bm []byte, err error) {
	iax, err := d.t.i30Attr(d.rec, atIndexAllocation)
	if err != nil {
		return nil, 0, nil, err
	}
	bax, err := d.t.i30Attr(d.rec, atBitmap)
	if err != nil {
		return nil, 0, nil, err
	}
	if iax == nil {
		return nil, 0, nil, nil
	}
	ir, ia := iax.head()
	if !ia.nonRes || bax == nil {
		return nil, 0, nil, recErr(int64(ir.num), ia.off, "$INDEX_ALLOCATION without a $BITMAP, or resident")
	}
	if runs, err = d.t.v.xruns(iax); err != nil {
		return nil, 0, nil, err
	}
	// A resident value comes back as a copy (attrData clones it).
	if bm, _, err = d.t.v.xdata(bax); err != nil {
		return nil, 0, nil, err
	}
	return runs, ia.size, bm, nil
}

func (d *dirIndex) blockOffset(vcn int64) (int64, error) {
	if !d.haveRuns {
		// Only the runlist: allocation would also read $BITMAP:$I30,
		// from the device when it is non-resident.
		iax, err := d.t.i30Attr(d.rec, atIndexAllocation)
		if err != nil {
			return 0, err
		}
		d.runs, d.asize = nil, 0
		if iax != nil {
			ir, ia := iax.head()
			if !ia.nonRes {
				return 0, recErr(int64(ir.num), ia.off, "$INDEX_ALLOCATION is resident")
			}
			if d.runs, err = d.t.v.xruns(iax); err != nil {
				return 0, err
			}
			d.asize = ia.size
		}
		d.haveRuns = true
	}
	runs, size := d.runs, d.asize
	pos := vcn * d.unit
	if runs == nil || pos+int64(d.bsize) > size {
		return 0, recErr(int64(d.rec), 0, "subnode VCN %d lies outside $INDEX_ALLOCATION (%d bytes)", vcn, size)
	}
	return d.t.v.locate(runs, pos, int64(d.bsize), int64(d.rec))
}

// lookup finds name (case-insensitively, as Windows does) in the index and
// returns the entry's file reference and key.
func (t *tx) lookup(dir *record, name []uint16) (ref uint64, key []byte, found bool, err error) {
	d, err := t.openIndex(dir.num)
	if err != nil {
		return 0, nil, false, err
	}
	path, i, ok, err := d.search(name, false)
	if err != nil || !ok {
		return 0, nil, false, err
	}
	e := path[len(path)-1].n.entries[i]
	return e.ref, e.key, true, nil
}

type step struct {
	n *inode
	i int // index of the entry descended through
}

// search descends to name. With full it orders by cmpFull (the insert
// position); otherwise it stops at a case-insensitive match. It returns the
// path (the last step holds the match or the leaf position in i).
func (d *dirIndex) search(name []uint16, full bool) ([]step, int, bool, error) {
	var path []step
	vcn := int64(-1)
	seen := map[int64]bool{}
	for depth := 0; ; depth++ {
		if depth > maxIndexDepth || seen[vcn] {
			return nil, 0, false, recErr(int64(d.rec), 0, "$I30 index loops or is deeper than %d levels (VCN %d)", maxIndexDepth, vcn)
		}
		seen[vcn] = true
		n, err := d.node(vcn)
		if err != nil {
			return nil, 0, false, err
		}
		i := 0
		for ; i < len(n.entries)-1; i++ {
			c := d.t.v.cmpKey(name, n.entries[i].key, false)
			if c == 0 && !full {
				return append(path, step{n, i}), i, true, nil
			}
			if c == 0 {
				c = d.t.v.cmpKey(name, n.entries[i].key, true)
			}
			if c < 0 {
				break
			}
		}
		path = append(path, step{n, i})
		if n.entries[i].child < 0 {
			return path, i, false, nil
		}
		vcn = n.entries[i].child
	}
}

// each calls fn for every entry in collation order, stopping when fn
// returns false.
func (d *dirIndex) each(fn func(e *ientry) bool) error {
	var walk func(vcn int64, depth int) (bool, error)
	walk = func(vcn int64, depth int) (bool, error) {
		if depth > maxIndexDepth {
			return false, recErr(int64(d.rec), 0, "$I30 index deeper than %d levels (loop?)", maxIndexDepth)
		}
		n, err := d.node(vcn)
		if err != nil {
			return false, err
		}
		for i := range n.entries {
			e := &n.entries[i]
			if e.child >= 0 {
				if ok, err := walk(e.child, depth+1); !ok || err != nil {
					return ok, err
				}
			}
			if e.key != nil && !fn(e) {
				return false, nil
			}
		}
		return true, nil
	}
	_, err := walk(-1, 0)
	return err
}
