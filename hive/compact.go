package hive

import (
	"fmt"
	"os"
	"slices"
	"time"
)

// A tree holds a whole hive in memory as a tree of keys and values and
// lays it out afresh, compactly (Compact, and the empty hive of New):
// every cell is packed in tree order, so the only free space is the tail
// of each bin. Names, flags, timestamps, class names, security
// descriptors, the larger-than-needed maximum-length fields Windows
// leaves, value order and the base block's reserved bytes are kept.
type tree struct {
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

// newTree returns the tree of a new, empty hive of version 1.minor. Its
// root key is named "$$$PROTO.HIV" like the hives Windows creates, and
// owns a default security descriptor (SYSTEM and Administrators full
// control, Everyone read, inherited by subkeys).
func newTree(minor uint32) (*tree, error) {
	if minor < 1 || minor > 5 {
		return nil, fmt.Errorf("%w: minor version %d (want 1 to 5)", ErrInvalid, minor)
	}
	e := &tree{minor: minor, base: make([]byte, baseBlockSize)}
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

// loadTree loads the whole of f. It fails on a dirty hive (ErrDirty), on
// any structure it cannot read, and on duplicate subkey names; subkeys
// stored out of order are sorted.
func loadTree(f *File) (*tree, error) {
	if f.Dirty() {
		return nil, &FormatError{Off: hdrSeq2, Msg: fmt.Sprintf("sequence numbers differ (%d, %d): the hive is dirty; replay its .LOG before editing it", f.Seq1, f.Seq2), kind: ErrDirty}
	}
	if f.Minor < 1 || f.Minor > 5 {
		return nil, fileErr(hdrMinor, "cannot edit a 1.%d hive (Windows XP loads 1.1 to 1.5)", f.Minor)
	}
	e := &tree{minor: f.Minor, seq: f.Seq1, base: slices.Clone(f.base)}
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
			// The data aliases the file's buffer, which the tree now
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

func (e *tree) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
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

func cmpNodes(a, b *node) int { return compareNames(a.name, b.name) }

// Compact returns the hive f laid out anew and compactly, the way
// RegSaveKey writes a hive: every cell packed in tree order into fresh
// bins, so that the only free space is the tail of each bin, with
// sequence numbers one above f's. Subkeys stored out of order are
// sorted, names are re-encoded as Windows stores them, and security
// descriptors no key uses are dropped; everything else is kept. It fails
// on a dirty hive (ErrDirty) and on any structure it cannot read.
func Compact(f *File) ([]byte, error) {
	t, err := loadTree(f)
	if err != nil {
		return nil, err
	}
	return t.Bytes()
}

// CompactFile compacts the hive at path (see Compact) and writes the
// result atomically to out, which may be path itself: a temporary file in
// out's directory, synced, renamed over out. It returns the sizes before
// and after.
func CompactFile(path, out string) (before, after int64, err error) {
	f, err := Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	b, err := Compact(f)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := writeFileAtomic(out, b); err != nil {
		return 0, 0, err
	}
	return st.Size(), int64(len(b)), nil
}
