package bootcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

func TestMBR(t *testing.T) {
	a := MBR()
	if len(a) != MBRCodeSize {
		t.Fatalf("MBR() is %d bytes, want %d", len(a), MBRCodeSize)
	}
	a[0] ^= 0xFF
	if b := MBR(); b[0] == a[0] {
		t.Fatal("MBR() returns the package's own slice, not a copy")
	}
}

func TestInstallMBR(t *testing.T) {
	sector := bytes.Repeat([]byte{0xA5}, SectorSize)
	binary.LittleEndian.PutUint32(sector[440:], 0xDEADBEEF)
	sector[510], sector[511] = 0x55, 0xAA
	orig := append([]byte(nil), sector...)
	if err := InstallMBR(sector); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sector[:MBRCodeSize], MBR()) {
		t.Error("bytes 0..439 are not the MBR code")
	}
	if !bytes.Equal(sector[MBRCodeSize:], orig[MBRCodeSize:]) {
		t.Error("bytes 440..511 (signature, table, 55 AA) changed")
	}
	for _, n := range []int{0, 440, 511, 513, 4096} {
		if err := InstallMBR(make([]byte, n)); err == nil {
			t.Errorf("InstallMBR of a %d-byte sector succeeded", n)
		}
	}
}

// memDisk is an in-memory disk; ReadAt and WriteAt past its end fail.
type memDisk struct {
	b      []byte
	writes int
}

func (d *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(d.b)) {
		return 0, io.EOF
	}
	n := copy(p, d.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.b)) {
		return 0, fmt.Errorf("write of %d bytes at %d past the end of a %d-byte disk", len(p), off, len(d.b))
	}
	d.writes++
	return copy(d.b[off:], p), nil
}

// fat32BootSector returns a boot sector like mkfs.fat -F 32 -h 63 -g 255/63
// writes for a 144,522-sector partition, with 0xCC where the boot code goes.
func fat32BootSector() []byte {
	b := bytes.Repeat([]byte{0xCC}, SectorSize)
	le := binary.LittleEndian
	copy(b, []byte{0xEB, 0x58, 0x90})
	copy(b[3:], "mkfs.fat")
	le.PutUint16(b[0x0B:], 512)
	b[0x0D] = 1
	le.PutUint16(b[0x0E:], 32)
	b[0x10] = 2
	le.PutUint16(b[0x11:], 0)
	le.PutUint16(b[0x13:], 0)
	b[0x15] = 0xF8
	le.PutUint16(b[0x16:], 0)
	le.PutUint16(b[0x18:], 63)
	le.PutUint16(b[0x1A:], 255)
	le.PutUint32(b[0x1C:], 63)
	le.PutUint32(b[0x20:], 144522)
	le.PutUint32(b[0x24:], 1120)
	le.PutUint16(b[0x28:], 0)
	le.PutUint16(b[0x2A:], 0)
	le.PutUint32(b[0x2C:], 2)
	le.PutUint16(b[0x30:], 1)
	le.PutUint16(b[0x32:], 6)
	copy(b[0x34:0x40], make([]byte, 12))
	b[0x40], b[0x41], b[0x42] = 0x80, 0, 0x29
	le.PutUint32(b[0x43:], 0x1234ABCD)
	copy(b[0x47:], "XPBOOT     ")
	copy(b[0x52:], "FAT32   ")
	b[510], b[511] = 0x55, 0xAA
	return b
}

// newFAT32Disk returns a 100-sector disk with a distinct byte in every
// sector and the boot sector at LBA 63 and its backup at 69.
func newFAT32Disk(bs []byte) *memDisk {
	d := &memDisk{b: make([]byte, 100*SectorSize)}
	for s := 0; s < 100; s++ {
		copy(d.b[s*SectorSize:(s+1)*SectorSize], bytes.Repeat([]byte{byte(s)}, SectorSize))
	}
	copy(d.b[63*SectorSize:], bs)
	copy(d.b[69*SectorSize:], bs)
	return d
}

func (d *memDisk) sector(n int) []byte { return d.b[n*SectorSize : (n+1)*SectorSize] }

