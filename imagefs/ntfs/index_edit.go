package ntfs

// Changing a $I30 index: inserting and removing entries with node splits
// and merges, INDX blocks allocated and freed, and the changed nodes
// written back at flush.

import (
	"bytes"
	"unicode/utf16"
)

// capacity is the number of entry bytes node n may hold.
func (d *dirIndex) capacity(n *inode) (int, error) {
	if n.vcn >= 0 {
		return d.bsize - 0x18 - blockEntriesOff(d.bsize), nil
	}
	r, ra, err := d.rootAttr()
	if err != nil {
		return 0, err
	}
	free := len(r.b) - r.used() + ra.length
	// Keep room for the $INDEX_ALLOCATION and $BITMAP attributes a first
	// reparent adds.
	as, _ := r.attrs()
	if find(as, atIndexAllocation, "$I30") == nil {
		free -= 0x50 + 0x30
	}
	return free - 0x40, nil
}

func blockEntriesOff(bsize int) int { return align8(0x28+2*(bsize/blockSize+1)) - 0x18 }

// insert adds key for ref. The caller has checked that the name is new.
func (d *dirIndex) insert(key []byte, ref uint64) error {
	if err := d.editable(); err != nil {
		return err
	}
	path, i, _, err := d.search(keyName(key), true)
	if err != nil {
		return err
	}
	leaf := path[len(path)-1].n
	leaf.entries = append(leaf.entries[:i], append([]ientry{{ref: ref, key: key, child: -1}}, leaf.entries[i:]...)...)
	leaf.dirty = true
	return d.fix(path)
}

// fix splits overflowing nodes bottom-up along path.
func (d *dirIndex) fix(path []step) error {
	for lvl := len(path) - 1; lvl >= 0; lvl-- {
		n := path[lvl].n
		c, err := d.capacity(n)
		if err != nil {
			return err
		}
		if n.size() <= c {
			return nil
		}
		if n.vcn < 0 {
			return d.reparent(n)
		}
		if err := d.split(n, path[lvl-1]); err != nil {
			return err
		}
	}
	return nil
}

// reparent moves the root's entries into a new block and leaves the root
// with a lone END entry pointing to it.
func (d *dirIndex) reparent(root *inode) error {
	// Shrink the root in its record first: the first block of a directory
	// adds $INDEX_ALLOCATION and $BITMAP to the record, and a record
	// crowded by a long name and a security descriptor has room for them
	// only once the root's entries are gone. The root is written again
	// (pointing to the block) at flush.
	es := root.entries
	if err := d.writeRoot(serializeEntries([]ientry{{child: -1}}), 0); err != nil {
		return err
	}
	b, err := d.newBlock()
	if err != nil {
		return err
	}
	b.entries = es
	root.entries = []ientry{{child: b.vcn}}
	root.dirty = true
	c, err := d.capacity(b)
	if err != nil {
		return err
	}
	if b.size() > c {
		return d.split(b, step{root, 0})
	}
	return nil
}

// split moves the lower half of n into a new block and promotes the
// median into the parent (up.n, which points to n through entry up.i).
func (d *dirIndex) split(n *inode, up step) error {
	real := len(n.entries) - 1
	if real < 3 {
		return recErr(int64(d.rec), 0, "index node VCN %d overflows with %d entries", n.vcn, real)
	}
	half, acc, m := n.size()/2, 0, 1
	for m = 0; m < real-2; m++ {
		acc += entrySize(&n.entries[m])
		if acc >= half {
			break
		}
	}
	m = max(1, min(m, real-2))
	left, err := d.newBlock()
	if err != nil {
		return err
	}
	med := n.entries[m]
	left.entries = append([]ientry(nil), n.entries[:m]...)
	left.entries = append(left.entries, ientry{child: med.child})
	n.entries = append([]ientry(nil), n.entries[m+1:]...)
	n.dirty = true
	med.child = left.vcn
	p := up.n
	p.entries = append(p.entries[:up.i], append([]ientry{med}, p.entries[up.i:]...)...)
	p.dirty = true
	return nil
}

