package ntfs

import (
	"bytes"
	"fmt"
	"unicode/utf16"
)

// unfixup checks and removes the multi-sector fixups of a FILE record or
// INDX block in place. what names the structure in errors (rec is its MFT
// record number, or -1 for an INDX block at volume offset off).
func unfixup(b []byte, magic string, rec int64, off int64) error {
	fail := func(at int, format string, a ...any) error {
		if rec >= 0 {
			return recErr(rec, at, format, a...)
		}
		return &FormatError{Record: -1, Off: off + int64(at), Msg: fmt.Sprintf(format, a...)}
	}
	if len(b) < blockSize || string(b[:4]) != magic {
		return fail(0, "no %s signature", magic)
	}
	uo, uc := int(u16(b, 4)), int(u16(b, 6))
	if uc != len(b)/blockSize+1 || uo < 0x28-0x20 || uo%2 != 0 || uo+2*uc > blockSize-2 {
		return fail(4, "update sequence array at 0x%x with %d entries does not fit a %d-byte structure", uo, uc, len(b))
	}
	usn := u16(b, uo)
	for i := 1; i < uc; i++ {
		end := i*blockSize - 2
		if u16(b, end) != usn {
			return fail(end, "multi-sector fixup mismatch (torn write)")
		}
		copy(b[end:end+2], b[uo+2*i:uo+2*i+2])
	}
	return nil
}

// fixup returns an encoded copy of the decoded structure b: the update
// sequence number is incremented (skipping 0 and 0xffff) and the last two
// bytes of each 512-byte block are saved in the array and replaced by it.
func fixup(b []byte) []byte {
	out := bytes.Clone(b)
	uo, uc := int(u16(out, 4)), int(u16(out, 6))
	usn := u16(out, uo) + 1
	if usn == 0 || usn == 0xFFFF {
		usn = 1
	}
	put16(out, uo, usn)
	put16(b, uo, usn) // keep the cached copy's counter in step
	for i := 1; i < uc; i++ {
		end := i*blockSize - 2
		copy(out[uo+2*i:uo+2*i+2], out[end:end+2])
		put16(out, end, usn)
	}
	return out
}

// attr is one attribute record inside a decoded MFT record.
type attr struct {
	off     int // offset of the attribute record in the MFT record
	typ     uint32
	length  int
	nonRes  bool
	name    []uint16
	flags   uint16
	id      uint16
	valOff  int // resident: absolute offset of the value in the record
	valLen  int
	lowVCN  int64
	highVCN int64
	runsOff int // non-resident: absolute offset of the mapping pairs
	alloc   int64
	size    int64
	init    int64
}

// record is a decoded MFT record.
type record struct {
	num uint64
	b   []byte
}

func (r *record) inUse() bool     { return u16(r.b, 0x16)&recInUse != 0 }
func (r *record) isDir() bool     { return u16(r.b, 0x16)&recDirectory != 0 }
func (r *record) seq() uint16     { return u16(r.b, 0x10) }
func (r *record) used() int       { return int(u32(r.b, 0x18)) }
func (r *record) ref() uint64     { return mftRef(r.num, r.seq()) }
func (r *record) baseRef() uint64 { return u64(r.b, 0x20) }

// checkRecord validates the header of a decoded MFT record.
func checkRecord(b []byte, num int64) error {
	if len(b) < 0x38 {
		return recErr(num, 0, "record too short")
	}
	ao, used, alloc := int(u16(b, 0x14)), int(u32(b, 0x18)), int(u32(b, 0x1C))
	if alloc != len(b) {
		return recErr(num, 0x1C, "allocated size %d is not the record size %d", alloc, len(b))
	}
	if used > alloc || used < ao+8 {
		return recErr(num, 0x18, "bytes in use %d outside [%d, %d]", used, ao+8, alloc)
	}
	if ao < int(u16(b, 4))+2*int(u16(b, 6)) || ao%8 != 0 {
		return recErr(num, 0x14, "attribute offset 0x%x overlaps the header or is unaligned", ao)
	}
	return nil
}

