package bootcode

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

//go:generate nasm -f bin -o mbr.bin mbr.asm
//go:generate nasm -f bin -o fat32.bin fat32.asm

// mbrCode is mbr.asm assembled: exactly MBRCodeSize bytes.
//
//go:embed mbr.bin
var mbrCode []byte

// fat32Code is fat32.asm assembled: the boot sector template (bytes 0..511,
// with zeros in the BPB area) followed by the second stage (bytes 512..1023).
//
//go:embed fat32.bin
var fat32Code []byte

// Sizes and offsets of the code areas.
const (
	// SectorSize is the only sector size the boot code supports.
	SectorSize = 512
	// MBRCodeSize is the size of the MBR code area, bytes 0..439 of sector
	// 0; the disk signature starts at 440.
	MBRCodeSize = 440
	// FAT32CodeOffset is where the first stage starts in the FAT32 boot
	// sector, right after the FAT32 extended BPB (bytes 3..0x59).
	FAT32CodeOffset = 0x5A
	// FAT32Stage2Sector is the reserved sector of the volume, counted from
	// its boot sector, that holds the second stage. Its backup copy is at
	// BackupBootSector + FAT32Stage2Sector.
	FAT32Stage2Sector = 12
)

// BPB offsets in a FAT32 boot sector (Microsoft FAT32 specification).
const (
	bpbBytesPerSector = 0x0B
	bpbSecPerCluster  = 0x0D
	bpbReserved       = 0x0E
	bpbNumFATs        = 0x10
	bpbRootEntries    = 0x11
	bpbTotal16        = 0x13
	bpbFATSize16      = 0x16
	bpbSecPerTrack    = 0x18
	bpbHeads          = 0x1A
	bpbHidden         = 0x1C
	bpbTotal32        = 0x20
	bpbFATSize32      = 0x24
	bpbExtFlags       = 0x28
	bpbFSVersion      = 0x2A
	bpbRootCluster    = 0x2C
	bpbFSInfo         = 0x30
	bpbBackupBoot     = 0x32
	bpbBootSig        = 0x42
	bpbFSType         = 0x52
	signatureOffset   = 510
	stage2TagOffset   = 506 // "XPB2" in the second stage sector
	minFAT32Clusters  = 65525
	maxFAT32Clusters  = 0x0FFFFFF5 // cluster numbers 2..0x0FFFFFF6
)

// ErrNotFAT32 is returned by InstallFAT32 for a boot sector that does not
// describe a FAT32 volume (FAT12/16, NTFS, unformatted …).
var ErrNotFAT32 = errors.New("bootcode: not a FAT32 boot sector")

// FormatError reports a boot sector field InstallFAT32 cannot work with. Off
// is the byte offset of the field within the volume's boot sector.
type FormatError struct {
	Off int
	Msg string
}

// Error names the field's offset and the problem.
func (e *FormatError) Error() string {
	return fmt.Sprintf("bootcode: FAT32 boot sector byte 0x%02x: %s", e.Off, e.Msg)
}

// MBR returns a copy of the MBR boot code: MBRCodeSize bytes, zero padded,
// for bytes 0..439 of sector 0.
func MBR() []byte {
	return append([]byte(nil), mbrCode...)
}

// InstallMBR writes the MBR boot code into bytes 0..439 of sector0, which
// must be a whole 512-byte sector. The disk signature (440..443), the
// partition table (446..509) and the 55 AA signature are left as they are.
func InstallMBR(sector0 []byte) error {
	if len(sector0) != SectorSize {
		return fmt.Errorf("bootcode: MBR sector is %d bytes, want %d", len(sector0), SectorSize)
	}
	copy(sector0[:MBRCodeSize], mbrCode)
	return nil
}

