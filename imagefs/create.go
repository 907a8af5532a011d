package imagefs

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/internal/atomicfile"
)

// CreateOptions describe a new disk image.
type CreateOptions struct {
	Size  int64  // bytes; rounded down to whole sectors
	FS    string // "fat32", "ntfs" or "none"
	Label string // volume label (FAT32: 11 characters, NTFS: 32)
	// ClusterSize is the NTFS cluster size in bytes; 0 picks XP's default
	// for the partition size (ntfs.DefaultClusterSize). FAT32 ignores it.
	ClusterSize int
	// Serial is the volume serial number (FAT32: the low 32 bits); 0 picks
	// a random one.
	Serial uint64
	// Align is the first sector of the partition: 63 (the XP layout, the
	// default) or 2048 (1 MiB, for Vista and later).
	Align uint32
	// DiskSignature is written at MBR offset 440; 0 picks a random non-zero one.
	DiskSignature uint32
	Force         bool // replace an existing file
	// Progress, if set, is called with bytes of metadata written so far.
	Progress func(done, total int64)
}

// CreateResult reports what Create wrote.
type CreateResult struct {
	Path          string
	Size          int64
	DiskSignature uint32
	Partition     Partition
	FS            string
}

// ErrExists is returned when the output exists and Force is not set, by
// Create and by imagefs/convert (whose convert.ErrExists is this same
// value). errors.Is also matches it against fs.ErrExist, so a caller can
// test one error for every "output exists" refusal, including the
// fs.ErrExist of a delta disk whose name is taken.
var ErrExists error = existsError{}

type existsError struct{}

func (existsError) Error() string { return "output file exists (use --force to replace it)" }

func (existsError) Is(target error) bool { return target == fs.ErrExist }

