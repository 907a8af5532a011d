package sanboot

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	from, to, err := ParseRange("10.0.0.100-10.0.0.199")
	if err != nil || from != a("10.0.0.100") || to != a("10.0.0.199") {
		t.Fatalf("got %v %v %v", from, to, err)
	}
	for _, bad := range []string{"", "10.0.0.1", "10.0.0.9-10.0.0.1", "10.0.0.1-x", "::1-::2"} {
		if _, _, err := ParseRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestInterfaceIPv4(t *testing.T) {
	ip, mask, err := InterfaceIPv4("lo")
	if err != nil {
		t.Skipf("no loopback IPv4: %v", err)
	}
	if !ip.IsLoopback() || len(mask) != 4 {
		t.Errorf("lo: %v %v", ip, mask)
	}
	if _, _, err := InterfaceIPv4("xpb-no-such-if0"); err == nil {
		t.Error("missing interface accepted")
	}
}

// TestNewNetbootErrors checks the configuration errors NewNetboot reports
// before it opens any socket.
func TestNewNetbootErrors(t *testing.T) {
	p := PolicyConfig{Default: Target{IQN: "iqn.2026-01.org.xpboot:disk"}}
	cases := []struct {
		cfg  ServeConfig
		want string
	}{
		{ServeConfig{Mode: ModeOff, Interface: "lo", Policy: p}, "want full or proxy"},
		{ServeConfig{Mode: ModeFull, Policy: p}, "--interface"},
		{ServeConfig{Mode: ModeFull, Interface: "xpb-no-such-if0", Policy: p}, "xpb-no-such-if0"},
		{ServeConfig{Mode: ModeFull, Interface: "lo", ServerIP: net.IPv4(192, 0, 2, 1), Policy: p}, "not on interface lo"},
		{ServeConfig{Mode: ModeFull, Interface: "lo", ServerIP: net.IPv4(127, 0, 0, 1), Policy: p}, "--dhcp-range"},
		{ServeConfig{Mode: ModeFull, Interface: "lo", ServerIP: net.IPv4(127, 0, 0, 1), RangeStart: a("10.0.0.1"), RangeEnd: a("10.0.0.9"), Policy: p}, "outside the server's subnet"},
		{ServeConfig{Mode: ModeProxy, Interface: "lo", ServerIP: net.IPv4(127, 0, 0, 1), Policy: PolicyConfig{Default: Target{IQN: "iqn.x:y", CHAPUser: "u", CHAPSecret: "short"}}}, "at least 12"},
		{ServeConfig{Mode: ModeProxy, Interface: "lo", ServerIP: net.IPv4(127, 0, 0, 1), Policy: p, IPXEDir: "/nonexistent/xpboot-ipxe"}, "iPXE directory"},
	}
	for _, tc := range cases {
		n, err := NewNetboot(context.Background(), tc.cfg)
		if err == nil {
			n.Close()
			t.Errorf("%+v: accepted", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestISCSIClient names iSCSI connections by the MAC behind the address or
// the initiator IQN.
func TestISCSIClient(t *testing.T) {
	p := testPolicy(t, UnknownServe, ClientEntry{MAC: "52:54:00:00:00:07", IQN: "iqn.2026-01.org.example:pc7"})
	n := &Netboot{Events: NewEventLog(nil, 0), Policy: p}
	mac, _ := net.ParseMAC("52:54:00:00:00:01")
	n.Events.Bind(net.IPv4(10, 0, 0, 100), mac)
	for _, tc := range []struct {
		ip, iqn, want string
	}{
		{"10.0.0.100", "", "52:54:00:00:00:01"},
		{"10.0.0.101", "iqn.2026-01.org.example:pc7", "52:54:00:00:00:07"},
		{"10.0.0.102", DefaultIQNPrefix + "52-54-00-00-00-09", "52:54:00:00:00:09"},
		{"10.0.0.103", "iqn.2010-04.org.ipxe:whatever", "10.0.0.103"},
	} {
		got := n.ISCSIClient(&net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 4000}, tc.iqn)
		if got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.ip, tc.iqn, got, tc.want)
		}
	}
}
