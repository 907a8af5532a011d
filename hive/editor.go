package hive

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// An Editor changes a hive the way Windows' configuration manager does:
// in place. The hive's bins stay where they are; a change writes the
// cells it touches, new cells come from free cells (best fit, split when
// larger, coalesced with free neighbours when freed) or from a bin
// appended at the end, and Save writes only the 4 KiB pages that changed
// plus the base block (see Save). Names, flags, timestamps, class names,
// security descriptors, value order and everything not edited are kept
// byte for byte; Compact lays a hive out anew instead.
//
// Subkey and value lists changed by an edit are rewritten when the hive
// is written (Save, Bytes, File), so that many edits of one key rewrite
// its lists once. After an error from a method that changes the hive the
// Editor may hold a partial change: discard it rather than save it.
//
// An Editor is not safe for concurrent use.
type Editor struct {
	// Now is the clock for key and base block timestamps; nil means
	// time.Now.
	Now func() time.Time

	f      *File               // the image; f.data is edited in place and grows at the end
	seq    uint32              // sequence number of the hive as last written
	dsec   []uint64            // one bit per 512-byte sector of f.data changed since the last write
	nsec   int                 // sectors changed since the last save
	all    bool                // the whole file must be written (nothing on disk to update)
	src    *source             // the file the hive was read from, for saving in place
	free   freeCells           // every free cell of the bins scanned so far
	hot    freeCells           // free cells in pages changed since the last save
	ndirty int                 // pages changed since the last save
	kids   map[uint32]*kidList // decoded subkey lists, by nk offset
	vals   map[uint32]*valList // value lists, by nk offset
	last   string              // path of the last key looked up …
	lastNK uint32              // … and its nk offset

	mapped *mapping // the memory mapHive gave f.data (huge-page copy or file mapping), if any
	units  []uint16 // scratch: a value name as units, reused by SetValue

	crashAt int // tests: stop an in-place save after this step (1 to 4; 0 = never)
}

// source identifies the file an Editor was loaded from: Save updates it
// in place only if it is still that file with that base block.
type source struct {
	path string
	info os.FileInfo
	base []byte
}

// kidList is a key's subkeys, as nk offsets in list order (sorted by
// compareNames). Their names are read from the nk cells when compared.
type kidList struct {
	kids  []uint32
	dirty bool // the on-disk list no longer matches kids
}

// keyRecord reads the nk cell at off without its name (File.nkRecord).
func (e *Editor) keyRecord(off uint32) (Key, error) {
	k, _, _, err := e.f.nkRecord(off)
	return k, err
}

// valList is a key's value cells in list order.
type valList struct {
	offs  []uint32
	dirty bool
}

// New returns an Editor for a new, empty hive of version 1.minor (3 or 5
// for Windows XP; 1 to 5 are accepted). Its root key is named
// "$$$PROTO.HIV" like the hives Windows creates, and owns a default
// security descriptor (SYSTEM and Administrators full control, Everyone
// read, inherited by subkeys).
func New(minor uint32) (*Editor, error) {
	t, err := newTree(minor)
	if err != nil {
		return nil, err
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	f, err := fileFromBytes(b[:baseBlockSize], b[baseBlockSize:])
	if err != nil {
		return nil, err
	}
	// The template's sequence number is one above zero; start from zero
	// again so that the first save writes 1, like Windows.
	e := newEditor(f)
	e.seq, e.all = 0, true
	return e, nil
}

// Edit opens the hive at path for editing. A dirty hive (sequence numbers
// differ: a write was interrupted) is replayed from path+".LOG" when that
// old-format log belongs to the interrupted write, as Windows does at
// boot and as Save writes it; otherwise it is refused with an error
// matching ErrDirty (replay another log with RecoverOldLog).
func Edit(path string) (*Editor, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("hive: %s is not a regular file", path)
	}
	size := st.Size()
	if size < baseBlockSize {
		return nil, fmt.Errorf("%s: %w", path, fileErr(0, "file of %d bytes is shorter than the base block", size))
	}
	if size > 1<<32+baseBlockSize {
		return nil, fmt.Errorf("%s: %w", path, fileErr(0, "file of %d bytes is larger than any hive", size))
	}
	// Spare capacity lets bins be appended without copying the image.
	reserve := size/8 + 1<<20
	buf, release, mapped := mapHive(fh, size, reserve)
	if mapped {
		buf = buf[: size : size+reserve]
	} else {
		buf = make([]byte, size, size+reserve)
		if _, err := fh.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("hive: reading %s: %w", path, err)
		}
	}
	e, err := editFile(path, st, buf)
	if err != nil {
		if mapped {
			release()
		}
		return nil, err
	}
	if mapped {
		// The memory goes with the Editor; nothing else refers to it.
		// mapHive says why it is a huge-page copy where the kernel offers
		// them and a copy-on-write mapping otherwise.
		e.mapped = &mapping{release: release}
		runtime.AddCleanup(e, func(m *mapping) { m.unmap() }, e.mapped)
	}
	return e, nil
}

