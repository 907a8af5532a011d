package ntfs

// Attributes behind an $ATTRIBUTE_LIST. When a file's attributes outgrow
// its MFT record (the base record), Windows and ntfs-3g move some of them
// into extension records, whose header names the base record, and give the
// base record an $ATTRIBUTE_LIST (resident, or non-resident once it grows)
// with one entry per attribute record of the file, wherever it lives. A
// non-resident attribute may itself be split over several records, each
// piece mapping the VCNs from its lowest VCN on; the first piece (lowest
// VCN 0) carries the sizes. Layout of an entry (Russon's "NTFS
// Documentation", the ATTR_LIST_ENTRY of ntfs-3g's public layout.h):
//
//	0x00 type (4)   0x04 entry length (2)   0x06 name length (1)
//	0x07 name offset (1)   0x08 lowest VCN (8)   0x10 file reference (8)
//	0x18 attribute instance (2)   name in UTF-16 at the name offset
//
// This package reads such attributes (directory indexes, for listing and
// for image check); the writer refuses to change them.

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf16"
)

// listEntry is one entry of an $ATTRIBUTE_LIST.
type listEntry struct {
	num    int // position in the list, from 0
	off    int // byte offset in the list's value
	typ    uint32
	name   []uint16
	lowVCN int64
	ref    uint64 // the record holding the attribute record
	id     uint16 // the attribute record's instance in that record
}

// attrListError marks an error in a file's $ATTRIBUTE_LIST or in the
// extension records it names, so that image check can report it apart
// from index damage.
type attrListError struct{ fe *FormatError }

func (e *attrListError) Error() string { return e.fe.Error() }
func (e *attrListError) Unwrap() error { return e.fe }

// isAttrListError reports whether err is an attrListError.
func isAttrListError(err error) bool {
	var le *attrListError
	return errors.As(err, &le)
}

// attrList is the decoded $ATTRIBUTE_LIST of one base record.
type attrList struct {
	base    *record
	entries []listEntry
	// at is the error position of byte off of the list's value: in the
	// base record when resident, a volume offset when not.
	at func(off int) (rec int64, o int64)
}

func (l *attrList) errorf(off int, format string, a ...any) error {
	rec, o := l.at(off)
	return &attrListError{&FormatError{Record: rec, Off: o, Msg: fmt.Sprintf(format, a...)}}
}

// readAttrList decodes the $ATTRIBUTE_LIST la of base record r.
func (v *vol) readAttrList(r *record, la *attr) (*attrList, error) {
	l := &attrList{base: r}
	var b []byte
	if la.nonRes {
		val, runs, err := v.attrData(r, la)
		if err != nil {
			return nil, err
		}
		b = val
		l.at = func(off int) (int64, int64) {
			if o, err := v.locate(runs, int64(off), 1, int64(r.num)); err == nil {
				return -1, o
			}
			return int64(r.num), int64(la.off)
		}
	} else {
		b = r.value(la)
		l.at = func(off int) (int64, int64) { return int64(r.num), int64(la.valOff + off) }
	}
	for pos := 0; pos < len(b); {
		if pos+0x1A > len(b) {
			return nil, l.errorf(pos, "$ATTRIBUTE_LIST entry %d at byte %d runs past the list (%d bytes)", len(l.entries), pos, len(b))
		}
		ln, nl, no := int(u16(b, pos+4)), int(b[pos+6]), int(b[pos+7])
		if ln < 0x1A || ln%8 != 0 || pos+ln > len(b) {
			return nil, l.errorf(pos+4, "$ATTRIBUTE_LIST entry %d has length %d", len(l.entries), ln)
		}
		if nl > 0 && (no < 0x1A || no+2*nl > ln) {
			return nil, l.errorf(pos+6, "$ATTRIBUTE_LIST entry %d: name of %d characters at 0x%x runs past the entry", len(l.entries), nl, no)
		}
		e := listEntry{num: len(l.entries), off: pos, typ: u32(b, pos), lowVCN: int64(u64(b, pos+8)),
			ref: u64(b, pos+0x10), id: u16(b, pos+0x18)}
		if e.lowVCN < 0 {
			return nil, l.errorf(pos+8, "$ATTRIBUTE_LIST entry %d: negative lowest VCN", e.num)
		}
		for i := 0; i < nl; i++ {
			e.name = append(e.name, u16(b, pos+no+2*i))
		}
		l.entries = append(l.entries, e)
		pos += ln
	}
	return l, nil
}

