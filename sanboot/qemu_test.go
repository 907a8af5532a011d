package sanboot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

const (
	qemuHelperEnv = "XPBOOT_SANBOOT_NETNS_HELPER" // set to the mode inside the namespace
	qemuROM       = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
	qemuMAC       = "52:54:00:77:00:01"
	qemuMarker    = "xpboot: SAN boot of iqn.2026-01.org.xpboot:disk failed"
)

// TestQEMUiPXE boots QEMU's own iPXE ROM (Debian ipxe-qemu, e1000) against
// this package's DHCP and TFTP servers inside network namespaces the test
// creates, in two topologies:
//
//   - full: xpboot is the only DHCP server on tap0;
//   - proxy: a "router" namespace runs dnsmasq as the plain DHCP server,
//     joined by a veth to a bridge that holds tap0 and xpboot's proxy.
//
// Either way iPXE must be recognised as iPXE, receive its per-client script
// name, fetch the generated script by TFTP and run it. There is no iSCSI
// target here (that is package iscsitarget's job), so the script's sanboot
// fails, and the script's own failure line is the marker proving that iPXE
// ran every line before it (initiator-iqn, credentials, clearing the
// gateway).
//
// The test re-runs its own binary under `ip netns exec`, so that every
// socket (including pin/tftp's per-transfer sockets) lives in the
// namespace; the outer half creates the namespaces and always deletes them.
func TestQEMUiPXE(t *testing.T) {
	if scenario := os.Getenv(qemuHelperEnv); scenario != "" {
		qemuHelper(t, scenario)
		return
	}
	t.Parallel()
	peertest.NeedRoot(t, "creates network namespaces and a tap device")
	ip := peertest.Need(t, "ip", "iproute2")
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	peertest.NeedFile(t, qemuROM, "ipxe-qemu")
	for _, scenario := range []string{"full", "proxy", "rootpath"} {
		mode := ModeFull
		if scenario == "proxy" {
			mode = ModeProxy
		}
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			ns := fmt.Sprintf("xpbsb%d%s", os.Getpid(), scenario[:2])
			netns := func(name string) {
				peertest.Run(t, 10*time.Second, ip, "netns", "add", name)
				t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", name) })
				peertest.Run(t, 10*time.Second, ip, "netns", "exec", name, "ip", "link", "set", "lo", "up")
			}
			in := func(name string, args ...string) {
				peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", name, "ip"}, args...)...)
			}
			netns(ns)
			in(ns, "tuntap", "add", "tap0", "mode", "tap")
			if mode == ModeFull {
				in(ns, "addr", "add", "10.77.0.1/24", "dev", "tap0")
				in(ns, "link", "set", "tap0", "up")
			} else {
				dnsmasq := peertest.Need(t, "dnsmasq", "dnsmasq-base")
				router := ns + "r"
				netns(router)
				in(ns, "link", "add", "br0", "type", "bridge")
				in(ns, "addr", "add", "10.77.0.1/24", "dev", "br0")
				in(ns, "link", "set", "br0", "up")
				in(ns, "link", "set", "tap0", "master", "br0")
				in(ns, "link", "set", "tap0", "up")
				in(ns, "link", "add", "vm", "type", "veth", "peer", "name", "vr")
				in(ns, "link", "set", "vm", "master", "br0")
				in(ns, "link", "set", "vm", "up")
				in(ns, "link", "set", "vr", "netns", router)
				in(router, "addr", "add", "10.77.0.254/24", "dev", "vr")
				in(router, "link", "set", "vr", "up")
				dir := t.TempDir()
				ctx, cancel := context.WithCancel(context.Background())
				cmd := exec.CommandContext(ctx, ip, "netns", "exec", router, dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
					"--no-resolv", "--no-hosts", "--port=0", "--user=root", "--interface=vr", "--bind-interfaces",
					"--dhcp-range=10.77.0.160,10.77.0.200,255.255.255.0,1h", "--dhcp-option=3,10.77.0.254",
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
			exe, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, exe, "-test.run=^TestQEMUiPXE$", "-test.v", "-test.timeout=160s")
			cmd.Env = append(os.Environ(), qemuHelperEnv+"="+scenario)
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestQEMUiPXE") {
				t.Fatalf("helper in the namespace failed: %v\n%s", err, out)
			}
			t.Logf("helper:\n%s", out)
		})
	}
}