// mapping is the memory mapHive gave the Editor of Edit: released once.
type mapping struct {
	release func()
	done    bool
}

func (m *mapping) unmap() {
	if !m.done {
		m.done = true
		m.release()
	}
}

// editFile makes the Editor of Edit from the file's bytes.
func editFile(path string, st os.FileInfo, buf []byte) (*Editor, error) {
	size := int64(len(buf))
	base := slices.Clone(buf[:baseBlockSize])
	h, err := parseHeader(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	recovered, disk := false, slices.Clone(base)
	if h.Dirty() {
		lb, lerr := os.ReadFile(path + ".LOG")
		if lerr != nil {
			return nil, fmt.Errorf("%s: %w", path, dirtyErr(h))
		}
		rec, rerr := RecoverOldLog(bytesReaderAt(buf), size, bytesReaderAt(lb), int64(len(lb)))
		if rerr != nil {
			return nil, fmt.Errorf("%s: %w (%s.LOG does not replay: %v)", path, dirtyErr(h), path, rerr)
		}
		buf, base, recovered = rec, rec[:baseBlockSize], true
	}
	length := int(le.Uint32(base[hdrLength:]))
	if length > len(buf)-baseBlockSize {
		return nil, fmt.Errorf("%s: %w", path, fileErr(hdrLength, "hive bins data length 0x%x exceeds the file (0x%x bytes after the base block): truncated hive", length, len(buf)-baseBlockSize))
	}
	f, err := fileFromBytes(base, buf[baseBlockSize:baseBlockSize+length])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e, err := editorFor(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e.all = recovered
	e.src = &source{path: path, info: st, base: disk}
	return e, nil
}

func dirtyErr(h *Header) error {
	return &FormatError{Off: hdrSeq2, Msg: fmt.Sprintf("sequence numbers differ (%d, %d): the hive is dirty; replay its .LOG before editing it", h.Seq1, h.Seq2), kind: ErrDirty}
}

// NewEditor returns an Editor for a copy of f (f itself is not changed
// and stays usable). It fails on a dirty hive (ErrDirty) and on versions
// Windows XP does not load. Structures are checked as edits reach them;
// run Check first to refuse a damaged hive up front.
func NewEditor(f *File) (*Editor, error) {
	g := &File{Header: f.Header, base: slices.Clone(f.base), data: slices.Clone(f.data), binOf: slices.Clone(f.binOf)}
	e, err := editorFor(g)
	if err != nil {
		return nil, err
	}
	e.all = true
	return e, nil
}

func editorFor(f *File) (*Editor, error) {
	if f.Dirty() {
		return nil, dirtyErr(&f.Header)
	}
	if f.Minor < 1 || f.Minor > 5 {
		return nil, fileErr(hdrMinor, "cannot edit a 1.%d hive (Windows XP loads 1.1 to 1.5)", f.Minor)
	}
	return newEditor(f), nil
}

func newEditor(f *File) *Editor {
	return &Editor{f: f, seq: f.Seq1,
		dsec: make([]uint64, (len(f.data)/logSector+63)/64),
		kids: map[uint32]*kidList{}, vals: map[uint32]*valList{}}
}

func (e *Editor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Minor returns the hive's minor format version.
func (e *Editor) Minor() uint32 { return e.f.Minor }

// touch marks the sectors, and so the pages, holding data[off:off+n] as
// changed.
//
// Changed pages (ndirty) tell a bulk edit, and so where it allocates.
// Changed sectors are what the in-place save
// logs and writes, and what decides between saving in place and
// rewriting (the old-format log's dirty vector has a bit per 512-byte
// sector, as Windows keeps it), so a changed field costs its sector, not
// its page.
func (e *Editor) touch(off uint32, n int) {
	for s := off / logSector; s <= (off+uint32(n)-1)/logSector; s++ {
		w, bit := s/64, uint64(1)<<(s%64)
		if e.dsec[w]&bit != 0 {
			continue
		}
		// A page's 8 sectors are one byte of the bitmap: the page is
		// newly changed when that byte was still zero.
		if e.dsec[w]&(0xFF<<(s%64&^7)) == 0 {
			e.ndirty++
		}
		e.dsec[w] |= bit
		e.nsec++
	}
}

// cellw returns the data of the allocated cell at off for writing and
// marks it changed. The slice is valid until the next allocation.
func (e *Editor) cellw(off uint32) ([]byte, error) {
	b, err := e.f.cell(off)
	if err != nil {
		return nil, err
	}
	e.touch(off, len(b)+4)
	return b, nil
}

// patch32 writes a uint32 at byte at of the cell at off.
func (e *Editor) patch32(off uint32, at int, v uint32) error {
	b, err := e.f.cell(off)
	if err != nil {
		return err
	}
	if at+4 > len(b) {
		return cellErr(off, "cell of %d bytes too small for a field at %d", len(b), at)
	}
	le.PutUint32(b[at:], v)
	e.touch(off+4+uint32(at), 4)
	return nil
}

func (e *Editor) patch64(off uint32, at int, v uint64) error {
	b, err := e.f.cell(off)
	if err != nil {
		return err
	}
	if at+8 > len(b) {
		return cellErr(off, "cell of %d bytes too small for a field at %d", len(b), at)
	}
	le.PutUint64(b[at:], v)
	e.touch(off+4+uint32(at), 8)
	return nil
}

// header returns the base block of the next write: both sequence numbers
// one above the last write, a new timestamp (mirrored in the first bin),
// the bins length and the checksum. The timestamp is nudged until the raw
// XOR hivex checks agrees with Windows' fixed-up checksum.
func (e *Editor) header() []byte {
	base := slices.Clone(e.f.base)
	seq := e.seq + 1
	le.PutUint32(base[hdrSeq1:], seq)
	le.PutUint32(base[hdrSeq2:], seq)
	le.PutUint32(base[hdrMajor:], 1)
	le.PutUint32(base[hdrMinor:], e.f.Minor)
	le.PutUint32(base[hdrType:], 0)
	le.PutUint32(base[hdrFormat:], 1)
	le.PutUint32(base[hdrRoot:], e.f.Header.Root)
	le.PutUint32(base[hdrLength:], uint32(len(e.f.data)))
	le.PutUint32(base[hdrCluster:], 1)
	le.PutUint32(base[hdrBootType:], 0)
	le.PutUint32(base[hdrBootRecov:], 0)
	for ts := toFiletime(e.now()); ; ts++ {
		le.PutUint64(base[hdrTimestamp:], ts)
		le.PutUint32(base[hdrChecksum:], 0)
		if x := rawChecksum(base); x != 0 && x != 0xFFFFFFFF {
			le.PutUint32(base[hdrChecksum:], x)
			le.PutUint64(e.f.data[binTimestamp:], ts)
			e.touch(binTimestamp, 8)
			break
		}
	}
	return base
}

// Bytes returns the whole edited hive file as the next Save would write
// it (without counting as a save).
func (e *Editor) Bytes() ([]byte, error) {
	if err := e.flush(); err != nil {
		return nil, err
	}
	base := e.header()
	out := make([]byte, baseBlockSize+len(e.f.data))
	copy(out, base)
	copy(out[baseBlockSize:], e.f.data)
	runtime.KeepAlive(e) // e.f.data may be a mapping e's cleanup releases
	return out, nil
}

// File returns the edited hive as a read-only File.
func (e *Editor) File() (*File, error) {
	b, err := e.Bytes()
	if err != nil {
		return nil, err
	}
	return NewFile(bytesReaderAt(b), int64(len(b)))
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, errors.New("hive: read outside buffer")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, errors.New("hive: short read")
	}
	return n, nil
}