// piece is one attribute record of a file and the MFT record holding it.
type piece struct {
	r *record
	a attr
}

// xattr is one attribute of a file, assembled from its attribute records:
// one when the attribute is resident, else its pieces by lowest VCN.
type xattr struct {
	pieces []piece
}

// head returns the first piece, which holds a resident value or a
// non-resident attribute's sizes.
func (x *xattr) head() (*record, *attr) { return x.pieces[0].r, &x.pieces[0].a }

// attrLabel names an attribute type (and name) for messages.
func attrLabel(typ uint32, name string) string {
	s := map[uint32]string{
		atStandardInformation: "$STANDARD_INFORMATION", atFileName: "$FILE_NAME",
		atSecurityDescriptor: "$SECURITY_DESCRIPTOR", atData: "$DATA", atIndexRoot: "$INDEX_ROOT",
		atIndexAllocation: "$INDEX_ALLOCATION", atBitmap: "$BITMAP", atReparsePoint: "$REPARSE_POINT",
	}[typ]
	if s == "" {
		s = fmt.Sprintf("attribute 0x%x", typ)
	}
	if name != "" {
		s += " " + name
	}
	return s
}

// fileAttr finds attribute typ named name of the file whose base record
// is base (as its decoded attributes): in base itself, or, when base has
// an $ATTRIBUTE_LIST, wherever the list says. It returns nil when the file
// has no such attribute. Every record the list names for it must be in
// use, be an extension of base (or base itself) with the sequence number
// the entry names, and hold the attribute record the entry describes;
// otherwise the error is an attrListError naming the entry.
func (t *tx) fileAttr(base *record, as []attr, typ uint32, name string) (*xattr, error) {
	la := find(as, atAttributeList, "")
	if la == nil {
		a := find(as, typ, name)
		if a == nil {
			return nil, nil
		}
		return &xattr{pieces: []piece{{base, *a}}}, nil
	}
	l, err := t.v.readAttrList(base, la)
	if err != nil {
		return nil, err
	}
	return t.listedAttr(l, typ, name)
}

