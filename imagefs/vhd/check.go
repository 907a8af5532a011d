package vhd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Severities of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Finding is one problem Check found in a VHD file. Offset is a byte
// offset in File.
type Finding struct {
	Severity  string
	Structure string // "footer", "footer copy", "dynamic header", "BAT", "block bitmap"
	File      string
	Offset    int64
	Message   string
}

// maxFindings bounds the findings about BAT entries and bitmaps.
const maxFindings = 100

// Check checks the structure of the VHD file at path, as qemu-img check
// does for VHD and further: the footer (cookie, checksum, version, type,
// size) and, on dynamic and differencing disks, its copy at offset 0, the
// dynamic header (cookie, checksum, block size, BAT location and size),
// every BAT entry (block inside the file, not over the header, the BAT or
// another block) and the sector bitmaps of allocated blocks. It never
// opens a parent. The error is non-nil only when the file cannot be read
// or ctx is cancelled (polled every 4096 BAT entries and blocks).
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
	size := st.Size()
	var out []Finding
	add := func(sev, structure string, off int64, format string, a ...any) {
		out = append(out, Finding{Severity: sev, Structure: structure, File: path, Offset: off, Message: fmt.Sprintf(format, a...)})
	}
	fail := func(structure string, base int64, err error) {
		var fe *FormatError
		if errors.As(err, &fe) {
			add(SeverityError, structure, base+fe.Off, "%s", fe.Msg)
		} else {
			add(SeverityError, structure, base, "%v", err)
		}
	}
	if size < FooterSize {
		add(SeverityError, "footer", 0, "file of %d bytes is shorter than a VHD footer", size)
		return out, nil
	}
	tail := make([]byte, FooterSize)
	if err := readFull(f, tail, size-FooterSize); err != nil {
		return nil, fmt.Errorf("vhd: %s: reading footer: %w", path, err)
	}
	foot, ferr := ParseFooter(tail)
	if ferr != nil {
		fail("footer", size-FooterSize, ferr)
	}
	head := make([]byte, FooterSize)
	var copyFoot *Footer
	if size >= 2*FooterSize {
		if err := readFull(f, head, 0); err != nil {
			return nil, fmt.Errorf("vhd: %s: reading footer copy: %w", path, err)
		}
		if string(head[:8]) == FooterCookie {
			c, err := ParseFooter(head)
			if err != nil {
				fail("footer copy", 0, err)
			} else {
				copyFoot = c
			}
		}
	}
	if foot == nil {
		foot = copyFoot
	}
	if foot == nil {
		return out, nil
	}
	if foot.DiskType == TypeFixed {
		if int64(foot.CurrentSize) > size-FooterSize {
			add(SeverityError, "footer", size-FooterSize+48, "current size %d exceeds the %d data bytes of the file", foot.CurrentSize, size-FooterSize)
		} else if int64(foot.CurrentSize) < size-FooterSize {
			add(SeverityWarning, "footer", size-FooterSize+48, "current size %d leaves %d bytes of the file before the footer unused", foot.CurrentSize, size-FooterSize-int64(foot.CurrentSize))
		}
		return out, nil
	}
	if copyFoot == nil && ferr == nil {
		add(SeverityError, "footer copy", 0, "a %s disk must start with a copy of the footer", foot.DiskType)
	} else if ferr == nil && !bytes.Equal(head, tail) {
		i := 0
		for head[i] == tail[i] {
			i++
		}
		add(SeverityError, "footer copy", int64(i), "the footer copy at offset 0 differs from the footer at byte %d", i)
	}
	if foot.DataOffset < FooterSize || foot.DataOffset > uint64(size-FooterSize-HeaderSize) || size < 2*FooterSize+HeaderSize {
		add(SeverityError, "footer", size-FooterSize+16, "dynamic header offset 0x%x outside the file (size %d)", foot.DataOffset, size)
		return out, nil
	}
	hoff := int64(foot.DataOffset)
	hb := make([]byte, HeaderSize)
	if err := readFull(f, hb, hoff); err != nil {
		return nil, fmt.Errorf("vhd: %s: reading dynamic header: %w", path, err)
	}
	h, err := ParseHeader(hb)
	if err != nil {
		fail("dynamic header", hoff, err)
		return out, nil
	}
	bs := int64(h.BlockSize)
	bm := bitmapSize(bs)
	entries := int64(h.MaxTableEntries)
	disk := int64(foot.CurrentSize)
	if entries*bs < disk {
		add(SeverityError, "dynamic header", hoff+28, "%d BAT entries of %d bytes cover less than the disk size %d", entries, bs, disk)
	}
	batOff := int64(h.TableOffset)
	if h.TableOffset < FooterSize || h.TableOffset > uint64(size) || entries*4 > size-batOff {
		add(SeverityError, "dynamic header", hoff+16, "BAT of %d entries at 0x%x extends past the end of the file (size %d)", entries, h.TableOffset, size)
		return out, nil
	}
	if batOff < hoff+HeaderSize && hoff < batOff+entries*4 {
		add(SeverityError, "BAT", batOff, "BAT overlaps the dynamic header")
	}
	used := min(entries, (disk+bs-1)/bs)
	raw := make([]byte, entries*4)
	if err := readFull(f, raw, batOff); err != nil {
		return nil, fmt.Errorf("vhd: %s: reading BAT: %w", path, err)
	}
	type blk struct{ idx, off int64 }
	var blocks []blk
	n := 0
	metaEnd := max(hoff+HeaderSize, batOff+entries*4)
	for i := int64(0); i < entries; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e := binary.BigEndian.Uint32(raw[4*i:])
		if e == unusedBAT {
			continue
		}
		where := batOff + 4*i
		if i >= used {
			if n++; n <= maxFindings {
				add(SeverityWarning, "BAT", where, "entry %d lies beyond the disk size but names a block at sector %d", i, e)
			}
			continue
		}
		bo := int64(e) * sectorSize
		switch {
		case bo+bm+bs > size-FooterSize:
			if n++; n <= maxFindings {
				add(SeverityError, "BAT", where, "entry %d: block at 0x%x (%d bytes with its bitmap) extends past the footer at 0x%x", i, bo, bm+bs, size-FooterSize)
			}
			continue
		case bo < metaEnd && bo+bm+bs > min(hoff, batOff):
			if n++; n <= maxFindings {
				add(SeverityError, "BAT", where, "entry %d: block at 0x%x overlaps the dynamic header or the BAT", i, bo)
			}
			continue
		case bo < FooterSize:
			if n++; n <= maxFindings {
				add(SeverityError, "BAT", where, "entry %d: block at 0x%x overlaps the footer copy", i, bo)
			}
			continue
		}
		blocks = append(blocks, blk{i, bo})
	}
	sort.Slice(blocks, func(a, b int) bool { return blocks[a].off < blocks[b].off })
	for k := 1; k < len(blocks); k++ {
		a, b := blocks[k-1], blocks[k]
		if b.off < a.off+bm+bs {
			if n++; n <= maxFindings {
				add(SeverityError, "BAT", batOff+4*b.idx, "entries %d and %d: blocks at 0x%x and 0x%x overlap", a.idx, b.idx, a.off, b.off)
			}
		}
	}
	// Sector bitmaps: on a dynamic disk every sector of an allocated block
	// is in use (qemu and Virtual PC set all bits); an all-clear bitmap
	// means a reader that honours it returns zeros for the whole block.
	// Bits past the disk's last sector must be clear on either kind.
	buf := make([]byte, bm)
	for k, b := range blocks {
		if k%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := readFull(f, buf, b.off); err != nil {
			return nil, fmt.Errorf("vhd: %s: reading block bitmap at 0x%x: %w", path, b.off, err)
		}
		sectors := bs / sectorSize
		if rest := disk - b.idx*bs; rest < bs {
			sectors = rest / sectorSize
		}
		if foot.DiskType == TypeDynamic {
			clear := true
			for s := int64(0); s < sectors; s++ {
				if bit(buf, s) {
					clear = false
					break
				}
			}
			if clear {
				if n++; n <= maxFindings {
					add(SeverityWarning, "block bitmap", b.off, "block %d is allocated but its sector bitmap marks no sector in use", b.idx)
				}
			}
		}
	}
	if n > maxFindings {
		add(SeverityError, "BAT", batOff, "%d more findings about BAT entries and bitmaps not listed", n-maxFindings)
	}
	return out, nil
}