// attrs parses every attribute record of r, checking each offset and length
// against the record.
func (r *record) attrs() ([]attr, error) {
	b, n := r.b, int64(r.num)
	if err := checkRecord(b, n); err != nil {
		return nil, err
	}
	used := r.used()
	out := make([]attr, 0, 8) // a file's record holds a handful
	for off := int(u16(b, 0x14)); ; {
		if off+4 > used {
			return nil, recErr(n, off, "attribute list runs past bytes in use without an end marker")
		}
		typ := u32(b, off)
		if typ == atEnd {
			return out, nil
		}
		if off+0x18 > used {
			return nil, recErr(n, off, "attribute header past bytes in use")
		}
		a := attr{off: off, typ: typ, length: int(u32(b, off+4)), nonRes: b[off+8] != 0,
			flags: u16(b, off+0x0C), id: u16(b, off+0x0E)}
		if a.length < 0x18 || a.length%8 != 0 || off+a.length > used {
			return nil, recErr(n, off+4, "attribute 0x%x length %d is invalid", typ, a.length)
		}
		nl, no := int(b[off+9]), int(u16(b, off+0x0A))
		if nl > 0 {
			if no+2*nl > a.length {
				return nil, recErr(n, off+0x0A, "attribute 0x%x name runs past the attribute", typ)
			}
			a.name = make([]uint16, nl)
			for i := range a.name {
				a.name[i] = u16(b, off+no+2*i)
			}
		}
		if a.nonRes {
			if a.length < 0x40 {
				return nil, recErr(n, off+4, "non-resident attribute 0x%x is only %d bytes", typ, a.length)
			}
			a.lowVCN, a.highVCN = int64(u64(b, off+0x10)), int64(u64(b, off+0x18))
			ro := int(u16(b, off+0x20))
			if ro < 0x40 || ro >= a.length {
				return nil, recErr(n, off+0x20, "mapping pairs offset 0x%x outside attribute 0x%x", ro, typ)
			}
			a.runsOff = off + ro
			a.alloc, a.size, a.init = int64(u64(b, off+0x28)), int64(u64(b, off+0x30)), int64(u64(b, off+0x38))
			if a.alloc < 0 || a.size < 0 || a.init < 0 || a.size > a.alloc || a.init > a.size || a.lowVCN < 0 || a.highVCN < a.lowVCN-1 {
				return nil, recErr(n, off+0x28, "attribute 0x%x sizes (allocated %d, data %d, initialized %d, VCN %d..%d) are inconsistent", typ, a.alloc, a.size, a.init, a.lowVCN, a.highVCN)
			}
		} else {
			a.valLen, a.valOff = int(u32(b, off+0x10)), int(u16(b, off+0x14))
			if a.valOff+a.valLen > a.length || (a.valLen > 0 && a.valOff < 0x18) {
				return nil, recErr(n, off+0x10, "resident value of attribute 0x%x (%d bytes at 0x%x) runs past the attribute", typ, a.valLen, a.valOff)
			}
			a.valOff += off
		}
		out = append(out, a)
		off += a.length
	}
}

// value returns the resident value of a.
func (r *record) value(a *attr) []byte { return r.b[a.valOff : a.valOff+a.valLen] }

// find returns the first attribute of type typ with the given name.
func find(as []attr, typ uint32, name string) *attr {
	for i := range as {
		if as[i].typ == typ && sameName(as[i].name, name) {
			return &as[i]
		}
	}
	return nil
}

// sameName compares a UTF-16 attribute name with name without decoding
// it (attribute names are compared on every record lookup).
func sameName(u []uint16, name string) bool {
	i := 0
	for _, r := range name {
		if r >= 0x10000 {
			return string(utf16.Decode(u)) == name // a surrogate pair: the slow way
		}
		if i >= len(u) || rune(u[i]) != r {
			return false
		}
		i++
	}
	return i == len(u)
}

