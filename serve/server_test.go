package serve

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/sanboot"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func imageFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeLoopback: New binds, opens the image, and Serve answers a CHAP
// login from libiscsi; the Listening description matches; cancelling the
// context ends Serve cleanly and Close releases the image.
func TestServeLoopback(t *testing.T) {
	inq := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	var log lockedBuffer
	c := baseConfig()
	c.Targets[0].LUNs[0].Path = imageFile(t, 4<<20)
	c.Listen = "127.0.0.1:0"
	c.Log = slog.New(slog.NewTextHandler(&log, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l := s.Listening()
	if l.ISCSI != s.Addr().String() || l.DHCP != nil || len(l.Targets) != 1 || !l.Targets[0].CHAP || l.Targets[0].LUNs[0].Size != 4<<20 {
		t.Errorf("Listening() = %+v", l)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	out := peertest.Run(t, 30*time.Second, inq, "iscsi://pcuser%pcsecret12345@"+s.Addr().String()+"/"+testIQN+"/0")
	if !bytes.Contains(out, []byte("Vendor:XPBOOT")) {
		t.Errorf("iscsi-inq:\n%s", out)
	}
	if out, err := peertest.Try(t, 30*time.Second, inq, "iscsi://pcuser%wrongsecret99@"+s.Addr().String()+"/"+testIQN+"/0"); err == nil {
		t.Errorf("a wrong secret logged in:\n%s", out)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var login, failed bool
	for _, evs := range s.Events().Snapshot() {
		for _, ev := range evs {
			login = login || ev.State == sanboot.StateLogin
			failed = failed || ev.State == sanboot.StateLoginFailed
		}
	}
	if !login || !failed {
		t.Errorf("events: login %v, failed %v", login, failed)
	}
	if got := log.String(); !strings.Contains(got, "iSCSI target stopped; images flushed") || strings.Contains(got, "pcsecret12345") {
		t.Errorf("log:\n%s", got)
	}
}

// TestNewProxyPolicyFromBoundPort: with DHCP the clients are told the port
// the target is bound to (the policy is built after binding, once); a
// policy the clients list breaks fails New with ErrConfig before any
// image is opened, and leaves nothing bound.
func TestNewProxyPolicyFromBoundPort(t *testing.T) {
	peertest.NeedRoot(t, "binds DHCP and TFTP sockets to lo")
	c := baseConfig()
	c.Targets[0].LUNs[0].Path = imageFile(t, 1<<20)
	c.Listen = "127.0.0.1:0"
	c.Log = slog.New(slog.DiscardHandler)
	c.Netboot = Netboot{Mode: sanboot.ModeProxy, Interface: "lo", ServerIP: net.IPv4(127, 0, 0, 1), IPXEDir: t.TempDir(),
		DHCPPort: freeUDP(t), PXEPort: freeUDP(t), TFTPPort: freeUDP(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	port := s.Addr().(*net.TCPAddr).Port
	l := s.Listening()
	want := "iscsi:127.0.0.1::" + strconv.Itoa(port) + "::" + testIQN
	if l.DHCP == nil || l.DHCP.ServerIP != "127.0.0.1" || !l.DHCP.Script || l.DHCP.PXE == "" || l.Targets[0].RootPath != want {
		t.Errorf("Listening() = %+v, dhcp %+v; want root path %s", l, l.DHCP, want)
	}
	if cl, err := s.Policy().Clients().Client(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 9}); err != nil || cl.Target.Port != port || cl.Target.Server != "127.0.0.1" {
		t.Errorf("client target %+v, %v; want port %d", cl.Target, err, port)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	time.Sleep(100 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Two clients with one address: the policy refuses; nothing stays bound.
	c.Listen = s.Addr().String()
	c.Netboot.Clients = []sanboot.ClientEntry{{MAC: "52:54:00:00:00:01", Address: "10.0.0.5"}, {MAC: "52:54:00:00:00:02", Address: "10.0.0.5"}}
	if _, err := New(ctx, c); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "already given") {
		t.Fatalf("New with a broken clients list: %v", err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		t.Fatalf("the iSCSI port stayed bound after a failed New: %v", err)
	}
	ln.Close()
}

// TestNewMissingImage: a missing image is reported before anything binds.
func TestNewMissingImage(t *testing.T) {
	c := baseConfig()
	c.Targets[0].LUNs[0].Path = filepath.Join(t.TempDir(), "missing.img")
	c.Listen = "127.0.0.1:0"
	if _, err := New(context.Background(), c); err == nil || !strings.Contains(err.Error(), "no such file") || errors.Is(err, ErrConfig) {
		t.Fatalf("New = %v", err)
	}
	c.Targets[0].LUNs[0].Path = imageFile(t, 1<<20)
	c.Targets[0].Auth.Incoming[0].Secret = []byte("short")
	if _, err := New(context.Background(), c); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with a short secret = %v", err)
	}
}

// freeUDP returns a loopback UDP port that was free a moment ago.
func freeUDP(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
