package imagefs

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/fsid"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
)

// Image is an open disk image with an MBR partition table.
type Image struct {
	Path     string
	Format   Format
	Dev      blockdev.Device
	MBR      *mbr.MBR
	writable bool
	mounted  map[int]FS
}

// Partition is one used entry of the partition table.
type Partition struct {
	Index  int // 1..4 primary, as in the table; 5, 6, … logical, in chain order
	Entry  mbr.Entry
	Offset int64 // bytes
	Size   int64 // bytes
}

// Open opens the disk image at path and reads its partition table. An image
// without an MBR is an error that names the file. A writable open is refused
// when delta or differencing disks depend on the image (see CheckNoChildren);
// OpenForce skips that check.
func Open(path string, writable bool) (*Image, error) {
	if writable {
		if err := CheckNoChildren(path); err != nil {
			return nil, err
		}
	}
	return open(path, writable)
}

// OpenUnlocked opens the image read-only without taking locks, so that an
// image xpboot serve holds can be inspected (--force-share, like
// qemu-img's -U). What it reads may be a state the server is changing.
func OpenUnlocked(path string) (*Image, error) {
	dev, format, err := OpenDeviceUnlocked(path)
	if err != nil {
		return nil, err
	}
	img, err := openDevice(path, format, dev, false)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return img, nil
}

// OpenForce opens the image writable even when delta disks depend on it,
// which invalidates them; commands use it only with --force.
func OpenForce(path string) (*Image, error) { return open(path, true) }

func open(path string, writable bool) (*Image, error) {
	dev, format, err := OpenDevice(path, writable)
	if err != nil {
		return nil, err
	}
	img, err := openDevice(path, format, dev, writable)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return img, nil
}

