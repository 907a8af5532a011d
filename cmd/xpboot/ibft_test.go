package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// ibftCase is one firmware → OS handoff.
type ibftCase struct {
	name    string
	n       int      // 10.83.n.0/24, MAC 52:54:00:83:n:01
	args    []string // extra serve flags
	overlay bool     // --overlay-dir: the OS writes through its session, into the client's overlay
}

// TestIBFTHandoff proves the handoff Windows' iSCSI boot initiator relies
// on, with an operating system that does what it does: iPXE (Debian's ROM,
// e1000) gets the root-path, initiator IQN and CHAP from `xpboot serve
// --dhcp full`, logs in, hooks the disk and writes the iBFT for it, then
// boots the client's boot_file: a script that loads a stock Debian kernel
// and an initramfs this test builds from Debian's busybox-static,
// open-iscsi's iscsistart and the kernel's own iSCSI modules. The
// initramfs reads /sys/firmware/ibft, brings up the NIC and logs in again
// from the iBFT alone (`iscsistart -N`, `iscsistart -b`: same initiator
// name and CHAP secret, its own ISID) while iPXE's session still exists,
// mounts the disk's FAT32 partition through the kernel's session and
// prints the marker file on COM1.
//
// iPXE's sanhook plus kernel/initrd by TFTP is used instead of a boot
// loader on the disk: it is the shortest path under TCG, needs no
// syslinux, and the iBFT is written for the hooked disk all the same.
//
// Cases: CHAP; mutual CHAP (the iBFT carries the reverse secret too); and
// a client with a write-back overlay, whose OS writes a file through its
// session: the file must land in that client's overlay, the base must stay
// unchanged.
func TestIBFTHandoff(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	peertest.NeedFile(t, e2eROM, "ipxe-qemu")
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		peertest.Missing(t, "a Linux kernel in /boot", "linux-image-amd64")
	}
	sort.Strings(kernels)
	kernel := kernels[len(kernels)-1]
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	if _, err := os.Stat(filepath.Join("/lib/modules", kver, "modules.dep")); err != nil {
		peertest.Missing(t, "/lib/modules/"+kver, "linux-image-amd64")
	}
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	initrd := ibftInitramfs(t, kver)
	cases := []ibftCase{
		{name: "chap", n: 1, args: []string{"--chap", "pcuser:pcsecret12345"}},
		{name: "mutual-chap", n: 2, args: []string{"--chap", "pcuser:pcsecret12345", "--mutual-chap", "xpbtarget:targetsecret99", "--require-mutual"}},
		{name: "overlay", n: 3, args: []string{"--chap", "pcuser:pcsecret12345"}, overlay: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runIBFT(t, ip, qemu, kernel, initrd, tc)
		})
	}
}

