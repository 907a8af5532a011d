package vmdk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/internal/atomicfile"
)

// ResizePlan says how Resize changes a VMDK's capacity.
type ResizePlan struct {
	Path       string
	CreateType string
	OldSize    int64
	NewSize    int64
	// Rewrite is true when the disk is copied into a new file that then
	// replaces it (temporary name + rename): a monolithicSparse disk whose
	// grain directory has no room for the new grain tables, or one that
	// shrinks (its grains past the new end would otherwise stay in the
	// file). Otherwise the file is changed in place.
	Rewrite bool
	// Reason says why the disk is rewritten.
	Reason string

	h        *Header
	desc     *Descriptor
	gd, rgd  []uint32
	gdRoom   int64 // grain directory entries that fit at GDOffset (and RGDOffset)
	fileSize int64
	extent   string // monolithicFlat: the extent file
}

// PlanResize checks that the VMDK at path can take the capacity size (a
// positive multiple of 512 up to MaxSize) and says how. Supported are
// monolithicSparse files (grown in place when the grain directory has
// room for the new grain tables, else rewritten) and monolithicFlat
// descriptors with one FLAT extent (the extent file is extended or cut
// and the descriptor rewritten). streamOptimized disks are read-only,
// delta disks depend on their parent's size, and split or VMFS disks are
// refused with ErrUnsupported. Nothing is written.
func PlanResize(path string, size int64) (*ResizePlan, error) {
	if size <= 0 || size%sectorSize != 0 || size > MaxSize {
		return nil, fmt.Errorf("vmdk: %s: size %d is not a positive multiple of 512 up to %d", path, size, int64(MaxSize))
	}
	f, st, head, err := openHead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &ResizePlan{Path: path, NewSize: size, fileSize: st.Size()}
	switch {
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == Magic:
		return p, p.planSparse(f)
	case IsDescriptor(head):
		return p, p.planFlat(f, st.Size())
	}
	return nil, &FormatError{File: path, Msg: "neither a sparse extent (KDMV magic) nor a descriptor file", Err: ErrFormat}
}

func (p *ResizePlan) planSparse(f *os.File) error {
	d, err := NewReader(f, p.fileSize)
	if err != nil {
		return rebase(err, p.Path, 0)
	}
	sp := d.exts[0].sp
	p.CreateType = d.desc.CreateType
	p.OldSize = d.size
	if sp.compressed || sp.markers {
		return fmt.Errorf("vmdk: %s: streamOptimized disks are read-only and cannot be resized (convert it to vmdk first): %w", p.Path, ErrUnsupported)
	}
	if d.desc.HasParent() {
		return fmt.Errorf("vmdk: %s: a delta disk has its parent's size (resize the parent and make a new delta): %w", p.Path, ErrUnsupported)
	}
	if sp.h.NumGTEsPerGT != GTEsPerGT {
		return fmt.Errorf("vmdk: %s: %d entries per grain table: %w", p.Path, sp.h.NumGTEsPerGT, ErrUnsupported)
	}
	h := sp.h
	p.h, p.desc, p.gd, p.rgd = &h, d.desc, sp.gd, sp.rgd
	if p.NewSize < p.OldSize {
		p.Rewrite, p.Reason = true, "the disk shrinks: only the grains inside the new size are kept"
		return nil
	}
	// The grain directory may grow into the space behind it up to the next
	// structure: a grain table, the other directory, the first grain.
	next := func(at uint64) int64 {
		lim := int64(h.Overhead)
		if lim <= int64(at) {
			lim = p.fileSize / sectorSize
		}
		for _, dir := range [][]uint32{p.gd, p.rgd} {
			for _, e := range dir {
				if e != 0 && int64(e) > int64(at) && int64(e) < lim {
					lim = int64(e)
				}
			}
		}
		for _, o := range []uint64{h.GDOffset, h.RGDOffset, h.DescriptorOffset} {
			if o != 0 && o > at && int64(o) < lim {
				lim = int64(o)
			}
		}
		return (lim - int64(at)) * sectorSize / 4
	}
	p.gdRoom = next(h.GDOffset)
	if p.rgd != nil {
		p.gdRoom = min(p.gdRoom, next(h.RGDOffset))
	}
	if need := p.entries(p.NewSize); need > p.gdRoom && !p.Rewrite {
		p.Rewrite, p.Reason = true, fmt.Sprintf("the grain directory has room for %d grain tables, %d are needed", p.gdRoom, need)
	}
	return nil
}

// entries is the number of grain tables a capacity of size bytes needs.
func (p *ResizePlan) entries(size int64) int64 {
	cover := int64(p.h.GrainSize) * sectorSize * GTEsPerGT
	return (size + cover - 1) / cover
}

