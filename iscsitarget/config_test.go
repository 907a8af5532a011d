package iscsitarget

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	good := `# the seeds' IETD setup
IncomingUser discuser discsecret12
Target iqn.2001-04.com.example:storage.disk1
	IncomingUser testuser userpassword
	IncomingUser second secondsecret
	OutgoingUser testtarget targetpassword
	Lun 0 Path=/srv/xp.img,Type=fileio,ScsiSN=XP0001
	Lun 1 Path=/srv/data.img,Type=blockio,IOMode=ro
	Alias xp
	MaxConnections 1
	InitialR2T Yes
Target iqn.2001-04.com.example:open
	RequireMutual No
	Lun 0 Path=/srv/open.img
`
	fc, err := ParseConfig(strings.NewReader(good), "ietd.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.Discovery.Incoming) != 1 || fc.Discovery.Incoming[0].User != "discuser" {
		t.Errorf("discovery auth %+v", fc.Discovery)
	}
	if len(fc.Targets) != 2 {
		t.Fatalf("%d targets", len(fc.Targets))
	}
	t0 := fc.Targets[0]
	if len(t0.Auth.Incoming) != 2 || t0.Auth.Outgoing == nil || string(t0.Auth.Outgoing.Secret) != "targetpassword" {
		t.Errorf("target auth %+v", t0.Auth)
	}
	if len(t0.LUNs) != 2 || t0.LUNs[0].Serial != "XP0001" || !t0.LUNs[1].ReadOnly || t0.LUNs[1].Path != "/srv/data.img" || t0.Alias != "xp" {
		t.Errorf("LUNs %+v alias %q", t0.LUNs, t0.Alias)
	}
	if len(fc.Ignored) != 2 || !strings.Contains(fc.Ignored[0], "ietd.conf:10: MaxConnections") {
		t.Errorf("ignored %q", fc.Ignored)
	}
	bad := []struct{ text, want string }{
		{"Lun 0 Path=/x", "ietd.conf:1: Lun outside a Target"},
		{"Target a b", "exactly one name"},
		{"Target iqn.x:y\nLun 0 Type=fileio", "has no Path"},
		{"Target iqn.x:y\nLun 99999 Path=/x", "0..16383"},
		{"Target iqn.x:y\nLun 0 Path=/x,Type=nullio", "only fileio"},
		{"Target iqn.x:y\nOutgoingUser a b\nOutgoingUser c d", "only one OutgoingUser"},
		{"Target iqn.x:y\nIncomingUser onlyname", "user name and a secret"},
		{"Frobnicate", "unknown setting"},
		{"", "no Target"},
	}
	for _, tc := range bad {
		_, err := ParseConfig(strings.NewReader(tc.text), "ietd.conf")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.text, err, tc.want)
		}
	}
}

// TestLoginRateLimit: the first MaxLoginFailures failed logins of one
// user from one address are answered at once, each further one only after
// a delay that doubles; the right password from the same address logs in
// at once all the same, and the failures are reported to AuthLog.
func TestLoginRateLimit(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.Targets[0].Auth = testAuth
	cfg.MaxLoginFailures = 2
	cfg.LoginFailureDelay = 400 * time.Millisecond
	cfg.Rand = fixedRand(0x10)
	cfg.Logger = testLogger(t)
	var mu sync.Mutex
	var fails int
	cfg.AuthLog = func(_ ConnMeta, _ string, err error) {
		if err != nil {
			mu.Lock()
			fails++
			mu.Unlock()
			if !errors.Is(err, ErrAuth) {
				t.Errorf("AuthLog error %v does not wrap ErrAuth", err)
			}
		}
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	chal := make([]byte, 1+chapChallengeSz)
	fixedRand(0x10).Read(chal)
	// try logs in as testuser with secret and returns the final status and
	// how long the last answer took.
	try := func(secret string) (uint16, time.Duration) {
		ti := pipeServer(t, s)
		r := ti.login(false, stageSecurity, stageSecurity, textOf("InitiatorName=iqn.2026-01.test:i", "TargetName="+testIQN, "AuthMethod=CHAP"))
		if st := loginStatus(r); st != 0 {
			t.Fatalf("AuthMethod step: 0x%04x", st)
		}
		ti.login(false, stageSecurity, stageSecurity, textOf("CHAP_A=5"))
		resp := chapMD5Response(chal[0], []byte(secret), chal[1:])
		start := time.Now()
		r = ti.login(true, stageSecurity, stageOperational, textOf("CHAP_N=testuser", "CHAP_R="+hexArg(resp)))
		return loginStatus(r), time.Since(start)
	}
	delay := cfg.LoginFailureDelay
	for i, want := range []time.Duration{0, 0, delay, 2 * delay} {
		st, took := try("wrong-password")
		if st != statusAuthFailed {
			t.Fatalf("failure %d: status 0x%04x", i+1, st)
		}
		if took < want || (want == 0 && took > delay/2) {
			t.Errorf("failure %d answered after %v, want %v", i+1, took, want)
		}
	}
	st, took := try("userpassword")
	if st != statusSuccess || took > delay/2 {
		t.Fatalf("right password after 4 failures: status 0x%04x after %v, want success at once", st, took)
	}
	mu.Lock()
	defer mu.Unlock()
	if fails != 4 {
		t.Errorf("AuthLog saw %d failures, want 4", fails)
	}
}

// TestSecretLengthWarning: secrets the Windows initiator refuses (outside
// 12..16 bytes) start the server with a warning that names the user but
// never the secret.
func TestSecretLengthWarning(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.Targets[0].Auth = Auth{Incoming: []Account{{User: "shortuser", Secret: []byte("short")}, {User: "okuser", Secret: []byte("twelve-bytes")}}}
	var log strings.Builder
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	if _, err := NewServer(cfg); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, "user=shortuser") || strings.Contains(out, "user=okuser") {
		t.Errorf("warnings:\n%s", out)
	}
	if strings.Contains(out, "short ") || strings.Contains(out, "twelve-bytes") {
		t.Errorf("secret in the log:\n%s", out)
	}
}
