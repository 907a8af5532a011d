package vmdk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Severities of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Finding is one problem Check found. Offset is a byte offset in File.
type Finding struct {
	Severity  string
	Structure string // "header", "descriptor", "grain directory", "redundant grain directory", "grain table", "grain"
	File      string
	Offset    int64
	Message   string
}

// maxCheckFindings bounds the findings about grain tables and grains.
const maxCheckFindings = 100

type vmdkChecker struct {
	ctx context.Context
	out []Finding
	n   int // grain-level findings so far
}

func (c *vmdkChecker) add(sev, structure, file string, off int64, format string, a ...any) {
	c.out = append(c.out, Finding{Severity: sev, Structure: structure, File: file, Offset: off, Message: fmt.Sprintf(format, a...)})
}

// addBounded adds a grain-level finding unless too many were reported.
func (c *vmdkChecker) addBounded(sev, structure, file string, off int64, format string, a ...any) {
	if c.n++; c.n <= maxCheckFindings {
		c.add(sev, structure, file, off, format, a...)
	}
}

func (c *vmdkChecker) fail(structure, file string, base int64, err error) {
	var fe *FormatError
	if errors.As(err, &fe) {
		c.add(SeverityError, structure, file, base+fe.Off, "%s", fe.Msg)
		return
	}
	c.add(SeverityError, structure, file, base, "%v", err)
}