// newBlock allocates an INDX block: a clear bit of $BITMAP:$I30, growing
// $INDEX_ALLOCATION (and creating it with the bitmap on first use).
func (d *dirIndex) newBlock() (*inode, error) {
	t, v := d.t, d.t.v
	runs, size, bm, err := d.allocation()
	if err != nil {
		return nil, err
	}
	r, err := t.rec(d.rec)
	if err != nil {
		return nil, err
	}
	if runs == nil && bm == nil {
		if d.listed {
			return nil, refused("directory %s has an $ATTRIBUTE_LIST: its first index block would add $INDEX_ALLOCATION and $BITMAP, which need new list entries", fileLabel(r))
		}
		// First block: add $INDEX_ALLOCATION (empty for now) and $BITMAP.
		if r.insertAttr(nonResidentAttr(atIndexAllocation, i30, []byte{0}, 0, 0, 0, v.csize)) < 0 ||
			r.insertAttr(residentAttr(atBitmap, i30, make([]byte, 8), 0)) < 0 {
			// Windows moves attributes into an extension record here;
			// this writer does not create attribute lists. It happens
			// only to a directory whose record is crowded by a very long
			// name, its DOS name and a resident security descriptor.
			return nil, refused("directory record %d has no room for an index allocation: its index outgrew the record, and $INDEX_ALLOCATION and $BITMAP would need an $ATTRIBUTE_LIST", d.rec)
		}
		bm = make([]byte, 8)
	}
	idx := int64(-1)
	for i := int64(0); i < int64(len(bm))*8; i++ {
		if !bit(bm, i) && (i+1)*int64(d.bsize) <= size {
			idx = i
			break
		}
	}
	if idx < 0 {
		// Grow the allocation by a quarter of its blocks (1 to 64), so
		// that a growing directory's runlist stays short even when file
		// data takes the clusters after each extent. The blocks beyond
		// the first stay free in $BITMAP:$I30 and are zeroed.
		idx = size / int64(d.bsize)
		grow := max(1, min(64, idx/4))
		have := runClusters(runs) * v.csize
		if end := (idx + grow) * int64(d.bsize); end > have {
			near := int64(-1)
			if k := len(runs); k > 0 {
				near = runs[k-1].lcn + runs[k-1].n
			}
			add, err := t.allocClusters((end-have+v.csize-1)/v.csize, near)
			if err != nil {
				return nil, err
			}
			t.writeData(add, nil)
			runs = appendRuns(runs, add...)
		}
		size = (idx + grow) * int64(d.bsize)
		if err := d.setAllocation(r, runs, size); err != nil {
			return nil, err
		}
	}
	for idx >= int64(len(bm))*8 {
		bm = append(bm, make([]byte, 8)...)
	}
	bm[idx>>3] |= 1 << (idx & 7)
	if err := d.setBitmap(r, bm); err != nil {
		return nil, err
	}
	vcn := idx * int64(d.bsize) / d.unit
	off, err := v.locate(runs, idx*int64(d.bsize), int64(d.bsize), int64(d.rec))
	if err != nil {
		return nil, err
	}
	t.blks[off] = emptyBlock(d.bsize, vcn)
	n := &inode{vcn: vcn, off: off, dirty: true}
	d.nodes[vcn] = n
	return n, nil
}

func (d *dirIndex) setAllocation(r *record, runs []run, size int64) error {
	as, err := r.attrs()
	if err != nil {
		return err
	}
	d.haveRuns = false
	ia := find(as, atIndexAllocation, "$I30")
	if !setRuns(r, ia, runs, d.t.v.csize, size, size) {
		return refused("directory record %d is full: its index allocation would need an attribute list", d.rec)
	}
	return nil
}

func (d *dirIndex) setBitmap(r *record, bm []byte) error {
	as, err := r.attrs()
	if err != nil {
		return err
	}
	ba := find(as, atBitmap, "$I30")
	if ba.nonRes {
		if int64(len(bm)) > ba.alloc {
			return refused("directory record %d: its non-resident index bitmap is full", d.rec)
		}
		runs, err := d.t.v.runs(r, ba)
		if err != nil {
			return err
		}
		d.t.writeData(runs, append(bm, make([]byte, ba.alloc-int64(len(bm)))...))
		if int64(len(bm)) > ba.size {
			put64(r.b, ba.off+0x30, uint64(len(bm)))
			put64(r.b, ba.off+0x38, uint64(len(bm)))
		}
		return nil
	}
	vo := ba.valOff - ba.off
	if !r.resizeAttr(ba.off, align8(vo+len(bm))) {
		return refused("directory record %d is full: its index bitmap cannot grow", d.rec)
	}
	put32(r.b, ba.off+0x10, uint32(len(bm)))
	copy(r.b[ba.off+vo:], bm)
	return nil
}

