package hive

import (
	"fmt"
	"math/bits"
	"slices"
)

// Cell allocation for in-place editing, the way Windows' HvAllocateCell
// and HvFreeCell work: free cells are reused best fit, split when larger
// than needed, coalesced with free neighbours when freed, and a new bin is
// appended at the end of the hive only when no free cell is large enough.

// smallClasses is the number of exact-size free lists: one per 8 bytes up
// to one 4 KiB bin; larger free cells share one list.
const smallClasses = binAlign/cellAlign + 1

// freeCells indexes the hive's free cells by size. Entries go stale when a
// cell is allocated or coalesced; they are checked against the cell's size
// field when taken, and dropped when they no longer match.
type freeCells struct {
	scanned uint32 // bins below this offset are indexed; the rest is scanned on demand
	small   [smallClasses][]uint32
	nonzero [(smallClasses + 63) / 64]uint64 // bit c: small[c] may hold entries
	large   []uint32
}

func (fc *freeCells) add(off, size uint32) {
	if size < binAlign+cellAlign {
		c := size / cellAlign
		fc.small[c] = append(fc.small[c], off)
		fc.nonzero[c/64] |= 1 << (c % 64)
		return
	}
	fc.large = append(fc.large, off)
}

// scanBin indexes the free cells of the bin at off, checking that its
// cells tile it, and returns the bin's end. A small edit of a hive without
// free space scans every bin once, so the loop is kept tight: it works on
// the bin alone, with the cell size as a signed word.
func (e *Editor) scanBin(off uint32) (uint32, error) {
	size := le.Uint32(e.f.data[off+binSize:])
	bin := e.f.data[off : off+size] // bounds checked by mapBins
	co := uint32(binHeaderSize)
	for int(co)+4 <= len(bin) {
		s := int32(le.Uint32(bin[co:]))
		n := uint32(s)
		if s < 0 {
			n = uint32(-s)
		}
		if n == 0 || n%cellAlign != 0 || n > size-co {
			return 0, cellErr(off+co, "cell size 0x%x does not tile its hbin (ends at 0x%x)", n, off+size+baseBlockSize)
		}
		if s > 0 {
			e.free.add(off+co, n)
		}
		co += n
	}
	if co != size {
		return 0, cellErr(off+co, "%d bytes left at the end of the hbin at 0x%x, not a cell", size-co, off+baseBlockSize)
	}
	return off + size, nil
}

// freeSize returns the size of the free cell at off, or 0 if off is not
// a free cell.
func (e *Editor) freeSize(off uint32) uint32 {
	if uint64(off)+4 > uint64(len(e.f.data)) {
		return 0
	}
	s := int32(le.Uint32(e.f.data[off:]))
	if s <= 0 {
		return 0
	}
	return uint32(s)
}

// alloc allocates a cell with room for n data bytes and returns its
// offset. The cell's data is not cleared.
//
// The best fit among the free cells indexed so far wins (the least
// fragmentation, so repeated small edits do not grow the hive); bins not
// yet indexed are scanned one by one until one has room, so a small edit
// of a large hive reads few bins. Once an edit has changed more than
// bulkPages pages it is a bulk edit, and writes matter more: free cells in
// pages this save writes anyway come first, and free cells smaller than
// bulkMinCell in other pages are passed over (writing a whole page for a
// small leftover is what made a large edit rewrite most of the hive; a
// new bin holds far more). Only when no free cell is large enough is a
// bin appended.
func (e *Editor) alloc(n int) (uint32, error) {
	size := uint32(align8(4 + n))
	min := size
	if e.ndirty > bulkPages {
		if off, have, ok := e.fromIndex(&e.hot, size); ok {
			return e.take(off, have, size), nil
		}
		min = max(size, bulkMinCell)
	}
	for {
		if off, have, ok := e.fromIndex(&e.free, min); ok {
			return e.take(off, have, size), nil
		}
		if e.free.scanned >= uint32(len(e.f.data)) {
			return e.appendBin(size)
		}
		end, err := e.scanBin(e.free.scanned)
		if err != nil {
			return 0, err
		}
		e.free.scanned = end
	}
}

const (
	bulkPages   = 64
	bulkMinCell = 1024
)

