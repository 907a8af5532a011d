package imagefs

import (
	"io"

	"github.com/xpboot/xpboot/imagefs/mbr"
)

// installMBRCode puts xpboot's MBR boot code into m.
func installMBRCode(m *mbr.MBR) error {
	return nil
}

// installFAT32Code puts xpboot's NTLDR-loading boot code into the FAT32 boot
// sector at off, and into its backup.
func installFAT32Code(dev interface {
	io.ReaderAt
	io.WriterAt
}, off int64) error {
	return nil
}

func isXPBootMBR(m *mbr.MBR) bool { return false }
