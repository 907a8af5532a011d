package serve

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

// Server is a boot server whose sockets are bound and images open.
type Server struct {
	log     *slog.Logger
	events  *sanboot.EventLog
	policy  *Policy
	l       net.Listener
	target  *iscsitarget.Server
	netboot *sanboot.Netboot // nil without DHCP
	devs    []io.Closer      // the images and overlay bases, closed by Close
	status  Listening
}

// Listening describes a ready server for status output.
type Listening struct {
	ISCSI   string         `json:"iscsi"`
	Targets []TargetStatus `json:"targets"`
	DHCP    *DHCPStatus    `json:"dhcp,omitempty"`
}

// TargetStatus is one served target.
type TargetStatus struct {
	IQN        string      `json:"iqn"`
	CHAP       bool        `json:"chap"`
	MutualCHAP bool        `json:"mutual_chap"`
	RootPath   string      `json:"root_path,omitempty"` // with DHCP: what clients are told
	LUNs       []LUNStatus `json:"luns"`
}

// LUNStatus is one served LUN.
type LUNStatus struct {
	LUN        uint16 `json:"lun"`
	Path       string `json:"path"`
	Format     string `json:"format"`
	Size       int64  `json:"size"`
	ReadOnly   bool   `json:"read_only"`
	OverlayDir string `json:"overlay_dir,omitempty"`
}

// DHCPStatus is the DHCP/TFTP side.
type DHCPStatus struct {
	Mode      string `json:"mode"`
	Interface string `json:"interface"`
	ServerIP  string `json:"server_ip"`
	DHCP      string `json:"dhcp"`
	PXE       string `json:"pxe,omitempty"` // proxy mode's port 4011
	TFTP      string `json:"tftp"`
	Script    bool   `json:"script"`
}

// New validates cfg and readies the server: the iSCSI listener is bound
// first, the policy is built from the bound address, then the DHCP/TFTP
// sockets and the images are opened (see the package contract). On error
// nothing stays open.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	p, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	s := &Server{log: cfg.Log, events: cfg.Events}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.events == nil {
		s.events = sanboot.NewEventLog(s.log, 0)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for _, d := range p.differs {
		s.log.Warn("client's CHAP secret differs from the target's account: its logins will be refused", "client", d[0], "chap_user", d[1], "target", d[2])
	}
	if cfg.OverlayDir != "" {
		if err := os.MkdirAll(cfg.OverlayDir, 0o755); err != nil {
			return nil, fmt.Errorf("--overlay-dir: %w", err)
		}
	}
	// A missing image is the likeliest mistake; say so before binding.
	for _, ft := range p.targets {
		for _, fl := range ft.LUNs {
			if _, err := os.Stat(fl.Path); err != nil {
				return nil, err
			}
		}
	}
	if s.l, err = net.Listen("tcp", listenAddr(cfg.Listen)); err != nil {
		return nil, err
	}
	bound := s.l.Addr().(*net.TCPAddr)

	// The policy, from the bound port and the address DHCP hands out.
	var clients *sanboot.StaticPolicy
	var serverIP net.IP
	var images map[string]sanboot.Target
	nb := cfg.Netboot
	if nb.On() {
		if serverIP, _, err = sanboot.ServerAddress(nb.Interface, nb.ServerIP); err != nil {
			return nil, err
		}
		pc := sanboot.PolicyConfig{NoGateway: nb.NoGateway, Overlay: cfg.OverlayDir != "", KeepSAN: nb.KeepSAN, Install: nb.Install,
			Unknown: nb.Unknown, Images: map[string]sanboot.Target{}, Clients: p.clients}
		for i, ft := range p.targets {
			t := clientTarget(ft, serverIP, bound.Port)
			if i == 0 {
				pc.Default = t
			}
			pc.Images[ft.Name] = t
		}
		images = pc.Images
		if clients, err = sanboot.NewStaticPolicy(pc); err != nil {
			return nil, configError{err}
		}
	}
	s.policy = newPolicy(p.targets, cfg.Discovery, clients, s.events)

	if err := s.openTargets(cfg, p.targets); err != nil {
		return nil, err
	}
	if nb.On() {
		s.netboot, err = sanboot.NewNetboot(ctx, sanboot.ServeConfig{
			Mode: nb.Mode, Interface: nb.Interface, ServerIP: serverIP, RangeStart: nb.RangeStart, RangeEnd: nb.RangeEnd,
			Router: nb.Router, DNS: nb.DNS, LeaseFile: nb.LeaseFile, IPXEDir: nb.IPXEDir, Script: nb.Script,
			Prepared: clients, Probe: nb.Probe, RouterAdvertisements: nb.RouterAdvertisements,
			DHCPPort: nb.DHCPPort, PXEPort: nb.PXEPort, TFTPPort: nb.TFTPPort, Log: s.log, Events: s.events,
		})
		if err != nil {
			return nil, err
		}
		if !bound.IP.IsUnspecified() && !bound.IP.Equal(serverIP) {
			s.log.Warn("the iSCSI target does not listen on the address DHCP hands out; clients will not reach it",
				"listen", bound.String(), "server_ip", serverIP.String())
		}
		d := &DHCPStatus{Mode: string(nb.Mode), Interface: nb.Interface, ServerIP: serverIP.String(),
			Script: nb.Script || nb.Mode == sanboot.ModeProxy}
		if c := s.netboot.Server.DHCPConn; c != nil {
			d.DHCP = c.LocalAddr().String()
		}
		if c := s.netboot.Server.PXEConn; c != nil {
			d.PXE = c.LocalAddr().String()
		}
		if c := s.netboot.Server.TFTPConn; c != nil {
			d.TFTP = c.LocalAddr().String()
		}
		s.status.DHCP = d
		for i := range s.status.Targets {
			s.status.Targets[i].RootPath = images[s.status.Targets[i].IQN].RootPath()
		}
		def := images[p.targets[0].Name]
		s.log.Info("iSCSI target listening", "listen", bound.String(), "root_path", def.RootPath(), "chap", def.CHAPUser != "", "mutual_chap", def.MutualUser != "")
	} else {
		s.log.Info("iSCSI target listening", "listen", bound.String())
	}
	s.status.ISCSI = bound.String()
	return s, nil
}

