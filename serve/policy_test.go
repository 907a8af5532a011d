package serve

import (
	"errors"
	"net"
	"testing"

	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

// testPolicy is the policy New builds for two targets, a clients list and
// the server 192.0.2.1: client 01 has its own IQN and image b without an
// overlay, client 02 is listed with defaults.
func testPolicy(t *testing.T, unknown sanboot.UnknownClients) (*Policy, *sanboot.EventLog) {
	t.Helper()
	no := false
	c := baseConfig()
	c.Targets = append(c.Targets, iscsitarget.FileTarget{Name: "iqn.2026-01.org.xpboot:b", LUNs: []iscsitarget.FileLUN{{Path: "/srv/b.img"}}})
	c.Discovery.Incoming = []iscsitarget.Account{acct("disc", "discsecret12")}
	c.OverlayDir = "/ov"
	proxy(&c)
	c.Netboot.Unknown = unknown
	c.Netboot.Clients = []sanboot.ClientEntry{
		{MAC: "52:54:00:00:00:01", Name: "pc01", IQN: "iqn.2026-01.org.example:pc01", Image: "iqn.2026-01.org.xpboot:b", Overlay: &no,
			CHAPUser: "pc01", CHAPSecret: "pc01secret1234"},
		{MAC: "52:54:00:00:00:02", Name: "pc02"},
	}
	p, err := c.prepare()
	if err != nil {
		t.Fatal(err)
	}
	server := net.IPv4(192, 0, 2, 1)
	pc := sanboot.PolicyConfig{Overlay: true, Unknown: unknown, Images: map[string]sanboot.Target{}, Clients: p.clients}
	for i, ft := range p.targets {
		tg := clientTarget(ft, server, 3261)
		if i == 0 {
			pc.Default = tg
		}
		pc.Images[ft.Name] = tg
	}
	clients, err := sanboot.NewStaticPolicy(pc)
	if err != nil {
		t.Fatal(err)
	}
	events := sanboot.NewEventLog(nil, 0)
	return newPolicy(p.targets, c.Discovery, clients, events), events
}

func TestPolicyCHAPSecret(t *testing.T) {
	p, _ := testPolicy(t, sanboot.UnknownServe)
	tests := []struct {
		target, session, user, want string
	}{
		{testIQN, "Normal", "pcuser", "pcsecret12345"},
		{"IQN.2026-01.ORG.XPBOOT:DISK", "Normal", "pcuser", "pcsecret12345"}, // names compare without case
		{"iqn.2026-01.org.xpboot:b", "Normal", "pc01", "pc01secret1234"},     // a client's own account
		{"iqn.2026-01.org.xpboot:b", "Normal", "pcuser", ""},                 // another target's user
		{"", "Discovery", "disc", "discsecret12"},
		{testIQN, "Discovery", "pcuser", ""}, // discovery has its own accounts
		{testIQN, "Normal", "nobody", ""},
	}
	for _, tt := range tests {
		got, err := p.CHAPSecret(iscsitarget.ConnMeta{TargetName: tt.target, SessionType: tt.session}, tt.user)
		switch {
		case tt.want == "" && !errors.Is(err, iscsitarget.ErrUnknownUser):
			t.Errorf("%s %s %s: %q, %v; want ErrUnknownUser", tt.session, tt.target, tt.user, got, err)
		case tt.want != "" && (err != nil || string(got) != tt.want):
			t.Errorf("%s %s %s: %v; want the secret", tt.session, tt.target, tt.user, err)
		}
	}
}

func TestPolicyAuthorizeOverlayClientOf(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 50), Port: 50000}
	for _, unknown := range []sanboot.UnknownClients{sanboot.UnknownServe, sanboot.UnknownIgnore} {
		p, events := testPolicy(t, unknown)
		tests := []struct {
			initiator, target string
			ok                bool
		}{
			{"iqn.2026-01.org.example:pc01", "iqn.2026-01.org.xpboot:b", true},
			{"iqn.2026-01.org.example:pc01", testIQN, false},
			{"iqn.2026-01.org.xpboot:client-52-54-00-00-00-02", testIQN, true},
			{"iqn.2026-01.org.example:stranger", testIQN, unknown == sanboot.UnknownServe},
			{"iqn.2026-01.org.example:stranger", "iqn.2026-01.org.xpboot:b", false},
		}
		for _, tt := range tests {
			m := iscsitarget.ConnMeta{RemoteAddr: remote, InitiatorName: tt.initiator, TargetName: tt.target, SessionType: "Normal"}
			if err := p.Authorize(m); (err == nil) != tt.ok {
				t.Errorf("%s: Authorize(%s → %s) = %v, want ok %v", unknown, tt.initiator, tt.target, err, tt.ok)
			}
			// A discovery session's refusal only filters the list: no event.
			m.SessionType = "Discovery"
			before := len(events.Events(p.ClientOf(remote, tt.initiator)))
			p.Authorize(m)
			if after := len(events.Events(p.ClientOf(remote, tt.initiator))); after != before {
				t.Errorf("%s: discovery Authorize recorded an event", unknown)
			}
		}
		evs := events.Events("52:54:00:00:00:01")
		if len(evs) == 0 || evs[len(evs)-1].State != sanboot.StateLoginFailed {
			t.Errorf("%s: refused login of pc01 not recorded under its MAC: %v", unknown, evs)
		}
		if ov, name := p.Overlay("iqn.2026-01.org.example:pc01"); ov || name != "pc01" {
			t.Errorf("pc01: overlay %v name %q, want no overlay, pc01", ov, name)
		}
		if ov, name := p.Overlay("iqn.2026-01.org.xpboot:client-52-54-00-00-00-02"); !ov || name != "pc02" {
			t.Errorf("pc02: overlay %v name %q, want an overlay named pc02", ov, name)
		}
		if ov, name := p.Overlay("iqn.2026-01.org.example:stranger"); !ov || name != "" {
			t.Errorf("stranger: overlay %v name %q, want an unnamed overlay", ov, name)
		}
		if got := p.ClientOf(remote, "iqn.2026-01.org.example:pc01"); got != "52:54:00:00:00:01" {
			t.Errorf("ClientOf(pc01) = %q, want its MAC", got)
		}
		if got := p.ClientOf(remote, "iqn.2026-01.org.example:stranger"); got != "10.0.0.50" {
			t.Errorf("ClientOf(stranger) = %q, want the address", got)
		}
	}
}

// TestPolicyWithoutDHCP: no clients: every initiator may use every target,
// gets an overlay, and is named by its address.
func TestPolicyWithoutDHCP(t *testing.T) {
	c := baseConfig()
	p := newPolicy(c.Targets, c.Discovery, nil, sanboot.NewEventLog(nil, 0))
	if err := p.Authorize(iscsitarget.ConnMeta{InitiatorName: "iqn.x:any", TargetName: testIQN, SessionType: "Normal"}); err != nil {
		t.Error(err)
	}
	if ov, name := p.Overlay("iqn.x:any"); !ov || name != "" {
		t.Errorf("overlay %v %q", ov, name)
	}
	if got := p.ClientOf(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "iqn.x:any"); got != "127.0.0.1" {
		t.Errorf("ClientOf = %q", got)
	}
	if s, err := p.CHAPSecret(iscsitarget.ConnMeta{TargetName: testIQN, SessionType: "Normal"}, "pcuser"); err != nil || string(s) != "pcsecret12345" {
		t.Errorf("CHAPSecret = %q, %v", s, err)
	}
}
