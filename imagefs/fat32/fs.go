package fat32

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/xpboot/xpboot/blockdev"
)

// FS is an open FAT32 file system.
type FS struct {
	dev      blockdev.ReaderWriterAt
	off      int64 // byte offset of the volume on dev
	readOnly bool
	bs       *BootSector
	csize    int64

	fat       []uint32 // the FAT, entries 0..clusters+1, upper 4 bits kept as read
	fatDirty  []uint64 // bitset of FAT sectors changed since the last Flush
	nextFree  uint32   // allocation hint
	freeCount uint32

	dirs map[uint32]*dir // directories read so far, by first cluster
}

// Open reads the FAT32 file system that occupies [off, off+size) of dev.
// With readOnly false, changes are written back by Flush.
func Open(dev blockdev.ReaderWriterAt, off, size int64, readOnly bool) (*FS, error) {
	boot := make([]byte, 512)
	if _, err := dev.ReadAt(boot, off); err != nil {
		return nil, fmt.Errorf("fat32: read boot sector: %w", err)
	}
	bs, err := ParseBootSector(boot, size)
	if err != nil {
		return nil, err
	}
	fs := &FS{dev: dev, off: off, readOnly: readOnly, bs: bs, csize: bs.ClusterSize(), dirs: map[uint32]*dir{}}
	if err := fs.loadFAT(); err != nil {
		return nil, err
	}
	return fs, nil
}

func (fs *FS) loadFAT() error {
	n := fs.bs.Clusters() + 2
	raw := make([]byte, int64(n)*4)
	start := fs.bs.fatStart(fs.bs.activeFAT())
	if _, err := fs.dev.ReadAt(raw, fs.off+start); err != nil {
		return &FormatError{start, fmt.Sprintf("read FAT: %v", err)}
	}
	fs.fat = make([]uint32, n)
	for i := range fs.fat {
		fs.fat[i] = binary.LittleEndian.Uint32(raw[i*4:])
	}
	sectors := (int64(n)*4 + int64(fs.bs.BytesPerSector) - 1) / int64(fs.bs.BytesPerSector)
	fs.fatDirty = make([]uint64, (sectors+63)/64)
	for c := uint32(2); c < n; c++ {
		if fs.fat[c]&fatEntryMask == 0 {
			fs.freeCount++
		}
	}
	fs.nextFree = 2
	return nil
}

// BootSector returns the parsed boot sector.
func (fs *FS) BootSector() BootSector { return *fs.bs }

// FreeBytes returns the free space.
func (fs *FS) FreeBytes() int64 { return int64(fs.freeCount) * fs.csize }

// Label returns the volume label: the root directory's label entry, which
// Windows shows, or else the BPB's copy.
func (fs *FS) Label() (string, error) {
	root, err := fs.dir(fs.bs.RootCluster)
	if err != nil {
		return "", err
	}
	if root.label != nil {
		return strings.TrimRight(decodeOEM(root.label), " "), nil
	}
	l := strings.TrimRight(decodeOEM(fs.bs.VolumeLabel[:]), " ")
	if l == "NO NAME" {
		l = ""
	}
	return l, nil
}

// ---- FAT and clusters ----

func (fs *FS) entry(c uint32) uint32 { return fs.fat[c] & fatEntryMask }

func (fs *FS) setEntry(c, v uint32) {
	old := fs.fat[c]
	fs.fat[c] = old&^fatEntryMask | v&fatEntryMask
	if old&fatEntryMask == 0 && v != 0 {
		fs.freeCount--
	} else if old&fatEntryMask != 0 && v == 0 {
		fs.freeCount++
	}
	sec := int64(c) * 4 / int64(fs.bs.BytesPerSector)
	fs.fatDirty[sec/64] |= 1 << (sec % 64)
}

func (fs *FS) validCluster(c uint32) bool { return c >= 2 && c < uint32(len(fs.fat)) }

func (fs *FS) clusterOffset(c uint32) int64 {
	return fs.off + fs.bs.dataStart() + int64(c-2)*fs.csize
}

// chain returns the cluster chain starting at first. It stops at an
// end-of-chain mark and reports loops, free or bad clusters and clusters
// outside the volume as errors naming the FAT entry.
func (fs *FS) chain(first uint32) ([]uint32, error) {
	var out []uint32
	c := first
	for {
		if !fs.validCluster(c) {
			return nil, &FormatError{fs.bs.fatStart(0), fmt.Sprintf("cluster chain from %d reaches invalid cluster %d", first, c)}
		}
		if len(out) >= len(fs.fat) {
			return nil, &FormatError{fs.bs.fatStart(0) + int64(c)*4, fmt.Sprintf("cluster chain from %d loops", first)}
		}
		out = append(out, c)
		next := fs.entry(c)
		switch {
		case next >= eocMin:
			return out, nil
		case next == 0 || next == badCluster:
			return nil, &FormatError{fs.bs.fatStart(0) + int64(c)*4, fmt.Sprintf("cluster chain from %d reaches free or bad cluster at %d", first, c)}
		}
		c = next
	}
}

