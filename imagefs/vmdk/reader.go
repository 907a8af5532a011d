package vmdk

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/xpboot/xpboot/blockdev"
)

// Disk is an open VMDK: one or more extents (sparse, flat or zero) behind a
// descriptor, and for a delta disk its parent. It implements
// blockdev.Device; the methods may be called concurrently on distinct
// ranges.
type Disk struct {
	name     string
	desc     *Descriptor
	exts     []*extent
	size     int64
	parent   blockdev.Device
	files    []*os.File
	writable bool
	unlocked bool // opened without locks (OpenUnlocked)
	compr    bool

	// rewriteDesc stores the descriptor after a CID change; nil when the
	// disk has no descriptor of its own.
	rewriteDesc func(text []byte) error
	rename      map[string]string
	cidOnce     sync.Once
	cidErr      error
}

var _ blockdev.Device = (*Disk)(nil)

type extentKind uint8

const (
	kindFlat extentKind = iota
	kindSparse
	kindZero
)

// extent is one extent of the disk, covering [start, start+size).
type extent struct {
	start, size int64
	kind        extentKind
	file        string
	// flat
	r    io.ReaderAt
	w    io.WriterAt
	base int64
	raw  *blockdev.Raw
	// sparse
	sp *sparse
}

// Open opens a VMDK: a monolithicSparse or streamOptimized file, or a text
// descriptor with its extent files (monolithicFlat, twoGbMaxExtentSparse,
// twoGbMaxExtentFlat, vmfs). A delta disk's parent is opened read-only and
// must carry the CID the delta names as parentCID. Writable opens take
// exclusive advisory locks on every file written, read-only ones shared
// locks; streamOptimized disks cannot be opened writable.
func Open(path string, writable bool) (*Disk, error) {
	return open(path, writable, 0, nil, false)
}

// OpenUnlocked opens a VMDK (and its parents) read-only without taking
// locks, so that a disk another process holds, such as one xpboot serve
// writes, can be inspected, as qemu-img's -U does. What it reads may be a
// state the writer is in the middle of changing.
func OpenUnlocked(path string) (*Disk, error) {
	return open(path, false, 0, nil, true)
}

// open opens path; rename maps extent file names of the descriptor to the
// files to open instead (Create's temporary names).
func open(path string, writable bool, depth int, rename map[string]string, unlocked bool) (*Disk, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("vmdk: %s: delta chain longer than %d disks", path, maxDepth)
	}
	d := &Disk{name: path, writable: writable, rename: rename, unlocked: unlocked && !writable}
	if err := d.init(path, writable, depth); err != nil {
		d.closeFiles()
		return nil, err
	}
	return d, nil
}

func (d *Disk) init(path string, writable bool, depth int) error {
	f, err := d.openFile(path, writable)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	head := make([]byte, min(st.Size(), HeaderSize))
	if err := readFull(f, head, 0); err != nil {
		return fmt.Errorf("vmdk: %s: %w", path, err)
	}
	var w io.WriterAt
	if writable {
		w = f
	}
	switch {
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == Magic:
		if err := d.initMonolithic(f, w, st.Size()); err != nil {
			return err
		}
	case IsDescriptor(head):
		if err := d.initDescriptor(f, st.Size()); err != nil {
			return err
		}
	default:
		return &FormatError{File: path, Off: 0, Msg: "neither a sparse extent (KDMV magic) nor a descriptor file", Err: ErrFormat}
	}
	if d.desc.HasParent() {
		if err := d.openParent(depth); err != nil {
			return err
		}
	}
	return nil
}

func (d *Disk) openFile(path string, writable bool) (*os.File, error) {
	f, err := blockdev.OpenFile(path, writable)
	if err != nil {
		return nil, err
	}
	if d.unlocked {
		d.files = append(d.files, f)
		return f, nil
	}
	if err := blockdev.Lock(f, writable); err != nil {
		f.Close()
		return nil, err
	}
	d.files = append(d.files, f)
	return f, nil
}

