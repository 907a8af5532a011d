package iscsitarget

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

const (
	allowedIQN = "iqn.2026-01.test:allowed" // may use testIQN only
	otherIQN   = testIQN + "-other"         // a second target nobody may use but allowedIQN's peers
)

// authzConfig serves testIQN (no CHAP) and otherIQN (CHAP) and lets
// allowedIQN use testIQN only; every call of Authorize is recorded.
func authzConfig(t *testing.T, calls *[]ConnMeta, mu *sync.Mutex) Config {
	t.Helper()
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.Targets = append(cfg.Targets, Target{Name: otherIQN, LUNs: []LUN{{Device: d}}, Auth: testAuth})
	cfg.Authorize = func(m ConnMeta) error {
		mu.Lock()
		*calls = append(*calls, m)
		mu.Unlock()
		if m.InitiatorName == allowedIQN && m.TargetName == testIQN {
			return nil
		}
		return errors.New("policy gives this initiator " + testIQN + " only")
	}
	return cfg
}

// sendTargets runs one SendTargets=v exchange in a discovery session.
func (ti *testInit) sendTargets(v string) map[string][]string {
	ti.t.Helper()
	p := &pdu{data: textOf("SendTargets=" + v)}
	p.bhs[0] = opTextReq
	p.bhs[1] = 0x80
	p.put32(16, 78)
	p.put32(20, reservedTag)
	p.put32(24, ti.cmdSN)
	ti.cmdSN++
	ti.write(p)
	resp := ti.read()
	if resp.opcode() != opTextResp {
		ti.t.Fatalf("opcode 0x%02x, want Text Response", resp.opcode())
	}
	kvs, err := parseText(resp.data)
	if err != nil {
		ti.t.Fatal(err)
	}
	m := map[string][]string{}
	for _, k := range kvs {
		m[k.key] = append(m[k.key], k.value)
	}
	return m
}

