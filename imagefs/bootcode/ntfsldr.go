package bootcode

import (
	"bytes"
	_ "embed"
	"fmt"
)

//go:generate nasm -f bin -o ntfsldr.bin ntfsldr.asm

// ntfsLdrCode is ntfsldr.asm assembled; only its boot sector (bytes
// 0..511) is used, the rest equals ntfs.bin.
//
//go:embed ntfsldr.bin
var ntfsLdrCode []byte

// NTFSSetupLoaderSector returns the 512-byte BOOTSECT.DAT for an NTFS
// volume that carries xpboot's NTFS boot code: the volume's boot sector
// (same BPB) with a first stage that runs the volume's second stage
// (sectors 1..15 of $Boot) with the name $LDR$ in place of NTLDR. NTLDR
// loads it to 0:7C00 for the boot.ini entry C:\$WIN_NT$.~BT\BOOTSECT.DAT
// and jumps to it with DL set.
//
// boot is the volume's first NTFSBootSize bytes and partOffset the byte
// offset of the volume on the disk. The boot code in boot must be this
// build's (InstallNTFS, or NTFSBootArea for a volume about to get it): the
// returned first stage runs the second stage on disk, which calls back
// into first-stage routines at fixed addresses. Errors are an
// *NTFSFormatError, or wrap ErrNotNTFS, for the BPB; other errors say
// which part of the code is not this build's.
func NTFSSetupLoaderSector(boot []byte, partOffset int64) ([]byte, error) {
	if len(boot) != NTFSBootSize {
		return nil, fmt.Errorf("bootcode: NTFS boot area is %d bytes, want %d", len(boot), NTFSBootSize)
	}
	if _, err := checkNTFS(boot[:SectorSize], partOffset); err != nil {
		return nil, err
	}
	if !bytes.Equal(boot[:ntfsOEM], ntfsCode[:ntfsOEM]) || !bytes.Equal(boot[NTFSCodeOffset:SectorSize], ntfsCode[NTFSCodeOffset:SectorSize]) {
		return nil, &NTFSFormatError{NTFSCodeOffset, "the volume's boot code is not xpboot's; install it first (image create --fs ntfs does, or InstallNTFS)"}
	}
	if string(boot[ntfsTagOffset:]) != "XPBN" {
		return nil, fmt.Errorf("bootcode: NTFS boot sectors 1..15 hold no xpboot second stage (tag %q at byte %d)", boot[ntfsTagOffset:], ntfsTagOffset)
	}
	// The second stage calls routines of the first at fixed addresses, so
	// it must come from the same build as this first stage.
	if !bytes.Equal(boot[SectorSize:], ntfsCode[SectorSize:]) {
		return nil, fmt.Errorf("bootcode: the NTFS second stage in sectors 1..15 is from another xpboot version; reinstall the boot code (InstallNTFS) first")
	}
	out := append([]byte(nil), boot[:SectorSize]...)
	copy(out[:ntfsOEM], ntfsLdrCode[:ntfsOEM])
	copy(out[NTFSCodeOffset:], ntfsLdrCode[NTFSCodeOffset:SectorSize])
	return out, nil
}

// NTFSBootArea returns the volume's first NTFSBootSize bytes boot as
// InstallNTFS leaves them (xpboot's code, the BPB kept), without writing
// anything; it lets a caller make BOOTSECT.DAT (NTFSSetupLoaderSector) for
// a volume whose boot code it is about to install. The checks are
// InstallNTFS's.
func NTFSBootArea(boot []byte, partOffset int64) ([]byte, error) {
	if len(boot) != NTFSBootSize {
		return nil, fmt.Errorf("bootcode: NTFS boot area is %d bytes, want %d", len(boot), NTFSBootSize)
	}
	if _, err := checkNTFS(boot[:SectorSize], partOffset); err != nil {
		return nil, err
	}
	out := append([]byte(nil), boot...)
	copy(out[:ntfsOEM], ntfsCode[:ntfsOEM])
	copy(out[NTFSCodeOffset:], ntfsCode[NTFSCodeOffset:])
	return out, nil
}

// HasNTFSCode reports whether a volume's first NTFSBootSize bytes carry
// this build's NTFS boot code (the BPB is not looked at).
func HasNTFSCode(boot []byte) bool {
	return len(boot) == NTFSBootSize &&
		bytes.Equal(boot[:ntfsOEM], ntfsCode[:ntfsOEM]) &&
		bytes.Equal(boot[NTFSCodeOffset:], ntfsCode[NTFSCodeOffset:])
}
