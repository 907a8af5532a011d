package iso

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// Options control Build.
type Options struct {
	// VolumeID is the primary volume identifier (upper-cased, at most 32
	// characters of A–Z, 0–9 and _); the Joliet one keeps its case and is
	// cut to 16. Empty gives "CDROM".
	VolumeID string
	// Time is the volume's creation and modification time. Zero uses the
	// newest ModTime in the tree, so an unchanged tree gives the same bytes.
	Time time.Time
	// FixedTime stamps every directory record with Time instead of the
	// entries' own times.
	FixedTime bool
	// Boot adds an El Torito boot catalog; nil makes a data CD.
	Boot *Boot
	// Progress, when set, is called with the bytes of file data written so
	// far and the total.
	Progress func(done, total int64)
}

// Boot is an El Torito no-emulation boot entry.
type Boot struct {
	// Image is the boot image's content, stored as a hidden extent unless
	// TreePath names a file of the tree holding the same bytes.
	Image []byte
	// TreePath is the slash-separated path of the boot image inside the
	// tree; the catalog then points at that file's extent, as mkisofs -b
	// does.
	TreePath string
	// LoadSize is the number of 512-byte sectors the BIOS loads
	// (mkisofs -boot-load-size); 0 means 4.
	LoadSize uint16
	// LoadSegment is where they are loaded; 0 means the BIOS default 0x07C0.
	LoadSegment uint16
	// Platform of the validation entry (0 for x86 BIOS).
	Platform byte
	// InfoTable patches a boot information table into bytes 8–63 of the
	// boot image as it is written, as mkisofs -boot-info-table does: the
	// primary volume descriptor's sector, the image's own sector, its
	// length and a checksum of its bytes from 64 on. ISOLINUX finds the
	// rest of itself on the CD through it. The image is held in memory
	// for the patch, so it may be at most MaxInfoTableImage bytes.
	InfoTable bool
}

// MaxInfoTableImage bounds a boot image patched with a boot information
// table (ISOLINUX is some 40 KiB).
const MaxInfoTableImage = 16 << 20

// Boot information table layout (mkisofs -boot-info-table): four
// little-endian 32-bit fields at byte 8 of the boot image, then 40
// reserved bytes; the checksum covers the image from byte 64 on.
const (
	infoTableOff  = 8
	infoTableEnd  = 64
	infoTableSize = infoTableEnd - infoTableOff
)

// patchInfoTable writes the boot information table into img, which is the
// whole boot image stored at sector lba.
func patchInfoTable(img []byte, lba uint32) error {
	if len(img) < infoTableEnd {
		return fmt.Errorf("boot image of %d bytes is too short for a boot information table (%d bytes)", len(img), infoTableEnd)
	}
	var sum uint32
	for i := infoTableEnd; i < len(img); i += 4 {
		var w [4]byte
		copy(w[:], img[i:])
		sum += binary.LittleEndian.Uint32(w[:])
	}
	t := img[infoTableOff:infoTableEnd]
	binary.LittleEndian.PutUint32(t[0:], firstDescriptor)
	binary.LittleEndian.PutUint32(t[4:], lba)
	binary.LittleEndian.PutUint32(t[8:], uint32(len(img)))
	binary.LittleEndian.PutUint32(t[12:], sum)
	clear(t[16:])
	return nil
}

// DefaultLoadSize is the El Torito sector count Windows CDs use (2048
// bytes of a 2048-byte boot image).
const DefaultLoadSize = 4

// Result describes a built image.
type Result struct {
	Bytes       int64  `json:"bytes"`
	Sectors     uint32 `json:"sectors"`
	Files       int    `json:"files"`
	Directories int    `json:"directories"`
	// BootSector is the boot image's first sector (0 without boot).
	BootSector uint32 `json:"boot_sector,omitempty"`
	BootLoad   uint16 `json:"boot_load_size,omitempty"`
}

// wnode is a tree node with its computed names and locations.
type wnode struct {
	*Node
	parent  *wnode
	kids    []*wnode // sorted by primary name
	jkids   []*wnode // sorted by Joliet name
	pname   string   // primary identifier as recorded
	jname   []byte   // Joliet identifier, UCS-2 BE
	lba     uint32   // file extent or primary directory extent
	jlba    uint32   // Joliet directory extent
	dsize   uint32   // primary directory size
	jdsize  uint32   // Joliet directory size
	pnum    uint16   // primary path table number
	jnum    uint16   // Joliet path table number
	relPath string
	mtime   time.Time
}

