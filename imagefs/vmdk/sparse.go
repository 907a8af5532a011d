package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// sparse is one sparse extent file: a grain directory, grain tables and
// grains, plain (monolithicSparse, split sparse, deltas) or compressed
// (streamOptimized, read-only).
type sparse struct {
	name       string
	r          io.ReaderAt
	w          io.WriterAt // nil when read-only
	fileSize   int64
	h          Header
	grainBytes int64
	capBytes   int64
	compressed bool
	markers    bool
	gd, rgd    []uint32

	mu   sync.RWMutex // guards gts, next
	gts  [][]uint32   // lazily loaded grain tables; zero shared by empty ones
	zero []uint32     // the shared all-zero table, never written
	next int64        // file offset where the next grain is appended

	zmu      sync.Mutex // guards the compressed-grain cache
	zr       io.ReadCloser
	cacheIdx int64
	cache    []byte
	zbuf     []byte
}

func (s *sparse) errf(off int64, format string, args ...any) error {
	return &FormatError{File: s.name, Off: off, Msg: fmt.Sprintf(format, args...), Err: ErrFormat}
}

// newSparse parses the sparse extent in r (size bytes) whose header h was
// read at offset 0. For a streamOptimized file whose header says "GD at
// end", the footer near the end of the file supplies the real header.
func newSparse(r io.ReaderAt, w io.WriterAt, size int64, name string, h *Header) (*sparse, error) {
	s := &sparse{name: name, r: r, w: w, fileSize: size, h: *h, cacheIdx: -1}
	if h.GDOffset == GDAtEnd {
		// Footer layout (spec "Stream-Optimized Compressed Sparse Extents"):
		// footer marker, footer (a header copy), end-of-stream marker.
		if size < 4*sectorSize {
			return nil, s.errf(56, "grain directory at end, but the file of %d bytes has no footer", size)
		}
		b := make([]byte, 3*sectorSize)
		if err := readFull(r, b, size-3*sectorSize); err != nil {
			return nil, fmt.Errorf("vmdk: %s: reading footer at 0x%x: %w", name, size-3*sectorSize, err)
		}
		if t := binary.LittleEndian.Uint32(b[12:]); t != MarkerFooter {
			return nil, s.errf(size-3*sectorSize+12, "marker type %d before the footer, want %d", t, MarkerFooter)
		}
		if t := binary.LittleEndian.Uint32(b[2*sectorSize+12:]); t != MarkerEOS {
			return nil, s.errf(size-sectorSize+12, "marker type %d after the footer, want %d (end of stream)", t, MarkerEOS)
		}
		fh, err := ParseHeader(b[sectorSize : 2*sectorSize])
		if err != nil {
			return nil, rebase(err, name, size-2*sectorSize)
		}
		if fh.GDOffset == GDAtEnd {
			return nil, s.errf(size-2*sectorSize+56, "footer does not give the grain directory offset")
		}
		s.h = *fh
	}
	h = &s.h
	s.grainBytes = int64(h.GrainSize) * sectorSize
	s.capBytes = int64(h.Capacity) * sectorSize
	s.compressed = h.Flags&FlagCompressed != 0
	s.markers = h.Flags&FlagMarkers != 0
	if s.compressed && w != nil {
		return nil, fmt.Errorf("vmdk: %s: compressed (streamOptimized) extents are read-only: %w", name, ErrUnsupported)
	}
	cover := int64(h.NumGTEsPerGT) * s.grainBytes
	entries := (s.capBytes + cover - 1) / cover
	var err error
	if s.gd, err = s.readDir(h.GDOffset, entries, 56); err != nil {
		return nil, err
	}
	if h.Flags&FlagRedundantGD != 0 && h.RGDOffset != 0 && !s.compressed {
		if s.rgd, err = s.readDir(h.RGDOffset, entries, 48); err != nil {
			return nil, err
		}
	}
	s.gts = make([][]uint32, entries)
	s.zero = make([]uint32, h.NumGTEsPerGT)
	s.next = (size + sectorSize - 1) / sectorSize * sectorSize
	return s, nil
}

