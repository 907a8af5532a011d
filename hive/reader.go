package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

var le = binary.LittleEndian

// A Header is the decoded base block of a hive.
type Header struct {
	Seq1, Seq2   uint32    // primary and secondary sequence numbers; equal in a clean hive
	LastWritten  time.Time // base block timestamp
	Major, Minor uint32    // format version, 1.3 or 1.5 on Windows XP
	Type         uint32    // 0 for a primary hive file
	Format       uint32    // 1
	Root         uint32    // offset of the root key cell in the hive bins data
	Length       uint32    // size of the hive bins data
	Cluster      uint32    // clustering factor, 1
	Checksum     uint32    // stored checksum of the first 508 bytes
}

// Dirty reports whether the sequence numbers differ.
func (h *Header) Dirty() bool { return h.Seq1 != h.Seq2 }

// A File is a read-only hive. Its methods may be called concurrently.
type File struct {
	Header
	base   []byte   // the 4 KiB base block
	data   []byte   // the hive bins data (Length bytes)
	binOf  []uint32 // per 4 KiB page of data: offset of the bin holding it
	closer io.Closer
}

// Open opens the hive file at path for reading.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	f, err := NewFile(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.closer = fh
	return f, nil
}

// Close closes the file opened by Open; it does nothing for NewFile.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// NewFile reads a hive of the given size from r. It checks the base block
// (signature, version, checksum) and the hive bin headers; keys, values
// and lists are checked when they are read. A dirty hive (sequence numbers
// differ) is opened; see Header.Dirty.
func NewFile(r io.ReaderAt, size int64) (*File, error) {
	base := make([]byte, baseBlockSize)
	if size < baseBlockSize {
		return nil, fileErr(0, "file of %d bytes is shorter than the base block", size)
	}
	if _, err := r.ReadAt(base, 0); err != nil {
		return nil, fmt.Errorf("hive: reading base block: %w", err)
	}
	h, err := parseHeader(base)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) > size-baseBlockSize {
		return nil, fileErr(hdrLength, "hive bins data length 0x%x exceeds the file (0x%x bytes after the base block): truncated hive", h.Length, size-baseBlockSize)
	}
	data := heapBytes(int(h.Length))
	if _, err := r.ReadAt(data, baseBlockSize); err != nil {
		return nil, fmt.Errorf("hive: reading hive bins: %w", err)
	}
	return fileFromBytes(base, data)
}

// fileFromBytes is NewFile over a base block and the hive bins data
// (Length bytes) already in memory; the File keeps both slices.
func fileFromBytes(base, data []byte) (*File, error) {
	h, err := parseHeader(base)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) != int64(len(data)) {
		return nil, fileErr(hdrLength, "hive bins data length 0x%x, have 0x%x bytes", h.Length, len(data))
	}
	f := &File{Header: *h, base: base, data: data}
	if err := f.mapBins(); err != nil {
		return nil, err
	}
	if _, err := f.nk(h.Root); err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	return f, nil
}

// checksum computes the base block checksum with Windows' fix-ups.
func checksum(base []byte) uint32 {
	x := rawChecksum(base)
	switch x {
	case 0:
		return 1
	case 0xFFFFFFFF:
		return 0xFFFFFFFE
	}
	return x
}

func rawChecksum(base []byte) uint32 {
	var x uint32
	for i := 0; i < checksumWords; i++ {
		x ^= le.Uint32(base[4*i:])
	}
	return x
}

func filetime(ft uint64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	return time.Unix(0, 0).Add(time.Duration(int64(ft-epochDiff)) * 100).UTC()
}

func toFiletime(t time.Time) uint64 {
	const epochDiff = 116444736000000000
	return uint64(t.UnixNano()/100) + epochDiff
}

