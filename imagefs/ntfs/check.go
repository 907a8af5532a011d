package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf16"
)

// Severities of a Finding.
const (
	SeverityError   = "error"   // data is lost or the next write would damage it
	SeverityWarning = "warning" // space is wasted or a flag asks for chkdsk; nothing is lost
)

// Finding is one inconsistency Check found. Offset is a byte offset in the
// volume (0 is the boot sector); Path names the file or directory when the
// finding belongs to one whose name is known.
type Finding struct {
	Severity  string
	Structure string // "$MFTMirr", "$Volume", "$LogFile", "MFT record", "$MFT $BITMAP", "$Bitmap", "$I30 index", "$I30 $BITMAP", "$ATTRIBUTE_LIST"
	Offset    int64
	Path      string
	Message   string
}

// maxFindingsPerKind bounds the findings of one structure so that a badly
// damaged volume still gives a readable report.
const maxFindingsPerKind = 50

// ownedRun is a run of clusters an attribute of a record claims.
type ownedRun struct {
	lcn, n int64
	rec    uint64
	typ    uint32
}

// recInfo is what the scan keeps of each MFT record.
type recInfo struct {
	ok     bool // a FILE record with valid fixups and header
	inUse  bool
	dir    bool
	base   bool // not an extension record
	seq    uint16
	off    int64  // volume byte offset
	parent uint64 // from the preferred $FILE_NAME
	name   string
}

type ntfsChecker struct {
	v     *vol
	out   []Finding
	kinds map[string]int
	recs  []recInfo
	runs  []ownedRun
}

func (c *ntfsChecker) add(sev, structure string, off int64, path, format string, a ...any) {
	c.kinds[structure]++
	if c.kinds[structure] > maxFindingsPerKind {
		return
	}
	c.out = append(c.out, Finding{Severity: sev, Structure: structure, Offset: off, Path: path, Message: fmt.Sprintf(format, a...)})
}

// checkDev lets Check take a plain io.ReaderAt; it never writes.
type checkDev struct{ io.ReaderAt }

func (checkDev) WriteAt([]byte, int64) (int, error) { return 0, errors.New("ntfs: check is read-only") }

// Check reads the NTFS volume at byte off of r (devSize bytes in all) and
// reports its inconsistencies without changing anything, as chkdsk /scan
// would: $MFTMirr against the first records of $MFT, the $Volume dirty
// flag, an unclean $LogFile, records whose multi-sector fixups do not
// match (torn writes) or whose headers or attributes are malformed,
// $MFT's $BITMAP against the records' in-use flags, $Bitmap against the
// union of every attribute's runlist (clusters marked but owned by none
// are leaked, clusters owned but not marked will be handed out twice,
// clusters owned twice are cross-linked), and every directory's $I30
// index: entries in collation order, pointing at records in use with the
// sequence number the entry names, and naming the directory as parent;
// and its $BITMAP:$I30 against the INDX blocks the index reaches (a
// reached block whose bit is clear, a set bit for a block never reached,
// a missing or short bitmap, bits set past the allocation). A directory's
// $I30 attributes are read where its $ATTRIBUTE_LIST says; each list entry
// for them must name a record in use that is the directory's own or an
// extension of it and holds the attribute record described.
//
// The error is non-nil only when the volume cannot be checked at all (no
// NTFS boot sector, $MFT record 0 unreadable); damage is reported as
// findings.
func Check(r io.ReaderAt, off, devSize int64) ([]Finding, error) {
	v, err := loadVol(checkDev{r}, off, devSize)
	if err != nil {
		return nil, err
	}
	c := &ntfsChecker{v: v, kinds: map[string]int{}}
	c.checkMirror()
	c.checkVolume()
	if err := v.checkLogFile(); err != nil {
		c.add(SeverityWarning, "$LogFile", 0, "/$LogFile", "%s", trimRefused(err))
	}
	c.scan()
	c.checkRuns()
	c.checkIndexes()
	for k, n := range c.kinds {
		if n > maxFindingsPerKind {
			c.out = append(c.out, Finding{Severity: SeverityError, Structure: k, Message: fmt.Sprintf("%d more findings of this kind not listed", n-maxFindingsPerKind)})
		}
	}
	return c.out, nil
}