// openTargets opens every LUN's image (or overlay base) and builds the
// iSCSI target with the policy's hooks.
func (s *Server) openTargets(cfg Config, targets []iscsitarget.FileTarget) error {
	tc := cfg.Tuning
	tc.DiscoveryAuth = cfg.Discovery
	tc.Logger = s.log
	if cfg.Netboot.On() {
		// Every line of the target about a connection names the client.
		tc.Logger = slog.New(sanboot.ClientLogHandler(s.log.Handler(), func(remote string) string {
			ap, err := netip.ParseAddrPort(remote)
			if err != nil {
				return ""
			}
			return s.policy.ClientOf(net.TCPAddrFromAddrPort(ap), "")
		}))
		tc.Authorize = s.policy.Authorize
	}
	tc.CHAPSecret = s.policy.CHAPSecret
	tc.AuthLog = s.authLog
	anyWritable := false
	for _, ft := range targets {
		t := iscsitarget.Target{Name: ft.Name, Alias: ft.Alias, Auth: ft.Auth}
		ts := TargetStatus{IQN: ft.Name, CHAP: len(ft.Auth.Incoming) > 0, MutualCHAP: ft.Auth.Outgoing != nil}
		openTarget := len(ft.Auth.Incoming) == 0
		for _, fl := range ft.LUNs {
			if cfg.OverlayDir != "" {
				lun, base, err := s.overlayLUN(fl, cfg.OverlayDir)
				if err != nil {
					return err
				}
				s.devs = append(s.devs, base)
				ts.LUNs = append(ts.LUNs, LUNStatus{LUN: fl.Number, Path: fl.Path, Format: string(base.Format()), Size: base.Size(), OverlayDir: cfg.OverlayDir})
				t.LUNs = append(t.LUNs, lun)
				anyWritable = anyWritable || openTarget
				continue
			}
			s.warnFormatName(fl.Path)
			d, format, err := imagefs.OpenDevice(fl.Path, !fl.ReadOnly)
			if err != nil {
				if errors.Is(err, blockdev.ErrLocked) {
					return fmt.Errorf("%w (is another xpboot using it?)", err)
				}
				if f, derr := imagefs.Detect(fl.Path); derr == nil && f == imagefs.FormatVMDKStream && !fl.ReadOnly {
					return fmt.Errorf("%s is a streamOptimized (compressed, export-only) VMDK, which cannot be written: "+
						"serve it with --read-only, or with --overlay-dir so that each client writes its own delta, or convert it "+
						"(xpboot image convert %s disk.vmdk)", fl.Path, fl.Path)
				}
				return err
			}
			s.devs = append(s.devs, d)
			ts.LUNs = append(ts.LUNs, LUNStatus{LUN: fl.Number, Path: fl.Path, Format: string(format), Size: d.Size(), ReadOnly: fl.ReadOnly})
			s.log.Info("serving image", "target", ft.Name, "lun", fl.Number, "path", fl.Path, "format", string(format), "size", d.Size(), "read_only", fl.ReadOnly)
			t.LUNs = append(t.LUNs, iscsitarget.LUN{Number: fl.Number, Device: d, ReadOnly: fl.ReadOnly, Serial: fl.Serial})
			if !fl.ReadOnly && openTarget {
				anyWritable = true
			}
		}
		tc.Targets = append(tc.Targets, t)
		s.status.Targets = append(s.status.Targets, ts)
	}
	var err error
	if s.target, err = iscsitarget.NewServer(tc); err != nil {
		return configError{err}
	}
	if a, ok := s.l.Addr().(*net.TCPAddr); anyWritable && !(ok && a.IP.IsLoopback()) {
		s.log.Warn("SERVING A WRITABLE TARGET WITHOUT CHAP ON A NETWORK ADDRESS: anyone who can reach it can overwrite the disk; use --chap or --read-only",
			"listen", s.l.Addr().String())
	}
	return nil
}