func runIBFT(t *testing.T, ip, qemu, kernel string, initrd []byte, tc ibftCase) {
	dir := t.TempDir()
	mac := fmt.Sprintf("52:54:00:83:%02x:01", tc.n)
	subnet := fmt.Sprintf("10.83.%d.", tc.n)
	initiator := "iqn.2026-01.org.xpboot:client-" + strings.ReplaceAll(mac, ":", "-")
	marker := fmt.Sprintf("ibft-%s-%d", tc.name, time.Now().UnixNano())
	written := marker + "-written-by-linux"

	// The disk: xpboot's MBR and FAT32 with the marker file.
	if err := os.WriteFile(filepath.Join(dir, "MARKER.TXT"), []byte(marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "put", filepath.Join(dir, "MARKER.TXT"), "disk.img:/"); r.code != 0 {
		t.Fatalf("image put: %+v", r)
	}
	disk := filepath.Join(dir, "disk.img")
	base, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}

	// The TFTP root: the script iPXE boots after hooking the disk, the
	// kernel and the initramfs.
	tftp := filepath.Join(dir, "tftp")
	if err := os.MkdirAll(tftp, 0o755); err != nil {
		t.Fatal(err)
	}
	kb, err := os.ReadFile(kernel)
	if err != nil {
		t.Fatal(err)
	}
	cmdline := "console=ttyS0,115200 panic=-1 loglevel=4"
	if tc.overlay {
		cmdline += " xpbwrite=" + written
	}
	script := "#!ipxe\nkernel vmlinuz " + cmdline + "\ninitrd initrd.gz\nboot\n"
	for name, b := range map[string][]byte{"vmlinuz": kb, "initrd.gz": initrd, "linux.ipxe": []byte(script)} {
		if err := os.WriteFile(filepath.Join(tftp, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clients := filepath.Join(dir, "clients.json")
	entry := fmt.Sprintf(`[{"mac": %q, "name": "ibft%d", "boot_file": "linux.ipxe"%s}]`, mac, tc.n, map[bool]string{true: `, "overlay": true`}[tc.overlay])
	if err := os.WriteFile(clients, []byte(entry), 0o600); err != nil {
		t.Fatal(err)
	}

	ns := fmt.Sprintf("xpbi%d%d", os.Getpid(), tc.n)
	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, "ip"}, args...)...)
	}
	in("link", "set", "lo", "up")
	in("tuntap", "add", "tap0", "mode", "tap")
	in("addr", "add", subnet+"1/24", "dev", "tap0")
	in("link", "set", "tap0", "up")

	args := []string{"netns", "exec", ns, xpbootBinary, "serve",
		"--image", disk, "--iqn", "iqn.2026-01.org.xpboot:ibft", "--listen", subnet + "1:3260",
		"--interface", "tap0", "--no-gateway", "--ipxe-dir", tftp, "--clients", clients,
		"--dhcp", "full", "--dhcp-range", subnet + "100-" + subnet + "110", "--state-dir", filepath.Join(dir, "state"),
		// The booted kernel answers a keepalive probe on iPXE's idle
		// connection with a reset, which ends iPXE's session; the test
		// proves the OS logs in while that session still exists, so the
		// probe must not come first on a slow (TCG, loaded) machine.
		"--tcp-keepalive", "5m"}
	overlays := filepath.Join(dir, "overlays")
	if tc.overlay {
		args = append(args, "--overlay-dir", overlays)
	}
	args = append(args, tc.args...)
	ctx, cancel := context.WithTimeout(context.Background(), 230*time.Second)
	defer cancel()
	slog, stop := startNetnsServe(t, ctx, ip, args...)

	serial := filepath.Join(dir, "serial.log")
	qargs := []string{"netns", "exec", ns, qemu, "-machine", "pc", "-m", "384", "-display", "none", "-no-reboot",
		"-boot", "n", "-serial", "file:" + serial, "-monitor", "none", "-parallel", "none",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "e1000,netdev=n0,mac=" + mac + ",romfile=" + e2eROM}
	qargs = append(qargs, peertest.QEMUAccel()...)
	vm := exec.CommandContext(ctx, ip, qargs...)
	var vout syncBuffer
	vm.Stdout, vm.Stderr = &vout, &vout
	vm.WaitDelay = 5 * time.Second
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	vmDone := make(chan error, 1)
	go func() { vmDone <- vm.Wait() }()
	defer func() {
		vm.Process.Kill()
		<-vmDone
	}()
	start := time.Now()
	con := ""
	for done := false; !done; {
		select {
		case <-ctx.Done():
			t.Fatalf("no result within the time limit; COM1:\n%s\nqemu: %s", ibftTail(serial), vout.String())
		case <-vmDone:
			vmDone <- nil
			done = true // poweroff -f, or a panic with -no-reboot
		case <-time.After(250 * time.Millisecond):
		}
		b, _ := os.ReadFile(serial)
		con = string(b)
		if strings.Contains(con, "xpboot-ibft: DONE") || strings.Contains(con, "xpboot-ibft: FAIL") {
			done = true
		}
	}
	// Let the guest finish its poweroff (the overlay case unmounted and
	// synced before DONE), then stop the VM and the server.
	select {
	case <-vmDone:
		vmDone <- nil
	case <-time.After(10 * time.Second):
	}
	t.Logf("%s: finished after %v", tc.name, time.Since(start).Round(time.Second))
	lines := ibftLines(con)
	t.Logf("guest said:\n%s", strings.Join(lines, "\n"))
	for _, l := range lines {
		if strings.Contains(l, "FAIL") {
			t.Errorf("guest: %s", l)
		}
	}
	// The iBFT iPXE wrote names this client and this target.
	if !regexp.MustCompile(`xpboot-ibft: ibft initiator=` + regexp.QuoteMeta(initiator) + ` target=iqn\.2026-01\.org\.xpboot:ibft chap=pcuser`).MatchString(con) {
		t.Errorf("iBFT values wrong or missing")
	}
	if !strings.Contains(con, "xpboot-ibft: MARKER="+marker) {
		t.Fatalf("the kernel's iSCSI session did not read the marker; COM1:\n%s", ibftTail(serial))
	}
	if !strings.Contains(con, "xpboot-ibft: session target=iqn.2026-01.org.xpboot:ibft initiator="+initiator) {
		t.Errorf("the kernel's iSCSI session is not iBFT's")
	}
	vm.Process.Kill()
	if err := stop(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	log := slog.String()
	// iPXE ran the client's boot file (its console is not on COM1).
	for _, f := range []string{"linux.ipxe", "vmlinuz", "initrd.gz"} {
		if !regexp.MustCompile(`msg="sent ` + regexp.QuoteMeta(f) + `" client=` + regexp.QuoteMeta(mac)).MatchString(log) {
			t.Errorf("the log does not show %s sent to %s", f, mac)
		}
	}
	if !regexp.MustCompile(`state=ipv6-ra .*client=` + regexp.QuoteMeta(mac) + `|client=` + regexp.QuoteMeta(mac) + ` proto=ipv6-ra state=ipv6-ra`).MatchString(log) {
		t.Errorf("iPXE's router solicitation was not answered and logged for %s", mac)
	}
	// The OS's login is the last Normal login of this initiator name (iPXE
	// may log in more than once: Debian's iPXE closes the session it
	// hooked the disk with and opens another). It has an ISID of its own
	// (a new session, not a reinstatement), and iPXE's latest session was
	// still open when it came: both are admitted side by side.
	type login struct {
		remote, isid string
		line         int
	}
	var logins []login
	closed := map[string]int{}   // remote address → line of its close
	resetBy := map[string]bool{} // closed by a TCP reset from the client
	loginRE := regexp.MustCompile(`msg="iSCSI login".* remote=(\S+) initiator=` + regexp.QuoteMeta(initiator) + ` .*session=Normal.*isid=([0-9a-f]{12})`)
	closedRE := regexp.MustCompile(`msg="(connection closed|connection dropped[^"]*)" remote=(\S+)`)
	for i, l := range strings.Split(log, "\n") {
		if m := loginRE.FindStringSubmatch(l); m != nil {
			logins = append(logins, login{m[1], m[2], i})
		} else if m := closedRE.FindStringSubmatch(l); m != nil {
			if _, seen := closed[m[2]]; !seen {
				closed[m[2]] = i
				resetBy[m[2]] = strings.Contains(l, "connection reset by peer")
			}
		}
	}
	openAt := func(remote string, line int) bool {
		c, ok := closed[remote]
		return !ok || c > line
	}
	t.Logf("Normal logins of %s in order: %+v", initiator, logins)
	for _, l := range regexp.MustCompile(`(?m)^.*msg=(login|"connection dropped[^"]*"|"connection closed"|logout) .*$`).FindAllString(log, -1) {
		t.Logf("target: %s", l)
	}
	if len(logins) < 2 {
		t.Fatalf("want iPXE's and the OS's Normal logins of %s, got %d", initiator, len(logins))
	}
	osl, ipxe := logins[len(logins)-1], logins[len(logins)-2]
	for _, l := range logins[:len(logins)-1] {
		if l.isid == osl.isid {
			t.Errorf("the OS's login reuses iPXE's ISID %s", l.isid)
		}
	}
	if !strings.HasPrefix(osl.isid, "00023d") {
		t.Errorf("last login's ISID %s is not open-iscsi's (00023d…)", osl.isid)
	}
	switch {
	case openAt(ipxe.remote, osl.line):
		t.Logf("the OS logged in from %s while iPXE's session from %s was still open", osl.remote, ipxe.remote)
	case resetBy[ipxe.remote]:
		// Once the booted kernel's network is up, any segment the target
		// still sends on iPXE's dead connection (a retransmission, a
		// keepalive probe) draws a reset from it, as Windows' stack does
		// too; when that races ahead of the OS's login the two sessions
		// never overlap here. TestSessionsPerInitiator (iscsitarget) proves
		// the target admits them side by side.
		t.Logf("iPXE's session from %s was reset by the booted kernel's TCP stack just before the OS logged in from %s", ipxe.remote, osl.remote)
	default:
		t.Errorf("iPXE's session from %s was closed by the target before the OS logged in from %s", ipxe.remote, osl.remote)
	}
	if strings.Contains(log, "session reinstatement") {
		t.Errorf("the OS's login reinstated iPXE's session instead of opening its own")
	}
	if n := len(regexp.MustCompile(`msg="iSCSI login".*session=Normal`).FindAllString(log, -1)); n < 2 {
		t.Errorf("the log shows %d Normal sessions, want 2", n)
	}
	if strings.Contains(log, "pcsecret12345") || strings.Contains(log, "targetsecret99") {
		t.Error("a secret is in the log")
	}
	if tc.overlay {
		if !strings.Contains(con, "xpboot-ibft: WROTE") {
			t.Fatalf("the OS did not write through its session")
		}
		after, err := os.ReadFile(disk)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(base, after) {
			t.Error("the base image changed")
		}
		// The overlay is named after the initiator (':' is '_' in file
		// names); @base-* is the descriptor of a raw base.
		ovs, _ := filepath.Glob(filepath.Join(overlays, "iqn*.vmdk"))
		if len(ovs) != 1 || !strings.Contains(filepath.Base(ovs[0]), "client-"+strings.ReplaceAll(mac, ":", "-")) {
			t.Fatalf("want one overlay for %s, got %v", initiator, ovs)
		}
		ov, err := os.ReadFile(ovs[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(ov, []byte(written)) {
			t.Errorf("the file the OS wrote is not in the client's overlay %s", ovs[0])
		}
		if n := strings.Count(log, `state=overlay `); n < 1 {
			t.Errorf("no overlay events in the log")
		}
	}
}

// ibftLines returns the initramfs's own lines from the console.
func ibftLines(con string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(con))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.Contains(l, "xpboot-ibft:") {
			out = append(out, l)
		}
	}
	return out
}

