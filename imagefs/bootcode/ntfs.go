package bootcode

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

//go:generate nasm -f bin -o ntfs.bin ntfs.asm

// ntfsCode is ntfs.asm assembled: the whole NTFSBootSize-byte $Boot
// template.
//
//go:embed ntfs.bin
var ntfsCode []byte

// NTFS boot area layout.
const (
	// NTFSBootSize is the size of the NTFS boot code: the 16 sectors at
	// the start of the volume that $Boot covers.
	NTFSBootSize = 16 * SectorSize
	// NTFSCodeOffset is where the code of the first sector starts, right
	// after the NTFS BPB (bytes 0x0B..0x53).
	NTFSCodeOffset = 0x54
)

// NTFS BPB offsets (the layout Windows NT's format writes; see
// docs/bootcode.md).
const (
	ntfsOEM         = 0x03
	ntfsSecPerClus  = 0x0D
	ntfsSecPerTrack = 0x18
	ntfsHeads       = 0x1A
	ntfsHidden      = 0x1C
	ntfsTotal       = 0x28
	ntfsMFT         = 0x30
	ntfsRecordSize  = 0x40
	ntfsTagOffset   = NTFSBootSize - 4 // "XPBN"
	ntfsMaxRecord   = 4096
)

// ErrNotNTFS is returned by InstallNTFS for a boot sector that does not
// describe an NTFS volume.
var ErrNotNTFS = errors.New("bootcode: not an NTFS boot sector")

// NTFSFormatError reports an NTFS boot sector field InstallNTFS cannot work
// with. Off is the byte offset of the field within the volume's boot
// sector.
type NTFSFormatError struct {
	Off int
	Msg string
}

// Error names the field's offset and the problem.
func (e *NTFSFormatError) Error() string {
	return fmt.Sprintf("bootcode: NTFS boot sector byte 0x%02x: %s", e.Off, e.Msg)
}

// NTFS returns a copy of xpboot's NTFS boot code: the NTFSBootSize-byte
// template for the first 16 sectors of an NTFS volume (the data of $Boot).
//
// Bytes 0..2 are the jump (EB 52 90), 3..10 the OEM id "NTFS    ", and
// bytes 0x0B..0x53 are zero: the formatter fills them with the NTFS BPB
// (bytes per sector, which must be 512; sectors per cluster; media 0xF8;
// sectors per track and heads, which the code uses for CHS reads on a BIOS
// without INT 13h extensions; hidden sectors, which must be the volume's
// first sector on the disk; the 0x80 drive byte at 0x24; total sectors; the
// clusters of $MFT and $MFTMirr; clusters per MFT record and per index
// block; the serial number). Bytes 510..511 are 55 AA. Everything else, the
// code from NTFSCodeOffset in sector 0 and sectors 1..15, must be written
// as it is; the backup boot sector at the end of the volume is a copy of
// the completed sector 0.
func NTFS() []byte {
	return append([]byte(nil), ntfsCode...)
}

// InstallNTFS writes the NTFS boot code into the formatted NTFS volume
// whose boot sector starts at byte partOffset of dev (the whole disk). It
// keeps the volume's BPB (bytes 3..0x53), writes the jump, the code of
// sector 0 and sectors 1..15, and gives the backup boot sector (the sector
// after the last one the BPB counts) the same sector 0 when it is a copy
// of the primary's BPB. Nothing is written when a check fails; such errors
// are an *NTFSFormatError or wrap ErrNotNTFS.
//
// The checks are those the boot code needs at run time: 512-byte sectors,
// hidden sectors equal to partOffset/512, a CHS geometry, MFT records of
// 512..4096 bytes and an $MFT within the first 2^32 sectors of the disk.
func InstallNTFS(dev ReadWriterAt, partOffset int64) error {
	if partOffset < 0 || partOffset%SectorSize != 0 {
		return fmt.Errorf("bootcode: partition offset %d is not a multiple of %d", partOffset, SectorSize)
	}
	boot := make([]byte, NTFSBootSize)
	if n, err := dev.ReadAt(boot, partOffset); n < len(boot) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("bootcode: read NTFS boot sectors at byte %d: %w", partOffset, err)
	}
	total, err := checkNTFS(boot[:SectorSize], partOffset)
	if err != nil {
		return err
	}
	backupOff := partOffset + int64(total)*SectorSize
	backup := make([]byte, SectorSize)
	hasBackup := false
	if n, _ := dev.ReadAt(backup, backupOff); n == SectorSize {
		hasBackup = bytes.Equal(backup[ntfsOEM:NTFSCodeOffset], boot[ntfsOEM:NTFSCodeOffset])
	}

	copy(boot[0:ntfsOEM], ntfsCode[0:ntfsOEM])
	copy(boot[NTFSCodeOffset:], ntfsCode[NTFSCodeOffset:])
	// Sectors 1..15 before the boot sector that loads them, so the new
	// first stage never runs without its second stage.
	if _, err := dev.WriteAt(boot[SectorSize:], partOffset+SectorSize); err != nil {
		return fmt.Errorf("bootcode: write NTFS boot sectors 1..15 at byte %d: %w", partOffset+SectorSize, err)
	}
	if _, err := dev.WriteAt(boot[:SectorSize], partOffset); err != nil {
		return fmt.Errorf("bootcode: write NTFS boot sector at byte %d: %w", partOffset, err)
	}
	if hasBackup {
		if _, err := dev.WriteAt(boot[:SectorSize], backupOff); err != nil {
			return fmt.Errorf("bootcode: write NTFS backup boot sector at byte %d: %w", backupOff, err)
		}
	}
	return nil
}