// allocate returns n free clusters linked into a chain, preferring one
// contiguous run from the allocation hint on.
func (fs *FS) allocate(n uint32) ([]uint32, error) {
	if n == 0 {
		return nil, nil
	}
	if n > fs.freeCount {
		return nil, fmt.Errorf("fat32: volume full: need %d clusters, %d free", n, fs.freeCount)
	}
	out := make([]uint32, 0, n)
	total := uint32(len(fs.fat))
	// Find a contiguous run first; fall back to first-fit fragments.
	if start, ok := fs.findRun(n); ok {
		for i := uint32(0); i < n; i++ {
			out = append(out, start+i)
		}
	} else {
		c := fs.nextFree
		for scanned := uint32(0); uint32(len(out)) < n && scanned < total; scanned++ {
			if c >= total {
				c = 2
			}
			if fs.entry(c) == 0 {
				out = append(out, c)
			}
			c++
		}
	}
	for i, c := range out {
		if i+1 < len(out) {
			fs.setEntry(c, out[i+1])
		} else {
			fs.setEntry(c, eocMark)
		}
	}
	fs.nextFree = out[len(out)-1] + 1
	return out, nil
}

// findRun looks for n contiguous free clusters from the hint, wrapping once.
func (fs *FS) findRun(n uint32) (uint32, bool) {
	total := uint32(len(fs.fat))
	try := func(from, to uint32) (uint32, bool) {
		run, start := uint32(0), from
		for c := from; c < to; c++ {
			if fs.entry(c) != 0 {
				run = 0
				continue
			}
			if run == 0 {
				start = c
			}
			run++
			if run == n {
				return start, true
			}
		}
		return 0, false
	}
	if s, ok := try(fs.nextFree, total); ok {
		return s, true
	}
	return try(2, total)
}

func (fs *FS) free(chain []uint32) {
	for _, c := range chain {
		fs.setEntry(c, 0)
	}
	if len(chain) > 0 && chain[0] < fs.nextFree {
		fs.nextFree = chain[0]
	}
}

