package imagefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strings"
	"time"
)

// This file holds the conveniences around FS that callers editing whole
// small files (setup text files, hives) need: byte-slice reads and
// writes, a view of one directory, and the write check that comes before
// a plan's first write. They are functions over FS, as io/fs.ReadFile is
// over io/fs.FS, so every backend (a partition of an image, a host
// directory, an ISO) implements only FS.

// ReadFile returns the whole content of the file name of fsys.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, &iofs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

// WriteBytes creates or replaces the file name of fsys with data, dated
// now; its directory must exist.
func WriteBytes(fsys FS, name string, data []byte) error {
	return fsys.WriteFile(name, bytes.NewReader(data), int64(len(data)), time.Now())
}

// CheckWritable reports why writes to fsys would fail, before the first
// one: an image opened read-only, an NTFS volume the writer refuses
// (dirty, unclean $LogFile, hibernated). A file system that cannot say
// (it has no CheckWritable method) is taken as writable; its writes
// report their own errors.
func CheckWritable(fsys FS) error {
	if c, ok := fsys.(interface{ CheckWritable() error }); ok {
		return c.CheckWritable()
	}
	return nil
}

// Sub returns the view of the directory dir of fsys as a file system of
// its own: names, relative or absolute, are taken from dir, and ".."
// cannot climb above it. The view checks writes and reports free space
// as fsys does.
func Sub(fsys FS, dir string) FS {
	dir = path.Clean("/" + strings.ReplaceAll(dir, `\`, "/"))
	if s, ok := fsys.(subFS); ok {
		return subFS{s.fsys, path.Join(s.dir, dir)}
	}
	return subFS{fsys, dir}
}

// subFS is Sub's view.
type subFS struct {
	fsys FS
	dir  string // absolute, "/"-separated
}

// full maps a name of the view to fsys.
func (s subFS) full(name string) string {
	return path.Join(s.dir, path.Clean("/"+strings.ReplaceAll(name, `\`, "/")))
}

func (s subFS) Type() string                            { return s.fsys.Type() }
func (s subFS) Label() (string, error)                  { return s.fsys.Label() }
func (s subFS) Stat(name string) (FileInfo, error)      { return s.fsys.Stat(s.full(name)) }
func (s subFS) ReadDir(name string) ([]FileInfo, error) { return s.fsys.ReadDir(s.full(name)) }
func (s subFS) Open(name string) (File, error)          { return s.fsys.Open(s.full(name)) }
func (s subFS) WriteFile(name string, r io.Reader, size int64, mtime time.Time) error {
	return s.fsys.WriteFile(s.full(name), r, size, mtime)
}
func (s subFS) Mkdir(name string, mtime time.Time) error { return s.fsys.Mkdir(s.full(name), mtime) }
func (s subFS) MkdirAll(name string, mtime time.Time) error {
	return s.fsys.MkdirAll(s.full(name), mtime)
}
func (s subFS) Remove(name string) error { return s.fsys.Remove(s.full(name)) }
func (s subFS) Flush() error             { return s.fsys.Flush() }

// CheckWritable is CheckWritable of the underlying file system.
func (s subFS) CheckWritable() error { return CheckWritable(s.fsys) }

// FreeBytes is the underlying file system's free space.
func (s subFS) FreeBytes() int64 { return s.fsys.FreeBytes() }

// String names the view as the underlying file system (when it has a
// name) and the directory.
func (s subFS) String() string {
	if n, ok := s.fsys.(fmt.Stringer); ok {
		return n.String() + ":" + s.dir
	}
	return s.dir
}