func TestInstallFAT32(t *testing.T) {
	for _, backup := range []uint16{6, 0} {
		t.Run(fmt.Sprintf("backup at %d", backup), func(t *testing.T) {
			bs := fat32BootSector()
			binary.LittleEndian.PutUint16(bs[0x32:], backup)
			d := newFAT32Disk(bs)
			orig := append([]byte(nil), d.b...)
			if err := InstallFAT32(d, 63*SectorSize); err != nil {
				t.Fatal(err)
			}
			boot := d.sector(63)
			if !bytes.Equal(boot[:3], []byte{0xEB, 0x58, 0x90}) {
				t.Errorf("jump % x, want eb 58 90", boot[:3])
			}
			if !bytes.Equal(boot[3:FAT32CodeOffset], bs[3:FAT32CodeOffset]) {
				t.Error("BPB bytes 3..0x59 changed")
			}
			if !bytes.Equal(boot[FAT32CodeOffset:], fat32Code[FAT32CodeOffset:SectorSize]) {
				t.Error("bytes 0x5A..0x1FF are not the first stage and 55 AA")
			}
			if !bytes.Equal(d.sector(63+FAT32Stage2Sector), fat32Code[SectorSize:]) {
				t.Error("sector 12 is not the second stage")
			}
			changed := map[int]bool{63: true, 63 + FAT32Stage2Sector: true}
			if backup != 0 {
				if !bytes.Equal(d.sector(63+int(backup)), boot) {
					t.Error("the backup boot sector differs from the boot sector")
				}
				if !bytes.Equal(d.sector(63+int(backup)+FAT32Stage2Sector), fat32Code[SectorSize:]) {
					t.Error("the second stage's backup is missing")
				}
				changed[63+int(backup)] = true
				changed[63+int(backup)+FAT32Stage2Sector] = true
			}
			for s := 0; s < 100; s++ {
				if !changed[s] && !bytes.Equal(d.sector(s), orig[s*SectorSize:(s+1)*SectorSize]) {
					t.Errorf("sector %d was written", s)
				}
			}
			if d.writes != len(changed) {
				t.Errorf("%d writes, want %d", d.writes, len(changed))
			}
		})
	}
}

