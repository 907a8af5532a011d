package bootcode_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/imagefs/bootcode"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/internal/peertest"
)

// readBootArea returns the $Boot area of the test disk's volume.
func readBootArea(t *testing.T, img string) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, bootcode.NTFSBootSize)
	if _, err := f.ReadAt(b, ntfsPartStart*bootcode.SectorSize); err != nil {
		t.Fatal(err)
	}
	return b
}

func patchDisk(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestNTFSSetupLoaderBoot boots BOOTSECT.DAT as NTLDR runs it: the BIOS
// and xpboot's MBR load the volume's boot sector to 0:7C00 with DL=0x80,
// so a volume whose sector 0 is replaced by BOOTSECT.DAT's bytes is
// entered exactly as NTLDR enters the file. The volume (mkntfs, filled by
// xpboot's writer, with enough root entries to need INDX blocks) holds a
// stand-in NTLDR and a different stand-in $LDR$; the hash printed must be
// $LDR$'s. The same volume with its own boot sector still loads NTLDR.
func TestNTFSSetupLoaderBoot(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	ntldr, ntldrHash := standIn(t, 9000)
	ldr, ldrHash := standIn(t, 70000)
	disk := ntfsDisk{cylinders: 9, cluster: 4096, heads: 255, spt: 63,
		populate: func(t *testing.T, fs *ntfs.FS) {
			for i := 0; i < 200; i++ {
				put(t, fs, fmt.Sprintf("$F%03d.TXT", i), []byte("x"))
			}
			put(t, fs, "NTLDR", ntldr)
			put(t, fs, "$LDR$", ldr)
		}}
	img := disk.build(t)
	checkBoot(t, img, "", ntldrHash)

	boot := readBootArea(t, img)
	dat, err := bootcode.NTFSSetupLoaderSector(boot, ntfsPartStart*bootcode.SectorSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(dat) != bootcode.SectorSize || !bytes.Equal(dat[3:bootcode.NTFSCodeOffset], boot[3:bootcode.NTFSCodeOffset]) {
		t.Fatal("BOOTSECT.DAT is not one sector with the volume's BPB")
	}
	patchDisk(t, img, ntfsPartStart*bootcode.SectorSize, dat)
	checkBoot(t, img, "", ldrHash)

	// A second stage whose name is not NTLDR at the place this build
	// expects is another build's: the variant refuses to run it.
	t.Run("other build", func(t *testing.T) {
		img := disk.build(t)
		boot := readBootArea(t, img)
		dat, err := bootcode.NTFSSetupLoaderSector(boot, ntfsPartStart*bootcode.SectorSize)
		if err != nil {
			t.Fatal(err)
		}
		name := bytes.Index(boot[bootcode.SectorSize:], []byte("N\x00T\x00L\x00D\x00R\x00"))
		if name < 0 {
			t.Fatal("no NTLDR in the second stage")
		}
		patchDisk(t, img, ntfsPartStart*bootcode.SectorSize+int64(bootcode.SectorSize+name), []byte("X"))
		patchDisk(t, img, ntfsPartStart*bootcode.SectorSize, dat)
		serial, _ := bootcode.BootQEMU(t, img, "", "Boot code damaged")
		if strings.Contains(serial, "NTLDR-TEST") || !strings.Contains(serial, "Boot code damaged") {
			t.Fatalf("the variant ran a loader:\n%s", serial)
		}
	})

	// Without $LDR$ the variant stops with the second stage's message
	// and never falls back to NTLDR.
	t.Run("missing", func(t *testing.T) {
		d := disk
		d.populate = func(t *testing.T, fs *ntfs.FS) { put(t, fs, "NTLDR", ntldr) }
		img := d.build(t)
		dat, err := bootcode.NTFSSetupLoaderSector(readBootArea(t, img), ntfsPartStart*bootcode.SectorSize)
		if err != nil {
			t.Fatal(err)
		}
		patchDisk(t, img, ntfsPartStart*bootcode.SectorSize, dat)
		serial, _ := bootcode.BootQEMU(t, img, "", "is missing")
		if strings.Contains(serial, "NTLDR-TEST") || !strings.Contains(serial, "is missing") {
			t.Fatalf("the variant ran NTLDR:\n%s", serial)
		}
	})
}

// TestNTFSSetupLoaderSectorRefuses: boot areas NTFSSetupLoaderSector
// cannot make BOOTSECT.DAT from, and NTFSBootArea/HasNTFSCode on them.
func TestNTFSSetupLoaderSectorRefuses(t *testing.T) {
	const off = ntfsPartStart * bootcode.SectorSize
	// A BPB as the formatter writes it, in xpboot's template.
	good := bootcode.NTFS()
	copy(good[0x0B:], []byte{0x00, 0x02, 0x08})                // 512 bytes per sector, 8 per cluster
	copy(good[0x18:], []byte{63, 0, 255, 0, ntfsPartStart, 0}) // geometry, hidden sectors
	copy(good[0x28:], []byte{0x00, 0x00, 0x02})                // 131072 sectors
	good[0x30] = 4                                             // $MFT at cluster 4
	good[0x40] = 0xF6                                          // 1 KiB records
	if !bootcode.HasNTFSCode(good) {
		t.Fatal("HasNTFSCode is false for the template")
	}
	if _, err := bootcode.NTFSSetupLoaderSector(good, off); err != nil {
		t.Fatalf("xpboot volume refused: %v", err)
	}
	mess := func(at int, v ...byte) []byte {
		b := append([]byte(nil), good...)
		copy(b[at:], v)
		return b
	}
	foreign := mess(0x100, 0xCC)
	otherStage2 := mess(0x600, 0xCC)
	tests := []struct {
		name string
		boot []byte
		off  int64
		want string
		is   error
	}{
		{"foreign boot code", foreign, off, "not xpboot's", nil},
		{"other build's second stage", otherStage2, off, "another xpboot version", nil},
		{"no tag", mess(bootcode.NTFSBootSize-4, 'Z'), off, "no xpboot second stage", nil},
		{"not NTFS", mess(3, 'X'), off, "OEM id", bootcode.ErrNotNTFS},
		{"hidden sectors", good, off + 512, "hidden sectors 63", nil},
		{"short", good[:512], off, "want 8192", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bootcode.NTFSSetupLoaderSector(tc.boot, tc.off)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// NTFSBootArea installs this build's code in memory, so a foreign or
	// old boot area becomes usable; it keeps the BPB.
	for _, b := range [][]byte{foreign, otherStage2} {
		if bootcode.HasNTFSCode(b) {
			t.Fatal("HasNTFSCode true for changed code")
		}
		fixed, err := bootcode.NTFSBootArea(b, off)
		if err != nil {
			t.Fatal(err)
		}
		if !bootcode.HasNTFSCode(fixed) || !bytes.Equal(fixed[3:bootcode.NTFSCodeOffset], good[3:bootcode.NTFSCodeOffset]) {
			t.Fatal("NTFSBootArea did not give this build's code with the BPB kept")
		}
		if _, err := bootcode.NTFSSetupLoaderSector(fixed, off); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bootcode.NTFSBootArea(mess(0x0B, 0, 4), off); err == nil || !strings.Contains(err.Error(), "bytes per sector") {
		t.Fatalf("NTFSBootArea with 1024-byte sectors: %v", err)
	}
}
