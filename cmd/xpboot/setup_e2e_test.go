package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestSetupStageE2E is the whole chain of issue 12 in a test-made network
// namespace: an XP-shaped CD image made by xorriso from the project's own
// test tree, with a stand-in NTLDR (setup/testdata/ntldr.asm: loads
// C:\$WIN_NT$.~BT\BOOTSECT.DAT as NTLDR does for BOOT.INI's default
// entry) and a stand-in SETUPLDR.BIN (setup/testdata/marker.asm), is
// staged by `xpboot setup stage` into `xpboot image create`'s disk with
// an E1000-shaped NIC, a SCSI miniport and a sanbootconf-shaped package
// integrated in the same run, served by `xpboot serve --dhcp full` with
// CHAP, and booted by QEMU with Debian's iPXE ROM: xpboot's MBR and FAT32
// code load the stand-in NTLDR over iSCSI, it loads BOOTSECT.DAT, which
// loads $LDR$, which prints its marker with DL=80.
func TestSetupStageE2E(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	peertest.NeedFile(t, e2eROM, "ipxe-qemu")
	if testing.Short() {
		t.Skip("boots a virtual machine")
	}
	runE2E(t, ip, qemu, e2eCase{name: "setup-stage", n: 12, disk: stagedDisk, exitq: true,
		args: []string{"--chap", "pcuser:pcsecret12345"}})
}

// stagedDisk builds the staged and integrated disk of TestSetupStageE2E.
func stagedDisk(t *testing.T, dir string) (string, string) {
	nasm := peertest.Need(t, "nasm", "nasm")
	xorriso := peertest.Need(t, "xorriso", "xorriso")
	bins := map[string][]string{
		"ntldr.bin":    {"../../setup/testdata/ntldr.asm"},
		"setupldr.bin": {"-DMARKER='LDR-MARKER'", "../../setup/testdata/marker.asm"},
	}
	code := map[string][]byte{}
	for name, args := range bins {
		out := filepath.Join(dir, name)
		peertest.Run(t, time.Minute, nasm, append([]string{"-f", "bin", "-o", out}, args...)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		code[name] = b
	}
	media := writeSetupMedia(t, dir, code["setupldr.bin"])
	integratetest.WriteFile(t, media, "I386/NTLDR", code["ntldr.bin"])
	peertest.Run(t, 2*time.Minute, xorriso, "-as", "mkisofs", "-N", "-D", "-J", "-joliet-long", "-relaxed-filenames",
		"-V", "WXPFPP_EN", "-o", filepath.Join(dir, "xp.iso"), media)

	nic, scsi, root := filepath.Join(dir, "e1000"), filepath.Join(dir, "iscsiprt"), filepath.Join(dir, "sanbootconf")
	integratetest.NICPackage(t, nic, integratetest.I386)
	integratetest.SCSIPackage(t, scsi)
	integratetest.RootPackage(t, root)
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	if r := xpboot(t, dir, "setup", "stage", "--source", "xp.iso", "--target", "disk.img",
		"--driver", nic, "--driver", scsi, "--driver", root, "--dhcp"); r.code != 0 {
		t.Fatalf("setup stage: %+v", r)
	}
	return filepath.Join(dir, "disk.img"), "LDR-MARKER DL=80"
}
