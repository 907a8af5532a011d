package hive

// Writing back the subkey and value lists that edits changed (flush), in
// the list formats the hive version calls for.

import (
	"slices"
)

// flush rewrites the subkey and value lists edits changed, in offset
// order so that the layout does not depend on map order.
func (e *Editor) flush() error {
	var keys []uint32
	for nk, l := range e.kids {
		if l.dirty {
			keys = append(keys, nk)
		}
	}
	slices.Sort(keys)
	for _, nk := range keys {
		if err := e.writeSubkeys(nk, e.kids[nk]); err != nil {
			return err
		}
	}
	keys = keys[:0]
	for nk, l := range e.vals {
		if l.dirty {
			keys = append(keys, nk)
		}
	}
	slices.Sort(keys)
	for _, nk := range keys {
		if err := e.writeValues(nk, e.vals[nk]); err != nil {
			return err
		}
	}
	return nil
}

// writeSubkeys replaces the subkey list of the key at nk by l.
func (e *Editor) writeSubkeys(nk uint32, l *kidList) error {
	k, err := e.keyRecord(nk)
	if err != nil {
		return err
	}
	if err := e.freeSubkeyList(k.subList); err != nil {
		return err
	}
	list := uint32(nilOff)
	if len(l.kids) > 0 {
		if list, err = e.subkeyList(l.kids); err != nil {
			return err
		}
	}
	if err := e.patch32(nk, nkSubkeys, list); err != nil {
		return err
	}
	if err := e.patch32(nk, nkNumSubkeys, uint32(len(l.kids))); err != nil {
		return err
	}
	l.dirty = false
	return nil
}

// subkeyList writes a subkey list for sorted kids with the leaf type the
// hive version calls for (lh for 1.5, lf or li for 1.3/1.4, li before),
// under an ri when one leaf cannot hold them all (WRK cmindex.c limits).
func (e *Editor) subkeyList(kids []uint32) (uint32, error) {
	minor := e.f.Minor
	sig, limit := "li", maxLeaf
	switch {
	case minor >= 5:
		sig = "lh"
	case minor >= 3 && len(kids) <= maxFastLeaf:
		sig, limit = "lf", maxFastLeaf
	}
	if len(kids) <= limit {
		return e.leaf(sig, kids)
	}
	nLeaves := (len(kids) + limit - 1) / limit
	per := (len(kids) + nLeaves - 1) / nLeaves
	var leaves []uint32
	for i := 0; i < len(kids); i += per {
		l, err := e.leaf(sig, kids[i:min(len(kids), i+per)])
		if err != nil {
			return 0, err
		}
		leaves = append(leaves, l)
	}
	ri, err := e.alloc(4 + 4*len(leaves))
	if err != nil {
		return 0, err
	}
	b, _ := e.cellw(ri)
	clear(b)
	copy(b, "ri")
	le.PutUint16(b[2:], uint16(len(leaves)))
	for i, l := range leaves {
		le.PutUint32(b[4+4*i:], l)
	}
	return ri, nil
}

func (e *Editor) leaf(sig string, kids []uint32) (uint32, error) {
	width := 8
	if sig == "li" {
		width = 4
	}
	off, err := e.alloc(4 + width*len(kids))
	if err != nil {
		return 0, err
	}
	b, _ := e.cellw(off)
	clear(b)
	copy(b, sig)
	le.PutUint16(b[2:], uint16(len(kids)))
	for i, c := range kids {
		at := 4 + width*i
		le.PutUint32(b[at:], c)
		n, _ := e.kidName(c)
		switch sig {
		case "lh":
			le.PutUint32(b[at+4:], n.lhHash())
		case "lf":
			h := n.lfHint()
			copy(b[at+4:], h[:])
		}
	}
	return off, nil
}

// writeValues replaces the value list of the key at nk by l, in the old
// cell when it is large enough.
func (e *Editor) writeValues(nk uint32, l *valList) error {
	k, err := e.keyRecord(nk)
	if err != nil {
		return err
	}
	old := k.valList
	list := uint32(nilOff)
	if len(l.offs) > 0 && old != nilOff {
		if b, err := e.f.cell(old); err == nil && len(b) >= 4*len(l.offs) && len(b) < 4*len(l.offs)+64 {
			list = old
		}
	}
	if list == nilOff {
		if err := e.freeIfAllocated(old); err != nil {
			return err
		}
		if len(l.offs) > 0 {
			if list, err = e.alloc(4 * len(l.offs)); err != nil {
				return err
			}
		}
	}
	if list != nilOff {
		b, _ := e.cellw(list)
		clear(b)
		for i, o := range l.offs {
			le.PutUint32(b[4*i:], o)
		}
	}
	if err := e.patch32(nk, nkValues, list); err != nil {
		return err
	}
	if err := e.patch32(nk, nkNumValues, uint32(len(l.offs))); err != nil {
		return err
	}
	l.dirty = false
	return nil
}
