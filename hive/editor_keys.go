package hive

// Keys: finding, creating and deleting them, their subkey lists as the
// editor holds them, and their class names.

import (
	"fmt"
	"slices"
)

// children returns the subkeys of the key at nk, loading and checking
// them once: a list out of order is sorted (and rewritten on save), a
// duplicate name is an error.
func (e *Editor) children(nk uint32) (*kidList, error) {
	if l := e.kids[nk]; l != nil {
		return l, nil
	}
	k, err := e.keyRecord(nk)
	if err != nil {
		return nil, err
	}
	offs, err := k.subkeyOffs()
	if err != nil {
		return nil, err
	}
	// Names are checked and compared where the nk cells hold them: a bulk
	// edit loads the lists of hundreds of keys, and a decoded copy of
	// every name was much of its garbage.
	sorted := true
	var prev storedName
	for i, o := range offs {
		n, err := e.kidName(o)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			switch c := prev.compareStored(n); {
			case c == 0:
				return nil, cellErr(nk, "duplicate subkey name %q", unitsString(n.units()))
			case c > 0:
				sorted = false
			}
		}
		prev = n
	}
	// Room for a few more: a key created under this one is inserted.
	l := &kidList{kids: slices.Grow(offs, len(offs)/8+2), dirty: uint32(len(offs)) != k.nsub}
	if !sorted {
		slices.SortStableFunc(l.kids, e.cmpKids)
		l.dirty = true
		for i := 1; i < len(l.kids); i++ {
			if e.cmpKids(l.kids[i-1], l.kids[i]) == 0 {
				n, _ := e.kidName(l.kids[i])
				return nil, cellErr(nk, "duplicate subkey name %q", unitsString(n.units()))
			}
		}
	}
	e.kids[nk] = l
	return l, nil
}

// kidName returns the stored name of the subkey at off. children checked
// every subkey's cell when it loaded the list, and new keys are written
// by newKey, so callers after that ignore the error.
func (e *Editor) kidName(off uint32) (storedName, error) {
	_, raw, comp, err := e.f.nkName(off)
	return storedName{raw, comp}, err
}

func (e *Editor) cmpKids(a, b uint32) int {
	x, _ := e.kidName(a)
	y, _ := e.kidName(b)
	return x.compareStored(y)
}

// findKid searches l for name: its index, or where it would be inserted.
func (e *Editor) findKid(l *kidList, name []uint16) (int, bool) {
	return slices.BinarySearchFunc(l.kids, name, func(off uint32, u []uint16) int {
		n, _ := e.kidName(off)
		return n.compare(u)
	})
}

// lookup returns the nk offset of the key at path, creating missing keys
// when create is set.
func (e *Editor) lookup(path string, create bool) (uint32, error) {
	if e.last == path && e.last != "" {
		return e.lastNK, nil
	}
	off := e.f.Header.Root
	var now uint64
	for _, p := range splitPath(path) {
		u := toUnits(p)
		l, err := e.children(off)
		if err != nil {
			return 0, err
		}
		i, ok := e.findKid(l, u)
		if ok {
			off = l.kids[i]
			continue
		}
		if !create {
			return 0, fmt.Errorf("key %q: %w", path, ErrNotFound)
		}
		if len(u) == 0 || len(u) > maxKeyNameChars {
			return 0, fmt.Errorf("%w: key name %q must have 1 to %d characters", ErrInvalid, p, maxKeyNameChars)
		}
		if now == 0 {
			now = toFiletime(e.now())
		}
		c, err := e.newKey(off, u, now)
		if err != nil {
			return 0, err
		}
		l.kids = slices.Insert(l.kids, i, c)
		l.dirty = true
		if err := e.keyChanged(off, now); err != nil {
			return 0, err
		}
		if err := e.raiseMax(off, nkMaxName, uint32(2*len(u)), 0xFFFF); err != nil {
			return 0, err
		}
		off = c
	}
	e.last, e.lastNK = path, off
	return off, nil
}