// Build writes tree as an ISO 9660 + Joliet image to out (see the package
// documentation). The image is written to a temporary file in out's
// directory and renamed to out once complete; on any error nothing is left
// at out (an existing file there is kept as it was).
func Build(tree *Node, out string, opts Options) (*Result, error) {
	l, err := layout(tree, opts)
	if err != nil {
		return nil, err
	}
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return nil, err
	}
	if err := l.write(f.File, opts.Progress); err != nil {
		f.Abort()
		return nil, fmt.Errorf("iso: %s: %w", out, err)
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	return l.result, nil
}

// WriteTo writes the image of tree to w (for callers that manage their
// own output file).
func WriteTo(tree *Node, w io.Writer, opts Options) (*Result, error) {
	l, err := layout(tree, opts)
	if err != nil {
		return nil, err
	}
	if err := l.write(w, opts.Progress); err != nil {
		return nil, err
	}
	return l.result, nil
}

type imageLayout struct {
	opts                 Options
	root                 *wnode
	dirs                 []*wnode // primary path table order
	jdirs                []*wnode // Joliet path table order
	files                []*wnode // data order
	volTime              time.Time
	volID                string
	jvolID               string
	bootRec              bool
	catLBA               uint32
	bootLBA              uint32 // hidden boot image extent (0: none / in tree)
	bootNode             *wnode
	ptL, ptM, jptL, jptM uint32
	ptSize, jptSize      uint32
	total                uint32
	totalData            int64
	result               *Result
}