// emptyBlock is an INDX block for vcn holding only a leaf END entry: the
// form of a new block before its entries are serialised, and the form a
// freed block is left in. Readers that walk every block of
// $INDEX_ALLOCATION without consulting $BITMAP:$I30 (Sleuth Kit, go-ntfs)
// would otherwise still list the entries a freed block held.
func emptyBlock(bsize int, vcn int64) []byte {
	b := make([]byte, bsize)
	copy(b, "INDX")
	put16(b, 4, 0x28)
	put16(b, 6, uint16(bsize/blockSize+1))
	put16(b, 0x28, 1)
	put64(b, 0x10, uint64(vcn))
	eo := blockEntriesOff(bsize)
	put32(b, 0x18, uint32(eo))
	put32(b, 0x1C, uint32(eo+0x10))
	put32(b, 0x20, uint32(bsize-0x18))
	end := 0x18 + eo
	put16(b, end+8, 0x10)
	put16(b, end+12, ieEnd)
	return b
}

func (d *dirIndex) freeBlock(n *inode) error {
	r, err := d.t.rec(d.rec)
	if err != nil {
		return err
	}
	_, _, bm, err := d.allocation()
	if err != nil {
		return err
	}
	idx := n.vcn * d.unit / int64(d.bsize)
	if idx>>3 < int64(len(bm)) {
		bm[idx>>3] &^= 1 << (idx & 7)
	}
	n.freed = true
	delete(d.nodes, n.vcn)
	b := emptyBlock(d.bsize, n.vcn)
	if cur, err := d.t.block(n.off, d.bsize, d.rec); err == nil {
		put16(b, 0x28, u16(cur, 0x28)) // keep the update sequence number counting
	}
	d.t.blks[n.off] = b
	d.t.parsed[n.off] = []ientry{{child: -1}}
	return d.setBitmap(r, bm)
}

// serialize writes one node's entries.
func serializeEntries(es []ientry) []byte {
	total := 0
	for i := range es {
		total += entrySize(&es[i])
	}
	out := make([]byte, total)
	pos := 0
	for i := range es {
		e := &es[i]
		b := out[pos : pos+entrySize(e)]
		pos += len(b)
		put64(b, 0, e.ref)
		put16(b, 8, uint16(len(b)))
		var fl uint16
		if e.key == nil {
			fl |= ieEnd
			put64(b, 0, 0)
		} else {
			put16(b, 10, uint16(len(e.key)))
			copy(b[0x10:], e.key)
		}
		if e.child >= 0 {
			fl |= ieSubnode
			put64(b, len(b)-8, uint64(e.child))
		}
		put16(b, 12, fl)
	}
	return out
}

// flush writes every changed node into the tx.
func (d *dirIndex) flush() error {
	if err := d.editable(); err != nil {
		for _, n := range d.nodes {
			if n.dirty || n.freed {
				return err
			}
		}
		return nil
	}
	for _, vcn := range sortedKeys(d.nodes) {
		n := d.nodes[vcn]
		if !n.dirty || n.freed {
			continue
		}
		es := serializeEntries(n.entries)
		var flag uint32
		if !n.leaf() {
			flag = ihLarge
		}
		if vcn >= 0 {
			cur, err := d.t.block(n.off, d.bsize, d.rec)
			if err != nil {
				return err
			}
			b, mine := d.t.blks[n.off]
			if !mine {
				b = bytes.Clone(cur) // the committed copy is shared
				d.t.blks[n.off] = b
			}
			eo := int(u32(b, 0x18))
			if 0x18+eo+len(es) > d.bsize {
				return recErr(int64(d.rec), 0, "index block VCN %d overflows (internal error)", vcn)
			}
			clear(b[0x18+eo:])
			copy(b[0x18+eo:], es)
			put32(b, 0x1C, uint32(eo+len(es)))
			put32(b, 0x20, uint32(d.bsize-0x18))
			put32(b, 0x24, flag)
			d.t.parsed[n.off] = append([]ientry(nil), n.entries...)
			n.dirty = false
			continue
		}
		if err := d.writeRoot(es, flag); err != nil {
			return err
		}
		n.dirty = false
	}
	return nil
}

// writeRoot stores the serialised entries es as the value of the
// directory's $INDEX_ROOT, resizing the attribute in its record.
func (d *dirIndex) writeRoot(es []byte, flag uint32) error {
	r, err := d.t.rec(d.rec)
	if err != nil {
		return err
	}
	as, err := r.attrs()
	if err != nil {
		return err
	}
	ra := find(as, atIndexRoot, "$I30")
	if ra == nil {
		return recErr(int64(d.rec), 0, "$INDEX_ROOT vanished")
	}
	vo := ra.valOff - ra.off
	if !r.resizeAttr(ra.off, align8(vo+0x20+len(es))) {
		return refused("directory record %d is full: the index root does not fit", d.rec)
	}
	val := r.b[ra.off+vo:]
	put32(r.b, ra.off+0x10, uint32(0x20+len(es)))
	put32(val, 0x10, 0x10)
	put32(val, 0x14, uint32(0x10+len(es)))
	put32(val, 0x18, uint32(0x10+len(es)))
	put32(val, 0x1C, flag)
	copy(val[0x20:], es)
	return nil
}

