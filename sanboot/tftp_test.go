package sanboot

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/xpboot/xpboot/internal/peertest"
)

func tftpRoot(t *testing.T) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160000 bytes: many blocks at any blksize
	os.WriteFile(filepath.Join(root, "undionly.kpxe"), big, 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("outside the root"), 0o644)
	os.Symlink(filepath.Join(root, "undionly.kpxe"), filepath.Join(root, "ipxe.efi"))
	os.Mkdir(filepath.Join(root, "sub"), 0o755)
	return root, big
}

func TestTFTPOpen(t *testing.T) {
	root, big := tftpRoot(t)
	s, err := NewTFTPServer(TFTPConfig{Root: root, Policy: testPolicy(t, UnknownIgnore, ClientEntry{MAC: "52:54:00:77:00:01", NoGateway: ptr(true)})})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		want     string // prefix of content
		size     int64
		wantErr  error
		errMatch string
	}{
		{"undionly.kpxe", string(big[:16]), int64(len(big)), nil, ""},
		{"ipxe.efi", string(big[:16]), int64(len(big)), nil, ""}, // symlink inside the root, like Debian's
		{"./undionly.kpxe", string(big[:16]), int64(len(big)), nil, ""},
		{"xpboot-52-54-00-77-00-01.ipxe", "#!ipxe\nset initiator-iqn iqn.2026-01.org.xpboot:client-52-54-00-77-00-01\nset username xpbuser\n", 0, nil, ""},
		{"../secret", "", 0, ErrRefused, "traversal"},
		{"sub/../../secret", "", 0, ErrRefused, "traversal"},
		{"/etc/passwd", "", 0, ErrRefused, "absolute"},
		{"..\\secret", "", 0, ErrRefused, "backslash"},
		{"sub", "", 0, ErrRefused, "regular"},
		{"", "", 0, ErrRefused, "empty"},
		{"missing.efi", "", 0, nil, "no such file"},
		{"xpboot-52-54-00-77-00-02.ipxe", "", 0, ErrRefused, "ignored by policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, size, err := s.Open(tt.name, net.IPv4(127, 0, 0, 1))
			if tt.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errMatch) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("Open error %v, want %q", err, tt.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var b bytes.Buffer
			b.ReadFrom(r)
			if !strings.HasPrefix(b.String(), tt.want) || tt.size != 0 && size != tt.size || int64(b.Len()) != size {
				t.Errorf("got %d bytes (size %d): %.80q", b.Len(), size, b.String())
			}
			if strings.HasSuffix(tt.name, ".ipxe") && !strings.Contains(b.String(), "clear net0.dhcp/gateway") {
				t.Errorf("per-client no-gateway missing from script:\n%s", b.String())
			}
		})
	}
}

