package hive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// An Editor holds a whole hive in memory as a tree of keys and values,
// changes it, and writes it back with Save or Bytes. Every write lays the
// hive out afresh, compactly, keeping every invariant Check verifies: free
// space left by deleted or shrunk data is never carried over, so repeated
// edits do not grow the file. Names, flags, timestamps, class names,
// security descriptors, the larger-than-needed maximum-length fields
// Windows leaves, value order and the base block's reserved bytes are kept.
//
// An Editor is not safe for concurrent use.
type Editor struct {
	// Now is the clock for key and base block timestamps; nil means
	// time.Now.
	Now func() time.Time

	minor uint32
	seq   uint32
	base  []byte // base block template
	root  *node
	sks   []*secDesc // security descriptors in list order
}

type node struct {
	parent  *node
	name    []uint16 // UTF-16 units; siblings are sorted by compareNames
	raw     []byte   // name as stored
	comp    bool
	flags   uint16
	mtime   uint64
	access  uint32
	workvar uint32
	maxName uint32 // as found on disk; the upper 16 bits are flags
	maxCls  uint32
	maxVN   uint32
	maxVD   uint32
	class   []byte
	sk      *secDesc
	subs    []*node // sorted by up
	vals    []*value
}

type value struct {
	raw   []byte // name as stored (may alias the source file's buffer)
	comp  bool   // raw is Latin-1
	typ   uint32
	data  []byte
	spare uint16
}

type secDesc struct {
	desc     []byte
	reserved uint16
	refs     int
	off      uint32
}

// New returns an Editor for a new, empty hive of version 1.minor (3 or 5
// for Windows XP; 1 to 5 are accepted). Its root key is named
// "$$$PROTO.HIV" like the hives Windows creates, and owns a default
// security descriptor (SYSTEM and Administrators full control, Everyone
// read, inherited by subkeys).
func New(minor uint32) (*Editor, error) {
	if minor < 1 || minor > 5 {
		return nil, fmt.Errorf("%w: minor version %d (want 1 to 5)", ErrInvalid, minor)
	}
	e := &Editor{minor: minor, base: make([]byte, baseBlockSize)}
	copy(e.base, "regf")
	sk := &secDesc{desc: defaultSecurityDescriptor()}
	e.sks = []*secDesc{sk}
	name := toUnits("$$$PROTO.HIV")
	raw, comp := encodeName(name)
	e.root = &node{name: name, raw: raw, comp: comp,
		flags: keyHiveEntry | keyNoDelete | keyCompName, mtime: toFiletime(e.now()), sk: sk}
	return e, nil
}

// defaultSecurityDescriptor builds a self-relative descriptor: owner
// Administrators, group SYSTEM, DACL allowing KEY_ALL_ACCESS to SYSTEM and
// Administrators and KEY_READ to Everyone, all container-inherited.
func defaultSecurityDescriptor() []byte {
	sid := func(auth byte, subs ...uint32) []byte {
		b := []byte{1, byte(len(subs)), 0, 0, 0, 0, 0, auth}
		for _, s := range subs {
			b = le.AppendUint32(b, s)
		}
		return b
	}
	system, admins, everyone := sid(5, 18), sid(5, 32, 544), sid(1, 0)
	ace := func(mask uint32, s []byte) []byte {
		b := []byte{0, 0x02} // ACCESS_ALLOWED_ACE, CONTAINER_INHERIT_ACE
		b = le.AppendUint16(b, uint16(8+len(s)))
		b = le.AppendUint32(b, mask)
		return append(b, s...)
	}
	aces := slices.Concat(ace(0xF003F, system), ace(0xF003F, admins), ace(0x20019, everyone))
	acl := []byte{2, 0}
	acl = le.AppendUint16(acl, uint16(8+len(aces)))
	acl = le.AppendUint16(acl, 3)
	acl = le.AppendUint16(acl, 0)
	acl = append(acl, aces...)
	sd := []byte{1, 0}
	sd = le.AppendUint16(sd, 0x8004) // SE_SELF_RELATIVE | SE_DACL_PRESENT
	owner := 20
	group := owner + len(admins)
	dacl := group + len(system)
	sd = le.AppendUint32(sd, uint32(owner))
	sd = le.AppendUint32(sd, uint32(group))
	sd = le.AppendUint32(sd, 0)
	sd = le.AppendUint32(sd, uint32(dacl))
	return slices.Concat(sd, admins, system, acl)
}