// NewReader parses a single-file VMDK (monolithicSparse or streamOptimized)
// held in r, size bytes long, for reading only. A delta read this way has no
// parent: its unallocated grains read as zeros and Extents reports them as
// Parent.
func NewReader(r io.ReaderAt, size int64) (*Disk, error) {
	d := &Disk{}
	if err := d.initMonolithic(r, nil, size); err != nil {
		return nil, err
	}
	return d, nil
}

// initMonolithic sets d up over one sparse extent file with an embedded
// descriptor (or none).
func (d *Disk) initMonolithic(r io.ReaderAt, w io.WriterAt, size int64) error {
	hb := make([]byte, HeaderSize)
	if err := readFull(r, hb, 0); err != nil {
		return &FormatError{File: d.name, Off: size, Msg: fmt.Sprintf("sparse header truncated: file of %d bytes", size), Err: ErrFormat}
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return rebase(err, d.name, 0)
	}
	sp, err := newSparse(r, w, size, d.name, h)
	if err != nil {
		return err
	}
	h = &sp.h
	d.compr = sp.compressed
	desc := &Descriptor{Version: 1, ParentCID: NoParentCID, CreateType: TypeMonolithicSparse}
	if sp.compressed {
		desc.CreateType = TypeStreamOptimized
	}
	if h.DescriptorOffset != 0 && h.DescriptorSize != 0 {
		doff := int64(h.DescriptorOffset) * sectorSize
		dlen := int64(h.DescriptorSize) * sectorSize
		if h.DescriptorOffset > uint64(size/sectorSize) || dlen > size-doff {
			return &FormatError{File: d.name, Off: 28, Msg: fmt.Sprintf("descriptor of %d sectors at sector %d extends past the end of the file (size %d)", h.DescriptorSize, h.DescriptorOffset, size), Err: ErrFormat}
		}
		text := make([]byte, dlen)
		if err := readFull(r, text, doff); err != nil {
			return fmt.Errorf("vmdk: %s: reading descriptor at 0x%x: %w", d.name, doff, err)
		}
		if desc, err = ParseDescriptor(text); err != nil {
			return rebase(err, d.name, doff)
		}
		if w != nil {
			d.rewriteDesc = func(text []byte) error {
				if int64(len(text)) > dlen {
					return fmt.Errorf("vmdk: %s: descriptor of %d bytes does not fit in %d", d.name, len(text), dlen)
				}
				buf := make([]byte, dlen)
				copy(buf, text)
				_, err := w.WriteAt(buf, doff)
				return err
			}
		}
	}
	d.desc = desc
	d.size = sp.capBytes
	d.exts = []*extent{{start: 0, size: sp.capBytes, kind: kindSparse, sp: sp, file: d.name}}
	return nil
}

