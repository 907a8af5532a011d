package cab

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"
)

// A Reader serves the files of one cabinet.
type Reader struct {
	// File lists the files in directory order.
	File []*File
	// Folder lists the folders (compressed streams).
	Folder []*Folder
	// SetID and Index identify the cabinet in a set.
	SetID, Index uint16
	// HeaderReserve is the per-cabinet reserved area (abReserve), if any.
	HeaderReserve []byte
	// MaxFileSize caps the uncompressed size of a file Open and ReadAll
	// serve: larger files are refused with an error matching ErrTooLarge
	// before anything is decompressed. NewReader sets DefaultMaxFileSize;
	// a caller that expects larger files raises it.
	MaxFileSize int64

	r            io.ReaderAt
	size         int64
	name         string
	dataReserve  int
	folderReserv int
}

// A Folder is one CFFOLDER: a compressed stream of CFDATA blocks.
type Folder struct {
	Compression Compression
	// Reserve is the per-folder reserved area, if any.
	Reserve []byte

	dataOff int64  // coffCabStart
	nData   uint16 // cCFData
	off     int64  // offset of the CFFOLDER record
	index   int    // position in Reader.Folder, for messages
}

// A File is one CFFILE entry.
type File struct {
	Name     string
	Size     uint32 // uncompressed size
	Offset   uint32 // uncompressed offset in the folder
	Modified time.Time
	Attrs    uint16
	// FolderIndex is the index into Reader.Folder.
	FolderIndex int

	r   *Reader
	off int64 // offset of the CFFILE record
}

// A ReadCloser is a Reader that owns its file.
type ReadCloser struct {
	Reader
	f *os.File
}

// OpenReader opens the named cabinet file.
func OpenReader(name string) (*ReadCloser, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	rc := &ReadCloser{f: f, Reader: Reader{MaxFileSize: DefaultMaxFileSize}}
	if err := rc.init(f, fi.Size(), name); err != nil {
		f.Close()
		return nil, err
	}
	return rc, nil
}

// Close closes the cabinet file.
func (rc *ReadCloser) Close() error { return rc.f.Close() }

// NewReader parses the cabinet in r, which is size bytes long.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	cr := &Reader{MaxFileSize: DefaultMaxFileSize}
	if err := cr.init(r, size, ""); err != nil {
		return nil, err
	}
	return cr, nil
}

// NewNamedReader is NewReader with a file name for error messages.
func NewNamedReader(r io.ReaderAt, size int64, name string) (*Reader, error) {
	cr := &Reader{MaxFileSize: DefaultMaxFileSize}
	if err := cr.init(r, size, name); err != nil {
		return nil, err
	}
	return cr, nil
}

func (cr *Reader) errf(off int64, format string, args ...any) *FormatError {
	return &FormatError{Name: cr.name, Off: off, Msg: fmt.Sprintf(format, args...)}
}

func (cr *Reader) unsupported(off int64, format string, args ...any) *FormatError {
	e := cr.errf(off, format, args...)
	e.kind = ErrUnsupported
	e.Msg = "unsupported: " + e.Msg
	return e
}

// readAt reads exactly n bytes at off, failing with a FormatError naming
// what when they lie beyond the end of the file.
func (cr *Reader) readAt(off int64, n int, what string) ([]byte, error) {
	if off < 0 || n < 0 || off > cr.size || int64(n) > cr.size-off {
		return nil, cr.errf(off, "%s (%d bytes) extends beyond end of file (size %d)", what, n, cr.size)
	}
	b := make([]byte, n)
	if _, err := cr.r.ReadAt(b, off); err != nil && !(err == io.EOF && n > 0) {
		return nil, fmt.Errorf("cab: %s: reading %s at 0x%x: %w", cr.name, what, off, err)
	}
	return b, nil
}

