package installed

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/fsid"
)

// A BootSector gives access to the sectors of the partition the system
// lives in (integrate.ImageFS implements it for disk images; a directory
// has none).
type BootSector interface {
	ReadSector(n int64) ([]byte, error)
	WriteSector(n int64, b []byte) error
	// DiskGeometry is the heads and sectors per track the BIOS and
	// iPXE's INT 13h emulation derive from the partition table.
	DiskGeometry() (heads, sectors uint32)
	Partition() imagefs.Partition
}

// bootEdit is the planned change of the boot sector (and its backup copy
// when that agreed with it).
type bootEdit struct {
	sectors []sectorEdit
	reasons []string
}

type sectorEdit struct {
	n         int64
	orig, new []byte
}

// BPB fields NTLDR's boot code and the NT boot sector's CHS fallback use;
// FAT32 and NTFS keep them at the same offsets.
const (
	bpbSectorsPerTrack = 0x18
	bpbHeads           = 0x1a
	bpbHiddenSectors   = 0x1c
)

// planBoot compares the boot sector's geometry with what iPXE presents
// (heads and sectors per track from the partition table, hidden sectors
// the partition's first LBA): XP's NTFS and FAT32 boot code use them, and
// a mismatch shows as "A disk read error occurred" (virt-v2v's
// fix_ntfs_heads; research ntfs-write.md part 2).
func (p *Plan) planBoot() error {
	p.boot = nil
	if p.Boot == nil {
		return nil
	}
	b0, err := p.Boot.ReadSector(0)
	if err != nil {
		return fmt.Errorf("installed: boot sector: %w", err)
	}
	if b0[510] != 0x55 || b0[511] != 0xaa {
		return fmt.Errorf("installed: boot sector of partition %d: no 55 AA signature at offset 510", p.Boot.Partition().Index)
	}
	heads, spt := p.Boot.DiskGeometry()
	hidden := p.Boot.Partition().Entry.Start
	oldSPT := uint32(binary.LittleEndian.Uint16(b0[bpbSectorsPerTrack:]))
	oldHeads := uint32(binary.LittleEndian.Uint16(b0[bpbHeads:]))
	oldHidden := binary.LittleEndian.Uint32(b0[bpbHiddenSectors:])
	var reasons []string
	if oldHeads != heads {
		reasons = append(reasons, fmt.Sprintf("heads %d → %d", oldHeads, heads))
	}
	if oldSPT != spt {
		reasons = append(reasons, fmt.Sprintf("sectors per track %d → %d", oldSPT, spt))
	}
	if oldHidden != hidden {
		reasons = append(reasons, fmt.Sprintf("hidden sectors %d → %d", oldHidden, hidden))
	}
	if len(reasons) == 0 {
		return nil
	}
	fix := func(b []byte) []byte {
		n := bytes.Clone(b)
		binary.LittleEndian.PutUint16(n[bpbSectorsPerTrack:], uint16(spt))
		binary.LittleEndian.PutUint16(n[bpbHeads:], uint16(heads))
		binary.LittleEndian.PutUint32(n[bpbHiddenSectors:], hidden)
		return n
	}
	e := &bootEdit{sectors: []sectorEdit{{0, b0, fix(b0)}}}
	// The backup boot sector: FAT32's BPB_BkBootSec, NTFS's last sector
	// of the volume. It is fixed too when it agreed with sector 0.
	var bk int64 = -1
	switch kind, _ := fsid.Detect(b0, p.Boot.Partition().Size); kind {
	case fsid.NTFS:
		bk = int64(binary.LittleEndian.Uint64(b0[0x28:]))
	case fsid.FAT32:
		if n := binary.LittleEndian.Uint16(b0[0x32:]); n != 0 && n != 0xffff {
			bk = int64(n)
		}
	}
	if bk > 0 {
		if bb, err := p.Boot.ReadSector(bk); err == nil && bytes.Equal(bb[:0x24], b0[:0x24]) {
			e.sectors = append(e.sectors, sectorEdit{bk, bb, fix(bb)})
		}
	}
	e.reasons = append(reasons, fmt.Sprintf("iPXE presents the disk as %d heads × %d sectors per track (from the partition table) and the partition starts at sector %d; XP's boot code uses these fields to read NTLDR",
		heads, spt, hidden))
	p.boot = e
	return nil
}

// BootChanges describes the planned boot-sector change, the reason last;
// empty when the geometry is right or there is no boot sector.
func (p *Plan) BootChanges() []string {
	if p.boot == nil {
		return nil
	}
	return p.boot.reasons
}
