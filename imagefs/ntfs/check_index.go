package ntfs

// The $I30 $BITMAP check: $BITMAP:$I30 holds one bit per INDX block of
// $INDEX_ALLOCATION:$I30, and every allocator (Windows, ntfs-3g, this
// package's newBlock) hands out a block whose bit is clear. A block the
// B+tree reaches with its bit clear can therefore be handed out again and
// overwritten while it still holds live entries; a set bit for a block the
// tree never reaches only wastes the block until chkdsk frees it.

// checkI30Bitmap compares directory record n's $BITMAP:$I30 with the INDX
// blocks the walk of its index reached (reached holds their VCNs). When
// complete is false the walk stopped early, so a block it did not reach
// may still be live and unreached set bits are not reported.
func (c *ntfsChecker) checkI30Bitmap(n uint64, p string, d *dirIndex, reached map[int64]bool, complete bool) {
	const structure = "$I30 $BITMAP"
	v := c.v
	// Both attributes may live in extension records behind an
	// $ATTRIBUTE_LIST (checkListedI30 has resolved them already, so
	// errors here were reported).
	iax, err := d.t.i30Attr(n, atIndexAllocation)
	if err != nil {
		return
	}
	bax, err := d.t.i30Attr(n, atBitmap)
	if err != nil {
		return
	}
	// recOff is the volume offset of the record holding x's first piece.
	recOff := func(x *xattr) int64 {
		r, _ := x.head()
		return c.recs[r.num].off
	}
	switch {
	case iax == nil && bax == nil:
		return // a root-only index
	case iax == nil:
		_, ba := bax.head()
		c.add(SeverityError, structure, recOff(bax)+int64(ba.off), p, "directory has $BITMAP:$I30 but no $INDEX_ALLOCATION:$I30")
		return
	case bax == nil:
		_, ia := iax.head()
		c.add(SeverityError, structure, recOff(iax)+int64(ia.off), p, "directory has $INDEX_ALLOCATION:$I30 but no $BITMAP:$I30: nothing says which INDX blocks are in use")
		return
	}
	_, ia := iax.head()
	_, ba := bax.head()
	iaOff, baOff := recOff(iax), recOff(bax)
	if !ia.nonRes {
		if len(reached) <= 1 { // else the walk reported it at the first subnode
			c.add(SeverityError, structure, iaOff+int64(ia.off), p, "$INDEX_ALLOCATION:$I30 is resident")
		}
		return
	}
	if ia.size < 0 || ia.size > ia.alloc {
		c.add(SeverityError, structure, iaOff+int64(ia.off)+0x28, p, "$INDEX_ALLOCATION:$I30 sizes are inconsistent (allocated %d, data %d)", ia.alloc, ia.size)
		return
	}
	runs, err := v.xruns(iax)
	if err != nil {
		return // scanRecord reported the runlist
	}
	if ba.nonRes && (ba.size < 0 || ba.init < 0 || ba.size > ba.alloc || ba.init > ba.size) {
		// attrData would zero-fill up to a size no runlist backs.
		c.add(SeverityError, structure, baOff+int64(ba.off)+0x28, p, "$BITMAP:$I30 sizes are inconsistent (allocated %d, data %d, initialized %d)", ba.alloc, ba.size, ba.init)
		return
	}
	bm, bmRuns, err := v.xdata(bax)
	if err != nil {
		c.add(SeverityError, structure, c.errOffset(err, baOff+int64(ba.off)), p, "$BITMAP:$I30 unreadable: %v", err)
		return
	}
	// bitOff is the volume byte offset of the bitmap byte holding bit i.
	bitOff := func(i int64) int64 {
		if !ba.nonRes {
			return baOff + int64(ba.valOff) + i/8
		}
		if o, err := v.locate(bmRuns, i/8, 1, int64(n)); err == nil {
			return o
		}
		return baOff + int64(ba.off)
	}
	bsize := int64(d.bsize)
	blocks := ia.size / bsize
	// blockOff is the volume byte offset of INDX block idx.
	blockOff := func(idx int64) int64 {
		if o, err := v.locate(runs, idx*bsize, bsize, int64(n)); err == nil {
			return o
		}
		return iaOff + int64(ia.off)
	}
	vcnOf := func(idx int64) int64 { return idx * bsize / d.unit }
	have := int64(len(bm)) * 8
	if have < blocks {
		c.add(SeverityError, structure, bitOff(int64(len(bm))*8), p,
			"$BITMAP:$I30 is %d bytes, too short for the %d INDX blocks of $INDEX_ALLOCATION:$I30 (needs %d): blocks from VCN %d on (byte 0x%x) have no bit",
			len(bm), blocks, (blocks+7)/8, vcnOf(have), blockOff(have))
	}
	for i := blocks; i < have; i++ {
		if bit(bm, i) {
			k := int64(0)
			for j := i; j < have; j++ {
				if bit(bm, j) {
					k++
				}
			}
			c.add(SeverityError, structure, bitOff(i), p,
				"bit %d of $BITMAP:$I30 (VCN %d) is set, but $INDEX_ALLOCATION:$I30 holds only %d INDX blocks (%d bits set past its end)",
				i, vcnOf(i), blocks, k)
			break
		}
	}
	for _, vcn := range sortedKeys(reached) {
		if vcn < 0 || vcn >= ia.size/d.unit || vcn*d.unit%bsize != 0 {
			// The root, or a VCN outside the allocation or between
			// blocks, which the walk reported as unreadable.
			continue
		}
		idx := vcn * d.unit / bsize
		if idx >= blocks || idx >= have || bit(bm, idx) {
			continue // a partial last block, or past the bitmap (reported above)
		}
		c.add(SeverityError, structure, blockOff(idx), p,
			"INDX block VCN %d at byte 0x%x is part of the index but its $BITMAP:$I30 bit is clear: the block can be handed out again over live entries",
			vcn, blockOff(idx))
	}
	if !complete {
		return
	}
	for idx := int64(0); idx < min(blocks, have); idx++ {
		if bit(bm, idx) && !reached[vcnOf(idx)] {
			c.add(SeverityWarning, structure, blockOff(idx), p,
				"INDX block VCN %d at byte 0x%x is marked in use in $BITMAP:$I30 but the index never reaches it (leaked; chkdsk frees it)",
				vcnOf(idx), blockOff(idx))
		}
	}
}
