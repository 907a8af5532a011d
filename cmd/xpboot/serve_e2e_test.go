package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// e2eROM is QEMU's e1000 option ROM from Debian's ipxe-qemu: iPXE itself,
// so the first DHCP exchange already gets the SAN answer.
const e2eROM = "/usr/lib/ipxe/qemu/pxe-e1000.rom"

// e2eCase is one end-to-end boot: what the disk holds, how serve runs, and
// what proves success.
type e2eCase struct {
	name  string
	n     int                                             // 10.78.n.0/24, MAC 52:54:00:78:n:01
	disk  func(t *testing.T, dir string) (string, string) // image path, COM1 line that proves the boot
	args  []string                                        // extra serve flags
	fail  string                                          // the boot must fail and the server log must contain this
	exitq bool                                            // the guest leaves QEMU through isa-debug-exit
	proxy bool                                            // --dhcp proxy beside a dnsmasq "router" in a second namespace
	json  bool                                            // --json: check the status lines too
}

// TestServeE2E runs `xpboot serve --dhcp full` (the built binary, the real
// code path) inside a network namespace the test creates, and boots QEMU
// with Debian's iPXE ROM on a tap device in that namespace: DHCP hands iPXE
// the root-path, initiator IQN and CHAP credentials, iPXE logs into the
// target served by the same process and boots the disk through INT 13h.
//
//   - no-chap: the boot-sector disk of iscsitarget/testdata/sanboot reads
//     512 sectors through INT 13h and prints their checksum on COM1;
//   - mutual-chap: the same with --chap and --mutual-chap, the credentials
//     travelling in DHCP option 175.190–193;
//   - wrong-secret: a --clients entry gives the client a wrong secret for the
//     target's CHAP user; the boot must fail and the server must log the
//     refused login under the client's MAC;
//   - ntldr: a disk made by `xpboot image create` with a test NTLDR put into
//     it by `xpboot image put`: xpboot's MBR and FAT32 boot code load NTLDR
//     over iSCSI, which prints DL=80 … HASH=… on COM1 — the whole chain.
//
// Every case also checks that the log names the client's MAC for its DHCP
// and iSCSI steps, and that SIGTERM stops serve cleanly with the image
// flushed. Namespaces and processes are always cleaned up.
func TestServeE2E(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	peertest.NeedFile(t, e2eROM, "ipxe-qemu")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	cases := []e2eCase{
		{name: "no-chap", n: 1, disk: sumDisk, json: true},
		{name: "mutual-chap", n: 2, disk: sumDisk,
			args: []string{"--chap", "pcuser:pcsecret12345", "--mutual-chap", "xpbtarget:targetsecret99", "--require-mutual"}},
		{name: "wrong-secret", n: 3, disk: sumDisk,
			args: []string{"--chap", "pcuser:pcsecret12345", "--clients", "CLIENTS"},
			fail: "authentication failed"},
		{name: "ntldr", n: 4, disk: ntldrDisk, exitq: true},
		{name: "proxy", n: 5, disk: sumDisk, proxy: true, args: []string{"--chap", "pcuser:pcsecret12345"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runE2E(t, ip, qemu, tc)
		})
	}
}

