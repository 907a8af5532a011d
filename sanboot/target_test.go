package sanboot

import (
	"errors"
	"strings"
	"testing"
)

func TestRootPath(t *testing.T) {
	tests := []struct {
		name string
		t    Target
		want string
	}{
		{"defaults", Target{Server: "10.0.0.1", IQN: "iqn.2026-01.org.xpboot:disk"}, "iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk"},
		{"default port is empty", Target{Server: "10.0.0.1", Port: 3260, IQN: "iqn.x:d"}, "iscsi:10.0.0.1::::iqn.x:d"},
		{"port", Target{Server: "10.0.0.1", Port: 3261, IQN: "iqn.x:d"}, "iscsi:10.0.0.1::3261::iqn.x:d"},
		{"LUN is hex", Target{Server: "san", IQN: "iqn.x:d", LUN: 26}, "iscsi:san:::1a:iqn.x:d"},
		{"tgt LUN 1", Target{Server: "10.77.0.1", IQN: "iqn.2024-01.test.xpboot:disk1", LUN: 1}, "iscsi:10.77.0.1:::1:iqn.2024-01.test.xpboot:disk1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.RootPath(); got != tt.want {
				t.Errorf("RootPath() = %q, want %q", got, tt.want)
			}
			back, err := ParseRootPath(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if back.RootPath() != tt.want {
				t.Errorf("parse round trip: %q", back.RootPath())
			}
		})
	}
}

func TestParseRootPathErrors(t *testing.T) {
	for _, s := range []string{
		"", "iscsi:", "aoe:e0.1", "iscsi:10.0.0.1:::", "iscsi:10.0.0.1:17:::iqn.x:d",
		"iscsi:10.0.0.1::99999::iqn.x:d", "iscsi:10.0.0.1:::100:iqn.x:d", "iscsi:10.0.0.1:::zz:iqn.x:d",
		"iscsi:::::iqn.x:d", "iscsi:10.0.0.1::::",
	} {
		if _, err := ParseRootPath(s); !errors.Is(err, ErrTarget) {
			t.Errorf("ParseRootPath(%q) = %v, want ErrTarget", s, err)
		}
	}
}

func TestTargetValidate(t *testing.T) {
	ok := Target{Server: "10.0.0.1", IQN: "iqn.x:d"}
	with := func(f func(*Target)) Target { c := ok; f(&c); return c }
	tests := []struct {
		name    string
		t       Target
		wantErr string
	}{
		{"ok", ok, ""},
		{"chap", with(func(t *Target) { t.CHAPUser, t.CHAPSecret = "u", "123456789012" }), ""},
		{"mutual", with(func(t *Target) {
			t.CHAPUser, t.CHAPSecret, t.MutualUser, t.MutualSecret = "u", "123456789012", "t", "abcdefghijkl"
		}), ""},
		{"no server", with(func(t *Target) { t.Server = "" }), "no server"},
		{"ipv6", with(func(t *Target) { t.Server = "fe80::1" }), "IPv4"},
		{"no iqn", with(func(t *Target) { t.IQN = "" }), "no target IQN"},
		{"lun", with(func(t *Target) { t.LUN = 256 }), "LUN"},
		{"short secret", with(func(t *Target) { t.CHAPUser, t.CHAPSecret = "u", "short" }), "at least 12"},
		{"secret no user", with(func(t *Target) { t.CHAPSecret = "123456789012" }), "without a user"},
		{"mutual without chap", with(func(t *Target) { t.MutualUser, t.MutualSecret = "t", "abcdefghijkl" }), "one-way"},
		{"same secrets", with(func(t *Target) {
			t.CHAPUser, t.CHAPSecret, t.MutualUser, t.MutualSecret = "u", "123456789012", "t", "123456789012"
		}), "equals"},
	}
	for _, tt := range tests {
		err := tt.t.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestScript(t *testing.T) {
	tgt := Target{Server: "10.77.0.1", IQN: "iqn.2024-01.test.xpboot:disk1", LUN: 1, CHAPUser: "xpbuser", CHAPSecret: "xpbsecret1234"}
	tests := []struct {
		name    string
		cfg     ScriptConfig
		want    []string // lines that must appear, in order
		notWant []string
		wantErr string
	}{
		{"boot", ScriptConfig{Target: tgt, DHCP: true, InitiatorIQN: "iqn.2026-01.org.xpboot:client-${mac:hexhyp}", NoGateway: true},
			[]string{"#!ipxe", "dhcp", "set initiator-iqn iqn.2026-01.org.xpboot:client-${mac:hexhyp}", "set username xpbuser",
				"set password xpbsecret1234", "clear net0.dhcp/gateway", "sanboot iscsi:10.77.0.1:::1:iqn.2024-01.test.xpboot:disk1 || goto failed", ":failed"},
			[]string{"sanhook", "reverse", "keep-san"}, ""},
		{"install", ScriptConfig{Target: tgt, Install: true, KeepSAN: true},
			[]string{"#!ipxe", "set keep-san 1", "sanhook iscsi:10.77.0.1:::1:iqn.2024-01.test.xpboot:disk1 || goto failed", "exit", ":failed"},
			[]string{"dhcp", "sanboot ", "clear"}, ""},
		{"mutual", ScriptConfig{Target: func() Target { m := tgt; m.MutualUser, m.MutualSecret = "tgt", "mutualsecret12"; return m }()},
			[]string{"set reverse-username tgt", "set reverse-password mutualsecret12"}, nil, ""},
		{"unsafe secret", ScriptConfig{Target: func() Target { m := tgt; m.CHAPSecret = "has space 1234"; return m }()}, nil, nil, "CHAP secret"},
		{"dollar in secret", ScriptConfig{Target: func() Target { m := tgt; m.CHAPSecret = "${password}1234"; return m }()}, nil, nil, "CHAP secret"},
		{"bad target", ScriptConfig{Target: Target{Server: "10.0.0.1"}}, nil, nil, "IQN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Script(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Script() error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(got, "\n")
			i := 0
			for _, w := range tt.want {
				for i < len(lines) && lines[i] != w {
					i++
				}
				if i == len(lines) {
					t.Errorf("line %q missing or out of order in\n%s", w, got)
					break
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("script contains %q:\n%s", nw, got)
				}
			}
		})
	}
}
