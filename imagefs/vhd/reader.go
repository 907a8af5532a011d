package vhd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/xpboot/xpboot/blockdev"
)

// Disk is an open VHD. It implements blockdev.Device; the methods may be
// called concurrently on distinct ranges.
type Disk struct {
	name     string
	f        *os.File      // nil for NewReader
	raw      *blockdev.Raw // fixed disks opened from a file; owns f
	r        io.ReaderAt
	w        io.WriterAt // nil when read-only
	fileSize int64
	size     int64
	footer   Footer
	header   *Header
	parent   blockdev.Device
	unlocked bool // opened without locks (OpenUnlocked)

	mu        sync.RWMutex // guards bat, bitmaps, next
	bat       []uint32
	bitmaps   map[uint32][]byte // differencing disks: block → sector bitmap
	blockSize int64
	bmSize    int64
	next      int64 // offset of the trailing footer, where a new block goes
}

var _ blockdev.Device = (*Disk)(nil)

// Open opens a VHD file. A writable open takes an exclusive advisory lock,
// a read-only one a shared lock. A differencing disk's parent is opened
// read-only as well; differencing disks cannot be opened writable.
func Open(path string, writable bool) (*Disk, error) {
	return open(path, writable, 0, false)
}

// OpenUnlocked opens a VHD (and its parents) read-only without taking
// locks, so that a disk another process holds, such as one xpboot serve
// writes, can be inspected, as qemu-img's -U does. What it reads may be a
// state the writer is in the middle of changing.
func OpenUnlocked(path string) (*Disk, error) {
	return open(path, false, 0, true)
}