func runE2E(t *testing.T, ip, qemu string, tc e2eCase) {
	dir := t.TempDir()
	disk, want := tc.disk(t, dir)
	mac := fmt.Sprintf("52:54:00:78:%02x:01", tc.n)
	subnet := fmt.Sprintf("10.78.%d.", tc.n)
	ns := fmt.Sprintf("xpbe%d%d", os.Getpid(), tc.n)
	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, "ip"}, args...)...)
	}
	in("link", "set", "lo", "up")
	in("tuntap", "add", "tap0", "mode", "tap")
	link := "tap0"
	if tc.proxy {
		link = "br0"
		startRouter(t, ip, ns, subnet)
	} else {
		in("addr", "add", subnet+"1/24", "dev", "tap0")
	}
	in("link", "set", "tap0", "up")

	ipxeDir := "/usr/lib/ipxe"
	if _, err := os.Stat(ipxeDir); err != nil {
		ipxeDir = t.TempDir() // the ROM is iPXE already: nothing is chainloaded
	}
	args := []string{"netns", "exec", ns, xpbootBinary, "--log-level", "debug", "serve",
		"--image", disk, "--iqn", "iqn.2026-01.org.xpboot:e2e", "--listen", subnet + "1:3260",
		"--interface", link, "--no-gateway", "--ipxe-dir", ipxeDir}
	if tc.proxy {
		args = append(args, "--dhcp", "proxy")
	} else {
		args = append(args, "--dhcp", "full", "--dhcp-range", subnet+"100-"+subnet+"110", "--state-dir", filepath.Join(dir, "state"))
	}
	if tc.json {
		args = append(args, "--json")
	}
	for _, a := range tc.args {
		if a == "CLIENTS" {
			a = filepath.Join(dir, "clients.json")
			entry := fmt.Sprintf(`[{"mac": %q, "name": "pc%d", "chap_user": "pcuser", "chap_secret": "wrongsecret123"}]`, mac, tc.n)
			if err := os.WriteFile(a, []byte(entry), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args = append(args, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	slog, stop := startNetnsServe(t, ctx, ip, args...) // ip netns exec execs xpboot: signals reach it

	serial := filepath.Join(dir, "serial.log")
	qargs := []string{"netns", "exec", ns, qemu, "-machine", "pc", "-m", "128", "-display", "none", "-no-reboot",
		"-boot", "n", "-serial", "file:" + serial, "-monitor", "none", "-parallel", "none",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "e1000,netdev=n0,mac=" + mac + ",romfile=" + e2eROM}
	qargs = append(qargs, peertest.QEMUAccel()...)
	if tc.exitq {
		qargs = append(qargs, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	}
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
	deadline := time.After(120 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-deadline:
			b, _ := os.ReadFile(serial)
			t.Fatalf("no result within 120 s; COM1 %q; qemu: %s", b, vout.String())
		case <-tick.C:
		}
		b, _ := os.ReadFile(serial)
		con := string(b)
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
			t.Fatalf("boot sector printed %q, want %s", strings.TrimSpace(con), want)
		}
	}
	b, _ := os.ReadFile(serial)
	t.Logf("%s: result after %v; COM1: %q", tc.name, time.Since(start).Round(time.Second), strings.TrimSpace(string(b)))
	vm.Process.Kill()
	if err := stop(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	log := slog.String()
	if !strings.Contains(log, "images flushed") {
		t.Error("serve did not report flushing the image on SIGTERM")
	}
	// The log tells the client's story under its MAC.
	steps := []string{"state=offered", "state=bound", "state=sanboot"}
	if tc.proxy {
		steps = []string{"state=proxy-offered", "state=tftp-done"}
	}
	if tc.fail == "" {
		steps = append(steps, `msg="iSCSI login"`)
	} else {
		steps = append(steps, `msg="authentication failed"`, `msg="client's CHAP secret differs`)
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
	if tc.json {
		checkE2EStatus(t, log, mac, subnet)
	}
	for _, secret := range []string{"pcsecret12345", "targetsecret99", "wrongsecret123"} {
		if strings.Contains(log, secret) {
			t.Errorf("secret %q in the log", secret)
		}
	}
	if !tc.proxy {
		// The lease survives a restart: it is in the state directory.
		b, err := os.ReadFile(filepath.Join(dir, "state", "leases-tap0.json"))
		if err != nil || !strings.Contains(string(b), mac) {
			t.Errorf("lease file lacks %s: %v %s", mac, err, b)
		}
	}
	if tc.proxy {
		// The address came from the router's dnsmasq (.160–.200), not from
		// xpboot, and iPXE logged in from it.
		if !regexpRouterLease(subnet).MatchString(log) {
			t.Errorf("iSCSI login not from an address of the router's range")
		}
	}
}

// checkE2EStatus reads the --json lines of a full-mode boot: the
// listening line names DHCP, TFTP and the root-path, the client's DHCP and
// iSCSI steps follow under its MAC, and the summary names the client.
func checkE2EStatus(t *testing.T, out, mac, subnet string) {
	t.Helper()
	lines := parseStatus(t, out, true)
	if len(lines) < 2 {
		t.Fatalf("no status lines")
	}
	first, last := lines[0], lines[len(lines)-1]
	if first.Event != "listening" || first.DHCP == nil || first.DHCP.Mode != "full" || first.DHCP.TFTP != subnet+"1:69" ||
		len(first.Targets) != 1 || first.Targets[0].RootPath != "iscsi:"+subnet+"1::::iqn.2026-01.org.xpboot:e2e" {
		t.Errorf("listening line: %+v", first)
	}
	seen := map[string]bool{}
	for _, l := range lines[1 : len(lines)-1] {
		if l.Event != "client" {
			t.Errorf("line %+v between listening and stopped", l)
		}
		if l.Client == mac {
			seen[l.Proto+"/"+l.State] = true
		}
	}
	for _, want := range []string{"dhcp/offered", "dhcp/bound", "dhcp/sanboot", "iscsi/login"} {
		if !seen[want] {
			t.Errorf("no %s status line for %s (saw %v)", want, mac, seen)
		}
	}
	found := false
	for _, c := range last.Clients {
		found = found || c.Client == mac
	}
	if last.Event != "stopped" || last.Error != "" || !found || last.Events["login"] == 0 {
		t.Errorf("stopped line: %+v", last)
	}
}

func regexpRouterLease(subnet string) *regexp.Regexp {
	return regexp.MustCompile(`msg="iSCSI login".* remote=` + regexp.QuoteMeta(subnet) + `(1[6-9][0-9]|200):`)
}

// startRouter puts ns's tap0 on a bridge br0 (xpboot's address) and joins
// it by a veth pair to a second namespace whose dnsmasq is the link's plain
// DHCP server (.160–.200, gateway .254), as a home router would be.
func startRouter(t *testing.T, ip, ns, subnet string) {
	dnsmasq := peertest.Need(t, "dnsmasq", "dnsmasq-base")
	router := ns + "r"
	peertest.Run(t, 10*time.Second, ip, "netns", "add", router)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", router) })
	in := func(name string, args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", name, "ip"}, args...)...)
	}
	in(router, "link", "set", "lo", "up")
	in(ns, "link", "add", "br0", "type", "bridge")
	in(ns, "addr", "add", subnet+"1/24", "dev", "br0")
	in(ns, "link", "set", "br0", "up")
	in(ns, "link", "set", "tap0", "master", "br0")
	in(ns, "link", "add", "vm", "type", "veth", "peer", "name", "vr")
	in(ns, "link", "set", "vm", "master", "br0")
	in(ns, "link", "set", "vm", "up")
	in(ns, "link", "set", "vr", "netns", router)
	in(router, "addr", "add", subnet+"254/24", "dev", "vr")
	in(router, "link", "set", "vr", "up")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", router, dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=0", "--user=root", "--interface=vr", "--bind-interfaces",
		"--dhcp-range="+subnet+"160,"+subnet+"200,255.255.255.0,1h", "--dhcp-option=3,"+subnet+"254",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"),
		"--log-dhcp", "--log-facility=-")
	var rlog syncBuffer
	cmd.Stdout, cmd.Stderr = &rlog, &rlog
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("router dnsmasq:\n%s", rlog.String())
		}
	})
}

