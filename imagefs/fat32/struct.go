package fat32

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// On-disk constants, from Microsoft's "FAT: General Overview of On-Disk
// Format" (the FAT32 specification, 2000).
const (
	minClusters     = 65525 // fewer clusters make the volume FAT16 by definition
	fatEntryMask    = 0x0FFFFFFF
	eocMin          = 0x0FFFFFF8 // end-of-chain values are 0x0FFFFFF8..0x0FFFFFFF
	eocMark         = 0x0FFFFFFF
	badCluster      = 0x0FFFFFF7
	dirEntrySize    = 32
	maxDirEntries   = 65536 // a directory may not hold more 32-byte entries
	maxFileSize     = 1<<32 - 1
	attrReadOnly    = 0x01
	attrHidden      = 0x02
	attrSystem      = 0x04
	attrVolumeID    = 0x08
	attrDirectory   = 0x10
	attrArchive     = 0x20
	attrLongName    = 0x0F
	ntLowerBase     = 0x08 // NTRes flag: the 8.3 base is shown lower case
	ntLowerExt      = 0x10 // NTRes flag: the 8.3 extension is shown lower case
	lfnLast         = 0x40
	fsInfoLeadSig   = 0x41615252
	fsInfoStructSig = 0x61417272
	fsInfoTrailSig  = 0xAA550000
)

// ErrNotFAT32 is returned for a volume that is not FAT32 (FAT12/16, NTFS, …).
var ErrNotFAT32 = errors.New("fat32: not a FAT32 file system")

// ErrReadOnly is returned when writing to an FS opened read-only.
var ErrReadOnly = errors.New("fat32: file system is opened read-only")

// FormatError reports a structural problem at a byte offset relative to the
// start of the volume.
type FormatError struct {
	Off int64
	Msg string
}

func (e *FormatError) Error() string { return fmt.Sprintf("fat32: volume byte 0x%x: %s", e.Off, e.Msg) }

// BootSector holds the BPB fields of a FAT32 boot sector that xpboot uses.
type BootSector struct {
	OEMName           [8]byte
	BytesPerSector    uint16
	SectorsPerCluster uint8
	ReservedSectors   uint16
	NumFATs           uint8
	Media             uint8
	SectorsPerTrack   uint16
	Heads             uint16
	HiddenSectors     uint32
	TotalSectors      uint32
	FATSize           uint32 // sectors per FAT
	ExtFlags          uint16
	RootCluster       uint32
	FSInfoSector      uint16
	BackupBootSector  uint16
	DriveNumber       uint8
	VolumeID          uint32
	VolumeLabel       [11]byte
}

// Offsets of BPB fields in the boot sector.
const (
	offSectorsPerTrack = 0x18
	offHeads           = 0x1A
	offHiddenSectors   = 0x1C
	offDriveNumber     = 0x40
)