// TestAuthorize checks Config.Authorize: a refused initiator gets status
// 0x0202 on its first login response (before any CHAP exchange, also on a
// target without CHAP), the connection is closed, the reason is logged,
// the refusal counts toward MaxLoginFailures, AuthLog is not called (no
// authentication took place), and discovery lists only allowed targets.
func TestAuthorize(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []ConnMeta
		logs  syncBuf
	)
	cfg := authzConfig(t, &calls, &mu)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.MaxLoginFailures = 3
	var authLogs []string
	cfg.AuthLog = func(m ConnMeta, method string, err error) {
		mu.Lock()
		authLogs = append(authLogs, fmt.Sprintf("%s %s %s %v", m.InitiatorName, m.TargetName, method, err))
		mu.Unlock()
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })

	login := func(initiator, target string, extra ...string) (*testInit, *pdu) {
		ti := pipeServer(t, s)
		keys := append([]string{"InitiatorName=" + initiator, "TargetName=" + target, "SessionType=Normal"}, extra...)
		return ti, ti.login(true, stageSecurity, stageOperational, textOf(keys...))
	}
	closed := func(ti *testInit) {
		t.Helper()
		if _, err := ti.rd.read(); err == nil {
			t.Fatal("connection still open after a refused login")
		}
	}

	// Allowed: the login goes on.
	ti, r := login(allowedIQN, testIQN, "AuthMethod=None")
	if st := loginStatus(r); st != statusSuccess || r.flags()&0x80 == 0 {
		t.Fatalf("allowed initiator: status 0x%04x flags 0x%02x", st, r.flags())
	}
	ti.c.Close()

	// Refused on a target without CHAP, and on a CHAP target before CHAP.
	for _, tc := range []struct{ initiator, target, method string }{
		{"iqn.2026-01.test:stranger", testIQN, "AuthMethod=None"},
		{allowedIQN, otherIQN, "AuthMethod=CHAP"},
	} {
		ti, r := login(tc.initiator, tc.target, tc.method)
		if st := loginStatus(r); st != statusForbidden {
			t.Fatalf("%s → %s: status 0x%04x, want 0x0202", tc.initiator, tc.target, st)
		}
		if len(r.data) != 0 {
			t.Errorf("%s → %s: refusal carries keys %q", tc.initiator, tc.target, r.data)
		}
		closed(ti)
	}
	mu.Lock()
	if len(authLogs) != 1 || !strings.HasPrefix(authLogs[0], allowedIQN+" "+testIQN+" None <nil>") {
		t.Errorf("AuthLog calls %q, want only the allowed login's", authLogs)
	}
	if len(calls) != 3 {
		t.Fatalf("%d Authorize calls, want 3", len(calls))
	}
	if m := calls[1]; m.InitiatorName != "iqn.2026-01.test:stranger" || m.TargetName != testIQN || m.SessionType != "Normal" ||
		m.RemoteAddr == nil || m.ISID != ti.isid {
		t.Errorf("Authorize meta %+v", m)
	}
	mu.Unlock()
	for _, want := range []string{
		`msg="login failed"`,
		`status 0x0202: initiator iqn.2026-01.test:stranger not authorized for target ` + testIQN + `: policy gives this initiator`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "userpassword") {
		t.Error("a secret in the log")
	}

	// Discovery lists only what the initiator may use.
	ti = pipeServer(t, s)
	r = ti.login(true, stageSecurity, stageFull, textOf("InitiatorName="+allowedIQN, "SessionType=Discovery", "AuthMethod=None"))
	if st := loginStatus(r); st != statusSuccess {
		t.Fatalf("discovery login: status 0x%04x", st)
	}
	ti.cmdSN = r.u32(28)
	if m := ti.sendTargets("All"); len(m["TargetName"]) != 1 || m["TargetName"][0] != testIQN {
		t.Errorf("SendTargets=All lists %q, want only %s", m["TargetName"], testIQN)
	}
	if m := ti.sendTargets(otherIQN); len(m["TargetName"]) != 0 || len(m["SendTargets"]) != 1 || m["SendTargets"][0] != valReject {
		t.Errorf("SendTargets=%s answered %q, want Reject", otherIQN, m)
	}
	if m := ti.sendTargets(testIQN); len(m["TargetName"]) != 1 {
		t.Errorf("SendTargets=%s answered %q", testIQN, m)
	}
	ti.c.Close()

	// Failures slow down the refused initiator, never the allowed one
	// from the same address (issue 15: a per-address lockout used to
	// refuse it too).
	ti, r = login("iqn.2026-01.test:stranger", testIQN, "AuthMethod=None")
	if st := loginStatus(r); st != statusForbidden {
		t.Fatalf("third refusal: status 0x%04x", st)
	}
	closed(ti)
	ti, r = login(allowedIQN, testIQN, "AuthMethod=None")
	if st := loginStatus(r); st != statusSuccess {
		t.Fatalf("allowed initiator after %d refusals from its address: status 0x%04x", cfg.MaxLoginFailures, st)
	}
	ti.c.Close()
}

// syncBuf is a bytes.Buffer for a logger and the test at once.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuthorizeIscsiInq logs in with libiscsi's iscsi-inq under chosen
// initiator names: the allowed one reads INQUIRY, another is refused with
// libiscsi's "authorization failure", and so is the allowed name on a
// target it may not use (even with the right CHAP secret).
func TestAuthorizeIscsiInq(t *testing.T) {
	bin := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	var (
		mu    sync.Mutex
		calls []ConnMeta
	)
	cfg := authzConfig(t, &calls, &mu)
	cfg.MaxLoginFailures = 1000
	_, addr := startServer(t, cfg)
	cases := []struct {
		name, initiator, url string
		login                bool
	}{
		{"allowed", allowedIQN, "iscsi://" + addr + "/" + testIQN + "/0", true},
		{"other initiator", "iqn.2026-01.test:stranger", "iscsi://" + addr + "/" + testIQN + "/0", false},
		{"other target with CHAP", allowedIQN, "iscsi://testuser%userpassword@" + addr + "/" + otherIQN + "/0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runEnv(t, 30*time.Second, nil, bin, "-i", tc.initiator, tc.url)
			ok := err == nil && bytes.Contains(out, []byte("Vendor:XPBOOT"))
			if ok != tc.login {
				t.Fatalf("login %v, want %v: %v\n%s", ok, tc.login, err, out)
			}
			if !tc.login && !bytes.Contains(bytes.ToLower(out), []byte("authorization")) {
				t.Errorf("iscsi-inq does not report an authorization failure:\n%s", out)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < len(cases) {
		t.Errorf("%d Authorize calls for %d logins", len(calls), len(cases))
	}
}
