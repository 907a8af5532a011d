package hive

import (
	"fmt"
	"io"
	"sort"
)

// Check reads the hive of the given size from r and reports every
// violation of the format rules Windows XP relies on, each with its file
// offset: base block fields (signature, version, type, format, clustering
// factor, checksum, equal sequence numbers, length), bins (contiguous,
// 4 KiB multiples, offsets), cells (8-aligned, tiling their bin, never
// spanning bins), keys (parent links, names, counts), subkey lists (type by
// version, leaf limits, order by upper-cased UTF-16, no duplicates, exact
// lh hashes and lf hints), values (inline ≤ 4 bytes, data cells, db big
// data, unique names), security cells (circular list, exact reference
// counts), class names and the parents' maximum name, class and data
// lengths (which may be larger than needed, never smaller). A clean hive
// gives no problems. The error is only for failures to read r.
func Check(r io.ReaderAt, size int64) ([]*FormatError, error) {
	c := &checker{}
	if err := c.run(r, size); err != nil {
		return nil, err
	}
	sort.SliceStable(c.probs, func(i, j int) bool { return c.probs[i].Off < c.probs[j].Off })
	return c.probs, nil
}

type checker struct {
	probs  []*FormatError
	f      *File
	alloc  map[uint32]uint32 // allocated cells: offset → size
	used   map[uint32]bool   // cells referenced from the tree
	skRef  map[uint32]int    // sk offset → number of keys using it
	leaked int
}

func (c *checker) add(e *FormatError) { c.probs = append(c.probs, e) }

func (c *checker) cellf(off uint32, format string, args ...any) {
	c.add(cellErr(off, format, args...))
}

func (c *checker) run(r io.ReaderAt, size int64) error {
	if size < baseBlockSize {
		c.add(fileErr(0, "file of %d bytes is shorter than the base block", size))
		return nil
	}
	base := make([]byte, baseBlockSize)
	if _, err := r.ReadAt(base, 0); err != nil {
		return fmt.Errorf("hive: reading base block: %w", err)
	}
	if string(base[:4]) != "regf" {
		c.add(fileErr(0, "signature %q is not \"regf\"", base[:4]))
		return nil
	}
	h := Header{
		Seq1: le.Uint32(base[hdrSeq1:]), Seq2: le.Uint32(base[hdrSeq2:]),
		Major: le.Uint32(base[hdrMajor:]), Minor: le.Uint32(base[hdrMinor:]),
		Type: le.Uint32(base[hdrType:]), Format: le.Uint32(base[hdrFormat:]),
		Root: le.Uint32(base[hdrRoot:]), Length: le.Uint32(base[hdrLength:]),
		Cluster: le.Uint32(base[hdrCluster:]), Checksum: le.Uint32(base[hdrChecksum:]),
	}
	if h.Seq1 != h.Seq2 {
		c.add(&FormatError{Off: hdrSeq2, Msg: fmt.Sprintf("sequence numbers differ (%d, %d): dirty hive, its log must be replayed", h.Seq1, h.Seq2), kind: ErrDirty})
	}
	if h.Major != 1 {
		c.add(fileErr(hdrMajor, "major version %d is not 1", h.Major))
	}
	if h.Minor < 1 || h.Minor > 5 {
		c.add(fileErr(hdrMinor, "minor version %d: Windows XP loads 1.1 to 1.5", h.Minor))
	}
	if h.Type != 0 {
		c.add(fileErr(hdrType, "file type %d is not 0 (primary)", h.Type))
	}
	if h.Format != 1 {
		c.add(fileErr(hdrFormat, "file format %d is not 1", h.Format))
	}
	if h.Cluster != 1 {
		c.add(fileErr(hdrCluster, "clustering factor %d is not 1", h.Cluster))
	}
	if sum := checksum(base); sum != h.Checksum {
		c.add(&FormatError{Off: hdrChecksum, Msg: fmt.Sprintf("checksum 0x%08x, want 0x%08x", h.Checksum, sum), kind: ErrChecksum})
	}
	length := int64(h.Length)
	if h.Length%binAlign != 0 || h.Length == 0 {
		c.add(fileErr(hdrLength, "hive bins data length 0x%x is not a non-zero multiple of 4096", h.Length))
		return nil
	}
	if length > size-baseBlockSize {
		c.add(fileErr(hdrLength, "hive bins data length 0x%x exceeds the file (0x%x bytes after the base block): truncated", h.Length, size-baseBlockSize))
		return nil
	}
	data := make([]byte, length)
	if _, err := r.ReadAt(data, baseBlockSize); err != nil {
		return fmt.Errorf("hive: reading hive bins: %w", err)
	}
	c.f = &File{Header: h, base: base, data: data}
	if !c.bins() {
		return nil
	}
	c.tree()
	return nil
}

