package cab

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// FileHeader describes a file added to a cabinet by a Writer.
type FileHeader struct {
	Name     string    // stored name, at most 255 bytes; non-ASCII is stored as UTF-8
	Modified time.Time // wall-clock fields are stored (DOS date/time)
	Attrs    uint16    // AttrReadOnly | AttrArchive …; AttrNameIsUTF is set as needed
}

// A Writer builds a cabinet with one folder. Files are buffered in memory
// and the cabinet is written by Close.
type Writer struct {
	// Compression is MSZIP (the default) or None.
	Compression Compression

	w      io.Writer
	files  []*FileHeader
	offs   []uint32
	data   bytes.Buffer
	closed bool
}

// NewWriter returns a Writer that writes an MSZIP cabinet to w on Close.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, Compression: MSZIP} }

// Create adds a file named name with the current time and the archive
// attribute, and returns a writer for its content (valid until the next
// Create or Close).
func (w *Writer) Create(name string) (io.Writer, error) {
	return w.CreateHeader(&FileHeader{Name: name, Modified: time.Now(), Attrs: AttrArchive})
}

// CreateHeader adds a file described by fh.
func (w *Writer) CreateHeader(fh *FileHeader) (io.Writer, error) {
	if w.closed {
		return nil, errors.New("cab: writer closed")
	}
	if fh.Name == "" || len(fh.Name) > maxName || bytes.IndexByte([]byte(fh.Name), 0) >= 0 {
		return nil, fmt.Errorf("cab: invalid file name %q", fh.Name)
	}
	if len(w.files) >= 0xffff {
		return nil, errors.New("cab: too many files")
	}
	h := *fh
	w.files = append(w.files, &h)
	w.offs = append(w.offs, uint32(w.data.Len()))
	return &fileWriter{w: w}, nil
}

type fileWriter struct{ w *Writer }

func (fw *fileWriter) Write(p []byte) (int, error) {
	if fw.w.closed {
		return 0, errors.New("cab: writer closed")
	}
	if int64(fw.w.data.Len())+int64(len(p)) > maxFolderData*maxBlockData {
		return 0, errors.New("cab: folder too large for one cabinet")
	}
	return fw.w.data.Write(p)
}

// Close compresses the data and writes the cabinet.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("cab: writer closed")
	}
	w.closed = true
	if len(w.files) == 0 {
		return errors.New("cab: no files")
	}
	method := w.Compression.Method()
	if method != None && method != MSZIP {
		return fmt.Errorf("cab: writing %v: %w", w.Compression, ErrUnsupported)
	}
	// CFDATA blocks.
	var blocks bytes.Buffer
	src := w.data.Bytes()
	nblocks := 0
	var prev []byte
	var zbuf bytes.Buffer
	for first := true; first || len(src) > 0; first = false {
		n := min(len(src), maxBlockData)
		chunk := src[:n]
		src = src[n:]
		payload := chunk
		if method == MSZIP {
			var err error
			if payload, err = mszipBlock(&zbuf, chunk, prev); err != nil {
				return err
			}
			prev = chunk
		}
		if n == 0 {
			break // no data at all: no blocks
		}
		var hdr [8]byte
		binary.LittleEndian.PutUint16(hdr[4:], uint16(len(payload)))
		binary.LittleEndian.PutUint16(hdr[6:], uint16(n))
		binary.LittleEndian.PutUint32(hdr[:], checksum(hdr[4:8], checksum(payload, 0)))
		blocks.Write(hdr[:])
		blocks.Write(payload)
		nblocks++
	}
	// Header, folder, files.
	var ft bytes.Buffer
	le := binary.LittleEndian
	for i, fh := range w.files {
		var e [fileEntrySize]byte
		off := w.offs[i]
		end := uint32(w.data.Len())
		if i+1 < len(w.files) {
			end = w.offs[i+1]
		}
		le.PutUint32(e[0:], end-off)
		le.PutUint32(e[4:], off)
		le.PutUint16(e[8:], 0)
		d, t := toDOSTime(fh.Modified)
		le.PutUint16(e[10:], d)
		le.PutUint16(e[12:], t)
		attrs := fh.Attrs &^ AttrNameIsUTF
		if !isASCII(fh.Name) {
			if !utf8.ValidString(fh.Name) {
				return fmt.Errorf("cab: file name %q is not UTF-8", fh.Name)
			}
			attrs |= AttrNameIsUTF
		}
		le.PutUint16(e[14:], attrs)
		ft.Write(e[:])
		ft.WriteString(fh.Name)
		ft.WriteByte(0)
	}
	coffFiles := headerSize + folderSize
	coffData := coffFiles + ft.Len()
	total := coffData + blocks.Len()
	var h [headerSize + folderSize]byte
	copy(h[:], "MSCF")
	le.PutUint32(h[8:], uint32(total))
	le.PutUint32(h[16:], uint32(coffFiles))
	h[24], h[25] = 3, 1
	le.PutUint16(h[26:], 1)
	le.PutUint16(h[28:], uint16(len(w.files)))
	le.PutUint32(h[36:], uint32(coffData))
	le.PutUint16(h[40:], uint16(nblocks))
	le.PutUint16(h[42:], uint16(method))
	for _, b := range [][]byte{h[:], ft.Bytes(), blocks.Bytes()} {
		if _, err := w.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// mszipBlock compresses one block: "CK" and a complete deflate stream that
// may refer to prev, the previous block's data, which the decoder keeps as
// history ([MS-MCI] 2.1). A stream with an incomplete Huffman code (see
// deflateStrict) is redone at another level, and at worst stored.
func mszipBlock(zbuf *bytes.Buffer, chunk, prev []byte) ([]byte, error) {
	for _, level := range []int{flate.BestCompression, flate.DefaultCompression, flate.BestSpeed, flate.NoCompression} {
		zbuf.Reset()
		zbuf.WriteString("CK")
		zw, err := flate.NewWriterDict(zbuf, level, prev)
		if err != nil {
			return nil, err
		}
		zw.Write(chunk)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		if level == flate.NoCompression || deflateStrict(zbuf.Bytes()[2:]) {
			break
		}
	}
	if zbuf.Len() > maxBlockInput {
		return nil, errors.New("cab: MSZIP block too large")
	}
	return zbuf.Bytes(), nil
}