// raiseMax raises a maximum-length field of the key at nk to at least v;
// mask selects the bits holding the length (the upper 16 bits of
// MaxNameLen are flags on XP SP3 and later).
func (e *Editor) raiseMax(nk uint32, field int, v, mask uint32) error {
	b, err := e.f.cell(nk)
	if err != nil {
		return err
	}
	if old := le.Uint32(b[field:]); old&mask < v {
		return e.patch32(nk, field, old&^mask|v)
	}
	return nil
}

// keyChanged sets the last-written time of the key at nk.
func (e *Editor) keyChanged(nk uint32, now uint64) error {
	return e.patch64(nk, nkTimestamp, now)
}

// newKey allocates the nk cell of a new subkey of parent, sharing the
// parent's security descriptor as regedit and the kernel do.
func (e *Editor) newKey(parent uint32, name []uint16, now uint64) (uint32, error) {
	pb, err := e.f.cell(parent)
	if err != nil {
		return 0, err
	}
	sk := le.Uint32(pb[nkSecurity:])
	n, comp := storedSize(name)
	off, err := e.alloc(nkName + n)
	if err != nil {
		return 0, err
	}
	b, _ := e.cellw(off)
	clear(b)
	copy(b, "nk")
	if comp {
		le.PutUint16(b[nkFlags:], keyCompName)
	}
	le.PutUint64(b[nkTimestamp:], now)
	le.PutUint32(b[nkParent:], parent)
	for _, at := range []int{nkSubkeys, nkVolatile, nkValues, nkClass} {
		le.PutUint32(b[at:], nilOff)
	}
	le.PutUint32(b[nkSecurity:], sk)
	le.PutUint16(b[nkNameLen:], uint16(n))
	putStoredName(b[nkName:], name, comp)
	if err := e.refSK(sk, 1); err != nil {
		return 0, err
	}
	return off, nil
}

// refSK changes the reference count of the sk cell at off by delta and
// unlinks and frees it when no key uses it any more.
func (e *Editor) refSK(off uint32, delta int) error {
	b, err := e.f.sk(off)
	if err != nil {
		return err
	}
	refs := int64(le.Uint32(b[skRefs:])) + int64(delta)
	if refs > 0 {
		return e.patch32(off, skRefs, uint32(refs))
	}
	next, prev := le.Uint32(b[skFlink:]), le.Uint32(b[skBlink:])
	if next != off {
		if err := e.patch32(prev, skFlink, next); err != nil {
			return err
		}
		if err := e.patch32(next, skBlink, prev); err != nil {
			return err
		}
	}
	return e.freeCell(off)
}

// CreateKey creates the key at path and any missing parent; an existing
// key is left as it is. New keys share their parent's security
// descriptor, as regedit and the kernel do.
func (e *Editor) CreateKey(path string) error {
	_, err := e.lookup(path, true)
	return err
}

// HasKey reports whether the key at path exists.
func (e *Editor) HasKey(path string) bool {
	_, err := e.lookup(path, false)
	return err == nil
}

// DeleteKey deletes the key at path with all its subkeys and values,
// freeing every cell they used. The root cannot be deleted.
func (e *Editor) DeleteKey(path string) error {
	parts := splitPath(path)
	if len(parts) == 0 {
		return fmt.Errorf("%w: the root key cannot be deleted", ErrInvalid)
	}
	if _, err := e.lookup(path, false); err != nil {
		return err
	}
	parent, err := e.lookup(joinParts(parts[:len(parts)-1]), false)
	if err != nil {
		return err
	}
	l, err := e.children(parent)
	if err != nil {
		return err
	}
	i, ok := e.findKid(l, toUnits(parts[len(parts)-1]))
	if !ok {
		return fmt.Errorf("key %q: %w", path, ErrNotFound)
	}
	off := l.kids[i]
	l.kids = slices.Delete(l.kids, i, i+1)
	l.dirty = true
	e.last = ""
	if err := e.keyChanged(parent, toFiletime(e.now())); err != nil {
		return err
	}
	return e.freeTree(off, map[uint32]bool{})
}