// Edit opens the hive at path for editing. A dirty hive is refused with an
// error matching ErrDirty; replay its log first (see RecoverOldLog).
func Edit(path string) (*Editor, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	e, err := NewEditor(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// NewEditor loads the whole of f into a new Editor. It fails on a dirty
// hive (ErrDirty), on any structure it cannot read, and on duplicate
// subkey names; subkeys stored out of order are sorted.
func NewEditor(f *File) (*Editor, error) {
	if f.Dirty() {
		return nil, &FormatError{Off: hdrSeq2, Msg: fmt.Sprintf("sequence numbers differ (%d, %d): the hive is dirty; replay its .LOG before editing it", f.Seq1, f.Seq2), kind: ErrDirty}
	}
	if f.Minor < 1 || f.Minor > 5 {
		return nil, fileErr(hdrMinor, "cannot edit a 1.%d hive (Windows XP loads 1.1 to 1.5)", f.Minor)
	}
	e := &Editor{minor: f.Minor, seq: f.Seq1, base: slices.Clone(f.base)}
	sks := map[uint32]*secDesc{}
	getSK := func(off uint32) (*secDesc, error) {
		if s := sks[off]; s != nil {
			return s, nil
		}
		b, err := f.sk(off)
		if err != nil {
			return nil, err
		}
		s := &secDesc{desc: slices.Clone(b[skDesc : skDesc+le.Uint32(b[skDescLen:])]), reserved: le.Uint16(b[2:])}
		if !validSD(s.desc) {
			return nil, cellErr(off, "security descriptor is not a self-relative revision 1 descriptor")
		}
		sks[off] = s
		e.sks = append(e.sks, s)
		return s, nil
	}
	root, err := f.Root()
	if err != nil {
		return nil, err
	}
	// Security descriptors in list order, starting from the root's.
	for off, steps := root.sk, 0; steps <= len(f.data)/24; steps++ {
		if _, err := getSK(off); err != nil {
			break
		}
		b, _ := f.sk(off)
		off = le.Uint32(b[skFlink:])
		if off == root.sk || sks[off] != nil {
			break
		}
	}
	seen := map[uint32]bool{}
	// budget bounds the value data loaded: in a sound hive every byte of
	// it lives in its own cell (or inline in a vk), so more data than the
	// file holds means cells shared between values.
	budget := len(f.data)
	var load func(k *Key, parent *node) (*node, error)
	load = func(k *Key, parent *node) (*node, error) {
		if seen[k.off] {
			return nil, cellErr(k.off, "key reached twice while walking the tree (cycle)")
		}
		seen[k.off] = true
		r := k.rec
		if parent != nil && (len(k.name) == 0 || len(k.name) > maxKeyNameChars) {
			return nil, cellErr(k.off, "key name of %d characters (1 to %d allowed)", len(k.name), maxKeyNameChars)
		}
		// Names are re-encoded as Windows would store them (Latin-1
		// when possible); the UTF-16 units are kept exactly.
		raw, comp := encodeName(k.name)
		n := &node{
			parent: parent, name: k.name,
			raw: raw, comp: comp,
			flags: k.flags, mtime: le.Uint64(r[nkTimestamp:]),
			access: le.Uint32(r[nkAccess:]), workvar: le.Uint32(r[nkWorkVar:]),
			maxName: le.Uint32(r[nkMaxName:]), maxCls: le.Uint32(r[nkMaxClass:]),
			maxVN: le.Uint32(r[nkMaxValueName:]), maxVD: le.Uint32(r[nkMaxValueData:]),
		}
		var err error
		if n.sk, err = getSK(k.sk); err != nil {
			return nil, fmt.Errorf("key at 0x%x: %w", k.Offset(), err)
		}
		cls, err := k.classBytes()
		if err != nil {
			return nil, err
		}
		n.class = slices.Clone(cls)
		offs, err := f.valueOffsets(k)
		if err != nil {
			return nil, err
		}
		vs := make([]value, len(offs))
		n.vals = make([]*value, len(offs))
		for i, o := range offs {
			v, err := loadValue(f, o)
			if err != nil {
				return nil, err
			}
			// The data aliases the file's buffer, which the Editor now
			// owns; values are replaced, never modified in place.
			if budget -= len(v.data); budget < 0 {
				return nil, cellErr(o, "value data shared between values (more data than the file holds)")
			}
			for j := range i {
				if compareRaw(vs[j].raw, vs[j].comp, v.raw, v.comp) == 0 {
					return nil, cellErr(o, "duplicate value name %q", unitsString(decodeName(v.raw, v.comp)))
				}
			}
			vs[i] = v
			n.vals[i] = &vs[i]
		}
		subs, err := k.Subkeys()
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			c, err := load(s, n)
			if err != nil {
				return nil, err
			}
			n.subs = append(n.subs, c)
		}
		if !slices.IsSortedFunc(n.subs, cmpNodes) {
			slices.SortStableFunc(n.subs, cmpNodes)
		}
		for i := 1; i < len(n.subs); i++ {
			if cmpNodes(n.subs[i-1], n.subs[i]) == 0 {
				return nil, cellErr(k.off, "duplicate subkey name %q", unitsString(n.subs[i].name))
			}
		}
		return n, nil
	}
	if e.root, err = load(root, nil); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Editor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Minor returns the hive's minor format version.
func (e *Editor) Minor() uint32 { return e.minor }

// find returns the key at path, or nil.
func (e *Editor) find(path string) *node {
	n := e.root
	for _, p := range splitPath(path) {
		if n = n.child(toUnits(p)); n == nil {
			return nil
		}
	}
	return n
}

func cmpNodes(a, b *node) int { return compareNames(a.name, b.name) }

func cmpChild(c *node, name []uint16) int { return compareNames(c.name, name) }

func (n *node) child(name []uint16) *node {
	i, ok := slices.BinarySearchFunc(n.subs, name, cmpChild)
	if !ok {
		return nil
	}
	return n.subs[i]
}

func (e *Editor) key(path string) (*node, error) {
	n := e.find(path)
	if n == nil {
		return nil, fmt.Errorf("key %q: %w", path, ErrNotFound)
	}
	return n, nil
}

// HasKey reports whether the key at path exists.
func (e *Editor) HasKey(path string) bool { return e.find(path) != nil }

func checkKeyName(s string) ([]uint16, error) {
	u := toUnits(s)
	if len(u) == 0 || len(u) > maxKeyNameChars {
		return nil, fmt.Errorf("%w: key name %q must have 1 to %d characters", ErrInvalid, s, maxKeyNameChars)
	}
	return u, nil
}

// CreateKey creates the key at path and any missing parent; an existing
// key is left as it is. New keys share their parent's security
// descriptor, as regedit and the kernel do.
func (e *Editor) CreateKey(path string) error {
	n := e.root
	now := toFiletime(e.now())
	for _, p := range splitPath(path) {
		u, err := checkKeyName(p)
		if err != nil {
			return err
		}
		i, ok := slices.BinarySearchFunc(n.subs, u, cmpChild)
		if ok {
			n = n.subs[i]
			continue
		}
		raw, comp := encodeName(u)
		c := &node{parent: n, name: u, raw: raw, comp: comp, mtime: now, sk: n.sk}
		if comp {
			c.flags = keyCompName
		}
		n.subs = slices.Insert(n.subs, i, c)
		n.mtime = now
		n = c
	}
	return nil
}

// DeleteKey deletes the key at path with all its subkeys and values. The
// root cannot be deleted.
func (e *Editor) DeleteKey(path string) error {
	n, err := e.key(path)
	if err != nil {
		return err
	}
	if n.parent == nil {
		return fmt.Errorf("%w: the root key cannot be deleted", ErrInvalid)
	}
	p := n.parent
	i := slices.Index(p.subs, n)
	p.subs = slices.Delete(p.subs, i, i+1)
	p.mtime = toFiletime(e.now())
	return nil
}

// SetValue sets (creates or replaces) the value name ("" is the default
// value) of the key at path to data of type t. Data is stored as given:
// use the Encode helpers for strings and numbers.
func (e *Editor) SetValue(path, name string, t ValueType, data []byte) error {
	n, err := e.key(path)
	if err != nil {
		return err
	}
	u := toUnits(name)
	if len(u) > maxValueNameChars {
		return fmt.Errorf("%w: value name of %d characters (max %d)", ErrInvalid, len(u), maxValueNameChars)
	}
	if err := e.checkSize(len(data)); err != nil {
		return fmt.Errorf("value %q: %w", name, err)
	}
	data = slices.Clone(data)
	n.mtime = toFiletime(e.now())
	if v := n.value(u); v != nil {
		v.typ, v.data = uint32(t), data
		return nil
	}
	raw, comp := encodeName(u)
	n.vals = append(n.vals, &value{raw: raw, comp: comp, typ: uint32(t), data: data})
	return nil
}

// checkSize rejects data the hive version cannot hold.
func (e *Editor) checkSize(n int) error {
	if e.minor >= 4 {
		if n > 0xFFFF*bigDataSegment {
			return fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
		}
		return nil
	}
	if n+4 > maxCellSize {
		return fmt.Errorf("%w: %d bytes in a 1.%d hive (one cell of at most 1 MiB)", ErrTooLarge, n, e.minor)
	}
	return nil
}

func (n *node) value(u []uint16) *value {
	for _, v := range n.vals {
		if compareRawUnits(v.raw, v.comp, u) == 0 {
			return v
		}
	}
	return nil
}

// DeleteValue deletes the value name of the key at path.
func (e *Editor) DeleteValue(path, name string) error {
	n, err := e.key(path)
	if err != nil {
		return err
	}
	u := toUnits(name)
	i := slices.IndexFunc(n.vals, func(v *value) bool { return compareRawUnits(v.raw, v.comp, u) == 0 })
	if i < 0 {
		return fmt.Errorf("value %q of key %q: %w", name, path, ErrNotFound)
	}
	n.vals = slices.Delete(n.vals, i, i+1)
	n.mtime = toFiletime(e.now())
	return nil
}

// SetClass sets the class name of the key at path ("" removes it).
func (e *Editor) SetClass(path, class string) error {
	n, err := e.key(path)
	if err != nil {
		return err
	}
	n.class = utf16le(toUnits(class))
	if len(n.class) > 0xFFFF {
		return fmt.Errorf("%w: class name too long", ErrInvalid)
	}
	n.mtime = toFiletime(e.now())
	return nil
}

// File returns the edited hive as a read-only File (it lays the hive out
// as Save would, in memory).
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

// Save writes the hive to path atomically: to a temporary file in the same
// directory, synced to disk, then renamed over path. On any error path is
// left untouched and the temporary file is removed.
func (e *Editor) Save(path string) error {
	b, err := e.Bytes()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return err
	}
	e.seq++ // the next save bumps the sequence numbers again
	return nil
}

func writeFileAtomic(path string, b []byte) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("hive: %s is not a regular file", path)
		}
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return fmt.Errorf("hive: saving %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("hive: saving %s: %w", path, err)
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// loadValue decodes the vk cell at off without copying its name or data
// out of the file's buffer.
func loadValue(f *File, off uint32) (value, error) {
	b, err := f.cell(off)
	if err != nil {
		return value{}, err
	}
	if len(b) < vkName || b[0] != 'v' || b[1] != 'k' {
		return value{}, cellErr(off, "not a value (vk) cell")
	}
	nl := int(le.Uint16(b[vkNameLen:]))
	if vkName+nl > len(b) {
		return value{}, cellErr(off, "value name length %d exceeds the vk cell", nl)
	}
	comp := le.Uint16(b[vkFlags:])&valCompName != 0
	if !comp && nl%2 != 0 {
		return value{}, cellErr(off, "UTF-16 value name has odd length %d", nl)
	}
	v := value{raw: b[vkName : vkName+nl : vkName+nl], comp: comp, typ: le.Uint32(b[vkType:]), spare: le.Uint16(b[vkSpare:])}
	if !canonicalName(v.raw, v.comp) {
		v.raw, v.comp = encodeName(decodeName(v.raw, v.comp))
	}
	rv := rawValue{dataLen: le.Uint32(b[vkDataLen:]), dataOff: le.Uint32(b[vkData:])}
	if n := rv.dataLen &^ dataInline; rv.dataLen&dataInline != 0 && n <= 4 {
		v.data = b[vkData : vkData+n : vkData+n]
		return v, nil
	}
	if v.data, err = f.valueDataShared(off, &rv); err != nil {
		return value{}, err
	}
	return v, nil
}