func layout(tree *Node, opts Options) (*imageLayout, error) {
	if tree == nil || !tree.Dir {
		return nil, errors.New("iso: the tree's root is not a directory")
	}
	l := &imageLayout{opts: opts}
	l.root = &wnode{Node: tree}
	newest := time.Time{}
	var ndirs, nfiles int
	var build func(w *wnode, depth int) error
	build = func(w *wnode, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("iso: %s: nested deeper than %d levels", w.Path, maxDepth)
		}
		if w.ModTime.After(newest) {
			newest = w.ModTime
		}
		for _, c := range w.Children {
			if c.Name == "" || c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, "/\x00") {
				return fmt.Errorf("iso: %s: unusable file name %q", c.Path, c.Name)
			}
			k := &wnode{Node: c, parent: w}
			if w.relPath == "" {
				k.relPath = c.Name
			} else {
				k.relPath = w.relPath + "/" + c.Name
			}
			w.kids = append(w.kids, k)
			if c.Dir {
				ndirs++
				if err := build(k, depth+1); err != nil {
					return err
				}
			} else {
				nfiles++
				if c.Size < 0 || c.Size > 0xFFFFFFFF {
					return fmt.Errorf("iso: %s: %d bytes; files of 4 GiB and more need multi-extent records, which this writer does not make", c.Path, c.Size)
				}
				if c.Open == nil {
					return fmt.Errorf("iso: %s: no content", c.Path)
				}
				if c.ModTime.After(newest) {
					newest = c.ModTime
				}
			}
		}
		return nameChildren(w)
	}
	if err := build(l.root, 0); err != nil {
		return nil, err
	}
	if ndirs+1 > 0xFFFF {
		return nil, fmt.Errorf("iso: %d directories exceed the path table's 65535", ndirs+1)
	}
	l.volTime = opts.Time
	if l.volTime.IsZero() {
		l.volTime = newest
	}
	if l.volTime.IsZero() {
		l.volTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	l.volTime = l.volTime.UTC().Truncate(time.Second)
	var walkT func(w *wnode)
	walkT = func(w *wnode) {
		w.mtime = w.ModTime
		if opts.FixedTime || w.mtime.IsZero() {
			w.mtime = l.volTime
		}
		for _, k := range w.kids {
			walkT(k)
		}
	}
	walkT(l.root)
	l.volID, l.jvolID = volumeIDs(opts.VolumeID)

	// Path table order: breadth first, children by identifier.
	l.dirs = pathOrder(l.root, func(w *wnode) []*wnode { return w.kids })
	l.jdirs = pathOrder(l.root, func(w *wnode) []*wnode { return w.jkids })
	for i, d := range l.dirs {
		d.pnum = uint16(i + 1)
	}
	for i, d := range l.jdirs {
		d.jnum = uint16(i + 1)
	}
	for _, d := range l.dirs {
		d.dsize = dirSize(d.kids, func(k *wnode) int { return len(k.pname) })
		d.jdsize = dirSize(d.jkids, func(k *wnode) int { return len(k.jname) })
	}
	l.ptSize = pathTableSize(l.dirs, func(w *wnode) int { return len(w.pname) })
	l.jptSize = pathTableSize(l.jdirs, func(w *wnode) int { return len(w.jname) })

	// Sectors: 16 system area, PVD, [boot record], Joliet SVD, terminator.
	next := uint32(firstDescriptor + 3)
	if opts.Boot != nil {
		l.bootRec = true
		next++
		l.catLBA = next
		next++
	}
	alloc := func(n uint32) uint32 {
		at := next
		next += (n + SectorSize - 1) / SectorSize
		return at
	}
	l.ptL, l.ptM = alloc(l.ptSize), alloc(l.ptSize)
	l.jptL, l.jptM = alloc(l.jptSize), alloc(l.jptSize)
	for _, d := range l.dirs {
		d.lba = alloc(d.dsize)
	}
	for _, d := range l.jdirs {
		d.jlba = alloc(d.jdsize)
	}
	var boot *Boot
	if opts.Boot != nil {
		b := *opts.Boot
		boot = &b
		if boot.LoadSize == 0 {
			boot.LoadSize = DefaultLoadSize
		}
		if boot.TreePath != "" {
			n := findW(l.root, boot.TreePath)
			if n == nil || n.Dir {
				return nil, fmt.Errorf("iso: boot image %q is not a file of the tree", boot.TreePath)
			}
			if boot.InfoTable && (n.Size < infoTableEnd || n.Size > MaxInfoTableImage) {
				return nil, fmt.Errorf("iso: boot image %s: %d bytes; a boot information table needs %d to %d", n.Path, n.Size, infoTableEnd, MaxInfoTableImage)
			}
			l.bootNode = n
		} else {
			if boot.InfoTable && len(boot.Image) < infoTableEnd {
				return nil, fmt.Errorf("iso: boot image of %d bytes is too short for a boot information table (%d bytes)", len(boot.Image), infoTableEnd)
			}
			if len(boot.Image) == 0 {
				return nil, errors.New("iso: empty boot image")
			}
			l.bootLBA = alloc(uint32(len(boot.Image)))
		}
		l.opts.Boot = boot
	}
	// File data in path order of the primary tree.
	var files func(w *wnode)
	files = func(w *wnode) {
		for _, k := range w.kids {
			if k.Dir {
				files(k)
			} else {
				l.files = append(l.files, k)
			}
		}
	}
	files(l.root)
	sort.SliceStable(l.files, func(i, j int) bool { return l.files[i].relPath < l.files[j].relPath })
	for _, f := range l.files {
		if f.Size > 0 {
			f.lba = alloc(uint32(f.Size))
			l.totalData += f.Size
		}
	}
	if boot != nil && l.bootNode != nil {
		l.bootLBA = l.bootNode.lba
		if int64(boot.LoadSize)*BootSectorSize > (l.bootNode.Size+SectorSize-1)/SectorSize*SectorSize {
			return nil, fmt.Errorf("iso: boot image %s is %d bytes, less than the %d sectors of 512 bytes the BIOS is told to load", boot.TreePath, l.bootNode.Size, boot.LoadSize)
		}
	} else if boot != nil && int64(boot.LoadSize)*BootSectorSize > int64((len(boot.Image)+SectorSize-1)/SectorSize*SectorSize) {
		return nil, fmt.Errorf("iso: boot image of %d bytes is shorter than the %d sectors of 512 bytes the BIOS is told to load", len(boot.Image), boot.LoadSize)
	}
	l.total = next
	l.result = &Result{Bytes: int64(next) * SectorSize, Sectors: next, Files: nfiles, Directories: ndirs + 1}
	if boot != nil {
		l.result.BootSector, l.result.BootLoad = l.bootLBA, boot.LoadSize
	}
	return l, nil
}