// bins checks bin headers and the tiling of cells, and records the
// allocated cells. It reports false when the bins cannot be trusted.
func (c *checker) bins() bool {
	f := c.f
	f.binOf = make([]uint32, len(f.data)/binAlign)
	c.alloc = map[uint32]uint32{}
	ok := true
	for off := uint32(0); off < uint32(len(f.data)); {
		if err := checkBinHeader(f.data, off); err != nil {
			c.add(asFormat(err, off))
			return false
		}
		size := le.Uint32(f.data[off+binSize:])
		end := off + size
		for p := off / binAlign; p < end/binAlign; p++ {
			f.binOf[p] = off
		}
		prevFree := false
		for co := off + binHeaderSize; co < end; {
			if end-co < 4 {
				c.cellf(co, "%d bytes left at the end of the hbin at 0x%x, not a cell", end-co, off+baseBlockSize)
				ok = false
				break
			}
			s := int32(le.Uint32(f.data[co:]))
			n := uint32(s)
			if s < 0 {
				n = uint32(-int64(s))
			}
			if n == 0 {
				c.cellf(co, "cell of size 0")
				ok = false
				break
			}
			if n%cellAlign != 0 {
				c.cellf(co, "cell size 0x%x is not a multiple of 8", n)
				ok = false
				break
			}
			if uint64(co)+uint64(n) > uint64(end) {
				c.cellf(co, "cell size 0x%x exceeds its hbin (ends at 0x%x)", n, end+baseBlockSize)
				ok = false
				break
			}
			if s < 0 {
				c.alloc[co] = n
			} else if prevFree {
				c.cellf(co, "free cell follows a free cell (free space not coalesced)")
			}
			prevFree = s > 0
			co += n
		}
		off = end
	}
	return ok
}

// ref marks a cell as used and reports whether it is allocated and was
// not used before: apart from sk cells, no cell may serve twice.
func (c *checker) ref(off uint32, what string) bool {
	if _, ok := c.alloc[off]; !ok {
		c.cellf(off, "%s: not an allocated cell", what)
		return false
	}
	if c.used[off] {
		c.cellf(off, "%s: cell already used elsewhere in the hive", what)
		return false
	}
	c.used[off] = true
	return true
}

// refShared checks a cell that many keys may share (sk).
func (c *checker) refShared(off uint32, what string) bool {
	if _, ok := c.alloc[off]; !ok {
		c.cellf(off, "%s: not an allocated cell", what)
		return false
	}
	return true
}

func (c *checker) tree() {
	f := c.f
	c.used = map[uint32]bool{}
	c.skRef = map[uint32]int{}
	if !c.ref(f.Header.Root, "root key") {
		c.add(fileErr(hdrRoot, "root cell offset 0x%x is not an allocated cell", f.Header.Root))
		return
	}
	root, err := f.nk(f.Header.Root)
	if err != nil {
		c.add(asFormat(err, f.Header.Root))
		return
	}
	if root.flags&keyHiveEntry == 0 {
		c.cellf(root.off, "root key lacks the KEY_HIVE_ENTRY flag (flags 0x%x)", root.flags)
	}
	seen := map[uint32]bool{root.off: true}
	c.key(root, nilOff, seen)
	c.securityList(root.sk)
	for o := range c.alloc {
		if !c.used[o] {
			c.leaked++
		}
	}
}