// sumDisk is a 32 MiB disk whose boot sector (iscsitarget/testdata/sanboot)
// reads sectors 1..512 through INT 13h and prints SUM=<checksum> on COM1.
func sumDisk(t *testing.T, dir string) (string, string) {
	boot, err := os.ReadFile("../../iscsitarget/testdata/sanboot/bootsector.bin")
	if err != nil {
		t.Fatal(err)
	}
	disk := make([]byte, 32<<20) // several 255×63 cylinders, as iPXE's CHS view needs
	copy(disk, boot)
	r := rand.New(rand.NewPCG(5, 6))
	for i := 512; i < 1<<20; i++ {
		disk[i] = byte(r.Uint32())
	}
	var sum uint32
	for _, b := range disk[512 : 513*512] {
		sum = (sum<<1 | sum>>31) + uint32(b)
	}
	p := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(p, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, fmt.Sprintf("SUM=%08x", sum)
}

// TestBenchDisk writes the disk of sumDisk to $XPBOOT_BENCH_DISK and the
// COM1 line its boot sector must print to $XPBOOT_BENCH_DISK.sum, for
// bench/serve/boot.sh, so the benchmark boots exactly the e2e test's disk.
func TestBenchDisk(t *testing.T) {
	out := os.Getenv("XPBOOT_BENCH_DISK")
	if out == "" {
		t.Skip("writes the boot benchmark's disk when XPBOOT_BENCH_DISK=PATH is set (bench/serve/boot.sh)")
	}
	p, want := sumDisk(t, t.TempDir())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+".sum", []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ntldrDisk makes a disk with `xpboot image create` and puts the stand-in
// NTLDR of imagefs/bootcode/testdata into it with `xpboot image put`; the
// NTLDR prints how it was entered and a hash of its own bytes on COM1.
func ntldrDisk(t *testing.T, dir string) (string, string) {
	nasm := peertest.Need(t, "nasm", "nasm")
	bin := filepath.Join(dir, "ntldr.bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", bin, "../../imagefs/bootcode/testdata/ntldr.asm")
	code, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	const size = 200_000
	file := make([]byte, size)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range file {
		file[i] = byte(rng.Uint32())
	}
	copy(file, code)
	binary.LittleEndian.PutUint32(file[4:], size)
	var h uint32
	for _, b := range file {
		h = h*31 + uint32(b)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "NTLDR"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "put", filepath.Join(src, "NTLDR"), "disk.img:/"); r.code != 0 {
		t.Fatalf("image put: %+v", r)
	}
	return filepath.Join(dir, "disk.img"), fmt.Sprintf("DL=80 BPBDL=80 FS=FAT32    CS=2000 HASH=%08X", h)
}

// startNetnsServe starts an `xpboot serve` command (normally through `ip netns
// exec`, which execs it, so signals reach it) under ctx and waits until its
// target listens. stop sends SIGTERM, waits up to 20 s, then kills; it runs
// at the end of the test anyway, and the server log is shown when the test
// fails (or always with XPBOOT_E2E_LOG=1).
func startNetnsServe(t *testing.T, ctx context.Context, name string, args ...string) (log *syncBuffer, stop func() error) {
	t.Helper()
	srv := exec.CommandContext(ctx, name, args...)
	log = &syncBuffer{}
	srv.Stdout, srv.Stderr = log, log
	srv.WaitDelay = 5 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Wait() }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-srvDone:
			return err
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
			<-srvDone
			return fmt.Errorf("serve did not stop within 20 s of SIGTERM")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() || os.Getenv("XPBOOT_E2E_LOG") != "" {
			t.Logf("server log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), "iSCSI target listening"); {
		select {
		case err := <-srvDone:
			stopped = true
			t.Fatalf("serve exited early: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not start within 30 s")
		}
	}
	return log, stop
}
