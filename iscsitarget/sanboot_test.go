package iscsitarget

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/internal/peertest"
)

// bootChecksum mirrors testdata/sanboot/bootsector.asm: sectors 1..512,
// sum = rol(sum, 1) + byte.
func bootChecksum(disk []byte) uint32 {
	var sum uint32
	for _, b := range disk[512 : 513*512] {
		sum = (sum<<1 | sum>>31) + uint32(b)
	}
	return sum
}

// TestIPXESanboot boots QEMU's iPXE ROM from the target: iPXE logs in
// (without CHAP, with CHAP, with mutual CHAP), hooks the disk as INT 13h
// drive 0x80 and boots its first sector, which reads 512 sectors through
// INT 13h and prints their checksum on COM1; the checksum must match the
// image. A wrong CHAP password and a missing one must be refused.
//
// QEMU's user-mode network stands in for the network namespace: the guest
// reaches the target, listening on 127.0.0.1 port 0 of the host, as
// 10.0.2.2, and gets its iPXE script over QEMU's built-in DHCP and TFTP.
func TestIPXESanboot(t *testing.T) {
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	rom := ""
	for _, p := range []string{"/usr/lib/ipxe/qemu/pxe-e1000.rom", "/usr/share/qemu/pxe-e1000.rom", "/usr/lib/ipxe/qemu/efi-e1000.rom"} {
		if _, err := os.Stat(p); err == nil {
			rom = p
			break
		}
	}
	if rom == "" {
		peertest.Missing(t, "an iPXE ROM for QEMU", "ipxe-qemu")
	}
	if testing.Short() {
		t.Skip("boots a virtual machine")
	}
	boot, err := os.ReadFile("testdata/sanboot/bootsector.bin")
	if err != nil {
		t.Fatal(err)
	}
	// At least a few 255×63 cylinders: iPXE reads the MBR by CHS, and a
	// disk smaller than one cylinder has no cylinder 0 in its geometry.
	disk := make([]byte, 32<<20)
	copy(disk, boot)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 512; i < 1<<20; i++ {
		disk[i] = byte(r.Uint32())
	}
	want := fmt.Sprintf("SUM=%08x", bootChecksum(disk))

	cases := []struct {
		name     string
		auth     Auth
		script   string
		wantFail bool // the target must refuse the login
	}{
		{"no CHAP", Auth{}, "", false},
		{"CHAP", Auth{Incoming: testAuth.Incoming},
			"set username testuser\nset password userpassword\n", false},
		{"mutual CHAP", testAuth,
			"set username testuser\nset password userpassword\nset reverse-username testtarget\nset reverse-password targetpassword\n", false},
		{"wrong CHAP password", Auth{Incoming: testAuth.Incoming},
			"set username testuser\nset password wrongpassword\n", true},
		{"no credentials for a CHAP target", Auth{Incoming: testAuth.Incoming}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "disk.img")
			if err := os.WriteFile(img, disk, 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := blockdev.OpenRaw(img, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() }) // after the server's cleanup
			cfg := simpleConfig(d)
			cfg.Targets[0].Auth = tc.auth
			refused := make(chan error, 16)
			cfg.AuthLog = func(_ ConnMeta, _ string, err error) {
				if err != nil {
					select {
					case refused <- err:
					default:
					}
				}
			}
			_, addr := startServer(t, cfg)
			_, port, _ := net.SplitHostPort(addr)
			tftp := filepath.Join(dir, "tftp")
			os.Mkdir(tftp, 0o755)
			script := "#!ipxe\ndhcp\n" + tc.script + "sanboot iscsi:10.0.2.2::" + port + "::" + testIQN + "\n"
			if err := os.WriteFile(filepath.Join(tftp, "boot.ipxe"), []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			serial := filepath.Join(dir, "serial.log")
			ctx, cancel := context.WithTimeout(context.Background(), sanbootTimeout)
			defer cancel()
			args := []string{"-m", "128", "-display", "none", "-no-reboot", "-boot", "n",
				"-serial", "file:" + serial, "-monitor", "none",
				"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=boot.ipxe",
				"-device", "e1000,netdev=n0,romfile=" + rom}
			args = append(args, peertest.QEMUAccel()...)
			cmd := exec.CommandContext(ctx, qemu, args...)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
			}()
			for {
				select {
				case err := <-refused:
					if !tc.wantFail {
						t.Fatalf("login refused: %v", err)
					}
					return
				default:
				}
				b, _ := os.ReadFile(serial)
				s := string(b)
				if strings.Contains(s, "SUM=") && strings.Contains(s[strings.Index(s, "SUM="):], "\n") {
					if tc.wantFail {
						t.Fatalf("booted although the login should have been refused")
					}
					if !strings.Contains(s, want) {
						t.Fatalf("boot sector printed %q, want %s", strings.TrimSpace(s), want)
					}
					return
				}
				if strings.Contains(s, "INT13 ERROR") {
					t.Fatalf("INT 13h read failed in the guest: %q", s)
				}
				if ctx.Err() != nil {
					t.Fatalf("no checksum on COM1 within the time limit; serial %q; qemu: %s", s, out.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}

// sanbootTimeout bounds one virtual machine boot (TCG without KVM is slow).
const sanbootTimeout = 90 * time.Second