// Check checks the structure of the VMDK at path (a monolithicSparse or
// streamOptimized file, or a text descriptor and its extent files), as
// qemu-img check does and further: the sparse header, the embedded or
// separate descriptor against the extents (create type, sizes, parent
// CID), every grain directory and grain table entry inside the file,
// grain tables and grains overlapping each other or the metadata, the
// redundant grain directory and its tables against the primary ones, the
// markers of compressed grains, and the unclean-shutdown flag. It never
// opens a parent disk. The error is non-nil only when path itself cannot
// be read or ctx is cancelled (polled once per grain table).
func Check(ctx context.Context, path string) ([]Finding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	c := &vmdkChecker{ctx: ctx}
	head := make([]byte, min(st.Size(), HeaderSize))
	if err := readFull(f, head, 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: %w", path, err)
	}
	if len(head) >= 4 && binary.LittleEndian.Uint32(head) == Magic {
		c.sparse(f, st.Size(), path, -1)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.n > maxCheckFindings {
			c.add(SeverityError, "grain table", path, 0, "%d more findings about grain tables and grains not listed", c.n-maxCheckFindings)
		}
		return c.out, nil
	}
	if st.Size() > maxDescriptor {
		c.add(SeverityError, "descriptor", path, 0, "descriptor file of %d bytes exceeds %d", st.Size(), maxDescriptor)
		return c.out, nil
	}
	text := make([]byte, st.Size())
	if err := readFull(f, text, 0); err != nil {
		return nil, fmt.Errorf("vmdk: %s: %w", path, err)
	}
	desc, err := ParseDescriptor(text)
	if err != nil {
		c.fail("descriptor", path, 0, err)
		return c.out, nil
	}
	c.descriptor(desc, path, 0, -1)
	dir := filepath.Dir(path)
	for _, el := range desc.Extents {
		if el.Type == "ZERO" {
			continue
		}
		p := el.File
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		ef, err := os.Open(p)
		if err != nil {
			c.add(SeverityError, "descriptor", path, el.Pos, "extent file %q: %v", el.File, err)
			continue
		}
		est, err := ef.Stat()
		if err != nil {
			ef.Close()
			return nil, err
		}
		switch el.Type {
		case "FLAT", "VMFS":
			if need := (el.Offset + el.Sectors) * sectorSize; est.Size() < need {
				c.add(SeverityError, "descriptor", path, el.Pos, "extent file %q has %d bytes, the extent needs %d", el.File, est.Size(), need)
			}
		case "SPARSE", "VMFSSPARSE":
			c.sparse(ef, est.Size(), p, el.Sectors)
		}
		ef.Close()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if c.n > maxCheckFindings {
		c.add(SeverityError, "grain table", path, 0, "%d more findings about grain tables and grains not listed", c.n-maxCheckFindings)
	}
	return c.out, nil
}

// descriptor checks a parsed descriptor: a create type that matches its
// extents, and the parent fields of a delta. capacity, when >= 0, is the
// embedding sparse extent's size in sectors.
func (c *vmdkChecker) descriptor(d *Descriptor, file string, base, capacity int64) {
	if len(d.Extents) == 0 {
		c.add(SeverityError, "descriptor", file, base, "descriptor lists no extents")
		return
	}
	var total int64
	for _, el := range d.Extents {
		total += el.Sectors
		want := map[string][]string{
			TypeMonolithicSparse: {"SPARSE"}, TypeStreamOptimized: {"SPARSE"}, TypeMonolithicFlat: {"FLAT"},
			"twoGbMaxExtentSparse": {"SPARSE"}, "twoGbMaxExtentFlat": {"FLAT"},
		}[d.CreateType]
		if want != nil && el.Type != want[0] && el.Type != "ZERO" {
			c.add(SeverityError, "descriptor", file, base+el.Pos, "createType %s with a %s extent", d.CreateType, el.Type)
		}
	}
	if capacity >= 0 {
		if len(d.Extents) != 1 {
			c.add(SeverityError, "descriptor", file, base, "embedded descriptor lists %d extents, want 1", len(d.Extents))
		} else if total != capacity {
			c.add(SeverityError, "descriptor", file, base+d.Extents[0].Pos, "extent of %d sectors, the sparse header's capacity is %d", total, capacity)
		}
	}
	if d.ParentFileNameHint != "" && d.ParentCID == NoParentCID {
		c.add(SeverityError, "descriptor", file, base, "parentFileNameHint %q but parentCID ffffffff (no parent)", d.ParentFileNameHint)
	}
	if d.ParentFileNameHint == "" && d.ParentCID != NoParentCID {
		c.add(SeverityError, "descriptor", file, base, "parentCID %08x but no parentFileNameHint", d.ParentCID)
	}
}

type span struct {
	start, end int64 // bytes
	what       string
}

// sparse checks one sparse extent file. want is the extent size the
// descriptor gives in sectors, or -1 for a monolithic file.
func (c *vmdkChecker) sparse(f *os.File, size int64, name string, want int64) {
	hb := make([]byte, HeaderSize)
	if err := readFull(f, hb, 0); err != nil {
		c.add(SeverityError, "header", name, 0, "sparse header truncated: file of %d bytes", size)
		return
	}
	h, err := ParseHeader(hb)
	if err != nil {
		c.fail("header", name, 0, err)
		return
	}
	hdrOff := int64(0)
	if h.GDOffset == GDAtEnd {
		if size < 4*sectorSize {
			c.add(SeverityError, "header", name, 56, "grain directory at end, but the file of %d bytes has no footer", size)
			return
		}
		b := make([]byte, 3*sectorSize)
		if err := readFull(f, b, size-3*sectorSize); err != nil {
			c.add(SeverityError, "header", name, size-3*sectorSize, "footer unreadable: %v", err)
			return
		}
		if t := binary.LittleEndian.Uint32(b[12:]); t != MarkerFooter {
			c.add(SeverityError, "header", name, size-3*sectorSize+12, "marker type %d before the footer, want %d", t, MarkerFooter)
			return
		}
		if t := binary.LittleEndian.Uint32(b[2*sectorSize+12:]); t != MarkerEOS {
			c.add(SeverityError, "header", name, size-sectorSize+12, "marker type %d after the footer, want %d (end of stream)", t, MarkerEOS)
		}
		fh, err := ParseHeader(b[sectorSize : 2*sectorSize])
		if err != nil {
			c.fail("header", name, size-2*sectorSize, err)
			return
		}
		if fh.GDOffset == GDAtEnd {
			c.add(SeverityError, "header", name, size-2*sectorSize+56, "footer does not give the grain directory offset")
			return
		}
		h, hdrOff = fh, size-2*sectorSize
	}
	if h.UncleanShutdown {
		c.add(SeverityWarning, "header", name, hdrOff+72, "unclean shutdown flag is set: the image was not closed cleanly")
	}
	compressed := h.Flags&FlagCompressed != 0
	capBytes := int64(h.Capacity) * sectorSize
	grainBytes := int64(h.GrainSize) * sectorSize
	if want >= 0 && int64(h.Capacity) < want {
		c.add(SeverityError, "header", name, hdrOff+12, "capacity of %d sectors, the descriptor's extent has %d", h.Capacity, want)
	}
	meta := []span{{0, sectorSize, "header"}}
	if h.DescriptorOffset != 0 && h.DescriptorSize != 0 {
		doff, dlen := int64(h.DescriptorOffset)*sectorSize, int64(h.DescriptorSize)*sectorSize
		if h.DescriptorOffset > uint64(size/sectorSize) || dlen > size-doff {
			c.add(SeverityError, "descriptor", name, hdrOff+28, "descriptor of %d sectors at sector %d extends past the end of the file (size %d)", h.DescriptorSize, h.DescriptorOffset, size)
		} else {
			meta = append(meta, span{doff, doff + dlen, "descriptor"})
			text := make([]byte, dlen)
			if err := readFull(f, text, doff); err == nil {
				if d, err := ParseDescriptor(text); err != nil {
					c.fail("descriptor", name, doff, err)
				} else if want < 0 {
					c.descriptor(d, name, doff, int64(h.Capacity))
					if compressed != (d.CreateType == TypeStreamOptimized) {
						c.add(SeverityError, "descriptor", name, doff, "createType %s, but the header's compressed flag is %v", d.CreateType, compressed)
					}
				}
			}
		}
	}
	cover := int64(h.NumGTEsPerGT) * grainBytes
	entries := (capBytes + cover - 1) / cover
	gtBytes := int64(h.NumGTEsPerGT) * 4
	readDir := func(off uint64, field int64, structure string) []uint32 {
		base := int64(off) * sectorSize
		if off == 0 || off > uint64(size/sectorSize) || entries*4 > size-base {
			c.add(SeverityError, structure, name, hdrOff+field, "grain directory of %d entries at sector %d extends past the end of the file (size %d)", entries, off, size)
			return nil
		}
		b := make([]byte, entries*4)
		if err := readFull(f, b, base); err != nil {
			c.add(SeverityError, structure, name, base, "unreadable: %v", err)
			return nil
		}
		meta = append(meta, span{base, base + entries*4, structure})
		gd := make([]uint32, entries)
		for i := range gd {
			gd[i] = binary.LittleEndian.Uint32(b[4*i:])
			if e := int64(gd[i]); e != 0 && e*sectorSize+gtBytes > size {
				c.addBounded(SeverityError, structure, name, base+4*int64(i), "entry %d: grain table at sector %d extends past the end of the file (size %d)", i, e, size)
				gd[i] = 0
			}
		}
		return gd
	}
	gd := readDir(h.GDOffset, 56, "grain directory")
	if gd == nil {
		return
	}
	var rgd []uint32
	if h.Flags&FlagRedundantGD != 0 && h.RGDOffset != 0 {
		rgd = readDir(h.RGDOffset, 48, "redundant grain directory")
	}
	readGT := func(sector uint32) []uint32 {
		b := make([]byte, gtBytes)
		if err := readFull(f, b, int64(sector)*sectorSize); err != nil {
			return nil
		}
		t := make([]uint32, h.NumGTEsPerGT)
		for j := range t {
			t[j] = binary.LittleEndian.Uint32(b[4*j:])
		}
		return t
	}
	for i, e := range gd {
		if e != 0 {
			meta = append(meta, span{int64(e) * sectorSize, int64(e)*sectorSize + gtBytes, fmt.Sprintf("grain table %d", i)})
		}
	}
	for i, e := range rgd {
		if e != 0 {
			meta = append(meta, span{int64(e) * sectorSize, int64(e)*sectorSize + gtBytes, fmt.Sprintf("redundant grain table %d", i)})
		}
	}
	var grains []span
	n := int64(h.NumGTEsPerGT)
	zeroed := h.Flags&FlagZeroedGTE != 0
	for i, e := range gd {
		if c.ctx.Err() != nil {
			return // Check returns the context's error
		}
		var t []uint32
		if e != 0 {
			t = readGT(e)
		}
		if rgd != nil && i < len(rgd) {
			var rt []uint32
			if rgd[i] != 0 {
				rt = readGT(rgd[i])
			}
			if (t == nil) != (rt == nil) {
				c.addBounded(SeverityError, "redundant grain directory", name, int64(h.RGDOffset)*sectorSize+4*int64(i), "entry %d: the redundant grain directory %s, the primary %s", i, has(rt != nil), has(t != nil))
			} else if t != nil && !slices.Equal(t, rt) {
				j := 0
				for t[j] == rt[j] {
					j++
				}
				c.addBounded(SeverityError, "redundant grain directory", name, int64(rgd[i])*sectorSize+4*int64(j), "redundant grain table %d differs from the primary at entry %d (%d vs %d)", i, j, rt[j], t[j])
			}
		}
		for j, g := range t {
			if g == 0 || (g == 1 && zeroed) {
				continue
			}
			idx := int64(i)*n + int64(j)
			where := int64(e)*sectorSize + 4*int64(j)
			if idx*grainBytes >= capBytes {
				c.addBounded(SeverityError, "grain table", name, where, "entry %d of table %d: grain %d lies beyond the capacity", j, i, idx)
				continue
			}
			start := int64(g) * sectorSize
			length := min(grainBytes, capBytes-idx*grainBytes)
			if compressed {
				m := make([]byte, 12)
				if start+12 > size || readFull(f, m, start) != nil {
					c.addBounded(SeverityError, "grain table", name, where, "grain %d: compressed grain at 0x%x lies past the end of the file (size %d)", idx, start, size)
					continue
				}
				lba, csize := binary.LittleEndian.Uint64(m), int64(binary.LittleEndian.Uint32(m[8:]))
				if int64(lba) != idx*int64(h.GrainSize) {
					c.addBounded(SeverityError, "grain", name, start, "grain %d: marker names sector %d, want %d", idx, lba, idx*int64(h.GrainSize))
				}
				length = (12 + csize + sectorSize - 1) / sectorSize * sectorSize
			}
			if start+length > size {
				c.addBounded(SeverityError, "grain table", name, where, "grain %d at sector %d extends past the end of the file (size %d)", idx, g, size)
				continue
			}
			grains = append(grains, span{start, start + length, fmt.Sprintf("grain %d", idx)})
		}
	}
	// Overlaps: metadata with metadata and grains, grains with grains.
	all := append(meta, grains...)
	sort.Slice(all, func(a, b int) bool { return all[a].start < all[b].start })
	for k := 1; k < len(all); k++ {
		prev := all[k-1]
		for p := k - 1; p >= 0 && p >= k-8; p-- {
			if all[p].end > prev.end {
				prev = all[p]
			}
		}
		if all[k].start < prev.end {
			c.addBounded(SeverityError, "grain", name, all[k].start, "%s at 0x%x overlaps %s at 0x%x", all[k].what, all[k].start, prev.what, prev.start)
		}
	}
}

func has(b bool) string {
	if b {
		return "has one"
	}
	return "has no table"
}
