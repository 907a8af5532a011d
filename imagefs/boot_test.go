package imagefs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// testNTLDR assembles the stand-in NTLDR of package bootcode's tests (it
// prints what it was entered with and a hash of its own bytes to COM1, then
// leaves QEMU through isa-debug-exit), padded to size bytes.
func testNTLDR(t *testing.T, size int) ([]byte, uint32) {
	t.Helper()
	nasm := peertest.Need(t, "nasm", "nasm")
	bin := filepath.Join(t.TempDir(), "ntldr.bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", bin, "bootcode/testdata/ntldr.asm")
	code, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	file := make([]byte, size)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range file {
		file[i] = byte(rng.Uint32())
	}
	copy(file, code)
	binary.LittleEndian.PutUint32(file[4:], uint32(size))
	var h uint32
	for _, b := range file {
		h = h*31 + uint32(b)
	}
	return file, h
}

// bootQEMU boots disk in QEMU until the serial output contains until or QEMU
// exits, and returns the serial output.
func bootQEMU(t *testing.T, disk, until string) string {
	t.Helper()
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-machine", "pc,graphics=off", "-display", "none", "-m", "32", "-net", "none", "-no-reboot",
		"-boot", "c", "-monitor", "none", "-parallel", "none", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file="+strings.ReplaceAll(disk, ",", ",,")+",format=raw,if=ide",
		peertest.QEMUAccel()[0], peertest.QEMUAccel()[1])
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.After(80 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case <-exited:
			return out.String()
		case <-deadline:
			t.Fatalf("QEMU did not print %q in time; serial:\n%s", until, out.String())
		case <-tick.C:
			if strings.Contains(out.String(), until) {
				cmd.Process.Kill()
				<-exited
				return out.String()
			}
		}
	}
}

// TestCreatedImageBootsNTLDR proves the whole xpboot disk chain: the MBR
// written by Create chain-loads the FAT32 boot sector, which finds NTLDR
// (put into the image by xpboot's FAT32 writer, behind other files so its
// directory entry and clusters are not the first) and runs it at 2000:0000
// with DL = 0x80 and the BPB at 0:7C00.
func TestCreatedImageBootsNTLDR(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if _, err := Create(disk, CreateOptions{Size: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	ntldr, hash := testNTLDR(t, 200_000)
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "I386"), 0o755)
	for i := 0; i < 40; i++ {
		os.WriteFile(filepath.Join(src, "I386", fmt.Sprintf("file with a long name %02d.txt", i)), bytes.Repeat([]byte{byte(i)}, 3000), 0o644)
	}
	os.WriteFile(filepath.Join(src, "NTLDR"), ntldr, 0o644)
	img, err := Open(disk, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := img.FS(0)
	if _, err := Put(fs, []string{filepath.Join(src, "I386"), filepath.Join(src, "NTLDR")}, "/", nil); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("DL=80 BPBDL=80 FS=FAT32    CS=2000 HASH=%08X", hash)
	out := bootQEMU(t, disk, want)
	t.Logf("serial: %q", out)
	if !strings.Contains(out, want) {
		t.Fatalf("serial output lacks %q:\n%s", want, out)
	}
}

// TestCreatedImageWithoutNTLDR shows the boot code's message on an empty disk.
func TestCreatedImageWithoutNTLDR(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	if _, err := Create(disk, CreateOptions{Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	if out := bootQEMU(t, disk, "NTLDR is missing"); !strings.Contains(out, "NTLDR is missing") {
		t.Fatalf("serial output:\n%s", out)
	}
}