// initDescriptor sets d up from a text descriptor file f and opens its
// extent files.
func (d *Disk) initDescriptor(f *os.File, size int64) error {
	if size > maxDescriptor {
		return &FormatError{File: d.name, Off: 0, Msg: fmt.Sprintf("descriptor file of %d bytes exceeds %d", size, maxDescriptor), Err: ErrFormat}
	}
	text := make([]byte, size)
	if err := readFull(f, text, 0); err != nil {
		return fmt.Errorf("vmdk: %s: %w", d.name, err)
	}
	desc, err := ParseDescriptor(text)
	if err != nil {
		return rebase(err, d.name, 0)
	}
	d.desc = desc
	if len(desc.Extents) == 0 {
		return &FormatError{File: d.name, Off: 0, Msg: "descriptor lists no extents", Err: ErrFormat}
	}
	if d.writable {
		d.rewriteDesc = func(text []byte) error {
			if _, err := f.WriteAt(text, 0); err != nil {
				return err
			}
			return f.Truncate(int64(len(text)))
		}
	}
	dir := filepath.Dir(d.name)
	var pos int64
	for _, el := range desc.Extents {
		bad := func(format string, args ...any) error {
			return &FormatError{File: d.name, Off: el.Pos, Msg: fmt.Sprintf(format, args...), Err: ErrFormat}
		}
		e := &extent{start: pos, size: el.Sectors * sectorSize, file: el.File}
		if pos > MaxSize-e.size {
			return bad("extents add up to more than %d bytes", int64(MaxSize))
		}
		writable := d.writable && el.Access == "RW"
		switch el.Type {
		case "ZERO":
			e.kind = kindZero
		case "FLAT", "VMFS", "SPARSE", "VMFSSPARSE":
			p := el.File
			if r, ok := d.rename[p]; ok {
				p = r
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			ef, err := d.openFile(p, writable)
			if err != nil {
				return bad("extent file %q: %v", el.File, err)
			}
			st, err := ef.Stat()
			if err != nil {
				return err
			}
			var w io.WriterAt
			if writable {
				w = ef
			}
			if el.Type == "FLAT" || el.Type == "VMFS" {
				e.kind = kindFlat
				e.r, e.w, e.base = ef, w, el.Offset*sectorSize
				if need := e.base + e.size; st.Size() < need {
					return bad("extent file %q has %d bytes, the extent needs %d", el.File, st.Size(), need)
				}
				// A second handle for hole detection: Raw owns its file.
				if rf, err := os.Open(p); err == nil {
					if e.raw, err = blockdev.NewRaw(rf, false); err != nil {
						rf.Close()
						e.raw = nil
					} else {
						d.files = append(d.files, rf)
					}
				}
			} else {
				e.kind = kindSparse
				hb := make([]byte, HeaderSize)
				if err := readFull(ef, hb, 0); err != nil {
					return &FormatError{File: p, Off: 0, Msg: fmt.Sprintf("sparse header truncated: file of %d bytes", st.Size()), Err: ErrFormat}
				}
				h, err := ParseHeader(hb)
				if err != nil {
					return rebase(err, p, 0)
				}
				if e.sp, err = newSparse(ef, w, st.Size(), p, h); err != nil {
					return err
				}
				if e.sp.capBytes < e.size {
					return bad("extent %q holds %d bytes, the descriptor says %d", el.File, e.sp.capBytes, e.size)
				}
				if e.sp.compressed {
					d.compr = true
				}
			}
		}
		d.exts = append(d.exts, e)
		pos += e.size
	}
	d.size = pos
	return nil
}

// openParent opens the parent named by parentFileNameHint and checks its
// CID.
func (d *Disk) openParent(depth int) error {
	p := d.desc.ParentFileNameHint
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(d.name), p)
	}
	if d.name == "" {
		return nil // NewReader: no file system access
	}
	pd, err := open(p, false, depth+1, nil, d.unlocked)
	if err != nil {
		return fmt.Errorf("vmdk: %s: opening parent %q: %w", d.name, d.desc.ParentFileNameHint, err)
	}
	if pd.desc.CID != d.desc.ParentCID {
		pd.Close()
		return fmt.Errorf("vmdk: %s: parent %s has CID %08x, the delta expects parentCID %08x (the parent changed after the delta was made): %w",
			d.name, p, pd.desc.CID, d.desc.ParentCID, ErrParent)
	}
	if pd.size < d.size {
		pd.Close()
		return fmt.Errorf("vmdk: %s: parent %s (%d bytes) is smaller than the delta (%d bytes): %w", d.name, p, pd.size, d.size, ErrParent)
	}
	d.parent = pd
	return nil
}

// Descriptor returns a copy of the disk's descriptor.
func (d *Disk) Descriptor() Descriptor {
	c := *d.desc
	c.Extents = append([]ExtentLine(nil), c.Extents...)
	c.DDB = append([]KV(nil), c.DDB...)
	return c
}

