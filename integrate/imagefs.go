package integrate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/ntfs"
)

// ImageFS is a setup tree inside a disk image: an FS over one directory of
// a partition's file system, through package imagefs (raw, VMDK or VHD
// containers; FAT32 read-write, NTFS read-only).
//
// Names are matched case-insensitively by the file system itself and an
// existing entry keeps its name when replaced. WriteFile hands the whole
// new content to imagefs/fat32, which writes it into newly allocated
// clusters and only then points the directory entry at them; the FAT and
// the directories reach the disk once, when Close flushes them (FAT copies,
// then directories, then FSInfo). So a run killed before Close leaves the
// file system on disk as it was, with the new data only in clusters its FAT
// still calls free; what is not atomic is the flush itself.
type ImageFS struct {
	img      *imagefs.Image
	fs       imagefs.FS
	root     string // absolute, "/"-separated
	writable bool
	wrote    bool   // a write was attempted: Close must flush
	name     string // IMG:/root, for messages
}

var _ interface {
	FS
	WriteChecker
	SpaceReporter
} = (*ImageFS)(nil)

// OpenImage opens the disk image at image, the file system of partition
// (1–4; 0 picks the active one, as imagefs.Image.FS does) and the
// directory root inside it. The image is opened writable only when
// writable is set: that takes the image's exclusive lock (an image that
// xpboot serve or another writer holds is refused) and refuses a base
// image that delta disks depend on. A writable open of an NTFS partition
// is refused here, before any planning, since xpboot does not write NTFS.
func OpenImage(image string, partition int, root string, writable bool) (*ImageFS, error) {
	img, err := imagefs.Open(image, writable)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	// Error paths close the device without Image.Close, which would
	// flush the file system (and rewrite FSInfo) though nothing changed.
	fsys, err := img.FS(partition)
	if err != nil {
		img.Dev.Close() // nothing written: no flush
		return nil, fmt.Errorf("integrate: %w", err)
	}
	root = path.Clean("/" + strings.ReplaceAll(root, `\`, "/"))
	f := &ImageFS{img: img, fs: fsys, root: root, writable: writable, name: image + ":" + root}
	if writable {
		if err := f.CheckWrite(); err != nil {
			img.Dev.Close() // nothing written: no flush
			return nil, err
		}
	}
	fi, err := fsys.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = errors.New("no such directory in the image")
	case err == nil && !fi.IsDir():
		err = errors.New("not a directory")
	}
	if err != nil {
		img.Dev.Close() // nothing written: no flush
		return nil, fmt.Errorf("integrate: %s: %w", f.name, err)
	}
	return f, nil
}

// String names the tree as IMG:/path.
func (f *ImageFS) String() string { return f.name }

// Type is the file system's type: imagefs.FSFAT32 or imagefs.FSNTFS.
func (f *ImageFS) Type() string { return f.fs.Type() }

// Close writes the file system's metadata changed by the writes (see
// ImageFS) and closes the image. When nothing was written the image is
// closed without touching it (not even FSInfo's free-cluster hint).
func (f *ImageFS) Close() error {
	if !f.wrote {
		return f.img.Dev.Close()
	}
	return f.img.Close()
}

// CheckWrite reports why writes would fail: an image opened read-only or
// an NTFS partition.
func (f *ImageFS) CheckWrite() error {
	if f.fs.Type() == imagefs.FSNTFS {
		return fmt.Errorf("%s: %w", f.name, ntfs.ErrReadOnly)
	}
	if !f.writable {
		return fmt.Errorf("%s: the image is opened read-only", f.name)
	}
	return nil
}

// FreeBytes is the file system's free space (FAT32), or -1 when it does
// not say.
func (f *ImageFS) FreeBytes() int64 {
	if sr, ok := f.fs.(interface{ FreeBytes() int64 }); ok {
		return sr.FreeBytes()
	}
	return -1
}

// full maps a tree path to the absolute path in the file system; ".."
// cannot climb above the tree's root.
func (f *ImageFS) full(name string) string {
	return path.Join(f.root, path.Clean("/"+strings.ReplaceAll(name, `\`, "/")))
}

// ReadFile returns the content of name.
func (f *ImageFS) ReadFile(name string) ([]byte, error) {
	file, err := f.fs.Open(f.full(name))
	if err != nil {
		return nil, err
	}
	b := make([]byte, file.Size())
	if _, err := file.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, &fs.PathError{Op: "read", Path: f.full(name), Err: err}
	}
	return b, nil
}

// WriteFile creates or replaces name; its directory must exist.
func (f *ImageFS) WriteFile(name string, data []byte) error {
	f.wrote = true
	return f.fs.WriteFile(f.full(name), bytes.NewReader(data), int64(len(data)), time.Now())
}

// Stat describes name.
func (f *ImageFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := f.fs.Stat(f.full(name))
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

// ReadDir lists the directory name in on-disk order.
func (f *ImageFS) ReadDir(name string) ([]fs.DirEntry, error) {
	list, err := f.fs.ReadDir(f.full(name))
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(list))
	for i, fi := range list {
		out[i] = fs.FileInfoToDirEntry(fileInfo{fi})
	}
	return out, nil
}

// MkdirAll creates name and its missing parents.
func (f *ImageFS) MkdirAll(name string) error {
	f.wrote = true
	return f.fs.MkdirAll(f.full(name), time.Now())
}

// Remove deletes the file or empty directory name.
func (f *ImageFS) Remove(name string) error {
	f.wrote = true
	return f.fs.Remove(f.full(name))
}

// fileInfo completes an imagefs.FileInfo to an fs.FileInfo.
type fileInfo struct{ imagefs.FileInfo }

func (fi fileInfo) Mode() fs.FileMode {
	if fi.IsDir() {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

func (fi fileInfo) Sys() any { return nil }
