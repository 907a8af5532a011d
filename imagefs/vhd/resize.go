package vhd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/internal/atomicfile"
)

// ResizePlan says how Resize changes a VHD's size.
type ResizePlan struct {
	Path    string
	Type    DiskType
	OldSize int64
	NewSize int64
	// Rewrite is true when a dynamic disk is copied into a new file that
	// replaces it (temporary name + rename): its block allocation table
	// has no room for the new entries (blocks follow it), or it shrinks.
	Rewrite bool
	// Reason says why the disk is rewritten.
	Reason string

	d *Disk
}

// Geometry returns the CHS geometry the footer gets for the new size.
func (p *ResizePlan) Geometry() Geometry { return geometryFor(p.NewSize) }

func geometryFor(size int64) Geometry {
	if size/sectorSize > MaxCHSSectors {
		return Geometry{Cylinders: 65535, Heads: 16, SectorsPerTrack: 255}
	}
	return CHS(size / sectorSize)
}

// PlanResize checks that the fixed or dynamic VHD at path can take the
// size (a positive multiple of 512 up to MaxSize, 2040 GiB) and says
// how; differencing disks are refused with ErrUnsupported. The footer
// gets the size as its current size and CHS(size) as its geometry; pass
// the size through RoundSize first so that readers that go by the
// geometry (qemu for VHDs other programs made) agree. Nothing is
// written.
func PlanResize(path string, size int64) (*ResizePlan, error) {
	if size <= 0 || size%sectorSize != 0 || size > MaxSize {
		return nil, fmt.Errorf("vhd: %s: size %d is not a positive multiple of 512 up to %d bytes (2040 GiB, the format's limit)", path, size, int64(MaxSize))
	}
	d, fileSize, err := parseFile(path)
	if err != nil {
		return nil, err
	}
	p := &ResizePlan{Path: path, Type: d.footer.DiskType, OldSize: d.size, NewSize: size, d: d}
	switch d.footer.DiskType {
	case TypeFixed:
		if d.size != fileSize-FooterSize {
			return nil, fmt.Errorf("vhd: %s: fixed disk of %d bytes in a file of %d bytes (data and one footer expected): %w", path, d.size, fileSize, ErrUnsupported)
		}
		return p, nil
	case TypeDynamic:
	default:
		return nil, fmt.Errorf("vhd: %s: a differencing disk has its parent's size (resize the parent and make a new child): %w", path, ErrUnsupported)
	}
	if size < d.size {
		p.Rewrite, p.Reason = true, "the disk shrinks: only the blocks inside the new size are kept"
		return p, nil
	}
	need := (size + d.blockSize - 1) / d.blockSize
	if need > int64(d.header.MaxTableEntries) {
		if lim := p.batLimit(); lim >= 0 && int64(d.header.TableOffset)+batBytes(need) > lim {
			p.Rewrite = true
			p.Reason = fmt.Sprintf("the block allocation table has room for %d entries before the first block, %d are needed", (lim-int64(d.header.TableOffset))/4, need)
		}
	}
	return p, nil
}

func batBytes(n int64) int64 { return (n*4 + sectorSize - 1) / sectorSize * sectorSize }

// batLimit returns the offset of the first structure after the BAT (a
// block, the dynamic header), or -1 when only the trailing footer
// follows it, which can move.
func (p *ResizePlan) batLimit() int64 {
	d := p.d
	t := int64(d.header.TableOffset)
	lim := int64(-1)
	less := func(o int64) {
		if o > t && (lim < 0 || o < lim) {
			lim = o
		}
	}
	for _, e := range d.bat {
		if e != unusedBAT {
			less(int64(e) * sectorSize)
		}
	}
	less(int64(d.footer.DataOffset))
	return lim
}

// Resize changes the size of the VHD at path as planned by PlanResize and
// returns the plan. Growing keeps every byte; shrinking drops everything
// past size (the caller checks that nothing there is in use). Cancelling
// ctx stops a rewrite (the old disk stays); in-place changes are short and
// finish.
func Resize(ctx context.Context, path string, size int64) (*ResizePlan, error) {
	p, err := PlanResize(path, size)
	if err != nil {
		return nil, err
	}
	if p.NewSize == p.OldSize {
		return p, nil
	}
	switch {
	case p.Type == TypeFixed:
		err = p.resizeFixed()
	case p.Rewrite:
		err = p.rewrite(ctx)
	default:
		err = p.growDynamic()
	}
	if err != nil {
		return nil, fmt.Errorf("vhd: resize %s: %w", path, err)
	}
	return p, nil
}