// ParseBootSector decodes and validates a FAT32 boot sector. volumeSize is
// the size of the partition in bytes; the file system must fit in it.
func ParseBootSector(b []byte, volumeSize int64) (*BootSector, error) {
	if len(b) < 512 {
		return nil, &FormatError{0, "boot sector shorter than 512 bytes"}
	}
	le := binary.LittleEndian
	bs := &BootSector{
		BytesPerSector:    le.Uint16(b[0x0B:]),
		SectorsPerCluster: b[0x0D],
		ReservedSectors:   le.Uint16(b[0x0E:]),
		NumFATs:           b[0x10],
		Media:             b[0x15],
		SectorsPerTrack:   le.Uint16(b[0x18:]),
		Heads:             le.Uint16(b[0x1A:]),
		HiddenSectors:     le.Uint32(b[0x1C:]),
		TotalSectors:      le.Uint32(b[0x20:]),
		FATSize:           le.Uint32(b[0x24:]),
		ExtFlags:          le.Uint16(b[0x28:]),
		RootCluster:       le.Uint32(b[0x2C:]),
		FSInfoSector:      le.Uint16(b[0x30:]),
		BackupBootSector:  le.Uint16(b[0x32:]),
		DriveNumber:       b[0x40],
	}
	copy(bs.OEMName[:], b[3:11])
	if b[0x42] == 0x29 {
		bs.VolumeID = le.Uint32(b[0x43:])
		copy(bs.VolumeLabel[:], b[0x47:0x52])
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		return nil, &FormatError{510, "boot sector signature 55 AA missing"}
	}
	switch bs.BytesPerSector {
	case 512, 1024, 2048, 4096:
	default:
		return nil, &FormatError{0x0B, fmt.Sprintf("bytes per sector %d is not 512, 1024, 2048 or 4096", bs.BytesPerSector)}
	}
	spc := bs.SectorsPerCluster
	if spc == 0 || spc&(spc-1) != 0 {
		return nil, &FormatError{0x0D, fmt.Sprintf("sectors per cluster %d is not a power of two", spc)}
	}
	if bs.ReservedSectors == 0 || bs.NumFATs == 0 {
		return nil, &FormatError{0x0E, "no reserved sectors or no FATs"}
	}
	if le.Uint16(b[0x11:]) != 0 || le.Uint16(b[0x16:]) != 0 || bs.FATSize == 0 {
		return nil, fmt.Errorf("%w (FAT12/16 BPB: root entries %d, 16-bit FAT size %d)", ErrNotFAT32, le.Uint16(b[0x11:]), le.Uint16(b[0x16:]))
	}
	if bs.TotalSectors == 0 {
		return nil, &FormatError{0x20, "total sectors is 0"}
	}
	if volumeSize > 0 && int64(bs.TotalSectors)*int64(bs.BytesPerSector) > volumeSize {
		return nil, &FormatError{0x20, fmt.Sprintf("file system of %d sectors is larger than its %d-byte partition", bs.TotalSectors, volumeSize)}
	}
	meta := uint64(bs.ReservedSectors) + uint64(bs.NumFATs)*uint64(bs.FATSize)
	if meta >= uint64(bs.TotalSectors) {
		return nil, &FormatError{0x24, fmt.Sprintf("reserved sectors and FATs (%d sectors) leave no data area in %d sectors", meta, bs.TotalSectors)}
	}
	clusters := bs.Clusters()
	if clusters < minClusters {
		return nil, fmt.Errorf("%w: %d clusters (FAT32 needs at least %d)", ErrNotFAT32, clusters, minClusters)
	}
	if clusters > fatEntryMask-10 {
		return nil, &FormatError{0x20, fmt.Sprintf("%d clusters exceed the FAT32 maximum", clusters)}
	}
	if uint64(bs.FATSize)*uint64(bs.BytesPerSector)/4 < uint64(clusters)+2 {
		return nil, &FormatError{0x24, fmt.Sprintf("FAT of %d sectors cannot map %d clusters", bs.FATSize, clusters)}
	}
	if bs.RootCluster < 2 || bs.RootCluster >= clusters+2 {
		return nil, &FormatError{0x2C, fmt.Sprintf("root cluster %d outside 2..%d", bs.RootCluster, clusters+1)}
	}
	return bs, nil
}

// Clusters returns the number of data clusters.
func (bs *BootSector) Clusters() uint32 {
	data := uint64(bs.TotalSectors) - uint64(bs.ReservedSectors) - uint64(bs.NumFATs)*uint64(bs.FATSize)
	return uint32(data / uint64(bs.SectorsPerCluster))
}

// ClusterSize returns the cluster size in bytes.
func (bs *BootSector) ClusterSize() int64 {
	return int64(bs.SectorsPerCluster) * int64(bs.BytesPerSector)
}

// dataStart is the volume byte offset of cluster 2.
func (bs *BootSector) dataStart() int64 {
	return (int64(bs.ReservedSectors) + int64(bs.NumFATs)*int64(bs.FATSize)) * int64(bs.BytesPerSector)
}

// fatStart returns the volume byte offset of FAT copy i.
func (bs *BootSector) fatStart(i int) int64 {
	return (int64(bs.ReservedSectors) + int64(i)*int64(bs.FATSize)) * int64(bs.BytesPerSector)
}

// activeFAT returns the FAT copy to read: mirroring may be disabled with one
// active copy selected in ExtFlags.
func (bs *BootSector) activeFAT() int {
	if bs.ExtFlags&0x80 != 0 {
		if n := int(bs.ExtFlags & 0x0F); n < int(bs.NumFATs) {
			return n
		}
	}
	return 0
}

// mirrored reports whether every FAT copy is kept up to date.
func (bs *BootSector) mirrored() bool { return bs.ExtFlags&0x80 == 0 }
