package setup

import (
	"bytes"
	"fmt"
	"time"
)

// BootSectResult reports WriteBootSect.
type BootSectResult struct {
	Path     string   `json:"path"`
	BootCode []string `json:"boot_code,omitempty"`
}

// WriteBootSect writes $WIN_NT$.~BT\BOOTSECT.DAT for the FAT32 or NTFS
// partition of image (0: the active one), for a tree staged into a
// directory and copied into the image afterwards (xpboot image put), which
// a directory stage cannot make. Like Stage it makes the partition active
// and installs xpboot's MBR and FAT32 or NTFS boot code when the disk has
// other code. The partition must hold $WIN_NT$.~BT already.
func WriteBootSect(image string, partition int) (*BootSectResult, error) {
	t, err := newImageTarget(image, partition, true)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			t.abort()
		}
	}()
	if !t.exists(BootDir) {
		return nil, fmt.Errorf("setup: %s has no %s: stage first (xpboot setup stage)", image, BootDir)
	}
	dat, notes, err := t.bootSector()
	if err != nil {
		return nil, err
	}
	p := BootDir + "/" + BootSectFile
	if err := t.writeFile(p, bytes.NewReader(dat), int64(len(dat)), time.Now()); err != nil {
		return nil, fmt.Errorf("setup: %s: write %s: %w", image, p, err)
	}
	committed = true
	if err := t.commit(); err != nil {
		return nil, err
	}
	return &BootSectResult{Path: p, BootCode: notes}, nil
}
