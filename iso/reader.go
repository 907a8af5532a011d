package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// Reader is an open ISO 9660 image.
type Reader struct {
	r    io.ReaderAt
	size int64
	name string

	// Primary is the primary volume descriptor's summary.
	Primary Volume
	// Joliet is the Joliet supplementary descriptor's summary, nil when the
	// image has none.
	Joliet *Volume
	// Boot is the El Torito boot catalog, nil when the image has none.
	Boot *BootCatalog

	root   record // root of the tree names are read from
	joliet bool   // root is the Joliet tree
}

// budget bounds the directory records and bytes one operation (a lookup,
// a walk) decodes, so that directories shared by many parents cannot make
// a small image cost unbounded time.
type budget struct {
	entries int
	bytes   int64
}

// Volume summarises a primary or Joliet volume descriptor.
type Volume struct {
	SystemID    string    `json:"system_id,omitempty"`
	VolumeID    string    `json:"volume_id"`
	VolumeSetID string    `json:"volume_set_id,omitempty"`
	Publisher   string    `json:"publisher,omitempty"`
	Preparer    string    `json:"preparer,omitempty"`
	Application string    `json:"application,omitempty"`
	Blocks      uint32    `json:"blocks"` // volume space size in sectors
	Created     time.Time `json:"created"`
	Modified    time.Time `json:"modified"`
	// Level is the Joliet UCS-2 level (1–3), 0 for the primary volume.
	Level int `json:"joliet_level,omitempty"`
}

// BootCatalog is a decoded El Torito boot catalog.
type BootCatalog struct {
	// Sector is the catalog's sector (from the boot record).
	Sector uint32 `json:"sector"`
	// Platform is the validation entry's platform: 0 x86, 1 PowerPC, 2 Mac,
	// 0xEF EFI.
	Platform byte   `json:"platform"`
	ID       string `json:"id,omitempty"`
	// Entries are the default entry first, then every section entry.
	Entries []BootEntry `json:"entries"`
}

// BootEntry is one initial/default or section entry of a boot catalog.
type BootEntry struct {
	Bootable bool `json:"bootable"`
	// Media is the emulation type, MediaNoEmulation for Windows CDs.
	Media byte `json:"media"`
	// LoadSegment is where the BIOS loads the image; 0 means 0x07C0.
	LoadSegment uint16 `json:"load_segment"`
	SystemType  byte   `json:"system_type"`
	// SectorCount is the number of 512-byte virtual sectors loaded (the
	// mkisofs -boot-load-size).
	SectorCount uint16 `json:"sector_count"`
	// LoadRBA is the image's first 2048-byte sector.
	LoadRBA uint32 `json:"load_rba"`
	// Platform is the platform of the section this entry belongs to.
	Platform byte `json:"platform"`
}

// record is a decoded directory record.
type record struct {
	name    string
	extents []extent // several only for multi-extent files
	size    int64
	flags   byte
	mtime   time.Time
	off     int64 // byte offset of the record in the image, for messages
}

type extent struct {
	lba  uint32
	size uint32
}

func (r record) isDir() bool { return r.flags&flagDir != 0 }

// Open opens the ISO image at path. Close releases it.
func Open(path string) (*ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := newReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &ReadCloser{Reader: r, f: f}, nil
}

// ReadCloser is a Reader that owns its file.
type ReadCloser struct {
	*Reader
	f *os.File
}

// Close closes the image file.
func (rc *ReadCloser) Close() error { return rc.f.Close() }

// NewReader reads the image of size bytes from r.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) { return newReader(r, size, "") }

// NewNamedReader is NewReader with a name that error messages carry.
func NewNamedReader(r io.ReaderAt, size int64, name string) (*Reader, error) {
	return newReader(r, size, name)
}