// fromIndex removes and returns the smallest free cell of fc of at least
// min bytes, checking each candidate against the hive.
func (e *Editor) fromIndex(fc *freeCells, min uint32) (off, have uint32, ok bool) {
	if min < binAlign+cellAlign {
		for c := min / cellAlign; c < smallClasses; {
			w := fc.nonzero[c/64] >> (c % 64)
			if w == 0 {
				c = (c/64 + 1) * 64
				continue
			}
			c += uint32(bits.TrailingZeros64(w))
			l := fc.small[c]
			for len(l) > 0 {
				off := l[len(l)-1]
				l = l[:len(l)-1]
				if e.freeSize(off) == c*cellAlign {
					fc.small[c] = l
					if len(l) == 0 {
						fc.nonzero[c/64] &^= 1 << (c % 64)
					}
					return off, c * cellAlign, true
				}
			}
			fc.small[c] = l
			fc.nonzero[c/64] &^= 1 << (c % 64)
			c++
		}
	}
	best, bestSize := -1, uint32(0)
	for i := 0; i < len(fc.large); {
		s := e.freeSize(fc.large[i])
		if s < binAlign+cellAlign {
			// Allocated, absorbed or split since it was recorded.
			fc.large[i] = fc.large[len(fc.large)-1]
			fc.large = fc.large[:len(fc.large)-1]
			continue
		}
		if s >= min && (best < 0 || s < bestSize) {
			best, bestSize = i, s
		}
		i++
	}
	if best < 0 {
		return 0, 0, false
	}
	off = fc.large[best]
	fc.large = slices.Delete(fc.large, best, best+1)
	return off, bestSize, true
}

// take allocates size bytes of the free cell of have bytes at off; the
// rest, if it can hold a cell, stays free.
func (e *Editor) take(off, have, size uint32) uint32 {
	data := e.f.data
	if have-size >= cellAlign {
		le.PutUint32(data[off+size:], have-size)
		e.touch(off+size, 4)
		e.free.add(off+size, have-size)
		e.hot.add(off+size, have-size)
	} else {
		size = have
	}
	le.PutUint32(data[off:], uint32(-int32(size)))
	e.touch(off, 4)
	return off
}

// appendBin appends a bin large enough for a cell of size bytes, allocates
// the cell at its start and leaves the rest of the bin one free cell.
func (e *Editor) appendBin(size uint32) (uint32, error) {
	bsize := (size + binHeaderSize + binAlign - 1) / binAlign * binAlign
	off := uint32(len(e.f.data))
	if uint64(off)+uint64(bsize) > 0x7FFFF000 {
		return 0, fmt.Errorf("%w: the hive would exceed 2 GiB", ErrTooLarge)
	}
	data := slices.Grow(e.f.data, int(bsize))[:int(off)+int(bsize)]
	b := data[off:]
	clear(b) // capacity past the data may hold the file's slack
	copy(b, "hbin")
	le.PutUint32(b[binOffset:], off)
	le.PutUint32(b[binSize:], bsize)
	e.f.data = data
	e.f.Header.Length = uint32(len(data))
	for range bsize / binAlign {
		e.f.binOf = append(e.f.binOf, off)
	}
	for len(e.dsec)*64 < len(data)/logSector {
		e.dsec = append(e.dsec, 0)
	}
	e.touch(off, int(bsize))
	e.free.scanned = uint32(len(data))
	cell := off + binHeaderSize
	le.PutUint32(data[cell:], uint32(-int32(size)))
	if rest := bsize - binHeaderSize - size; rest > 0 {
		le.PutUint32(data[cell+size:], rest)
		e.free.add(cell+size, rest)
		e.hot.add(cell+size, rest)
	}
	return cell, nil
}

// freeCell frees the allocated cell at off and coalesces it with free
// neighbours in its bin.
func (e *Editor) freeCell(off uint32) error {
	data := e.f.data
	start, end, ok := e.f.binBounds(off)
	if !ok || off < start+binHeaderSize || off%cellAlign != 0 || off+4 > end {
		return cellErr(off, "freeing an offset that is not a cell")
	}
	s := int32(le.Uint32(data[off:]))
	if s >= 0 {
		return cellErr(off, "freeing a cell that is already free (a cell used twice)")
	}
	n := uint32(-int64(s))
	if uint64(off)+uint64(n) > uint64(end) {
		return cellErr(off, "cell size 0x%x exceeds its hbin (ends at 0x%x)", n, end+baseBlockSize)
	}
	prev := uint32(nilOff)
	co := start + binHeaderSize
	for co < off {
		cs := int32(le.Uint32(data[co:]))
		cn := uint32(cs)
		if cs < 0 {
			cn = uint32(-int64(cs))
		}
		if cn == 0 || cn%cellAlign != 0 || uint64(co)+uint64(cn) > uint64(end) {
			return cellErr(co, "cell size 0x%x does not tile its hbin", cn)
		}
		if cs > 0 && co+cn == off {
			prev = co
		}
		co += cn
	}
	if co != off {
		return cellErr(off, "freeing an offset inside another cell")
	}
	// Absorbed cells get a zero size field, so that stale index entries
	// pointing at them are recognised.
	if nx := off + n; nx+4 <= end {
		if ns := int32(le.Uint32(data[nx:])); ns > 0 && uint64(nx)+uint64(ns) <= uint64(end) {
			n += uint32(ns)
			le.PutUint32(data[nx:], 0)
		}
	}
	if prev != nilOff {
		le.PutUint32(data[off:], 0)
		n += off - prev
		off = prev
	}
	le.PutUint32(data[off:], n)
	e.touch(off, 4)
	if off < e.free.scanned {
		e.free.add(off, n)
	}
	e.hot.add(off, n)
	return nil
}
