package sanboot

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

const probeHelperEnv = "XPBOOT_SANBOOT_PROBE_HELPER"

// TestProbeDHCP finds a dnsmasq DHCP server across a veth from a namespace
// the test creates, and finds nothing on a link without one. The probing
// half re-runs this test binary inside the namespace.
func TestProbeDHCP(t *testing.T) {
	if os.Getenv(probeHelperEnv) != "" {
		probeHelper(t)
		return
	}
	t.Parallel()
	peertest.NeedRoot(t, "creates network namespaces")
	ip := peertest.Need(t, "ip", "iproute2")
	dnsmasq := peertest.Need(t, "dnsmasq", "dnsmasq-base")
	ns, router := fmt.Sprintf("xpbpr%d", os.Getpid()), fmt.Sprintf("xpbpr%dr", os.Getpid())
	for _, n := range []string{ns, router} {
		peertest.Run(t, 10*time.Second, ip, "netns", "add", n)
		t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", n) })
	}
	in := func(n string, args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", n, "ip"}, args...)...)
	}
	in(ns, "link", "add", "vm", "type", "veth", "peer", "name", "vr")
	in(ns, "link", "set", "vr", "netns", router)
	in(ns, "link", "set", "vm", "up")
	in(ns, "link", "add", "e0", "type", "veth", "peer", "name", "e1") // a link with no server
	in(ns, "link", "set", "e0", "up")
	in(ns, "link", "set", "e1", "up")
	in(router, "addr", "add", "10.78.0.254/24", "dev", "vr")
	in(router, "link", "set", "vr", "up")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := exec.CommandContext(ctx, ip, "netns", "exec", router, dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--port=0", "--user=root", "--interface=vr", "--bind-interfaces",
		"--dhcp-range=10.78.0.160,10.78.0.200,255.255.255.0,1h",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"), "--log-facility=-")
	var dlog syncBuffer
	d.Stdout, d.Stderr = &dlog, &dlog
	d.WaitDelay = 5 * time.Second
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); d.Wait() }()
	exe, _ := os.Executable()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, exe, "-test.run=^TestProbeDHCP$", "-test.v", "-test.timeout=50s")
	cmd.Env = append(os.Environ(), probeHelperEnv+"=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestProbeDHCP") {
		t.Fatalf("probe helper failed: %v\n%s\ndnsmasq:\n%s", err, out, dlog.String())
	}
}

func probeHelper(t *testing.T) {
	probe := net.HardwareAddr{0x02, 0x78, 0x70, 0x62, 0x6f, 0x6f}
	ctx := context.Background()
	var got net.IP
	var err error
	// dnsmasq may still be starting: give it a few tries.
	for range 5 {
		if got, err = ProbeDHCP(ctx, "vm", probe, 2*time.Second); err != nil || got != nil {
			break
		}
	}
	if err != nil || !got.Equal(net.IPv4(10, 78, 0, 254)) {
		t.Errorf("probe on vm = %v, %v; want 10.78.0.254", got, err)
	}
	start := time.Now()
	got, err = ProbeDHCP(ctx, "e0", probe, time.Second)
	if err != nil || got != nil {
		t.Errorf("probe on e0 = %v, %v; want nothing", got, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("empty probe took %v", time.Since(start))
	}
	if _, err := ProbeDHCP(ctx, "nosuchif", probe, time.Second); err == nil {
		t.Error("probe on a missing interface succeeded")
	}
}