func newReader(r io.ReaderAt, size int64, name string) (*Reader, error) {
	x := &Reader{r: r, size: size, name: name}
	if size < (firstDescriptor+1)*SectorSize {
		return nil, x.wrapNotISO(fmt.Errorf("%d bytes is too small for a volume descriptor at sector 16", size))
	}
	var (
		havePrimary bool
		primaryRoot record
		jolietRoot  *record
		bootSector  int64 = -1
	)
	buf := make([]byte, SectorSize)
	for i := 0; ; i++ {
		off := int64(firstDescriptor+i) * SectorSize
		if i >= maxDescriptors {
			return nil, x.errf(off, "no volume descriptor set terminator in the first %d descriptors", maxDescriptors)
		}
		if off+SectorSize > size {
			if !havePrimary {
				return nil, x.wrapNotISO(nil)
			}
			return nil, x.errf(off, "volume descriptor set runs past the end of the image (%d bytes) without a terminator", size)
		}
		if err := x.readFull(buf, off); err != nil {
			return nil, err
		}
		if string(buf[1:6]) != "CD001" {
			if i == 0 {
				return nil, x.wrapNotISO(nil)
			}
			return nil, x.errf(off+1, "volume descriptor %d has identifier %q, want \"CD001\"", i, buf[1:6])
		}
		switch buf[0] {
		case vdTerminator:
			if !havePrimary {
				return nil, x.errf(off, "descriptor set ends without a primary volume descriptor")
			}
			x.root = primaryRoot
			if jolietRoot != nil {
				x.root, x.joliet = *jolietRoot, true
			}
			if bootSector >= 0 {
				bc, err := x.readCatalog(uint32(bootSector))
				if err != nil {
					return nil, err
				}
				x.Boot = bc
			}
			return x, nil
		case vdPrimary:
			if havePrimary {
				continue // later copies are ignored, as Linux does
			}
			v, root, err := x.parseVolume(buf, off, 0)
			if err != nil {
				return nil, err
			}
			x.Primary, primaryRoot, havePrimary = v, root, true
		case vdSupplementary:
			level := jolietLevel(buf[88:120])
			if level == 0 || jolietRoot != nil {
				continue // not Joliet (or a second one): not ours to read
			}
			v, root, err := x.parseVolume(buf, off, level)
			if err != nil {
				return nil, err
			}
			x.Joliet, jolietRoot = &v, &root
		case vdBoot:
			if strings.TrimRight(string(buf[7:39]), "\x00") == elToritoID && bootSector < 0 {
				bootSector = int64(binary.LittleEndian.Uint32(buf[71:75]))
			}
		}
	}
}

func (x *Reader) wrapNotISO(detail error) error {
	prefix := "iso: "
	if x.name != "" {
		prefix += x.name + ": "
	}
	if detail != nil {
		return fmt.Errorf("%s%w: %v", prefix, ErrNotISO, detail)
	}
	return fmt.Errorf("%s%w", prefix, ErrNotISO)
}

func (x *Reader) errf(off int64, format string, a ...any) error {
	return &FormatError{File: x.name, Off: off, Msg: fmt.Sprintf(format, a...)}
}

// readFull reads len(b) bytes at off, which must lie inside the image.
func (x *Reader) readFull(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > x.size {
		return x.errf(off, "%d bytes at this offset lie beyond the end of the image (%d bytes)", len(b), x.size)
	}
	n, err := x.r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("iso: %s: read %d bytes at 0x%x: %w", x.name, len(b), off, err)
}

// jolietLevel recognises the Joliet escape sequences %/@, %/C and %/E.
func jolietLevel(esc []byte) int {
	if len(esc) < 3 || esc[0] != '%' || esc[1] != '/' {
		return 0
	}
	switch esc[2] {
	case '@':
		return 1
	case 'C':
		return 2
	case 'E':
		return 3
	}
	return 0
}