func trimRefused(err error) string {
	s := err.Error()
	if p := ErrRefused.Error() + ": "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// errOffset turns an error from the record and index code into a volume
// byte offset: FormatErrors name a record (offset inside it) or a volume
// byte.
func (c *ntfsChecker) errOffset(err error, fallback int64) int64 {
	var fe *FormatError
	if errors.As(err, &fe) {
		if fe.Record < 0 {
			return fe.Off
		}
		if fe.Record < int64(len(c.recs)) && c.recs[fe.Record].off > 0 {
			return c.recs[fe.Record].off + fe.Off
		}
	}
	return fallback
}

func (c *ntfsChecker) checkMirror() {
	v := c.v
	for i := 0; i < v.mirrN && int64(i) < v.mftRecs; i++ {
		a, m := make([]byte, v.recSize), make([]byte, v.recSize)
		off, err := v.locate(v.mftRuns, int64(i*v.recSize), int64(v.recSize), int64(i))
		if err != nil {
			c.add(SeverityError, "$MFTMirr", v.mftLCN*v.csize, "/$MFT", "record %d: %v", i, err)
			return
		}
		moff := v.mirrLCN*v.csize + int64(i*v.recSize)
		if v.readAt(a, off) != nil || v.readAt(m, moff) != nil {
			c.add(SeverityError, "$MFTMirr", moff, "/$MFTMirr", "record %d unreadable", i)
			return
		}
		if !bytes.Equal(a, m) {
			j := 0
			for a[j] == m[j] {
				j++
			}
			c.add(SeverityError, "$MFTMirr", moff+int64(j), "/$MFTMirr", "copy of MFT record %d differs from $MFT (at byte 0x%x of the record)", i, j)
		}
	}
}

func (c *ntfsChecker) checkVolume() {
	r, err := c.v.record(recVolume)
	if err != nil {
		c.add(SeverityError, "$Volume", c.errOffset(err, 0), "/$Volume", "%v", err)
		return
	}
	as, err := r.attrs()
	if err != nil {
		c.add(SeverityError, "$Volume", c.errOffset(err, 0), "/$Volume", "%v", err)
		return
	}
	vi := find(as, atVolumeInformation, "")
	if vi == nil || vi.nonRes || vi.valLen < 12 {
		c.add(SeverityError, "$Volume", 0, "/$Volume", "no $VOLUME_INFORMATION attribute")
		return
	}
	recOff, _ := c.v.locate(c.v.mftRuns, int64(recVolume*c.v.recSize), int64(c.v.recSize), recVolume)
	val := r.value(vi)
	if flags := u16(val, 10); flags&volDirty != 0 {
		c.add(SeverityWarning, "$Volume", recOff+int64(vi.valOff)+10, "/$Volume", "the volume is marked dirty (flags 0x%04x): Windows will run chkdsk at the next boot", flags)
	}
	if val[8] != 3 || val[9] > 1 {
		c.add(SeverityWarning, "$Volume", recOff+int64(vi.valOff)+8, "/$Volume", "NTFS version %d.%d, not 3.0 or 3.1", val[8], val[9])
	}
}

// scan reads every MFT record once: fixups, header, attributes, $BITMAP
// bit against the in-use flag, the runs each attribute claims and the
// names that make paths.
func (c *ntfsChecker) scan() {
	v := c.v
	rs := int64(v.recSize)
	c.recs = make([]recInfo, v.mftRecs)
	for i := int64(0); i < v.mftRecs; {
		cnt := min(256, v.mftRecs-i)
		for cnt > 1 {
			if _, err := v.locate(v.mftRuns, i*rs, cnt*rs, i); err == nil {
				break
			}
			cnt /= 2
		}
		off, err := v.locate(v.mftRuns, i*rs, cnt*rs, i)
		if err != nil {
			c.add(SeverityError, "MFT record", v.mftLCN*v.csize, "/$MFT", "record %d: %v", i, err)
			i++
			continue
		}
		buf := make([]byte, cnt*rs)
		if err := v.readAt(buf, off); err != nil {
			c.add(SeverityError, "MFT record", off, "/$MFT", "records %d..%d unreadable: %v", i, i+cnt-1, err)
			i += cnt
			continue
		}
		for k := int64(0); k < cnt; k++ {
			c.scanRecord(uint64(i+k), buf[k*rs:(k+1)*rs:(k+1)*rs], off+k*rs)
		}
		i += cnt
	}
	// The bitmap's bits past the last record must be clear: $MFT grows
	// into them only after extending $DATA.
	for n := v.mftRecs; n < int64(len(v.mftBitmap))*8; n++ {
		if bit(v.mftBitmap, n) {
			c.add(SeverityError, "$MFT $BITMAP", 0, "/$MFT", "record %d is marked in use but lies beyond $MFT's %d records", n, v.mftRecs)
		}
	}
}

func (c *ntfsChecker) scanRecord(n uint64, b []byte, off int64) {
	ri := &c.recs[n]
	ri.off = off
	marked := int64(n) < int64(len(c.v.mftBitmap))*8 && bit(c.v.mftBitmap, int64(n))
	if string(b[:4]) != "FILE" {
		if marked {
			c.add(SeverityError, "$MFT $BITMAP", off, "", "record %d is marked in use but holds no FILE record", n)
		}
		return
	}
	if err := unfixup(b, "FILE", int64(n), off); err != nil {
		sev := SeverityWarning
		if marked {
			sev = SeverityError
		}
		c.add(sev, "MFT record", c.errOffset(err, off), "", "record %d: multi-sector fixups do not match (torn write)", n)
		return
	}
	if err := checkRecord(b, int64(n)); err != nil {
		if marked {
			c.add(SeverityError, "MFT record", c.errOffset(err, off), "", "%v", err)
		}
		return
	}
	r := &record{num: n, b: b}
	ri.ok, ri.inUse, ri.dir, ri.seq, ri.base = true, r.inUse(), r.isDir(), r.seq(), refRecord(r.baseRef()) == 0
	if ri.inUse != marked {
		if ri.inUse {
			c.add(SeverityError, "$MFT $BITMAP", off+0x16, "", "record %d is in use but its $MFT $BITMAP bit is clear (the record could be handed out again)", n)
		} else {
			c.add(SeverityWarning, "$MFT $BITMAP", off+0x16, "", "record %d is not in use but its $MFT $BITMAP bit is set", n)
		}
	}
	if !ri.inUse {
		return
	}
	as, err := r.attrs()
	if err != nil {
		c.add(SeverityError, "MFT record", c.errOffset(err, off), "", "%v", err)
		return
	}
	best := -1
	for _, a := range as {
		if a.typ == atFileName && !a.nonRes && a.valLen >= 0x42 {
			val := r.value(&a)
			nl := int(val[0x40])
			if 0x42+2*nl > len(val) {
				c.add(SeverityError, "MFT record", off+int64(a.valOff), "", "record %d: $FILE_NAME of %d characters runs past the value", n, nl)
				continue
			}
			ns := int(val[0x41])
			// Prefer the Win32 name over the DOS 8.3 alias.
			if best < 0 || (best == nsDOS && ns != nsDOS) {
				best = ns
				u := make([]uint16, nl)
				for j := range u {
					u[j] = u16(val, 0x42+2*j)
				}
				ri.name = string(utf16.Decode(u))
				ri.parent = refRecord(u64(val, 0))
			}
		}
		if !a.nonRes {
			continue
		}
		runs, err := decodeRuns(b[a.runsOff:a.off+a.length], a.lowVCN, c.v.clusters, int64(n), a.runsOff)
		if err != nil {
			c.add(SeverityError, "MFT record", c.errOffset(err, off), "", "%v", err)
			continue
		}
		if got := runClusters(runs); a.highVCN >= a.lowVCN && got != a.highVCN-a.lowVCN+1 {
			c.add(SeverityError, "MFT record", off+int64(a.off)+0x18, "", "record %d attribute 0x%x: runlist of %d clusters for VCN %d..%d", n, a.typ, got, a.lowVCN, a.highVCN)
		}
		for _, rn := range runs {
			if rn.lcn >= 0 {
				c.runs = append(c.runs, ownedRun{lcn: rn.lcn, n: rn.n, rec: n, typ: a.typ})
			}
		}
	}
}

// path names record n from the $FILE_NAME parents, or "" when unknown.
func (c *ntfsChecker) path(n uint64) string {
	var parts []string
	for depth := 0; n != recRoot; depth++ {
		if depth > 64 || n >= uint64(len(c.recs)) || c.recs[n].name == "" {
			return ""
		}
		parts = append(parts, c.recs[n].name)
		n = c.recs[n].parent
	}
	var b bytes.Buffer
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// bitmapOff is the volume byte offset of the $Bitmap byte holding cluster
// lcn's bit, or 0 when the runlist does not map it.
func (c *ntfsChecker) bitmapOff(lcn int64) int64 {
	o, err := c.v.locate(c.v.bmRuns, lcn/8, 1, recBitmap)
	if err != nil {
		return 0
	}
	return o
}

// checkRuns finds clusters claimed twice and compares the union of all
// runs with $Bitmap.
func (c *ntfsChecker) checkRuns() {
	v := c.v
	// By cluster, then record: the same damage gives the same findings.
	sort.Slice(c.runs, func(i, j int) bool {
		a, b := c.runs[i], c.runs[j]
		return a.lcn < b.lcn || a.lcn == b.lcn && a.rec < b.rec
	})
	used := make([]byte, (v.clusters+7)/8)
	var prev *ownedRun
	for i := range c.runs {
		r := &c.runs[i]
		if prev != nil && r.lcn < prev.lcn+prev.n {
			ov := min(prev.lcn+prev.n, r.lcn+r.n) - r.lcn
			c.add(SeverityError, "$Bitmap", r.lcn*v.csize, c.path(r.rec),
				"clusters %d..%d are allocated twice: to record %d (%s, attribute 0x%x) and record %d (%s, attribute 0x%x)",
				r.lcn, r.lcn+ov-1, prev.rec, orUnknown(c.path(prev.rec)), prev.typ, r.rec, orUnknown(c.path(r.rec)), r.typ)
		}
		if prev == nil || r.lcn+r.n > prev.lcn+prev.n {
			prev = r
		}
		for k := r.lcn; k < r.lcn+r.n; k++ {
			used[k>>3] |= 1 << (k & 7)
		}
	}
	// Compare byte-wise first; most bytes agree.
	report := func(from, to int64, leaked bool) {
		if leaked {
			c.add(SeverityWarning, "$Bitmap", c.bitmapOff(from), "", "clusters %d..%d are marked in use but belong to no file (leaked, %d bytes)", from, to-1, (to-from)*v.csize)
		} else {
			c.add(SeverityError, "$Bitmap", c.bitmapOff(from), "", "clusters %d..%d belong to a file but are marked free (would be allocated twice)", from, to-1)
		}
	}
	start, state := int64(-1), 0 // state 1 leaked, 2 unmarked
	for k := int64(0); k < v.clusters; k++ {
		if k&7 == 0 && k+8 <= v.clusters && v.bitmap[k>>3] == used[k>>3] && state == 0 {
			k += 7
			continue
		}
		s := 0
		if b, u := bit(v.bitmap, k), bit(used, k); b && !u {
			s = 1
		} else if !b && u {
			s = 2
		}
		if s != state {
			if state != 0 {
				report(start, k, state == 1)
			}
			start, state = k, s
		}
	}
	if state != 0 {
		report(start, v.clusters, state == 1)
	}
}

func orUnknown(p string) string {
	if p == "" {
		return "unnamed"
	}
	return p
}

// checkIndexes walks the $I30 index of every directory in use.
func (c *ntfsChecker) checkIndexes() {
	for n := range c.recs {
		ri := &c.recs[n]
		if !ri.ok || !ri.inUse || !ri.dir || !ri.base {
			continue
		}
		c.checkIndex(uint64(n))
	}
}

// indexErr reports an error met reading directory n's index: under
// "$ATTRIBUTE_LIST" when its attribute list or an extension record it
// names is at fault, else under "$I30 index".
func (c *ntfsChecker) indexErr(n uint64, p string, err error) {
	structure := "$I30 index"
	if isAttrListError(err) {
		structure = "$ATTRIBUTE_LIST"
	}
	c.add(SeverityError, structure, c.errOffset(err, c.recs[n].off), p, "%v", err)
}

// checkListedI30 resolves the $I30 attributes of directory n through its
// $ATTRIBUTE_LIST, if it has one, and reports each that cannot be
// resolved (an entry naming a free record, one of another file, a
// missing attribute record, pieces that do not join). It returns false
// when any failed: the index is then not walked, since every read of it
// would repeat the finding.
func (c *ntfsChecker) checkListedI30(t *tx, n uint64, p string) bool {
	r, err := c.v.record(n)
	if err != nil {
		return true // openIndex reports it
	}
	as, err := r.attrs()
	if err != nil {
		return true
	}
	la := find(as, atAttributeList, "")
	if la == nil {
		return true
	}
	l, err := c.v.readAttrList(r, la)
	if err != nil {
		if !isAttrListError(err) {
			// The list's own value is unreadable (its runlist).
			err = &attrListError{&FormatError{Record: int64(n), Off: int64(la.off), Msg: fmt.Sprintf("$ATTRIBUTE_LIST unreadable: %v", err)}}
		}
		c.indexErr(n, p, err)
		return false
	}
	ok := true
	for _, typ := range []uint32{atIndexRoot, atIndexAllocation, atBitmap} {
		if _, err := t.listedAttr(l, typ, "$I30"); err != nil {
			c.indexErr(n, p, err)
			ok = false
		}
	}
	return ok
}

func (c *ntfsChecker) checkIndex(n uint64) {
	t := &tx{v: c.v}
	p := c.path(n)
	if !c.checkListedI30(t, n, p) {
		return
	}
	d, err := t.openIndex(n)
	if err != nil {
		c.indexErr(n, p, err)
		return
	}
	var prev []uint16
	seen := map[int64]bool{}
	var walk func(vcn int64, depth int) bool
	walk = func(vcn int64, depth int) bool {
		if depth > maxIndexDepth || seen[vcn] {
			c.add(SeverityError, "$I30 index", c.recs[n].off, p, "index loops or is deeper than %d levels at VCN %d", maxIndexDepth, vcn)
			return false
		}
		seen[vcn] = true
		node, err := d.node(vcn)
		if err != nil {
			c.indexErr(n, p, err)
			return false
		}
		where := c.recs[n].off
		if node.off > 0 {
			where = node.off
		}
		for i := range node.entries {
			e := &node.entries[i]
			if e.child >= 0 && !walk(e.child, depth+1) {
				return false
			}
			if e.key == nil {
				continue
			}
			name := keyName(e.key)
			sname := string(utf16.Decode(name))
			if prev != nil && c.v.cmpFull(prev, name) >= 0 {
				c.add(SeverityError, "$I30 index", where, p, "entry %q is out of collation order after %q", sname, string(utf16.Decode(prev)))
			}
			prev = name
			c.checkEntry(n, p, where, sname, e)
		}
		return true
	}
	complete := walk(-1, 0)
	c.checkI30Bitmap(n, p, d, seen, complete)
}

func (c *ntfsChecker) checkEntry(dir uint64, p string, where int64, name string, e *ientry) {
	child := p + "/" + name
	if p == "/" {
		child = "/" + name
	}
	target := refRecord(e.ref)
	seq := uint16(e.ref >> 48)
	switch {
	case target >= uint64(len(c.recs)):
		c.add(SeverityError, "$I30 index", where, child, "entry points at record %d, beyond $MFT's %d records", target, len(c.recs))
	case !c.recs[target].ok || !c.recs[target].inUse:
		c.add(SeverityError, "$I30 index", where, child, "entry points at record %d, which is not in use", target)
	case seq != 0 && c.recs[target].seq != seq:
		c.add(SeverityError, "$I30 index", where, child, "entry names record %d with sequence %d, the record has sequence %d (stale entry)", target, seq, c.recs[target].seq)
	}
	if parent := refRecord(u64(e.key, 0)); parent != dir {
		c.add(SeverityError, "$I30 index", where, child, "entry's $FILE_NAME names parent record %d, not the directory (record %d)", parent, dir)
	}
}