func findW(root *wnode, p string) *wnode {
	cur := root
	for _, el := range strings.Split(strings.Trim(p, "/"), "/") {
		var next *wnode
		for _, k := range cur.kids {
			if k.Name == el {
				next = k
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// volumeIDs makes the primary (d-characters) and Joliet volume IDs.
func volumeIDs(s string) (string, string) {
	if s == "" {
		s = "CDROM"
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	p := b.String()
	if len(p) > 32 {
		p = p[:32]
	}
	j := []rune(s)
	if len(j) > 16 {
		j = j[:16]
	}
	return p, string(j)
}

// nameChildren gives w's children their primary and Joliet identifiers
// and sorts both lists.
func nameChildren(w *wnode) error {
	used := map[string]bool{}
	jused := map[string]*wnode{}
	// Names are chosen in source-name order so the result does not depend
	// on the order the source listed them.
	order := append([]*wnode(nil), w.kids...)
	sort.Slice(order, func(i, j int) bool { return order[i].Name < order[j].Name })
	// First pass: names whose 8.3 form is exact keep it, so that setupldr,
	// which reads the primary tree, finds I386\TXTSETUP.SIF as it is.
	var later []*wnode
	for _, k := range order {
		base, ext, exact := short83(k.Name, k.Dir)
		id := joinID(base, ext, k.Dir)
		if exact && !used[id] {
			used[id], k.pname = true, id
		} else {
			later = append(later, k)
		}
	}
	for _, k := range later {
		base, ext, _ := short83(k.Name, k.Dir)
		id := joinID(base, ext, k.Dir)
		// A name taken already gets a number in its last characters,
		// "LONG NAM.TXT" then "LONG 000.TXT", as genisoimage numbers them.
		for n := 0; used[id]; n++ {
			num := fmt.Sprintf("%03d", n)
			b := base
			if len(b)+len(num) > 8 {
				b = b[:8-len(num)]
			}
			id = joinID(b+num, ext, k.Dir)
		}
		used[id], k.pname = true, id
	}
	for _, k := range order {
		jn := jolietName(k.Name)
		if len(utf16.Encode([]rune(jn))) > maxJolietName {
			return fmt.Errorf("iso: %s: name of %d characters exceeds Joliet's %d (mkisofs -joliet-long)", k.Path, len([]rune(jn)), maxJolietName)
		}
		if o, ok := jused[jn]; ok {
			return fmt.Errorf("iso: %s and %s have the same Joliet name %q", o.Path, k.Path, jn)
		}
		jused[jn] = k
		k.jname = encodeUCS2(jn)
	}
	w.kids = order
	sort.SliceStable(w.kids, func(i, j int) bool { return lessPrimary(w.kids[i].pname, w.kids[j].pname) })
	w.jkids = append([]*wnode(nil), order...)
	sort.SliceStable(w.jkids, func(i, j int) bool { return lessJoliet(w.jkids[i].Name, w.jkids[j].Name) })
	return nil
}

// short83 maps a name to ISO 9660 level 1 parts the way genisoimage
// (mkisofs) does under -relaxed-filenames: upper case, every 7-bit
// printable byte kept (space, ";" and "\\" included), any other byte
// "_"; the last dot separates an extension of at most 3 characters (also
// for directories: "dir.name" is "DIR.NAM"), earlier dots and a leading
// one become "_"; at most 8 characters of name. exact reports that
// nothing was lost.
func short83(name string, dir bool) (base, ext string, exact bool) {
	exact = true
	clean := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			switch {
			case c >= 'a' && c <= 'z':
				b[i] = c - 'a' + 'A'
			case c < 0x20 || c > 0x7E || c == '/' || c == '.':
				b[i] = '_'
				exact = false
			}
		}
		return string(b)
	}
	b, e := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		b, e = name[:i], name[i+1:]
	}
	base, ext = clean(b), clean(e)
	if len(base) > 8 {
		base, exact = base[:8], false
	}
	if len(ext) > 3 {
		ext, exact = ext[:3], false
	}
	if base == "" {
		base, exact = "_", false
	}
	return base, ext, exact
}

// joinID forms the recorded identifier: "NAME.EXT", "NAME." for a file
// without extension (mkisofs without -d), "NAME" for a directory without
// one; no ";1" (mkisofs -N).
func joinID(base, ext string, dir bool) string {
	if dir && ext == "" {
		return base
	}
	return base + "." + ext
}

// lessName orders identifiers as mkisofs (genisoimage) does: character
// by character, with ";" before any other character and, when dot is
// set, "." next, then the shorter first. For level 1 names (dot set) this
// is ECMA-119 9.3's order (name, then extension, space-padded), and it
// places relaxed names holding ";" where mkisofs does.
func lessName[T byte | uint16](a, b []T, dot bool) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		switch {
		case ca == cb:
			continue
		case ca == ';':
			return true
		case cb == ';':
			return false
		case dot && ca == '.':
			return true
		case dot && cb == '.':
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}

func lessPrimary(a, b string) bool { return lessName([]byte(a), []byte(b), true) }

// lessJoliet orders Joliet entries by their source names (before the
// Joliet character replacements) in UTF-16 with ";" first, as mkisofs
// does: "file;x" (Joliet "file_x") before "file.html", "a+b.txt" before
// "a.b".
func lessJoliet(a, b string) bool {
	return lessName(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)), false)
}