func (x *Reader) parseVolume(b []byte, off int64, level int) (Volume, record, error) {
	le := binary.LittleEndian
	if bs := le.Uint16(b[128:]); bs != SectorSize {
		return Volume{}, record{}, x.errf(off+128, "logical block size %d; only %d is supported", bs, SectorSize)
	}
	str := func(s []byte) string {
		if level > 0 {
			return strings.TrimRight(decodeUCS2(s), " \x00")
		}
		return strings.TrimRight(string(s), " \x00")
	}
	v := Volume{
		SystemID: str(b[8:40]), VolumeID: str(b[40:72]),
		VolumeSetID: str(b[190:318]), Publisher: str(b[318:446]), Preparer: str(b[446:574]), Application: str(b[574:702]),
		Blocks:  le.Uint32(b[80:]),
		Created: decodeVolTime(b[813:830]), Modified: decodeVolTime(b[830:847]),
		Level: level,
	}
	recs, err := x.parseRecords(b[156:190], off+156, level > 0, true, &budget{})
	if err != nil {
		return Volume{}, record{}, err
	}
	if len(recs) != 1 || !recs[0].isDir() {
		return Volume{}, record{}, x.errf(off+156, "root directory record is not a directory")
	}
	return v, recs[0], nil
}

// decodeUCS2 decodes big-endian UCS-2 (UTF-16 surrogates tolerated).
func decodeUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// parseRecords decodes the directory records in b (the bytes of one
// directory's extents, starting at image offset off). Records do not cross
// sector boundaries; a zero length byte skips to the next sector.
func (x *Reader) parseRecords(b []byte, off int64, joliet, rootOnly bool, bud *budget) ([]record, error) {
	le := binary.LittleEndian
	var out []record
	var pending *record // multi-extent file being assembled
	for i := 0; i < len(b); {
		n := int(b[i])
		if n == 0 {
			if rootOnly {
				break
			}
			i = (i/SectorSize + 1) * SectorSize
			continue
		}
		at := off + int64(i)
		if n < 34 || i+n > len(b) {
			return nil, x.errf(at, "directory record of %d bytes (minimum 34, %d left in the directory)", n, len(b)-i)
		}
		if !rootOnly && i/SectorSize != (i+n-1)/SectorSize {
			return nil, x.errf(at, "directory record of %d bytes crosses a sector boundary", n)
		}
		r := b[i : i+n]
		nameLen := int(r[32])
		if 33+nameLen > n {
			return nil, x.errf(at, "file identifier of %d bytes exceeds the %d-byte record", nameLen, n)
		}
		bud.entries++
		if bud.entries > maxEntries {
			return nil, x.errf(at, "more than %d directory records", maxEntries)
		}
		lba, size := le.Uint32(r[2:]), le.Uint32(r[10:])
		rec := record{extents: []extent{{lba, size}}, size: int64(size), flags: r[25], mtime: decodeRecTime(r[18:25]), off: at}
		id := r[33 : 33+nameLen]
		switch {
		case nameLen == 1 && id[0] == 0:
			rec.name = "."
		case nameLen == 1 && id[0] == 1:
			rec.name = ".."
		case joliet:
			if nameLen%2 != 0 {
				return nil, x.errf(at+33, "Joliet identifier of odd length %d", nameLen)
			}
			rec.name = decodeUCS2(id)
		default:
			rec.name = string(id)
		}
		if !rec.isDir() && rec.name != "." && rec.name != ".." {
			rec.name = cleanFileID(rec.name)
		}
		if size > 0 && (int64(lba)+(int64(size)+SectorSize-1)/SectorSize)*SectorSize > x.size {
			return nil, x.errf(at+2, "%q: extent at sector %d of %d bytes lies beyond the end of the image (%d bytes)", rec.name, lba, size, x.size)
		}
		if pending != nil {
			if !strings.EqualFold(pending.name, rec.name) {
				return nil, x.errf(at, "multi-extent file %q is followed by %q instead of its next extent", pending.name, rec.name)
			}
			pending.extents = append(pending.extents, rec.extents[0])
			pending.size += rec.size
			if rec.flags&flagMultiExtnt == 0 {
				out = append(out, *pending)
				pending = nil
			}
		} else if rec.flags&flagMultiExtnt != 0 && !rec.isDir() {
			pending = &rec
		} else {
			out = append(out, rec)
		}
		i += n
		if rootOnly {
			break
		}
	}
	if pending != nil {
		return nil, x.errf(pending.off, "multi-extent file %q has no final extent", pending.name)
	}
	return out, nil
}