func open(path string, writable bool, depth int, unlocked bool) (*Disk, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("vhd: %s: differencing chain longer than %d disks", path, maxDepth)
	}
	f, err := blockdev.OpenFile(path, writable)
	if err != nil {
		return nil, err
	}
	d, err := newFromFile(f, writable, depth, unlocked && !writable)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func newFromFile(f *os.File, writable bool, depth int, unlocked bool) (*Disk, error) {
	if !unlocked {
		if err := blockdev.Lock(f, writable); err != nil {
			return nil, err
		}
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	d, err := parse(f, st.Size(), f.Name())
	if err != nil {
		return nil, err
	}
	d.f = f
	d.unlocked = unlocked
	if writable {
		if d.footer.DiskType == TypeDifferencing {
			return nil, fmt.Errorf("%s: writing a differencing disk: %w", f.Name(), ErrUnsupported)
		}
		d.w = f
	}
	if d.footer.DiskType == TypeFixed {
		// The fixed disk's data is a raw image followed by the footer;
		// Raw gives hole detection. NewRaw re-takes the same lock.
		if unlocked {
			d.raw, err = blockdev.NewRawUnlocked(f)
		} else {
			d.raw, err = blockdev.NewRaw(f, writable)
		}
		if err != nil {
			return nil, err
		}
	}
	if d.footer.DiskType == TypeDifferencing {
		if err := d.openParent(depth); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// NewReader parses a VHD held in r, which is size bytes long, for reading
// only. A differencing disk read this way has no parent: reads of sectors
// not present in it fail with ErrNoParent, and Extents reports them as
// Parent.
func NewReader(r io.ReaderAt, size int64) (*Disk, error) {
	return parse(r, size, "")
}

func (d *Disk) errf(off int64, err error, format string, args ...any) error {
	return &FormatError{File: d.name, Off: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

// rebase moves a *FormatError from a buffer-relative offset to a file one.
func rebase(err error, name string, base int64) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return &FormatError{File: name, Off: base + fe.Off, Msg: fe.Msg, Err: fe.Err}
	}
	return err
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func parse(r io.ReaderAt, size int64, name string) (*Disk, error) {
	d := &Disk{name: name, r: r, fileSize: size}
	if size < FooterSize {
		return nil, d.errf(0, ErrFormat, "file of %d bytes is shorter than a VHD footer", size)
	}
	buf := make([]byte, FooterSize)
	if err := readFull(r, buf, size-FooterSize); err != nil {
		return nil, fmt.Errorf("vhd: %s: reading footer at 0x%x: %w", name, size-FooterSize, err)
	}
	f, ferr := ParseFooter(buf)
	if ferr != nil {
		// Dynamic disks keep a copy of the footer at offset 0 so that a
		// torn trailing footer (crash while a block was appended) can be
		// recovered; the specification names this as its purpose.
		if size >= FooterSize+HeaderSize+FooterSize {
			if err := readFull(r, buf, 0); err == nil {
				if c, err := ParseFooter(buf); err == nil && c.DiskType != TypeFixed {
					f, ferr = c, nil
				}
			}
		}
		if ferr != nil {
			return nil, rebase(ferr, name, size-FooterSize)
		}
	}
	d.footer = *f
	d.size = int64(f.CurrentSize)
	if f.DiskType == TypeFixed {
		if d.size > size-FooterSize {
			return nil, d.errf(size-FooterSize+48, ErrFormat, "current size %d exceeds the %d data bytes of the file", d.size, size-FooterSize)
		}
		return d, nil
	}
	// Dynamic or differencing: header, then BAT.
	if f.DataOffset < FooterSize || f.DataOffset > uint64(size-FooterSize-HeaderSize) {
		return nil, d.errf(size-FooterSize+16, ErrFormat, "dynamic header offset 0x%x outside the file (size %d)", f.DataOffset, size)
	}
	hoff := int64(f.DataOffset)
	hb := make([]byte, HeaderSize)
	if err := readFull(r, hb, hoff); err != nil {
		return nil, fmt.Errorf("vhd: %s: reading dynamic header at 0x%x: %w", name, hoff, err)
	}
	h, err := ParseHeader(hb)
	if err != nil {
		return nil, rebase(err, name, hoff)
	}
	d.header = h
	d.blockSize = int64(h.BlockSize)
	d.bmSize = bitmapSize(d.blockSize)
	entries := int64(h.MaxTableEntries)
	if entries*d.blockSize < d.size {
		return nil, d.errf(hoff+28, ErrFormat, "%d BAT entries of %d bytes cover less than the disk size %d", entries, d.blockSize, d.size)
	}
	if h.TableOffset < FooterSize || h.TableOffset > uint64(size) || entries*4 > size-int64(h.TableOffset) {
		return nil, d.errf(hoff+16, ErrFormat, "BAT of %d entries at 0x%x extends past the end of the file (size %d)", entries, h.TableOffset, size)
	}
	// Only the entries that cover the disk are used; writers may reserve more.
	used := (d.size + d.blockSize - 1) / d.blockSize
	raw := make([]byte, used*4)
	if err := readFull(r, raw, int64(h.TableOffset)); err != nil {
		return nil, fmt.Errorf("vhd: %s: reading BAT at 0x%x: %w", name, h.TableOffset, err)
	}
	d.bat = make([]uint32, used)
	end := size - FooterSize
	for i := range d.bat {
		e := binary.BigEndian.Uint32(raw[4*i:])
		d.bat[i] = e
		if e == unusedBAT {
			continue
		}
		bo := int64(e) * sectorSize
		if bo < FooterSize || bo+d.bmSize+d.blockSize > size {
			return nil, d.errf(int64(h.TableOffset)+4*int64(i), ErrFormat, "BAT entry %d: block at 0x%x extends past the end of the file (size %d)", i, bo, size)
		}
		if bo+d.bmSize+d.blockSize > end {
			end = bo + d.bmSize + d.blockSize
		}
	}
	d.next = (end + sectorSize - 1) / sectorSize * sectorSize
	if f.DiskType == TypeDifferencing {
		d.bitmaps = make(map[uint32][]byte)
		for i, e := range d.bat {
			if e == unusedBAT {
				continue
			}
			bm := make([]byte, d.bmSize)
			if err := readFull(r, bm, int64(e)*sectorSize); err != nil {
				return nil, fmt.Errorf("vhd: %s: reading sector bitmap of block %d at 0x%x: %w", name, i, int64(e)*sectorSize, err)
			}
			d.bitmaps[uint32(i)] = bm
		}
	}
	return d, nil
}

// parentCandidates lists the paths the parent of a differencing disk may
// have, in the order they are tried: relative locator, absolute locator,
// parent name next to the child.
func (d *Disk) parentCandidates() ([]string, error) {
	dir := filepath.Dir(d.name)
	var out []string
	for _, want := range []string{"W2ru", "W2ku"} {
		for i, l := range d.header.Locators {
			if string(l.Code[:]) != want || l.DataLength == 0 {
				continue
			}
			loff := int64(d.footer.DataOffset) + 576 + 24*int64(i)
			if l.DataLength > maxLocator || l.DataLength%2 != 0 || l.DataOffset > uint64(d.fileSize) || int64(l.DataLength) > d.fileSize-int64(l.DataOffset) {
				return nil, d.errf(loff, ErrFormat, "parent locator %s of %d bytes at 0x%x is outside the file", want, l.DataLength, l.DataOffset)
			}
			b := make([]byte, l.DataLength)
			if err := readFull(d.r, b, int64(l.DataOffset)); err != nil {
				return nil, fmt.Errorf("vhd: %s: reading parent locator at 0x%x: %w", d.name, l.DataOffset, err)
			}
			u := make([]uint16, 0, len(b)/2)
			for j := 0; j+1 < len(b); j += 2 {
				if v := binary.LittleEndian.Uint16(b[j:]); v != 0 {
					u = append(u, v)
				}
			}
			p := strings.ReplaceAll(string(utf16.Decode(u)), `\`, "/")
			if len(p) >= 2 && p[1] == ':' {
				// A Windows absolute path: only its base name can be
				// meaningful here, next to the child.
				p = filepath.Join(dir, filepath.Base(p))
			} else if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			out = append(out, p)
		}
	}
	if n := strings.ReplaceAll(d.header.ParentName, `\`, "/"); n != "" {
		out = append(out, filepath.Join(dir, filepath.Base(n)))
	}
	return out, nil
}

func (d *Disk) openParent(depth int) error {
	cands, err := d.parentCandidates()
	if err != nil {
		return err
	}
	for _, p := range cands {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		pd, err := open(p, false, depth+1, d.unlocked)
		if err != nil {
			return fmt.Errorf("vhd: %s: opening parent: %w", d.name, err)
		}
		if pd.footer.UniqueID != d.header.ParentUUID {
			pd.Close()
			return fmt.Errorf("vhd: %s: parent %s has unique id %x, the child expects %x", d.name, p, pd.footer.UniqueID, d.header.ParentUUID)
		}
		d.parent = pd
		return nil
	}
	return fmt.Errorf("vhd: %s: parent disk not found (tried %q)", d.name, cands)
}

// Footer returns a copy of the disk's footer.
func (d *Disk) Footer() Footer { return d.footer }

// Header returns a copy of the dynamic disk header, or nil for fixed disks.
func (d *Disk) Header() *Header {
	if d.header == nil {
		return nil
	}
	h := *d.header
	return &h
}

// Type returns the disk type from the footer.
func (d *Disk) Type() DiskType { return d.footer.DiskType }

// Parent returns the opened parent of a differencing disk, or nil.
func (d *Disk) Parent() blockdev.Device { return d.parent }

// Size returns the disk size in bytes (the footer's current size).
func (d *Disk) Size() int64 { return d.size }

// ReadAt reads disk content: allocated data from the file, unallocated
// blocks as zeros, or from the parent for a differencing disk (a run of
// unallocated blocks in one parent read).
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("read", off, len(p), d.size); err != nil {
		return 0, err
	}
	if d.header == nil {
		if err := readFull(d.r, p, off); err != nil {
			return 0, fmt.Errorf("vhd: %s: read at 0x%x: %w", d.name, off, err)
		}
		return len(p), nil
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		bi := pos / d.blockSize
		in := pos % d.blockSize
		n := min(int64(len(p)-done), d.blockSize-in)
		d.mu.RLock()
		e := d.bat[bi]
		bm := d.bitmaps[uint32(bi)]
		if e == unusedBAT {
			// A run of unallocated blocks is one parent read or one clear.
			for n < int64(len(p)-done) && d.bat[(pos+n)/d.blockSize] == unusedBAT {
				n = min(int64(len(p)-done), n+d.blockSize)
			}
		}
		d.mu.RUnlock()
		seg := p[done : done+int(n)]
		var err error
		switch {
		case e == unusedBAT && d.footer.DiskType == TypeDifferencing:
			err = d.readParent(seg, pos)
		case e == unusedBAT:
			clear(seg)
		case bm != nil:
			err = d.readBitmapped(seg, pos, int64(e)*sectorSize+d.bmSize, in, bm)
		default:
			err = readFull(d.r, seg, int64(e)*sectorSize+d.bmSize+in)
		}
		if err != nil {
			return done, fmt.Errorf("vhd: %s: read at 0x%x: %w", d.name, pos, err)
		}
		done += int(n)
	}
	return len(p), nil
}

func (d *Disk) readParent(p []byte, off int64) error {
	if d.parent == nil {
		return ErrNoParent
	}
	_, err := d.parent.ReadAt(p, off)
	return err
}

func bit(bm []byte, s int64) bool { return bm[s/8]&(0x80>>(s%8)) != 0 }

// readBitmapped reads a segment of a differencing disk's allocated block,
// sector run by sector run: present sectors (bit set; MSB of byte 0 is the
// first sector, as VirtualBox documents) from the file, others from the
// parent.
func (d *Disk) readBitmapped(p []byte, pos, data, in int64, bm []byte) error {
	for len(p) > 0 {
		s := in / sectorSize
		present := bit(bm, s)
		end := (s + 1) * sectorSize
		for end < in+int64(len(p)) && bit(bm, end/sectorSize) == present {
			end += sectorSize
		}
		n := min(end-in, int64(len(p)))
		var err error
		if present {
			err = readFull(d.r, p[:n], data+in)
		} else {
			err = d.readParent(p[:n], pos)
		}
		if err != nil {
			return err
		}
		p, pos, in = p[n:], pos+n, in+n
	}
	return nil
}

// Extents reports unallocated blocks as Zero (Parent for a differencing
// disk), allocated ones as Data, and for differencing disks the sectors
// their bitmaps mark absent as Parent. For fixed disks opened from a file,
// holes of the sparse file are Zero.
func (d *Disk) Extents(off, length int64) ([]blockdev.Extent, error) {
	if err := blockdev.CheckRange("extents", off, 0, d.size); err != nil {
		return nil, err
	}
	end := min(off+max(length, 0), d.size)
	if d.header == nil {
		if d.raw != nil {
			return d.raw.Extents(off, end-off)
		}
		return []blockdev.Extent{{Off: off, Len: end - off, State: blockdev.Data}}, nil
	}
	var out []blockdev.Extent
	d.mu.RLock()
	defer d.mu.RUnlock()
	for pos := off; pos < end; {
		bi := pos / d.blockSize
		bend := min((bi+1)*d.blockSize, end)
		e := d.bat[bi]
		switch bm := d.bitmaps[uint32(bi)]; {
		case e == unusedBAT && d.footer.DiskType == TypeDifferencing:
			out = blockdev.AppendExtent(out, pos, bend, blockdev.Parent)
		case e == unusedBAT:
			out = blockdev.AppendExtent(out, pos, bend, blockdev.Zero)
		case bm != nil:
			for s := pos; s < bend; {
				se := min((s/sectorSize+1)*sectorSize, bend)
				st := blockdev.Parent
				if bit(bm, (s%d.blockSize)/sectorSize) {
					st = blockdev.Data
				}
				out = blockdev.AppendExtent(out, s, se, st)
				s = se
			}
		default:
			out = blockdev.AppendExtent(out, pos, bend, blockdev.Data)
		}
		pos = bend
	}
	return out, nil
}

// ReadOnly reports whether the disk was opened without write access
// (always so for differencing disks and for NewReader).
func (d *Disk) ReadOnly() bool { return d.w == nil }

// Discard refuses: a dynamic VHD frees no block once allocated (the format
// has no way to return the space short of rewriting the file), and a fixed
// VHD is served like the raw disk it contains only by package blockdev;
// a correct refusal beats a discard that leaves old data readable.
func (d *Disk) Discard(off, length int64) error {
	if d.w == nil {
		return blockdev.ErrReadOnly
	}
	return fmt.Errorf("%s: %w (VHD)", d.name, blockdev.ErrNotSupported)
}

// Flush makes completed writes durable.
func (d *Disk) Flush() error {
	if d.w == nil || d.f == nil {
		return nil
	}
	return d.f.Sync()
}

// Close flushes the disk and closes it and its parent, releasing the locks.
func (d *Disk) Close() error {
	if err := d.Flush(); err != nil {
		d.Release()
		return err
	}
	return d.Release()
}

// Release closes the disk and its parent without flushing: completed writes
// reach stable storage whenever the kernel writes them back. It is for
// callers that, like qemu-img convert, do not promise durability; Close is
// the normal way.
func (d *Disk) Release() error {
	var err error
	if d.parent != nil {
		if perr := d.parent.Close(); err == nil {
			err = perr
		}
	}
	if d.f != nil {
		if cerr := d.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Path returns the file the disk was opened from.
func (d *Disk) Path() string { return d.name }

// FileNames returns the disk's one file, without the parent's.
func (d *Disk) FileNames() []string {
	if d.name == "" {
		return nil
	}
	return []string{d.name}
}
