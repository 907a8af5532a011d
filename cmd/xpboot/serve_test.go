package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/internal/peertest"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runServeApp runs `xpboot serve args…` until ctx ends and returns the
// action's error and stderr.
// stopServe cancels a serve started in-process and waits (bounded) for it
// to return without error.
func stopServe(t *testing.T, cancel context.CancelFunc, done <-chan error, stderr *syncBuffer) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func runServeApp(ctx context.Context, stderr *syncBuffer, args ...string) error {
	app := newApp(strings.NewReader(""), &bytes.Buffer{}, stderr)
	app.ExitErrHandler = func(*cli.Context, error) {} // return errors, never exit
	return app.RunContext(ctx, append([]string{"xpboot"}, args...))
}

func sparseImage(t *testing.T, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeFlagErrors(t *testing.T) {
	img := sparseImage(t, "disk.img", 1<<20)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "exactly one of --image and --config"},
		{[]string{"serve", "--image", img, "--dhcp", "on"}, "want off, full or proxy"},
		{[]string{"serve", "--image", img, "--interface", "lo"}, "--interface needs --dhcp full or --dhcp proxy"},
		{[]string{"serve", "--image", img, "--dhcp", "full"}, "needs --interface"},
		{[]string{"serve", "--image", img, "--dhcp", "full", "--interface", "lo"}, "needs --dhcp-range"},
		{[]string{"serve", "--image", img, "--dhcp", "full", "--interface", "lo", "--dhcp-range", "10.0.0.9-10.0.0.1"}, "low to high"},
		{[]string{"serve", "--image", img, "--dhcp", "proxy", "--interface", "lo", "--dhcp-range", "10.0.0.1-10.0.0.9"}, "full only"},
		{[]string{"serve", "--image", img, "--dhcp", "proxy", "--interface", "lo", "--router", "10.0.0.1"}, "full only"},
		{[]string{"serve", "--image", img, "--dhcp", "proxy", "--interface", "lo", "--unknown", "maybe"}, "want serve or ignore"},
		{[]string{"serve", "--image", img, "--dhcp", "proxy", "--interface", "lo", "--chap", "u:short"}, "at least 12"},
		{[]string{"serve", "--image", img, "--dhcp", "proxy", "--interface", "lo", "--clients", clientsFile(t, `[{"mac":"52:54:00:00:00:01","chap_user":"nobody"}]`)}, "not a user of"},
		{[]string{"serve", "--image", img, "--dhcp", "proxy", "--interface", "lo", "--clients", clientsFile(t, `[{"mac":"52:54:00:00:00:01","colour":"red"}]`)}, "unknown field"},
		{[]string{"serve", "--image", img, "--chap", "nosecret"}, "USER:SECRET"},
		{[]string{"serve", "--image", img, "--mutual-chap", "t:targetsecret"}, "needs at least one --chap"},
		{[]string{"serve", "--image", img, "--chap", "u:usersecret12", "--require-mutual"}, "--require-mutual needs --mutual-chap"},
		{[]string{"serve", "--image", img, "--chap", "u:samesecret12", "--mutual-chap", "t:samesecret12"}, "equals the outgoing secret"},
		{[]string{"serve", "--image", img, "--lun", "20000"}, "--lun"},
		{[]string{"serve", "--image", filepath.Join(t.TempDir(), "missing.img")}, "no such file"},
		{[]string{"serve", "--config", img, "--iqn", "iqn.2026-01.x:y"}, "applies to --image"},
		{[]string{"serve", "--image", img, "--max-memory", "10"}, "at least 1M"},
		{[]string{"serve", "--image", img, "--max-sessions-per-initiator", "1"}, "at least 2"},
		{[]string{"serve", "--image", img, "--chap-file", filepath.Join(t.TempDir(), "none")}, "no such file"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			var stderr syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := runServeApp(ctx, &stderr, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

var listenRE = regexp.MustCompile(`msg="iSCSI target listening" listen=(\S+)`)

// TestServeLoginAndShutdown serves an image (with CHAP) on loopback port 0,
// logs in with libiscsi's iscsi-inq, then cancels the context the way
// SIGINT does and checks that serve returns cleanly and released the image.
func TestServeLoginAndShutdown(t *testing.T) {
	inq := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	img := sparseImage(t, "xp disk.img", 4<<20)
	// The same accounts from the command line, from files (one may hold
	// several accounts and comments) and from the environment.
	dir := t.TempDir()
	chapFile, mutualFile := filepath.Join(dir, "chap"), filepath.Join(dir, "mutual")
	os.WriteFile(chapFile, []byte("# CHAP accounts\nother:otherpassword1\ntestuser:userpassword\n"), 0o600)
	os.WriteFile(mutualFile, []byte("testtarget:targetpassword\n"), 0o600)
	for _, src := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flags", []string{"--chap", "testuser:userpassword", "--mutual-chap", "testtarget:targetpassword"}, nil},
		{"files", []string{"--chap-file", chapFile, "--mutual-chap-file", mutualFile}, nil},
		{"environment", nil, map[string]string{"XPBOOT_CHAP": "testuser:userpassword", "XPBOOT_MUTUAL_CHAP": "testtarget:targetpassword"}},
	} {
		t.Run(src.name, func(t *testing.T) {
			for k, v := range src.env {
				t.Setenv(k, v)
			}
			serveLogin(t, inq, img, src.args)
		})
	}
	// The image lock is released: serving it again works at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel2() }()
	var stderr2 syncBuffer
	if err := runServeApp(ctx2, &stderr2, "serve", "--image", img, "--listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("second serve: %v\n%s", err, stderr2.String())
	}
}

// serveLogin serves img with the credential arguments args, logs in with
// the right and a wrong secret, and checks that no secret is logged.
func serveLogin(t *testing.T, inq, img string, args []string) {
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServeApp(ctx, &stderr, append([]string{"serve", "--image", img, "--listen", "127.0.0.1:0"}, args...)...)
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	iqn := "iqn.2026-01.org.xpboot:xp-disk" // derived from "xp disk.img"
	out := peertest.Run(t, 30*time.Second, inq, "iscsi://testuser%userpassword@"+addr+"/"+iqn+"/0")
	if !bytes.Contains(out, []byte("Vendor:XPBOOT")) {
		t.Errorf("iscsi-inq output:\n%s", out)
	}
	if out, err := peertest.Try(t, 30*time.Second, inq, "iscsi://testuser%wrongpassword@"+addr+"/"+iqn+"/0"); err == nil {
		t.Errorf("login with a wrong secret succeeded:\n%s", out)
	}
	stopServe(t, cancel, done, &stderr)
	log := stderr.String()
	for _, secret := range []string{"userpassword", "targetpassword", "wrongpassword"} {
		if strings.Contains(log, secret) {
			t.Errorf("secret %q in the log:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, "authentication failed") {
		t.Errorf("failed login not logged:\n%s", log)
	}
}

// TestServeConfigFile serves an ietd.conf with two targets.
func TestServeConfigFile(t *testing.T) {
	a, b := sparseImage(t, "a.img", 1<<20), sparseImage(t, "b.img", 2<<20)
	conf := filepath.Join(t.TempDir(), "ietd.conf")
	text := "# IETD style\nMaxSessions 4\nTarget iqn.2026-01.org.xpboot:a\n  Lun 0 Path=" + a + ",Type=fileio\n" +
		"Target iqn.2026-01.org.xpboot:b\n  IncomingUser testuser userpassword\n  Lun 0 Path=" + b + ",Type=fileio,IOMode=ro\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(500 * time.Millisecond); cancel() }()
	var stderr syncBuffer
	if err := runServeApp(ctx, &stderr, "serve", "--config", conf, "--listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("serve --config: %v\n%s", err, stderr.String())
	}
	log := stderr.String()
	for _, want := range []string{"target=iqn.2026-01.org.xpboot:a", "target=iqn.2026-01.org.xpboot:b", "read_only=true", "MaxSessions"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// clientsFile writes a --clients JSON file.
func clientsFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeRefusesForeignTarget serves two targets with --dhcp proxy on the
// loopback interface and a clients file giving one client its own initiator
// IQN and image: a login with that IQN to the other target is refused (the
// target answers "authorization failure"), logged, and a login-failed event
// of the client on the --json stream; the same IQN still reaches its own
// target, and an initiator xpboot did not hand out gets the default target
// only (--unknown serve).
func TestServeRefusesForeignTarget(t *testing.T) {
	peertest.NeedRoot(t, "binds the DHCP ports 67 and 4011 on lo")
	inq := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	a, b := sparseImage(t, "a.img", 1<<20), sparseImage(t, "b.img", 1<<20)
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	const iqnA, iqnB = "iqn.2026-01.org.xpboot:a", "iqn.2026-01.org.xpboot:b"
	text := "Target " + iqnA + "\n  Lun 0 Path=" + a + ",Type=fileio\nTarget " + iqnB + "\n  Lun 0 Path=" + b + ",Type=fileio\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	const mac, clientIQN = "52:54:00:79:00:01", "iqn.2026-01.org.example:pc01"
	clients := clientsFile(t, `[{"mac":"`+mac+`","iqn":"`+clientIQN+`","image":"`+iqnB+`"}]`)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		app := newApp(strings.NewReader(""), &stdout, &stderr)
		app.ExitErrHandler = func(*cli.Context, error) {}
		done <- app.RunContext(ctx, []string{"xpboot", "serve", "--json", "--config", conf, "--listen", "127.0.0.1:0",
			"--dhcp", "proxy", "--interface", "lo", "--server-ip", "127.0.0.1", "--ipxe-dir", dir, "--clients", clients})
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if ls := parseStatus(t, stdout.String(), false); len(ls) > 0 {
			addr = ls[0].ISCSI
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	login := func(initiator, target string) ([]byte, bool) {
		out, err := peertest.Try(t, 30*time.Second, inq, "-i", initiator, "iscsi://"+addr+"/"+target+"/0")
		return out, err == nil && bytes.Contains(out, []byte("Vendor:XPBOOT"))
	}
	if out, ok := login(clientIQN, iqnA); ok || !bytes.Contains(bytes.ToLower(out), []byte("authorization")) {
		t.Errorf("client login to a foreign target: ok=%v, want an authorization failure:\n%s", ok, out)
	}
	if out, ok := login(clientIQN, iqnB); !ok {
		t.Errorf("client login to its own target failed:\n%s", out)
	}
	const stranger = "iqn.2026-01.org.example:stranger"
	if out, ok := login(stranger, iqnA); !ok {
		t.Errorf("unknown initiator to the default target failed:\n%s", out)
	}
	if out, ok := login(stranger, iqnB); ok {
		t.Errorf("unknown initiator to a client's target succeeded:\n%s", out)
	}
	stopServe(t, cancel, done, &stderr)
	var refused, ownLogin, strangerRefused bool
	for _, l := range parseStatus(t, stdout.String(), false) {
		if l.Event != "client" || l.Proto != "iscsi" {
			continue
		}
		switch {
		case l.State == "login-failed" && l.Client == mac && l.Attrs["initiator"] == clientIQN && l.Attrs["target"] == iqnA:
			refused = l.Detail == "login refused: initiator not authorized for target" &&
				strings.Contains(l.Attrs["err"], "may use target "+iqnB+" only") && l.Attrs["session"] == "Normal"
		case l.State == "login" && l.Client == mac && l.Attrs["target"] == iqnB:
			ownLogin = true
		case l.State == "login-failed" && l.Attrs["initiator"] == stranger && l.Attrs["target"] == iqnB:
			strangerRefused = strings.Contains(l.Attrs["err"], "default target "+iqnA+" only")
		}
	}
	if !refused || !ownLogin || !strangerRefused {
		t.Errorf("events: refused %v, own login %v, stranger refused %v:\n%s", refused, ownLogin, strangerRefused, stdout.String())
	}
	log := stderr.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`level=WARN msg="login refused: initiator not authorized for target" client=` + mac + ` proto=iscsi state=login-failed .*target=` + iqnA),
		regexp.MustCompile(`msg="login failed" .*err="login failed with status 0x0202: initiator ` + clientIQN + ` not authorized for target ` + iqnA),
	} {
		if !want.MatchString(log) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// TestServeImageNames: a streamOptimized VMDK served writable is refused
// with the ways out, and a .vmdk without a VMDK header is served as raw
// with a warning.
func TestServeImageNames(t *testing.T) {
	dir := t.TempDir()
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "convert", "disk.img", "export.vmdk", "--to", "vmdk-stream"); r.code != 0 {
		t.Fatalf("convert: %+v", r)
	}
	var stderr syncBuffer
	err := runServeApp(context.Background(), &stderr, "serve", "--image", filepath.Join(dir, "export.vmdk"), "--listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "--read-only") || !strings.Contains(err.Error(), "--overlay-dir") {
		t.Errorf("streamOptimized served writable: %v", err)
	}
	raw := sparseImage(t, "renamed.vmdk", 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(500 * time.Millisecond); cancel() }()
	var stderr2 syncBuffer
	if err := runServeApp(ctx, &stderr2, "serve", "--image", raw, "--listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(stderr2.String(), "no such header") {
		t.Errorf("no warning for a raw image named .vmdk:\n%s", stderr2.String())
	}
}