// ReadWriterAt is the part of a disk InstallFAT32 uses; blockdev.Device and
// *os.File satisfy it.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// InstallFAT32 writes the FAT32 boot code into the volume whose boot sector
// starts at byte partOffset of dev. It checks that the boot sector describes
// a FAT32 volume with 512-byte sectors whose reserved area has room for the
// second stage and its backup, then writes the first stage into the boot
// sector (keeping the BPB, bytes 3..0x59) and the second stage into reserved
// sector 12, and the same two sectors at the backup boot sector (BPB field
// 0x32) and 12 sectors after it. A volume without a backup boot sector
// (field 0) gets only the primary copies.
//
// dev is the whole disk: the BPB's hidden sectors field (0x1C), through which
// the boot code finds its volume, must equal partOffset/512. Nothing is
// written when a check fails; such errors are a *FormatError or wrap
// ErrNotFAT32.
func InstallFAT32(dev ReadWriterAt, partOffset int64) error {
	if partOffset < 0 || partOffset%SectorSize != 0 {
		return fmt.Errorf("bootcode: partition offset %d is not a multiple of %d", partOffset, SectorSize)
	}
	boot := make([]byte, SectorSize)
	if n, err := dev.ReadAt(boot, partOffset); n < len(boot) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("bootcode: read FAT32 boot sector at byte %d: %w", partOffset, err)
	}
	backup, err := checkFAT32(boot)
	if err != nil {
		return err
	}
	// The boot code finds its volume through the hidden sectors field; a
	// formatter that left it 0 (go-diskfs does) makes an unbootable disk.
	if hidden := binary.LittleEndian.Uint32(boot[bpbHidden:]); int64(hidden) != partOffset/SectorSize {
		return &FormatError{bpbHidden, fmt.Sprintf("hidden sectors %d, but the volume starts at sector %d of the disk", hidden, partOffset/SectorSize)}
	}

	copy(boot[0:3], fat32Code[0:3])
	copy(boot[FAT32CodeOffset:], fat32Code[FAT32CodeOffset:SectorSize])
	stage2 := fat32Code[SectorSize : 2*SectorSize]

	type sectorWrite struct {
		sector int64 // counted from the volume's boot sector
		data   []byte
	}
	writes := []sectorWrite{{FAT32Stage2Sector, stage2}, {0, boot}}
	if backup != 0 {
		writes = append(writes, sectorWrite{int64(backup) + FAT32Stage2Sector, stage2}, sectorWrite{int64(backup), boot})
	}
	// Each second stage is written before the boot sector that loads it, so
	// the new first stage never runs without its second stage.
	for _, w := range writes {
		off := partOffset + w.sector*SectorSize
		if _, err := dev.WriteAt(w.data, off); err != nil {
			return fmt.Errorf("bootcode: write volume sector %d at byte %d: %w", w.sector, off, err)
		}
	}
	return nil
}

