package sanboot

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestStaticPolicy(t *testing.T) {
	yes, no := true, false
	other := Target{Server: "10.77.0.1", IQN: "iqn.2026-01.org.xpboot:win2003"}
	cfg := PolicyConfig{
		Default: testTarget, Images: map[string]Target{"w2k3": other}, Overlay: true, NoGateway: true,
		Clients: []ClientEntry{
			{MAC: "52:54:00:77:00:01", Name: "pc01", Address: "10.77.0.11", Overlay: &no, NoGateway: &no},
			{MAC: "52-54-00-77-00-02", IQN: "iqn.2026-01.org.example:pc02", Image: "w2k3", CHAPUser: "pc02", CHAPSecret: "pc02secret1234", Overlay: &yes},
		},
	}
	p, err := NewStaticPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	tests := []struct {
		mac                    string
		known, overlay, nogw   bool
		iqn, image, addr, user string
		target                 string
	}{
		{"52:54:00:77:00:01", true, false, false, "iqn.2026-01.org.xpboot:client-52-54-00-77-00-01", "", "10.77.0.11", "", testTarget.IQN},
		{"52:54:00:77:00:02", true, true, true, "iqn.2026-01.org.example:pc02", "w2k3", "invalid IP", "pc02", other.IQN},
		{"52:54:00:77:00:03", false, true, true, "iqn.2026-01.org.xpboot:client-52-54-00-77-00-03", "", "invalid IP", "", testTarget.IQN},
	}
	for _, tt := range tests {
		c, err := p.Client(mac(tt.mac))
		if err != nil {
			t.Fatalf("%s: %v", tt.mac, err)
		}
		if c.Known != tt.known || c.Overlay != tt.overlay || c.NoGateway != tt.nogw || c.InitiatorIQN != tt.iqn ||
			c.Image != tt.image || c.Address.String() != tt.addr || c.Target.CHAPUser != tt.user || c.Target.IQN != tt.target {
			t.Errorf("%s: got %+v", tt.mac, c)
		}
	}
	cfg.Unknown = UnknownIgnore
	p, err = NewStaticPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(mac("52:54:00:77:00:03")); !errors.Is(err, ErrIgnoredClient) {
		t.Errorf("unknown client under ignore: %v", err)
	}
	if _, err := p.Client(mac("52:54:00:77:00:01")); err != nil {
		t.Errorf("known client under ignore: %v", err)
	}
}