// Parent returns the opened parent of a delta disk, or nil.
func (d *Disk) Parent() blockdev.Device { return d.parent }

// Compressed reports whether the disk has compressed (streamOptimized)
// extents, which are read-only.
func (d *Disk) Compressed() bool { return d.compr }

// Size returns the disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// find returns the index of the extent holding byte off.
func (d *Disk) find(off int64) int {
	return sort.Search(len(d.exts), func(i int) bool { return d.exts[i].start+d.exts[i].size > off })
}

// fallback reads unallocated grains: from the parent, else zeros.
func (d *Disk) fallback(start int64) func(p []byte, off int64) error {
	return func(p []byte, off int64) error {
		if d.parent == nil {
			clear(p)
			return nil
		}
		_, err := d.parent.ReadAt(p, start+off)
		return err
	}
}

// ReadAt reads disk content.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("read", off, len(p), d.size); err != nil {
		return 0, err
	}
	done := 0
	for i := d.find(off); done < len(p); i++ {
		e := d.exts[i]
		pos := off + int64(done)
		in := pos - e.start
		n := min(int64(len(p)-done), e.size-in)
		seg := p[done : done+int(n)]
		var err error
		switch e.kind {
		case kindZero:
			clear(seg)
		case kindFlat:
			err = readFull(e.r, seg, e.base+in)
		case kindSparse:
			err = e.sp.readAt(seg, in, d.fallback(e.start))
		}
		if err != nil {
			return done, fmt.Errorf("vmdk: %s: read at 0x%x: %w", e.file, pos, err)
		}
		done += int(n)
	}
	return len(p), nil
}

// WriteAt writes disk content. The first write of an open session gives the
// disk a new CID, as VMware and qemu do, so that deltas made from the old
// content no longer match.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if !d.writable {
		return 0, blockdev.ErrReadOnly
	}
	if err := blockdev.CheckRange("write", off, len(p), d.size); err != nil {
		return 0, err
	}
	d.cidOnce.Do(func() { d.cidErr = d.newCID() })
	if d.cidErr != nil {
		return 0, d.cidErr
	}
	done := 0
	for i := d.find(off); done < len(p); i++ {
		e := d.exts[i]
		pos := off + int64(done)
		in := pos - e.start
		n := min(int64(len(p)-done), e.size-in)
		seg := p[done : done+int(n)]
		var err error
		switch e.kind {
		case kindZero:
			err = fmt.Errorf("ZERO extent: %w", blockdev.ErrReadOnly)
		case kindFlat:
			if e.w == nil {
				err = blockdev.ErrReadOnly
			} else {
				_, err = e.w.WriteAt(seg, e.base+in)
			}
		case kindSparse:
			err = e.sp.writeAt(seg, in, d.fallback(e.start))
			if err == errReadOnly {
				err = blockdev.ErrReadOnly
			}
		}
		if err != nil {
			return done, fmt.Errorf("vmdk: %s: write at 0x%x: %w", e.file, pos, err)
		}
		done += int(n)
	}
	return len(p), nil
}

// newCID gives the disk a fresh random content id and stores the descriptor.
func (d *Disk) newCID() error {
	if d.rewriteDesc == nil {
		return nil
	}
	d.desc.CID = randomCID()
	if err := d.rewriteDesc(d.desc.Marshal()); err != nil {
		return fmt.Errorf("vmdk: %s: updating CID: %w", d.name, err)
	}
	return nil
}

// randomCID returns a random CID that is not one of the special values
// 0xffffffff and 0xfffffffe (open-vmdk avoids them too).
func randomCID() uint32 {
	for {
		var b [4]byte
		rand.Read(b[:])
		if c := binary.LittleEndian.Uint32(b[:]); c < 0xfffffffe && c != 0 {
			return c
		}
	}
}

