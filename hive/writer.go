package hive

import "fmt"

// writer lays a hive out in fresh bins: cells are carved in order from the
// current bin; when one does not fit, the rest of the bin becomes a single
// free cell and a new bin (large enough for the cell) is started.
type writer struct {
	minor  uint32
	buf    []byte // base block, then the hive bins data
	data   []byte // buf[baseBlockSize:], re-sliced whenever buf grows
	binOff uint32 // start of the current bin
	pos    uint32 // next free byte in the current bin
	stamp  uint64
}

func align8(n int) int { return (n + 7) &^ 7 }

// alloc allocates a cell with n bytes of data and returns its offset.
func (w *writer) alloc(n int) uint32 {
	size := uint32(align8(4 + n))
	if len(w.data) == 0 {
		w.newBin(size)
	} else if end := w.binOff + le.Uint32(w.data[w.binOff+binSize:]); end-w.pos < size {
		if end > w.pos {
			le.PutUint32(w.data[w.pos:], end-w.pos) // free remainder
		}
		w.newBin(size)
	}
	off := w.pos
	le.PutUint32(w.data[off:], uint32(-int32(size)))
	w.pos += size
	return off
}

func (w *writer) newBin(cell uint32) {
	size := (cell + binHeaderSize + binAlign - 1) / binAlign * binAlign
	off := uint32(len(w.data))
	if n := len(w.buf) + int(size); n <= cap(w.buf) {
		w.buf = w.buf[:n] // memory past len is still zero from make
	} else {
		w.buf = append(w.buf, make([]byte, size)...)
	}
	w.data = w.buf[baseBlockSize:]
	b := w.data[off:]
	copy(b, "hbin")
	le.PutUint32(b[binOffset:], off)
	le.PutUint32(b[binSize:], size)
	if off == 0 {
		le.PutUint64(b[binTimestamp:], w.stamp)
	}
	w.binOff, w.pos = off, off+binHeaderSize
}

// finish closes the last bin with a free cell.
func (w *writer) finish() {
	end := w.binOff + le.Uint32(w.data[w.binOff+binSize:])
	if end > w.pos {
		le.PutUint32(w.data[w.pos:], end-w.pos)
	}
}

// put writes b into the cell at off (after its size field) at offset at.
func (w *writer) put(off uint32, at int, b []byte) { copy(w.data[int(off)+4+at:], b) }

func (w *writer) put16(off uint32, at int, v uint16) { le.PutUint16(w.data[int(off)+4+at:], v) }

func (w *writer) put32(off uint32, at int, v uint32) { le.PutUint32(w.data[int(off)+4+at:], v) }

// Bytes lays the hive out and returns the whole file: base block with
// both sequence numbers one above the last saved ones, a new timestamp,
// the bins length and checksum; bins holding every cell exactly once.
func (e *tree) Bytes() ([]byte, error) {
	now := toFiletime(e.now())
	w := &writer{minor: e.minor, stamp: now}
	w.buf = make([]byte, baseBlockSize, baseBlockSize+e.sizeEstimate())
	w.data = w.buf[baseBlockSize:]
	// Security cells first, in list order; unused ones are dropped.
	for _, s := range e.sks {
		s.refs = 0
	}
	var count func(n *node)
	count = func(n *node) {
		n.sk.refs++
		for _, c := range n.subs {
			count(c)
		}
	}
	count(e.root)
	var sks []*secDesc
	for _, s := range e.sks {
		if s.refs > 0 {
			sks = append(sks, s)
		}
	}
	for _, s := range sks {
		s.off = w.alloc(skDesc + len(s.desc))
		w.put(s.off, 0, []byte("sk"))
		w.put16(s.off, 2, s.reserved)
		w.put32(s.off, skRefs, uint32(s.refs))
		w.put32(s.off, skDescLen, uint32(len(s.desc)))
		w.put(s.off, skDesc, s.desc)
	}
	for i, s := range sks {
		w.put32(s.off, skFlink, sks[(i+1)%len(sks)].off)
		w.put32(s.off, skBlink, sks[(i+len(sks)-1)%len(sks)].off)
	}
	e.sks = sks
	rootOff, err := w.key(e.root, 0)
	if err != nil {
		return nil, err
	}
	w.finish()

	out := w.buf
	base := out[:baseBlockSize]
	copy(base, e.base)
	seq := e.seq + 1
	le.PutUint32(base[hdrSeq1:], seq)
	le.PutUint32(base[hdrSeq2:], seq)
	le.PutUint32(base[hdrMajor:], 1)
	le.PutUint32(base[hdrMinor:], e.minor)
	le.PutUint32(base[hdrType:], 0)
	le.PutUint32(base[hdrFormat:], 1)
	le.PutUint32(base[hdrRoot:], rootOff)
	le.PutUint32(base[hdrLength:], uint32(len(w.data)))
	le.PutUint32(base[hdrCluster:], 1)
	le.PutUint32(base[hdrBootType:], 0)
	le.PutUint32(base[hdrBootRecov:], 0)
	// hivex checks the raw XOR without Windows' 0/0xFFFFFFFF fix-ups:
	// nudge the timestamp so that both agree.
	for ts := now; ; ts++ {
		le.PutUint64(base[hdrTimestamp:], ts)
		le.PutUint32(base[hdrChecksum:], 0)
		if x := rawChecksum(base); x != 0 && x != 0xFFFFFFFF {
			le.PutUint32(base[hdrChecksum:], x)
			le.PutUint64(out[baseBlockSize+binTimestamp:], ts)
			break
		}
	}
	return out, nil
}

