package vhd

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/xpboot/xpboot/blockdev"
)

// CreateOptions tunes Create. The zero value makes a dynamic disk with
// 2 MiB blocks, a random unique id and the current time stamp.
type CreateOptions struct {
	Type      DiskType  // TypeDynamic (default when zero) or TypeFixed
	BlockSize uint32    // dynamic disks; 0 means DefaultBlockSize
	UniqueID  [16]byte  // zero means random
	Time      time.Time // footer time stamp; zero means now
}

// Create makes a new, empty VHD of size bytes at path, which must not exist,
// and returns it open for writing (exclusively locked). Nothing is flushed
// before Flush or Close. size must be a
// positive multiple of 512 no larger than MaxSize; it becomes the current
// size, and the geometry is CHS(size/512) (the maximum geometry above
// MaxCHSSectors). Use RoundSize first for a size every reader agrees on.
// A fixed disk is a sparse file: size bytes of holes and the footer.
func Create(path string, size int64, opts *CreateOptions) (*Disk, error) {
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if o.Type == 0 {
		o.Type = TypeDynamic
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if size <= 0 || size%sectorSize != 0 || size > MaxSize {
		return nil, fmt.Errorf("vhd: create %s: size %d is not a positive multiple of 512 up to %d", path, size, int64(MaxSize))
	}
	if o.Type != TypeFixed && o.Type != TypeDynamic {
		return nil, fmt.Errorf("vhd: create %s: can only create fixed and dynamic disks, not %v: %w", path, o.Type, ErrUnsupported)
	}
	if bs := o.BlockSize; bs < minBlock || bs > maxBlock || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("vhd: create %s: block size %d is not a power of two from %d to %d", path, bs, minBlock, maxBlock)
	}
	if o.UniqueID == ([16]byte{}) {
		if _, err := rand.Read(o.UniqueID[:]); err != nil {
			return nil, err
		}
		o.UniqueID[6] = o.UniqueID[6]&0x0f | 0x40 // RFC 4122 version 4
		o.UniqueID[8] = o.UniqueID[8]&0x3f | 0x80
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	geo := Geometry{Cylinders: 65535, Heads: 16, SectorsPerTrack: 255}
	if size/sectorSize <= MaxCHSSectors {
		geo = CHS(size / sectorSize)
	}
	ft := &Footer{
		Features:       2,
		Version:        0x00010000,
		DataOffset:     noOffset,
		Timestamp:      uint32(max(o.Time.Unix()-vhdEpochUnix, 0)),
		CreatorApp:     creatorApp,
		CreatorVersion: creatorVersion,
		CreatorHostOS:  creatorHostOS,
		OriginalSize:   uint64(size),
		CurrentSize:    uint64(size),
		Geometry:       geo,
		DiskType:       o.Type,
		UniqueID:       o.UniqueID,
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Disk, error) {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("vhd: create %s: %w", path, err)
	}
	if err := blockdev.Lock(f, true); err != nil {
		return fail(err)
	}
	if o.Type == TypeFixed {
		if err := f.Truncate(size); err != nil {
			return fail(err)
		}
		if _, err := f.WriteAt(ft.Marshal(), size); err != nil {
			return fail(err)
		}
	} else {
		ft.DataOffset = FooterSize
		entries := (size + int64(o.BlockSize) - 1) / int64(o.BlockSize)
		batBytes := (entries*4 + sectorSize - 1) / sectorSize * sectorSize
		h := &Header{
			DataOffset:      noOffset,
			TableOffset:     FooterSize + HeaderSize,
			HeaderVersion:   0x00010000,
			MaxTableEntries: uint32(entries),
			BlockSize:       o.BlockSize,
		}
		fb := ft.Marshal()
		meta := make([]byte, FooterSize+HeaderSize+batBytes+FooterSize)
		copy(meta, fb)
		copy(meta[FooterSize:], h.Marshal())
		bat := meta[FooterSize+HeaderSize : FooterSize+HeaderSize+batBytes]
		for i := range bat {
			bat[i] = 0xff
		}
		copy(meta[len(meta)-FooterSize:], fb)
		if _, err := f.WriteAt(meta, 0); err != nil {
			return fail(err)
		}
	}
	d, err := newFromFile(f, true, 0, false)
	if err != nil {
		return fail(err)
	}
	return d, nil
}

// WriteAt writes disk content. On a dynamic disk, a write to an unallocated
// block appends the block (full sector bitmap, zeros where p does not
// reach), moves the footer behind it and then sets the BAT entry, so a crash
// in between leaks space but never exposes garbage.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if d.w == nil {
		return 0, blockdev.ErrReadOnly
	}
	if err := blockdev.CheckRange("write", off, len(p), d.size); err != nil {
		return 0, err
	}
	if d.header == nil {
		if _, err := d.w.WriteAt(p, off); err != nil {
			return 0, fmt.Errorf("vhd: %s: write at 0x%x: %w", d.name, off, err)
		}
		return len(p), nil
	}
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		bi := pos / d.blockSize
		in := pos % d.blockSize
		n := min(int64(len(p)-done), d.blockSize-in)
		seg := p[done : done+int(n)]
		d.mu.RLock()
		e := d.bat[bi]
		d.mu.RUnlock()
		var err error
		if e != unusedBAT {
			_, err = d.w.WriteAt(seg, int64(e)*sectorSize+d.bmSize+in)
		} else {
			err = d.allocate(bi, in, seg)
		}
		if err != nil {
			return done, fmt.Errorf("vhd: %s: write at 0x%x: %w", d.name, pos, err)
		}
		done += int(n)
	}
	return len(p), nil
}

// allocate appends block bi holding seg at offset in, zeros elsewhere.
func (d *Disk) allocate(bi, in int64, seg []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.bat[bi]; e != unusedBAT { // allocated meanwhile
		_, err := d.w.WriteAt(seg, int64(e)*sectorSize+d.bmSize+in)
		return err
	}
	at := d.next
	if at/sectorSize > int64(unusedBAT-1) {
		return fmt.Errorf("file would exceed the 2 TiB a BAT entry can address")
	}
	bm := bytes.Repeat([]byte{0xff}, int(d.bmSize))
	if _, err := d.w.WriteAt(bm, at); err != nil {
		return err
	}
	data := seg
	if int64(len(seg)) != d.blockSize {
		data = make([]byte, d.blockSize)
		copy(data[in:], seg)
	}
	if _, err := d.w.WriteAt(data, at+d.bmSize); err != nil {
		return err
	}
	end := at + d.bmSize + d.blockSize
	ft := d.footer
	if _, err := d.w.WriteAt(ft.Marshal(), end); err != nil {
		return err
	}
	var e [4]byte
	binary.BigEndian.PutUint32(e[:], uint32(at/sectorSize))
	if _, err := d.w.WriteAt(e[:], int64(d.header.TableOffset)+4*bi); err != nil {
		return err
	}
	d.bat[bi] = uint32(at / sectorSize)
	d.next = end
	return nil
}
