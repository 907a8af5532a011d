package sanboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pin/tftp/v3"
)

// DebianIPXEDir is where Debian's ipxe package installs undionly.kpxe and
// ipxe.efi.
const DebianIPXEDir = "/usr/lib/ipxe"

// ErrRefused is wrapped by every TFTP request the server refuses.
var ErrRefused = errors.New("sanboot: TFTP request refused")

// DefaultIPXEDir returns DebianIPXEDir when it exists, or an error saying
// how to get it.
func DefaultIPXEDir() (string, error) {
	if fi, err := os.Stat(DebianIPXEDir); err == nil && fi.IsDir() {
		return DebianIPXEDir, nil
	}
	return "", fmt.Errorf("sanboot: no iPXE directory %s: install Debian package ipxe, or pass --ipxe-dir with undionly.kpxe and ipxe.efi", DebianIPXEDir)
}

// ClientScript is the boot script a client fetches by TFTP: no `dhcp` (it
// has just done DHCP), its initiator IQN, credentials and switches.
func ClientScript(c Client) (string, error) {
	return Script(ScriptConfig{
		Target:       c.Target,
		InitiatorIQN: c.InitiatorIQN,
		NoGateway:    c.NoGateway,
		Install:      c.SkipSANBoot,
		KeepSAN:      c.KeepSAN,
	})
}

// TFTPConfig configures a TFTPServer.
type TFTPConfig struct {
	Root      string    // directory of the iPXE binaries (DefaultIPXEDir)
	BootFiles BootFiles // checked at start; default DefaultBootFiles
	Policy    Policy    // generates ScriptName files; nil serves none
	Events    *EventLog // default: a new log on Log
	Log       *slog.Logger
}

// TFTPServer is a read-only TFTP server over Root plus generated scripts.
type TFTPServer struct {
	cfg      TFTPConfig
	root     string
	realRoot string // root with its own symbolic links resolved
}

// ipxeBootFiles are the names of iPXE's boot programs (Debian's ipxe
// package, iPXE's build targets). Besides the configured BootFiles, only
// these may be symbolic links to a root-owned file outside the TFTP root,
// as Debian's /usr/lib/ipxe/ipxe.efi → /boot/ipxe.efi is.
var ipxeBootFiles = []string{"undionly.kpxe", "undionly.kkpxe", "ipxe.pxe", "ipxe.efi", "snponly.efi", "ipxe.lkrn"}

// NewTFTPServer checks that Root is a directory; boot files missing from
// it are logged as warnings, since a site may boot only BIOS or only UEFI.
func NewTFTPServer(cfg TFTPConfig) (*TFTPServer, error) {
	if cfg.Root == "" {
		return nil, errors.New("sanboot: TFTP needs a root directory (--ipxe-dir)")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("sanboot: TFTP root: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("sanboot: iPXE directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("sanboot: iPXE directory %s is not a directory", root)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("sanboot: iPXE directory: %w", err)
	}
	if cfg.BootFiles == (BootFiles{}) {
		cfg.BootFiles = DefaultBootFiles
	}
	if cfg.Events == nil {
		cfg.Events = NewEventLog(cfg.Log, 0)
	}
	for _, f := range []string{cfg.BootFiles.BIOS, cfg.BootFiles.EFI} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(filepath.Join(root, f)); err != nil || !fi.Mode().IsRegular() {
			cfg.Events.log.Warn("iPXE binary missing from the TFTP root; clients needing it cannot boot", "proto", "tftp", "file", filepath.Join(root, f))
		}
	}
	return &TFTPServer{cfg: cfg, root: root, realRoot: realRoot}, nil
}

// Open returns the content and size of a file for a client. It refuses
// empty, absolute and escaping names, backslashes and NUL bytes, and
// anything but a regular file whose resolved path lies inside the root:
// symbolic links are followed only as far as they stay inside it. The one
// exception is an iPXE boot file (the configured BootFiles and the names
// in ipxeBootFiles, at the top of the root), which may be a link to a
// regular file owned by root, itself named like an iPXE boot file,
// anywhere: Debian's ipxe.efi → /boot/ipxe.efi.
func (s *TFTPServer) Open(name string, client net.IP) (io.ReadCloser, int64, error) {
	refuse := func(why string) (io.ReadCloser, int64, error) {
		return nil, 0, fmt.Errorf("%w: %q: %s", ErrRefused, name, why)
	}
	switch {
	case name == "":
		return refuse("empty name")
	case strings.HasPrefix(name, "/"):
		return refuse("absolute path")
	case strings.ContainsAny(name, "\\\x00"):
		return refuse("backslash or NUL in name")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return refuse("path traversal")
		}
	}
	clean := path.Clean(name)
	if mac, ok := ParseScriptName(clean); ok && s.cfg.Policy != nil {
		c, err := s.cfg.Policy.Client(mac)
		if err != nil {
			return refuse("no script for this client: " + err.Error())
		}
		text, err := ClientScript(c)
		if err != nil {
			return nil, 0, err
		}
		return io.NopCloser(bytes.NewReader([]byte(text))), int64(len(text)), nil
	}
	return s.openFile(name, clean)
}