// key writes n and its subtree and returns the offset of its nk cell.
func (w *writer) key(n *node, parent uint32) (uint32, error) {
	off := w.alloc(nkName + len(n.raw))
	w.put(off, 0, []byte("nk"))
	flags := n.flags &^ (keyCompName | keyHiveEntry)
	if n.comp {
		flags |= keyCompName
	}
	if n.parent == nil {
		flags |= keyHiveEntry
	}
	w.put16(off, nkFlags, flags)
	le.PutUint64(w.data[off+4+nkTimestamp:], n.mtime)
	w.put32(off, nkAccess, n.access)
	w.put32(off, nkParent, parent)
	w.put32(off, nkNumSubkeys, uint32(len(n.subs)))
	w.put32(off, nkNumVolatile, 0)
	w.put32(off, nkSubkeys, nilOff)
	w.put32(off, nkVolatile, nilOff)
	w.put32(off, nkNumValues, uint32(len(n.vals)))
	w.put32(off, nkValues, nilOff)
	w.put32(off, nkSecurity, n.sk.off)
	w.put32(off, nkClass, nilOff)
	w.put32(off, nkWorkVar, n.workvar)
	w.put16(off, nkNameLen, uint16(len(n.raw)))
	w.put16(off, nkClassLen, uint16(len(n.class)))
	w.put(off, nkName, n.raw)
	if len(n.class) > 0 {
		c := w.alloc(len(n.class))
		w.put(c, 0, n.class)
		w.put32(off, nkClass, c)
	}
	// Values.
	var maxVN, maxVD uint32
	if len(n.vals) > 0 {
		offs := make([]uint32, len(n.vals))
		for i, v := range n.vals {
			o, err := w.value(v)
			if err != nil {
				return 0, err
			}
			offs[i] = o
			maxVN = max(maxVN, uint32(2*rawLen(v.raw, v.comp)))
			maxVD = max(maxVD, uint32(len(v.data)))
		}
		l := w.alloc(4 * len(offs))
		for i, o := range offs {
			w.put32(l, 4*i, o)
		}
		w.put32(off, nkValues, l)
	}
	// Subkeys.
	var maxName, maxCls uint32
	if len(n.subs) > 0 {
		offs := make([]uint32, len(n.subs))
		for i, c := range n.subs {
			o, err := w.key(c, off)
			if err != nil {
				return 0, err
			}
			offs[i] = o
			maxName = max(maxName, uint32(2*len(c.name)))
			maxCls = max(maxCls, uint32(len(c.class)))
		}
		w.put32(off, nkSubkeys, w.subkeyList(n.subs, offs))
	}
	w.put32(off, nkMaxName, n.maxName&0xFFFF0000|max(n.maxName&0xFFFF, maxName))
	w.put32(off, nkMaxClass, max(n.maxCls, maxCls))
	w.put32(off, nkMaxValueName, max(n.maxVN, maxVN))
	w.put32(off, nkMaxValueData, max(n.maxVD, maxVD))
	return off, nil
}