// checkFAT32 validates the BPB fields the boot code relies on and returns
// the backup boot sector number (0 for none).
func checkFAT32(b []byte) (backup uint16, err error) {
	le := binary.LittleEndian
	if b[signatureOffset] != 0x55 || b[signatureOffset+1] != 0xAA {
		return 0, &FormatError{signatureOffset, fmt.Sprintf("signature %02X %02X, want 55 AA: not a formatted boot sector", b[signatureOffset], b[signatureOffset+1])}
	}
	if b[0] != 0xEB && b[0] != 0xE9 {
		return 0, &FormatError{0, fmt.Sprintf("first byte 0x%02x is not a jump (EB or E9): not a boot sector", b[0])}
	}
	if bps := le.Uint16(b[bpbBytesPerSector:]); bps != SectorSize {
		return 0, &FormatError{bpbBytesPerSector, fmt.Sprintf("%d bytes per sector; the boot code supports only %d", bps, SectorSize)}
	}
	rootEntries, fat16 := le.Uint16(b[bpbRootEntries:]), le.Uint16(b[bpbFATSize16:])
	fatSize := le.Uint32(b[bpbFATSize32:])
	if rootEntries != 0 || fat16 != 0 || le.Uint16(b[bpbTotal16:]) != 0 || fatSize == 0 {
		return 0, fmt.Errorf("%w: root entries %d, 16-bit FAT size %d, 32-bit FAT size %d (FAT32 has 0, 0, non-zero)", ErrNotFAT32, rootEntries, fat16, fatSize)
	}
	if b[bpbBootSig] != 0x29 || string(b[bpbFSType:bpbFSType+8]) != "FAT32   " {
		return 0, fmt.Errorf("%w: extended boot signature 0x%02x and type %q at 0x52, want 0x29 and \"FAT32   \"", ErrNotFAT32, b[bpbBootSig], b[bpbFSType:bpbFSType+8])
	}
	if v := le.Uint16(b[bpbFSVersion:]); v != 0 {
		return 0, &FormatError{bpbFSVersion, fmt.Sprintf("FAT32 version %d.%d; only 0.0 exists", v>>8, v&0xFF)}
	}
	spc := b[bpbSecPerCluster]
	if spc == 0 || spc&(spc-1) != 0 {
		return 0, &FormatError{bpbSecPerCluster, fmt.Sprintf("sectors per cluster %d is not a power of two", spc)}
	}
	nfats := b[bpbNumFATs]
	if nfats == 0 {
		return 0, &FormatError{bpbNumFATs, "no FATs"}
	}
	if ext := le.Uint16(b[bpbExtFlags:]); ext&0x80 != 0 && int(ext&0x0F) >= int(nfats) {
		return 0, &FormatError{bpbExtFlags, fmt.Sprintf("active FAT %d, but the volume has %d FATs", ext&0x0F, nfats)}
	}
	if le.Uint16(b[bpbSecPerTrack:]) == 0 || le.Uint16(b[bpbHeads:]) == 0 {
		return 0, &FormatError{bpbSecPerTrack, fmt.Sprintf("geometry of %d sectors per track and %d heads; the CHS fallback needs both non-zero", le.Uint16(b[bpbSecPerTrack:]), le.Uint16(b[bpbHeads:]))}
	}
	reserved := le.Uint16(b[bpbReserved:])
	total := le.Uint32(b[bpbTotal32:])
	meta := uint64(reserved) + uint64(nfats)*uint64(fatSize)
	if meta >= uint64(total) {
		return 0, &FormatError{bpbTotal32, fmt.Sprintf("%d sectors in all, but reserved sectors and FATs take %d", total, meta)}
	}
	clusters := (uint64(total) - meta) / uint64(spc)
	if clusters < minFAT32Clusters {
		return 0, fmt.Errorf("%w: %d clusters; Windows reads a volume with fewer than %d clusters as FAT12/16", ErrNotFAT32, clusters, minFAT32Clusters)
	}
	if clusters > maxFAT32Clusters {
		return 0, &FormatError{bpbTotal32, fmt.Sprintf("%d clusters exceed the FAT32 maximum of %d", clusters, maxFAT32Clusters)}
	}
	if root := le.Uint32(b[bpbRootCluster:]); root < 2 || uint64(root) >= clusters+2 {
		return 0, &FormatError{bpbRootCluster, fmt.Sprintf("root cluster %d outside 2..%d", root, clusters+1)}
	}

	// Sectors of the reserved area the file system itself uses: the boot
	// sector and the two after it (Windows keeps its boot record in sectors
	// 0..2), FSInfo, and their copies at the backup boot sector.
	if reserved <= FAT32Stage2Sector {
		return 0, &FormatError{bpbReserved, fmt.Sprintf("%d reserved sectors; the second stage needs sector %d", reserved, FAT32Stage2Sector)}
	}
	fsinfo := le.Uint16(b[bpbFSInfo:])
	backup = le.Uint16(b[bpbBackupBoot:])
	type use struct {
		what string
		off  int // the BPB field that placed it there
	}
	taken := map[uint32]use{0: {"boot sector", 0}, 1: {"boot sector", 0}, 2: {"boot sector", 0}}
	if fsinfo != 0 && fsinfo != 0xFFFF {
		if fsinfo >= reserved {
			return 0, &FormatError{bpbFSInfo, fmt.Sprintf("FSInfo sector %d lies outside the %d reserved sectors", fsinfo, reserved)}
		}
		taken[uint32(fsinfo)] = use{"FSInfo sector", bpbFSInfo}
	}
	stage2 := []uint32{FAT32Stage2Sector}
	if backup != 0 {
		if uint32(backup)+FAT32Stage2Sector >= uint32(reserved) {
			return 0, &FormatError{bpbBackupBoot, fmt.Sprintf("backup boot sector %d leaves no room for the second stage's backup at sector %d in %d reserved sectors", backup, uint32(backup)+FAT32Stage2Sector, reserved)}
		}
		for i := uint32(0); i < 3; i++ {
			taken[uint32(backup)+i] = use{"backup boot sector", bpbBackupBoot}
		}
		if fsinfo != 0 && fsinfo != 0xFFFF {
			taken[uint32(backup)+uint32(fsinfo)] = use{"backup FSInfo sector", bpbFSInfo}
		}
		stage2 = append(stage2, uint32(backup)+FAT32Stage2Sector)
	}
	for _, s := range stage2 {
		if u, ok := taken[s]; ok {
			return 0, &FormatError{u.off, fmt.Sprintf("the second stage at sector %d would overwrite the %s (FSInfo at %d, backup boot sector at %d)", s, u.what, fsinfo, backup)}
		}
	}
	return backup, nil
}
