package ntfs

import (
	"bytes"
	"fmt"
)

// tx collects every change of one operation. Nothing reaches the device
// until commit, so a refused or failed operation leaves the image as it
// was; abort undoes the in-memory bitmap changes.
type tx struct {
	v      *vol
	recs   map[uint64]*record   // working copies of changed records
	blks   map[int64][]byte     // decoded INDX blocks by volume offset
	data   []dataWrite          // file data, written first
	undo   []undoBit            // bitmap bytes changed, for abort
	bmDirt map[int64]bool       // 512-byte pieces of $Bitmap to write
	mbDirt map[int64]bool       // 512-byte pieces of $MFT's $BITMAP
	fresh  map[uint64]bool      // records formatted by this tx (MFT growth)
	frees  bool                 // a cluster or MFT record was freed
	idx    map[uint64]*dirIndex // open $I30 indexes, one per directory
	parsed map[int64][]ientry   // entries of the blocks in blks, for v.nodeCache
	saved  struct {
		mftRuns []run
		mftRecs int64
		mbm     []byte
		mbmRuns []run
	}
}

type dataWrite struct {
	off int64 // volume byte offset
	b   []byte
}

type undoBit struct {
	mft bool
	i   int64
	old byte
}

func (v *vol) begin() *tx {
	t := &tx{v: v, recs: map[uint64]*record{}, blks: map[int64][]byte{},
		bmDirt: map[int64]bool{}, mbDirt: map[int64]bool{}, fresh: map[uint64]bool{},
		idx: map[uint64]*dirIndex{}, parsed: map[int64][]ientry{}}
	t.saved.mftRuns = append([]run(nil), v.mftRuns...)
	t.saved.mftRecs = v.mftRecs
	t.saved.mbm = v.mftBitmap
	t.saved.mbmRuns = append([]run(nil), v.mbmRuns...)
	return t
}

// abort forgets the tx and restores the volume's in-memory state.
func (t *tx) abort() {
	v := t.v
	v.hint = 0
	v.mftBitmap = t.saved.mbm
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		if u.mft {
			if u.i < int64(len(v.mftBitmap)) {
				v.mftBitmap[u.i] = u.old
			}
		} else {
			v.bitmap[u.i] = u.old
		}
	}
	v.mftRuns, v.mftRecs, v.mbmRuns = t.saved.mftRuns, t.saved.mftRecs, t.saved.mbmRuns
}

// rec returns the tx's working copy of record n.
func (t *tx) rec(n uint64) (*record, error) {
	if r, ok := t.recs[n]; ok {
		return r, nil
	}
	c, err := t.v.record(n)
	if err != nil {
		return nil, err
	}
	r := &record{num: n, b: bytes.Clone(c.b)}
	t.recs[n] = r
	return r, nil
}

// peek returns record n for reading only: the working copy if there is one.
func (t *tx) peek(n uint64) (*record, error) {
	if r, ok := t.recs[n]; ok {
		return r, nil
	}
	return t.v.record(n)
}

// block returns the decoded INDX block at volume offset off for reading:
// the tx's working copy if there is one, else the committed one (checked
// for fixups and signature). Callers that change it store a copy in t.blks.
func (t *tx) block(off int64, size int, rec uint64) ([]byte, error) {
	if b, ok := t.blks[off]; ok {
		return b, nil
	}
	c, ok := t.v.blkCache[off]
	if !ok {
		c = make([]byte, size)
		if err := t.v.readAt(c, off); err != nil {
			return nil, err
		}
		if err := unfixup(c, "INDX", -1, off); err != nil {
			return nil, fmt.Errorf("directory record %d: %w", rec, err)
		}
		t.v.blkCache[off] = c
	}
	if len(c) != size {
		return nil, &FormatError{Record: -1, Off: off, Msg: "index block size changed"}
	}
	return c, nil
}

func (t *tx) setBitmap(mft bool, i int64, on bool) {
	b := t.v.bitmap
	dirt := t.bmDirt
	if mft {
		b, dirt = t.v.mftBitmap, t.mbDirt
	}
	old := b[i>>3]
	if on {
		b[i>>3] |= 1 << (i & 7)
	} else {
		b[i>>3] &^= 1 << (i & 7)
	}
	if old != b[i>>3] {
		if !on {
			t.frees = true
		}
		t.undo = append(t.undo, undoBit{mft: mft, i: i >> 3, old: old})
		dirt[(i>>3)/512] = true
	}
}