func TestTFTPRootErrors(t *testing.T) {
	if _, err := NewTFTPServer(TFTPConfig{Root: filepath.Join(t.TempDir(), "nope")}); err == nil || !strings.Contains(err.Error(), "iPXE directory") {
		t.Errorf("missing root: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := NewTFTPServer(TFTPConfig{Root: f}); err == nil {
		t.Error("file as root accepted")
	}
	var logs syncBuffer
	if _, err := NewTFTPServer(TFTPConfig{Root: t.TempDir(), Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "undionly.kpxe") || !strings.Contains(logs.String(), "ipxe.efi") {
		t.Errorf("missing binaries not warned about: %s", logs.String())
	}
}

// TestTFTPLoopback fetches files with pin/tftp's client over loopback,
// with and without blksize and tsize, and checks refusals reach the client
// and the log.
func TestTFTPLoopback(t *testing.T) {
	root, big := tftpRoot(t)
	var logs syncBuffer
	ev := NewEventLog(slog.New(slog.NewTextHandler(&logs, nil)), 0)
	ev.Bind(net.IPv4(127, 0, 0, 1), testMAC)
	s, err := NewTFTPServer(TFTPConfig{Root: root, Policy: testPolicy(t, UnknownServe), Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, s.Serve)
	fetch := func(name string, blksize int, tsize bool) ([]byte, int64, error) {
		c, err := tftp.NewClient(addr.String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(2 * time.Second)
		c.SetRetries(2)
		if blksize > 0 {
			c.SetBlockSize(blksize)
		}
		c.RequestTSize(tsize)
		wt, err := c.Receive(name, "octet")
		if err != nil {
			return nil, 0, err
		}
		var size int64 = -1
		if n, ok := wt.(tftp.IncomingTransfer).Size(); ok {
			size = n
		}
		var b bytes.Buffer
		_, err = wt.WriteTo(&b)
		return b.Bytes(), size, err
	}
	for _, tc := range []struct {
		blksize int
		tsize   bool
	}{{0, false}, {1468, true}, {8192, true}} {
		got, size, err := fetch("undionly.kpxe", tc.blksize, tc.tsize)
		if err != nil {
			t.Fatalf("blksize %d: %v", tc.blksize, err)
		}
		if !bytes.Equal(got, big) {
			t.Errorf("blksize %d: got %d bytes", tc.blksize, len(got))
		}
		if tc.tsize && size != int64(len(big)) {
			t.Errorf("tsize %d, want %d", size, len(big))
		}
	}
	script, size, err := fetch(ScriptName(testMAC), 0, true)
	if err != nil || !bytes.HasPrefix(script, []byte("#!ipxe\n")) || size != int64(len(script)) {
		t.Errorf("script: %v %d %q", err, size, script)
	}
	if _, _, err := fetch("../secret", 0, false); err == nil {
		t.Error("traversal served")
	}
	if _, _, err := fetch("/etc/passwd", 0, false); err == nil {
		t.Error("absolute path served")
	}
	// A missing file is answered with a TFTP error (the client stops at
	// once) and a warning naming file and client.
	if _, _, err := fetch("snponly.efi", 0, true); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	// A write request is refused.
	c, _ := tftp.NewClient(addr.String())
	c.SetTimeout(time.Second)
	c.SetRetries(1)
	if rf, err := c.Send("upload", "octet"); err == nil {
		if _, err := rf.ReadFrom(strings.NewReader("data")); err == nil {
			t.Error("write accepted")
		}
	}
	out := logs.String()
	for _, w := range []string{"state=tftp-done", "state=tftp-failed", "path traversal", "absolute path", "client=52:54:00:77:00:01", "proto=tftp",
		`level=WARN msg="sanboot: TFTP \"snponly.efi\": no such file in `} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q:\n%s", w, out)
		}
	}
}

// TestTFTPDebianIPXE serves Debian's real iPXE binaries from DefaultIPXEDir
// (ipxe.efi there is a symlink into /boot) and checks they arrive intact.
func TestTFTPDebianIPXE(t *testing.T) {
	dir, err := DefaultIPXEDir()
	if err != nil {
		peertest.Missing(t, "the iPXE directory ("+err.Error()+")", "ipxe")
	}
	s, err := NewTFTPServer(TFTPConfig{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, s.Serve)
	for _, name := range []string{DefaultBootFiles.BIOS, DefaultBootFiles.EFI} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := tftp.NewClient(addr.String())
		c.SetBlockSize(1468)
		c.RequestTSize(true)
		c.SetTimeout(2 * time.Second)
		wt, err := c.Receive(name, "octet")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n, ok := wt.(tftp.IncomingTransfer).Size(); !ok || n != int64(len(want)) {
			t.Errorf("%s: tsize %d %v, want %d", name, n, ok, len(want))
		}
		var b bytes.Buffer
		if _, err := wt.WriteTo(&b); err != nil || !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: %v, %d bytes of %d", name, err, b.Len(), len(want))
		}
	}
}

// TestTFTPSymlinks: links are followed only while they stay inside the
// root; the iPXE boot files alone may lead out, and only to a root-owned
// regular file that is named like a boot file (Debian's ipxe.efi →
// /boot/ipxe.efi; TestTFTPDebianIPXE serves the real one).
func TestTFTPSymlinks(t *testing.T) {
	root, big := tftpRoot(t)
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "secret"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(out, "snponly.efi")
	if err := os.WriteFile(boot, big, 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(out, "ipxe.pxe")
	if err := os.WriteFile(foreign, big, 0o644); err != nil {
		t.Fatal(err)
	}
	rootOwned := os.Geteuid() == 0
	if rootOwned {
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"passwd":         "/etc/passwd",
		"undionly.kkpxe": "/etc/passwd", // a boot file name leading to a non-boot file
		"outdir":         out,
		"loop1":          filepath.Join(root, "loop2"),
		"loop2":          filepath.Join(root, "loop1"),
		"snponly.efi":    boot,
		"ipxe.pxe":       foreign,
		"fifo":           filepath.Join(root, "fifo.real"),
		"inside":         "sub/../undionly.kpxe",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.real"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewTFTPServer(TFTPConfig{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, errMatch string }{
		{"passwd", "outside the TFTP root"},
		{"undionly.kkpxe", "without an iPXE boot file name"},
		{"outdir/secret", "outside the TFTP root"},
		{"outdir", "outside the TFTP root"},
		{"loop1", "unresolvable symbolic link"},
		{"fifo", "not a regular file"},
		{"fifo.real", "not a regular file"},
		{"inside", ""},
		{"snponly.efi", ""},
	}
	if rootOwned {
		tests = append(tests, struct{ name, errMatch string }{"ipxe.pxe", "not owned by root"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var (
				r    io.ReadCloser
				size int64
				err  error
			)
			go func() { r, size, err = s.Open(tt.name, net.IPv4(127, 0, 0, 1)); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Open hangs") // a FIFO opened blocking would
			}
			if tt.errMatch != "" {
				if err == nil {
					r.Close()
				}
				if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.errMatch) {
					t.Fatalf("Open error %v, want ErrRefused %q", err, tt.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			b, _ := io.ReadAll(r)
			if size != int64(len(big)) || !bytes.Equal(b, big) {
				t.Errorf("%s: %d bytes, size %d, want the %d-byte boot file", tt.name, len(b), size, len(big))
			}
		})
	}
}
