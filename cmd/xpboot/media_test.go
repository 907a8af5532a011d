package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// mediaInputs skips (fails under CI) without the Debian files the media
// are made of.
func mediaInputs(t *testing.T) {
	t.Helper()
	peertest.NeedFile(t, "/usr/lib/ipxe/ipxe.lkrn", "ipxe")
	peertest.NeedFile(t, "/usr/lib/ISOLINUX/isolinux.bin", "isolinux")
	peertest.NeedFile(t, "/usr/lib/syslinux/modules/bios/ldlinux.c32", "syslinux-common")
}

// TestSanbootMediaCLI runs `xpboot sanboot media` and reads the image back
// with `xpboot iso ls/get`: the script holds what `sanboot script` prints
// for the same flags, the secret is never printed, the mode follows the
// credentials, --json names what was written, the bytes are reproducible,
// and bad flags are usage errors that leave no file.
func TestSanbootMediaCLI(t *testing.T) {
	mediaInputs(t)
	dir := t.TempDir()
	target := []string{"--server", "10.0.0.1", "--iqn", "iqn.2026-01.org.xpboot:disk", "--chap", "pcuser:pcsecret12345",
		"--initiator-iqn", "iqn.2026-01.org.xpboot:client-${mac:hexhyp}", "--no-gateway", "--keep-san"}
	r := xpboot(t, dir, append([]string{"sanboot", "media", "--out", "a.iso", "--json"}, target...)...)
	if r.code != 0 {
		t.Fatalf("sanboot media: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "pcsecret12345") {
		t.Error("the CHAP secret was printed")
	}
	var res struct {
		Format, Path, Mode, Loader string
		IPXEPath                   string `json:"ipxe_path"`
		IPXEVersion                string `json:"ipxe_version"`
		Bytes                      int64
		Hybrid                     bool
		Files                      []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if res.Format != "iso" || res.Mode != "0600" || !res.Hybrid || res.IPXEVersion == "" || !strings.HasPrefix(res.Loader, "ISOLINUX") || res.IPXEPath == "" {
		t.Errorf("json %+v", res)
	}
	st, err := os.Stat(filepath.Join(dir, "a.iso"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != res.Bytes {
		t.Fatalf("image %v %v, result %+v", st.Mode(), err, res)
	}
	want := xpboot(t, dir, append([]string{"sanboot", "script"}, target...)...)
	if want.code != 0 {
		t.Fatal(want)
	}
	ls := xpboot(t, dir, "iso", "ls", "-r", "a.iso")
	for _, f := range []string{"ipxe.krn", "sanboot.ipx", "isolinux.bin", "ldlinux.c32", "isolinux.cfg"} {
		if !strings.Contains(ls.stdout, f) {
			t.Errorf("iso ls lacks %s: %+v", f, ls)
		}
	}
	if g := xpboot(t, dir, "iso", "get", "a.iso:/sanboot.ipx", "script.ipxe"); g.code != 0 {
		t.Fatalf("iso get: %+v", g)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "script.ipxe")); string(b) != want.stdout {
		t.Errorf("script on the media:\n%s\nwant:\n%s", b, want.stdout)
	}

	// The same flags again, as usb: the same bytes; no credentials: 0644.
	if r := xpboot(t, dir, append([]string{"sanboot", "media", "--format", "usb", "--out", "b.img"}, target...)...); r.code != 0 {
		t.Fatal(r)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.iso"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.img"))
	if string(a) != string(b) {
		t.Error("iso and usb images of the same flags differ")
	}
	if r := xpboot(t, dir, "sanboot", "media", "--out", "c.iso", "--server", "10.0.0.1", "--iqn", "iqn.2026-01.org.xpboot:disk"); r.code != 0 || !strings.Contains(r.stdout, "mode 0644") {
		t.Errorf("no credentials: %+v", r)
	}
	// A floppy: 1.44 MB, the same script, xpboot's own loader.
	r = xpboot(t, dir, append([]string{"sanboot", "media", "--format", "floppy", "--out", "f.img", "--json"}, target...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"loader": "xpboot floppy loader"`) || !strings.Contains(r.stdout, `"bytes": 1474560`) || strings.Contains(r.stdout, "pcsecret12345") {
		t.Errorf("floppy: %+v", r)
	}
	if mtype, err := exec.LookPath("mtype"); err == nil {
		if b := peertest.Run(t, 30*time.Second, mtype, "-i", filepath.Join(dir, "f.img"), "::SANBOOT.IPX"); string(b) != want.stdout {
			t.Errorf("floppy script %q", b)
		}
	}

	// --script: the user's own script goes on the media as it is.
	own := "#!ipxe\ndhcp\nset password pcsecret12345\nsanboot iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk\n"
	if err := os.WriteFile(filepath.Join(dir, "own.ipxe"), []byte(own), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := xpboot(t, dir, "sanboot", "media", "--script", "own.ipxe", "--out", "d.iso"); r.code != 0 || !strings.Contains(r.stdout, "mode 0600") {
		t.Errorf("--script: %+v", r)
	}
	if g := xpboot(t, dir, "iso", "get", "d.iso:/sanboot.ipx", "own.out"); g.code != 0 {
		t.Fatal(g)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "own.out")); string(b) != own {
		t.Errorf("--script put %q on the media", b)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown format", append([]string{"--format", "zip"}, target...), 2, "zip"},
		{"no target", nil, 2, "--server and --iqn"},
		{"script and flags", []string{"--script", "own.ipxe", "--chap", "a:bbbbbbbbbbbbbbbb"}, 2, "--script and --chap"},
		{"script missing", []string{"--script", "nosuch.ipxe"}, 3, "nosuch.ipxe"},
		{"bad chap", []string{"--server", "10.0.0.1", "--iqn", "iqn.2026-01.org.xpboot:disk", "--chap", "nocolon"}, 2, "USER:SECRET"},
		{"no ipxe", append([]string{"--ipxe-dir", dir}, target...), 1, "ipxe.lkrn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := xpboot(t, dir, append([]string{"sanboot", "media", "--out", "bad.iso"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tc.code, r.stderr, tc.msg)
			}
			if strings.Contains(r.stdout+r.stderr, "pcsecret12345") {
				t.Error("the CHAP secret was printed")
			}
			if _, err := os.Stat(filepath.Join(dir, "bad.iso")); err == nil {
				t.Error("a failed run left an image")
			}
		})
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// mediaCase is one boot of xpboot-made media against `xpboot serve`.
type mediaCase struct {
	name   string
	n      int      // 10.79.n.0/24, MAC 52:54:00:79:n:01
	drive  string   // "cdrom", "disk" (the usb image on an IDE disk) or "floppy"
	serve  []string // extra serve flags
	media  []string // extra sanboot media (and script) flags
	gwEcho bool     // put a line before sanboot that prints net0's gateway
	wantGW string   // the gateway that line must print ("" for none)
	fail   string   // the login must be refused with this in the serve log
}

// TestSanbootMediaE2E boots media made by `xpboot sanboot media` in QEMU
// whose e1000 has no option ROM (romfile=), so only the media's iPXE can
// reach the network, against `xpboot serve --dhcp full` in a network
// namespace the test creates. The disk is sumDisk's: its boot sector
// reads 512 sectors over INT 13h and prints SUM=… on COM1 (SeaBIOS's
// screen copy, etc/sercon-port, shows iPXE's output there too).
//
//   - chap-* and mutual-*: CHAP, and CHAP plus mutual CHAP
//     (--require-mutual), from each format: the iso image as a CD, the usb
//     image as an IDE hard disk, the floppy image (xpboot's own loader) as
//     drive A:;
//   - wrong-secret: the media's secret differs from serve's, and serve's
//     DHCP hands out the right one in option 175: the media's must win and
//     the target must refuse it;
//   - no-gateway / gateway-kept: serve offers a router; the script made
//     with --no-gateway (with one added line printing ${net0/gateway}
//     before the sanboot) must print none, and without --no-gateway the
//     router, which shows that the line can fail.
func TestSanbootMediaE2E(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	mediaInputs(t)
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	chap := []string{"--chap", "pcuser:pcsecret12345"}
	mutual := []string{"--chap", "pcuser:pcsecret12345", "--mutual-chap", "xpbtarget:targetsecret99"}
	var cases []mediaCase
	for i, drive := range []string{"cdrom", "disk", "floppy"} {
		cases = append(cases,
			mediaCase{name: "chap-" + drive, n: 1 + 2*i, drive: drive, serve: chap, media: chap},
			mediaCase{name: "mutual-" + drive, n: 2 + 2*i, drive: drive, serve: append(mutual, "--require-mutual"), media: mutual})
	}
	cases = append(cases,
		mediaCase{name: "wrong-secret", n: 7, drive: "cdrom", serve: chap, media: []string{"--chap", "pcuser:wrongsecret123"}, fail: "authentication failed"},
		mediaCase{name: "no-gateway", n: 8, drive: "cdrom", serve: append(chap, "--router", "10.79.8.1"), media: append(chap, "--no-gateway"), gwEcho: true},
		mediaCase{name: "gateway-kept", n: 9, drive: "cdrom", serve: append(chap, "--router", "10.79.9.1"), media: chap, gwEcho: true, wantGW: "10.79.9.1"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One at a time: TCG on a shared 2-core machine is slow enough.
			runMediaE2E(t, ip, qemu, tc)
		})
	}
}

func runMediaE2E(t *testing.T, ip, qemu string, tc mediaCase) {
	dir := t.TempDir()
	disk, want := sumDisk(t, dir)
	mac := fmt.Sprintf("52:54:00:79:%02x:01", tc.n)
	subnet := fmt.Sprintf("10.79.%d.", tc.n)
	ns := fmt.Sprintf("xpbm%d%d", os.Getpid(), tc.n)
	iqn := "iqn.2026-01.org.xpboot:media"

	// The media first: a failure here needs no namespace.
	target := append([]string{"--server", subnet + "1", "--iqn", iqn,
		"--initiator-iqn", "iqn.2026-01.org.xpboot:client-${mac:hexhyp}"}, tc.media...)
	img := filepath.Join(dir, "media.img")
	args := []string{"sanboot", "media", "--format", "iso", "--out", img}
	switch tc.drive {
	case "disk":
		args[3] = "usb"
	case "floppy":
		args[3] = "floppy"
	}
	if tc.gwEcho {
		s := xpboot(t, dir, append([]string{"sanboot", "script"}, target...)...)
		if s.code != 0 {
			t.Fatal(s)
		}
		script := strings.Replace(s.stdout, "\nsanboot ", "\necho XPB-GW=[${net0/gateway}]\nsanboot ", 1)
		if script == s.stdout {
			t.Fatalf("no sanboot line in %q", s.stdout)
		}
		p := filepath.Join(dir, "gw.ipxe")
		if err := os.WriteFile(p, []byte(script), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--script", p)
	} else {
		args = append(args, target...)
	}
	if r := xpboot(t, dir, args...); r.code != 0 {
		t.Fatalf("sanboot media: %+v", r)
	}

	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, "ip"}, args...)...)
	}
	in("link", "set", "lo", "up")
	in("tuntap", "add", "tap0", "mode", "tap")
	in("addr", "add", subnet+"1/24", "dev", "tap0")
	in("link", "set", "tap0", "up")

	sargs := append([]string{"netns", "exec", ns, xpbootBinary, "--log-level", "debug", "serve",
		"--image", disk, "--iqn", iqn, "--listen", subnet + "1:3260", "--interface", "tap0",
		"--dhcp", "full", "--dhcp-range", subnet + "100-" + subnet + "110", "--state-dir", filepath.Join(dir, "state"),
		"--ipxe-dir", t.TempDir()}, tc.serve...)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	slog, stop := startNetnsServe(t, ctx, ip, sargs...)

	sercon := filepath.Join(dir, "sercon")
	if err := os.WriteFile(sercon, []byte{0xF8, 0x03}, 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	qargs := []string{"netns", "exec", ns, qemu, "-machine", "pc", "-m", "128", "-display", "none", "-vga", "none", "-no-reboot",
		"-serial", "file:" + serial, "-monitor", "none", "-parallel", "none",
		"-fw_cfg", "name=etc/sercon-port,file=" + sercon,
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "e1000,netdev=n0,mac=" + mac + ",romfile="}
	switch tc.drive {
	case "disk":
		qargs = append(qargs, "-drive", "file="+img+",format=raw,if=ide,snapshot=on", "-boot", "c")
	case "floppy":
		qargs = append(qargs, "-drive", "file="+img+",format=raw,if=floppy,snapshot=on", "-boot", "a")
	default:
		qargs = append(qargs, "-cdrom", img, "-boot", "d")
	}
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
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var con string
	for done := false; !done; {
		select {
		case <-ctx.Done():
			t.Fatalf("no result within 150 s; console %q; qemu: %s", con, vout.String())
		case <-tick.C:
		}
		b, _ := os.ReadFile(serial)
		con = string(b)
		log := slog.String()
		switch {
		case strings.Contains(con, "INT13 ERROR"):
			t.Fatalf("INT 13h read failed in the guest: %q", con)
		case tc.fail != "" && strings.Contains(con, "SUM="):
			t.Fatalf("booted although the login must be refused: %q", con)
		case tc.fail != "" && strings.Contains(log, tc.fail):
			done = true
		case tc.fail == "" && strings.Contains(con, want):
			done = true
		case tc.fail == "" && strings.Contains(con, "SUM=") && strings.Contains(con[strings.Index(con, "SUM="):], "\n"):
			t.Fatalf("boot sector printed %q, want %s", con[strings.Index(con, "SUM="):], want)
		}
	}
	t.Logf("%s: result after %v; console ends %q", tc.name, time.Since(start).Round(time.Second), consoleTail(con, 400))
	loader := "ISOLINUX"
	if tc.drive == "floppy" {
		loader = "xpboot: starting iPXE"
	}
	if !strings.Contains(con, loader) || !strings.Contains(con, "iPXE 1.") {
		t.Errorf("console shows no %s → iPXE start:\n%s", loader, con)
	}
	if tc.gwEcho {
		if line := "XPB-GW=[" + tc.wantGW + "]"; !strings.Contains(con, line) {
			i := strings.Index(con, "XPB-GW=")
			got := "nothing"
			if i >= 0 {
				got = con[i:min(len(con), i+30)]
			}
			t.Errorf("gateway line: want %s, got %s", line, got)
		}
	}
	vm.Process.Kill()
	if err := stop(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	log := slog.String()
	steps := []string{"state=bound"}
	if tc.fail == "" {
		steps = append(steps, `msg="iSCSI login"`)
	} else {
		steps = append(steps, `msg="authentication failed"`)
	}
	for _, step := range steps {
		found := false
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, step) && strings.Contains(line, "client="+mac) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no log line with %s for client=%s", step, mac)
		}
	}
	for _, secret := range []string{"pcsecret12345", "targetsecret99", "wrongsecret123"} {
		if strings.Contains(log, secret) {
			t.Errorf("secret %q in the log", secret)
		}
	}
}

// consoleTail is the end of a console log without terminal escapes, for
// messages.
func consoleTail(con string, n int) string {
	var b strings.Builder
	for i := 0; i < len(con); i++ {
		if con[i] == 0x1b {
			for i++; i < len(con) && !(con[i] >= 'A' && con[i] <= 'Z' || con[i] >= 'a' && con[i] <= 'z'); i++ {
			}
			continue
		}
		b.WriteByte(con[i])
	}
	s := b.String()
	return s[max(0, len(s)-n):]
}