// readString reads a NUL-terminated string of at most max bytes at off.
func (cr *Reader) readString(off int64, max int, what string) (string, int64, error) {
	n := int64(max + 1)
	if off >= cr.size {
		return "", 0, cr.errf(off, "%s beyond end of file", what)
	}
	if rem := cr.size - off; rem < n {
		n = rem
	}
	b, err := cr.readAt(off, int(n), what)
	if err != nil {
		return "", 0, err
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		if int64(len(b)) > int64(max) {
			return "", 0, cr.errf(off, "%s longer than %d bytes", what, max)
		}
		return "", 0, cr.errf(off, "%s not terminated before end of file", what)
	}
	return string(b[:i]), off + int64(i) + 1, nil
}

func (cr *Reader) init(r io.ReaderAt, size int64, name string) error {
	cr.r, cr.size, cr.name = r, size, name
	h, err := cr.readAt(0, headerSize, "CFHEADER")
	if err != nil {
		return err
	}
	if string(h[:4]) != "MSCF" {
		return cr.errf(0, "bad signature %q", h[:4])
	}
	le := binary.LittleEndian
	coffFiles := int64(le.Uint32(h[16:]))
	nFolders := int(le.Uint16(h[26:]))
	nFiles := int(le.Uint16(h[28:]))
	flags := le.Uint16(h[30:])
	cr.SetID = le.Uint16(h[32:])
	cr.Index = le.Uint16(h[34:])
	// The version bytes (h[24:26], 3 and 1) are not checked: only 1.3
	// exists, and cabextract reads cabinets whatever they say.
	if nFolders == 0 {
		return cr.errf(26, "no folders")
	}
	if nFiles == 0 {
		return cr.errf(28, "no files")
	}
	off := int64(headerSize)
	if flags&flagReservePresent != 0 {
		b, err := cr.readAt(off, 4, "reserve sizes")
		if err != nil {
			return err
		}
		hres := int(le.Uint16(b))
		cr.folderReserv = int(b[2])
		cr.dataReserve = int(b[3])
		off += 4
		if cr.HeaderReserve, err = cr.readAt(off, hres, "header reserve"); err != nil {
			return err
		}
		off += int64(hres)
	}
	if flags&flagPrevCabinet != 0 {
		for _, what := range []string{"previous cabinet name", "previous disk name"} {
			if _, off, err = cr.readString(off, maxName, what); err != nil {
				return err
			}
		}
	}
	if flags&flagNextCabinet != 0 {
		for _, what := range []string{"next cabinet name", "next disk name"} {
			if _, off, err = cr.readString(off, maxName, what); err != nil {
				return err
			}
		}
	}
	if flags&(flagPrevCabinet|flagNextCabinet) != 0 {
		return cr.unsupported(30, "cabinet is part of a multi-cabinet set (flags 0x%04x)", flags)
	}
	// Folders: the whole table must lie inside the file.
	fsz := folderSize + cr.folderReserv
	if int64(nFolders)*int64(fsz) > size-off {
		return cr.errf(off, "%d folders of %d bytes extend beyond end of file", nFolders, fsz)
	}
	cr.Folder = make([]*Folder, nFolders)
	for i := range cr.Folder {
		b, err := cr.readAt(off, fsz, "CFFOLDER")
		if err != nil {
			return err
		}
		f := &Folder{
			index:       i,
			dataOff:     int64(le.Uint32(b)),
			nData:       le.Uint16(b[4:]),
			Compression: Compression(le.Uint16(b[6:])),
			off:         off,
		}
		if cr.folderReserv > 0 {
			f.Reserve = b[folderSize:]
		}
		if f.dataOff > size {
			return cr.errf(off, "folder %d data offset 0x%x beyond end of file", i, f.dataOff)
		}
		cr.Folder[i] = f
		off += int64(fsz)
	}
	// Files.
	if coffFiles < off || coffFiles > size {
		return cr.errf(16, "file table offset 0x%x outside 0x%x..0x%x", coffFiles, off, size)
	}
	if int64(nFiles)*(fileEntrySize+1) > size-coffFiles {
		return cr.errf(coffFiles, "%d files extend beyond end of file", nFiles)
	}
	off = coffFiles
	cr.File = make([]*File, 0, nFiles)
	for i := 0; i < nFiles; i++ {
		b, err := cr.readAt(off, fileEntrySize, "CFFILE")
		if err != nil {
			return err
		}
		f := &File{
			Size:     le.Uint32(b),
			Offset:   le.Uint32(b[4:]),
			Modified: dosTime(le.Uint16(b[10:]), le.Uint16(b[12:])),
			Attrs:    le.Uint16(b[14:]),
			r:        cr,
			off:      off,
		}
		ifold := int(le.Uint16(b[8:]))
		var nameOff int64
		f.Name, nameOff, err = cr.readString(off+fileEntrySize, maxName, "file name")
		if err != nil {
			return err
		}
		if f.Name == "" {
			return cr.errf(off+fileEntrySize, "file %d has an empty name", i)
		}
		if f.Attrs&AttrNameIsUTF != 0 {
			if !utf8.ValidString(f.Name) {
				return cr.errf(off+fileEntrySize, "file name %q is flagged UTF-8 but is not", f.Name)
			}
		} else if !isASCII(f.Name) {
			// A name without the UTF-8 flag is in an unspecified 8-bit
			// code page; read it as ISO 8859-1 so that Name is valid
			// UTF-8 and every byte survives.
			r := make([]rune, len(f.Name))
			for j := 0; j < len(f.Name); j++ {
				r[j] = rune(f.Name[j])
			}
			f.Name = string(r)
		}
		switch {
		case ifold >= ifoldContinuedFromPrev:
			return cr.unsupported(off+8, "file %q continues across cabinets (folder index 0x%04x)", f.Name, ifold)
		case ifold >= nFolders:
			return cr.errf(off+8, "file %q: folder index %d out of range (%d folders)", f.Name, ifold, nFolders)
		}
		f.FolderIndex = ifold
		if uint64(f.Offset)+uint64(f.Size) > uint64(cr.Folder[ifold].nData)*maxBlockData {
			return cr.errf(off, "file %q: %d bytes at folder offset %d exceed what folder %d can hold", f.Name, f.Size, f.Offset, ifold)
		}
		cr.File = append(cr.File, f)
		off = nameOff
	}
	return nil
}