// value writes a vk cell and its data.
func (w *writer) value(v *value) (uint32, error) {
	off := w.alloc(vkName + len(v.raw))
	w.put(off, 0, []byte("vk"))
	w.put16(off, vkNameLen, uint16(len(v.raw)))
	w.put32(off, vkType, v.typ)
	var flags uint16
	if v.comp && len(v.raw) > 0 {
		flags = valCompName
	}
	w.put16(off, vkFlags, flags)
	w.put16(off, vkSpare, v.spare)
	w.put(off, vkName, v.raw)
	n := len(v.data)
	switch {
	case n <= 4:
		var b [4]byte
		copy(b[:], v.data)
		w.put32(off, vkDataLen, uint32(n)|dataInline)
		w.put(off, vkData, b[:])
	case w.minor >= 4 && n > bigDataSegment:
		count := (n + bigDataSegment - 1) / bigDataSegment
		if count > 0xFFFF {
			return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
		}
		segs := make([]uint32, count)
		for i := range segs {
			// Every segment cell has room for a full segment, the last
			// one too, as Windows writes them (hivex reads only
			// whole segments).
			chunk := v.data[i*bigDataSegment : min(n, (i+1)*bigDataSegment)]
			segs[i] = w.alloc(bigDataSegment)
			w.put(segs[i], 0, chunk)
		}
		l := w.alloc(4 * count)
		for i, s := range segs {
			w.put32(l, 4*i, s)
		}
		db := w.alloc(12) // Windows' db cells have 4 spare bytes
		w.put(db, 0, []byte("db"))
		w.put16(db, 2, uint16(count))
		w.put32(db, 4, l)
		w.put32(off, vkDataLen, uint32(n))
		w.put32(off, vkData, db)
	default:
		if n+4 > maxCellSize {
			return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
		}
		d := w.alloc(n)
		w.put(d, 0, v.data)
		w.put32(off, vkDataLen, uint32(n))
		w.put32(off, vkData, d)
	}
	return off, nil
}

// subkeyList writes the subkey list of sorted children at offs, with the
// leaf type the hive version calls for (lh for 1.5, lf or li for 1.3/1.4,
// li before), under an ri when one leaf cannot hold them all.
func (w *writer) subkeyList(subs []*node, offs []uint32) uint32 {
	sig, limit := "li", maxLeaf
	switch {
	case w.minor >= 5:
		sig = "lh"
	case w.minor >= 3 && len(subs) <= maxFastLeaf:
		sig, limit = "lf", maxFastLeaf
	}
	if len(subs) <= limit {
		return w.leaf(sig, subs, offs)
	}
	nLeaves := (len(subs) + limit - 1) / limit
	per := (len(subs) + nLeaves - 1) / nLeaves
	var leaves []uint32
	for i := 0; i < len(subs); i += per {
		j := min(len(subs), i+per)
		leaves = append(leaves, w.leaf(sig, subs[i:j], offs[i:j]))
	}
	ri := w.alloc(4 + 4*len(leaves))
	w.put(ri, 0, []byte("ri"))
	w.put16(ri, 2, uint16(len(leaves)))
	for i, l := range leaves {
		w.put32(ri, 4+4*i, l)
	}
	return ri
}

func (w *writer) leaf(sig string, subs []*node, offs []uint32) uint32 {
	width := 8
	if sig == "li" {
		width = 4
	}
	l := w.alloc(4 + width*len(subs))
	w.put(l, 0, []byte(sig))
	w.put16(l, 2, uint16(len(subs)))
	for i, c := range subs {
		at := 4 + width*i
		w.put32(l, at, offs[i])
		switch sig {
		case "lh":
			w.put32(l, at+4, lhHash(c.name))
		case "lf":
			h := lfHint(c.name)
			w.put(l, at+4, h[:])
		}
	}
	return l
}

// sizeEstimate is a generous estimate of the laid-out hive bins size, so
// that the output buffer is allocated once.
func (e *tree) sizeEstimate() int {
	n := 0
	var walk func(k *node)
	walk = func(k *node) {
		n += align8(4+nkName+len(k.raw)) + align8(4+len(k.class)) + 16*len(k.subs) + 8
		if len(k.vals) > 0 {
			n += align8(4 + 4*len(k.vals))
		}
		for _, v := range k.vals {
			n += align8(4+vkName+len(v.raw)) + align8(4+len(v.data)) + 32
		}
		for _, c := range k.subs {
			walk(c)
		}
	}
	walk(e.root)
	for _, s := range e.sks {
		n += align8(4 + skDesc + len(s.desc))
	}
	return n + n/16 + 2*binAlign
}
