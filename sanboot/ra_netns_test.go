package sanboot

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

const raHelperEnv = "XPBOOT_SANBOOT_RA_HELPER"

// TestRouterAdvertiserNetns runs the advertiser on real raw ICMPv6 sockets:
// in a network namespace the test creates, a veth pair joins "srv" (the
// advertiser) and "cli" (a client socket). The client's router solicitation
// must be answered with an RA from srv's link-local address, hop limit 255,
// lifetime 0, no flags, no prefix and srv's MAC, and the answer must be
// logged under the client's MAC.
func TestRouterAdvertiserNetns(t *testing.T) {
	if os.Getenv(raHelperEnv) != "" {
		raHelper(t)
		return
	}
	peertest.NeedRoot(t, "creates a network namespace and raw sockets")
	ip := peertest.Need(t, "ip", "iproute2")
	sysctl := peertest.Need(t, "sysctl", "procps")
	ns := "xpbra" + strings.TrimLeft(time.Now().Format(".000000"), ".")
	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(name string, args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, name}, args...)...)
	}
	in("ip", "link", "set", "lo", "up")
	in("ip", "link", "add", "srv", "type", "veth", "peer", "name", "cli")
	// No duplicate address detection: the link-local addresses are usable
	// at once (the advertiser copes without, but the test is shorter).
	for _, d := range []string{"srv", "cli"} {
		in(sysctl, "-qw", "net.ipv6.conf."+d+".accept_dad=0")
		in("ip", "link", "set", d, "up")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, exe, "-test.run=^TestRouterAdvertiserNetns$", "-test.v", "-test.timeout=50s")
	cmd.Env = append(os.Environ(), raHelperEnv+"=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRouterAdvertiserNetns") {
		t.Fatalf("helper in the namespace failed: %v\n%s", err, out)
	}
	t.Logf("helper:\n%s", out)
}

func raHelper(t *testing.T) {
	srv, err := ListenNDP("srv")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := ListenNDP("cli")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srvLL, ok := srv.LinkLocal()
	if !ok {
		t.Fatal("srv has no link-local address")
	}
	ev := NewEventLog(nil, 10)
	var events []string
	done := make(chan struct{}, 1)
	ev.Watch(func(e Event) {
		events = append(events, e.Client+" "+e.Proto+" "+e.State.String())
		select {
		case done <- struct{}{}:
		default:
		}
	})
	ra := NewRouterAdvertiser(RAConfig{Interface: "srv", MaxDelay: -1, Events: ev})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- ra.Serve(ctx, srv) }()

	rs := []byte{ICMPv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0, ndpOptSourceLinkAddr, 1}
	rs = append(rs, cli.HardwareAddr()...)
	if err := cli.WriteNDP(rs, allRouters); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, src, hops, err := cli.ReadNDP(buf)
		if err != nil {
			t.Fatalf("no router advertisement: %v", err)
		}
		if n == 0 || buf[0] != ICMPv6RouterAdvertisement {
			continue
		}
		got, err := ParseRouterAdvertisement(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("RA from %s hop limit %d: %+v", src, hops, got)
		if src != srvLL || hops != 255 || got.RouterLifetime != 0 || got.Flags != 0 || got.Prefixes != 0 ||
			!bytes.Equal(got.SourceLinkAddr, srv.HardwareAddr()) {
			// The first RA may be the unsolicited one; it must look the same.
			t.Fatalf("RA from %s hop limit %d: %+v; want from %s, 255, lifetime 0, no flags, no prefix, MAC %s",
				src, hops, got, srvLL, srv.HardwareAddr())
		}
		break
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the answer was not logged")
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if want := cli.HardwareAddr().String() + " ipv6-ra ipv6-ra"; len(events) == 0 || events[0] != want {
		t.Errorf("events %v, want %q", events, want)
	}
}