// cleanFileID drops the ";N" version and the lone trailing dot of an
// extension-less ISO 9660 file identifier ("README.;1" → "README").
func cleanFileID(s string) string {
	if i := strings.LastIndexByte(s, ';'); i >= 0 {
		ver := s[i+1:]
		digits := ver != ""
		for _, c := range ver {
			if c < '0' || c > '9' {
				digits = false
			}
		}
		if digits {
			s = s[:i]
		}
	}
	if strings.HasSuffix(s, ".") && len(s) > 1 {
		s = s[:len(s)-1]
	}
	return s
}

// readDir returns the entries of directory d, without "." and "..",
// in on-disc order.
func (x *Reader) readDir(d record, bud *budget) ([]record, error) {
	if len(d.extents) != 1 {
		return nil, x.errf(d.off, "directory %q has %d extents", d.name, len(d.extents))
	}
	e := d.extents[0]
	if e.size == 0 {
		return nil, nil
	}
	off := int64(e.lba) * SectorSize
	if e.size > 64<<20 || off+int64(e.size) > x.size {
		return nil, x.errf(d.off, "directory %q of %d bytes at sector %d does not fit the image (%d bytes)", d.name, e.size, e.lba, x.size)
	}
	// Each directory of a sound image is read once per walk, so a walk
	// that reads more directory bytes than the image holds is going round
	// directories shared by several parents.
	bud.bytes += int64(e.size)
	if bud.bytes > x.size {
		return nil, x.errf(d.off, "more directory bytes read than the image holds (%d): directories shared by several parents", x.size)
	}
	b := make([]byte, e.size)
	if err := x.readFull(b, off); err != nil {
		return nil, err
	}
	recs, err := x.parseRecords(b, off, x.joliet, false, bud)
	if err != nil {
		return nil, err
	}
	out := recs[:0]
	for _, r := range recs {
		if r.name == "." || r.name == ".." {
			continue
		}
		if r.flags&flagHidden != 0 && r.isDir() {
			continue // associated/hidden directories carry no files of ours
		}
		out = append(out, r)
	}
	return out, nil
}