// writeClusters writes data over chain, coalescing contiguous clusters into
// single writes. data shorter than the chain is zero padded.
func (fs *FS) writeClusters(chain []uint32, data []byte) error {
	for i := 0; i < len(chain); {
		j := i + 1
		for j < len(chain) && chain[j] == chain[j-1]+1 {
			j++
		}
		lo, hi := int64(i)*fs.csize, int64(j)*fs.csize
		buf := make([]byte, hi-lo)
		if lo < int64(len(data)) {
			copy(buf, data[lo:min(hi, int64(len(data)))])
		}
		if _, err := fs.dev.WriteAt(buf, fs.clusterOffset(chain[i])); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func (fs *FS) readClusters(chain []uint32) ([]byte, error) {
	out := make([]byte, int64(len(chain))*fs.csize)
	for i := 0; i < len(chain); {
		j := i + 1
		for j < len(chain) && chain[j] == chain[j-1]+1 {
			j++
		}
		if _, err := fs.dev.ReadAt(out[int64(i)*fs.csize:int64(j)*fs.csize], fs.clusterOffset(chain[i])); err != nil {
			return nil, err
		}
		i = j
	}
	return out, nil
}

// ---- lookups ----

// FileInfo describes a file or directory.
type FileInfo struct {
	name      string
	short     string
	size      int64
	dir       bool
	attr      byte
	modTime   time.Time
	firstClus uint32
}

// Name returns the long name (or the short name when there is none).
func (fi *FileInfo) Name() string { return fi.name }

// ShortName returns the 8.3 name as stored.
func (fi *FileInfo) ShortName() string { return fi.short }

// Size returns the file size in bytes (0 for directories).
func (fi *FileInfo) Size() int64 { return fi.size }

// IsDir reports whether the entry is a directory.
func (fi *FileInfo) IsDir() bool { return fi.dir }

// ModTime returns the last write time.
func (fi *FileInfo) ModTime() time.Time { return fi.modTime }

// Mode returns a Unix mode derived from the FAT attributes.
func (fi *FileInfo) Mode() iofs.FileMode {
	m := iofs.FileMode(0o644)
	if fi.attr&attrReadOnly != 0 {
		m = 0o444
	}
	if fi.dir {
		m |= iofs.ModeDir | 0o111
	}
	return m
}

// Sys returns the FAT attribute byte.
func (fi *FileInfo) Sys() any { return fi.attr }

func (e *dirEntry) info() *FileInfo {
	return &FileInfo{name: e.name, short: e.short.String(), size: int64(e.size), dir: e.attr&attrDirectory != 0,
		attr: e.attr, modTime: e.mtime.Time(), firstClus: e.cluster}
}

// splitPath cleans p and returns its components; "/" gives none.
func splitPath(p string) []string {
	p = path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// PathError wraps errors with the operation and path inside the volume.
type PathError = iofs.PathError

// lookup resolves p to its parent directory and entry (nil for the root).
func (fs *FS) lookup(p string) (*dir, *dirEntry, error) {
	parts := splitPath(p)
	d, err := fs.dir(fs.bs.RootCluster)
	if err != nil {
		return nil, nil, err
	}
	if len(parts) == 0 {
		return nil, nil, nil
	}
	for i, name := range parts {
		e := d.byName[upperKey(name)]
		if e == nil {
			return d, nil, iofs.ErrNotExist
		}
		if i == len(parts)-1 {
			return d, e, nil
		}
		if e.attr&attrDirectory == 0 {
			return nil, nil, fmt.Errorf("%s is not a directory", "/"+strings.Join(parts[:i+1], "/"))
		}
		if d, err = fs.dir(fs.dirCluster(e)); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, iofs.ErrNotExist
}

// dirCluster maps a directory entry to its first cluster; ".." entries store
// 0 for the root.
func (fs *FS) dirCluster(e *dirEntry) uint32 {
	if e.cluster == 0 {
		return fs.bs.RootCluster
	}
	return e.cluster
}

// Stat describes the file or directory at p.
func (fs *FS) Stat(p string) (*FileInfo, error) {
	_, e, err := fs.lookup(p)
	if err != nil {
		return nil, &PathError{Op: "stat", Path: p, Err: err}
	}
	if e == nil {
		return &FileInfo{name: "/", dir: true, firstClus: fs.bs.RootCluster}, nil
	}
	return e.info(), nil
}

// ReadDir lists the directory at p in on-disk order.
func (fs *FS) ReadDir(p string) ([]*FileInfo, error) {
	_, e, err := fs.lookup(p)
	if err != nil {
		return nil, &PathError{Op: "readdir", Path: p, Err: err}
	}
	c := fs.bs.RootCluster
	if e != nil {
		if e.attr&attrDirectory == 0 {
			return nil, &PathError{Op: "readdir", Path: p, Err: errors.New("not a directory")}
		}
		c = fs.dirCluster(e)
	}
	d, err := fs.dir(c)
	if err != nil {
		return nil, &PathError{Op: "readdir", Path: p, Err: err}
	}
	entries := make([]*dirEntry, 0, len(d.byName))
	for _, e := range d.entries {
		if e != nil {
			entries = append(entries, e)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].slot < entries[j].slot })
	out := make([]*FileInfo, len(entries))
	for i, e := range entries {
		out[i] = e.info()
	}
	return out, nil
}

// File is an open file for reading.
type File struct {
	fs    *FS
	info  *FileInfo
	chain []uint32
}

// OpenFile opens the file at p for reading.
func (fs *FS) OpenFile(p string) (*File, error) {
	_, e, err := fs.lookup(p)
	if err == nil && (e == nil || e.attr&attrDirectory != 0) {
		err = errors.New("is a directory")
	}
	if err != nil {
		return nil, &PathError{Op: "open", Path: p, Err: err}
	}
	f := &File{fs: fs, info: e.info()}
	if e.size > 0 {
		if f.chain, err = fs.chain(e.cluster); err != nil {
			return nil, &PathError{Op: "open", Path: p, Err: err}
		}
		if need := (int64(e.size) + fs.csize - 1) / fs.csize; int64(len(f.chain)) < need {
			return nil, &PathError{Op: "open", Path: p, Err: &FormatError{fs.bs.fatStart(0) + int64(e.cluster)*4,
				fmt.Sprintf("chain of %d clusters is too short for %d bytes", len(f.chain), e.size)}}
		}
	}
	return f, nil
}

// Stat describes the file.
func (f *File) Stat() *FileInfo { return f.info }

// Size returns the file size.
func (f *File) Size() int64 { return f.info.size }

// ReadAt reads from the file, following its cluster chain.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("fat32: negative offset")
	}
	if off >= f.info.size {
		return 0, io.EOF
	}
	var err error
	if rest := f.info.size - off; int64(len(p)) > rest {
		p, err = p[:rest], io.EOF
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		ci := pos / f.fs.csize
		within := pos % f.fs.csize
		// Extend over physically contiguous clusters for one large read.
		run := int64(1)
		for ci+run < int64(len(f.chain)) && f.chain[ci+run] == f.chain[ci+run-1]+1 && (run*f.fs.csize-within) < int64(len(p)-n) {
			run++
		}
		chunk := min(int64(len(p)-n), run*f.fs.csize-within)
		m, rerr := f.fs.dev.ReadAt(p[n:n+int(chunk)], f.fs.clusterOffset(f.chain[ci])+within)
		n += m
		if rerr != nil {
			return n, rerr
		}
	}
	return n, err
}
