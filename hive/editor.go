package hive

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// An Editor changes a hive the way Windows' configuration manager does:
// in place. The hive's bins stay where they are; a change writes the
// cells it touches, new cells come from free cells (best fit, split when
// larger, coalesced with free neighbours when freed) or from a bin
// appended at the end, and Save writes only the 4 KiB pages that changed
// plus the base block (see Save). Names, flags, timestamps, class names,
// security descriptors, value order and everything not edited are kept
// byte for byte; Compact lays a hive out anew instead.
//
// Subkey and value lists changed by an edit are rewritten when the hive
// is written (Save, Bytes, File), so that many edits of one key rewrite
// its lists once. After an error from a method that changes the hive the
// Editor may hold a partial change: discard it rather than save it.
//
// An Editor is not safe for concurrent use.
type Editor struct {
	// Now is the clock for key and base block timestamps; nil means
	// time.Now.
	Now func() time.Time

	f      *File               // the image; f.data is edited in place and grows at the end
	seq    uint32              // sequence number of the hive as last written
	dsec   []uint64            // one bit per 512-byte sector of f.data changed since the last write
	nsec   int                 // sectors changed since the last save
	all    bool                // the whole file must be written (nothing on disk to update)
	src    *source             // the file the hive was read from, for saving in place
	free   freeCells           // every free cell of the bins scanned so far
	hot    freeCells           // free cells in pages changed since the last save
	ndirty int                 // pages changed since the last save
	kids   map[uint32]*kidList // decoded subkey lists, by nk offset
	vals   map[uint32]*valList // value lists, by nk offset
	last   string              // path of the last key looked up …
	lastNK uint32              // … and its nk offset

	mapped *mapping // the file mapping f.data lives in, if any

	crashAt int // tests: stop an in-place save after this step (1 to 4; 0 = never)
}

// source identifies the file an Editor was loaded from: Save updates it
// in place only if it is still that file with that base block.
type source struct {
	path string
	info os.FileInfo
	base []byte
}

type kid struct {
	off  uint32
	name []uint16
}

// kidList is a key's subkeys in list order (sorted by compareNames).
type kidList struct {
	kids  []kid
	dirty bool // the on-disk list no longer matches kids
}

// valList is a key's value cells in list order.
type valList struct {
	offs  []uint32
	dirty bool
}

// New returns an Editor for a new, empty hive of version 1.minor (3 or 5
// for Windows XP; 1 to 5 are accepted). Its root key is named
// "$$$PROTO.HIV" like the hives Windows creates, and owns a default
// security descriptor (SYSTEM and Administrators full control, Everyone
// read, inherited by subkeys).
func New(minor uint32) (*Editor, error) {
	t, err := newTree(minor)
	if err != nil {
		return nil, err
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	f, err := fileFromBytes(b[:baseBlockSize], b[baseBlockSize:])
	if err != nil {
		return nil, err
	}
	// The template's sequence number is one above zero; start from zero
	// again so that the first save writes 1, like Windows.
	e := newEditor(f)
	e.seq, e.all = 0, true
	return e, nil
}

// Edit opens the hive at path for editing. A dirty hive (sequence numbers
// differ: a write was interrupted) is replayed from path+".LOG" when that
// old-format log belongs to the interrupted write, as Windows does at
// boot and as Save writes it; otherwise it is refused with an error
// matching ErrDirty (replay another log with RecoverOldLog).
func Edit(path string) (*Editor, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("hive: %s is not a regular file", path)
	}
	size := st.Size()
	if size < baseBlockSize {
		return nil, fmt.Errorf("%s: %w", path, fileErr(0, "file of %d bytes is shorter than the base block", size))
	}
	if size > 1<<32+baseBlockSize {
		return nil, fmt.Errorf("%s: %w", path, fileErr(0, "file of %d bytes is larger than any hive", size))
	}
	// Spare capacity lets bins be appended without copying the image.
	reserve := size/8 + 1<<20
	buf, release, mapped := mapHive(fh, size, reserve)
	if mapped {
		buf = buf[: size : size+reserve]
	} else {
		buf = make([]byte, size, size+reserve)
		if _, err := fh.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("hive: reading %s: %w", path, err)
		}
	}
	e, err := editFile(path, st, buf)
	if err != nil {
		if mapped {
			release()
		}
		return nil, err
	}
	if mapped {
		// The mapping goes with the Editor; nothing else refers to it.
		// Edits write into it page by page (copy on write): copying the
		// whole hive to memory for a bulk edit was tried and costs more,
		// since on a virtual machine every page of the copy faults too.
		e.mapped = &mapping{release: release}
		runtime.AddCleanup(e, func(m *mapping) { m.unmap() }, e.mapped)
	}
	return e, nil
}

