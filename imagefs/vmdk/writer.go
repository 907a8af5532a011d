package vmdk

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Adapter types for the descriptor's ddb.adapterType; they also choose the
// geometry's head count.
const (
	AdapterIDE      = "ide"
	AdapterLSILogic = "lsilogic"
	AdapterBusLogic = "buslogic"
)

// CreateOptions tunes Create and NewStreamWriter. The zero value makes a
// monolithicSparse disk for an IDE adapter.
type CreateOptions struct {
	// CreateType is TypeMonolithicSparse (default) or TypeMonolithicFlat
	// for Create; NewStreamWriter always writes TypeStreamOptimized.
	CreateType string
	// AdapterType is AdapterIDE (default), AdapterLSILogic or
	// AdapterBusLogic.
	AdapterType string
	// FlatExtentPath is the data file of a monolithicFlat disk, created
	// anew; relative paths are relative to the descriptor's directory.
	// Default: the descriptor's name with "-flat" before ".vmdk".
	FlatExtentPath string
	// FlatExtentName is the extent file name written into the descriptor;
	// default: the base name of FlatExtentPath. It differs from the real
	// path when the caller renames files into place afterwards.
	FlatExtentName string
	// StreamName is the file name NewStreamWriter writes into the
	// descriptor's extent line; default "disk.vmdk". Readers ignore it for
	// single-file disks.
	StreamName string
	// CID is the content id; 0 means random.
	CID uint32
}

func (o *CreateOptions) defaults() CreateOptions {
	var c CreateOptions
	if o != nil {
		c = *o
	}
	if c.CreateType == "" {
		c.CreateType = TypeMonolithicSparse
	}
	if c.AdapterType == "" {
		c.AdapterType = AdapterIDE
	}
	if c.CID == 0 {
		c.CID = randomCID()
	}
	return c
}

// newDescriptor builds the descriptor qemu writes (block/vmdk.c), with
// geometry for the adapter: 16 heads for IDE, 255 for SCSI, 63 sectors,
// cylinders = sectors/(heads×63).
func newDescriptor(o CreateOptions, sectors int64, extents []ExtentLine) (*Descriptor, error) {
	heads := int64(255)
	switch o.AdapterType {
	case AdapterIDE:
		heads = 16
	case AdapterLSILogic, AdapterBusLogic, "legacyESX":
	default:
		return nil, fmt.Errorf("vmdk: adapter type %q is not ide, lsilogic or buslogic", o.AdapterType)
	}
	return &Descriptor{
		Version:    1,
		CID:        o.CID,
		ParentCID:  NoParentCID,
		CreateType: o.CreateType,
		Extents:    extents,
		DDB: []KV{
			{"ddb.virtualHWVersion", "4"},
			{"ddb.geometry.cylinders", strconv.FormatInt(sectors/(heads*63), 10)},
			{"ddb.geometry.heads", strconv.FormatInt(heads, 10)},
			{"ddb.geometry.sectors", "63"},
			{"ddb.adapterType", o.AdapterType},
			{"ddb.toolsVersion", "0"},
		},
	}, nil
}

// SparseLayout is where Create puts the metadata of a monolithicSparse
// extent of a given capacity, the layout qemu and VMware hosted products
// use: header, descriptor, redundant GD and GTs, GD and GTs, grains.
type SparseLayout struct {
	Capacity  int64 // sectors
	GTCount   int64
	GDSectors int64
	RGD, GD   int64 // sectors
	Overhead  int64 // sectors; the first grain goes here
}

// Layout computes the monolithicSparse layout for size bytes.
func Layout(size int64) SparseLayout {
	var l SparseLayout
	l.Capacity = (size + sectorSize - 1) / sectorSize
	grains := (l.Capacity + DefaultGrainSectors - 1) / DefaultGrainSectors
	l.GTCount = (grains + GTEsPerGT - 1) / GTEsPerGT
	l.GDSectors = (l.GTCount*4 + sectorSize - 1) / sectorSize
	gtSectors := int64(GTEsPerGT * 4 / sectorSize)
	l.RGD = 1 + DescriptorSectors
	l.GD = l.RGD + l.GDSectors + gtSectors*l.GTCount
	end := l.GD + l.GDSectors + gtSectors*l.GTCount
	l.Overhead = (end + DefaultGrainSectors - 1) / DefaultGrainSectors * DefaultGrainSectors
	return l
}

