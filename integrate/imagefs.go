package integrate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// ImageFS is a setup tree or an installed system inside a disk image: an
// imagefs.FS over one directory of a partition's file system, through package imagefs (raw, VMDK or VHD
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
	// tree is imagefs.Sub of the partition's file system at the tree's
	// root; fs is the whole file system. The writing methods mark the
	// image written, so that Close flushes it.
	tree     imagefs.FS
	fs       imagefs.FS
	img      *imagefs.Image
	writable bool
	wrote    bool              // a write was attempted: Close must flush
	name     string            // IMG:/root, for messages
	part     imagefs.Partition // the partition fs lives in
}

var _ imagefs.FS = (*ImageFS)(nil)

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
	f := &ImageFS{tree: imagefs.Sub(fsys, root), img: img, fs: fsys, writable: writable, name: image + ":" + root}
	if f.part, err = fsPartition(img, partition); err != nil {
		img.Dev.Close() // nothing written: no flush
		return nil, fmt.Errorf("integrate: %w", err)
	}
	if writable {
		if err := f.CheckWritable(); err != nil {
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

// CheckWritable reports why writes would fail: an image opened
// read-only or an NTFS volume that must not be written (dirty, unclean
// $LogFile, hibernated Windows).
func (f *ImageFS) CheckWritable() error {
	if !f.writable {
		return fmt.Errorf("%s: the image is opened read-only", f.name)
	}
	if err := imagefs.CheckWritable(f.fs); err != nil {
		return fmt.Errorf("%s: %w", f.name, err)
	}
	return nil
}

// Label is the file system's volume label.
func (f *ImageFS) Label() (string, error) { return f.fs.Label() }

// FreeBytes is the file system's free space, or a negative number when
// it does not know.
func (f *ImageFS) FreeBytes() int64 { return f.fs.FreeBytes() }

// Stat describes name.
func (f *ImageFS) Stat(name string) (imagefs.FileInfo, error) { return f.tree.Stat(name) }

// ReadDir lists the directory name in on-disk order.
func (f *ImageFS) ReadDir(name string) ([]imagefs.FileInfo, error) { return f.tree.ReadDir(name) }

// Open opens the file name for reading.
func (f *ImageFS) Open(name string) (imagefs.File, error) { return f.tree.Open(name) }

// WriteFile creates or replaces name; its directory must exist.
func (f *ImageFS) WriteFile(name string, r io.Reader, size int64, mtime time.Time) error {
	f.wrote = true
	return f.tree.WriteFile(name, r, size, mtime)
}

// Mkdir creates the directory name; its parent must exist.
func (f *ImageFS) Mkdir(name string, mtime time.Time) error {
	f.wrote = true
	return f.tree.Mkdir(name, mtime)
}

// MkdirAll creates name and its missing parents.
func (f *ImageFS) MkdirAll(name string, mtime time.Time) error {
	f.wrote = true
	return f.tree.MkdirAll(name, mtime)
}

// Remove deletes the file or empty directory name.
func (f *ImageFS) Remove(name string) error {
	f.wrote = true
	return f.tree.Remove(name)
}

// Flush writes the file system's metadata now rather than at Close.
func (f *ImageFS) Flush() error {
	f.wrote = true
	return f.tree.Flush()
}

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
	if err := f.CheckWritable(); err != nil {
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