// ibftTail is the end of the console, for failure messages.
func ibftTail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

// ibftInit is the initramfs's /init: it does, from the iBFT alone, what
// Windows' iSCSI boot initiator does, and reports on COM1.
const ibftInit = `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mkdir -p /proc /sys /dev /mnt /run/lock/iscsi /var/lock /etc/iscsi /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
say() { echo "xpboot-ibft: $*" > /dev/ttyS0; }
end() { say "$1"; sync; poweroff -f; sleep 5; }
for m in $(cat /modules.list); do insmod "$m" 2>/dev/null; done
[ -d /sys/firmware/ibft/target0 ] || end "FAIL no iBFT under /sys/firmware/ibft"
say "ibft initiator=$(cat /sys/firmware/ibft/initiator/initiator-name) target=$(cat /sys/firmware/ibft/target0/target-name) chap=$(cat /sys/firmware/ibft/target0/chap-name)"
iscsistart -N > /tmp/n.log 2>&1 || end "FAIL iscsistart -N: $(cat /tmp/n.log)"
iscsistart -b > /tmp/b.log 2>&1 || end "FAIL iscsistart -b: $(cat /tmp/b.log)"
i=0
while [ ! -b /dev/sda1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ -b /dev/sda1 ] || end "FAIL no /dev/sda1 after the login: $(cat /tmp/b.log)"
for s in /sys/class/iscsi_session/session*; do
	say "session target=$(cat $s/targetname) initiator=$(cat $s/initiatorname)"
done
mount -t vfat -o ro /dev/sda1 /mnt || end "FAIL mount /dev/sda1"
say "MARKER=$(cat /mnt/MARKER.TXT)"
umount /mnt
w=$(sed -n 's/.*xpbwrite=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$w" ]; then
	mount -t vfat -o rw /dev/sda1 /mnt || end "FAIL mount rw"
	echo "$w" > /mnt/OSWROTE.TXT
	umount /mnt || end "FAIL umount"
	sync
	echo 1 > /sys/block/sda/device/delete 2>/dev/null
	say "WROTE"
fi
end DONE
`