func TestInstallFAT32Refuses(t *testing.T) {
	le := binary.LittleEndian
	u16 := func(off int, v uint16) func([]byte) { return func(b []byte) { le.PutUint16(b[off:], v) } }
	u32 := func(off int, v uint32) func([]byte) { return func(b []byte) { le.PutUint32(b[off:], v) } }
	tests := []struct {
		name    string
		mess    func([]byte)
		wantOff int // FormatError offset, or -1 for ErrNotFAT32
		wantMsg string
	}{
		{"no 55 AA", func(b []byte) { b[511] = 0 }, 510, "55 AA"},
		{"no jump", func(b []byte) { b[0] = 0 }, 0, "not a jump"},
		{"4096-byte sectors", u16(0x0B, 4096), 0x0B, "4096 bytes per sector"},
		{"FAT16 root directory", u16(0x11, 512), -1, "root entries 512"},
		{"FAT16 FAT size", u16(0x16, 200), -1, "16-bit FAT size 200"},
		{"no FAT32 type", func(b []byte) { copy(b[0x52:], "FAT16   ") }, -1, `"FAT16   "`},
		{"no extended boot signature", func(b []byte) { b[0x42] = 0x28 }, -1, "0x28"},
		{"FAT32 version 1.0", u16(0x2A, 0x0100), 0x2A, "version 1.0"},
		{"3 sectors per cluster", func(b []byte) { b[0x0D] = 3 }, 0x0D, "power of two"},
		{"no FATs", func(b []byte) { b[0x10] = 0 }, 0x10, "no FATs"},
		{"active FAT 2 of 2", u16(0x28, 0x82), 0x28, "active FAT 2"},
		{"no heads", u16(0x1A, 0), 0x18, "0 heads"},
		{"no sectors per track", u16(0x18, 0), 0x18, "0 sectors per track"},
		{"FATs fill the volume", u32(0x20, 32+2*1120), 0x20, "reserved sectors and FATs take"},
		{"FAT16-sized volume", u32(0x20, 32+2*1120+65524), -1, "65524 clusters"},
		{"root cluster 1", u32(0x2C, 1), 0x2C, "root cluster 1"},
		{"12 reserved sectors", u16(0x0E, 12), 0x0E, "12 reserved sectors"},
		{"backup too far", u16(0x32, 20), 0x32, "no room for the second stage's backup at sector 32"},
		{"backup over stage 2", u16(0x32, 10), 0x32, "sector 12 would overwrite the backup boot sector"},
		{"FSInfo at 12", u16(0x30, 12), 0x30, "sector 12 would overwrite the FSInfo sector"},
		{"backup FSInfo over stage 2", func(b []byte) { le.PutUint16(b[0x30:], 4); le.PutUint16(b[0x32:], 8) }, 0x30, "sector 12 would overwrite the backup FSInfo sector"},
		{"stage 2 backup over FSInfo", u16(0x30, 18), 0x30, "sector 18 would overwrite the FSInfo sector"},
		{"FSInfo outside", u16(0x30, 40), 0x30, "outside the 32 reserved"},
		{"hidden sectors 0", u32(0x1C, 0), 0x1C, "hidden sectors 0, but the volume starts at sector 63"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs := fat32BootSector()
			tc.mess(bs)
			d := newFAT32Disk(bs)
			err := InstallFAT32(d, 63*SectorSize)
			if err == nil {
				t.Fatal("InstallFAT32 accepted the boot sector")
			}
			var fe *FormatError
			switch {
			case tc.wantOff < 0 && !errors.Is(err, ErrNotFAT32):
				t.Errorf("error %q does not wrap ErrNotFAT32", err)
			case tc.wantOff >= 0 && (!errors.As(err, &fe) || fe.Off != tc.wantOff):
				t.Errorf("error %q is not a *FormatError at 0x%02x", err, tc.wantOff)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			if d.writes != 0 {
				t.Errorf("%d writes despite the error", d.writes)
			}
		})
	}
	t.Run("offset not sector aligned", func(t *testing.T) {
		if err := InstallFAT32(newFAT32Disk(fat32BootSector()), 63*SectorSize+1); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("offset past the disk", func(t *testing.T) {
		err := InstallFAT32(newFAT32Disk(fat32BootSector()), 200*SectorSize)
		if err == nil || !errors.Is(err, io.EOF) {
			t.Fatalf("error %v, want a read error wrapping io.EOF", err)
		}
	})
}

// FuzzInstallFAT32 installs into arbitrary boot sectors: InstallFAT32 must
// either refuse without writing or keep the BPB and write both copies.
func FuzzInstallFAT32(f *testing.F) {
	good := fat32BootSector()
	binary.LittleEndian.PutUint32(good[0x1C:], 0) // the fuzz volume starts at LBA 0
	f.Add(good)
	for _, off := range []int{0x0B, 0x0E, 0x30, 0x32, 0x42, 0x52} {
		b := append([]byte(nil), good...)
		b[off] ^= 0x10
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, bs []byte) {
		sector := make([]byte, SectorSize)
		copy(sector, bs)
		d := &memDisk{b: make([]byte, 80*SectorSize)}
		copy(d.b, sector)
		backup := int(binary.LittleEndian.Uint16(sector[0x32:]))
		if backup < 80 {
			copy(d.b[backup*SectorSize:], sector)
		}
		if err := InstallFAT32(d, 0); err != nil {
			var fe *FormatError
			if (errors.As(err, &fe) || errors.Is(err, ErrNotFAT32)) && d.writes != 0 {
				t.Fatalf("%d writes despite %v", d.writes, err)
			}
			return
		}
		if !bytes.Equal(d.b[3:FAT32CodeOffset], sector[3:FAT32CodeOffset]) {
			t.Fatal("BPB changed")
		}
		if !bytes.Equal(d.sector(FAT32Stage2Sector), fat32Code[SectorSize:]) {
			t.Fatal("no second stage")
		}
		if backup != 0 && !bytes.Equal(d.sector(backup), d.sector(0)) {
			t.Fatal("backup boot sector differs")
		}
	})
}

// TestInstallFAT32Fsck installs into a volume made by mkfs.fat and has
// fsck.fat check it, including that the boot sector and its backup agree.
func TestInstallFAT32Fsck(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	img := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(40 << 20); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, peerTime, mkfs, "-F", "32", "-s", "1", "-h", "0", img)
	if err := InstallFAT32(f, 0); err != nil {
		t.Fatal(err)
	}
	out := string(peertest.Run(t, peerTime, fsck, "-n", img))
	if strings.Contains(out, "differences") {
		t.Fatalf("fsck.fat finds the boot sector and its backup different:\n%s", out)
	}
	// The check above means something: fsck.fat does notice a difference.
	if _, err := f.WriteAt([]byte{0x90}, 100); err != nil {
		t.Fatal(err)
	}
	if out := string(peertest.Run(t, peerTime, fsck, "-n", img)); !strings.Contains(out, "differences between boot sector and its backup") {
		t.Fatalf("fsck.fat did not notice a changed boot sector:\n%s", out)
	}
}
