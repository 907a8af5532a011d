package bootcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestNTFSBinaryMatchesSource re-assembles ntfs.asm and fails when the
// embedded ntfs.bin was not built from it (run go generate).
func TestNTFSBinaryMatchesSource(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	if got := assemble(t, nasm, "ntfs.asm"); !bytes.Equal(got, ntfsCode) {
		t.Fatalf("ntfs.asm assembles to %d bytes that differ from the embedded %d-byte binary; run go generate", len(got), len(ntfsCode))
	}
}

// TestNTFSTemplate checks the shape of the $Boot template the formatter
// completes: the jump, the OEM id, an empty BPB area, 55 AA, the tag.
func TestNTFSTemplate(t *testing.T) {
	b := NTFS()
	if len(b) != NTFSBootSize {
		t.Fatalf("NTFS() is %d bytes, want %d", len(b), NTFSBootSize)
	}
	if !bytes.Equal(b[:3], []byte{0xEB, NTFSCodeOffset - 2, 0x90}) {
		t.Errorf("NTFS() starts % x, want a short jump to 0x%x and a nop", b[:3], NTFSCodeOffset)
	}
	if string(b[3:11]) != "NTFS    " {
		t.Errorf("OEM id %q, want \"NTFS    \"", b[3:11])
	}
	if !bytes.Equal(b[0x0B:NTFSCodeOffset], make([]byte, NTFSCodeOffset-0x0B)) {
		t.Errorf("non-zero bytes in the BPB area 0x0B..0x53")
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		t.Errorf("sector 0 ends % x, want 55 aa", b[510:512])
	}
	if string(b[ntfsTagOffset:]) != "XPBN" {
		t.Errorf("$Boot ends %q, want the tag XPBN", b[ntfsTagOffset:])
	}
	b[0x100] ^= 0xFF
	if NTFS()[0x100] == b[0x100] {
		t.Fatal("NTFS() returns the package's own slice, not a copy")
	}
	t.Logf("NTFS stage 1 %d bytes, stage 2 %d bytes (trailing zeros excluded)",
		len(bytes.TrimRight(ntfsCode[NTFSCodeOffset:510], "\x00")),
		len(bytes.TrimRight(ntfsCode[SectorSize:ntfsTagOffset], "\x00")))
}

// ntfsVolume returns a disk holding, at sector 63, the start of an NTFS
// volume like mkntfs -p 63 -H 255 -S 63 makes in 20,480 sectors (4 KiB
// clusters, 1 KiB records), its backup boot sector after the last counted
// sector, and 0xCC where the boot code goes.
func ntfsVolume() (*memDisk, int64) {
	const part = 63 * SectorSize
	const total = 20480 - 1
	d := &memDisk{b: make([]byte, part+20480*SectorSize)}
	b := bytes.Repeat([]byte{0xCC}, NTFSBootSize)
	le := binary.LittleEndian
	copy(b, []byte{0xEB, 0x52, 0x90})
	copy(b[3:], "NTFS    ")
	clear(b[0x0B:NTFSCodeOffset])
	le.PutUint16(b[0x0B:], 512)
	b[0x0D] = 8
	b[0x15] = 0xF8
	le.PutUint16(b[0x18:], 63)
	le.PutUint16(b[0x1A:], 255)
	le.PutUint32(b[0x1C:], 63)
	le.PutUint32(b[0x24:], 0x00800080)
	le.PutUint64(b[0x28:], total)
	le.PutUint64(b[0x30:], 4)
	le.PutUint64(b[0x38:], 9033)
	b[0x40] = 0xF6 // 2^10 bytes per record
	b[0x44] = 1
	le.PutUint64(b[0x48:], 0x1234567890ABCDEF)
	b[510], b[511] = 0x55, 0xAA
	copy(d.b[part:], b)
	copy(d.b[part+total*SectorSize:], b[:SectorSize])
	return d, part
}

func TestInstallNTFS(t *testing.T) {
	d, part := ntfsVolume()
	orig := append([]byte(nil), d.b...)
	if err := InstallNTFS(d, part); err != nil {
		t.Fatal(err)
	}
	boot := d.b[part : part+NTFSBootSize]
	if !bytes.Equal(boot[:3], ntfsCode[:3]) || !bytes.Equal(boot[NTFSCodeOffset:], ntfsCode[NTFSCodeOffset:]) {
		t.Error("the volume's $Boot does not hold the boot code")
	}
	if !bytes.Equal(boot[3:NTFSCodeOffset], orig[part+3:part+NTFSCodeOffset]) {
		t.Error("the BPB (bytes 3..0x53) changed")
	}
	backup := part + 20479*SectorSize
	if !bytes.Equal(d.b[backup:backup+SectorSize], boot[:SectorSize]) {
		t.Error("the backup boot sector is not a copy of the new boot sector")
	}
	// Everything else is untouched.
	for _, r := range [][2]int64{{0, part}, {part + NTFSBootSize, backup}, {backup + SectorSize, int64(len(d.b))}} {
		if !bytes.Equal(d.b[r[0]:r[1]], orig[r[0]:r[1]]) {
			t.Errorf("bytes %d..%d changed", r[0], r[1])
		}
	}

	// A volume without a backup copy of its BPB gets no backup write.
	d, part = ntfsVolume()
	clear(d.b[part+20479*SectorSize:])
	if err := InstallNTFS(d, part); err != nil {
		t.Fatal(err)
	}
	if d.writes != 2 || !bytes.Equal(d.b[part+20479*SectorSize:], make([]byte, SectorSize)) {
		t.Errorf("%d writes and a changed backup area for a volume without a backup boot sector", d.writes)
	}
}

