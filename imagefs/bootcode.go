package imagefs

import (
	"bytes"

	"github.com/xpboot/xpboot/imagefs/bootcode"
	"github.com/xpboot/xpboot/imagefs/mbr"
)

// installMBRCode puts xpboot's MBR boot code into m.
func installMBRCode(m *mbr.MBR) error {
	copy(m.Code[:], bootcode.MBR())
	return nil
}

// installFAT32Code puts xpboot's NTLDR-loading boot code into the FAT32 boot
// sector of the partition at off (and its second stage and backups). dev is
// the whole disk: the boot code finds its volume through the BPB's hidden
// sectors, which bootcode checks against off.
func installFAT32Code(dev bootcode.ReadWriterAt, off int64) error {
	return bootcode.InstallFAT32(dev, off)
}

// isXPBootMBR reports whether m carries xpboot's own MBR code.
func isXPBootMBR(m *mbr.MBR) bool { return bytes.Equal(m.Code[:], bootcode.MBR()) }