func parseHeader(base []byte) (*Header, error) {
	if string(base[:4]) != "regf" {
		return nil, fileErr(0, "signature %q is not \"regf\"", base[:4])
	}
	h := &Header{
		Seq1:        le.Uint32(base[hdrSeq1:]),
		Seq2:        le.Uint32(base[hdrSeq2:]),
		LastWritten: filetime(le.Uint64(base[hdrTimestamp:])),
		Major:       le.Uint32(base[hdrMajor:]),
		Minor:       le.Uint32(base[hdrMinor:]),
		Type:        le.Uint32(base[hdrType:]),
		Format:      le.Uint32(base[hdrFormat:]),
		Root:        le.Uint32(base[hdrRoot:]),
		Length:      le.Uint32(base[hdrLength:]),
		Cluster:     le.Uint32(base[hdrCluster:]),
		Checksum:    le.Uint32(base[hdrChecksum:]),
	}
	if h.Major != 1 {
		return nil, fileErr(hdrMajor, "major version %d is not 1", h.Major)
	}
	if h.Minor < 1 || h.Minor > 6 {
		return nil, fileErr(hdrMinor, "minor version %d is not supported (1.1–1.6)", h.Minor)
	}
	if sum := checksum(base); sum != h.Checksum {
		return nil, &FormatError{Off: hdrChecksum, Msg: fmt.Sprintf("checksum 0x%08x, want 0x%08x", h.Checksum, sum), kind: ErrChecksum}
	}
	if h.Length%binAlign != 0 || h.Length == 0 {
		return nil, fileErr(hdrLength, "hive bins data length 0x%x is not a non-zero multiple of 4096", h.Length)
	}
	return h, nil
}

// mapBins checks the hbin headers and records which bin holds each page.
func (f *File) mapBins() error {
	f.binOf = make([]uint32, len(f.data)/binAlign)
	for off := uint32(0); off < uint32(len(f.data)); {
		if err := checkBinHeader(f.data, off); err != nil {
			return err
		}
		size := le.Uint32(f.data[off+binSize:])
		for p := off / binAlign; p < (off+size)/binAlign; p++ {
			f.binOf[p] = off
		}
		off += size
	}
	return nil
}

func checkBinHeader(data []byte, off uint32) error {
	b := data[off:]
	if string(b[:4]) != "hbin" {
		return cellErr(off, "hbin signature %q missing", b[:4])
	}
	if o := le.Uint32(b[binOffset:]); o != off {
		return cellErr(off, "hbin offset field 0x%x, want 0x%x", o, off)
	}
	size := le.Uint32(b[binSize:])
	if size < binAlign || size%binAlign != 0 {
		return cellErr(off, "hbin size 0x%x is not a non-zero multiple of 4096", size)
	}
	if uint64(size) > uint64(len(data))-uint64(off) {
		return cellErr(off, "hbin size 0x%x exceeds the hive bins data", size)
	}
	return nil
}

// binBounds returns the bin holding offset off.
func (f *File) binBounds(off uint32) (start, end uint32, ok bool) {
	if uint64(off) >= uint64(len(f.data)) {
		return 0, 0, false
	}
	start = f.binOf[off/binAlign]
	return start, start + le.Uint32(f.data[start+binSize:]), true
}

// cell returns the data of the allocated cell at off (after its size field).
func (f *File) cell(off uint32) ([]byte, error) {
	start, end, ok := f.binBounds(off)
	if !ok {
		return nil, cellErr(off, "cell offset outside the hive bins data (length 0x%x)", len(f.data))
	}
	if off < start+binHeaderSize || off%cellAlign != 0 || off+4 > end {
		return nil, cellErr(off, "cell offset is not a cell boundary")
	}
	size := int32(le.Uint32(f.data[off:]))
	if size >= 0 {
		return nil, cellErr(off, "cell is free (size 0x%x), expected an allocated cell", size)
	}
	n := uint32(-int64(size))
	if n < 8 || uint64(off)+uint64(n) > uint64(end) {
		return nil, cellErr(off, "cell size 0x%x exceeds its hbin (ends at 0x%x)", n, end)
	}
	return f.data[off+4 : off+n], nil
}

