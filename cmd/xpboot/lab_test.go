package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/overlay"
)

// labLayout is what the lab boot sector (testdata/lab/boot.asm) reads and
// writes: extents runs of sectors sectors, the first at LBA first and each
// stride sectors after the one before, then one token sector at wlba. The
// same numbers go to nasm (-D) and into the expected checksum.
type labLayout struct {
	size                                  int64 // bytes of the base disk
	extents, sectors, first, stride, wlba int64
}

// labDefault reads 32 runs of 8 KiB spread over a 64 MiB disk (256 KiB per
// client, one READ per run): enough for every client to hit many grains of
// the base through its own overlay, little enough for 8 clients under TCG
// on two loaded cores.
var labDefault = labLayout{size: 64 << 20, extents: 32, sectors: 16, first: 1, stride: 4096, wlba: 2049}

// labMarkerRE is the line the boot sector prints when it is done.
var labMarkerRE = regexp.MustCompile(`SUM=([0-9a-f]{8}) TOKEN=([0-9a-f]{8}) OK`)

// makeLabDisk assembles testdata/lab/boot.asm for l and writes a VMDK base
// at path: the boot sector, random data in every extent the boot sector
// reads, 0x42 at the token sector, nothing elsewhere. It returns the
// "SUM=xxxxxxxx" every client must print.
func makeLabDisk(t *testing.T, path string, l labLayout) string {
	t.Helper()
	nasm := peertest.Need(t, "nasm", "nasm")
	bin := filepath.Join(t.TempDir(), "boot.bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", bin,
		fmt.Sprintf("-DEXTENTS=%d", l.extents), fmt.Sprintf("-DSECTORS=%d", l.sectors),
		fmt.Sprintf("-DFIRST=%d", l.first), fmt.Sprintf("-DSTRIDE=%d", l.stride), fmt.Sprintf("-DWLBA=%d", l.wlba),
		"testdata/lab/boot.asm")
	boot, err := os.ReadFile(bin)
	if err != nil || len(boot) != 512 {
		t.Fatalf("lab boot sector: %d bytes, %v", len(boot), err)
	}
	last := l.first + (l.extents-1)*l.stride + l.sectors
	if last*512 > l.size || l.wlba*512 >= l.size {
		t.Fatalf("lab layout %+v runs past the %d-byte disk", l, l.size)
	}
	d, err := vmdk.Create(path, l.size, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.WriteAt(boot, 0); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(14, 5))
	var sum uint32
	buf := make([]byte, l.sectors*512)
	for i := range l.extents {
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if _, err := d.WriteAt(buf, (l.first+i*l.stride)*512); err != nil {
			t.Fatal(err)
		}
		for _, b := range buf {
			sum = (sum<<1 | sum>>31) + uint32(b)
		}
	}
	if _, err := d.WriteAt(bytes.Repeat([]byte{0x42}, 512), l.wlba*512); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("SUM=%08x", sum)
}