// key checks one key and, recursively, its subkeys.
func (c *checker) key(k *Key, parent uint32, seen map[uint32]bool) {
	f := c.f
	if parent != nilOff {
		if p := le.Uint32(k.rec[nkParent:]); p != parent {
			c.cellf(k.off, "parent field 0x%x, but the key is listed under the key at 0x%x", p+baseBlockSize, parent+baseBlockSize)
		}
		if len(k.name) == 0 {
			c.cellf(k.off, "key with an empty name")
		}
		if k.flags&keyHiveEntry != 0 {
			c.cellf(k.off, "non-root key has the KEY_HIVE_ENTRY flag")
		}
	}
	c.nameEncoding(k.off, "key", k.name, k.flags&keyCompName != 0)
	// The volatile subkey count and list are ignored on load: Windows
	// leaves stale counts on disk (regparser's XP NTUSER.DAT has some).
	// Security.
	if c.refShared(k.sk, "security cell of key") {
		if _, err := f.sk(k.sk); err != nil {
			c.add(asFormat(err, k.sk))
		} else {
			c.skRef[k.sk]++
		}
	}
	// Class name.
	if k.classLen > 0 {
		if c.ref(k.classOff, "class name of key") {
			if _, err := k.classBytes(); err != nil {
				c.add(asFormat(err, k.off))
			}
		}
	}
	// Values.
	c.values(k)
	// Subkeys.
	subs := c.subkeys(k)
	var maxName, maxClass uint32
	for _, s := range subs {
		if seen[s.off] {
			c.cellf(s.off, "key reached twice (cycle or shared key cell)")
			continue
		}
		seen[s.off] = true
		maxName = max(maxName, uint32(2*len(s.name)))
		maxClass = max(maxClass, uint32(s.classLen))
		c.key(s, k.off, seen)
	}
	if got := le.Uint32(k.rec[nkMaxName:]) & 0xFFFF; got < maxName {
		c.cellf(k.off, "max subkey name length %d is below the longest subkey name (%d bytes)", got, maxName)
	}
	if got := le.Uint32(k.rec[nkMaxClass:]); got < maxClass {
		c.cellf(k.off, "max subkey class length %d is below the longest subkey class (%d bytes)", got, maxClass)
	}
}

func asFormat(err error, off uint32) *FormatError {
	var fe *FormatError
	if e, ok := err.(*FormatError); ok {
		return e
	}
	if errorsAs(err, &fe) {
		return &FormatError{Off: fe.Off, Msg: err.Error(), kind: fe.kind}
	}
	return cellErr(off, "%v", err)
}

// nameEncoding flags UTF-16 names that Windows would have stored as Latin-1.
func (c *checker) nameEncoding(off uint32, what string, name []uint16, comp bool) {
	if comp {
		return
	}
	for _, u := range name {
		if u > 0xFF {
			return
		}
	}
	if len(name) > 0 {
		c.cellf(off, "%s name %q is stored as UTF-16 but fits in Latin-1 (Windows compresses it)", what, unitsString(name))
	}
}