// allocClusters takes n clusters from $Bitmap: the first free extent long
// enough outside the MFT zone, else the first free clusters in order (a
// fragmented allocation), else the MFT zone. near, when >= 0, is tried
// first so that a growing file stays contiguous.
func (t *tx) allocClusters(n int64, near int64) ([]run, error) {
	if n <= 0 {
		return nil, nil
	}
	v := t.v
	free := func(c int64) bool { return c < v.clusters && !bit(v.bitmap, c) }
	inZone := func(c int64) bool { return c >= v.zoneStart && c < v.zoneEnd }
	take := func(runs []run) []run {
		for _, r := range runs {
			for c := r.lcn; c < r.lcn+r.n; c++ {
				t.setBitmap(false, c, true)
			}
		}
		return runs
	}
	if near >= 0 {
		c := near
		for c < near+n && free(c) && (!inZone(c) || inZone(near)) {
			c++
		}
		if c == near+n {
			return take([]run{{near, n}}), nil
		}
	}
	// First fit contiguous, outside the zone, from the lowest cluster that
	// may be free (v.hint: everything below it is in use or in the zone).
	prefix := true // every cluster from v.hint to c is unusable
	for c := v.hint; c < v.clusters; {
		if !free(c) || inZone(c) {
			next := c + 1
			if inZone(c) {
				next = max(next, v.zoneEnd)
			} else if c&7 == 0 && c+8 <= v.clusters && v.bitmap[c>>3] == 0xFF {
				next = c + 8
			}
			if prefix {
				v.hint = next
			}
			c = next
			continue
		}
		prefix = false
		s := c
		for c < v.clusters && free(c) && !inZone(c) && c-s < n {
			c++
		}
		if c-s == n {
			return take([]run{{s, n}}), nil
		}
	}
	// Fragmented: outside the zone first, then inside.
	var runs []run
	need := n
	for pass := 0; pass < 2 && need > 0; pass++ {
		for c := int64(0); c < v.clusters && need > 0; c++ {
			if !free(c) || inZone(c) != (pass == 1) {
				continue
			}
			runs = appendRuns(runs, run{c, 1})
			t.setBitmap(false, c, true)
			need--
		}
	}
	if need > 0 {
		return nil, fmt.Errorf("%w: %d more clusters of %d bytes needed", ErrNoSpace, need, v.csize)
	}
	return runs, nil
}

func (t *tx) freeClusters(runs []run) {
	for _, r := range runs {
		if r.lcn < 0 {
			continue
		}
		t.v.hint = min(t.v.hint, r.lcn)
		for c := r.lcn; c < r.lcn+r.n; c++ {
			t.setBitmap(false, c, false)
		}
	}
}

// writeData queues file data for the clusters of runs (b is padded to
// whole clusters).
func (t *tx) writeData(runs []run, b []byte) {
	pos := int64(0)
	for _, r := range runs {
		n := r.n * t.v.csize
		chunk := make([]byte, n)
		if pos < int64(len(b)) {
			copy(chunk, b[pos:min(int64(len(b)), pos+n)])
		}
		t.data = append(t.data, dataWrite{off: r.lcn * t.v.csize, b: chunk})
		pos += n
	}
}

// pending is metadata that committed operations wrote in memory but not
// yet on the device, by volume offset: encoded INDX blocks, copies of the
// 512-byte bitmap pieces as they were at commit, encoded MFT records and
// their $MFTMirr copies. Operations that only allocate (puts and mkdirs
// into existing directories, the bulk of `image put`) leave their
// metadata here, so that a directory's leaf block or a bitmap piece
// changed by a thousand puts is written once, and neighbouring records go
// out in one write. The caches (recCache, blkCache, the bitmaps) always
// hold the queued versions, so nothing queued is ever read from the
// device.
type pending struct {
	blks, bms, recs, mirr map[int64][]byte
	bytes                 int
}

func (p *pending) empty() bool { return p.blks == nil }

// pendLimit bounds the bytes held back before they are written.
const pendLimit = 8 << 20