// Create writes a new raw disk image: xpboot's MBR code, a disk signature,
// one active primary partition laid out for XP, and optionally an empty FAT32
// or NTFS file system with xpboot's boot code that loads NTLDR. The image is built
// in a temporary file next to path and renamed into place only when complete.
func Create(path string, opts CreateOptions) (*CreateResult, error) {
	if opts.Align == 0 {
		opts.Align = 63
	}
	if opts.Align != 63 && opts.Align != 2048 {
		return nil, fmt.Errorf("alignment %d: use 63 (XP layout) or 2048 (1 MiB)", opts.Align)
	}
	if opts.FS == "" {
		opts.FS = FSFAT32
	}
	var partType byte
	switch opts.FS {
	case FSFAT32:
		partType = mbr.TypeFAT32LBA
	case FSNTFS:
		partType = mbr.TypeNTFS
	case "none":
		// An unformatted partition typed for NTFS, which XP setup offers to format.
		partType = mbr.TypeNTFS
	default:
		return nil, fmt.Errorf("file system %q: use fat32, ntfs or none", opts.FS)
	}
	if opts.ClusterSize != 0 && opts.FS != FSNTFS {
		return nil, fmt.Errorf("a cluster size is only chosen for --fs ntfs")
	}
	if opts.FS == FSFAT32 && opts.Serial > 0xFFFFFFFF {
		return nil, fmt.Errorf("serial number %x: FAT32 volume serial numbers have 8 hex digits", opts.Serial)
	}
	sectors := uint64(opts.Size) / mbr.SectorSize
	if sectors > mbr.MaxDiskSectors {
		return nil, fmt.Errorf("size %d bytes is beyond what an MBR addresses (2^32-1 sectors): the largest disk is %d bytes (--size %d; 2047G in whole GiB)",
			opts.Size, int64(mbr.MaxDiskSectors)*mbr.SectorSize, int64(mbr.MaxDiskSectors)*mbr.SectorSize)
	}
	entry, err := mbr.Layout(sectors, opts.Align, mbr.XPGeometry, partType)
	if err != nil {
		return nil, fmt.Errorf("size %d bytes: %w", opts.Size, err)
	}
	part := Partition{Index: 1, Entry: entry, Offset: int64(entry.Start) * mbr.SectorSize, Size: int64(entry.Sectors) * mbr.SectorSize}
	if opts.FS == FSFAT32 {
		if err := fat32.CheckSize(part.Size); err != nil {
			if min := MinDiskSize(opts.Align); part.Size < fat32.MinSize && min > 0 {
				return nil, fmt.Errorf("size %d bytes is too small for FAT32 (fewer than 65,525 clusters): the smallest disk is %dM (%d bytes)",
					opts.Size, min>>20, min)
			}
			return nil, fmt.Errorf("size %d bytes (partition of %d bytes): %w", opts.Size, part.Size, err)
		}
	}
	if opts.FS == FSNTFS {
		if err := ntfs.CheckFormat(part.Size, ntfs.FormatOptions{ClusterSize: opts.ClusterSize, Label: opts.Label}); err != nil {
			return nil, fmt.Errorf("size %d bytes (partition of %d bytes): %w", opts.Size, part.Size, err)
		}
	}
	if !opts.Force {
		if _, err := os.Lstat(path); err == nil {
			return nil, fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	sig := opts.DiskSignature
	for sig == 0 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		sig = binary.LittleEndian.Uint32(b[:])
	}

	res := &CreateResult{Path: path, Size: int64(sectors) * mbr.SectorSize, DiskSignature: sig, Partition: part, FS: opts.FS}
	err = writeAtomically(path, func(f *os.File) error {
		if err := f.Truncate(res.Size); err != nil {
			return err
		}
		dev, err := blockdev.NewRaw(f, true)
		if err != nil {
			return err
		}
		progress := newMeter(dev, opts.Progress, metadataBytes(opts.FS, part.Size, opts.ClusterSize))
		m := &mbr.MBR{Signature: sig}
		m.Entries[0] = entry
		if err := installMBRCode(m); err != nil {
			return err
		}
		if _, err := progress.WriteAt(m.Bytes(), 0); err != nil {
			return err
		}
		if opts.FS == FSFAT32 {
			fopts := fat32.FormatOptions{Label: opts.Label, HiddenSectors: entry.Start,
				Heads: uint16(mbr.XPGeometry.Heads), SectorsPerTrack: uint16(mbr.XPGeometry.SectorsPerTrack),
				VolumeID: uint32(opts.Serial), Fresh: true} // the file was just created, all zeros
			if err := fat32.Format(progress, part.Offset, part.Size, fopts); err != nil {
				return err
			}
			if err := installFAT32Code(progress, part.Offset); err != nil {
				return err
			}
		}
		if opts.FS == FSNTFS {
			nopts := ntfs.FormatOptions{ClusterSize: opts.ClusterSize, Label: opts.Label, Serial: opts.Serial, HiddenSectors: entry.Start,
				Heads: uint16(mbr.XPGeometry.Heads), SectorsPerTrack: uint16(mbr.XPGeometry.SectorsPerTrack)}
			if err := ntfs.Format(progress, part.Offset, part.Size, nopts); err != nil {
				return err
			}
		}
		progress.finish()
		return dev.Flush()
	})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return res, nil
}

// metadataBytes is what Create writes, for the progress bar.
func metadataBytes(fs string, partSize int64, clusterSize int) int64 {
	switch fs {
	case FSFAT32:
		return mbr.SectorSize + fat32.MetadataSize(partSize)
	case FSNTFS:
		return mbr.SectorSize + ntfs.FormatMetadataSize(partSize, clusterSize)
	}
	return mbr.SectorSize
}

// writeAtomically builds path through an unnamed file in the same
// directory (package atomicfile) that gets its name only if build succeeds:
// a failed or killed build leaves nothing behind.
func writeAtomically(path string, build func(f *os.File) error) error {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return err
	}
	if err := build(f.File); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// meter counts bytes written through it for a progress callback.
type meter struct {
	dev   blockdev.Device
	cb    func(done, total int64)
	done  int64
	total int64
}

func newMeter(dev blockdev.Device, cb func(done, total int64), total int64) *meter {
	return &meter{dev: dev, cb: cb, total: total}
}

func (m *meter) ReadAt(p []byte, off int64) (int, error) { return m.dev.ReadAt(p, off) }

func (m *meter) WriteAt(p []byte, off int64) (int, error) {
	n, err := m.dev.WriteAt(p, off)
	m.done += int64(n)
	if m.cb != nil {
		m.cb(min(m.done, m.total), m.total)
	}
	return n, err
}

func (m *meter) finish() {
	if m.cb != nil {
		m.cb(m.total, m.total)
	}
}

// MinDiskSize returns the smallest disk, in whole MiB, that Create formats
// FAT32 with partition alignment align (63 or 2048), or 0 if there is none
// below 1 GiB. The XP layout ends the partition on a cylinder boundary, so
// the smallest disk is larger than the smallest FAT32 volume.
func MinDiskSize(align uint32) int64 {
	for size := int64(1 << 20); size < 1<<30; size += 1 << 20 {
		e, err := mbr.Layout(uint64(size)/mbr.SectorSize, align, mbr.XPGeometry, mbr.TypeFAT32LBA)
		if err == nil && fat32.CheckSize(int64(e.Sectors)*mbr.SectorSize) == nil {
			return size
		}
	}
	return 0
}