// jolietName replaces the characters Joliet forbids (* / : ; ? \).
func jolietName(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '*', '/', ':', ';', '?', '\\':
			return '_'
		}
		return r
	}, s)
}

func encodeUCS2(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.BigEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// pathOrder lists the directories breadth first with each directory's
// children in identifier order, the order ECMA-119 6.9.1 requires for
// path table records.
func pathOrder(root *wnode, kids func(*wnode) []*wnode) []*wnode {
	out := []*wnode{root}
	for i := 0; i < len(out); i++ {
		for _, k := range kids(out[i]) {
			if k.Dir {
				out = append(out, k)
			}
		}
	}
	return out
}

func recLen(idLen int) int {
	n := 33 + idLen
	if n%2 != 0 {
		n++
	}
	return n
}

// dirSize is the length of a directory's records: "." and "..", then
// one record per child, none crossing a sector boundary.
func dirSize(kids []*wnode, idLen func(*wnode) int) uint32 {
	used := 2 * recLen(1)
	for _, k := range kids {
		n := recLen(idLen(k))
		if used%SectorSize+n > SectorSize {
			used = (used/SectorSize + 1) * SectorSize
		}
		used += n
	}
	return uint32((used + SectorSize - 1) / SectorSize * SectorSize)
}

func pathTableSize(dirs []*wnode, idLen func(*wnode) int) uint32 {
	n := 0
	for i, d := range dirs {
		l := idLen(d)
		if i == 0 {
			l = 1
		}
		n += 8 + l + l%2
	}
	return uint32(n)
}

// both writes v little-endian then big-endian (ECMA-119 7.2.3, 7.3.3).
func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

// putRecord encodes one directory record at b and returns its length.
func putRecord(b []byte, id []byte, lba, size uint32, dir bool, t time.Time) int {
	n := recLen(len(id))
	b[0] = byte(n)
	b[1] = 0
	both32(b[2:], lba)
	both32(b[10:], size)
	encodeRecTime(b[18:25], t)
	if dir {
		b[25] = flagDir
	}
	b[26], b[27] = 0, 0
	both16(b[28:], 1)
	b[32] = byte(len(id))
	copy(b[33:], id)
	return n
}

func (l *imageLayout) dirBytes(d *wnode, joliet bool) []byte {
	size, lba, kids := d.dsize, d.lba, d.kids
	parent := d.parent
	if parent == nil {
		parent = d
	}
	plba, psize := parent.lba, parent.dsize
	if joliet {
		size, lba, kids = d.jdsize, d.jlba, d.jkids
		plba, psize = parent.jlba, parent.jdsize
	}
	b := make([]byte, size)
	i := putRecord(b, []byte{0}, lba, size, true, d.mtime)
	i += putRecord(b[i:], []byte{1}, plba, psize, true, parent.mtime)
	for _, k := range kids {
		id := []byte(k.pname)
		if joliet {
			id = k.jname
		}
		n := recLen(len(id))
		if i%SectorSize+n > SectorSize {
			i = (i/SectorSize + 1) * SectorSize
		}
		klba, ksize := k.lba, uint32(k.Size)
		if k.Dir {
			klba, ksize = k.lba, k.dsize
			if joliet {
				klba, ksize = k.jlba, k.jdsize
			}
		}
		i += putRecord(b[i:], id, klba, ksize, k.Dir, k.mtime)
	}
	return b
}

func (l *imageLayout) pathTable(dirs []*wnode, joliet, bigEndian bool, size uint32) []byte {
	b := make([]byte, 0, size)
	for i, d := range dirs {
		id := []byte(d.pname)
		lba, parent := d.lba, uint16(1)
		if joliet {
			id, lba = d.jname, d.jlba
		}
		if d.parent != nil {
			parent = d.parent.pnum
			if joliet {
				parent = d.parent.jnum
			}
		}
		if i == 0 {
			id = []byte{0}
		}
		rec := make([]byte, 8+len(id)+len(id)%2)
		rec[0] = byte(len(id))
		if bigEndian {
			binary.BigEndian.PutUint32(rec[2:], lba)
			binary.BigEndian.PutUint16(rec[6:], parent)
		} else {
			binary.LittleEndian.PutUint32(rec[2:], lba)
			binary.LittleEndian.PutUint16(rec[6:], parent)
		}
		copy(rec[8:], id)
		b = append(b, rec...)
	}
	return b
}

func padStr(b []byte, s string) {
	for i := range b {
		b[i] = ' '
	}
	copy(b, s)
}

func padUCS2(b []byte, s string) {
	for i := 0; i+1 < len(b); i += 2 {
		b[i], b[i+1] = 0, ' '
	}
	u := encodeUCS2(s)
	if len(u) > len(b) {
		u = u[:len(b)/2*2]
	}
	copy(b, u)
}

// volumeDescriptor builds the primary (joliet false) or Joliet
// supplementary descriptor.
func (l *imageLayout) volumeDescriptor(joliet bool) []byte {
	b := make([]byte, SectorSize)
	b[0] = vdPrimary
	if joliet {
		b[0] = vdSupplementary
	}
	copy(b[1:6], "CD001")
	b[6] = 1
	str := padStr
	if joliet {
		str = padUCS2
	}
	str(b[8:40], "")
	if joliet {
		str(b[40:72], l.jvolID)
		copy(b[88:91], "%/E")
	} else {
		str(b[40:72], l.volID)
	}
	both32(b[80:], l.total)
	both16(b[120:], 1)
	both16(b[124:], 1)
	both16(b[128:], SectorSize)
	if joliet {
		both32(b[132:], l.jptSize)
		binary.LittleEndian.PutUint32(b[140:], l.jptL)
		binary.BigEndian.PutUint32(b[148:], l.jptM)
		putRecord(b[156:], []byte{0}, l.root.jlba, l.root.jdsize, true, l.root.mtime)
	} else {
		both32(b[132:], l.ptSize)
		binary.LittleEndian.PutUint32(b[140:], l.ptL)
		binary.BigEndian.PutUint32(b[148:], l.ptM)
		putRecord(b[156:], []byte{0}, l.root.lba, l.root.dsize, true, l.root.mtime)
	}
	str(b[190:318], "")
	str(b[318:446], "")
	str(b[446:574], "")
	str(b[574:702], "XPBOOT")
	str(b[702:739], "")
	str(b[739:776], "")
	str(b[776:813], "")
	encodeVolTime(b[813:830], l.volTime)
	encodeVolTime(b[830:847], l.volTime)
	encodeVolTime(b[847:864], time.Time{})
	encodeVolTime(b[864:881], time.Time{})
	b[881] = 1
	return b
}

func (l *imageLayout) bootRecord() []byte {
	b := make([]byte, SectorSize)
	b[0] = vdBoot
	copy(b[1:6], "CD001")
	b[6] = 1
	copy(b[7:39], elToritoID)
	binary.LittleEndian.PutUint32(b[71:], l.catLBA)
	return b
}

func (l *imageLayout) catalog() []byte {
	b := make([]byte, SectorSize)
	bt := l.opts.Boot
	b[0], b[1] = 1, bt.Platform
	b[30], b[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(b[i:])
	}
	binary.LittleEndian.PutUint16(b[28:], -sum)
	e := b[32:64]
	e[0], e[1] = 0x88, MediaNoEmulation
	binary.LittleEndian.PutUint16(e[2:], bt.LoadSegment)
	binary.LittleEndian.PutUint16(e[6:], bt.LoadSize)
	binary.LittleEndian.PutUint32(e[8:], l.bootLBA)
	return b
}

// sectorWriter writes whole sectors at increasing positions, padding any
// gap with zeros.
type sectorWriter struct {
	w   *bufio.Writer
	pos int64
}

func (s *sectorWriter) at(lba uint32, b []byte) error {
	off := int64(lba) * SectorSize
	if off < s.pos {
		return fmt.Errorf("layout error: sector %d written twice", lba)
	}
	if err := s.zeros(off - s.pos); err != nil {
		return err
	}
	n, err := s.w.Write(b)
	s.pos += int64(n)
	return err
}

func (s *sectorWriter) zeros(n int64) error {
	var z [SectorSize]byte
	for n > 0 {
		k := min(n, SectorSize)
		w, err := s.w.Write(z[:k])
		s.pos += int64(w)
		if err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (l *imageLayout) write(w io.Writer, progress func(done, total int64)) error {
	s := &sectorWriter{w: bufio.NewWriterSize(w, 1<<20)}
	lba := uint32(firstDescriptor)
	if err := s.at(lba, l.volumeDescriptor(false)); err != nil {
		return err
	}
	lba++
	if l.bootRec {
		if err := s.at(lba, l.bootRecord()); err != nil {
			return err
		}
		lba++
	}
	if err := s.at(lba, l.volumeDescriptor(true)); err != nil {
		return err
	}
	lba++
	term := make([]byte, SectorSize)
	term[0] = vdTerminator
	copy(term[1:6], "CD001")
	term[6] = 1
	if err := s.at(lba, term); err != nil {
		return err
	}
	if l.bootRec {
		if err := s.at(l.catLBA, l.catalog()); err != nil {
			return err
		}
	}
	for _, pt := range []struct {
		lba    uint32
		joliet bool
		be     bool
	}{{l.ptL, false, false}, {l.ptM, false, true}, {l.jptL, true, false}, {l.jptM, true, true}} {
		dirs, size := l.dirs, l.ptSize
		if pt.joliet {
			dirs, size = l.jdirs, l.jptSize
		}
		if err := s.at(pt.lba, l.pathTable(dirs, pt.joliet, pt.be, size)); err != nil {
			return err
		}
	}
	for _, d := range l.dirs {
		if err := s.at(d.lba, l.dirBytes(d, false)); err != nil {
			return err
		}
	}
	for _, d := range l.jdirs {
		if err := s.at(d.jlba, l.dirBytes(d, true)); err != nil {
			return err
		}
	}
	if l.opts.Boot != nil && l.bootNode == nil {
		img := l.opts.Boot.Image
		if l.opts.Boot.InfoTable {
			img = append([]byte(nil), img...)
			if err := patchInfoTable(img, l.bootLBA); err != nil {
				return err
			}
		}
		if err := s.at(l.bootLBA, img); err != nil {
			return err
		}
	}
	var done int64
	buf := make([]byte, 1<<20)
	for _, f := range l.files {
		if f.Size == 0 {
			continue
		}
		if err := s.at(f.lba, nil); err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return err
		}
		var src io.Reader = io.LimitReader(r, f.Size)
		if f == l.bootNode && l.opts.Boot.InfoTable {
			// The table depends on every byte of the image, so it is
			// read whole (bounded by MaxInfoTableImage in layout).
			img, err := io.ReadAll(src)
			if err == nil && int64(len(img)) == f.Size {
				err = patchInfoTable(img, f.lba)
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("%s: %w", f.Path, err)
			}
			src = bytes.NewReader(img)
		}
		n, err := io.CopyBuffer(s.w, src, buf)
		s.pos += n
		if err == nil && n != f.Size {
			err = fmt.Errorf("%s: %d bytes read, %d expected (did the file change?)", f.Path, n, f.Size)
		}
		if err == nil {
			// A file that grew since it was listed would be cut silently.
			var one [1]byte
			if k, _ := r.Read(one[:]); k > 0 {
				err = fmt.Errorf("%s: longer than the %d bytes listed (did the file change?)", f.Path, f.Size)
			}
		}
		r.Close()
		if err != nil {
			return err
		}
		done += n
		if progress != nil {
			progress(done, l.totalData)
		}
	}
	if err := s.zeros(int64(l.total)*SectorSize - s.pos); err != nil {
		return err
	}
	return s.w.Flush()
}
