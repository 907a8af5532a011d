package bootcode

import (
	"bytes"
	_ "embed"
	"fmt"
)

//go:generate nasm -f bin -o fat32ldr.bin fat32ldr.asm

// fat32LdrCode is fat32ldr.asm assembled; only its boot sector (bytes
// 0..511) is used.
//
//go:embed fat32ldr.bin
var fat32LdrCode []byte

// SetupLoaderName is the root-directory file the BOOTSECT.DAT made by
// FAT32SetupLoaderSector loads: the setup loader winnt32 copies there.
const SetupLoaderName = "$LDR$"

// FAT32SetupLoaderSector returns the 512-byte BOOTSECT.DAT for a FAT32
// volume that carries xpboot's boot code: the volume's boot sector (same
// BPB) with a first stage that runs the volume's second stage with the
// name $LDR$ in place of NTLDR. NTLDR loads it to 0:7C00 for the boot.ini
// entry C:\$WIN_NT$.~BT\BOOTSECT.DAT and jumps to it with DL set.
//
// bootSector is the volume's sector 0 and stage2 its reserved sector 12
// (FAT32Stage2Sector). Both must be this build's (InstallFAT32): the
// returned first stage runs the second stage on disk, which calls back
// into first-stage routines at fixed addresses.
func FAT32SetupLoaderSector(bootSector, stage2 []byte) ([]byte, error) {
	if len(bootSector) != SectorSize || len(stage2) != SectorSize {
		return nil, fmt.Errorf("bootcode: boot sector and second stage must be %d bytes each (got %d and %d)", SectorSize, len(bootSector), len(stage2))
	}
	if _, err := checkFAT32(bootSector); err != nil {
		return nil, err
	}
	if !bytes.Equal(bootSector[FAT32CodeOffset:SectorSize], fat32Code[FAT32CodeOffset:SectorSize]) {
		return nil, &FormatError{FAT32CodeOffset, "the volume's boot code is not xpboot's; install it first (image create does, or InstallFAT32)"}
	}
	if string(stage2[stage2TagOffset:stage2TagOffset+4]) != "XPB2" || stage2[510] != 0x55 || stage2[511] != 0xAA {
		return nil, fmt.Errorf("bootcode: reserved sector %d holds no xpboot second stage (tag %q)", FAT32Stage2Sector, stage2[stage2TagOffset:stage2TagOffset+4])
	}
	if !bytes.Contains(stage2[:stage2TagOffset], []byte("NTLDR      ")) {
		return nil, fmt.Errorf("bootcode: the second stage in reserved sector %d does not name NTLDR", FAT32Stage2Sector)
	}
	// The second stage calls routines of the first at fixed addresses, so
	// it must come from the same build as this first stage.
	if !bytes.Equal(stage2, fat32Code[SectorSize:]) {
		return nil, fmt.Errorf("bootcode: the second stage in reserved sector %d is from another xpboot version; reinstall the boot code (InstallFAT32) first", FAT32Stage2Sector)
	}
	out := append([]byte(nil), bootSector...)
	copy(out[0:3], fat32LdrCode[0:3])
	copy(out[FAT32CodeOffset:], fat32LdrCode[FAT32CodeOffset:SectorSize])
	return out, nil
}

// FAT32BootSector returns the volume boot sector bootSector as
// InstallFAT32 leaves it (xpboot's first stage, the BPB kept), without
// writing anything; with FAT32Stage2 it lets a caller make BOOTSECT.DAT for
// a volume whose boot code it is about to install.
func FAT32BootSector(bootSector []byte) ([]byte, error) {
	if len(bootSector) != SectorSize {
		return nil, fmt.Errorf("bootcode: boot sector is %d bytes, want %d", len(bootSector), SectorSize)
	}
	if _, err := checkFAT32(bootSector); err != nil {
		return nil, err
	}
	out := append([]byte(nil), bootSector...)
	copy(out[0:3], fat32Code[0:3])
	copy(out[FAT32CodeOffset:], fat32Code[FAT32CodeOffset:SectorSize])
	return out, nil
}

// FAT32Stage2 returns the second stage InstallFAT32 writes to reserved
// sector 12.
func FAT32Stage2() []byte { return append([]byte(nil), fat32Code[SectorSize:]...) }

// HasFAT32Code reports whether a volume's boot sector and reserved sector
// 12 carry this build's FAT32 boot code.
func HasFAT32Code(bootSector, stage2 []byte) bool {
	return len(bootSector) == SectorSize && len(stage2) == SectorSize &&
		bytes.Equal(bootSector[FAT32CodeOffset:], fat32Code[FAT32CodeOffset:SectorSize]) &&
		bytes.Equal(bootSector[:3], fat32Code[:3]) && bytes.Equal(stage2, fat32Code[SectorSize:])
}

// HasMBRCode reports whether sector 0 of a disk carries xpboot's MBR code.
func HasMBRCode(sector0 []byte) bool {
	return len(sector0) >= MBRCodeSize && bytes.Equal(sector0[:MBRCodeSize], mbrCode)
}