// resizeAttr changes the length of the attribute record at off to n bytes
// (a multiple of 8), moving the following attributes. It fails when the
// record would overflow.
func (r *record) resizeAttr(off, n int) bool {
	old := int(u32(r.b, off+4))
	used := r.used()
	if used-old+n > len(r.b) {
		return false
	}
	copy(r.b[off+n:], r.b[off+old:used])
	if n > old {
		clear(r.b[off+old : off+n])
	} else {
		clear(r.b[used-old+n : used])
	}
	put32(r.b, off+4, uint32(n))
	put32(r.b, 0x18, uint32(used-old+n))
	return true
}

// removeAttr deletes the attribute record at off.
func (r *record) removeAttr(off int) {
	old := int(u32(r.b, off+4))
	used := r.used()
	copy(r.b[off:], r.b[off+old:used])
	clear(r.b[used-old : used])
	put32(r.b, 0x18, uint32(used-old))
}

// insertAttr inserts the attribute record a (its length field set, id to
// be assigned) at the position its type and name sort to. It returns the
// offset, or -1 when the record has no room.
func (r *record) insertAttr(a []byte) int {
	as, err := r.attrs()
	if err != nil {
		return -1
	}
	used := r.used()
	if used+len(a) > len(r.b) {
		return -1
	}
	typ := u32(a, 0)
	pos := used - 8 // the end marker
	for _, x := range as {
		if x.typ > typ {
			pos = x.off
			break
		}
	}
	copy(r.b[pos+len(a):], r.b[pos:used])
	copy(r.b[pos:], a)
	id := u16(r.b, 0x28)
	put16(r.b, pos+0x0E, id)
	put16(r.b, 0x28, id+1)
	put32(r.b, 0x18, uint32(used+len(a)))
	return pos
}

// residentAttr builds a resident attribute record.
func residentAttr(typ uint32, name []uint16, value []byte, resFlags byte) []byte {
	vo := align8(0x18 + 2*len(name))
	b := make([]byte, align8(vo+len(value)))
	put32(b, 0, typ)
	put32(b, 4, uint32(len(b)))
	b[9] = byte(len(name))
	put16(b, 0x0A, 0x18)
	for i, c := range name {
		put16(b, 0x18+2*i, c)
	}
	put32(b, 0x10, uint32(len(value)))
	put16(b, 0x14, uint16(vo))
	b[0x16] = resFlags
	copy(b[vo:], value)
	return b
}

// nonResidentAttr builds a non-resident attribute record.
func nonResidentAttr(typ uint32, name []uint16, runs []byte, clusters int64, size, init int64, csize int64) []byte {
	ro := align8(0x40 + 2*len(name))
	b := make([]byte, align8(ro+len(runs)))
	put32(b, 0, typ)
	put32(b, 4, uint32(len(b)))
	b[8] = 1
	b[9] = byte(len(name))
	put16(b, 0x0A, 0x40)
	for i, c := range name {
		put16(b, 0x40+2*i, c)
	}
	put64(b, 0x10, 0)
	put64(b, 0x18, uint64(clusters-1))
	put16(b, 0x20, uint16(ro))
	put64(b, 0x28, uint64(clusters*csize))
	put64(b, 0x30, uint64(size))
	put64(b, 0x38, uint64(init))
	copy(b[ro:], runs)
	return b
}

// emptyRecord formats a decoded, unused MFT record of size n.
func emptyRecord(num uint64, seq uint16, n int) []byte {
	b := make([]byte, n)
	copy(b, "FILE")
	put16(b, 4, 0x30)
	put16(b, 6, uint16(n/blockSize+1))
	put16(b, 0x30, 1)
	put16(b, 0x10, seq)
	ao := align8(0x30 + 2*(n/blockSize+1))
	put16(b, 0x14, uint16(ao))
	put32(b, ao, atEnd)
	put32(b, 0x18, uint32(ao+8))
	put32(b, 0x1C, uint32(n))
	put32(b, 0x2C, uint32(num))
	return b
}
