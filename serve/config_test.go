package serve

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

const testIQN = "iqn.2026-01.org.xpboot:disk"

func acct(u, s string) iscsitarget.Account { return iscsitarget.Account{User: u, Secret: []byte(s)} }

// baseConfig is a valid one-target configuration; with changes it a case.
func baseConfig() Config {
	return Config{Targets: []iscsitarget.FileTarget{{
		Name: testIQN,
		LUNs: []iscsitarget.FileLUN{{Number: 0, Path: "/srv/disk.img"}},
		Auth: iscsitarget.Auth{Incoming: []iscsitarget.Account{acct("pcuser", "pcsecret12345")}},
	}}}
}

func proxy(c *Config) {
	c.Netboot = Netboot{Mode: sanboot.ModeProxy, Interface: "eth1"}
}

func TestConfigValidate(t *testing.T) {
	no := false
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"valid proxy", proxy, ""},
		{"valid full", func(c *Config) {
			c.Netboot = Netboot{Mode: sanboot.ModeFull, Interface: "eth1", RangeStart: netip.MustParseAddr("10.0.0.100"), RangeEnd: netip.MustParseAddr("10.0.0.199")}
		}, ""},
		{"mode off is no DHCP", func(c *Config) { c.Netboot = Netboot{Mode: sanboot.ModeOff, Interface: "ignored"} }, ""},
		{"no targets", func(c *Config) { c.Targets = nil }, "no targets"},
		{"bad name", func(c *Config) { c.Targets[0].Name = "disk" }, "not an iqn., eui. or naa. name"},
		{"white space in name", func(c *Config) { c.Targets[0].Name = testIQN + " x" }, "not an iSCSI name"},
		{"same target twice", func(c *Config) {
			c.Targets = append(c.Targets, c.Targets[0])
			c.Targets[1].Name = strings.ToUpper(testIQN)
		}, "configured twice"},
		{"no LUNs", func(c *Config) { c.Targets[0].LUNs = nil }, "no LUNs"},
		{"LUN too high", func(c *Config) { c.Targets[0].LUNs[0].Number = 16384 }, "0..16383"},
		{"LUN twice", func(c *Config) { c.Targets[0].LUNs = append(c.Targets[0].LUNs, c.Targets[0].LUNs[0]) }, "LUN 0 configured twice"},
		{"no path", func(c *Config) { c.Targets[0].LUNs[0].Path = "" }, "no image path"},
		{"read-only with overlays", func(c *Config) { c.OverlayDir = "/ov"; c.Targets[0].LUNs[0].ReadOnly = true }, "exclude each other"},
		{"LUN iPXE cannot boot", func(c *Config) { proxy(c); c.Targets[0].LUNs[0].Number = 300 }, "iPXE boots LUNs 0..255 only"},
		{"LUN 300 without DHCP", func(c *Config) { c.Targets[0].LUNs[0].Number = 300 }, ""},
		// The one secret rule, everywhere: 12 to 16 characters.
		{"short secret", func(c *Config) { c.Targets[0].Auth.Incoming[0] = acct("u", "short") }, "at least 12"},
		{"long secret", func(c *Config) { c.Targets[0].Auth.Incoming[0] = acct("u", "seventeen-chars-x") }, "at most 16"},
		{"short mutual secret", func(c *Config) { o := acct("t", "short"); c.Targets[0].Auth.Outgoing = &o }, "mutual CHAP secret"},
		{"short discovery secret", func(c *Config) { c.Discovery.Incoming = []iscsitarget.Account{acct("d", "short")} }, "discovery"},
		{"empty user", func(c *Config) { c.Targets[0].Auth.Incoming[0].User = "" }, "without a user name"},
		{"user twice", func(c *Config) {
			c.Targets[0].Auth.Incoming = append(c.Targets[0].Auth.Incoming, acct("pcuser", "othersecret12"))
		}, "listed twice"},
		{"same secret both ways", func(c *Config) { o := acct("t", "pcsecret12345"); c.Targets[0].Auth.Outgoing = &o }, "equals the outgoing secret"},
		{"mutual without one-way", func(c *Config) {
			o := acct("t", "targetsecret99")
			c.Targets[0].Auth = iscsitarget.Auth{Outgoing: &o}
		}, "one-way"},
		{"require mutual without account", func(c *Config) { c.Targets[0].Auth.RequireMutual = true }, "requires mutual CHAP"},
		{"hooks in tuning", func(c *Config) {
			c.Tuning.CHAPSecret = func(iscsitarget.ConnMeta, string) ([]byte, error) { return nil, nil }
		}, "serve sets them"},
		// DHCP settings.
		{"bad mode", func(c *Config) { c.Netboot = Netboot{Mode: "on", Interface: "eth1"} }, "want off, full or proxy"},
		{"no interface", func(c *Config) { c.Netboot = Netboot{Mode: sanboot.ModeFull} }, "needs --interface"},
		{"full without range", func(c *Config) { c.Netboot = Netboot{Mode: sanboot.ModeFull, Interface: "eth1"} }, "needs --dhcp-range"},
		{"range in proxy", func(c *Config) {
			proxy(c)
			c.Netboot.RangeStart, c.Netboot.RangeEnd = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.9")
		}, "full only"},
		{"range backwards", func(c *Config) {
			c.Netboot = Netboot{Mode: sanboot.ModeFull, Interface: "eth1", RangeStart: netip.MustParseAddr("10.0.0.9"), RangeEnd: netip.MustParseAddr("10.0.0.1")}
		}, "low to high"},
		{"router in proxy", func(c *Config) { proxy(c); c.Netboot.Router = net.IPv4(10, 0, 0, 1) }, "--router applies to --dhcp full only"},
		{"dns in proxy", func(c *Config) { proxy(c); c.Netboot.DNS = []net.IP{net.IPv4(10, 0, 0, 1)} }, "--dns applies to --dhcp full only"},
		{"IPv6 server", func(c *Config) { proxy(c); c.Netboot.ServerIP = net.ParseIP("fe80::1") }, "not IPv4"},
		{"unknown rule", func(c *Config) { proxy(c); c.Netboot.Unknown = "maybe" }, "want serve or ignore"},
		// Clients' credentials.
		{"client secret without user", func(c *Config) {
			proxy(c)
			c.Netboot.Clients = []sanboot.ClientEntry{{MAC: "52:54:00:00:00:01", CHAPSecret: "pcsecret12345"}}
		}, "chap_secret without chap_user"},
		{"client user unknown", func(c *Config) {
			proxy(c)
			c.Netboot.Clients = []sanboot.ClientEntry{{MAC: "52:54:00:00:00:01", CHAPUser: "nobody"}}
		}, "not a user of"},
		{"client image unknown", func(c *Config) {
			proxy(c)
			c.Netboot.Clients = []sanboot.ClientEntry{{MAC: "52:54:00:00:00:01", Image: "iqn.2026-01.org.xpboot:nt4", CHAPUser: "pcuser"}}
		}, "not a served target"},
		{"client's own short secret", func(c *Config) {
			proxy(c)
			c.Netboot.Clients = []sanboot.ClientEntry{{MAC: "52:54:00:00:00:01", CHAPUser: "own", CHAPSecret: "short"}}
		}, "at least 12"},
		{"client's own account", func(c *Config) {
			proxy(c)
			c.Netboot.Clients = []sanboot.ClientEntry{{MAC: "52:54:00:00:00:01", CHAPUser: "own", CHAPSecret: "ownsecret1234", Overlay: &no}}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want == "":
			case err == nil || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			case !errors.Is(err, ErrConfig):
				t.Fatalf("Validate() = %v, not ErrConfig", err)
			}
		})
	}
}

