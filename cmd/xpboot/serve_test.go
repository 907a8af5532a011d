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
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServeApp(ctx, &stderr, "serve", "--image", img, "--listen", "127.0.0.1:0",
			"--chap", "testuser:userpassword", "--mutual-chap", "testtarget:targetpassword")
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
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
	log := stderr.String()
	for _, secret := range []string{"userpassword", "targetpassword", "wrongpassword"} {
		if strings.Contains(log, secret) {
			t.Errorf("secret %q in the log:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, "authentication failed") {
		t.Errorf("failed login not logged:\n%s", log)
	}
	// The image lock is released: serving it again works at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel2() }()
	var stderr2 syncBuffer
	if err := runServeApp(ctx2, &stderr2, "serve", "--image", img, "--listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("second serve: %v\n%s", err, stderr2.String())
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