func (p *ResizePlan) newFooter() Footer {
	ft := p.d.footer
	ft.CurrentSize = uint64(p.NewSize)
	ft.Geometry = geometryFor(p.NewSize)
	return ft
}

func openLocked(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if err := blockdev.Lock(f, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// resizeFixed moves the footer of a fixed disk. Growing writes the new
// footer past the old end first (one write that also extends the file,
// and from then on the last 512 bytes are the new footer), then clears
// the old footer, now disk content. Shrinking writes the new footer
// inside the old data, then cuts the file behind it; until the cut the
// old footer is still the last sector.
func (p *ResizePlan) resizeFixed() error {
	f, err := openLocked(p.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	ft := p.newFooter()
	if _, err := f.WriteAt(ft.Marshal(), p.NewSize); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if p.NewSize > p.OldSize {
		if _, err := f.WriteAt(make([]byte, FooterSize), p.OldSize); err != nil {
			return err
		}
	} else if err := f.Truncate(p.NewSize + FooterSize); err != nil {
		return err
	}
	return f.Sync()
}

// growDynamic grows a dynamic disk in place. When the BAT must grow past
// the trailing footer, a footer (still of the old size) is first written
// at the new end of the file so that the last sector always holds one.
// Then the new BAT entries are marked unused, the header gets the new
// entry count, the footer copy at offset 0 the new size, and last the
// trailing footer, which commits: readers take the size from it.
func (p *ResizePlan) growDynamic() error {
	d := p.d
	f, err := openLocked(p.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != d.fileSize {
		return fmt.Errorf("%s changed since it was checked", p.Path)
	}
	h := *d.header
	used := int64(len(d.bat))
	need := (p.NewSize + d.blockSize - 1) / d.blockSize
	entries := max(need, int64(h.MaxTableEntries))
	batEnd := int64(h.TableOffset) + batBytes(entries)
	footerAt := d.next
	if batEnd > footerAt {
		footerAt = batEnd
		old := d.footer
		if _, err := f.WriteAt(old.Marshal(), footerAt); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	// Entries from the last used one on read as unallocated; a BAT that
	// reserved entries may hold anything there.
	if need > used {
		b := bytes.Repeat([]byte{0xff}, int((need-used)*4))
		if _, err := f.WriteAt(b, int64(h.TableOffset)+4*used); err != nil {
			return err
		}
	}
	if entries > int64(h.MaxTableEntries) {
		h.MaxTableEntries = uint32(entries)
		if _, err := f.WriteAt(h.Marshal(), int64(d.footer.DataOffset)); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	ft := p.newFooter()
	fb := ft.Marshal()
	if _, err := f.WriteAt(fb, 0); err != nil {
		return err
	}
	if _, err := f.WriteAt(fb, footerAt); err != nil {
		return err
	}
	return f.Sync()
}

// rewrite copies the disk into a new dynamic VHD of the new size (same
// block size and unique id) and renames it over the old one.
func (p *ResizePlan) rewrite(ctx context.Context) error {
	src, err := Open(p.Path, false)
	if err != nil {
		return err
	}
	defer src.Close()
	out, err := atomicfile.CreateNamed(p.Path)
	if err != nil {
		return err
	}
	dst, err := Create(out.Temp, p.NewSize, &CreateOptions{
		Type: TypeDynamic, BlockSize: uint32(p.d.blockSize), UniqueID: p.d.footer.UniqueID, Time: time.Now(),
	})
	if err != nil {
		out.Abort()
		return err
	}
	if err := blockdev.CopyData(ctx, src, dst, min(p.OldSize, p.NewSize)); err != nil {
		dst.Close()
		out.Abort()
		return err
	}
	if err := dst.Close(); err != nil {
		out.Abort()
		return err
	}
	return out.Commit()
}