func openDevice(path string, format Format, dev blockdev.Device, writable bool) (*Image, error) {
	sector := make([]byte, mbr.SectorSize)
	if dev.Size() < mbr.SectorSize {
		return nil, fmt.Errorf("%s: %d bytes is too small to be a disk image", path, dev.Size())
	}
	if _, err := dev.ReadAt(sector, 0); err != nil {
		return nil, fmt.Errorf("%s: read MBR: %w", path, err)
	}
	m, err := mbr.Parse(sector, uint64(dev.Size()/mbr.SectorSize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range m.Entries {
		if e.Type == mbr.TypeGPT {
			return nil, fmt.Errorf("%s: the disk has a GPT partition table (protective MBR); Windows XP x86 cannot boot from GPT", path)
		}
	}
	return &Image{Path: path, Format: format, Dev: dev, MBR: m, writable: writable, mounted: map[int]FS{}}, nil
}

// Partitions returns the used partition entries: the primary ones (1..4)
// in table order, then the logical partitions of an extended partition
// numbered 5, 6, … in chain order, as Windows and Linux number them. A
// damaged chain of extended boot records ends the list where it breaks;
// LogicalErr says why.
func (img *Image) Partitions() []Partition {
	var out []Partition
	var ext []mbr.Entry
	for i, e := range img.MBR.Entries {
		if e.Empty() {
			continue
		}
		out = append(out, Partition{Index: i + 1, Entry: e, Offset: int64(e.Start) * mbr.SectorSize, Size: int64(e.Sectors) * mbr.SectorSize})
		if mbr.IsExtended(e.Type) {
			ext = append(ext, e)
		}
	}
	n := 5
	for _, e := range ext {
		logical, _ := mbr.ReadLogical(img.Dev, e)
		for _, l := range logical {
			out = append(out, Partition{Index: n, Entry: l.Entry, Offset: int64(l.Start) * mbr.SectorSize, Size: int64(l.Sectors) * mbr.SectorSize})
			n++
		}
	}
	return out
}

// LogicalErr reports a damaged chain of extended boot records, which
// Partitions stops at; nil when there is none or it is intact.
func (img *Image) LogicalErr() error {
	for _, e := range img.MBR.Entries {
		if mbr.IsExtended(e.Type) {
			if _, err := mbr.ReadLogical(img.Dev, e); err != nil {
				return fmt.Errorf("%s: %w", img.Path, err)
			}
		}
	}
	return nil
}

// Filesystem names reported by Detect: package fsid's names.
const (
	FSFAT32   = string(fsid.FAT32)
	FSFAT16   = string(fsid.FAT16)
	FSNTFS    = string(fsid.NTFS)
	FSUnknown = string(fsid.Unknown)
)

// Identify names the file system in partition p from its boot sector with
// fsid.Detect. The error says why xpboot cannot open the partition as FAT32
// or NTFS (FAT12/16, exFAT, an unknown OEM id, a damaged FAT32 BPB, an
// unreadable sector); it is nil for FAT32 and NTFS.
func (img *Image) Identify(p Partition) (fsid.Kind, error) {
	boot := make([]byte, fsid.SectorSize)
	if _, err := img.Dev.ReadAt(boot, p.Offset); err != nil {
		return fsid.Unknown, fmt.Errorf("boot sector at byte %d: %w", p.Offset, err)
	}
	return fsid.Detect(boot, p.Size)
}

// Detect names the file system in partition p: FSFAT32 or FSNTFS when
// xpboot can try to open it, FSFAT16 for FAT12 and FAT16, and FSUnknown
// for anything else, a damaged FAT32 boot sector included (Image.FS and
// image info say what is wrong with it).
func (img *Image) Detect(p Partition) string {
	kind, err := img.Identify(p)
	switch {
	case kind == fsid.NTFS:
		return FSNTFS
	case kind == fsid.FAT32 && err == nil:
		return FSFAT32
	case kind == fsid.FAT12 || kind == fsid.FAT16:
		return FSFAT16
	}
	return FSUnknown
}

// ErrNoPartition is returned when no partition holds a usable file system.
var ErrNoPartition = errors.New("no partition with a FAT32 or NTFS file system")

// FS opens the file system of partition index (1..4), or with index 0 that of
// the active partition, else the first one xpboot can read.
func (img *Image) FS(index int) (FS, error) {
	parts := img.Partitions()
	if len(parts) == 0 {
		return nil, fmt.Errorf("%s: the partition table is empty", img.Path)
	}
	var p *Partition
	if index == 0 {
		if a, _ := img.MBR.Active(); a >= 0 {
			for i := range parts {
				if parts[i].Index == a+1 && img.Detect(parts[i]) != FSUnknown {
					p = &parts[i]
				}
			}
		}
		for i := 0; p == nil && i < len(parts); i++ {
			if fs := img.Detect(parts[i]); fs == FSFAT32 || fs == FSNTFS {
				p = &parts[i]
			}
		}
		if p == nil {
			for i := range parts {
				if err := img.fatDiagnosis(parts[i]); err != nil {
					return nil, fmt.Errorf("%s: %w: partition %d: %v", img.Path, ErrNoPartition, parts[i].Index, err)
				}
			}
			// Say what each partition holds instead (FAT16, exFAT, none …).
			var why []string
			for _, q := range parts {
				if mbr.IsExtended(q.Entry.Type) {
					continue // its first sector is an extended boot record
				}
				if _, err := img.Identify(q); err != nil {
					why = append(why, fmt.Sprintf("partition %d: %v", q.Index, err))
				}
			}
			if len(why) > 0 {
				return nil, fmt.Errorf("%s: %w (%s)", img.Path, ErrNoPartition, strings.Join(why, "; "))
			}
			return nil, fmt.Errorf("%s: %w", img.Path, ErrNoPartition)
		}
	} else {
		for i := range parts {
			if parts[i].Index == index {
				p = &parts[i]
			}
		}
		if p == nil {
			if err := img.LogicalErr(); err != nil {
				return nil, fmt.Errorf("%s: partition %d does not exist (%v)", img.Path, index, err)
			}
			return nil, fmt.Errorf("%s: partition %d does not exist", img.Path, index)
		}
	}
	if fs, ok := img.mounted[p.Index]; ok {
		return fs, nil
	}
	var fs FS
	switch kind := img.Detect(*p); kind {
	case FSFAT32:
		f, err := fat32.Open(img.Dev, p.Offset, p.Size, !img.writable)
		if err != nil {
			return nil, fmt.Errorf("%s: partition %d: %w", img.Path, p.Index, err)
		}
		fs = fatFS{f}
	case FSNTFS:
		var n *ntfs.FS
		var err error
		if img.writable {
			n, err = ntfs.OpenWritable(img.Dev, p.Offset, img.Dev.Size())
		} else {
			n, err = ntfs.Open(img.Dev, p.Offset)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: partition %d: %w", img.Path, p.Index, err)
		}
		fs = ntfsFS{n}
	default:
		if err := img.fatDiagnosis(*p); err != nil {
			return nil, fmt.Errorf("%s: partition %d: %w", img.Path, p.Index, err)
		}
		if _, why := img.Identify(*p); why != nil {
			return nil, fmt.Errorf("%s: partition %d (type 0x%02x): %w", img.Path, p.Index, p.Entry.Type, why)
		}
		return nil, fmt.Errorf("%s: partition %d (type 0x%02x) holds a %s file system; xpboot reads FAT32 and NTFS", img.Path, p.Index, p.Entry.Type, kind)
	}
	img.mounted[p.Index] = fs
	return fs, nil
}

// Close flushes every file system written to, then the device.
func (img *Image) Close() error {
	var first error
	for _, fs := range img.mounted {
		if err := fs.Flush(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", img.Path, err)
		}
	}
	if err := img.Dev.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// FS is a file system inside an image. Paths are absolute, "/"-separated
// and case-insensitive, as on Windows.
type FS interface {
	Type() string
	Label() (string, error)
	Stat(path string) (FileInfo, error)
	ReadDir(path string) ([]FileInfo, error)
	Open(path string) (File, error)
	// The writing methods fail on an image opened read-only, and on NTFS
	// volumes the writer refuses (dirty, unclean $LogFile, hibernated),
	// with an error saying why.
	WriteFile(path string, r io.Reader, size int64, mtime time.Time) error
	Mkdir(path string, mtime time.Time) error
	MkdirAll(path string, mtime time.Time) error
	Remove(path string) error
	Flush() error
	// FreeBytes is the free space in bytes, or a negative number when it
	// is not known: NTFS counts it from $Bitmap only on a volume it may
	// write, so a read-only open or a refused volume answers -1.
	FreeBytes() int64
}

// FileInfo describes an entry of an FS.
type FileInfo interface {
	Name() string
	Size() int64
	IsDir() bool
	ModTime() time.Time
}

// File is a file opened for reading.
type File interface {
	io.ReaderAt
	Size() int64
}

type fatFS struct{ *fat32.FS }

func (f fatFS) Type() string { return FSFAT32 }
func (f fatFS) Stat(p string) (FileInfo, error) {
	fi, err := f.FS.Stat(p)
	if err != nil {
		return nil, err
	}
	return fi, nil
}
func (f fatFS) ReadDir(p string) ([]FileInfo, error) {
	list, err := f.FS.ReadDir(p)
	out := make([]FileInfo, len(list))
	for i, fi := range list {
		out[i] = fi
	}
	return out, err
}
func (f fatFS) Open(p string) (File, error) {
	file, err := f.FS.OpenFile(p)
	if err != nil {
		return nil, err
	}
	return file, nil
}

type ntfsFS struct{ *ntfs.FS }

func (n ntfsFS) Type() string           { return FSNTFS }
func (n ntfsFS) Label() (string, error) { return n.FS.Label() }
func (n ntfsFS) Stat(p string) (FileInfo, error) {
	fi, err := n.FS.Stat(p)
	if err != nil {
		return nil, err
	}
	return fi, nil
}
func (n ntfsFS) ReadDir(p string) ([]FileInfo, error) {
	list, err := n.FS.ReadDir(p)
	out := make([]FileInfo, len(list))
	for i, fi := range list {
		out[i] = fi
	}
	return out, err
}
func (n ntfsFS) Open(p string) (File, error) {
	file, err := n.FS.OpenFile(p)
	if err != nil {
		return nil, err
	}
	return file, nil
}
func (n ntfsFS) WriteFile(p string, r io.Reader, size int64, mtime time.Time) error {
	return n.FS.WriteFile(p, r, size, mtime)
}
func (n ntfsFS) Mkdir(p string, mtime time.Time) error    { return n.FS.Mkdir(p, mtime) }
func (n ntfsFS) MkdirAll(p string, mtime time.Time) error { return n.FS.MkdirAll(p, mtime) }
func (n ntfsFS) Remove(p string) error                    { return n.FS.Remove(p) }
func (n ntfsFS) Flush() error                             { return n.FS.Flush() }