// remove deletes the entry named name with reference ref.
func (d *dirIndex) remove(name []uint16, ref uint64) error {
	if err := d.editable(); err != nil {
		return err
	}
	path, i, ok, err := d.search(name, false)
	if err != nil {
		return err
	}
	if !ok || refRecord(path[len(path)-1].n.entries[i].ref) != refRecord(ref) {
		return recErr(int64(d.rec), 0, "index entry %q for record %d not found", string(utf16.Decode(name)), refRecord(ref))
	}
	n := path[len(path)-1].n
	if n.leaf() {
		n.entries = append(n.entries[:i], n.entries[i+1:]...)
		n.dirty = true
		return d.underflow(path)
	}
	// Internal: replace by the predecessor, the last key of the left
	// subtree, and remove that one from its leaf.
	sub := append([]step(nil), path...)
	vcn := n.entries[i].child
	for depth := 0; ; depth++ {
		if depth > maxIndexDepth {
			return recErr(int64(d.rec), 0, "$I30 index loops")
		}
		c, err := d.node(vcn)
		if err != nil {
			return err
		}
		last := len(c.entries) - 1
		sub = append(sub, step{c, last})
		if c.leaf() {
			if last == 0 {
				return recErr(int64(d.rec), 0, "index leaf VCN %d is empty", c.vcn)
			}
			pred := c.entries[last-1]
			c.entries = append(c.entries[:last-1], c.entries[last])
			c.dirty = true
			n.entries[i].key, n.entries[i].ref = pred.key, pred.ref
			n.dirty = true
			sub[len(sub)-1].i = last - 1
			if err := d.underflow(sub); err != nil {
				return err
			}
			// The predecessor's key may be longer than the one it
			// replaced: split upwards from n if needed.
			return d.refix(pred.key)
		}
		vcn = c.entries[last].child
	}
}

// refix re-runs overflow handling along the path to key.
func (d *dirIndex) refix(key []byte) error {
	path, _, _, err := d.search(keyName(key), true)
	if err != nil {
		return err
	}
	// search(full) for an existing key stops below it; the nodes along the
	// path are the ones that may have grown.
	return d.fix(path)
}

// underflow handles a leaf left without entries: its block is freed and
// the parent's pointer removed; a parent entry that loses its subtree is
// taken out and inserted again.
func (d *dirIndex) underflow(path []step) error {
	n := path[len(path)-1].n
	if len(n.entries) > 1 || len(path) == 1 {
		if len(path) == 1 && len(n.entries) == 1 && n.entries[0].child < 0 {
			n.dirty = true // an empty root leaf is legal
		}
		return nil
	}
	if n.entries[0].child >= 0 {
		return nil // an internal node with only END → child is legal
	}
	if err := d.freeBlock(n); err != nil {
		return err
	}
	up := path[len(path)-2]
	p := up.n
	p.dirty = true
	var again *ientry
	if up.i == len(p.entries)-1 {
		// The END entry pointed to the empty leaf.
		if len(p.entries) == 1 {
			p.entries[0].child = -1
			if p.vcn < 0 {
				return nil
			}
			return d.underflow(path[:len(path)-1])
		}
		k := p.entries[len(p.entries)-2]
		p.entries[len(p.entries)-1].child = k.child
		p.entries = append(p.entries[:len(p.entries)-2], p.entries[len(p.entries)-1])
		k.child = -1
		again = &k
	} else {
		k := p.entries[up.i]
		p.entries = append(p.entries[:up.i], p.entries[up.i+1:]...)
		k.child = -1
		again = &k
	}
	return d.insert(again.key, again.ref)
}

// updateKey rewrites, in place, the key of the entry for name and ref
// (same length: sizes and times of the $FILE_NAME copy).
func (d *dirIndex) updateKey(name []uint16, ref uint64, key []byte) error {
	if err := d.editable(); err != nil {
		return err
	}
	path, i, ok, err := d.search(name, false)
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	n := path[len(path)-1].n
	e := &n.entries[i]
	if refRecord(e.ref) != refRecord(ref) || len(e.key) != len(key) {
		return nil
	}
	e.key = key
	n.dirty = true
	return nil
}