// Open returns a reader of the named file (exact, then case-insensitive
// ASCII match).
func (cr *Reader) Open(name string) (io.ReadCloser, error) {
	f := cr.Lookup(name)
	if f == nil {
		return nil, fmt.Errorf("cab: %s: %s: %w", cr.name, name, os.ErrNotExist)
	}
	return f.Open()
}

// Lookup returns the file with that name (exact, then ASCII
// case-insensitive), or nil.
func (cr *Reader) Lookup(name string) *File {
	for _, f := range cr.File {
		if f.Name == name {
			return f
		}
	}
	for _, f := range cr.File {
		if equalFold(f.Name, name) {
			return f
		}
	}
	return nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Open returns a ReadCloser that yields the file's uncompressed content.
// A file larger than the Reader's MaxFileSize is refused (ErrTooLarge).
// Decompression errors, checksum mismatches and short data are reported by
// Read; Read never yields more than Size bytes.
func (f *File) Open() (io.ReadCloser, error) {
	if max := f.r.MaxFileSize; max > 0 && int64(f.Size) > max {
		e := f.r.errf(f.off, "file %q expands to %d bytes, more than the limit of %d (Reader.MaxFileSize)", f.Name, f.Size, max)
		e.kind = ErrTooLarge
		return nil, e
	}
	if f.Size == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	fold := f.r.Folder[f.FolderIndex]
	fr, err := f.r.newFolderReader(fold)
	if err != nil {
		return nil, err
	}
	return &fileReader{fr: fr, skip: int64(f.Offset), left: int64(f.Size), f: f}, nil
}

// ReadAll returns the file's whole content, at most the Reader's
// MaxFileSize bytes (see Open).
func (f *File) ReadAll() ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	// The size comes from the file: grow only up to what the blocks can
	// hold, Read checks the rest.
	b.Grow(int(min(int64(f.Size), 1<<20)))
	if _, err := io.Copy(&b, rc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type fileReader struct {
	fr   *folderReader
	skip int64
	left int64
	f    *File
}

func (r *fileReader) Read(p []byte) (int, error) {
	for r.skip > 0 {
		n, err := r.fr.discard(r.skip)
		r.skip -= n
		if err != nil {
			return 0, r.short(err)
		}
	}
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.fr.Read(p)
	r.left -= int64(n)
	if err != nil {
		if err == io.EOF && r.left == 0 {
			err = nil
		} else {
			err = r.short(err)
		}
	}
	return n, err
}

func (r *fileReader) short(err error) error {
	if err == io.EOF {
		return r.f.r.errf(r.f.off, "file %q: folder data ends %d bytes early", r.f.Name, r.left+r.skip)
	}
	return err
}

func (r *fileReader) Close() error { return nil }

// dataBlock is one CFDATA record, located during the folder scan.
type dataBlock struct {
	off      int64 // offset of the CFDATA header
	csum     uint32
	hdr      []byte // cbData, cbUncomp and the reserve, as checksummed
	dataOff  int64
	cbData   int
	cbUncomp int
}

type folderReader struct {
	cr     *Reader
	fold   *Folder
	blocks []dataBlock
	next   int    // next block to decode
	out    []byte // decoded, unread output of the current block
	hist   []byte // MSZIP: previous block's output (dictionary)
	lzx    *lzxDecoder
	lzxIn  lzxInput
}

func (cr *Reader) newFolderReader(fold *Folder) (*folderReader, error) {
	switch fold.Compression.Method() {
	case None, MSZIP:
	case LZX:
		if w := fold.Compression.LZXWindowBits(); w < 15 || w > 21 {
			return nil, cr.errf(fold.off+6, "LZX window size 2^%d outside 2^15..2^21", w)
		}
	case Quantum:
		return nil, cr.unsupported(fold.off+6, "Quantum compression")
	default:
		return nil, cr.errf(fold.off+6, "unknown compression type 0x%04x", uint16(fold.Compression))
	}
	// Scan the CFDATA headers: every block must lie inside the file.
	le := binary.LittleEndian
	hsz := dataHeaderSize + cr.dataReserve
	if int64(fold.nData)*int64(hsz) > cr.size-fold.dataOff {
		return nil, cr.errf(fold.dataOff, "%d data blocks extend beyond end of file", fold.nData)
	}
	if fold.nData == 0 {
		return nil, cr.errf(fold.off+4, "folder has no data blocks")
	}
	fr := &folderReader{cr: cr, fold: fold, blocks: make([]dataBlock, fold.nData)}
	off := fold.dataOff
	for i := range fr.blocks {
		h, err := cr.readAt(off, hsz, "CFDATA header")
		if err != nil {
			return nil, err
		}
		b := dataBlock{off: off, csum: le.Uint32(h), hdr: h[4:], dataOff: off + int64(hsz),
			cbData: int(le.Uint16(h[4:])), cbUncomp: int(le.Uint16(h[6:]))}
		if b.cbData > maxBlockInput {
			return nil, cr.errf(off+4, "data block of %d bytes exceeds %d", b.cbData, maxBlockInput)
		}
		if b.cbUncomp > maxBlockData {
			return nil, cr.errf(off+6, "data block expands to %d bytes, more than %d", b.cbUncomp, maxBlockData)
		}
		if b.cbUncomp == 0 {
			return nil, cr.errf(off+6, "data block has no uncompressed data")
		}
		if int64(b.cbData) > cr.size-b.dataOff {
			return nil, cr.errf(off, "data block (%d bytes) extends beyond end of file", b.cbData)
		}
		fr.blocks[i] = b
		off = b.dataOff + int64(b.cbData)
	}
	if fold.Compression.Method() == LZX {
		fr.lzxIn = lzxInput{fr: fr}
		fr.lzx = newLZXDecoder(fold.Compression.LZXWindowBits(), &fr.lzxIn)
	}
	return fr, nil
}

// loadData reads block i's payload and verifies its checksum.
func (fr *folderReader) loadData(i int) ([]byte, error) {
	b := &fr.blocks[i]
	data, err := fr.cr.readAt(b.dataOff, b.cbData, "CFDATA payload")
	if err != nil {
		return nil, err
	}
	if b.csum != 0 {
		if c := checksum(b.hdr, checksum(data, 0)); c != b.csum {
			e := fr.cr.errf(b.off, "data block %d: checksum 0x%08x, computed 0x%08x", i, b.csum, c)
			e.kind = ErrChecksum
			return nil, e
		}
	}
	return data, nil
}

func (fr *folderReader) Read(p []byte) (int, error) {
	for len(fr.out) == 0 {
		if err := fr.decodeNext(); err != nil {
			return 0, err
		}
	}
	n := copy(p, fr.out)
	fr.out = fr.out[n:]
	return n, nil
}

func (fr *folderReader) discard(n int64) (int64, error) {
	for len(fr.out) == 0 {
		if err := fr.decodeNext(); err != nil {
			return 0, err
		}
	}
	k := min(n, int64(len(fr.out)))
	fr.out = fr.out[k:]
	return k, nil
}

func (fr *folderReader) decodeNext() error {
	if fr.next >= len(fr.blocks) {
		return io.EOF
	}
	i := fr.next
	fr.next++
	b := &fr.blocks[i]
	switch fr.fold.Compression.Method() {
	case None:
		data, err := fr.loadData(i)
		if err != nil {
			return err
		}
		if len(data) != b.cbUncomp {
			return fr.cr.errf(b.off, "folder %d, stored data block %d: %d bytes, header says %d uncompressed", fr.fold.index, i, len(data), b.cbUncomp)
		}
		fr.out = data
	case MSZIP:
		data, err := fr.loadData(i)
		if err != nil {
			return err
		}
		out, err := inflateBlock(data, fr.hist, b.cbUncomp)
		if err != nil {
			return fr.cr.errf(b.off, "folder %d, MSZIP data block %d: %v", fr.fold.index, i, err)
		}
		// The history is the last 32 KiB of output, which spans several
		// blocks when blocks are shorter than 32 KiB.
		if len(out) >= maxBlockData {
			fr.hist = out
		} else {
			h := append(append(make([]byte, 0, len(fr.hist)+len(out)), fr.hist...), out...)
			fr.hist = h[max(0, len(h)-maxBlockData):]
		}
		fr.out = out
	case LZX:
		out, err := fr.lzx.decodeFrame(b.cbUncomp)
		if err != nil {
			if fe, ok := err.(*FormatError); ok {
				return fe
			}
			return fr.cr.errf(b.off, "folder %d, LZX data block %d: %v", fr.fold.index, i, err)
		}
		fr.out = out
	}
	return nil
}

// lzxInput feeds the LZX bit reader with the payloads of consecutive CFDATA
// blocks of a folder: the LZX bitstream runs on across block boundaries.
type lzxInput struct {
	fr    *folderReader
	next  int
	cur   []byte
	extra int // zero bytes served after the last block
}

// lzxInputError wraps a CFDATA read error met by the LZX bit reader.
type lzxInputError struct{ err error }

func (in *lzxInput) byte() (byte, error) {
	for len(in.cur) == 0 {
		if in.next >= len(in.fr.blocks) {
			// The decoder may look ahead past the end of the stream
			// while peeking at Huffman codes; serve a few zero bytes
			// (libmspack does the same), then fail.
			if in.extra >= 16 {
				return 0, fmt.Errorf("LZX input exhausted")
			}
			in.extra++
			return 0, nil
		}
		d, err := in.fr.loadData(in.next)
		if err != nil {
			return 0, lzxInputError{err}
		}
		in.next++
		in.cur = d
	}
	c := in.cur[0]
	in.cur = in.cur[1:]
	return c, nil
}

func (e lzxInputError) Error() string { return e.err.Error() }
func (e lzxInputError) Unwrap() error { return e.err }