func TestInstallNTFSRefuses(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name   string
		edit   func(b []byte) // the volume's boot sector
		off    int64          // partition offset, when not 63 sectors
		notFS  bool           // the error wraps ErrNotNTFS
		field  int            // else the *NTFSFormatError's offset
		tooBig bool           // the disk ends before $Boot does
	}{
		{name: "no signature", edit: func(b []byte) { b[511] = 0 }, field: 510},
		{name: "FAT32", edit: func(b []byte) { copy(b[3:], "MSWIN4.1") }, notFS: true},
		{name: "4096-byte sectors", edit: func(b []byte) { le.PutUint16(b[0x0B:], 4096) }, field: 0x0B},
		{name: "3 sectors per cluster", edit: func(b []byte) { b[0x0D] = 3 }, field: 0x0D},
		{name: "hidden sectors 0", edit: func(b []byte) { le.PutUint32(b[0x1C:], 0) }, field: 0x1C},
		{name: "no geometry", edit: func(b []byte) { le.PutUint16(b[0x1A:], 0) }, field: 0x18},
		{name: "8 KiB records", edit: func(b []byte) { b[0x40] = 0xF3 }, field: 0x40},
		{name: "256-byte records", edit: func(b []byte) { b[0x40] = 0xF8 }, field: 0x40},
		{name: "record size 0", edit: func(b []byte) { b[0x40] = 0 }, field: 0x40},
		{name: "$MFT outside the volume", edit: func(b []byte) { le.PutUint64(b[0x30:], 1<<40) }, field: 0x30},
		{name: "tiny volume", edit: func(b []byte) { le.PutUint64(b[0x28:], 8) }, field: 0x28},
		{name: "offset not a sector", off: 63*SectorSize + 1},
		{name: "short disk", tooBig: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, part := ntfsVolume()
			if tc.edit != nil {
				tc.edit(d.b[part : part+SectorSize])
			}
			if tc.off != 0 {
				part = tc.off
			}
			if tc.tooBig {
				d.b = d.b[:part+NTFSBootSize-1]
			}
			orig := append([]byte(nil), d.b...)
			err := InstallNTFS(d, part)
			if err == nil {
				t.Fatal("InstallNTFS succeeded")
			}
			t.Log(err)
			if d.writes != 0 || !bytes.Equal(d.b, orig) {
				t.Fatal("InstallNTFS wrote to the disk before failing")
			}
			var fe *NTFSFormatError
			switch {
			case tc.notFS:
				if !errors.Is(err, ErrNotNTFS) {
					t.Fatalf("error %v does not wrap ErrNotNTFS", err)
				}
			case tc.field != 0:
				if !errors.As(err, &fe) || fe.Off != tc.field {
					t.Fatalf("error %v, want an NTFSFormatError at 0x%x", err, tc.field)
				}
			}
		})
	}
}

// FuzzInstallNTFS installs into arbitrary boot sectors: InstallNTFS must
// either refuse without writing or keep the BPB and write the whole code
// (and the backup boot sector only when it carried the same BPB).
func FuzzInstallNTFS(f *testing.F) {
	d, part := ntfsVolume()
	good := append([]byte(nil), d.b[part:part+SectorSize]...)
	binary.LittleEndian.PutUint32(good[0x1C:], 0) // the fuzz volume starts at LBA 0
	binary.LittleEndian.PutUint64(good[0x28:], 63)
	binary.LittleEndian.PutUint64(good[0x30:], 2)
	f.Add(good)
	for _, off := range []int{0x0B, 0x0D, 0x28, 0x30, 0x40, 0x1A} {
		b := append([]byte(nil), good...)
		b[off] ^= 0x81
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, bs []byte) {
		sector := make([]byte, SectorSize)
		copy(sector, bs)
		d := &memDisk{b: make([]byte, 64*SectorSize)}
		copy(d.b, sector)
		copy(d.b[63*SectorSize:], sector) // a backup, if the BPB counts 63 sectors
		orig := append([]byte(nil), d.b...)
		if err := InstallNTFS(d, 0); err != nil {
			if d.writes != 0 || !bytes.Equal(d.b, orig) {
				t.Fatalf("%d writes despite %v", d.writes, err)
			}
			return
		}
		if !bytes.Equal(d.b[3:NTFSCodeOffset], sector[3:NTFSCodeOffset]) {
			t.Fatal("BPB changed")
		}
		if !bytes.Equal(d.b[NTFSCodeOffset:NTFSBootSize], ntfsCode[NTFSCodeOffset:]) {
			t.Fatal("boot code not written")
		}
		backup := d.b[63*SectorSize:]
		if binary.LittleEndian.Uint64(sector[0x28:]) == 63 {
			if !bytes.Equal(backup, d.b[:SectorSize]) {
				t.Fatal("backup boot sector differs")
			}
		} else if !bytes.Equal(backup, sector) {
			t.Fatal("a sector that is not the backup changed")
		}
	})
}
