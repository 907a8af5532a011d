package hive

// Values: their lists as the editor holds them, setting, storing (inline,
// in a cell or in big-data segments) and deleting them.

import (
	"fmt"
	"slices"
)

// values returns the value cells of the key at nk.
func (e *Editor) values(nk uint32) (*valList, error) {
	if l := e.vals[nk]; l != nil {
		return l, nil
	}
	k, err := e.keyRecord(nk)
	if err != nil {
		return nil, err
	}
	offs, err := e.f.valueOffsets(&k)
	if err != nil {
		return nil, err
	}
	l := &valList{offs: offs}
	e.vals[nk] = l
	return l, nil
}

// valuesAt returns the key at path and its value list.
func (e *Editor) valuesAt(path string) (uint32, *valList, error) {
	nk, err := e.lookup(path, false)
	if err != nil {
		return 0, nil, err
	}
	l, err := e.values(nk)
	return nk, l, err
}

// findValue returns the index in l of the value named u, or -1.
func (e *Editor) findValue(l *valList, u []uint16) (int, error) {
	for i, vo := range l.offs {
		b, err := e.f.cell(vo)
		if err != nil {
			return 0, err
		}
		if len(b) < vkName || string(b[:2]) != "vk" {
			return 0, cellErr(vo, "not a value (vk) cell")
		}
		nl := int(le.Uint16(b[vkNameLen:]))
		if vkName+nl > len(b) {
			return 0, cellErr(vo, "value name length %d exceeds the vk cell", nl)
		}
		comp := le.Uint16(b[vkFlags:])&valCompName != 0
		if compareRawUnits(b[vkName:vkName+nl], comp, u) == 0 {
			return i, nil
		}
	}
	return -1, nil
}

// SetValue sets (creates or replaces) the value name ("" is the default
// value) of the key at path to data of type t. Data is stored as given:
// use the Encode helpers for strings and numbers. A replaced value keeps
// its place in the key's value list.
func (e *Editor) SetValue(path, name string, t ValueType, data []byte) error {
	e.units = appendUnits(e.units[:0], name)
	u := e.units
	if len(u) > maxValueNameChars {
		return fmt.Errorf("%w: value name of %d characters (max %d)", ErrInvalid, len(u), maxValueNameChars)
	}
	if err := e.checkSize(len(data)); err != nil {
		return fmt.Errorf("value %q: %w", name, err)
	}
	nk, l, err := e.valuesAt(path)
	if err != nil {
		return err
	}
	i, err := e.findValue(l, u)
	if err != nil {
		return err
	}
	var vo uint32
	if i >= 0 {
		vo = l.offs[i]
		if err := e.freeData(vo); err != nil {
			return err
		}
	} else {
		n, comp := storedSize(u)
		if vo, err = e.alloc(vkName + n); err != nil {
			return err
		}
		b, _ := e.cellw(vo)
		clear(b)
		copy(b, "vk")
		le.PutUint16(b[vkNameLen:], uint16(n))
		if comp && n > 0 {
			le.PutUint16(b[vkFlags:], valCompName)
		}
		le.PutUint32(b[vkDataLen:], dataInline)
		putStoredName(b[vkName:], u, comp)
		l.offs = append(l.offs, vo)
		l.dirty = true
	}
	if err := e.storeData(vo, t, data); err != nil {
		return err
	}
	if err := e.raiseMax(nk, nkMaxValueName, uint32(2*len(u)), 0xFFFFFFFF); err != nil {
		return err
	}
	if err := e.raiseMax(nk, nkMaxValueData, uint32(len(data)), 0xFFFFFFFF); err != nil {
		return err
	}
	return e.keyChanged(nk, toFiletime(e.now()))
}

// checkSize rejects data the hive version cannot hold.
func (e *Editor) checkSize(n int) error {
	if e.f.Minor >= 4 {
		if n > 0xFFFF*bigDataSegment {
			return fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
		}
		return nil
	}
	if n+4 > maxCellSize {
		return fmt.Errorf("%w: %d bytes in a 1.%d hive (one cell of at most 1 MiB)", ErrTooLarge, n, e.f.Minor)
	}
	return nil
}