// lookup finds the record at the slash-separated path p, matching each
// element case-insensitively (an exact match wins).
func (x *Reader) lookup(p string) (record, error) {
	p = strings.Trim(path.Clean("/"+strings.ReplaceAll(p, `\`, "/")), "/")
	cur := x.root
	cur.name = "/"
	if p == "" {
		return cur, nil
	}
	elems := strings.Split(p, "/")
	if len(elems) > maxDepth {
		return record{}, fmt.Errorf("%s: path nested deeper than %d", p, maxDepth)
	}
	bud := &budget{}
	for i, el := range elems {
		if !cur.isDir() {
			return record{}, fmt.Errorf("%s: %s is not a directory", p, strings.Join(elems[:i], "/"))
		}
		ents, err := x.readDir(cur, bud)
		if err != nil {
			return record{}, err
		}
		found := -1
		for j, e := range ents {
			if e.name == el {
				found = j
				break
			}
			if found < 0 && strings.EqualFold(e.name, el) {
				found = j
			}
		}
		if found < 0 {
			return record{}, &fs.PathError{Op: "open", Path: "/" + p, Err: ErrNotExist}
		}
		cur = ents[found]
	}
	return cur, nil
}

// FileInfo describes a file or directory of the image.
type FileInfo struct {
	name  string
	size  int64
	dir   bool
	mtime time.Time
}

// Name is the entry's name (Joliet when the image has Joliet names).
func (fi FileInfo) Name() string { return fi.name }

// Size is the file's length in bytes; for a directory, its records' length.
func (fi FileInfo) Size() int64 { return fi.size }

// IsDir reports a directory.
func (fi FileInfo) IsDir() bool { return fi.dir }

// ModTime is the recorded time.
func (fi FileInfo) ModTime() time.Time { return fi.mtime }

// Mode is a plain read-only mode.
func (fi FileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}

// Sys is nil.
func (fi FileInfo) Sys() any { return nil }

func info(r record) FileInfo {
	return FileInfo{name: r.name, size: r.size, dir: r.isDir(), mtime: r.mtime}
}

// Stat describes the file or directory at p ("/" is the root).
func (x *Reader) Stat(p string) (FileInfo, error) {
	r, err := x.lookup(p)
	if err != nil {
		return FileInfo{}, err
	}
	return info(r), nil
}

// ReadDir lists directory p sorted by name.
func (x *Reader) ReadDir(p string) ([]FileInfo, error) {
	r, err := x.lookup(p)
	if err != nil {
		return nil, err
	}
	if !r.isDir() {
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	ents, err := x.readDir(r, &budget{})
	if err != nil {
		return nil, err
	}
	out := make([]FileInfo, len(ents))
	for i, e := range ents {
		out[i] = info(e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// File is a file of the image opened for reading.
type File struct {
	FileInfo
	r io.ReaderAt
}

// ReadAt reads from the file's content.
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }

// Reader returns an io.Reader over the whole content.
func (f *File) Reader() io.Reader { return io.NewSectionReader(f.r, 0, f.size) }

// Open opens the file at p.
func (x *Reader) Open(p string) (*File, error) {
	r, err := x.lookup(p)
	if err != nil {
		return nil, err
	}
	if r.isDir() {
		return nil, fmt.Errorf("%s: is a directory", p)
	}
	return &File{FileInfo: info(r), r: x.content(r)}, nil
}

// content is the file's bytes: one section per extent.
func (x *Reader) content(r record) io.ReaderAt {
	if len(r.extents) == 1 {
		e := r.extents[0]
		return io.NewSectionReader(x.r, int64(e.lba)*SectorSize, int64(e.size))
	}
	var m multiReaderAt
	for _, e := range r.extents {
		m.parts = append(m.parts, io.NewSectionReader(x.r, int64(e.lba)*SectorSize, int64(e.size)))
	}
	return &m
}

type multiReaderAt struct{ parts []*io.SectionReader }

func (m *multiReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for _, s := range m.parts {
		if off >= s.Size() {
			off -= s.Size()
			continue
		}
		k, err := s.ReadAt(p[n:], off)
		n += k
		if n == len(p) {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		off = 0
	}
	return n, io.EOF
}

// WalkFunc is called by Walk for every entry below the root, parents
// before children, in name order. p is slash-separated without a leading
// slash.
type WalkFunc func(p string, fi FileInfo) error

// Walk visits every file and directory of the image. A directory whose
// extent is one of its ancestors' is an error (a loop), as is nesting
// deeper than 255 levels.
func (x *Reader) Walk(fn WalkFunc) error {
	return x.walkRecords(func(p string, r record) error { return fn(p, info(r)) })
}

func (x *Reader) walkRecords(fn func(p string, r record) error) error {
	return x.walk(x.root, "", 0, map[uint32]bool{x.root.extents[0].lba: true}, &budget{}, fn)
}

func (x *Reader) walk(d record, prefix string, depth int, open map[uint32]bool, bud *budget, fn func(string, record) error) error {
	if depth >= maxDepth {
		return x.errf(d.off, "directories nested deeper than %d levels at %q", maxDepth, prefix)
	}
	ents, err := x.readDir(d, bud)
	if err != nil {
		return err
	}
	sort.SliceStable(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	for i, e := range ents {
		if i > 0 && strings.EqualFold(e.name, ents[i-1].name) && e.isDir() == ents[i-1].isDir() && e.name == ents[i-1].name {
			return x.errf(e.off, "%q appears twice in directory %q", e.name, "/"+prefix)
		}
		p := e.name
		if prefix != "" {
			p = prefix + "/" + e.name
		}
		if strings.ContainsAny(e.name, "/\x00") || e.name == "" || e.name == "." || e.name == ".." {
			return x.errf(e.off, "unusable file name %q in directory %q", e.name, "/"+prefix)
		}
		if err := fn(p, e); err != nil {
			return err
		}
		if e.isDir() {
			lba := e.extents[0].lba
			if open[lba] {
				return x.errf(e.off, "directory %q points back at an enclosing directory (sector %d): a loop", p, lba)
			}
			open[lba] = true
			if err := x.walk(e, p, depth+1, open, bud, fn); err != nil {
				return err
			}
			delete(open, lba)
		}
	}
	return nil
}

// readCatalog decodes the El Torito boot catalog at sector lba.
func (x *Reader) readCatalog(lba uint32) (*BootCatalog, error) {
	off := int64(lba) * SectorSize
	b := make([]byte, SectorSize)
	if err := x.readFull(b, off); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if b[0] != 1 || b[30] != 0x55 || b[31] != 0xAA {
		return nil, x.errf(off, "boot catalog validation entry: header 0x%02x and key %02X %02X, want 0x01 and 55 AA", b[0], b[30], b[31])
	}
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += le.Uint16(b[i:])
	}
	if sum != 0 {
		return nil, x.errf(off, "boot catalog validation entry checksum does not sum to zero (0x%04x)", sum)
	}
	bc := &BootCatalog{Sector: lba, Platform: b[1], ID: strings.TrimRight(string(b[4:28]), "\x00 ")}
	entry := func(e []byte, platform byte) BootEntry {
		return BootEntry{Bootable: e[0] == 0x88, Media: e[1] & 0x0F, LoadSegment: le.Uint16(e[2:]), SystemType: e[4],
			SectorCount: le.Uint16(e[6:]), LoadRBA: le.Uint32(e[8:]), Platform: platform}
	}
	check := func(be BootEntry, at int64) error {
		if !be.Bootable {
			return nil
		}
		n := int64(be.SectorCount) * BootSectorSize
		if be.Media != MediaNoEmulation {
			n = BootSectorSize
		}
		if (int64(be.LoadRBA)*SectorSize)+n > x.size {
			return x.errf(at+8, "boot image at sector %d (%d bytes) lies beyond the end of the image", be.LoadRBA, n)
		}
		return nil
	}
	def := b[32:64]
	if def[0] != 0x88 && def[0] != 0x00 {
		return nil, x.errf(off+32, "default boot entry indicator 0x%02x, want 0x88 or 0x00", def[0])
	}
	be := entry(def, b[1])
	if err := check(be, off+32); err != nil {
		return nil, err
	}
	bc.Entries = append(bc.Entries, be)
	// Section headers (0x90 more follow, 0x91 last), each followed by its
	// entries and extensions (0x44), within this one sector.
	for i := 64; i+32 <= SectorSize; {
		h := b[i]
		if h != 0x90 && h != 0x91 {
			break
		}
		platform, count := b[i+1], int(le.Uint16(b[i+2:]))
		i += 32
		for k := 0; k < count; k++ {
			if i+32 > SectorSize {
				return nil, x.errf(off+int64(i), "boot catalog section runs past its sector")
			}
			e := b[i : i+32]
			if e[0] != 0x88 && e[0] != 0x00 {
				return nil, x.errf(off+int64(i), "section entry indicator 0x%02x, want 0x88 or 0x00", e[0])
			}
			be := entry(e, platform)
			if err := check(be, off+int64(i)); err != nil {
				return nil, err
			}
			bc.Entries = append(bc.Entries, be)
			i += 32
			for i+32 <= SectorSize && b[i] == 0x44 {
				i += 32
			}
		}
		if h == 0x91 {
			break
		}
	}
	return bc, nil
}

// BootImage returns the bytes the BIOS loads for entry e of the boot
// catalog: SectorCount virtual 512-byte sectors for no emulation (at least
// one), the whole floppy size for floppy emulation.
func (x *Reader) BootImage(e BootEntry) ([]byte, error) {
	n := int64(e.SectorCount) * BootSectorSize
	switch e.Media {
	case MediaNoEmulation:
		if n == 0 {
			n = BootSectorSize
		}
	case Media12Floppy:
		n = 1200 << 10
	case Media144Floppy:
		n = 1440 << 10
	case Media288Floppy:
		n = 2880 << 10
	default:
		return nil, fmt.Errorf("iso: %s: boot entry with media type %d: only no-emulation and floppy images can be extracted", x.name, e.Media)
	}
	b := make([]byte, n)
	if err := x.readFull(b, int64(e.LoadRBA)*SectorSize); err != nil {
		return nil, err
	}
	return b, nil
}

// HasJoliet reports whether names come from a Joliet tree.
func (x *Reader) HasJoliet() bool { return x.joliet }