func (p *ResizePlan) planFlat(f *os.File, size int64) error {
	if size > maxDescriptor {
		return &FormatError{File: p.Path, Msg: fmt.Sprintf("descriptor file of %d bytes exceeds %d", size, maxDescriptor), Err: ErrFormat}
	}
	text := make([]byte, size)
	if err := readFull(f, text, 0); err != nil {
		return fmt.Errorf("vmdk: %s: %w", p.Path, err)
	}
	desc, err := ParseDescriptor(text)
	if err != nil {
		return rebase(err, p.Path, 0)
	}
	p.desc, p.CreateType = desc, desc.CreateType
	if desc.HasParent() {
		return fmt.Errorf("vmdk: %s: a delta disk has its parent's size: %w", p.Path, ErrUnsupported)
	}
	if len(desc.Extents) != 1 || desc.Extents[0].Type != "FLAT" || desc.Extents[0].Access != "RW" {
		return fmt.Errorf("vmdk: %s: only descriptors with one read-write FLAT extent (monolithicFlat) are resized, not %q with %d extents: %w", p.Path, desc.CreateType, len(desc.Extents), ErrUnsupported)
	}
	el := desc.Extents[0]
	p.OldSize = el.Sectors * sectorSize
	p.extent = el.File
	if !filepath.IsAbs(p.extent) {
		p.extent = filepath.Join(filepath.Dir(p.Path), p.extent)
	}
	st, err := os.Stat(p.extent)
	if err != nil {
		return fmt.Errorf("vmdk: %s: extent file %q: %w", p.Path, el.File, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("vmdk: %s: extent %q is not a regular file: %w", p.Path, el.File, ErrUnsupported)
	}
	if el.Offset != 0 {
		return fmt.Errorf("vmdk: %s: extent %q starts at sector %d of its file: %w", p.Path, el.File, el.Offset, ErrUnsupported)
	}
	return nil
}

// Resize changes the capacity of the VMDK at path to size bytes, as
// planned by PlanResize, and returns the plan. Cancelling ctx stops a
// rewrite (the old disk stays); in-place changes are short and finish. Growing keeps every byte;
// shrinking drops everything past size (the caller checks that nothing
// there is in use). A rewrite goes to a temporary file beside path that
// replaces it only when complete; an in-place change orders its writes
// so that a crash leaves the old disk or the new one (see growSparse).
func Resize(ctx context.Context, path string, size int64) (*ResizePlan, error) {
	p, err := PlanResize(path, size)
	if err != nil {
		return nil, err
	}
	if p.NewSize == p.OldSize {
		return p, nil
	}
	switch {
	case p.extent != "":
		err = p.resizeFlat()
	case p.Rewrite:
		err = p.rewrite(ctx)
	default:
		err = p.growSparse()
	}
	if err != nil {
		return nil, fmt.Errorf("vmdk: resize %s: %w", path, err)
	}
	return p, nil
}

// geometry updates the descriptor's capacity and cylinder count.
func (p *ResizePlan) geometry(desc *Descriptor) {
	sectors := p.NewSize / sectorSize
	if len(desc.Extents) == 1 {
		desc.Extents[0].Sectors = sectors
	}
	heads, _ := strconv.ParseInt(desc.Get("ddb.geometry.heads"), 10, 64)
	spt, _ := strconv.ParseInt(desc.Get("ddb.geometry.sectors"), 10, 64)
	if heads <= 0 || spt <= 0 {
		return
	}
	for i, kv := range desc.DDB {
		if kv.Key == "ddb.geometry.cylinders" {
			desc.DDB[i].Value = strconv.FormatInt(min(sectors/(heads*spt), 16383), 10)
		}
	}
}

// growSparse grows a monolithicSparse file in place. Order of writes:
// new, empty grain tables appended at the end of the file; the tail of
// the last old grain table cleared (entries past the old capacity); the
// new grain directory entries written into the directory's free room
// (both copies); the descriptor; last the header's capacity, one sector
// write that commits. Until then every change lies where a reader of the
// old capacity never looks, so a crash leaves the old disk with some
// unreferenced space at its end.
func (p *ResizePlan) growSparse() error {
	f, err := os.OpenFile(p.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := blockdev.Lock(f, true); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != p.fileSize {
		return fmt.Errorf("%s changed since it was checked", p.Path)
	}
	h := *p.h
	oldN, newN := int64(len(p.gd)), p.entries(p.NewSize)
	gtBytes := int64(GTEsPerGT * 4)
	at := (p.fileSize + sectorSize - 1) / sectorSize * sectorSize
	dirs := [][]uint32{p.gd}
	offs := []uint64{h.GDOffset}
	if p.rgd != nil {
		dirs = append(dirs, p.rgd)
		offs = append(offs, h.RGDOffset)
	}
	zeros := make([]byte, gtBytes)
	newEntries := make([][]byte, len(dirs))
	for k := range dirs {
		b := make([]byte, 4*(newN-oldN))
		for i := oldN; i < newN; i++ {
			if at/sectorSize > 1<<32-1 {
				return errors.New("grain tables would lie past the 2 TiB a grain directory entry can address")
			}
			if _, err := f.WriteAt(zeros, at); err != nil {
				return err
			}
			binary.LittleEndian.PutUint32(b[4*(i-oldN):], uint32(at/sectorSize))
			at += gtBytes
		}
		newEntries[k] = b
	}
	// Entries of the last old table past the old capacity must read as
	// unallocated once the capacity covers them.
	grains := (p.OldSize + int64(h.GrainSize)*sectorSize - 1) / (int64(h.GrainSize) * sectorSize)
	if j := grains % GTEsPerGT; j != 0 && oldN > 0 {
		for _, dir := range dirs {
			if e := dir[oldN-1]; e != 0 {
				if _, err := f.WriteAt(zeros[:4*(GTEsPerGT-j)], int64(e)*sectorSize+4*j); err != nil {
					return err
				}
			}
		}
	}
	// A last grain only partly inside the old capacity: its tail becomes
	// disk content and must read as zeros.
	if in := p.OldSize % (int64(h.GrainSize) * sectorSize); in != 0 {
		g := grains - 1
		var e [4]byte
		if t := p.gd[g/GTEsPerGT]; t != 0 {
			if err := readFull(f, e[:], int64(t)*sectorSize+4*(g%GTEsPerGT)); err != nil {
				return err
			}
		}
		if s := int64(binary.LittleEndian.Uint32(e[:])); s > 1 {
			if err := zeroRange(f, s*sectorSize+in, int64(h.GrainSize)*sectorSize-in); err != nil {
				return err
			}
		}
	}
	for k, b := range newEntries {
		if _, err := f.WriteAt(b, int64(offs[k])*sectorSize+4*oldN); err != nil {
			return err
		}
	}
	if h.DescriptorOffset != 0 && h.DescriptorSize != 0 {
		desc := *p.desc
		desc.Extents = append([]ExtentLine(nil), desc.Extents...)
		desc.DDB = append([]KV(nil), desc.DDB...)
		p.geometry(&desc)
		text := desc.Marshal()
		if int64(len(text)) > int64(h.DescriptorSize)*sectorSize {
			return fmt.Errorf("descriptor of %d bytes does not fit in %d sectors", len(text), h.DescriptorSize)
		}
		buf := make([]byte, h.DescriptorSize*sectorSize)
		copy(buf, text)
		if _, err := f.WriteAt(buf, int64(h.DescriptorOffset)*sectorSize); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	h.Capacity = uint64(p.NewSize / sectorSize)
	if _, err := f.WriteAt(h.Marshal(), 0); err != nil {
		return err
	}
	return f.Sync()
}

// rewrite copies the disk into a new monolithicSparse file of the new
// size (same adapter type and CID) and renames it over the old one.
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
	dst, err := Create(out.Temp, p.NewSize, &CreateOptions{AdapterType: adapterOf(p.desc), CID: p.desc.CID})
	if err != nil {
		out.Abort()
		return err
	}
	fail := func(err error) error {
		dst.Release()
		out.Abort()
		return err
	}
	if err := blockdev.CopyData(ctx, src, dst, min(p.OldSize, p.NewSize)); err != nil {
		return fail(err)
	}
	// The embedded descriptor names the file; give it the final name.
	dst.desc.Extents[0].File = filepath.Base(p.Path)
	if err := dst.rewriteDesc(dst.desc.Marshal()); err != nil {
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		out.Abort()
		return err
	}
	return out.Commit()
}

func adapterOf(d *Descriptor) string {
	switch a := d.Get("ddb.adapterType"); a {
	case AdapterIDE, AdapterLSILogic, AdapterBusLogic:
		return a
	}
	return AdapterIDE
}

// resizeFlat extends or cuts the extent file, then replaces the
// descriptor (temporary file + rename): a crash before the rename leaves
// the old descriptor, whose extent is still wholly inside the file when
// growing. Shrinking cuts the file after the new descriptor is in place.
func (p *ResizePlan) resizeFlat() error {
	ef, err := os.OpenFile(p.extent, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer ef.Close()
	if err := blockdev.Lock(ef, true); err != nil {
		return err
	}
	if p.NewSize > p.OldSize {
		st, err := ef.Stat()
		if err != nil {
			return err
		}
		if st.Size() < p.NewSize {
			if err := ef.Truncate(p.NewSize); err != nil {
				return err
			}
		}
		// Bytes between the old size and the file's end (a file longer
		// than its extent) become disk content: clear them.
		if end := min(st.Size(), p.NewSize); end > p.OldSize {
			if err := zeroRange(ef, p.OldSize, end-p.OldSize); err != nil {
				return err
			}
		}
		if err := ef.Sync(); err != nil {
			return err
		}
	}
	desc := *p.desc
	desc.Extents = append([]ExtentLine(nil), desc.Extents...)
	desc.DDB = append([]KV(nil), desc.DDB...)
	p.geometry(&desc)
	out, err := atomicfile.Create(p.Path, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.Write(desc.Marshal()); err != nil {
		out.Abort()
		return err
	}
	if err := out.Commit(); err != nil {
		return err
	}
	if p.NewSize < p.OldSize {
		if err := ef.Truncate(p.NewSize); err != nil {
			return err
		}
		return ef.Sync()
	}
	return nil
}

func zeroRange(f *os.File, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