// freeData frees the data cells of the vk at vo (a data cell, or a db
// record with its segment list and segments) and marks the value empty.
func (e *Editor) freeData(vo uint32) error {
	rv, err := e.f.vk(vo)
	if err != nil {
		return err
	}
	n := rv.dataLen &^ dataInline
	switch {
	case rv.dataLen&dataInline != 0 || n == 0:
	case e.f.Minor >= 4 && n > bigDataSegment:
		segs, err := e.f.bigSegments(rv.dataOff, n)
		if err != nil {
			return err
		}
		db, _ := e.f.cell(rv.dataOff)
		list := le.Uint32(db[4:])
		for _, s := range segs {
			if err := e.freeCell(s); err != nil {
				return err
			}
		}
		if err := e.freeCell(list); err != nil {
			return err
		}
		if err := e.freeCell(rv.dataOff); err != nil {
			return err
		}
	default:
		if err := e.freeCell(rv.dataOff); err != nil {
			return err
		}
	}
	if err := e.patch32(vo, vkDataLen, dataInline); err != nil {
		return err
	}
	return e.patch32(vo, vkData, 0)
}

// freeValue frees a vk cell and its data.
func (e *Editor) freeValue(vo uint32) error {
	if err := e.freeData(vo); err != nil {
		return err
	}
	return e.freeCell(vo)
}

// storeData stores data of type t for the (empty) vk at vo: inline up to
// 4 bytes, in one cell, or as db big data in 1.4+ hives above 16,344
// bytes, as Windows does.
func (e *Editor) storeData(vo uint32, t ValueType, data []byte) error {
	n := len(data)
	var dataLen, dataOff uint32
	switch {
	case n <= 4:
		var b [4]byte
		copy(b[:], data)
		dataLen, dataOff = uint32(n)|dataInline, le.Uint32(b[:])
	case e.f.Minor >= 4 && n > bigDataSegment:
		count := (n + bigDataSegment - 1) / bigDataSegment
		segs := make([]uint32, count)
		for i := range segs {
			// Every segment cell has room for a full segment, the last
			// one too, as Windows writes them (hivex reads only whole
			// segments).
			s, err := e.alloc(bigDataSegment)
			if err != nil {
				return err
			}
			b, _ := e.cellw(s)
			clear(b[copy(b, data[i*bigDataSegment:min(n, (i+1)*bigDataSegment)]):])
			segs[i] = s
		}
		list, err := e.alloc(4 * count)
		if err != nil {
			return err
		}
		b, _ := e.cellw(list)
		clear(b)
		for i, s := range segs {
			le.PutUint32(b[4*i:], s)
		}
		db, err := e.alloc(12) // Windows' db cells have 4 spare bytes
		if err != nil {
			return err
		}
		b, _ = e.cellw(db)
		clear(b)
		copy(b, "db")
		le.PutUint16(b[2:], uint16(count))
		le.PutUint32(b[4:], list)
		dataLen, dataOff = uint32(n), db
	default:
		d, err := e.alloc(n)
		if err != nil {
			return err
		}
		b, _ := e.cellw(d)
		clear(b[copy(b, data):])
		dataLen, dataOff = uint32(n), d
	}
	b, err := e.cellw(vo)
	if err != nil {
		return err
	}
	le.PutUint32(b[vkDataLen:], dataLen)
	le.PutUint32(b[vkData:], dataOff)
	le.PutUint32(b[vkType:], uint32(t))
	return nil
}

// DeleteValue deletes the value name of the key at path.
func (e *Editor) DeleteValue(path, name string) error {
	nk, l, err := e.valuesAt(path)
	if err != nil {
		return err
	}
	i, err := e.findValue(l, toUnits(name))
	if err != nil {
		return err
	}
	if i < 0 {
		return fmt.Errorf("value %q of key %q: %w", name, path, ErrNotFound)
	}
	if err := e.freeValue(l.offs[i]); err != nil {
		return err
	}
	l.offs = slices.Delete(l.offs, i, i+1)
	l.dirty = true
	return e.keyChanged(nk, toFiletime(e.now()))
}

// value returns the value name of the key at path.
func (e *Editor) value(path, name string) (*Value, error) {
	_, l, err := e.valuesAt(path)
	if err != nil {
		return nil, err
	}
	i, err := e.findValue(l, toUnits(name))
	if err != nil {
		return nil, err
	}
	if i < 0 {
		return nil, fmt.Errorf("value %q: %w", name, ErrNotFound)
	}
	rv, err := e.f.vk(l.offs[i])
	if err != nil {
		return nil, err
	}
	d, err := e.f.valueData(l.offs[i], rv)
	if err != nil {
		return nil, err
	}
	return &Value{Name: unitsString(rv.name), Type: ValueType(rv.typ), Data: d}, nil
}