// subkeys checks k's subkey list and returns the subkeys it could read.
func (c *checker) subkeys(k *Key) []*Key {
	f := c.f
	if k.subList == nilOff {
		if k.nsub != 0 {
			c.cellf(k.off, "%d subkeys but no subkey list", k.nsub)
		}
		return nil
	}
	if k.nsub == 0 {
		c.cellf(k.off, "no subkeys but a subkey list at 0x%x (want 0xffffffff)", k.subList+baseBlockSize)
	}
	if !c.ref(k.subList, "subkey list") {
		return nil
	}
	b, _ := f.cell(k.subList)
	var leaves []uint32
	if len(b) >= 4 && string(b[:2]) == "ri" {
		n := int(le.Uint16(b[2:]))
		if 4+4*n > len(b) {
			c.cellf(k.subList, "ri list of %d entries exceeds its cell", n)
			return nil
		}
		if n == 0 {
			c.cellf(k.subList, "empty ri list")
		}
		for i := 0; i < n; i++ {
			lo := le.Uint32(b[4+4*i:])
			if c.ref(lo, "leaf of ri list") {
				leaves = append(leaves, lo)
			}
		}
	} else {
		leaves = []uint32{k.subList}
	}
	var subs []*Key
	var prev []uint16
	total := 0
	for _, lo := range leaves {
		lb, _ := f.cell(lo)
		if len(lb) < 4 {
			c.cellf(lo, "subkey list cell too small")
			continue
		}
		sig := string(lb[:2])
		n := int(le.Uint16(lb[2:]))
		width := 8
		switch sig {
		case "li":
			width = 4
			if f.Minor >= 5 {
				c.cellf(lo, "li list in a 1.%d hive (lh expected)", f.Minor)
			}
			if n > maxLeaf+1 {
				c.cellf(lo, "li list of %d entries exceeds the leaf limit %d", n, maxLeaf+1)
			}
		case "lf":
			if f.Minor >= 5 || f.Minor < 3 {
				c.cellf(lo, "lf list in a 1.%d hive (%s expected)", f.Minor, leafFor(f.Minor))
			}
			if n > maxFastLeaf+1 {
				c.cellf(lo, "lf list of %d entries exceeds the leaf limit %d", n, maxFastLeaf+1)
			}
		case "lh":
			if f.Minor < 5 {
				c.cellf(lo, "lh list in a 1.%d hive (%s expected)", f.Minor, leafFor(f.Minor))
			}
			if n > maxLeaf+1 {
				c.cellf(lo, "lh list of %d entries exceeds the leaf limit %d", n, maxLeaf+1)
			}
		case "ri":
			c.cellf(lo, "ri list inside an ri list")
			continue
		default:
			c.cellf(lo, "subkey list signature %q is not lf, lh, li or ri", lb[:2])
			continue
		}
		if n == 0 {
			c.cellf(lo, "empty %s list", sig)
		}
		if 4+width*n > len(lb) {
			c.cellf(lo, "%s list of %d entries exceeds its cell (%d bytes)", sig, n, len(lb))
			continue
		}
		total += n
		for i := 0; i < n; i++ {
			e := lb[4+width*i:]
			so := le.Uint32(e)
			if !c.ref(so, "subkey") {
				continue
			}
			s, err := f.nk(so)
			if err != nil {
				c.add(asFormat(err, so))
				continue
			}
			entryOff := lo + 4 + 4 + uint32(width*i)
			switch sig {
			case "lh":
				if got, want := le.Uint32(e[4:]), lhHash(s.name); got != want {
					c.cellf(entryOff, "lh hash 0x%08x of %q, want 0x%08x", got, s.Name(), want)
				}
			case "lf":
				if want := lfHint(s.name); [4]byte(e[4:8]) != want && !(want[0] == 0 && e[4] == 0) {
					c.cellf(entryOff, "lf hint %q of %q, want %q", e[4:8], s.Name(), want[:])
				}
			}
			if prev != nil {
				switch d := compareNames(prev, s.name); {
				case d == 0:
					c.cellf(entryOff, "duplicate subkey name %q", s.Name())
				case d > 0:
					c.cellf(entryOff, "subkey %q is out of order (after %q)", s.Name(), unitsString(prev))
				}
			}
			prev = s.name
			subs = append(subs, s)
		}
	}
	if uint32(total) != k.nsub {
		c.cellf(k.off, "subkey count %d, but its lists hold %d", k.nsub, total)
	}
	return subs
}

func leafFor(minor uint32) string {
	switch {
	case minor >= 5:
		return "lh"
	case minor >= 3:
		return "lf or li"
	}
	return "li"
}

// values checks k's value list, values and data.
func (c *checker) values(k *Key) {
	f := c.f
	if k.nval == 0 {
		return
	}
	if !c.ref(k.valList, "value list") {
		return
	}
	offs, err := f.valueOffsets(k)
	if err != nil {
		c.add(asFormat(err, k.off))
		return
	}
	var maxName, maxData uint32
	seen := map[string]bool{}
	for _, o := range offs {
		if !c.ref(o, "value") {
			continue
		}
		v, err := f.vk(o)
		if err != nil {
			c.add(asFormat(err, o))
			continue
		}
		c.nameEncoding(o, "value", v.name, v.flags&valCompName != 0)
		up := unitsString(upcaseUnits(v.name))
		if seen[up] {
			c.cellf(o, "duplicate value name %q", unitsString(v.name))
		}
		seen[up] = true
		maxName = max(maxName, uint32(2*len(v.name)))
		n := v.dataLen &^ dataInline
		maxData = max(maxData, n)
		switch {
		case v.dataLen&dataInline != 0:
			if n > 4 {
				c.cellf(o, "inline value data length %d exceeds 4", n)
			}
		case n == 0:
			if v.dataOff != nilOff {
				c.cellf(o, "empty value data with a data offset 0x%x (want 0xffffffff)", v.dataOff)
			}
		case n <= 4:
			c.cellf(o, "value data of %d bytes in a cell (Windows stores ≤ 4 bytes inline)", n)
			c.dataCell(o, v, n)
		case f.Minor >= 4 && n > bigDataSegment:
			if c.ref(v.dataOff, "big data of value") {
				c.bigData(v.dataOff, n)
			}
		default:
			c.dataCell(o, v, n)
		}
	}
	if got := le.Uint32(k.rec[nkMaxValueName:]); got < maxName {
		c.cellf(k.off, "max value name length %d is below the longest value name (%d bytes)", got, maxName)
	}
	if got := le.Uint32(k.rec[nkMaxValueData:]); got < maxData {
		c.cellf(k.off, "max value data length %d is below the longest value data (%d bytes)", got, maxData)
	}
}