// qemuHelper runs inside the namespace: servers on the link, QEMU on tap0,
// and a TCP listener on the iSCSI port that records iPXE's first login
// request (initiator name, target name, auth methods) and hangs up.
func qemuHelper(t *testing.T, scenario string) {
	mode := ModeFull
	if scenario == "proxy" {
		mode = ModeProxy
	}
	marker := qemuMarker
	if scenario == "rootpath" {
		marker = "Could not open SAN device"
	}
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() { t.Logf("server log:\n%s", logs.String()) }()
	ev := NewEventLog(log, 20)
	p := testPolicy(t, UnknownIgnore, ClientEntry{MAC: qemuMAC, Name: "xpbvm", NoGateway: ptr(true)})
	cfg := DHCPConfig{Mode: mode, Policy: p, Events: ev, Script: scenario != "rootpath", Network: Network{ServerIP: net.IPv4(10, 77, 0, 1)}}
	link := "br0"
	if mode == ModeFull {
		link = "tap0"
		l, err := OpenLeases(LeaseConfig{Start: a("10.77.0.100"), End: a("10.77.0.110"), Reserved: p.Reserved()})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Leases = l
		cfg.Network = Network{ServerIP: net.IPv4(10, 77, 0, 1), Netmask: net.CIDRMask(24, 32), Router: net.IPv4(10, 77, 0, 254), LeaseTime: time.Hour}
	}
	dhcp, err := NewDHCPServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tftpSrv, err := NewTFTPServer(TFTPConfig{Root: t.TempDir(), Policy: p, Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{DHCP: dhcp, TFTP: tftpSrv}
	if srv.DHCPConn, err = ListenDHCP(link, 67); err != nil {
		t.Fatal(err)
	}
	defer srv.DHCPConn.Close()
	if mode == ModeProxy {
		if srv.PXEConn, err = ListenDHCP(link, PXEPort); err != nil {
			t.Fatal(err)
		}
		defer srv.PXEConn.Close()
	}
	if srv.TFTPConn, err = net.ListenPacket("udp4", "10.77.0.1:69"); err != nil {
		t.Fatal(err)
	}
	iscsi, err := net.Listen("tcp4", "10.77.0.1:3260")
	if err != nil {
		t.Fatal(err)
	}
	defer iscsi.Close()
	login := make(chan map[string]string, 1)
	go func() { login <- readLogin(iscsi) }()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("server: %v", err)
		}
	}()

	qargs := append([]string{"-machine", "pc", "-m", "64", "-nographic", "-no-reboot",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "e1000,netdev=n0,mac=" + qemuMAC + ",romfile=" + qemuROM, "-boot", "n"}, peertest.QEMUAccel()...)
	cmd := exec.CommandContext(ctx, qemu, qargs...)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	found := make(chan bool, 1)
	var console syncBuffer
	go func() {
		r := bufio.NewReader(stdout)
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			console.Write(buf[:n])
			if strings.Contains(console.String(), marker) {
				found <- true
				io.Copy(io.Discard, r)
				return
			}
			if err != nil {
				found <- false
				return
			}
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatalf("QEMU ended without the marker; console:\n%s", console.String())
		}
	case <-ctx.Done():
		cmd.Process.Kill()
		<-found
		t.Fatalf("no marker within the time limit; console:\n%s", console.String())
	}
	con := strings.ToValidUTF8(console.String(), "?")
	t.Logf("console:\n%s", con)
	// The server saw the whole story, under the client's MAC.
	var states []string
	for _, e := range ev.Events(qemuMAC) {
		states = append(states, e.Proto+":"+e.State.String())
	}
	got := strings.Join(states, " ")
	want := []string{"dhcp:offered", "dhcp:bound", "dhcp:sanboot", "tftp:tftp-start", "tftp:tftp-done"}
	if scenario == "rootpath" {
		want = []string{"dhcp:offered", "dhcp:bound", "dhcp:sanboot"}
	}
	if mode == ModeProxy {
		want = []string{"proxydhcp:proxy-offered", "tftp:tftp-start", "tftp:tftp-done"}
		// The address came from the router's dnsmasq, not from us.
		m := regexp.MustCompile(`net0: 10\.77\.0\.(\d+)/`).FindStringSubmatch(con)
		if len(m) < 2 {
			t.Errorf("no IPv4 address on the console")
		} else if n, _ := strconv.Atoi(m[1]); n < 160 || n > 200 {
			t.Errorf("address %v not from the router's range 10.77.0.160-200", m)
		}
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("events lack %s: %s", w, got)
		}
	}
	if scenario != "rootpath" && !strings.Contains(con, "xpboot-52-54-00-77-00-01.ipxe") {
		t.Error("iPXE did not name the per-client script")
	}
	// What iPXE's initiator sent proves that the initiator IQN (option 203
	// or the script), the target from the root-path and the CHAP user
	// (175.190 or the script) all reached it.
	var keys map[string]string
	select {
	case keys = <-login:
	case <-time.After(5 * time.Second):
		t.Fatal("no iSCSI login reached the listener")
	}
	t.Logf("iSCSI login keys: %v", keys)
	if keys["InitiatorName"] != "iqn.2026-01.org.xpboot:client-52-54-00-77-00-01" || keys["TargetName"] != "iqn.2026-01.org.xpboot:disk" ||
		!strings.HasPrefix(keys["AuthMethod"], "CHAP") {
		t.Errorf("login keys %v", keys)
	}
}

// readLogin accepts one connection, reads one iSCSI PDU (a Login Request:
// 48-byte header, then the data segment of key=value pairs) and closes.
func readLogin(l net.Listener) map[string]string {
	c, err := l.Accept()
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	bhs := make([]byte, 48)
	if _, err := io.ReadFull(c, bhs); err != nil || bhs[0]&0x3f != 0x03 {
		return map[string]string{"error": fmt.Sprintf("not a login request: % x %v", bhs[:1], err)}
	}
	ahs := int(bhs[4]) * 4
	n := int(bhs[5])<<16 | int(bhs[6])<<8 | int(bhs[7])
	data := make([]byte, ahs+n)
	if _, err := io.ReadFull(c, data); err != nil {
		return map[string]string{"error": err.Error()}
	}
	keys := map[string]string{}
	for _, kv := range strings.Split(string(data[ahs:]), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			keys[k] = v
		}
	}
	return keys
}
