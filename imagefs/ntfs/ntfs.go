package ntfs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"www.velocidex.com/golang/go-ntfs/parser"
)

// ErrReadOnly is returned by the writing methods of a volume opened with
// Open (read-only) rather than OpenWritable.
var ErrReadOnly = errors.New("ntfs: the volume was opened read-only")

// FS is an open NTFS volume.
type FS struct {
	r    io.ReaderAt
	off  int64
	ctx  *parser.NTFSContext     // go-ntfs reader; nil after a write
	dev  blockdev.ReaderWriterAt // nil when read-only
	size int64                   // bytes of dev (0: unknown)
	w    *vol                    // the writer, opened at the first write
	werr error                   // why the volume cannot be written
	// rd is this package's own reader (the writer's caches), used for
	// Stat, ReadDir and plain files; rdErr says why it cannot read the
	// volume, and go-ntfs serves everything then.
	rd    *vol
	rdErr error
}

// Open reads the NTFS volume that starts at byte off of r.
func Open(r io.ReaderAt, off int64) (fs *FS, err error) {
	fs = &FS{r: r, off: off}
	if _, err := fs.context(); err != nil {
		return nil, err
	}
	return fs, nil
}

// OpenWritable is Open for a volume that WriteFile, Mkdir and Remove may
// change. size is the size of dev in bytes. The guard rails (NTFS 3.1,
// clean $Volume and $LogFile, no live hiberfil.sys, $MFTMirr in step) are
// checked at the first write, so reading a volume that fails them works.
func OpenWritable(dev blockdev.ReaderWriterAt, off, size int64) (*FS, error) {
	fs, err := Open(dev, off)
	if err != nil {
		return nil, err
	}
	fs.dev, fs.size = dev, size
	return fs, nil
}

// CheckWritable applies the guard rails now and reports why the volume
// cannot be written, or nil.
func (fs *FS) CheckWritable() error {
	_, err := fs.writable()
	return err
}

// context returns the go-ntfs reader, reopened after writes so that none
// of its caches is stale.
func (fs *FS) context() (ctx *parser.NTFSContext, err error) {
	if fs.ctx != nil {
		return fs.ctx, nil
	}
	// go-ntfs reads the device: queued metadata must be there first.
	if err := fs.Flush(); err != nil {
		return nil, err
	}
	defer guard(&err, "open NTFS volume")
	r, off := fs.r, fs.off
	// go-ntfs reads the MFT at absolute offsets of its reader, so the
	// volume must be presented as starting at 0.
	paged, err := parser.NewPagedReader(&parser.OffsetReader{Offset: off, Reader: r}, 4096, 4096)
	if err != nil {
		return nil, err
	}
	ctx, err = parser.GetNTFSContext(paged, 0)
	if err != nil {
		return nil, fmt.Errorf("ntfs: %w", err)
	}
	fs.ctx = ctx
	return ctx, nil
}

// guard turns a panic inside go-ntfs into an error.
func guard(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("ntfs: %s: damaged volume (%v)", what, r)
	}
}

// FileInfo describes an NTFS file or directory.
type FileInfo struct {
	name    string
	size    int64
	dir     bool
	modTime time.Time
}

// Name returns the Win32 name.
func (fi *FileInfo) Name() string { return fi.name }

// Size returns the size of the unnamed data stream.
func (fi *FileInfo) Size() int64 { return fi.size }

// IsDir reports whether fi is a directory.
func (fi *FileInfo) IsDir() bool { return fi.dir }

// ModTime returns the last write time.
func (fi *FileInfo) ModTime() time.Time { return fi.modTime }

// Mode returns a Unix mode for the entry.
func (fi *FileInfo) Mode() iofs.FileMode {
	if fi.dir {
		return iofs.ModeDir | 0o555
	}
	return 0o444
}

// Sys returns nil.
func (fi *FileInfo) Sys() any { return nil }