// commit queues the tx's file data in v.dataQ and its metadata in v.pend.
// An operation that freed clusters or records writes everything queued,
// its own included, before it returns: freed space may be reused by the
// next operation's data, which must not land while a record on the
// device still points at it. The queues are also written when they hold
// pendLimit bytes together and at Flush. Each write of the queues goes
// file data, index blocks, bitmaps, records, then the $MFTMirr copies, so
// that everything lands after the data it describes and a crash half-way
// leaves at worst allocated-but-unreferenced space rather than references
// to garbage.
func (t *tx) commit() error {
	v := t.v
	// Resolve every offset first: a damaged runlist fails the commit
	// before anything is written.
	type piece struct {
		off int64
		b   []byte
	}
	var bms, recs, mirr []piece
	for _, side := range []struct {
		bm   []byte
		runs []run
		dirt map[int64]bool
	}{{v.bitmap, v.bmRuns, t.bmDirt}, {v.mftBitmap, v.mbmRuns, t.mbDirt}} {
		for p := range side.dirt {
			lo, hi := p*512, min(int64(len(side.bm)), (p+1)*512)
			if lo >= hi {
				continue
			}
			off, err := v.locate(side.runs, lo, hi-lo, -1)
			if err != nil {
				return err
			}
			bms = append(bms, piece{off, bytes.Clone(side.bm[lo:hi])})
		}
	}
	for n, r := range t.recs {
		off, err := v.locate(v.mftRuns, int64(n)*int64(v.recSize), int64(v.recSize), int64(n))
		if err != nil {
			return err
		}
		enc := fixup(r.b)
		recs = append(recs, piece{off, enc})
		if int(n) < v.mirrN {
			mirr = append(mirr, piece{v.mirrLCN*v.csize + int64(n)*int64(v.recSize), enc})
		}
	}
	for _, d := range t.data {
		v.dataQ.add(d.off, d.b)
	}
	p := &v.pend
	if p.empty() {
		*p = pending{blks: map[int64][]byte{}, bms: map[int64][]byte{}, recs: map[int64][]byte{}, mirr: map[int64][]byte{}}
	}
	add := func(m map[int64][]byte, off int64, b []byte) {
		if old, ok := m[off]; ok {
			p.bytes -= len(old)
		}
		m[off] = b
		p.bytes += len(b)
	}
	for off, b := range t.blks {
		add(p.blks, off, fixup(b))
		v.blkCache[off] = b
		if es, ok := t.parsed[off]; ok {
			v.nodeCache[off] = es
		} else {
			delete(v.nodeCache, off)
		}
	}
	for _, x := range bms {
		add(p.bms, x.off, x.b)
	}
	for _, x := range recs {
		add(p.recs, x.off, x.b)
	}
	for _, x := range mirr {
		add(p.mirr, x.off, x.b)
	}
	for n, r := range t.recs {
		v.recCache[n] = r.b
	}
	frees := t.frees
	t.recs, t.blks, t.data, t.undo, t.idx, t.parsed = nil, nil, nil, nil, nil, nil
	if frees || p.bytes+v.dataQ.bytes >= pendLimit {
		return v.flush()
	}
	return nil
}

// dataQueue is file data committed operations wrote, held back so that
// the data of many small files goes out in few large writes; pieces that
// touch are joined (up to 1 MiB). It is written before any queued
// metadata (v.flush), and before a read that overlaps it.
type dataQueue struct {
	ws     []dataWrite
	bytes  int
	lo, hi int64 // the volume range the pieces lie in
}

func (q *dataQueue) add(off int64, b []byte) {
	if len(b) == 0 {
		return
	}
	if len(q.ws) == 0 {
		q.lo, q.hi = off, off
	}
	if n := len(q.ws); n > 0 {
		last := &q.ws[n-1]
		if last.off+int64(len(last.b)) == off && len(last.b)+len(b) <= 1<<20 {
			last.b = append(last.b, b...)
			q.bytes += len(b)
			q.hi = max(q.hi, off+int64(len(b)))
			return
		}
	}
	q.ws = append(q.ws, dataWrite{off: off, b: b})
	q.bytes += len(b)
	q.lo, q.hi = min(q.lo, off), max(q.hi, off+int64(len(b)))
}

func (q *dataQueue) overlaps(off, n int64) bool {
	return q.bytes > 0 && off < q.hi && off+n > q.lo
}

// write writes the queued pieces and empties the queue.
func (q *dataQueue) write(v *vol) error {
	ws := q.ws
	*q = dataQueue{}
	for _, d := range ws {
		if err := v.write(d.b, d.off); err != nil {
			return err
		}
	}
	return nil
}

// write writes b at volume offset off.
func (v *vol) write(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > v.clusters*v.csize {
		return &FormatError{Record: -1, Off: off, Msg: "write outside the volume"}
	}
	if _, err := v.dev.WriteAt(b, v.base+off); err != nil {
		return fmt.Errorf("ntfs: write at volume byte 0x%x: %w", off, err)
	}
	return nil
}

// writeMerged writes the pieces of m in offset order, pieces that touch
// joined into one write of at most 1 MiB.
func (v *vol) writeMerged(m map[int64][]byte) error {
	// One buffer for every run: WriteAt does not keep it (io.WriterAt).
	buf := make([]byte, 0, 1<<20)
	start := int64(-1)
	for _, off := range sortedKeys(m) {
		b := m[off]
		if start >= 0 && off == start+int64(len(buf)) && len(buf)+len(b) <= 1<<20 {
			buf = append(buf, b...)
			continue
		}
		if start >= 0 {
			if err := v.write(buf, start); err != nil {
				return err
			}
		}
		start, buf = off, append(buf[:0], b...)
	}
	if start >= 0 {
		return v.write(buf, start)
	}
	return nil
}

// flush writes the queues (see commit), file data first, and empties
// them.
func (v *vol) flush() error {
	if err := v.dataQ.write(v); err != nil {
		v.broken = err
		return err
	}
	p := v.pend
	if p.empty() {
		return nil
	}
	v.pend = pending{}
	for _, m := range []map[int64][]byte{p.blks, p.bms, p.recs, p.mirr} {
		if err := v.writeMerged(m); err != nil {
			v.broken = err
			return err
		}
	}
	return nil
}