func TestStaticPolicyErrors(t *testing.T) {
	base := func() PolicyConfig { return PolicyConfig{Default: testTarget} }
	tests := []struct {
		name string
		mod  func(*PolicyConfig)
		want string
	}{
		{"bad unknown rule", func(c *PolicyConfig) { c.Unknown = "maybe" }, "unknown-client"},
		{"bad default", func(c *PolicyConfig) { c.Default.IQN = "" }, "default image"},
		{"bad MAC", func(c *PolicyConfig) { c.Clients = []ClientEntry{{MAC: "nope"}} }, "MAC"},
		{"duplicate MAC", func(c *PolicyConfig) {
			c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01"}, {MAC: "52-54-00-77-00-01"}}
		}, "twice"},
		{"duplicate IQN", func(c *PolicyConfig) {
			c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", IQN: "iqn.x:a"}, {MAC: "52:54:00:77:00:02", IQN: "iqn.x:a"}}
		}, "already used"},
		{"duplicate address", func(c *PolicyConfig) {
			c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", Address: "10.0.0.5"}, {MAC: "52:54:00:77:00:02", Address: "10.0.0.5"}}
		}, "already given"},
		{"bad address", func(c *PolicyConfig) { c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", Address: "fe80::1"}} }, "IPv4"},
		{"no image", func(c *PolicyConfig) { c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", Image: "nt4"}} }, "no image"},
		{"short client secret", func(c *PolicyConfig) {
			c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", CHAPUser: "u", CHAPSecret: "short"}}
		}, "at least 12"},
		{"boot file outside the TFTP root", func(c *PolicyConfig) {
			c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", BootFile: "../etc/passwd"}}
		}, "boot file"},
		{"absolute boot file", func(c *PolicyConfig) {
			c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", BootFile: "/boot/vmlinuz"}}
		}, "boot file"},
		{"boot file iPXE would split", func(c *PolicyConfig) { c.Clients = []ClientEntry{{MAC: "52:54:00:77:00:01", BootFile: "a b.ipxe"}} }, "boot file"},
	}
	for _, tt := range tests {
		c := base()
		tt.mod(&c)
		if _, err := NewStaticPolicy(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestClientByIQN(t *testing.T) {
	p := testPolicy(t, UnknownServe, ClientEntry{MAC: "52:54:00:77:00:01", IQN: "iqn.2026-01.org.example:pc01"},
		ClientEntry{MAC: "52:54:00:77:00:02"})
	tests := []struct {
		iqn, mac string
		ok       bool
	}{
		{"iqn.2026-01.org.example:pc01", "52:54:00:77:00:01", true},
		{"iqn.2026-01.org.xpboot:client-52-54-00-77-00-02", "52:54:00:77:00:02", true},
		{"iqn.2026-01.org.xpboot:client-52-54-00-77-00-09", "52:54:00:77:00:09", true},
		// A listed client with its own IQN cannot log in under the default form.
		{"iqn.2026-01.org.xpboot:client-52-54-00-77-00-01", "", false},
		{"iqn.2010-04.org.ipxe:00000000-0000-0000-0000-000000000000", "", false},
		{"iqn.2026-01.org.xpboot:client-zz", "", false},
	}
	for _, tt := range tests {
		c, err := p.ClientByIQN(tt.iqn)
		if tt.ok != (err == nil) || tt.ok && c.MAC.String() != tt.mac {
			t.Errorf("ClientByIQN(%s) = %v %v", tt.iqn, c.MAC, err)
		}
		if !tt.ok && !errors.Is(err, ErrIgnoredClient) {
			t.Errorf("ClientByIQN(%s) error %v, want ErrIgnoredClient", tt.iqn, err)
		}
	}
	ign := testPolicy(t, UnknownIgnore)
	if _, err := ign.ClientByIQN("iqn.2026-01.org.xpboot:client-52-54-00-77-00-09"); !errors.Is(err, ErrIgnoredClient) {
		t.Errorf("unknown client under ignore: %v", err)
	}
}

// TestAuthorizeISCSI: a client may log in to its own image's target only;
// initiator names the policy did not hand out follow the unknown-client
// rule (the default target under serve, nothing under ignore).
func TestAuthorizeISCSI(t *testing.T) {
	other := Target{Server: "10.77.0.1", IQN: "iqn.2026-01.org.xpboot:win2003"}
	build := func(unknown UnknownClients) *StaticPolicy {
		p, err := NewStaticPolicy(PolicyConfig{Default: testTarget, Images: map[string]Target{"w2k3": other}, Unknown: unknown,
			Clients: []ClientEntry{
				{MAC: "52:54:00:77:00:01", IQN: "iqn.2026-01.org.example:pc01"},
				{MAC: "52:54:00:77:00:02", IQN: "iqn.2026-01.org.example:pc02", Image: "w2k3"},
			}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	serve, ignore := build(UnknownServe), build(UnknownIgnore)
	const stranger = "iqn.2010-04.org.ipxe:00000000-0000-0000-0000-000000000000"
	unlisted := "iqn.2026-01.org.xpboot:client-52-54-00-77-00-09"
	tests := []struct {
		p                 *StaticPolicy
		initiator, target string
		ok                bool
		mac, why          string
	}{
		{serve, "iqn.2026-01.org.example:pc01", testTarget.IQN, true, "52:54:00:77:00:01", ""},
		{serve, "iqn.2026-01.org.example:pc01", strings.ToUpper(testTarget.IQN), true, "52:54:00:77:00:01", ""},
		{serve, "iqn.2026-01.org.example:pc01", other.IQN, false, "52:54:00:77:00:01", "client 52:54:00:77:00:01 (initiator iqn.2026-01.org.example:pc01) may use target " + testTarget.IQN + " only"},
		{serve, "iqn.2026-01.org.example:pc02", other.IQN, true, "52:54:00:77:00:02", ""},
		{serve, "iqn.2026-01.org.example:pc02", testTarget.IQN, false, "52:54:00:77:00:02", "may use target " + other.IQN + " only"},
		{serve, unlisted, testTarget.IQN, true, "52:54:00:77:00:09", ""},
		{serve, unlisted, other.IQN, false, "52:54:00:77:00:09", "may use target " + testTarget.IQN + " only"},
		{serve, stranger, testTarget.IQN, true, "", ""},
		{serve, stranger, other.IQN, false, "", "unknown clients may use the default target " + testTarget.IQN + " only"},
		{ignore, "iqn.2026-01.org.example:pc02", other.IQN, true, "52:54:00:77:00:02", ""},
		{ignore, unlisted, testTarget.IQN, false, "", "unknown clients are ignored"},
		{ignore, stranger, testTarget.IQN, false, "", "unknown clients are ignored"},
	}
	for _, tt := range tests {
		c, err := tt.p.AuthorizeISCSI(tt.initiator, tt.target)
		if (err == nil) != tt.ok || c.MAC.String() != tt.mac {
			t.Errorf("AuthorizeISCSI(%s, %s) = %v, %v; want ok %v, client %q", tt.initiator, tt.target, c.MAC, err, tt.ok, tt.mac)
			continue
		}
		if err != nil && (!errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), tt.why)) {
			t.Errorf("AuthorizeISCSI(%s, %s) error %q, want ErrNotAuthorized and %q", tt.initiator, tt.target, err, tt.why)
		}
	}
}