func clean(p string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(p, `\`, "/")), "/")
}

func (fs *FS) entry(p string) (*parser.MFT_ENTRY, error) {
	ctx, err := fs.context()
	if err != nil {
		return nil, err
	}
	root, err := ctx.GetMFT(5)
	if err != nil {
		return nil, err
	}
	if clean(p) == "" {
		return root, nil
	}
	e, err := root.Open(ctx, clean(p))
	if err != nil {
		return nil, iofs.ErrNotExist
	}
	return e, nil
}

// pick chooses the entry for the main data stream under its long name.
func pick(infos []*parser.FileInfo) *parser.FileInfo {
	var best *parser.FileInfo
	for _, i := range infos {
		if strings.Contains(i.Name, ":") {
			continue // an alternate data stream
		}
		if best == nil || best.NameType == "DOS" {
			best = i
		}
	}
	return best
}

func toInfo(i *parser.FileInfo) *FileInfo {
	return &FileInfo{name: i.Name, size: i.Size, dir: i.IsDir, modTime: i.Mtime}
}

// Stat describes the file or directory at p (case-insensitive).
func (fs *FS) Stat(p string) (fi *FileInfo, err error) {
	if v := fs.own(); v != nil {
		fi, err := fs.ownStat(v, p)
		if err != nil {
			return nil, &iofs.PathError{Op: "stat", Path: p, Err: err}
		}
		return fi, nil
	}
	defer guard(&err, "stat "+p)
	e, err := fs.entry(p)
	if err != nil {
		return nil, &iofs.PathError{Op: "stat", Path: p, Err: err}
	}
	if clean(p) == "" {
		return &FileInfo{name: "/", dir: true}, nil
	}
	best := pick(parser.Stat(fs.ctx, e))
	if best == nil {
		return nil, &iofs.PathError{Op: "stat", Path: p, Err: errors.New("no file name attribute")}
	}
	return toInfo(best), nil
}

// ReadDir lists a directory sorted by name. NTFS metadata files ($MFT …) in
// the root are left out, as Windows does.
func (fs *FS) ReadDir(p string) (list []*FileInfo, err error) {
	if v := fs.own(); v != nil {
		list, err := fs.ownReadDir(v, p)
		if err != nil {
			return nil, &iofs.PathError{Op: "readdir", Path: p, Err: err}
		}
		return list, nil
	}
	defer guard(&err, "list "+p)
	e, err := fs.entry(p)
	if err != nil {
		return nil, &iofs.PathError{Op: "readdir", Path: p, Err: err}
	}
	byName := map[string]*parser.FileInfo{}
	var names []string
	for _, i := range parser.ListDir(fs.ctx, e) {
		if strings.Contains(i.Name, ":") || i.Name == "." || (clean(p) == "" && isMetadata(i.MFTId)) {
			continue
		}
		key := i.MFTId
		if prev, ok := byName[key]; ok && prev.NameType != "DOS" {
			continue
		}
		if _, ok := byName[key]; !ok {
			names = append(names, key)
		}
		byName[key] = i
	}
	for _, k := range names {
		list = append(list, toInfo(byName[k]))
	}
	sort.Slice(list, func(a, b int) bool { return strings.ToLower(list[a].name) < strings.ToLower(list[b].name) })
	return list, nil
}

// File is an open NTFS file.
type File struct {
	r    io.ReaderAt
	size int64
	info *FileInfo
}

// OpenFile opens the unnamed data stream of the file at p.
func (fs *FS) OpenFile(p string) (f *File, err error) {
	if v := fs.own(); v != nil {
		f, err := fs.ownOpen(v, p)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errFallback) {
			return nil, &iofs.PathError{Op: "open", Path: p, Err: err}
		}
	}
	defer guard(&err, "open "+p)
	fi, err := fs.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.dir {
		return nil, &iofs.PathError{Op: "open", Path: p, Err: errors.New("is a directory")}
	}
	ctx, err := fs.context()
	if err != nil {
		return nil, err
	}
	r, err := parser.GetDataForPath(ctx, clean(p))
	if err != nil {
		return nil, &iofs.PathError{Op: "open", Path: p, Err: err}
	}
	return &File{r: r, size: parser.RangeSize(r), info: fi}, nil
}

// Size returns the stream length.
func (f *File) Size() int64 { return f.size }

// Stat describes the file.
func (f *File) Stat() *FileInfo { return f.info }

// ReadAt reads the stream.
func (f *File) ReadAt(p []byte, off int64) (n int, err error) {
	defer guard(&err, "read")
	if off >= f.size {
		return 0, io.EOF
	}
	if rest := f.size - off; int64(len(p)) > rest {
		p = p[:rest]
		err = io.EOF
	}
	n, rerr := f.r.ReadAt(p, off)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return n, rerr
	}
	return n, err
}

// isMetadata reports whether an MFT record number (as go-ntfs gives it)
// is one of the volume's metadata files, records 0..15: names starting
// with "$" alone do not say so ($LDR$, $WIN_NT$.~BT).
func isMetadata(id string) bool {
	n, _, _, _, err := parser.ParseMFTId(id)
	return err != nil || n < 16
}
