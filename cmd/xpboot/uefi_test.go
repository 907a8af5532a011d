package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

const (
	ovmfCode   = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars   = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	uefiMarker = "XPBOOT-UEFI-MARKER"
)

// TestUEFISanboot boots OVMF's own UEFI PXE (virtio-net with its iPXE ROM
// removed, so the firmware's PXE runs) against `xpboot serve`: the firmware
// gets ipxe.efi (option 93 = 7), iPXE gets the SAN answer and sanboots a
// GPT disk whose EFI system partition holds \EFI\BOOT\BOOTX64.EFI, a GRUB
// image made by grub-mkstandalone that prints a marker on the console
// (OVMF mirrors it to COM1) and powers off.
//
//   - full: serve is the link's DHCP server.
//   - proxy: dnsmasq is the plain DHCP server on the same link and the same
//     host address, serve is the ProxyDHCP beside it. This is the set-up
//     that failed with PXE-E07: the firmware's REQUEST for dnsmasq's
//     address names the shared server address, and serve used to answer
//     it with an empty-file ACK without an address. Now the firmware goes
//     to port 4011 and gets ipxe.efi there.
func TestUEFISanboot(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	peertest.NeedFile(t, ovmfCode, "ovmf")
	peertest.NeedFile(t, ovmfVars, "ovmf")
	peertest.NeedFile(t, "/usr/lib/ipxe/ipxe.efi", "ipxe")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	disk := gptESPDisk(t)
	for _, tc := range []struct {
		name  string
		n     int
		proxy bool
	}{{"full", 1, false}, {"proxy", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runUEFI(t, ip, qemu, disk, tc.n, tc.proxy)
		})
	}
}