// openFile opens clean (a checked, cleaned name) below the root. The file
// is judged by what was actually opened (its descriptor's path and
// status), so a link changed between the check and the open gains
// nothing.
func (s *TFTPServer) openFile(name, clean string) (io.ReadCloser, int64, error) {
	refuse := func(why string) (io.ReadCloser, int64, error) {
		return nil, 0, fmt.Errorf("%w: %q: %s", ErrRefused, name, why)
	}
	full := filepath.Join(s.root, filepath.FromSlash(clean))
	real, err := filepath.EvalSymlinks(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, 0, fmt.Errorf("sanboot: TFTP %q: no such file in %s", name, s.root)
	case err != nil:
		// ELOOP and the like: a link chain that does not end.
		return refuse("unresolvable symbolic link: " + err.Error())
	}
	inside := within(s.realRoot, real)
	if !inside && !s.bootFile(clean) {
		return refuse("resolves outside the TFTP root")
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("sanboot: TFTP %q: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("sanboot: TFTP %q: %w", name, err)
	}
	why := ""
	switch st, _ := fi.Sys().(*syscall.Stat_t); {
	case !fi.Mode().IsRegular():
		why = "not a regular file"
	case !s.opened(f, real):
		why = "file changed while it was opened"
	case !inside && (st == nil || st.Uid != 0):
		why = "boot file link leads outside the TFTP root to a file not owned by root"
	case !inside && !s.bootFile(filepath.Base(real)):
		// /boot/ipxe.efi, not /etc/passwd: the target is a boot program too.
		why = "boot file link leads outside the TFTP root to a file without an iPXE boot file name"
	}
	if why != "" {
		f.Close()
		return refuse(why)
	}
	return f, fi.Size(), nil
}

// bootFile reports whether clean names an iPXE boot file the server hands
// out.
func (s *TFTPServer) bootFile(clean string) bool {
	if clean == s.cfg.BootFiles.BIOS || clean == s.cfg.BootFiles.EFI {
		return true
	}
	for _, n := range ipxeBootFiles {
		if clean == n {
			return true
		}
	}
	return false
}

// opened reports whether f is the file at path, by its /proc/self/fd
// link (true where /proc is not mounted: the checks before still hold).
func (s *TFTPServer) opened(f *os.File, path string) bool {
	got, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return true
	}
	return got == path
}

// within reports whether path is root or below it (both cleaned, absolute).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// Serve answers TFTP read requests on conn until ctx ends; pin/tftp closes
// conn on shutdown and waits for running transfers (each bounded by its
// timeout and retries). Write requests are refused by pin/tftp.
func (s *TFTPServer) Serve(ctx context.Context, conn net.PacketConn) error {
	srv := tftp.NewServer(s.read, nil)
	srv.SetHook(tftpHook{s})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			srv.Shutdown()
		case <-done:
		}
	}()
	err := srv.Serve(conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *TFTPServer) read(name string, rf io.ReaderFrom) error {
	var ip net.IP
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		a := ot.RemoteAddr()
		ip = a.IP
	}
	who := s.cfg.Events.ClientFor(ip)
	if mac, ok := ParseScriptName(path.Clean(name)); ok && who == ip.String() && ip != nil {
		// Proxy mode never sees the client's address; the script name
		// tells which MAC is asking. Used for logging only.
		s.cfg.Events.Bind(ip, mac)
		who = mac.String()
	}
	r, size, err := s.Open(name, ip)
	if err != nil {
		s.cfg.Events.Record(who, "tftp", StateTFTPFailed, err.Error(), slog.String("file", name), slog.String("ip", ip.String()))
		return openError{err}
	}
	defer r.Close()
	if ot, ok := rf.(tftp.OutgoingTransfer); ok {
		ot.SetSize(size)
	}
	s.cfg.Events.Record(who, "tftp", StateTFTPStart, "sending "+name, slog.String("file", name), slog.Int64("size", size), slog.String("ip", ip.String()))
	_, err = rf.ReadFrom(r)
	return err
}

type tftpHook struct{ s *TFTPServer }

func (h tftpHook) OnSuccess(st tftp.TransferStats) {
	h.s.cfg.Events.Record(h.s.cfg.Events.ClientFor(st.RemoteAddr), "tftp", StateTFTPDone, "sent "+st.Filename,
		slog.String("file", st.Filename), slog.Duration("duration", st.Duration))
}

func (h tftpHook) OnFailure(st tftp.TransferStats, err error) {
	var oe openError
	if st.Filename == "" || errors.As(err, &oe) {
		return // a refused request, already recorded by read
	}
	h.s.cfg.Events.Record(h.s.cfg.Events.ClientFor(st.RemoteAddr), "tftp", StateTFTPFailed, "transfer of "+st.Filename+" failed",
		slog.String("file", st.Filename), slog.String("error", err.Error()))
}

// openError marks a request refused by Open, already recorded.
type openError struct{ error }

func (e openError) Unwrap() error { return e.error }