func (c *checker) dataCell(o uint32, v *rawValue, n uint32) {
	if !c.ref(v.dataOff, "data of value") {
		return
	}
	if _, err := c.f.valueData(o, v); err != nil {
		c.add(asFormat(err, o))
	}
}

func (c *checker) bigData(off, n uint32) {
	segs, err := c.f.bigSegments(off, n)
	if err != nil {
		c.add(asFormat(err, off))
		return
	}
	b, _ := c.f.cell(off)
	if !c.ref(le.Uint32(b[4:]), "db segment list") {
		return
	}
	for i, s := range segs {
		if !c.ref(s, "db segment") {
			continue
		}
		sb, _ := c.f.cell(s)
		want := uint32(bigDataSegment)
		if i == len(segs)-1 {
			want = n - uint32(i)*bigDataSegment
		}
		if uint32(len(sb)) < want {
			c.cellf(s, "big data segment %d of %d bytes, needs %d", i, len(sb), want)
		}
	}
}

// securityList checks the circular sk list from the root's sk and the
// reference counts.
func (c *checker) securityList(start uint32) {
	f := c.f
	if _, err := f.sk(start); err != nil {
		return
	}
	inList := map[uint32]bool{}
	cur := start
	for steps := 0; ; steps++ {
		if steps > len(c.alloc) {
			c.cellf(start, "security cell list does not return to its start")
			break
		}
		inList[cur] = true
		b, _ := f.sk(cur)
		next := le.Uint32(b[skFlink:])
		nb, err := f.sk(next)
		if err != nil {
			c.cellf(cur, "security cell Flink 0x%x is not an sk cell", next+baseBlockSize)
			break
		}
		if back := le.Uint32(nb[skBlink:]); back != cur {
			c.cellf(next, "security cell Blink 0x%x, want 0x%x", back+baseBlockSize, cur+baseBlockSize)
		}
		if next == start {
			break
		}
		if inList[next] {
			c.cellf(next, "security cell list loops without returning to its start")
			break
		}
		cur = next
	}
	offs := make([]uint32, 0, len(inList))
	for o := range inList {
		offs = append(offs, o)
	}
	for o := range c.skRef {
		if !inList[o] {
			c.cellf(o, "security cell used by keys is not in the security list")
			offs = append(offs, o)
		}
	}
	for _, o := range offs {
		c.used[o] = true
		b, _ := f.sk(o)
		if got, want := le.Uint32(b[skRefs:]), c.skRef[o]; int(got) != want {
			c.cellf(o, "security cell reference count %d, but %d keys use it", got, want)
		}
		if !validSD(b[skDesc : skDesc+le.Uint32(b[skDescLen:])]) {
			c.cellf(o, "security descriptor is not a self-relative revision 1 descriptor")
		}
	}
}

// validSD is a minimal SeValidSecurityDescriptor: a self-relative
// revision 1 descriptor whose owner, group and ACL offsets lie inside it.
func validSD(d []byte) bool {
	if len(d) < 20 || d[0] != 1 || le.Uint16(d[2:])&0x8000 == 0 {
		return false
	}
	for i := 4; i < 20; i += 4 {
		if o := le.Uint32(d[i:]); o != 0 && (o < 20 || o >= uint32(len(d))) {
			return false
		}
	}
	return true
}
