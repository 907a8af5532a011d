package bootcode

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestSetupLoaderBinaryMatchesSource re-assembles fat32ldr.asm (which
// includes fat32.asm) and checks the embedded binary, and that its second
// sector is fat32.bin's: the variant changes the first stage only.
func TestSetupLoaderBinaryMatchesSource(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	got := assemble(t, nasm, "fat32ldr.asm")
	if !bytes.Equal(got, fat32LdrCode) {
		t.Fatalf("fat32ldr.asm assembles to %d bytes that differ from the embedded fat32ldr.bin; run go generate", len(got))
	}
	if !bytes.Equal(fat32LdrCode[SectorSize:], fat32Code[SectorSize:]) {
		t.Fatal("fat32ldr.bin's second stage differs from fat32.bin's")
	}
	if !bytes.Contains(fat32LdrCode[:SectorSize], []byte("$LDR$      ")) {
		t.Fatal("fat32ldr.bin's boot sector lacks the name $LDR$")
	}
	if fat32LdrCode[510] != 0x55 || fat32LdrCode[511] != 0xAA {
		t.Fatal("fat32ldr.bin's boot sector lacks 55 AA")
	}
}

func TestFAT32SetupLoaderSectorRefuses(t *testing.T) {
	disk := fat32Disk{cylinders: 17, spc: 4, label: "XPBOOTTEST", geometry: "255/63",
		populate: func(*testing.T, mtools, string) {}}
	img := disk.build(t)
	boot, stage2 := readVolume(t, img)
	if _, err := FAT32SetupLoaderSector(boot, stage2); err != nil {
		t.Fatalf("xpboot volume refused: %v", err)
	}
	tests := []struct {
		name         string
		boot, stage2 []byte
		want         string
	}{
		{"foreign boot code", messWith(boot, 0x100, 0xCC), stage2, "not xpboot's"},
		{"no second stage tag", boot, messWith(stage2, stage2TagOffset, 'Z'), "no xpboot second stage"},
		{"second stage without NTLDR", boot, bytes.ReplaceAll(stage2, []byte("NTLDR      "), []byte("XXXXX      ")), "does not name NTLDR"},
		{"not FAT32", messWith(boot, bpbFSType, 'N'), stage2, "not a FAT32"},
		{"short", boot[:100], stage2, "must be 512 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FAT32SetupLoaderSector(tc.boot, tc.stage2)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func messWith(b []byte, off int, v ...byte) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:], v)
	return c
}

func readVolume(t *testing.T, img string) (boot, stage2 []byte) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	boot, stage2 = make([]byte, SectorSize), make([]byte, SectorSize)
	if _, err := f.ReadAt(boot, partStart*SectorSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(stage2, (partStart+FAT32Stage2Sector)*SectorSize); err != nil {
		t.Fatal(err)
	}
	return boot, stage2
}

// TestSetupLoaderBoot boots BOOTSECT.DAT as NTLDR runs it: the BIOS and
// xpboot's MBR load the volume's boot sector to 0:7C00 with DL=0x80, so a
// volume whose sector 0 is replaced by BOOTSECT.DAT's bytes is entered
// exactly as NTLDR enters the file. The volume holds a stand-in NTLDR and
// a different stand-in $LDR$; the hash printed must be $LDR$'s. The same
// volume with its own boot sector still loads NTLDR.
func TestSetupLoaderBoot(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	ldr, ldrHash := testNTLDR(t, 70000)
	ntldr, ntldrHash := testNTLDR(t, 9000)
	disk := fat32Disk{cylinders: 17, spc: 4, label: "XPBOOTTEST", geometry: "255/63",
		populate: func(t *testing.T, m mtools, dir string) {
			m.run(t, "mcopy", writeHost(t, dir, "NTLDR", ntldr), "::")
			m.run(t, "mcopy", writeHost(t, dir, "$LDR$", ldr), "::")
		}}
	img := disk.build(t)

	res := boot(t, qemuRun{disk: img})
	if want := fmt.Sprintf("HASH=%08X ", ntldrHash); !strings.Contains(res.serial, want) {
		t.Fatalf("the volume's own boot sector did not load NTLDR (%s):\n%s", want, res.serial)
	}

	bootSector, stage2 := readVolume(t, img)
	dat, err := FAT32SetupLoaderSector(bootSector, stage2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dat[3:FAT32CodeOffset], bootSector[3:FAT32CodeOffset]) {
		t.Fatal("BOOTSECT.DAT's BPB differs from the volume's")
	}
	patch(t, img, partStart*SectorSize, dat)
	res = boot(t, qemuRun{disk: img})
	want := fmt.Sprintf("NTLDR-TEST DL=80 BPBDL=80 FS=FAT32    CS=2000 HASH=%08X ", ldrHash)
	if !strings.Contains(res.serial, want) {
		t.Fatalf("serial output lacks %q ($LDR$'s hash):\n%s", want, res.serial)
	}
	if res.exit != debugExitOK {
		t.Fatalf("QEMU exit status %d, want %d", res.exit, debugExitOK)
	}

	// Without $LDR$ the variant stops with the second stage's message.
	t.Run("missing", func(t *testing.T) {
		disk.populate = func(t *testing.T, m mtools, dir string) {
			m.run(t, "mcopy", writeHost(t, dir, "NTLDR", ntldr), "::")
		}
		img := disk.build(t)
		b, s := readVolume(t, img)
		dat, err := FAT32SetupLoaderSector(b, s)
		if err != nil {
			t.Fatal(err)
		}
		patch(t, img, partStart*SectorSize, dat)
		res := boot(t, qemuRun{disk: img, until: "is missing"})
		if strings.Contains(res.serial, "NTLDR-TEST") {
			t.Fatalf("the variant ran NTLDR:\n%s", res.serial)
		}
	})
}
