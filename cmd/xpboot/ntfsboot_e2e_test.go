package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/bootcode"
	"github.com/xpboot/xpboot/internal/peertest"
)

// ntfsStandIn assembles the NTFS stand-in NTLDR of imagefs/bootcode
// (testdata/ntfsldr.asm), pads it with pseudo-random bytes to size, stores
// the size at offset 4 and writes it to dir/src/NTLDR. It returns that path
// and the COM1 text that proves the boot: how NTLDR was entered (drive 80
// in DL and in the BPB, the NTFS boot sector at 0:7C00, 2000:0000, the
// stack and segments the boot code leaves) and the hash of its bytes.
func ntfsStandIn(t *testing.T, dir string, size int) (string, string) {
	t.Helper()
	nasm := peertest.Need(t, "nasm", "nasm")
	bin := filepath.Join(dir, "ntfsldr.bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", bin, "../../imagefs/bootcode/testdata/ntfsldr.asm")
	code, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	file := make([]byte, size)
	rng := rand.New(rand.NewPCG(16, uint64(size)))
	for i := range file {
		file[i] = byte(rng.Uint32())
	}
	copy(file, code)
	binary.LittleEndian.PutUint32(file[4:], uint32(size))
	var h uint32
	for _, b := range file {
		h = h*31 + uint32(b)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(src, "NTLDR")
	if err := os.WriteFile(p, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, fmt.Sprintf("DL=80 BPBDL=80 FS=NTFS     CS=2000 SP=7BC0 SEGS=0000,0000,0000 HASH=%08X", h)
}

// createdNTFSDisk makes a disk with `xpboot image create --fs ntfs` (its own
// NTFS formatter and boot code) and puts the stand-in NTLDR into it with
// `xpboot image put`.
func createdNTFSDisk(t *testing.T, dir string) (string, string) {
	ntldr, want := ntfsStandIn(t, dir, 230_000)
	if r := xpboot(t, dir, "image", "create", "--fs", "ntfs", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("image create --fs ntfs: %+v", r)
	}
	if r := xpboot(t, dir, "image", "put", ntldr, "disk.img:/"); r.code != 0 {
		t.Fatalf("image put: %+v", r)
	}
	return filepath.Join(dir, "disk.img"), want
}

// mkntfsDisk makes the same kind of disk from peers' parts: a volume
// formatted by mkntfs with NTLDR copied in by ntfscp (ntfs-3g), behind an
// MBR partition table at sector 63, with xpboot's MBR and NTFS boot code
// installed by package bootcode.
func mkntfsDisk(t *testing.T, dir string) (string, string) {
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	ntfscp := peertest.Need(t, "ntfscp", "ntfs-3g")
	ntldr, want := ntfsStandIn(t, dir, 230_000)
	const cyl, start = 255 * 63, 63
	diskSectors := 9 * cyl
	partSectors := diskSectors - start
	vol := filepath.Join(dir, "volume.img")
	if err := os.WriteFile(vol, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol, int64(partSectors)*512); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, mkntfs, "-F", "-Q", "-q", "-p", strconv.Itoa(start), "-H", "255", "-S", "63", "-L", "XPBOOTE2E", vol)
	peertest.Run(t, time.Minute, ntfscp, "-q", "-f", vol, ntldr, "/NTLDR")
	data, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	disk := make([]byte, diskSectors*512)
	copy(disk[start*512:], data)
	mbr := disk[:512]
	if err := bootcode.InstallMBR(mbr); err != nil {
		t.Fatal(err)
	}
	// One active type 0x07 entry; the CHS end is the last cylinder's.
	e := mbr[446:462]
	e[0], e[1], e[2], e[3] = 0x80, 1, 1, 0
	e[4], e[5], e[6], e[7] = 0x07, 254, 63|byte((9-1)>>8)<<6, byte(9-1)
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], uint32(partSectors))
	mbr[510], mbr[511] = 0x55, 0xAA
	p := filepath.Join(dir, "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(disk); err != nil {
		t.Fatal(err)
	}
	if err := bootcode.InstallNTFS(f, start*512); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(vol); err != nil {
		t.Fatal(err)
	}
	return p, want
}

// TestNTFSImageBoot boots a disk made by `xpboot image create --fs ntfs` and
// filled by `xpboot image put` from its local file in QEMU: xpboot's MBR
// and NTFS boot code load the stand-in NTLDR, which prints how it was
// entered and the hash of its bytes on COM1.
func TestNTFSImageBoot(t *testing.T) {
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	dir := t.TempDir()
	disk, want := createdNTFSDisk(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"-machine", "pc,graphics=off", "-display", "none", "-m", "32",
		"-net", "none", "-no-reboot", "-boot", "c", "-monitor", "none", "-parallel", "none", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file=" + strings.ReplaceAll(disk, ",", ",,") + ",format=raw,if=ide"}, peertest.QEMUAccel()...)
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run() // the stand-in leaves through isa-debug-exit: status 33
	if ctx.Err() != nil {
		t.Fatalf("QEMU did not finish within 90 s; output:\n%s", out.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 33 {
		t.Fatalf("QEMU: %v, want exit status 33; output:\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), want) {
		t.Fatalf("COM1 lacks %q:\n%s", want, out.String())
	}
}

// TestNTFSBootE2E boots NTFS disks over iSCSI the way TestServeE2E boots the
// FAT32 one: `xpboot serve --dhcp full` in a network namespace the test
// creates, QEMU with Debian's iPXE ROM on a tap device there, iPXE's
// sanboot through INT 13h into xpboot's MBR and NTFS boot code, which load
// the stand-in NTLDR from the target; it prints its entry state and hash on
// COM1 and leaves QEMU.
//
//   - ntfs-created: the disk of `xpboot image create --fs ntfs` and
//     `xpboot image put`;
//   - ntfs-mkntfs: a volume made by mkntfs and ntfscp with the boot code
//     installed by bootcode.InstallNTFS, with CHAP.
func TestNTFSBootE2E(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	peertest.NeedFile(t, e2eROM, "ipxe-qemu")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	for _, tc := range []e2eCase{
		{name: "ntfs-created", n: 16, disk: createdNTFSDisk, exitq: true},
		{name: "ntfs-mkntfs", n: 17, disk: mkntfsDisk, exitq: true, args: []string{"--chap", "pcuser:pcsecret12345"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runE2E(t, ip, qemu, tc)
		})
	}
}