// A Key is a key (nk record) of a File.
type Key struct {
	f        *File
	off      uint32
	rec      []byte
	flags    uint16
	name     []uint16
	nsub     uint32
	nval     uint32
	subList  uint32
	valList  uint32
	sk       uint32
	classOff uint32
	classLen uint16
}

func (f *File) nk(off uint32) (*Key, error) {
	k, raw, comp, err := f.nkRecord(off)
	if err != nil {
		return nil, err
	}
	k.name = decodeName(raw, comp)
	return &k, nil
}

// nkRecord is nk without the decoded name, by value: the editor reads the
// lists, counts and class of thousands of keys in a bulk edit and needs
// neither a heap copy of each nor its name.
func (f *File) nkRecord(off uint32) (k Key, raw []byte, comp bool, err error) {
	b, raw, comp, err := f.nkName(off)
	if err != nil {
		return Key{}, nil, false, err
	}
	return Key{
		f: f, off: off, rec: b,
		flags:    le.Uint16(b[nkFlags:]),
		nsub:     le.Uint32(b[nkNumSubkeys:]),
		subList:  le.Uint32(b[nkSubkeys:]),
		nval:     le.Uint32(b[nkNumValues:]),
		valList:  le.Uint32(b[nkValues:]),
		sk:       le.Uint32(b[nkSecurity:]),
		classOff: le.Uint32(b[nkClass:]),
		classLen: le.Uint16(b[nkClassLen:]),
	}, raw, comp, nil
}

// nkName returns the nk cell at off and its stored name, checked as nk
// checks them, without decoding anything else: a lookup among a key's
// subkeys needs only their names.
func (f *File) nkName(off uint32) (cell, raw []byte, comp bool, err error) {
	b, err := f.cell(off)
	if err != nil {
		return nil, nil, false, err
	}
	if len(b) < nkName || string(b[:2]) != "nk" {
		return nil, nil, false, cellErr(off, "not a key (nk) cell")
	}
	nl := int(le.Uint16(b[nkNameLen:]))
	if nkName+nl > len(b) {
		return nil, nil, false, cellErr(off, "key name length %d exceeds the nk cell", nl)
	}
	comp = le.Uint16(b[nkFlags:])&keyCompName != 0
	if !comp && nl%2 != 0 {
		return nil, nil, false, cellErr(off, "UTF-16 key name has odd length %d", nl)
	}
	return b, b[nkName : nkName+nl], comp, nil
}

// Root returns the root key.
func (f *File) Root() (*Key, error) { return f.nk(f.Header.Root) }

// Name returns the key's name.
func (k *Key) Name() string { return unitsString(k.name) }

// ModTime returns the key's last-written timestamp.
func (k *Key) ModTime() time.Time { return filetime(le.Uint64(k.rec[nkTimestamp:])) }

// Flags returns the nk flags (0x4 root, 0x20 Latin-1 name, …).
func (k *Key) Flags() uint16 { return k.flags }

// NumSubkeys returns the subkey count stored in the key.
func (k *Key) NumSubkeys() int { return int(k.nsub) }

// NumValues returns the value count stored in the key.
func (k *Key) NumValues() int { return int(k.nval) }

// Offset returns the file offset of the key's cell.
func (k *Key) Offset() int64 { return int64(k.off) + baseBlockSize }

// Class returns the key's class name, or "" if it has none.
func (k *Key) Class() (string, error) {
	b, err := k.classBytes()
	if err != nil {
		return "", err
	}
	return unitsString(decodeName(b[:len(b)&^1], false)), nil
}

func (k *Key) classBytes() ([]byte, error) {
	if k.classLen == 0 || k.classOff == nilOff {
		return nil, nil
	}
	b, err := k.f.cell(k.classOff)
	if err != nil {
		return nil, fmt.Errorf("class name of key at 0x%x: %w", k.Offset(), err)
	}
	if int(k.classLen) > len(b) {
		return nil, cellErr(k.classOff, "class name length %d exceeds its cell", k.classLen)
	}
	return b[:k.classLen], nil
}