// Extents reports flat extents by the holes of their files, zero extents
// as Zero, and sparse extents grain by grain: allocated grains Data,
// unallocated ones Zero, or Parent for a delta disk.
func (d *Disk) Extents(off, length int64) ([]blockdev.Extent, error) {
	if err := blockdev.CheckRange("extents", off, 0, d.size); err != nil {
		return nil, err
	}
	end := min(off+max(length, 0), d.size)
	var out []blockdev.Extent
	unalloc := blockdev.Zero
	if d.desc.HasParent() {
		unalloc = blockdev.Parent
	}
	for i := d.find(off); off < end; i++ {
		e := d.exts[i]
		xend := min(end, e.start+e.size)
		switch e.kind {
		case kindZero:
			out = blockdev.AppendExtent(out, off, xend, blockdev.Zero)
		case kindFlat:
			if e.raw == nil {
				out = blockdev.AppendExtent(out, off, xend, blockdev.Data)
				break
			}
			sub, err := e.raw.Extents(e.base+off-e.start, xend-off)
			if err != nil {
				return nil, err
			}
			for _, x := range sub {
				out = blockdev.AppendExtent(out, x.Off-e.base+e.start, x.Off-e.base+e.start+x.Len, x.State)
			}
		case kindSparse:
			gb := e.sp.grainBytes
			for pos := off; pos < xend; {
				g := (pos - e.start) / gb
				ge := min(xend, e.start+(g+1)*gb)
				alloc, unallocated, err := e.sp.allocated(g)
				if err != nil {
					return nil, fmt.Errorf("vmdk: %s: %w", e.file, err)
				}
				switch {
				case alloc:
					out = blockdev.AppendExtent(out, pos, ge, blockdev.Data)
				case unallocated:
					out = blockdev.AppendExtent(out, pos, ge, unalloc)
				default:
					out = blockdev.AppendExtent(out, pos, ge, blockdev.Zero)
				}
				pos = ge
			}
		}
		off = xend
	}
	return out, nil
}

// ReadOnly reports whether the disk was opened without write access
// (always so for streamOptimized disks and parents of a delta).
func (d *Disk) ReadOnly() bool { return !d.writable }

// Discard refuses: deallocating grains would need the grain table entry
// and the grain itself reclaimed, or a delta's grain replaced by an
// explicit zero grain so that the parent does not show through; xpboot
// does neither, and a wrong discard would expose old data.
func (d *Disk) Discard(off, length int64) error {
	if !d.writable {
		return blockdev.ErrReadOnly
	}
	return fmt.Errorf("%s: %w (VMDK)", d.name, blockdev.ErrNotSupported)
}

// Flush makes completed writes durable.
func (d *Disk) Flush() error {
	if !d.writable {
		return nil
	}
	for _, f := range d.files {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes the disk and closes its files and its parent, releasing
// the locks.
func (d *Disk) Close() error {
	if err := d.Flush(); err != nil {
		d.Release()
		return err
	}
	return d.Release()
}

// Release closes the disk, its files and its parent without flushing:
// completed writes reach stable storage whenever the kernel writes them
// back. It is for callers that, like qemu-img convert, do not promise
// durability; Close is the normal way.
func (d *Disk) Release() error {
	var err error
	if d.parent != nil {
		if perr := d.parent.Close(); err == nil {
			err = perr
		}
	}
	if cerr := d.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (d *Disk) closeFiles() error {
	var err error
	for _, f := range d.files {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	d.files = nil
	return err
}

// Path returns the file the disk was opened from (the descriptor or the
// monolithic sparse file).
func (d *Disk) Path() string { return d.name }

// FileNames returns every file of this disk, the descriptor or sparse file
// first and then its extents, without the parent's files.
func (d *Disk) FileNames() []string {
	var out []string
	for _, f := range d.files {
		if !slices.Contains(out, f.Name()) { // an extent may be open twice
			out = append(out, f.Name())
		}
	}
	return out
}
