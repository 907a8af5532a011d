package fat32

import (
	"encoding/binary"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	diskfat32 "github.com/diskfs/go-diskfs/filesystem/fat32"
)

// FormatOptions describe the volume Format creates.
type FormatOptions struct {
	Label string // up to 11 characters; empty means "NO NAME"
	// HiddenSectors is the LBA of the partition. The BPB must carry it (and
	// the geometry below) because Windows' boot code and NTLDR locate the
	// volume through it.
	HiddenSectors   uint32
	Heads           uint16
	SectorsPerTrack uint16
}

// MinSize is the smallest volume Format accepts: below it FAT32 would have
// fewer than 65,525 clusters and every FAT driver would take it for FAT16.
// It is 32 reserved sectors, two 512-sector FATs and 65,527 clusters of 512
// bytes (two are trimmed, see fitFAT).
const MinSize = (32 + 2*512 + minClusters + 2) * 512

// layout mirrors the cluster size and FAT size choices of go-diskfs v1.9.4's
// fat32.Create, so that sizes it would get wrong are refused before anything
// is written.
func layout(size int64) (clusters uint32, sectorsPerFAT int64, clusterBytes int64) {
	const mb, gb = 1 << 20, 1 << 30
	switch {
	case size <= 260*mb:
		clusterBytes = 512
	case size <= 8*gb:
		clusterBytes = 4096
	case size <= 16*gb:
		clusterBytes = 8192
	case size <= 32*gb:
		clusterBytes = 16384
	default:
		clusterBytes = 32768
	}
	total := size / 512
	spc := clusterBytes / 512
	sectorsPerFAT = (4*(total-32) + (512*spc + 8) - 1) / (512*spc + 8)
	data := total - 32 - 2*sectorsPerFAT
	if data < 0 {
		return 0, sectorsPerFAT, clusterBytes
	}
	n := data / spc
	if mappable := sectorsPerFAT*128 - 2; n > mappable {
		n = mappable // see fitFAT
	}
	return uint32(n), sectorsPerFAT, clusterBytes
}

// fitFAT shrinks the file system by the clusters its FAT cannot map.
// go-diskfs sizes the FAT for the data area without the two reserved FAT
// entries, so on some sizes the last one or two clusters have no FAT entry
// (fsck.fat and Windows then disagree on the cluster count).
func fitFAT(boot []byte) {
	le := binary.LittleEndian
	total := int64(le.Uint32(boot[0x20:]))
	spc := int64(boot[0x0D])
	spf := int64(le.Uint32(boot[0x24:]))
	data := total - int64(le.Uint16(boot[0x0E:])) - int64(boot[0x10])*spf
	if excess := data/spc + 2 - spf*int64(le.Uint16(boot[0x0B:]))/4; excess > 0 {
		le.PutUint32(boot[0x20:], uint32(total-excess*spc))
	}
}

// CheckSize reports whether a volume of size bytes can be formatted.
func CheckSize(size int64) error {
	clusters, spf, cb := layout(size)
	if clusters < minClusters {
		return fmt.Errorf("fat32: a %d-byte volume gives %d clusters of %d bytes; FAT32 needs at least %d (a volume of at least %d MiB)",
			size, clusters, cb, minClusters, MinSize>>20+1)
	}
	// go-diskfs stores the FAT size in 16 bits, which overflows above this.
	if spf > 0xFFFF {
		return fmt.Errorf("fat32: a %d-byte volume needs a %d-sector FAT, more than the formatter supports (volumes up to about 256 GiB)", size, spf)
	}
	if size > diskfat32.Fat32MaxSize {
		return fmt.Errorf("fat32: a %d-byte volume exceeds the FAT32 maximum of %d bytes", size, diskfat32.Fat32MaxSize)
	}
	return nil
}

// Format writes an empty FAT32 file system over [off, off+size) of dev.
func Format(dev Device, off, size int64, opts FormatOptions) error {
	if err := CheckSize(size); err != nil {
		return err
	}
	if len(opts.Label) > 11 {
		return fmt.Errorf("fat32: label %q is longer than 11 characters", opts.Label)
	}
	for _, r := range opts.Label {
		if r < 0x20 || r > 0x7E {
			return fmt.Errorf("fat32: label %q: only printable ASCII is allowed", opts.Label)
		}
	}
	st := &storage{dev: dev, size: off + size}
	if _, err := diskfat32.Create(st, size, off, 512, opts.Label, false); err != nil {
		return fmt.Errorf("fat32: format: %w", err)
	}
	// Repair the boot sector go-diskfs writes: it hard-codes 1 head, 1 sector
	// per track and 0 hidden sectors, which breaks booting from a partition.
	boot := make([]byte, 512)
	if _, err := dev.ReadAt(boot, off); err != nil {
		return err
	}
	le := binary.LittleEndian
	copy(boot[3:11], "MSWIN4.1") // the OEM name Microsoft's FAT specification recommends
	le.PutUint16(boot[offSectorsPerTrack:], opts.SectorsPerTrack)
	le.PutUint16(boot[offHeads:], opts.Heads)
	le.PutUint32(boot[offHiddenSectors:], opts.HiddenSectors)
	boot[offDriveNumber] = 0x80
	fitFAT(boot)
	bs, err := ParseBootSector(boot, size)
	if err != nil {
		return fmt.Errorf("fat32: formatter produced an invalid boot sector: %w", err)
	}
	for _, sec := range []int64{0, int64(bs.BackupBootSector)} {
		if _, err := dev.WriteAt(boot, off+sec*512); err != nil {
			return err
		}
	}
	// Record the real free-cluster count in FSInfo instead of "unknown".
	fs, err := Open(dev, off, size, false)
	if err != nil {
		return err
	}
	return fs.writeFSInfo()
}

// storage adapts a Device region to go-diskfs's backend.Storage, which wants
// a file; go-diskfs only reads and writes it at absolute offsets.
type storage struct {
	dev  Device
	size int64
	pos  int64
}

func (s *storage) Stat() (iofs.FileInfo, error) { return storageInfo{s.size}, nil }
func (s *storage) Read(p []byte) (int, error) {
	n, err := s.dev.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}
func (s *storage) Close() error                             { return nil }
func (s *storage) ReadAt(p []byte, off int64) (int, error)  { return s.dev.ReadAt(p, off) }
func (s *storage) WriteAt(p []byte, off int64) (int, error) { return s.dev.WriteAt(p, off) }
func (s *storage) Sys() (*os.File, error)                   { return nil, backend.ErrNotSuitable }
func (s *storage) Writable() (backend.WritableFile, error)  { return s, nil }
func (s *storage) Path() string                             { return "" }
func (s *storage) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 0:
	case 1:
		off += s.pos
	case 2:
		off += s.size
	default:
		return 0, errors.New("bad whence")
	}
	s.pos = off
	return off, nil
}

type storageInfo struct{ size int64 }

func (i storageInfo) Name() string        { return "volume" }
func (i storageInfo) Size() int64         { return i.size }
func (i storageInfo) Mode() iofs.FileMode { return 0o644 }
func (i storageInfo) ModTime() time.Time  { return time.Time{} }
func (i storageInfo) IsDir() bool         { return false }
func (i storageInfo) Sys() any            { return nil }

// MetadataSize is how many bytes Format writes for a volume of size bytes:
// the reserved area and both FATs.
func MetadataSize(size int64) int64 {
	_, spf, _ := layout(size)
	return (32 + 2*spf) * 512
}