// SecurityDescriptor returns the key's self-relative security descriptor.
func (k *Key) SecurityDescriptor() ([]byte, error) {
	sk, err := k.f.sk(k.sk)
	if err != nil {
		return nil, err
	}
	return slices.Clone(sk[skDesc : skDesc+le.Uint32(sk[skDescLen:])]), nil
}

// sk returns the checked sk cell at off.
func (f *File) sk(off uint32) ([]byte, error) {
	b, err := f.cell(off)
	if err != nil {
		return nil, err
	}
	if len(b) < skDesc || string(b[:2]) != "sk" {
		return nil, cellErr(off, "not a security (sk) cell")
	}
	if n := le.Uint32(b[skDescLen:]); uint64(n) > uint64(len(b)-skDesc) {
		return nil, cellErr(off, "security descriptor length %d exceeds the sk cell", n)
	}
	return b, nil
}

// subkeyOffsets returns the nk offsets listed by the subkey list at off, in
// list order, and the leaf cells visited.
func (f *File) subkeyOffsets(off uint32, inRoot bool, out []uint32) ([]uint32, error) {
	b, err := f.cell(off)
	if err != nil {
		return out, err
	}
	if len(b) < 4 {
		return out, cellErr(off, "subkey list cell too small")
	}
	n := int(le.Uint16(b[2:]))
	sig := string(b[:2])
	width := 8
	switch sig {
	case "li", "ri":
		width = 4
	case "lf", "lh":
	default:
		return out, cellErr(off, "subkey list signature %q is not lf, lh, li or ri", b[:2])
	}
	if 4+n*width > len(b) {
		return out, cellErr(off, "%s list of %d entries exceeds its cell (%d bytes)", sig, n, len(b))
	}
	var leaves map[uint32]bool
	for i := 0; i < n; i++ {
		e := le.Uint32(b[4+i*width:])
		if sig == "ri" {
			if inRoot {
				return out, cellErr(off, "ri list inside an ri list")
			}
			if leaves == nil {
				leaves = map[uint32]bool{}
			}
			if leaves[e] {
				return out, cellErr(off, "ri list names the leaf at 0x%x twice", e+baseBlockSize)
			}
			leaves[e] = true
			out, err = f.subkeyOffsets(e, true, out)
			if err != nil {
				return out, err
			}
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Subkeys returns the key's subkeys in list (sorted) order.
func (k *Key) Subkeys() ([]*Key, error) {
	offs, err := k.subkeyOffs()
	if err != nil {
		return nil, err
	}
	keys := make([]*Key, 0, len(offs))
	for _, o := range offs {
		c, err := k.f.nk(o)
		if err != nil {
			return nil, err
		}
		keys = append(keys, c)
	}
	return keys, nil
}

// subkeyOffs returns the nk offsets of the key's subkey list, in list
// order.
func (k *Key) subkeyOffs() ([]uint32, error) {
	if k.nsub == 0 && k.subList == nilOff {
		return nil, nil
	}
	if k.subList == nilOff {
		return nil, fmt.Errorf("key at 0x%x: %d subkeys but no list: %w", k.Offset(), k.nsub, ErrFormat)
	}
	return k.f.subkeyOffsets(k.subList, false, nil)
}

// Subkey returns the subkey with the given name (compared as Windows does,
// case-insensitively), or an error matching ErrNotFound.
func (k *Key) Subkey(name string) (*Key, error) {
	subs, err := k.Subkeys()
	if err != nil {
		return nil, err
	}
	u := toUnits(name)
	for _, s := range subs {
		if compareNames(s.name, u) == 0 {
			return s, nil
		}
	}
	return nil, fmt.Errorf("key %q: %w", name, ErrNotFound)
}

// Key returns the key at a backslash-separated path from the root ("" or
// `\` is the root).
func (f *File) Key(path string) (*Key, error) {
	k, err := f.Root()
	if err != nil {
		return nil, err
	}
	for _, p := range splitPath(path) {
		if k, err = k.Subkey(p); err != nil {
			if isNotFound(err) {
				return nil, fmt.Errorf("key %q: %w", path, ErrNotFound)
			}
			return nil, err
		}
	}
	return k, nil
}

// A Value is a named, typed value of a key. Data is the raw value data.
type Value struct {
	Name string
	Type ValueType
	Data []byte
}

func (f *File) valueOffsets(k *Key) ([]uint32, error) {
	if k.nval == 0 {
		return nil, nil
	}
	b, err := f.cell(k.valList)
	if err != nil {
		return nil, fmt.Errorf("value list of key at 0x%x: %w", k.Offset(), err)
	}
	if uint64(k.nval)*4 > uint64(len(b)) {
		return nil, cellErr(k.valList, "value list of %d entries exceeds its cell (%d bytes)", k.nval, len(b))
	}
	offs := make([]uint32, k.nval)
	for i := range offs {
		offs[i] = le.Uint32(b[4*i:])
	}
	if hasDuplicate(offs) {
		return nil, cellErr(k.valList, "value list names a value cell twice")
	}
	return offs, nil
}

// rawValue is a decoded vk record.
type rawValue struct {
	name    []uint16
	rawName []byte
	flags   uint16
	typ     uint32
	dataLen uint32 // as stored, with the inline bit
	dataOff uint32
}

func (f *File) vk(off uint32) (*rawValue, error) {
	b, err := f.cell(off)
	if err != nil {
		return nil, err
	}
	if len(b) < vkName || string(b[:2]) != "vk" {
		return nil, cellErr(off, "not a value (vk) cell")
	}
	v := &rawValue{
		flags:   le.Uint16(b[vkFlags:]),
		typ:     le.Uint32(b[vkType:]),
		dataLen: le.Uint32(b[vkDataLen:]),
		dataOff: le.Uint32(b[vkData:]),
	}
	nl := int(le.Uint16(b[vkNameLen:]))
	if vkName+nl > len(b) {
		return nil, cellErr(off, "value name length %d exceeds the vk cell", nl)
	}
	comp := v.flags&valCompName != 0
	if !comp && nl%2 != 0 {
		return nil, cellErr(off, "UTF-16 value name has odd length %d", nl)
	}
	v.rawName = b[vkName : vkName+nl]
	v.name = decodeName(v.rawName, comp)
	return v, nil
}

// valueData returns a copy of the data of the vk at off.
func (f *File) valueData(off uint32, v *rawValue) ([]byte, error) {
	d, err := f.valueDataShared(off, v)
	if err != nil {
		return nil, err
	}
	return append([]byte{}, d...), nil
}

// valueDataShared is valueData without the copy: the result may alias the
// file's buffer and must not be modified.
func (f *File) valueDataShared(off uint32, v *rawValue) ([]byte, error) {
	n := v.dataLen &^ dataInline
	if v.dataLen&dataInline != 0 {
		if n > 4 {
			return nil, cellErr(off, "inline value data length %d exceeds 4", n)
		}
		return le.AppendUint32(nil, v.dataOff)[:n], nil
	}
	if n == 0 {
		return []byte{}, nil
	}
	if f.Minor >= 4 && n > bigDataSegment {
		return f.bigData(off, v.dataOff, n)
	}
	b, err := f.cell(v.dataOff)
	if err != nil {
		return nil, fmt.Errorf("data of value at 0x%x: %w", int64(off)+baseBlockSize, err)
	}
	if uint64(n) > uint64(len(b)) {
		return nil, cellErr(v.dataOff, "value data length %d exceeds its cell (%d bytes)", n, len(b))
	}
	return b[:n:n], nil
}

// bigData reads a db big-data record: segment list of cells of 16344 bytes.
func (f *File) bigData(vkOff, off, n uint32) ([]byte, error) {
	segs, err := f.bigSegments(off, n)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, n)
	for _, s := range segs {
		b, _ := f.cell(s)
		take := min(uint32(len(b)), bigDataSegment, n-uint32(len(out)))
		out = append(out, b[:take]...)
	}
	if uint32(len(out)) != n {
		return nil, cellErr(off, "big data segments hold %d bytes, value length %d", len(out), n)
	}
	return out, nil
}

// bigSegments checks a db record and returns the offsets of its segments.
func (f *File) bigSegments(off, n uint32) ([]uint32, error) {
	b, err := f.cell(off)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 || string(b[:2]) != "db" {
		return nil, cellErr(off, "value of %d bytes in a 1.%d hive needs a db big-data cell", n, f.Minor)
	}
	count := uint32(le.Uint16(b[2:]))
	if want := (n + bigDataSegment - 1) / bigDataSegment; count != want {
		return nil, cellErr(off, "db record has %d segments, %d bytes need %d", count, n, want)
	}
	listOff := le.Uint32(b[4:])
	lb, err := f.cell(listOff)
	if err != nil {
		return nil, fmt.Errorf("db segment list: %w", err)
	}
	if uint64(count)*4 > uint64(len(lb)) {
		return nil, cellErr(listOff, "db segment list of %d entries exceeds its cell", count)
	}
	segs := make([]uint32, count)
	seen := make(map[uint32]bool, count)
	for i := range segs {
		segs[i] = le.Uint32(lb[4*i:])
		if _, err := f.cell(segs[i]); err != nil {
			return nil, fmt.Errorf("db segment %d: %w", i, err)
		}
		if seen[segs[i]] {
			return nil, cellErr(listOff, "db segment list names the cell at 0x%x twice", segs[i]+baseBlockSize)
		}
		seen[segs[i]] = true
	}
	return segs, nil
}

// Values returns the key's values in list order.
func (k *Key) Values() ([]*Value, error) {
	offs, err := k.f.valueOffsets(k)
	if err != nil {
		return nil, err
	}
	vals := make([]*Value, 0, len(offs))
	for _, o := range offs {
		rv, err := k.f.vk(o)
		if err != nil {
			return nil, err
		}
		d, err := k.f.valueData(o, rv)
		if err != nil {
			return nil, err
		}
		vals = append(vals, &Value{Name: unitsString(rv.name), Type: ValueType(rv.typ), Data: d})
	}
	return vals, nil
}

// Value returns the value with the given name ("" is the default value),
// or an error matching ErrNotFound.
func (k *Key) Value(name string) (*Value, error) {
	vals, err := k.Values()
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		if EqualNames(v.Name, name) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("value %q: %w", name, ErrNotFound)
}

// Walk calls fn for every key of the tree in depth-first, list order,
// with its path from the root (the root's path is ""). A key reached twice
// (a cycle or a shared cell) stops the walk with a FormatError. If fn
// returns SkipKey the key's subkeys are not visited.
func (f *File) Walk(fn func(path string, k *Key) error) error {
	root, err := f.Root()
	if err != nil {
		return err
	}
	return f.WalkFrom("", root, fn)
}

// WalkFrom is Walk starting at key k with path p.
func (f *File) WalkFrom(p string, k *Key, fn func(path string, k *Key) error) error {
	seen := map[uint32]bool{}
	var walk func(p string, k *Key) error
	walk = func(p string, k *Key) error {
		if seen[k.off] {
			return cellErr(k.off, "key reached twice while walking the tree (cycle)")
		}
		seen[k.off] = true
		if err := fn(p, k); err != nil {
			if err == SkipKey {
				return nil
			}
			return err
		}
		subs, err := k.Subkeys()
		if err != nil {
			return err
		}
		for _, s := range subs {
			sp := s.Name()
			if p != "" {
				sp = p + `\` + sp
			}
			if err := walk(sp, s); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(p, k)
}

// SkipKey is returned by a Walk callback to skip a key's subkeys.
var SkipKey = errors.New("hive: skip key")

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// hasDuplicate reports whether offs holds a value twice.
func hasDuplicate(offs []uint32) bool {
	if len(offs) <= 16 {
		for i := range offs {
			for j := i + 1; j < len(offs); j++ {
				if offs[i] == offs[j] {
					return true
				}
			}
		}
		return false
	}
	s := slices.Clone(offs)
	slices.Sort(s)
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return true
		}
	}
	return false
}