// Create makes a new, empty VMDK of size bytes at path, which must not
// exist, and returns it open for writing. size must be a positive multiple
// of 512. A monolithicSparse disk is one file (version 1, redundant grain
// directory, preallocated grain tables, 64 KiB grains); a monolithicFlat
// disk is a descriptor at path plus a sparse raw data file.
func Create(path string, size int64, opts *CreateOptions) (*Disk, error) {
	o := opts.defaults()
	if size <= 0 || size%sectorSize != 0 || size > MaxSize {
		return nil, fmt.Errorf("vmdk: create %s: size %d is not a positive multiple of 512 up to %d", path, size, int64(MaxSize))
	}
	switch o.CreateType {
	case TypeMonolithicSparse:
		if err := createSparse(path, size, o); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("vmdk: create %s: %w", path, err)
		}
	case TypeMonolithicFlat:
		if err := createFlat(path, size, o); err != nil {
			return nil, fmt.Errorf("vmdk: create %s: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("vmdk: create %s: create type %q: %w (streamOptimized is written with NewStreamWriter)", path, o.CreateType, ErrUnsupported)
	}
	var rename map[string]string
	if o.CreateType == TypeMonolithicFlat && o.FlatExtentPath != "" && o.FlatExtentName != "" {
		rename = map[string]string{o.FlatExtentName: o.FlatExtentPath}
	}
	return open(path, true, 0, rename, false)
}

func createSparse(path string, size int64, o CreateOptions) error {
	l := Layout(size)
	desc, err := newDescriptor(o, l.Capacity, []ExtentLine{{Access: "RW", Sectors: l.Capacity, Type: "SPARSE", File: filepath.Base(path)}})
	if err != nil {
		return err
	}
	text := desc.Marshal()
	if len(text) > DescriptorSectors*sectorSize {
		return fmt.Errorf("descriptor of %d bytes does not fit in %d sectors", len(text), DescriptorSectors)
	}
	h := Header{
		Version:          1,
		Flags:            FlagNewlineTest | FlagRedundantGD,
		Capacity:         uint64(l.Capacity),
		GrainSize:        DefaultGrainSectors,
		DescriptorOffset: 1,
		DescriptorSize:   DescriptorSectors,
		NumGTEsPerGT:     GTEsPerGT,
		RGDOffset:        uint64(l.RGD),
		GDOffset:         uint64(l.GD),
		Overhead:         uint64(l.Overhead),
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// The grain tables stay holes (all entries 0 = unallocated).
	if err := f.Truncate(l.Overhead * sectorSize); err != nil {
		return err
	}
	head := make([]byte, (1+DescriptorSectors)*sectorSize)
	copy(head, h.Marshal())
	copy(head[sectorSize:], text)
	if _, err := f.WriteAt(head, 0); err != nil {
		return err
	}
	gtSectors := int64(GTEsPerGT * 4 / sectorSize)
	for _, dir := range []int64{l.RGD, l.GD} {
		gd := make([]byte, l.GDSectors*sectorSize)
		for i := int64(0); i < l.GTCount; i++ {
			binary.LittleEndian.PutUint32(gd[4*i:], uint32(dir+l.GDSectors+i*gtSectors))
		}
		if _, err := f.WriteAt(gd, dir*sectorSize); err != nil {
			return err
		}
	}
	return nil
}

func createFlat(path string, size int64, o CreateOptions) error {
	ext := o.FlatExtentPath
	if ext == "" {
		ext = strings.TrimSuffix(path, filepath.Ext(path)) + "-flat.vmdk"
	} else if !filepath.IsAbs(ext) {
		ext = filepath.Join(filepath.Dir(path), ext)
	}
	name := o.FlatExtentName
	if name == "" {
		name = filepath.Base(ext)
	}
	desc, err := newDescriptor(o, size/sectorSize, []ExtentLine{{Access: "RW", Sectors: size / sectorSize, Type: "FLAT", File: name}})
	if err != nil {
		return err
	}
	df, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	ef, err := os.OpenFile(ext, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		df.Close()
		os.Remove(path)
		return err
	}
	err = ef.Truncate(size)
	if err == nil {
		_, err = df.Write(desc.Marshal())
	}
	ef.Close()
	df.Close()
	if err != nil {
		os.Remove(path)
		os.Remove(ext)
	}
	return err
}

// WriteFlatDescriptor writes a monolithicFlat descriptor at path for an
// existing raw image (the "vmdk pointing to an img file" setup). extent is
// written into the descriptor as given; relative names are relative to the
// descriptor's directory. The raw image must hold size bytes, a multiple
// of 512.
func WriteFlatDescriptor(path, extent string, size int64, opts *CreateOptions) error {
	o := opts.defaults()
	o.CreateType = TypeMonolithicFlat
	if size <= 0 || size%sectorSize != 0 {
		return fmt.Errorf("vmdk: %s: size %d is not a positive multiple of 512", path, size)
	}
	desc, err := newDescriptor(o, size/sectorSize, []ExtentLine{{Access: "RW", Sectors: size / sectorSize, Type: "FLAT", File: extent}})
	if err != nil {
		return err
	}
	return os.WriteFile(path, desc.Marshal(), 0o644)
}

// StreamWriter writes a streamOptimized VMDK (version 3, deflate-compressed
// grains with markers) strictly sequentially: header and descriptor, then
// grains in ascending order, each grain table after its last grain, and at
// Close the grain directory, the footer (a header copy with the real grain
// directory offset, since the header says "GD at end") and the
// end-of-stream marker. Memory is one grain table plus the directory.
// Compression is the caller's (see GrainCompressor), so it can run on all
// cores while the writer stays sequential.
type StreamWriter struct {
	w        *bufio.Writer
	pos      int64 // bytes written
	h        Header
	gd       []uint32
	gt       []uint32 // the current table
	gtIndex  int64    // index of the current table, -1 when none
	next     int64    // lowest grain index the next WriteGrain may use
	grains   int64
	closed   bool
	err      error
	zero     []byte
	grainLen int64
}

// NewStreamWriter starts a streamOptimized disk of size bytes (a positive
// multiple of 512) on w. opts.AdapterType and opts.CID apply.
func NewStreamWriter(w io.Writer, size int64, opts *CreateOptions) (*StreamWriter, error) {
	o := opts.defaults()
	o.CreateType = TypeStreamOptimized
	if size <= 0 || size%sectorSize != 0 || size > MaxSize {
		return nil, fmt.Errorf("vmdk: stream: size %d is not a positive multiple of 512 up to %d", size, int64(MaxSize))
	}
	sectors := size / sectorSize
	name := o.StreamName
	if name == "" {
		name = "disk.vmdk"
	}
	desc, err := newDescriptor(o, sectors, []ExtentLine{{Access: "RW", Sectors: sectors, Type: "SPARSE", File: name}})
	if err != nil {
		return nil, err
	}
	s := &StreamWriter{w: bufio.NewWriterSize(w, 1<<20), gtIndex: -1, grainLen: DefaultGrainSectors * sectorSize}
	grains := (sectors + DefaultGrainSectors - 1) / DefaultGrainSectors
	s.gd = make([]uint32, (grains+GTEsPerGT-1)/GTEsPerGT)
	s.grains = grains
	s.h = Header{
		Version:           3,
		Flags:             FlagNewlineTest | FlagCompressed | FlagMarkers,
		Capacity:          uint64(sectors),
		GrainSize:         DefaultGrainSectors,
		DescriptorOffset:  1,
		DescriptorSize:    DescriptorSectors,
		NumGTEsPerGT:      GTEsPerGT,
		GDOffset:          GDAtEnd,
		Overhead:          1 + DescriptorSectors,
		CompressAlgorithm: CompressDeflate,
	}
	text := desc.Marshal()
	if len(text) > DescriptorSectors*sectorSize {
		return nil, fmt.Errorf("vmdk: stream: descriptor of %d bytes does not fit", len(text))
	}
	head := make([]byte, (1+DescriptorSectors)*sectorSize)
	copy(head, s.h.Marshal())
	copy(head[sectorSize:], text)
	s.write(head)
	return s, s.err
}

func (s *StreamWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	_, s.err = s.w.Write(b)
	s.pos += int64(len(b))
}

func (s *StreamWriter) pad() {
	if r := s.pos % sectorSize; r != 0 {
		s.write(make([]byte, sectorSize-r))
	}
}

// Grains returns the number of grains of the disk.
func (s *StreamWriter) Grains() int64 { return s.grains }

// WriteGrain stores grain index (LBA index×128) as zlib data made by a
// GrainCompressor from the full 64 KiB grain (the last grain padded with
// zeros). Indexes must ascend; skipped grains read as zeros.
func (s *StreamWriter) WriteGrain(index int64, zdata []byte) error {
	if s.err != nil {
		return s.err
	}
	if s.closed || index < s.next || index >= s.grains {
		return fmt.Errorf("vmdk: stream: grain %d out of order or range (next %d, grains %d)", index, s.next, s.grains)
	}
	if t := index / GTEsPerGT; t != s.gtIndex {
		s.flushGT()
		s.gtIndex = t
		s.gt = make([]uint32, GTEsPerGT)
	}
	s.gt[index%GTEsPerGT] = uint32(s.pos / sectorSize)
	var m [12]byte
	binary.LittleEndian.PutUint64(m[:], uint64(index*DefaultGrainSectors))
	binary.LittleEndian.PutUint32(m[8:], uint32(len(zdata)))
	s.write(m[:])
	s.write(zdata)
	s.pad()
	s.next = index + 1
	return s.err
}

// flushGT writes the current grain table behind a GT marker.
func (s *StreamWriter) flushGT() {
	if s.gtIndex < 0 {
		return
	}
	s.write(marker(GTEsPerGT*4/sectorSize, MarkerGT))
	s.gd[s.gtIndex] = uint32(s.pos / sectorSize)
	b := make([]byte, GTEsPerGT*4)
	for i, e := range s.gt {
		binary.LittleEndian.PutUint32(b[4*i:], e)
	}
	s.write(b)
	s.gtIndex = -1
}

// Close writes the last grain table, the grain directory, the footer and
// the end-of-stream marker, and flushes. It does not close the underlying
// writer.
func (s *StreamWriter) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	s.flushGT()
	gdSectors := (int64(len(s.gd))*4 + sectorSize - 1) / sectorSize
	s.write(marker(uint64(gdSectors), MarkerGD))
	gdAt := s.pos / sectorSize
	b := make([]byte, gdSectors*sectorSize)
	for i, e := range s.gd {
		binary.LittleEndian.PutUint32(b[4*i:], e)
	}
	s.write(b)
	s.write(marker(1, MarkerFooter))
	f := s.h
	f.GDOffset = uint64(gdAt)
	s.write(f.Marshal())
	s.write(marker(0, MarkerEOS))
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

// GrainCompressor deflates grains into zlib streams, reusing its buffers.
// One per goroutine; not safe for concurrent use.
type GrainCompressor struct {
	buf bytes.Buffer
	zw  *zlib.Writer
}

// NewGrainCompressor returns a compressor at a compress/flate level (qemu
// uses zlib's default, 6, which is flate.DefaultCompression's meaning).
func NewGrainCompressor(level int) (*GrainCompressor, error) {
	c := &GrainCompressor{}
	zw, err := zlib.NewWriterLevel(&c.buf, level)
	if err != nil {
		return nil, err
	}
	c.zw = zw
	return c, nil
}

// Compress returns the zlib stream of grain; the result is valid until the
// next call.
func (c *GrainCompressor) Compress(grain []byte) ([]byte, error) {
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	if _, err := c.zw.Write(grain); err != nil {
		return nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}