// ibftInitramfs builds a gzipped newc initramfs: Debian's static busybox,
// iscsistart with the libraries ldd names, and the kernel modules for
// e1000, SCSI disks, iSCSI over TCP, the iBFT and FAT with their
// dependencies (modprobe --show-depends; crc32c_generic by hand, which
// iscsi_tcp needs although modules.dep does not say so).
func ibftInitramfs(t *testing.T, kver string) []byte {
	busybox := peertest.NeedFile(t, "/usr/bin/busybox", "busybox-static")
	if out, err := exec.Command("file", "-L", busybox).Output(); err == nil && !bytes.Contains(out, []byte("statically linked")) {
		peertest.Missing(t, "a static busybox", "busybox-static")
	}
	iscsistart := peertest.Need(t, "iscsistart", "open-iscsi")
	modprobe := peertest.Need(t, "modprobe", "kmod")
	ldd := peertest.Need(t, "ldd", "libc-bin")

	var files []cpioFile
	add := func(name string, mode uint32, data []byte, link string) {
		files = append(files, cpioFile{name: name, mode: mode, data: data, link: link})
	}
	addFile := func(dst, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		add(dst, 0o100755, b, "")
	}
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "mnt", "tmp", "etc", "lib", "lib64", "lib/x86_64-linux-gnu", "lib/modules", "run", "var"} {
		add(d, 0o40755, nil, "")
	}
	add("dev/console", 0o20600, nil, "") // major 5 minor 1, set in the writer
	addFile("bin/busybox", busybox)
	add("bin/sh", 0o120777, nil, "busybox")
	addFile("sbin/iscsistart", iscsistart)
	out := peertest.Run(t, 30*time.Second, ldd, iscsistart)
	for _, m := range regexp.MustCompile(`(/\S+\.so[.0-9]*)`).FindAllString(string(out), -1) {
		addFile(strings.TrimPrefix(m, "/"), m)
	}
	seen := map[string]bool{}
	var order []string
	for _, mod := range []string{"e1000", "crc32c_generic", "scsi_transport_iscsi", "libiscsi", "iscsi_tcp", "iscsi_ibft", "sd_mod", "vfat", "nls_cp437", "nls_ascii", "nls_iso8859-1"} {
		out := peertest.Run(t, 30*time.Second, modprobe, "-S", kver, "--show-depends", mod)
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "insmod" || seen[f[1]] {
				continue
			}
			seen[f[1]] = true
			dst := "lib/modules/" + filepath.Base(f[1])
			if strings.HasSuffix(f[1], ".xz") || strings.HasSuffix(f[1], ".zst") {
				t.Skipf("compressed kernel modules (%s): busybox insmod cannot load them", f[1])
			}
			addFile(dst, f[1])
			order = append(order, "/"+dst)
		}
	}
	add("modules.list", 0o100644, []byte(strings.Join(order, "\n")+"\n"), "")
	add("init", 0o100755, []byte(ibftInit), "")

	var raw bytes.Buffer
	writeCPIO(&raw, files)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(raw.Bytes())
	zw.Close()
	return gz.Bytes()
}

type cpioFile struct {
	name string
	mode uint32
	data []byte
	link string
}

// writeCPIO writes the "newc" format the kernel unpacks (Documentation/
// driver-api/early-userspace/buffer-format.rst): a 110-byte ASCII header,
// the name and the data, each padded to 4 bytes, and a TRAILER!!! entry.
func writeCPIO(w io.Writer, files []cpioFile) {
	pad := func(n int) { w.Write(make([]byte, (4-n%4)%4)) }
	entry := func(ino int, f cpioFile) {
		data := f.data
		if f.link != "" {
			data = []byte(f.link)
		}
		var rmaj, rmin int
		if f.mode&0o170000 == 0o20000 {
			rmaj, rmin = 5, 1
		}
		nlink := 1
		if f.mode&0o170000 == 0o40000 {
			nlink = 2
		}
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, f.mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(f.name)+1, 0)
		io.WriteString(w, hdr)
		io.WriteString(w, f.name+"\x00")
		pad(len(hdr) + len(f.name) + 1)
		w.Write(data)
		pad(len(data))
	}
	for i, f := range files {
		entry(i+1, f)
	}
	entry(0, cpioFile{name: "TRAILER!!!"})
}
