package iso

// The image's structures as bytes: directory records, path tables,
// volume descriptors, the El Torito catalog, and writing them in order.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

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
