package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io"
	"sort"
	"strings"
	"time"
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