func joinParts(p []string) string {
	s := ""
	for i, x := range p {
		if i > 0 {
			s += `\`
		}
		s += x
	}
	return s
}

// freeTree frees the key at nk, its subtree, values, lists, class name
// and its reference to its security cell.
func (e *Editor) freeTree(nk uint32, seen map[uint32]bool) error {
	if seen[nk] {
		return cellErr(nk, "key reached twice while deleting a subtree (cycle)")
	}
	seen[nk] = true
	l, err := e.children(nk)
	if err != nil {
		return err
	}
	for _, c := range l.kids {
		if err := e.freeTree(c, seen); err != nil {
			return err
		}
	}
	vl, err := e.values(nk)
	if err != nil {
		return err
	}
	for _, vo := range vl.offs {
		if err := e.freeValue(vo); err != nil {
			return err
		}
	}
	k, err := e.keyRecord(nk)
	if err != nil {
		return err
	}
	subList, valList, classOff, classLen, sk := k.subList, k.valList, k.classOff, k.classLen, k.sk
	if err := e.freeSubkeyList(subList); err != nil {
		return err
	}
	if err := e.freeIfAllocated(valList); err != nil {
		return err
	}
	if classLen > 0 {
		if err := e.freeIfAllocated(classOff); err != nil {
			return err
		}
	}
	if err := e.refSK(sk, -1); err != nil {
		return err
	}
	delete(e.kids, nk)
	delete(e.vals, nk)
	return e.freeCell(nk)
}

// freeIfAllocated frees the cell at off unless off is nil.
func (e *Editor) freeIfAllocated(off uint32) error {
	if off == nilOff {
		return nil
	}
	return e.freeCell(off)
}

// freeSubkeyList frees a subkey list as stored (an ri and its leaves, or
// one leaf).
func (e *Editor) freeSubkeyList(off uint32) error {
	if off == nilOff {
		return nil
	}
	b, err := e.f.cell(off)
	if err != nil {
		return err
	}
	if len(b) >= 4 && string(b[:2]) == "ri" {
		n := int(le.Uint16(b[2:]))
		if 4+4*n > len(b) {
			return cellErr(off, "ri list of %d entries exceeds its cell", n)
		}
		leaves := make([]uint32, n)
		for i := range leaves {
			leaves[i] = le.Uint32(b[4+4*i:])
		}
		for _, lo := range leaves {
			if err := e.freeCell(lo); err != nil {
				return err
			}
		}
	}
	return e.freeCell(off)
}

// SetClass sets the class name of the key at path ("" removes it).
func (e *Editor) SetClass(path, class string) error {
	cls := utf16le(toUnits(class))
	if len(cls) > 0xFFFF {
		return fmt.Errorf("%w: class name too long", ErrInvalid)
	}
	nk, err := e.lookup(path, false)
	if err != nil {
		return err
	}
	k, err := e.keyRecord(nk)
	if err != nil {
		return err
	}
	old, oldLen, parent := k.classOff, k.classLen, le.Uint32(k.rec[nkParent:])
	if oldLen > 0 || old != nilOff {
		if err := e.freeIfAllocated(old); err != nil {
			return err
		}
	}
	off := uint32(nilOff)
	if len(cls) > 0 {
		if off, err = e.alloc(len(cls)); err != nil {
			return err
		}
		b, _ := e.cellw(off)
		clear(b[copy(b, cls):])
	}
	if err := e.patch32(nk, nkClass, off); err != nil {
		return err
	}
	b, _ := e.cellw(nk)
	le.PutUint16(b[nkClassLen:], uint16(len(cls)))
	if nk != e.f.Header.Root {
		if err := e.raiseMax(parent, nkMaxClass, uint32(len(cls)), 0xFFFFFFFF); err != nil {
			return err
		}
	}
	return e.keyChanged(nk, toFiletime(e.now()))
}
