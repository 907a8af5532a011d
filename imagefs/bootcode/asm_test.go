package bootcode

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestBinariesMatchSources re-assembles the shipped sources and fails when
// an embedded binary was not built from them (run go generate).
func TestBinariesMatchSources(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	for _, tc := range []struct {
		src      string
		embedded []byte
	}{
		{"mbr.asm", mbrCode},
		{"fat32.asm", fat32Code},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got := assemble(t, nasm, tc.src)
			if !bytes.Equal(got, tc.embedded) {
				t.Fatalf("%s assembles to %d bytes that differ from the embedded %d-byte binary; run go generate", tc.src, len(got), len(tc.embedded))
			}
		})
	}
}

// assemble runs nasm on src (relative to the package directory) and returns
// the flat binary.
func assemble(t *testing.T, nasm, src string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(src)+".bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", out, src)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBinaryLayout checks the shape of the embedded binaries that
// InstallMBR and InstallFAT32 rely on.
func TestBinaryLayout(t *testing.T) {
	if len(mbrCode) != MBRCodeSize {
		t.Errorf("mbr.bin is %d bytes, want %d", len(mbrCode), MBRCodeSize)
	}
	if len(fat32Code) != 2*SectorSize {
		t.Fatalf("fat32.bin is %d bytes, want %d", len(fat32Code), 2*SectorSize)
	}
	if !bytes.Equal(fat32Code[:3], []byte{0xEB, 0x58, 0x90}) {
		t.Errorf("fat32.bin starts % x, want eb 58 90", fat32Code[:3])
	}
	if !bytes.Equal(fat32Code[3:FAT32CodeOffset], make([]byte, FAT32CodeOffset-3)) {
		t.Errorf("fat32.bin has non-zero bytes in the BPB area 3..0x59, which InstallFAT32 does not write")
	}
	if fat32Code[510] != 0x55 || fat32Code[511] != 0xAA {
		t.Errorf("fat32.bin boot sector does not end in 55 AA")
	}
	stage2 := fat32Code[SectorSize:]
	if string(stage2[stage2TagOffset:stage2TagOffset+4]) != "XPB2" || stage2[510] != 0x55 || stage2[511] != 0xAA {
		t.Errorf("fat32.bin second stage ends % x, want the XPB2 tag and 55 AA", stage2[stage2TagOffset:])
	}
	t.Logf("MBR code %d bytes; FAT32 stage 1 %d bytes, stage 2 %d bytes (trailing zeros excluded)",
		len(bytes.TrimRight(mbrCode, "\x00")),
		len(bytes.TrimRight(fat32Code[FAT32CodeOffset:510], "\x00")),
		len(bytes.TrimRight(stage2[:stage2TagOffset], "\x00")))
}