// readDir reads and checks a grain directory of n entries at sector off;
// field is the header offset that named it.
func (s *sparse) readDir(off uint64, n int64, field int64) ([]uint32, error) {
	gtBytes := int64(s.h.NumGTEsPerGT) * 4
	if off == 0 || off > uint64(s.fileSize/sectorSize) || n*4 > s.fileSize-int64(off)*sectorSize {
		return nil, s.errf(field, "grain directory of %d entries at sector %d extends past the end of the file (size %d)", n, off, s.fileSize)
	}
	b := make([]byte, n*4)
	base := int64(off) * sectorSize
	if err := readFull(s.r, b, base); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading grain directory at 0x%x: %w", s.name, base, err)
	}
	gd := make([]uint32, n)
	for i := range gd {
		e := binary.LittleEndian.Uint32(b[4*i:])
		if e != 0 && int64(e)*sectorSize+gtBytes > s.fileSize {
			return nil, s.errf(base+4*int64(i), "grain directory entry %d: grain table at sector %d extends past the end of the file (size %d)", i, e, s.fileSize)
		}
		gd[i] = e
	}
	return gd, nil
}

// table returns grain table i, loading and checking it on first use.
func (s *sparse) table(i int64) ([]uint32, error) {
	s.mu.RLock()
	t := s.gts[i]
	s.mu.RUnlock()
	if t != nil || s.gd[i] == 0 {
		return t, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.gts[i]; t != nil {
		return t, nil
	}
	n := int64(s.h.NumGTEsPerGT)
	base := int64(s.gd[i]) * sectorSize
	b := make([]byte, n*4)
	if err := readFull(s.r, b, base); err != nil {
		return nil, fmt.Errorf("vmdk: %s: reading grain table at 0x%x: %w", s.name, base, err)
	}
	t = make([]uint32, n)
	empty := true // every entry 0: share s.zero
	for j := range t {
		e := binary.LittleEndian.Uint32(b[4*j:])
		t[j] = e
		if e != 0 {
			empty = false
		}
		if e == 0 || (e == 1 && s.h.Flags&FlagZeroedGTE != 0) {
			continue
		}
		g := i*n + int64(j)
		need := int64(12) // compressed: at least the grain marker
		if !s.compressed {
			need = min(s.grainBytes, max(s.capBytes-g*s.grainBytes, 0))
		}
		if int64(e)*sectorSize+need > s.fileSize {
			return nil, s.errf(base+4*int64(j), "grain table entry %d (grain %d) points to sector %d, past the end of the file (size %d)", j, g, e, s.fileSize)
		}
	}
	if empty {
		t = s.zero
	}
	s.gts[i] = t
	return t, nil
}

// grain returns the grain table entry of grain g: 0 unallocated, 1 zeroed
// (when the flag allows it), else the grain's sector.
func (s *sparse) grain(g int64) (uint32, error) {
	n := int64(s.h.NumGTEsPerGT)
	t, err := s.table(g / n)
	if err != nil || t == nil {
		return 0, err
	}
	s.mu.RLock()
	e := t[g%n]
	s.mu.RUnlock()
	return e, nil
}

func (s *sparse) isHole(e uint32) bool {
	return e == 0 || (e == 1 && s.h.Flags&FlagZeroedGTE != 0)
}

// readAt reads p at extent offset off. Unallocated grains come from
// fallback (parent or zeros); zeroed grains are zeros. Runs of grains that
// read the same way (see run) take one fallback call, one clear or one file
// read each, so that a large read of a delta over its parent makes one
// parent read per run instead of one per grain. Compressed grains are
// inflated one at a time.
func (s *sparse) readAt(p []byte, off int64, fallback func(p []byte, off int64) error) error {
	for len(p) > 0 {
		g := off / s.grainBytes
		in := off % s.grainBytes
		e, k, err := s.run(g, (in+int64(len(p))+s.grainBytes-1)/s.grainBytes)
		if err != nil {
			return err
		}
		n := min(int64(len(p)), k*s.grainBytes-in)
		switch {
		case e == 0:
			err = fallback(p[:n], off)
		case s.isHole(e):
			clear(p[:n])
		case s.compressed:
			err = s.readCompressed(p[:n], g, e, in)
		default:
			err = readFull(s.r, p[:n], int64(e)*sectorSize+in)
		}
		if err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// run returns the grain table entry of grain g and how many grains from g
// on, at least 1 and at most limit, read the same way as g: all
// unallocated, all zeroed, or (uncompressed extents only) all allocated
// back to back in the file, in grain order. It walks the grain tables
// directly, across table boundaries, instead of looking every grain up.
func (s *sparse) run(g, limit int64) (uint32, int64, error) {
	n := int64(s.h.NumGTEsPerGT)
	var first uint32
	var k int64
	for k < limit {
		t, err := s.table((g + k) / n)
		if err != nil {
			return 0, 0, err
		}
		j0 := (g + k) % n
		m := min(n-j0, limit-k) // entries of this table in the range
		if t == nil {
			// No grain table: every grain it would cover is unallocated.
			if k > 0 && first != 0 {
				return first, k, nil
			}
			k += m
			continue
		}
		s.mu.RLock()
		for j := j0; j < j0+m; j, k = j+1, k+1 {
			e := t[j]
			if k == 0 {
				first = e
			} else if !s.follows(first, e, k) {
				s.mu.RUnlock()
				return first, k, nil
			}
		}
		s.mu.RUnlock()
	}
	return first, k, nil
}

// follows reports whether entry e of the grain k grains after one with
// entry first continues first's run.
func (s *sparse) follows(first, e uint32, k int64) bool {
	switch {
	case first == 0:
		return e == 0
	case s.isHole(first):
		return e != 0 && s.isHole(e)
	case s.compressed:
		return false // one grain per inflate
	default:
		return int64(e) == int64(first)+k*int64(s.h.GrainSize)
	}
}

// readCompressed copies part of compressed grain g (at sector e) into p,
// keeping the last inflated grain for the next call.
func (s *sparse) readCompressed(p []byte, g int64, e uint32, in int64) error {
	s.zmu.Lock()
	defer s.zmu.Unlock()
	if s.cacheIdx != g {
		if err := s.inflate(g, e); err != nil {
			s.cacheIdx = -1
			return err
		}
		s.cacheIdx = g
	}
	copy(p, s.cache[in:])
	return nil
}

func (s *sparse) inflate(g int64, e uint32) error {
	at := int64(e) * sectorSize
	var clen int64
	if s.markers {
		var m [12]byte
		if err := readFull(s.r, m[:], at); err != nil {
			return fmt.Errorf("vmdk: %s: reading grain marker at 0x%x: %w", s.name, at, err)
		}
		if lba := binary.LittleEndian.Uint64(m[:]); lba != uint64(g)*s.h.GrainSize {
			return s.errf(at, "grain marker says LBA %d, the grain table says %d", lba, uint64(g)*s.h.GrainSize)
		}
		clen = int64(binary.LittleEndian.Uint32(m[8:]))
		at += 12
	} else {
		// Without markers the compressed length is unknown: read up to a
		// grain's worth (deflate never expands much beyond it).
		clen = min(s.grainBytes+1024, s.fileSize-at)
	}
	if clen == 0 || clen > 2*s.grainBytes+1024 || clen > s.fileSize-at {
		return s.errf(at-12, "compressed grain %d of %d bytes does not fit in the file (size %d)", g, clen, s.fileSize)
	}
	if int64(cap(s.zbuf)) < clen {
		s.zbuf = make([]byte, clen)
	}
	z := s.zbuf[:clen]
	if err := readFull(s.r, z, at); err != nil {
		return fmt.Errorf("vmdk: %s: reading compressed grain at 0x%x: %w", s.name, at, err)
	}
	if s.cache == nil {
		s.cache = make([]byte, s.grainBytes)
	}
	var err error
	if s.zr == nil {
		s.zr, err = zlib.NewReader(bytes.NewReader(z))
	} else {
		err = s.zr.(zlib.Resetter).Reset(bytes.NewReader(z), nil)
	}
	if err != nil {
		return s.errf(at, "compressed grain %d: %v", g, err)
	}
	n, err := io.ReadFull(s.zr, s.cache)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		// A short last grain (open-vmdk compresses only the bytes within
		// the capacity): the rest reads as zeros.
		clear(s.cache[n:])
		err = nil
	}
	if err != nil {
		return s.errf(at, "compressed grain %d: %v", g, err)
	}
	return nil
}

// allocated reports whether grain g holds data in this extent, and whether
// it is unallocated (as opposed to a zeroed grain).
func (s *sparse) allocated(g int64) (bool, bool, error) {
	e, err := s.grain(g)
	if err != nil {
		return false, false, err
	}
	return !s.isHole(e), e == 0, nil
}

// writeAt writes p at extent offset off. Unallocated grains are appended at
// the end of the file; a grain only partly covered by p is first filled
// from fill (parent content or zeros). The grain table and its redundant
// copy are updated after the grain data is written.
func (s *sparse) writeAt(p []byte, off int64, fill func(p []byte, off int64) error) error {
	if s.w == nil {
		return errReadOnly
	}
	for len(p) > 0 {
		g := off / s.grainBytes
		in := off % s.grainBytes
		e, err := s.grain(g)
		if err != nil {
			return err
		}
		n := min(int64(len(p)), s.grainBytes-in)
		if !s.isHole(e) {
			for n < int64(len(p)) {
				e2, err := s.grain(g + (n+in)/s.grainBytes)
				if err != nil || int64(e2) != int64(e)+(n+in)/s.grainBytes*int64(s.h.GrainSize) {
					break
				}
				n = min(int64(len(p)), n+s.grainBytes)
			}
			if _, err := s.w.WriteAt(p[:n], int64(e)*sectorSize+in); err != nil {
				return err
			}
		} else {
			// A run of whole unallocated grains goes out in one write.
			if in == 0 && n == s.grainBytes {
				for n+s.grainBytes <= int64(len(p)) {
					if ok, _, err := s.allocated(g + n/s.grainBytes); err != nil || ok {
						break
					}
					n += s.grainBytes
				}
			}
			if err := s.allocate(g, in, p[:n], e == 0, fill); err != nil {
				return err
			}
		}
		p, off = p[n:], off+n
	}
	return nil
}

var errReadOnly = errors.New("vmdk: extent is read-only")

func (s *sparse) allocate(g, in int64, p []byte, fromParent bool, fill func(p []byte, off int64) error) error {
	n := int64(s.h.NumGTEsPerGT)
	count := (in + int64(len(p)) + s.grainBytes - 1) / s.grainBytes
	for k := int64(0); k < count; k++ {
		if s.gd[(g+k)/n] == 0 {
			return fmt.Errorf("vmdk: %s: grain %d has no preallocated grain table: %w", s.name, g+k, ErrUnsupported)
		}
		if _, err := s.table((g + k) / n); err != nil {
			return err
		}
	}
	data := p
	if in != 0 || int64(len(p))%s.grainBytes != 0 {
		// Copy-on-write of a partly written grain: the rest comes from
		// the parent (or is zeros).
		data = make([]byte, count*s.grainBytes)
		if fromParent {
			end := min(count*s.grainBytes, s.capBytes-g*s.grainBytes)
			if err := fill(data[:end], g*s.grainBytes); err != nil {
				return err
			}
		}
		copy(data[in:], p)
	}
	s.mu.Lock()
	for k := int64(0); k < count; k++ {
		if !s.isHole(s.gts[(g+k)/n][(g+k)%n]) {
			// A concurrent writer allocated it meanwhile: write in place.
			s.mu.Unlock()
			return s.writeAt(p, g*s.grainBytes+in, fill)
		}
	}
	defer s.mu.Unlock()
	at := s.next
	if at/sectorSize+count*int64(s.h.GrainSize) > 1<<32-1 {
		return fmt.Errorf("vmdk: %s: extent would exceed the 2 TiB a grain table entry can address", s.name)
	}
	if _, err := s.w.WriteAt(data, at); err != nil {
		return err
	}
	s.next = at + int64(len(data))
	for k := int64(0); k < count; k++ {
		i := (g + k) / n
		if &s.gts[i][0] == &s.zero[0] {
			s.gts[i] = make([]uint32, n)
		}
		s.gts[i][(g+k)%n] = uint32(at/sectorSize + k*int64(s.h.GrainSize))
	}
	// Write the changed entries, table by table, to GT and redundant GT.
	for k := int64(0); k < count; {
		i := (g + k) / n
		j0 := (g + k) % n
		j1 := min(n, j0+count-k)
		b := make([]byte, 4*(j1-j0))
		for j := j0; j < j1; j++ {
			binary.LittleEndian.PutUint32(b[4*(j-j0):], s.gts[i][j])
		}
		if _, err := s.w.WriteAt(b, int64(s.gd[i])*sectorSize+4*j0); err != nil {
			return err
		}
		if s.rgd != nil && s.rgd[i] != 0 {
			if _, err := s.w.WriteAt(b, int64(s.rgd[i])*sectorSize+4*j0); err != nil {
				return err
			}
		}
		k += j1 - j0
	}
	return nil
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

// rebase moves a *FormatError from a buffer-relative offset to a file one.
func rebase(err error, name string, base int64) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		return &FormatError{File: name, Off: base + fe.Off, Msg: fe.Msg, Err: fe.Err}
	}
	return err
}
