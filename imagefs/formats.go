package imagefs

import (
	"fmt"
	"os"

	"github.com/xpboot/xpboot/imagefs/blockdev"
)

// Format names a disk image container.
type Format string

// Container formats xpboot reads and writes.
const (
	FormatRaw Format = "raw"
)

// OpenDevice opens a disk image of any supported container format, detected
// from the file's content, never from its name. A writable open locks the
// image exclusively; a read-only one takes a shared lock.
func OpenDevice(path string, writable bool) (blockdev.Device, Format, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, "", err
	}
	d, err := blockdev.OpenRaw(path, writable)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", path, err)
	}
	return d, FormatRaw, nil
}
