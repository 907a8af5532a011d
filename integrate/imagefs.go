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
)

// ImageFS is a setup tree inside a disk image: an FS over one directory of
// a partition's file system, through package imagefs (raw, VMDK or VHD
// containers; FAT32 and NTFS read-write).
//
// Names are matched case-insensitively by the file system itself and an
// existing entry keeps its name when replaced. WriteFile hands the whole
// new content to imagefs/fat32, which writes it into newly allocated
// clusters and only then points the directory entry at them; the FAT and
// the directories reach the disk once, when Close flushes them (FAT copies,
// then directories, then FSInfo). So a run killed before Close leaves the
// file system on disk as it was, with the new data only in clusters its FAT
// still calls free; what is not atomic is the flush itself. On NTFS each
// write is planned completely and then written at once (data, index
// blocks, bitmaps, MFT records, $MFTMirr) by imagefs/ntfs.
type ImageFS struct {
	img      *imagefs.Image
	fs       imagefs.FS
	root     string // absolute, "/"-separated
	writable bool
	wrote    bool              // a write was attempted: Close must flush
	name     string            // IMG:/root, for messages
	part     imagefs.Partition // the partition fs lives in
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
// that the NTFS writer refuses (dirty, unclean $LogFile, hibernated) fails
// here, before any planning.
func OpenImage(image string, partition int, root string, writable bool) (*ImageFS, error) {
	return openImage(image, partition, root, writable, false)
}

// OpenVolume opens the whole file system of a partition of a disk image
// (as OpenImage with root "/"), for an installed system. The ImageFS
// also reads and writes the partition's boot sector.
// Opened writable, it records the original of every sector written and
// Close leaves them as an undo journal beside the image (JournalDir,
// UndoImage).
func OpenVolume(image string, partition int, writable bool) (*ImageFS, error) {
	return openImage(image, partition, "/", writable, true)
}

func openImage(image string, partition int, root string, writable, journal bool) (*ImageFS, error) {
	img, err := imagefs.Open(image, writable)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	if writable && journal {
		img.Dev = &recordingDevice{Device: img.Dev, image: image, saved: map[int64][]byte{}}
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
	if f.part, err = fsPartition(img, partition); err != nil {
		img.Dev.Close() // nothing written: no flush
		return nil, fmt.Errorf("integrate: %w", err)
	}
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
// an NTFS volume that must not be written (dirty, unclean $LogFile,
// hibernated Windows).
func (f *ImageFS) CheckWrite() error {
	if !f.writable {
		return fmt.Errorf("%s: the image is opened read-only", f.name)
	}
	if c, ok := f.fs.(interface{ CheckWritable() error }); ok {
		if err := c.CheckWritable(); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
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

// fsPartition returns the partition imagefs.Image.FS(index) opens: the
// given one, or for 0 the active one with a known file system, else the
// first FAT32 or NTFS one.
func fsPartition(img *imagefs.Image, index int) (imagefs.Partition, error) {
	parts := img.Partitions()
	if index != 0 {
		for _, p := range parts {
			if p.Index == index {
				return p, nil
			}
		}
		return imagefs.Partition{}, fmt.Errorf("%s: partition %d does not exist", img.Path, index)
	}
	if a, _ := img.MBR.Active(); a >= 0 {
		for _, p := range parts {
			if p.Index == a+1 && img.Detect(p) != imagefs.FSUnknown {
				return p, nil
			}
		}
	}
	for _, p := range parts {
		if fs := img.Detect(p); fs == imagefs.FSFAT32 || fs == imagefs.FSNTFS {
			return p, nil
		}
	}
	return imagefs.Partition{}, fmt.Errorf("%s: %w", img.Path, imagefs.ErrNoPartition)
}

// Partition is the partition the file system lives in.
func (f *ImageFS) Partition() imagefs.Partition { return f.part }

// ReadSector reads the 512-byte sector n of the partition (0 is its boot
// sector).
func (f *ImageFS) ReadSector(n int64) ([]byte, error) {
	if n < 0 || (n+1)*512 > f.part.Size {
		return nil, fmt.Errorf("%s: sector %d is outside partition %d", f.img.Path, n, f.part.Index)
	}
	b := make([]byte, 512)
	if _, err := f.img.Dev.ReadAt(b, f.part.Offset+n*512); err != nil {
		return nil, fmt.Errorf("%s: partition %d sector %d: %w", f.img.Path, f.part.Index, n, err)
	}
	return b, nil
}

// WriteSector writes the 512-byte sector n of the partition.
func (f *ImageFS) WriteSector(n int64, b []byte) error {
	if err := f.CheckWrite(); err != nil {
		return err
	}
	if len(b) != 512 || n < 0 || (n+1)*512 > f.part.Size {
		return fmt.Errorf("%s: sector %d (%d bytes) is outside partition %d", f.img.Path, n, len(b), f.part.Index)
	}
	f.wrote = true
	if _, err := f.img.Dev.WriteAt(b, f.part.Offset+n*512); err != nil {
		return fmt.Errorf("%s: partition %d sector %d: %w", f.img.Path, f.part.Index, n, err)
	}
	return nil
}

// DiskGeometry is the geometry a BIOS (SeaBIOS, QEMU) or iPXE's INT 13h
// emulation derives from the partition table: heads and sectors per
// track from the partition entries' end CHS values, which a partitioner
// puts on a cylinder boundary; 255 and 63 when no entry gives them.
func (f *ImageFS) DiskGeometry() (heads, sectors uint32) {
	for _, e := range f.img.MBR.Entries {
		if e.Empty() {
			continue
		}
		h, s := uint32(e.EndCHS[0])+1, uint32(e.EndCHS[1]&0x3f)
		if s == 0 {
			continue
		}
		heads, sectors = max(heads, h), max(sectors, s)
	}
	if heads == 0 || sectors == 0 {
		return 255, 63
	}
	return heads, sectors
}