// mapping is the file mapping an Editor from Edit works on.
type mapping struct {
	release func()
	done    bool
}

func (m *mapping) unmap() {
	if !m.done {
		m.done = true
		m.release()
	}
}

// editFile makes the Editor of Edit from the file's bytes.
func editFile(path string, st os.FileInfo, buf []byte) (*Editor, error) {
	size := int64(len(buf))
	base := slices.Clone(buf[:baseBlockSize])
	h, err := parseHeader(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	recovered, disk := false, slices.Clone(base)
	if h.Dirty() {
		lb, lerr := os.ReadFile(path + ".LOG")
		if lerr != nil {
			return nil, fmt.Errorf("%s: %w", path, dirtyErr(h))
		}
		rec, rerr := RecoverOldLog(bytesReaderAt(buf), size, bytesReaderAt(lb), int64(len(lb)))
		if rerr != nil {
			return nil, fmt.Errorf("%s: %w (%s.LOG does not replay: %v)", path, dirtyErr(h), path, rerr)
		}
		buf, base, recovered = rec, rec[:baseBlockSize], true
	}
	length := int(le.Uint32(base[hdrLength:]))
	if length > len(buf)-baseBlockSize {
		return nil, fmt.Errorf("%s: %w", path, fileErr(hdrLength, "hive bins data length 0x%x exceeds the file (0x%x bytes after the base block): truncated hive", length, len(buf)-baseBlockSize))
	}
	f, err := fileFromBytes(base, buf[baseBlockSize:baseBlockSize+length])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e, err := editorFor(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.all = recovered
	e.src = &source{path: path, info: st, base: disk}
	return e, nil
}

func dirtyErr(h *Header) error {
	return &FormatError{Off: hdrSeq2, Msg: fmt.Sprintf("sequence numbers differ (%d, %d): the hive is dirty; replay its .LOG before editing it", h.Seq1, h.Seq2), kind: ErrDirty}
}

// NewEditor returns an Editor for a copy of f (f itself is not changed
// and stays usable). It fails on a dirty hive (ErrDirty) and on versions
// Windows XP does not load. Structures are checked as edits reach them;
// run Check first to refuse a damaged hive up front.
func NewEditor(f *File) (*Editor, error) {
	g := &File{Header: f.Header, base: slices.Clone(f.base), data: slices.Clone(f.data), binOf: slices.Clone(f.binOf)}
	e, err := editorFor(g)
	if err != nil {
		return nil, err
	}
	e.all = true
	return e, nil
}

func editorFor(f *File) (*Editor, error) {
	if f.Dirty() {
		return nil, dirtyErr(&f.Header)
	}
	if f.Minor < 1 || f.Minor > 5 {
		return nil, fileErr(hdrMinor, "cannot edit a 1.%d hive (Windows XP loads 1.1 to 1.5)", f.Minor)
	}
	return newEditor(f), nil
}

func newEditor(f *File) *Editor {
	return &Editor{f: f, seq: f.Seq1,
		dsec: make([]uint64, (len(f.data)/logSector+63)/64),
		kids: map[uint32]*kidList{}, vals: map[uint32]*valList{}}
}

func (e *Editor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Minor returns the hive's minor format version.
func (e *Editor) Minor() uint32 { return e.f.Minor }

// touch marks the sectors, and so the pages, holding data[off:off+n] as
// changed.
//
// Changed pages (ndirty) tell a bulk edit, and so where it allocates.
// Changed sectors are what the in-place save
// logs and writes, and what decides between saving in place and
// rewriting (the old-format log's dirty vector has a bit per 512-byte
// sector, as Windows keeps it), so a changed field costs its sector, not
// its page.
func (e *Editor) touch(off uint32, n int) {
	for s := off / logSector; s <= (off+uint32(n)-1)/logSector; s++ {
		w, bit := s/64, uint64(1)<<(s%64)
		if e.dsec[w]&bit != 0 {
			continue
		}
		// A page's 8 sectors are one byte of the bitmap: the page is
		// newly changed when that byte was still zero.
		if e.dsec[w]&(0xFF<<(s%64&^7)) == 0 {
			e.ndirty++
		}
		e.dsec[w] |= bit
		e.nsec++
	}
}

// cellw returns the data of the allocated cell at off for writing and
// marks it changed. The slice is valid until the next allocation.
func (e *Editor) cellw(off uint32) ([]byte, error) {
	b, err := e.f.cell(off)
	if err != nil {
		return nil, err
	}
	e.touch(off, len(b)+4)
	return b, nil
}

// patch32 writes a uint32 at byte at of the cell at off.
func (e *Editor) patch32(off uint32, at int, v uint32) error {
	b, err := e.f.cell(off)
	if err != nil {
		return err
	}
	if at+4 > len(b) {
		return cellErr(off, "cell of %d bytes too small for a field at %d", len(b), at)
	}
	le.PutUint32(b[at:], v)
	e.touch(off+4+uint32(at), 4)
	return nil
}

func (e *Editor) patch64(off uint32, at int, v uint64) error {
	b, err := e.f.cell(off)
	if err != nil {
		return err
	}
	if at+8 > len(b) {
		return cellErr(off, "cell of %d bytes too small for a field at %d", len(b), at)
	}
	le.PutUint64(b[at:], v)
	e.touch(off+4+uint32(at), 8)
	return nil
}

// children returns the subkeys of the key at nk, loading and checking
// them once: a list out of order is sorted (and rewritten on save), a
// duplicate name is an error.
func (e *Editor) children(nk uint32) (*kidList, error) {
	if l := e.kids[nk]; l != nil {
		return l, nil
	}
	k, err := e.f.nk(nk)
	if err != nil {
		return nil, err
	}
	offs, err := k.subkeyOffs()
	if err != nil {
		return nil, err
	}
	// The names share one allocation: a bulk edit decodes the lists of
	// hundreds of keys, and a slice per name was much of its garbage.
	type stored struct {
		raw  []byte
		comp bool
	}
	names := make([]stored, len(offs))
	units := 0
	for i, o := range offs {
		_, raw, comp, err := e.f.nkName(o)
		if err != nil {
			return nil, err
		}
		names[i] = stored{raw, comp}
		if comp {
			units += len(raw)
		} else {
			units += len(raw) / 2
		}
	}
	arena := make([]uint16, 0, units)
	// Room for a few more: a key created under this one is inserted.
	l := &kidList{kids: make([]kid, len(offs), len(offs)+len(offs)/8+2), dirty: uint32(len(offs)) != k.nsub}
	for i, o := range offs {
		start := len(arena)
		arena = appendName(arena, names[i].raw, names[i].comp)
		l.kids[i] = kid{o, arena[start:len(arena):len(arena)]}
	}
	cmp := func(a, b kid) int { return compareNames(a.name, b.name) }
	if !slices.IsSortedFunc(l.kids, cmp) {
		slices.SortStableFunc(l.kids, cmp)
		l.dirty = true
	}
	for i := 1; i < len(l.kids); i++ {
		if cmp(l.kids[i-1], l.kids[i]) == 0 {
			return nil, cellErr(nk, "duplicate subkey name %q", unitsString(l.kids[i].name))
		}
	}
	e.kids[nk] = l
	return l, nil
}

func cmpKid(k kid, name []uint16) int { return compareNames(k.name, name) }

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
		i, ok := slices.BinarySearchFunc(l.kids, u, cmpKid)
		if ok {
			off = l.kids[i].off
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
		l.kids = slices.Insert(l.kids, i, kid{c, u})
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
	raw, comp := encodeName(name)
	off, err := e.alloc(nkName + len(raw))
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
	le.PutUint16(b[nkNameLen:], uint16(len(raw)))
	copy(b[nkName:], raw)
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
	i, ok := slices.BinarySearchFunc(l.kids, toUnits(parts[len(parts)-1]), cmpKid)
	if !ok {
		return fmt.Errorf("key %q: %w", path, ErrNotFound)
	}
	off := l.kids[i].off
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
		if err := e.freeTree(c.off, seen); err != nil {
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
	k, err := e.f.nk(nk)
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

// values returns the value cells of the key at nk.
func (e *Editor) values(nk uint32) (*valList, error) {
	if l := e.vals[nk]; l != nil {
		return l, nil
	}
	k, err := e.f.nk(nk)
	if err != nil {
		return nil, err
	}
	offs, err := e.f.valueOffsets(k)
	if err != nil {
		return nil, err
	}
	l := &valList{offs: offs}
	e.vals[nk] = l
	return l, nil
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
	u := toUnits(name)
	if len(u) > maxValueNameChars {
		return fmt.Errorf("%w: value name of %d characters (max %d)", ErrInvalid, len(u), maxValueNameChars)
	}
	if err := e.checkSize(len(data)); err != nil {
		return fmt.Errorf("value %q: %w", name, err)
	}
	nk, err := e.lookup(path, false)
	if err != nil {
		return err
	}
	l, err := e.values(nk)
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
		raw, comp := encodeName(u)
		if vo, err = e.alloc(vkName + len(raw)); err != nil {
			return err
		}
		b, _ := e.cellw(vo)
		clear(b)
		copy(b, "vk")
		le.PutUint16(b[vkNameLen:], uint16(len(raw)))
		if comp && len(raw) > 0 {
			le.PutUint16(b[vkFlags:], valCompName)
		}
		le.PutUint32(b[vkDataLen:], dataInline)
		copy(b[vkName:], raw)
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
	nk, err := e.lookup(path, false)
	if err != nil {
		return err
	}
	l, err := e.values(nk)
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
	nk, err := e.lookup(path, false)
	if err != nil {
		return nil, err
	}
	l, err := e.values(nk)
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
	k, err := e.f.nk(nk)
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
	k, err := e.f.nk(nk)
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
func (e *Editor) subkeyList(kids []kid) (uint32, error) {
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

func (e *Editor) leaf(sig string, kids []kid) (uint32, error) {
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
		le.PutUint32(b[at:], c.off)
		switch sig {
		case "lh":
			le.PutUint32(b[at+4:], lhHash(c.name))
		case "lf":
			h := lfHint(c.name)
			copy(b[at+4:], h[:])
		}
	}
	return off, nil
}

// writeValues replaces the value list of the key at nk by l, in the old
// cell when it is large enough.
func (e *Editor) writeValues(nk uint32, l *valList) error {
	k, err := e.f.nk(nk)
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

// header returns the base block of the next write: both sequence numbers
// one above the last write, a new timestamp (mirrored in the first bin),
// the bins length and the checksum. The timestamp is nudged until the raw
// XOR hivex checks agrees with Windows' fixed-up checksum.
func (e *Editor) header() []byte {
	base := slices.Clone(e.f.base)
	seq := e.seq + 1
	le.PutUint32(base[hdrSeq1:], seq)
	le.PutUint32(base[hdrSeq2:], seq)
	le.PutUint32(base[hdrMajor:], 1)
	le.PutUint32(base[hdrMinor:], e.f.Minor)
	le.PutUint32(base[hdrType:], 0)
	le.PutUint32(base[hdrFormat:], 1)
	le.PutUint32(base[hdrRoot:], e.f.Header.Root)
	le.PutUint32(base[hdrLength:], uint32(len(e.f.data)))
	le.PutUint32(base[hdrCluster:], 1)
	le.PutUint32(base[hdrBootType:], 0)
	le.PutUint32(base[hdrBootRecov:], 0)
	for ts := toFiletime(e.now()); ; ts++ {
		le.PutUint64(base[hdrTimestamp:], ts)
		le.PutUint32(base[hdrChecksum:], 0)
		if x := rawChecksum(base); x != 0 && x != 0xFFFFFFFF {
			le.PutUint32(base[hdrChecksum:], x)
			le.PutUint64(e.f.data[binTimestamp:], ts)
			e.touch(binTimestamp, 8)
			break
		}
	}
	return base
}

// Bytes returns the whole edited hive file as the next Save would write
// it (without counting as a save).
func (e *Editor) Bytes() ([]byte, error) {
	if err := e.flush(); err != nil {
		return nil, err
	}
	base := e.header()
	out := make([]byte, baseBlockSize+len(e.f.data))
	copy(out, base)
	copy(out[baseBlockSize:], e.f.data)
	runtime.KeepAlive(e) // e.f.data may be a mapping e's cleanup releases
	return out, nil
}

// File returns the edited hive as a read-only File.
func (e *Editor) File() (*File, error) {
	b, err := e.Bytes()
	if err != nil {
		return nil, err
	}
	return NewFile(bytesReaderAt(b), int64(len(b)))
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, errors.New("hive: read outside buffer")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, errors.New("hive: short read")
	}
	return n, nil
}