// checkNTFS validates the BPB fields the boot code relies on and returns the
// volume's total sectors (the BPB's count, which excludes the backup boot
// sector).
func checkNTFS(b []byte, partOffset int64) (total uint64, err error) {
	le := binary.LittleEndian
	if b[signatureOffset] != 0x55 || b[signatureOffset+1] != 0xAA {
		return 0, &NTFSFormatError{signatureOffset, fmt.Sprintf("signature %02X %02X, want 55 AA: not a formatted boot sector", b[signatureOffset], b[signatureOffset+1])}
	}
	if string(b[ntfsOEM:ntfsOEM+8]) != "NTFS    " {
		return 0, fmt.Errorf("%w: OEM id %q at 0x03, want \"NTFS    \"", ErrNotNTFS, b[ntfsOEM:ntfsOEM+8])
	}
	if bps := le.Uint16(b[bpbBytesPerSector:]); bps != SectorSize {
		return 0, &NTFSFormatError{bpbBytesPerSector, fmt.Sprintf("%d bytes per sector; the boot code supports only %d", bps, SectorSize)}
	}
	spc := b[ntfsSecPerClus]
	if spc == 0 || spc > 128 || spc&(spc-1) != 0 {
		return 0, &NTFSFormatError{ntfsSecPerClus, fmt.Sprintf("sectors per cluster byte 0x%02x; the boot code supports 1..128", spc)}
	}
	if hidden := le.Uint32(b[ntfsHidden:]); int64(hidden) != partOffset/SectorSize {
		return 0, &NTFSFormatError{ntfsHidden, fmt.Sprintf("hidden sectors %d, but the volume starts at sector %d of the disk", hidden, partOffset/SectorSize)}
	}
	if le.Uint16(b[ntfsSecPerTrack:]) == 0 || le.Uint16(b[ntfsHeads:]) == 0 {
		return 0, &NTFSFormatError{ntfsSecPerTrack, fmt.Sprintf("geometry of %d sectors per track and %d heads; the CHS fallback needs both non-zero", le.Uint16(b[ntfsSecPerTrack:]), le.Uint16(b[ntfsHeads:]))}
	}
	total = le.Uint64(b[ntfsTotal:])
	if total < NTFSBootSize/SectorSize {
		return 0, &NTFSFormatError{ntfsTotal, fmt.Sprintf("%d sectors, fewer than $Boot's 16", total)}
	}
	var rec int64
	if c := int8(b[ntfsRecordSize]); c > 0 {
		rec = int64(c) * int64(spc) * SectorSize
	} else if c < 0 && c >= -31 {
		rec = 1 << uint(-c)
	}
	if rec < SectorSize || rec > ntfsMaxRecord {
		return 0, &NTFSFormatError{ntfsRecordSize, fmt.Sprintf("MFT record size byte 0x%02x (%d bytes); the boot code supports 512..%d", b[ntfsRecordSize], rec, ntfsMaxRecord)}
	}
	mft := le.Uint64(b[ntfsMFT:])
	if mft >= total/uint64(spc) {
		return 0, &NTFSFormatError{ntfsMFT, fmt.Sprintf("$MFT at cluster %d, outside the volume's %d clusters", mft, total/uint64(spc))}
	}
	if end := uint64(partOffset/SectorSize) + mft*uint64(spc) + uint64(rec/SectorSize); end > 1<<32 {
		return 0, &NTFSFormatError{ntfsMFT, fmt.Sprintf("$MFT at cluster %d ends at disk sector %d, beyond the boot code's 32-bit sector numbers", mft, end)}
	}
	return total, nil
}