func runUEFI(t *testing.T, ip, qemu, base string, n int, proxy bool) {
	dir := t.TempDir()
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mac := fmt.Sprintf("52:54:00:84:%02x:01", n)
	subnet := fmt.Sprintf("10.84.%d.", n)
	ns := fmt.Sprintf("xpbu%d%d", os.Getpid(), n)
	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, "ip"}, args...)...)
	}
	in("link", "set", "lo", "up")
	in("tuntap", "add", "tap0", "mode", "tap")
	in("addr", "add", subnet+"1/24", "dev", "tap0")
	in("link", "set", "tap0", "up")
	ctx, cancel := context.WithTimeout(context.Background(), 230*time.Second)
	defer cancel()

	var plain *syncBuffer
	if proxy {
		dnsmasq := peertest.Need(t, "dnsmasq", "dnsmasq-base")
		cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
			"--no-resolv", "--no-hosts", "--port=0", "--user=root", "--interface=tap0", "--bind-interfaces",
			"--dhcp-range="+subnet+"160,"+subnet+"200,255.255.255.0,1h",
			"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"),
			"--log-dhcp", "--log-facility=-")
		plain = &syncBuffer{}
		cmd.Stdout, cmd.Stderr = plain, plain
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("dnsmasq:\n%s", plain.String())
			}
		})
	}
	args := []string{"netns", "exec", ns, xpbootBinary, "--log-level", "debug", "serve",
		"--image", disk, "--iqn", "iqn.2026-01.org.xpboot:uefi", "--listen", subnet + "1:3260",
		"--interface", "tap0", "--ipxe-dir", "/usr/lib/ipxe", "--chap", "pcuser:pcsecret12345"}
	if proxy {
		args = append(args, "--dhcp", "proxy")
	} else {
		args = append(args, "--dhcp", "full", "--dhcp-range", subnet+"100-"+subnet+"110", "--no-gateway", "--state-dir", filepath.Join(dir, "state"))
	}
	slog, stop := startNetnsServe(t, ctx, ip, args...)

	vars := filepath.Join(dir, "vars.fd")
	vb, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, vb, 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	qargs := []string{"netns", "exec", ns, qemu, "-machine", "q35", "-m", "512", "-display", "none", "-no-reboot",
		"-serial", "file:" + serial, "-monitor", "none", "-parallel", "none",
		"-drive", "if=pflash,format=raw,readonly=on,file=" + ovmfCode, "-drive", "if=pflash,format=raw,file=" + vars,
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac + ",romfile="}
	qargs = append(qargs, peertest.QEMUAccel()...)
	vm := exec.CommandContext(ctx, ip, qargs...)
	var vout syncBuffer
	vm.Stdout, vm.Stderr = &vout, &vout
	vm.WaitDelay = 5 * time.Second
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		vm.Process.Kill()
		vm.Wait()
	}()
	start := time.Now()
	for {
		b, _ := os.ReadFile(serial)
		con := string(b)
		if strings.Contains(con, uefiMarker) {
			break
		}
		for _, bad := range []string{"PXE-E", "Boot from SAN device 0x80 failed", "Could not open SAN device"} {
			if strings.Contains(con, bad) {
				t.Fatalf("firmware or iPXE said %q; COM1 tail:\n%s", bad, ibftTail(serial))
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no marker within the time limit; COM1 tail:\n%s", ibftTail(serial))
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Logf("marker after %v", time.Since(start).Round(time.Second))
	vm.Process.Kill()
	if err := stop(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	log := slog.String()
	// ipxe.efi's IPv6 router solicitation was answered (--ipv6-ra is on by
	// default), in either mode.
	want := []string{`msg="PXE ROM (efi): chainload ipxe.efi"`, `msg="sent ipxe.efi"`, `msg="iSCSI login"`, `state=ipv6-ra`}
	if proxy {
		// ipxe.efi came from the port-4011 ACK, and iPXE then fetched its
		// script; the REQUEST for dnsmasq's address got no answer.
		want = append(want, `state=proxy-offered type=ACK file=ipxe.efi`, `msg="sent xpboot-`, "selects the address offer of another DHCP server")
	}
	for _, w := range want {
		found := false
		for _, l := range strings.Split(log, "\n") {
			found = found || (strings.Contains(l, w) && strings.Contains(l, mac))
		}
		if !found {
			t.Errorf("no log line with %s for %s", w, mac)
		}
	}
	if proxy && !strings.Contains(plain.String(), "DHCPACK(tap0) "+subnet) {
		t.Errorf("the address did not come from dnsmasq")
	}
}

// gptESPDisk makes a 64 MiB GPT disk (sfdisk) with one EFI system
// partition (mkfs.fat, mtools) holding \EFI\BOOT\BOOTX64.EFI, a
// grub-mkstandalone image whose embedded grub.cfg prints uefiMarker and
// halts.
func gptESPDisk(t *testing.T) string {
	grub := peertest.Need(t, "grub-mkstandalone", "grub-efi-amd64-bin")
	peertest.NeedFile(t, "/usr/lib/grub/x86_64-efi/normal.mod", "grub-efi-amd64-bin")
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	mmd := peertest.Need(t, "mmd", "mtools")
	mcopy := peertest.Need(t, "mcopy", "mtools")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "grub.cfg")
	if err := os.WriteFile(cfg, []byte("echo "+uefiMarker+"\nsleep 1\nhalt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	efi := filepath.Join(dir, "BOOTX64.EFI")
	peertest.Run(t, 60*time.Second, grub, "-O", "x86_64-efi", "-o", efi, "--fonts=", "--locales=", "--themes=",
		"--install-modules=normal echo halt sleep configfile", "boot/grub/grub.cfg="+cfg)
	const start, sectors = 2048, 120000 // ESP: 2048 … 122047 of 131072 sectors
	esp := filepath.Join(dir, "esp.img")
	if err := os.WriteFile(esp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(esp, sectors*512); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, 30*time.Second, mkfs, "-F", "32", "-n", "XPBOOTESP", esp)
	peertest.Run(t, 30*time.Second, mmd, "-i", esp, "::/EFI", "::/EFI/BOOT")
	peertest.Run(t, 30*time.Second, mcopy, "-i", esp, efi, "::/EFI/BOOT/BOOTX64.EFI")
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sfdisk, "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("label: gpt\nstart=%d, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP\n", start, sectors))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	eb, err := os.ReadFile(esp)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(eb, start*512); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return disk
}