// authLog records every authentication as a login or login-failed event
// of the client.
func (s *Server) authLog(m iscsitarget.ConnMeta, method string, err error) {
	attrs := []slog.Attr{slog.String("remote", fmt.Sprint(m.RemoteAddr)), slog.String("initiator", m.InitiatorName),
		slog.String("target", m.TargetName), slog.String("session", m.SessionType), slog.String("method", method),
		// The ISID tells a second session of the same initiator (the OS
		// logging in again from the iBFT) from a reinstatement of the
		// first.
		slog.String("isid", hex.EncodeToString(m.ISID[:]))}
	who := s.policy.ClientOf(m.RemoteAddr, m.InitiatorName)
	if err != nil {
		s.events.Record(who, "iscsi", sanboot.StateLoginFailed, "authentication failed", append(attrs, slog.String("err", err.Error()))...)
	} else {
		s.events.Record(who, "iscsi", sanboot.StateLogin, "iSCSI login", attrs...)
	}
}

// warnFormatName warns when an image's name promises a container its
// content is not (a .vmdk or .vhd that holds no such header is served as
// raw bytes, which is seldom what was meant: a truncated download, a
// renamed raw image, another container).
func (s *Server) warnFormatName(path string) {
	f, err := imagefs.Detect(path)
	if err != nil {
		return
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case ext == ".vmdk" && !f.IsVMDK(), (ext == ".vhd" || ext == ".vpc") && !f.IsVHD():
		s.log.Warn("the image's name says "+strings.TrimPrefix(ext, ".")+" but it has no such header: serving its bytes as a raw disk",
			"path", path, "detected", string(f))
	}
}

// Addr is the address the iSCSI target listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Listening describes the bound sockets and the served targets.
func (s *Server) Listening() Listening { return s.status }

// Events is the log of every client's steps.
func (s *Server) Events() *sanboot.EventLog { return s.events }

// Policy is the server's policy.
func (s *Server) Policy() *Policy { return s.policy }

// Serve runs the iSCSI target and, with DHCP, the DHCP, TFTP and router
// advertisement loops in one errgroup until ctx ends (nil) or one of them
// fails (its error, after the others stopped). It returns after every
// session has ended and every image is flushed.
func (s *Server) Serve(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := s.target.Serve(gctx, s.l)
		switch {
		case err != nil:
			return fmt.Errorf("iscsi: %w", err)
		case gctx.Err() == nil:
			return errors.New("iscsi: the target stopped unexpectedly")
		}
		return nil
	})
	if s.netboot != nil {
		g.Go(func() error { return s.netboot.Server.Serve(gctx) })
	}
	err := g.Wait()
	if err == nil {
		if s.netboot != nil {
			s.log.Info("DHCP, TFTP and iSCSI target stopped; images flushed")
		} else {
			s.log.Info("iSCSI target stopped; images flushed")
		}
	}
	return err
}

// Close closes the DHCP/TFTP sockets, the listener (if Serve never ran)
// and the images.
func (s *Server) Close() error {
	var errs []error
	if s.netboot != nil {
		errs = append(errs, s.netboot.Close())
		s.netboot = nil
	}
	if s.l != nil {
		if err := s.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, d := range s.devs {
		if err := d.Close(); err != nil {
			s.log.Error("closing image failed", "err", err)
			errs = append(errs, err)
		}
	}
	s.devs = nil
	return errors.Join(errs...)
}