// TestPrepareMergesClients: a client naming a user of its target without a
// secret gets that user's secret, a client with its own account adds it to
// its target, a differing secret is noted for the warning, and the
// caller's Config stays as it was.
func TestPrepareMergesClients(t *testing.T) {
	c := baseConfig()
	c.Targets = append(c.Targets, iscsitarget.FileTarget{Name: "iqn.2026-01.org.xpboot:b", LUNs: []iscsitarget.FileLUN{{Path: "/srv/b.img"}}})
	proxy(&c)
	c.Netboot.Clients = []sanboot.ClientEntry{
		{MAC: "52:54:00:00:00:01", CHAPUser: "pcuser"},
		{MAC: "52:54:00:00:00:02", Image: "iqn.2026-01.org.xpboot:b", CHAPUser: "pc02", CHAPSecret: "pc02secret1234"},
		{MAC: "52:54:00:00:00:03", CHAPUser: "pcuser", CHAPSecret: "wrongsecret123"},
	}
	p, err := c.prepare()
	if err != nil {
		t.Fatal(err)
	}
	if p.clients[0].CHAPSecret != "pcsecret12345" {
		t.Errorf("client 1 secret %q, want the target's", p.clients[0].CHAPSecret)
	}
	if in := p.targets[1].Auth.Incoming; len(in) != 1 || in[0].User != "pc02" {
		t.Errorf("target b accounts %v, want pc02 added", in)
	}
	if len(p.differs) != 1 || p.differs[0] != [3]string{"52:54:00:00:00:03", "pcuser", testIQN} {
		t.Errorf("differs %v", p.differs)
	}
	if c.Netboot.Clients[0].CHAPSecret != "" || len(c.Targets[1].Auth.Incoming) != 0 {
		t.Error("prepare changed the caller's Config")
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{"": ":3260", "127.0.0.1": "127.0.0.1:3260", ":3261": ":3261", "[::1]": "[::1]:3260", "[::1]:0": "[::1]:0"} {
		if got := listenAddr(in); got != want {
			t.Errorf("listenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
