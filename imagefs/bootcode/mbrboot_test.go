package bootcode

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

// testEntry builds a 16-byte partition entry.
func testEntry(flag byte, chsStart [3]byte, typ byte, chsEnd [3]byte, lba, sectors uint32) []byte {
	e := make([]byte, 16)
	e[0] = flag
	copy(e[1:4], chsStart[:])
	e[4] = typ
	copy(e[5:8], chsEnd[:])
	binary.LittleEndian.PutUint32(e[8:], lba)
	binary.LittleEndian.PutUint32(e[12:], sectors)
	return e
}

// TestMBRBoot boots the MBR in QEMU from small disks whose partition table
// the test writes, with a stand-in volume boot record (testdata/vbr.asm)
// that reports the hand-over state, and checks each error message.
func TestMBRBoot(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	nasm := peertest.Need(t, "nasm", "nasm")
	vbr := assemble(t, nasm, "testdata/vbr.asm")

	const diskSectors = 4096
	// Entry 0: an inactive NTFS partition at LBA 2048; entry 1: the
	// partition to boot at LBA 63 (CHS 0/1/1 under 255 heads, 63 sectors).
	other := testEntry(0x00, [3]byte{32, 33, 0}, 0x07, [3]byte{65, 11, 0}, 2048, 1024)
	active := testEntry(0x80, [3]byte{1, 1, 0}, 0x0C, [3]byte{32, 32, 0}, 63, 1985)
	setFlag := func(e []byte, f byte) []byte { c := append([]byte(nil), e...); c[0] = f; return c }
	setLBA := func(e []byte, lba uint32) []byte {
		c := append([]byte(nil), e...)
		binary.LittleEndian.PutUint32(c[8:], lba)
		return c
	}

	tests := []struct {
		name    string
		entries [2][]byte // entries 0 and 1; 2 and 3 stay empty
		vbr     []byte    // sector 63
		want    string    // serial output that must appear
		handoff bool      // the VBR runs and exits QEMU
	}{
		{"handoff", [2][]byte{other, active}, vbr,
			fmt.Sprintf("VBR-TEST DL=80 SI=07CE BP=07CE DS=0000 ENTRY=%X MBR=%X END", active, mbrCode[:4]), true},
		{"no active partition", [2][]byte{other, setFlag(active, 0)}, vbr, "No active partition", false},
		{"two active partitions", [2][]byte{setFlag(other, 0x80), active}, vbr, "Invalid partition table", false},
		{"bad boot flag", [2][]byte{setFlag(other, 0x81), active}, vbr, "Invalid partition table", false},
		{"no 55AA in VBR", [2][]byte{other, active}, make([]byte, SectorSize), "Missing operating system", false},
		{"read past end of disk", [2][]byte{other, setLBA(active, 0x0FFFFFF0)}, vbr, "Error loading operating system", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			disk := make([]byte, diskSectors*SectorSize)
			if err := InstallMBR(disk[:SectorSize]); err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(disk[440:], 0x5850424F) // disk signature
			copy(disk[446:], tc.entries[0])
			copy(disk[462:], tc.entries[1])
			disk[510], disk[511] = 0x55, 0xAA
			copy(disk[63*SectorSize:], tc.vbr)
			path := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(path, disk, 0o644); err != nil {
				t.Fatal(err)
			}

			r := qemuRun{disk: path}
			if !tc.handoff {
				r.until = tc.want
			}
			res := boot(t, r)
			if !strings.Contains(res.serial, tc.want) {
				t.Fatalf("serial output lacks %q:\n%s", tc.want, res.serial)
			}
			if tc.handoff && res.exit != debugExitOK {
				t.Fatalf("QEMU exit status %d, want %d (isa-debug-exit from the VBR)", res.exit, debugExitOK)
			}
			if !tc.handoff && strings.Contains(res.serial, "VBR-TEST") {
				t.Fatalf("the VBR ran although the MBR should have stopped:\n%s", res.serial)
			}
		})
	}
}
