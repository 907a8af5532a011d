package installed_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
	"github.com/xpboot/xpboot/integrate/installed/installedtest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// volDisk is a BootSector over a whole volume held in memory.
type volDisk struct {
	vol          []byte
	heads, start uint32
}

func (d *volDisk) ReadSector(n int64) ([]byte, error) {
	return bytes.Clone(d.vol[n*512 : n*512+512]), nil
}
func (d *volDisk) WriteSector(n int64, b []byte) error { copy(d.vol[n*512:], b); return nil }
func (d *volDisk) DiskGeometry() (uint32, uint32)      { return d.heads, 63 }
func (d *volDisk) Partition() imagefs.Partition {
	return imagefs.Partition{Index: 1, Entry: mbr.Entry{Start: d.start}, Size: int64(len(d.vol))}
}

// TestBootSectorKinds: the backup boot sector is found by the file system
// fsid.Detect names, for volumes made by mkfs.fat and mkntfs with 240
// heads: both copies get iPXE's 255 heads. A FAT32 BPB without its
// "FAT32   " type string is FAT32 too (its backup used to be left alone).
func TestBootSectorKinds(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	volume := func(size int64, prog string, args ...string) []byte {
		return peertest.Volume(t, size, prog, args...)
	}
	fat := volume(40<<20, mkfs, "-F", "32", "-s", "1", "-g", "240/63", "-h", "63")
	untyped := bytes.Clone(fat)
	for _, s := range []int{0, 6} { // the boot sector and mkfs.fat's backup
		copy(untyped[s*512+0x52:], "        ")
	}
	ntfs := volume(8<<20, mkntfs, "-F", "-Q", "-q", "-H", "240", "-S", "63", "-p", "63")
	ntfsBackup := int64(binary.LittleEndian.Uint64(ntfs[0x28:]))
	tests := []struct {
		name   string
		vol    []byte
		backup int64
	}{
		{"FAT32", fat, 6},
		{"FAT32 without type string", untyped, 6},
		{"NTFS", ntfs, ntfsBackup},
	}
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	fsys := integrate.DirFS(root)
	sys, err := installed.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &volDisk{vol: bytes.Clone(tc.vol), heads: 255, start: 63}
			for _, n := range []int64{0, tc.backup} {
				if h := binary.LittleEndian.Uint16(d.vol[n*512+0x1a:]); h != 240 {
					t.Fatalf("sector %d made with %d heads, want 240", n, h)
				}
			}
			p, err := installed.NewPlan(fsys, sys, installed.Options{})
			if err != nil {
				t.Fatal(err)
			}
			p.Boot = d
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			for _, n := range []int64{0, tc.backup} {
				if h := binary.LittleEndian.Uint16(d.vol[n*512+0x1a:]); h != 255 {
					t.Errorf("sector %d has %d heads after the commit, want 255", n, h)
				}
			}
			if _, err := installed.Undo(fsys, d, false, false); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.vol, tc.vol) {
				t.Error("undo did not restore the volume")
			}
		})
	}
}