// TestLabDisk writes the base of TestServeLab to $XPBOOT_LAB_DISK and the
// "SUM=…" line every client must print to $XPBOOT_LAB_DISK.sum, for
// bench/serve/lab.sh, so the benchmark boots exactly the test's disk.
func TestLabDisk(t *testing.T) {
	out := os.Getenv("XPBOOT_LAB_DISK")
	if out == "" {
		t.Skip("writes the lab benchmark's base when XPBOOT_LAB_DISK=PATH is set (bench/serve/lab.sh)")
	}
	want := makeLabDisk(t, out, labDefault)
	line := fmt.Sprintf("%s\nWLBA=%d\n", want, labDefault.wlba)
	if err := os.WriteFile(out+".sum", []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// labRSSLimit is the bound on the server's peak resident set (VmHWM) while
// n clients boot: a base for the binary and its buffers plus a share per
// client session and overlay. Measured on 2 loaded cores: 16.5 MiB for 8
// clients, 18 MiB for 16, 21 MiB for 32; the bound leaves about three times
// that for a busy machine's GC timing and fails a server that needs more
// than about 5 MiB per client session (at 8 clients).
func labRSSLimit(n int) int64 { return (48 + int64(n)) << 20 }

// TestServeLab is issue 14 item 5, the CI form of a lab booting in the
// morning: XPBOOT_LAB_CLIENTS (default 8) QEMU clients with Debian's iPXE
// ROM, one tap each on a bridge in a network namespace the test creates,
// start at the same moment and boot one VMDK base with per-client overlays
// from one `xpboot serve --dhcp full --overlay-dir`. Each client's boot
// sector (testdata/lab/boot.asm) reads a spread of the disk through INT
// 13h, writes its own token into its overlay and reads it back, and prints
// SUM=… TOKEN=… OK on COM1. Every client must print the base's checksum and
// its own token within the deadline; then every overlay must pass
// `qemu-img check` and hold that client's token (and no other), every
// client must have had its own lease and overlay, the base must be
// byte-unchanged (SHA-256), and the server's peak RSS must stay under
// labRSSLimit. The per-client time from QEMU start to the marker (median,
// p90, max) and the peak RSS are logged; bench/serve/lab.sh measures the
// same with 16 clients.
func TestServeLab(t *testing.T) {
	peertest.NeedRoot(t, "creates a network namespace, a bridge and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemuSys := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	peertest.NeedFile(t, e2eROM, "ipxe-qemu")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	n := 8
	if s := os.Getenv("XPBOOT_LAB_CLIENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 99 {
			t.Fatalf("XPBOOT_LAB_CLIENTS=%q: want 1 to 99", s)
		}
		n = v
	}
	// Under TCG on two busy cores a lone client reached its marker in
	// about 5 s, 8 at once in 12 s, 32 in 40 s; the clients share the
	// CPUs, so the deadline grows with their number: 100 s for 8, still
	// leaving the whole test well under 4 minutes when it fails.
	wait := 60*time.Second + time.Duration(n)*5*time.Second

	dir := t.TempDir()
	base := filepath.Join(dir, "xp.vmdk")
	wantSum := makeLabDisk(t, base, labDefault)
	baseBytes, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	baseHash := sha256.Sum256(baseBytes)
	ovDir := filepath.Join(dir, "overlays")
	state := filepath.Join(dir, "state")

	const subnet = "10.85.0."
	ns := fmt.Sprintf("xpbl%d", os.Getpid())
	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, "ip"}, args...)...)
	}
	in("link", "set", "lo", "up")
	in("link", "add", "br0", "type", "bridge")
	in("addr", "add", subnet+"1/24", "dev", "br0")
	in("link", "set", "br0", "up")
	for i := range n {
		tap := fmt.Sprintf("tap%d", i)
		in("tuntap", "add", tap, "mode", "tap")
		in("link", "set", tap, "master", "br0")
		in("link", "set", tap, "up")
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait+60*time.Second)
	defer cancel()
	slog, stop := startNetnsServe(t, ctx, ip, "netns", "exec", ns, xpbootBinary, "--log-level", "info", "serve",
		"--image", base, "--overlay-dir", ovDir, "--iqn", "iqn.2026-01.org.xpboot:lab", "--listen", subnet+"1:3260",
		"--interface", "br0", "--no-gateway", "--ipxe-dir", t.TempDir(), "--dhcp", "full",
		"--dhcp-range", subnet+"100-"+subnet+"199", "--state-dir", state)
	pid := findProcess(t, state)

	macs := make([]string, n)
	serials := make([]string, n)
	vms := make([]*exec.Cmd, n)
	vouts := make([]*syncBuffer, n)
	starts := make([]time.Time, n)
	for i := range n {
		macs[i] = fmt.Sprintf("52:54:00:85:00:%02x", i+1)
		serials[i] = filepath.Join(dir, fmt.Sprintf("serial%d.log", i))
		args := append([]string{"netns", "exec", ns, qemuSys, "-machine", "pc", "-m", "32", "-display", "none", "-no-reboot",
			"-boot", "n", "-serial", "file:" + serials[i], "-monitor", "none", "-parallel", "none",
			"-netdev", fmt.Sprintf("tap,id=n0,ifname=tap%d,script=no,downscript=no", i),
			"-device", "e1000,netdev=n0,mac=" + macs[i] + ",romfile=" + e2eROM}, peertest.QEMUAccel()...)
		vm := exec.CommandContext(ctx, ip, args...)
		vouts[i] = &syncBuffer{}
		vm.Stdout, vm.Stderr = vouts[i], vouts[i]
		vm.WaitDelay = 5 * time.Second
		starts[i] = time.Now()
		if err := vm.Start(); err != nil {
			t.Fatal(err)
		}
		vms[i] = vm
		t.Cleanup(func() {
			vm.Process.Kill()
			vm.Wait()
		})
	}

	// Poll the consoles; a client that is done is stopped at once, so the
	// ones still booting get its CPU.
	took := make([]time.Duration, n)
	tokens := make([]string, n)
	var peakRSS int64
	deadline := time.Now().Add(wait)
	for done := 0; done < n; {
		if time.Now().After(deadline) {
			var missing []string
			for i := range n {
				if tokens[i] == "" {
					b, _ := os.ReadFile(serials[i])
					missing = append(missing, fmt.Sprintf("%s (COM1 %q; qemu %q)", macs[i], b, vouts[i].String()))
				}
			}
			t.Fatalf("%d of %d clients reached no marker within %v: %s", len(missing), n, wait, strings.Join(missing, ", "))
		}
		time.Sleep(200 * time.Millisecond)
		if rss := procStatusKB(pid, "VmRSS"); rss > peakRSS {
			peakRSS = rss
		}
		for i := range n {
			if tokens[i] != "" {
				continue
			}
			b, _ := os.ReadFile(serials[i])
			con := string(b)
			if strings.Contains(con, "MISMATCH") || strings.Contains(con, "INT13 ERROR") {
				t.Fatalf("client %s: %q", macs[i], con)
			}
			m := labMarkerRE.FindStringSubmatch(con)
			if m == nil {
				continue
			}
			took[i] = time.Since(starts[i])
			if "SUM="+m[1] != wantSum {
				t.Fatalf("client %s read other data than the base: printed %q, want %s", macs[i], m[0], wantSum)
			}
			tokens[i] = m[2]
			vms[i].Process.Kill()
			done++
		}
	}
	hwm := procStatusKB(pid, "VmHWM")
	cpu := procCPU(pid)
	if err := stop(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	log := slog.String()

	sorted := slices.Clone(took)
	slices.Sort(sorted)
	t.Logf("%d clients, time from QEMU start to marker: median %.1f s, p90 %.1f s, max %.1f s; server peak RSS %d KiB (VmHWM), %d KiB sampled, CPU %.2f s",
		n, percentile(sorted, 50).Seconds(), percentile(sorted, 90).Seconds(), sorted[n-1].Seconds(), hwm, peakRSS, cpu.Seconds())
	if limit := labRSSLimit(n); hwm<<10 > limit {
		t.Errorf("server peak RSS %d KiB exceeds the bound of %d KiB for %d clients", hwm, limit>>10, n)
	}

	if b, _ := os.ReadFile(base); sha256.Sum256(b) != baseHash {
		t.Error("the base image changed")
	}
	seen := map[string]string{}
	for i, mac := range macs {
		if other, dup := seen[tokens[i]]; dup {
			t.Errorf("clients %s and %s printed the same token %s: isolation not shown", other, mac, tokens[i])
		}
		seen[tokens[i]] = mac
		iqn := "iqn.2026-01.org.xpboot:client-" + strings.ReplaceAll(mac, ":", "-")
		ov := filepath.Join(ovDir, overlay.Name(iqn))
		if out, err := peertest.Try(t, time.Minute, qemuImg, "check", "-f", "vmdk", ov); err != nil {
			t.Errorf("qemu-img check %s: %v\n%s", ov, err, out)
			continue
		}
		od, err := vmdk.Open(ov, false)
		if err != nil {
			t.Errorf("overlay of %s: %v", mac, err)
			continue
		}
		sec := make([]byte, 512)
		_, err = od.ReadAt(sec, labDefault.wlba*512)
		od.Close()
		tok, _ := hexToken(tokens[i])
		var want [4]byte
		binary.LittleEndian.PutUint32(want[:], tok)
		if err != nil || !bytes.Equal(sec, bytes.Repeat(want[:], 128)) {
			t.Errorf("overlay %s does not hold client %s's token %s at LBA %d: %x %v", ov, mac, tokens[i], labDefault.wlba, sec[:8], err)
		}
		for _, step := range []string{"state=bound", `msg="iSCSI login"`, `msg="client overlay created"`} {
			if !logHas(log, step, "client="+mac) {
				t.Errorf("no log line with %s for client=%s", step, mac)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(state, "leases-br0.json")); err != nil {
		t.Errorf("lease file: %v", err)
	} else {
		for _, mac := range macs {
			if !strings.Contains(string(b), mac) {
				t.Errorf("lease file lacks %s", mac)
			}
		}
	}
	if ents, _ := os.ReadDir(ovDir); len(ents) < n {
		t.Errorf("%d files in the overlay directory for %d clients", len(ents), n)
	}
}

// logHas reports whether one line of log contains all of parts.
func logHas(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// percentile is the nearest-rank p-th percentile of sorted (not empty).
func percentile(sorted []time.Duration, p int) time.Duration {
	k := (p*len(sorted) + 99) / 100
	return sorted[max(k, 1)-1]
}

// findProcess returns the PID of the one process whose command line
// contains marker (a path unique to this test), which `ip netns exec` has
// become by exec.
func findProcess(t *testing.T, marker string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(marker)) {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d processes name %s, want the one serve: %v", len(found), marker, found)
	}
	return found[0]
}

// procStatusKB reads a "Key: N kB" field of /proc/PID/status (0 if absent).
func procStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// procCPU is the user plus system CPU time of process pid so far, from
// /proc/PID/stat (fields 14 and 15, in USER_HZ ticks, 100 a second on
// Linux); 0 if it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * time.Second / 100
}