// listedAttr assembles attribute typ named name from the records list l
// names for it.
func (t *tx) listedAttr(l *attrList, typ uint32, name string) (*xattr, error) {
	base := l.base
	label := attrLabel(typ, name)
	var x xattr
	var ents []listEntry
	for _, e := range l.entries {
		if e.typ != typ || !sameName(e.name, name) {
			continue
		}
		what := fmt.Sprintf("$ATTRIBUTE_LIST entry %d (%s, lowest VCN %d)", e.num, label, e.lowVCN)
		n, seq := refRecord(e.ref), uint16(e.ref>>48)
		r := base
		if n != base.num {
			if int64(n) >= t.v.mftRecs {
				return nil, l.errorf(e.off+0x10, "%s points at record %d, beyond $MFT's %d records", what, n, t.v.mftRecs)
			}
			var err error
			if r, err = t.peek(n); err != nil {
				return nil, l.errorf(e.off+0x10, "%s points at record %d, which is unreadable: %v", what, n, err)
			}
			br := r.baseRef()
			switch {
			case !r.inUse():
				return nil, l.errorf(e.off+0x10, "%s points at record %d, which is not in use", what, n)
			case refRecord(br) == 0:
				return nil, l.errorf(e.off+0x10, "%s points at record %d, which is a base record, not an extension of record %d", what, n, base.num)
			case refRecord(br) != base.num:
				return nil, l.errorf(e.off+0x10, "%s points at record %d, an extension of record %d, not of record %d", what, n, refRecord(br), base.num)
			case uint16(br>>48) != 0 && uint16(br>>48) != base.seq():
				return nil, l.errorf(e.off+0x10, "%s points at record %d, whose base reference names sequence %d of record %d (the record has sequence %d)", what, n, uint16(br>>48), base.num, base.seq())
			}
		}
		if seq != 0 && seq != r.seq() {
			return nil, l.errorf(e.off+0x10, "%s names record %d with sequence %d, the record has sequence %d (stale entry)", what, n, seq, r.seq())
		}
		ras, err := r.attrs()
		if err != nil {
			return nil, err
		}
		var a *attr
		for i := range ras {
			if ras[i].typ == typ && ras[i].id == e.id && sameName(ras[i].name, name) {
				a = &ras[i]
				break
			}
		}
		switch {
		case a == nil:
			return nil, l.errorf(e.off, "%s: record %d holds no such attribute with instance %d", what, n, e.id)
		case a.nonRes && a.lowVCN != e.lowVCN || !a.nonRes && e.lowVCN != 0:
			return nil, l.errorf(e.off+8, "%s: the attribute in record %d starts at VCN %d", what, n, a.lowVCN)
		}
		x.pieces = append(x.pieces, piece{r, *a})
		ents = append(ents, e)
	}
	if len(x.pieces) == 0 {
		return nil, nil
	}
	idx := make([]int, len(ents))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return x.pieces[idx[i]].a.lowVCN < x.pieces[idx[j]].a.lowVCN })
	sorted := make([]piece, len(idx))
	for i, k := range idx {
		sorted[i] = x.pieces[k]
	}
	for i, p := range sorted {
		e := ents[idx[i]]
		what := fmt.Sprintf("$ATTRIBUTE_LIST entry %d (%s, lowest VCN %d)", e.num, label, e.lowVCN)
		switch {
		case !p.a.nonRes && len(sorted) > 1:
			return nil, l.errorf(e.off, "%s: a resident attribute listed %d times", what, len(sorted))
		case i == 0 && p.a.lowVCN != 0:
			return nil, l.errorf(e.off+8, "%s: no piece of the attribute starts at VCN 0", what)
		case i > 0 && p.a.lowVCN != sorted[i-1].a.highVCN+1:
			return nil, l.errorf(e.off+8, "%s: the piece before it ends at VCN %d", what, sorted[i-1].a.highVCN)
		}
	}
	x.pieces = sorted
	return &x, nil
}

// xruns decodes the runlist of a non-resident attribute from all its
// pieces. A single piece gets exactly the checks of runs.
func (v *vol) xruns(x *xattr) ([]run, error) {
	if len(x.pieces) == 1 {
		return v.runs(x.pieces[0].r, &x.pieces[0].a)
	}
	var out []run
	for _, p := range x.pieces {
		a := &p.a
		rs, err := decodeRuns(p.r.b[a.runsOff:a.off+a.length], a.lowVCN, v.clusters, int64(p.r.num), a.runsOff)
		if err != nil {
			return nil, err
		}
		if got := runClusters(rs); got != a.highVCN-a.lowVCN+1 {
			return nil, recErr(int64(p.r.num), a.off+0x18, "attribute 0x%x: runlist of %d clusters for VCN %d..%d", a.typ, got, a.lowVCN, a.highVCN)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// xdata reads the whole value of attribute x, as attrData does for an
// attribute in one record.
func (v *vol) xdata(x *xattr) ([]byte, []run, error) {
	r, a := x.head()
	if len(x.pieces) == 1 {
		return v.attrData(r, a)
	}
	runs, err := v.xruns(x)
	if err != nil {
		return nil, nil, err
	}
	return v.runsData(r, a, runs)
}

// hasAttrList reports whether record r has an $ATTRIBUTE_LIST.
func hasAttrList(r *record) bool {
	as, err := r.attrs()
	return err == nil && find(as, atAttributeList, "") != nil
}

// fileLabel names the file of base record r for messages: its Win32 name
// when the record holds one, else its record number.
func fileLabel(r *record) string {
	as, err := r.attrs()
	if err == nil {
		for i := range as {
			if a := &as[i]; a.typ == atFileName && !a.nonRes && a.valLen >= 0x42 {
				if val := r.value(a); val[0x41] != nsDOS && 0x42+2*int(val[0x40]) <= len(val) {
					return fmt.Sprintf("%q (MFT record %d)", string(utf16.Decode(keyName(val))), r.num)
				}
			}
		}
	}
	return fmt.Sprintf("MFT record %d", r.num)
}
