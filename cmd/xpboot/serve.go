package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/blockdev"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

func serveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve disk images as iSCSI targets (iPXE sanboot, Windows XP/2003 initiator)",
		ArgsUsage: " ",
		Description: "Serves one image (--image) or the targets of an ietd.conf-style file (--config).\n" +
			"The disk is LUN 0 by default, so iPXE boots it with root-path iscsi:SERVER::::IQN.\n" +
			"SIGINT/SIGTERM end connections after their commands and flush every image.\n" +
			"Examples:\n" +
			"   xpboot serve --image xp.img --iqn iqn.2026-01.org.example:xp --chap testuser:userpassword\n" +
			"   xpboot serve --config /etc/iet/ietd.conf\n" +
			"   xpboot serve --image xp.img --dhcp full --interface eth1 --dhcp-range 10.0.0.100-10.0.0.199 --no-gateway\n" +
			"   xpboot serve --image xp.img --dhcp proxy --interface eth1",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "disk image to serve: raw, VMDK or VHD (detected from content)"},
			&cli.StringFlag{Name: "config", Usage: "ietd.conf-style file with several targets, LUNs and CHAP users"},
			&cli.StringFlag{Name: "iqn", Usage: "target name (default iqn.2026-01.org.xpboot:<image name>)"},
			&cli.UintFlag{Name: "lun", Value: 0, Usage: "LUN number of --image"},
			&cli.StringFlag{Name: "listen", Value: ":3260", Usage: "address to listen on, ADDR[:PORT]"},
			&cli.BoolFlag{Name: "read-only", Usage: "refuse writes (DATA PROTECT) and open the image read-only"},
			&cli.StringFlag{Name: "overlay-dir", Usage: "per-client write-back: keep --image (raw or VMDK) read-only and give each initiator IQN its own copy-on-write VMDK delta DIR/<iqn>.vmdk (delete it to reset the client)"},
			&cli.StringSliceFlag{Name: "chap", EnvVars: []string{"XPBOOT_CHAP"}, Usage: "USER:SECRET an initiator must prove (CHAP); repeatable; a command line is visible to every user in ps, so prefer --chap-file or the environment"},
			&cli.DurationFlag{Name: "tcp-keepalive", Usage: "TCP keepalive period that reaps the sessions of clients that vanished (iPXE's, once the OS runs); a probe the booted OS answers with a reset ends such a session (default: 15s)"},
			&cli.BoolFlag{Name: "allow-global-reset", Usage: "let TARGET WARM/COLD RESET from one initiator end every initiator's sessions (by default it ends only the caller's)"},
			&cli.IntFlag{Name: "max-sessions-per-initiator", Usage: "sessions one initiator name may hold at once; at least 2, since the OS logs in beside iPXE's session (default: 4)"},
			&cli.DurationFlag{Name: "idle-timeout", Usage: "ping a silent session after this long and drop it if another passes; iPXE is never pinged; negative: never (default: 60s)"},
			&cli.StringFlag{Name: "max-memory", Usage: "bytes of data in flight the target holds for all clients together, with K/M/G (default: 256M)"},
			&cli.StringFlag{Name: "chap-file", Usage: "file of USER:SECRET lines (# comments), one CHAP account each, instead of --chap"},
			&cli.StringFlag{Name: "mutual-chap", EnvVars: []string{"XPBOOT_MUTUAL_CHAP"}, Usage: "USER:SECRET the target proves itself with when asked (mutual CHAP)"},
			&cli.StringFlag{Name: "mutual-chap-file", Usage: "file holding the USER:SECRET line of --mutual-chap"},
			&cli.BoolFlag{Name: "require-mutual", Usage: "refuse initiators that do not ask for mutual CHAP"},
			&cli.BoolFlag{Name: "unsolicited-data", Usage: "offer ImmediateData=Yes and InitialR2T=No"},
			&cli.StringFlag{Name: "dhcp", Value: "off", Usage: "built-in DHCP and TFTP for iPXE: off, full (the only DHCP server on --interface) or proxy (beside a router's DHCP)"},
			&cli.StringFlag{Name: "interface", Usage: "client network interface for --dhcp full|proxy (required there)"},
			&cli.StringFlag{Name: "dhcp-range", Usage: "FROM-TO: addresses full mode hands out, e.g. 10.0.0.100-10.0.0.199"},
			&cli.StringFlag{Name: "router", Usage: "default gateway (option 3) in full mode"},
			&cli.StringSliceFlag{Name: "dns", Usage: "DNS server (option 6) in full mode; repeatable"},
			&cli.BoolFlag{Name: "no-gateway", Usage: "give clients no gateway (the XP/2003 iSCSI initiator's route bug, KB 960104)"},
			&cli.StringFlag{Name: "ipxe-dir", Usage: "TFTP root with undionly.kpxe and ipxe.efi (default " + sanboot.DebianIPXEDir + ")"},
			&cli.StringFlag{Name: "state-dir", Usage: "directory of the DHCP lease file (default /var/lib/xpboot as root, else $XDG_STATE_HOME/xpboot)"},
			&cli.StringFlag{Name: "unknown", Value: "serve", Usage: "clients not in --clients: serve (boot the default image) or ignore"},
			&cli.StringFlag{Name: "server-ip", Usage: "address clients use for TFTP and iSCSI (default the interface's first IPv4)"},
			&cli.BoolFlag{Name: "install", Usage: "sanhook instead of sanboot: attach the disk and boot the next device (install Windows onto it)"},
			&cli.BoolFlag{Name: "keep-san", Usage: "keep the disk attached if the boot fails or returns (175.8)"},
			&cli.BoolFlag{Name: "script", Usage: "hand iPXE a generated boot script by TFTP instead of a root-path (always so in proxy mode)"},
			&cli.BoolFlag{Name: "ipv6-ra", Value: true, Usage: "answer IPv6 router solicitations on --interface with an advertisement that configures nothing (no router, no prefix, no DHCPv6), so iPXE skips its IPv6 wait; quiet while another IPv6 router advertises"},
			&cli.BoolFlag{Name: "json", Usage: "status on stdout as JSON lines: listening addresses and targets, each client event, a summary at exit"},
			&cli.StringFlag{Name: "clients", Usage: "JSON list of clients: [{\"mac\", \"name\", \"address\", \"iqn\", \"image\", \"overlay\", \"no_gateway\", \"chap_user\", \"chap_secret\", \"boot_file\"}]"},
		},
		Action: func(c *cli.Context) error { return runServe(c, e) },
	}
}

// parseAccount splits USER:SECRET at the first colon.
func parseAccount(flag, v string) (iscsitarget.Account, error) {
	u, s, ok := strings.Cut(v, ":")
	if !ok || u == "" || s == "" {
		return iscsitarget.Account{}, fmt.Errorf("--%s: want USER:SECRET", flag)
	}
	return iscsitarget.Account{User: u, Secret: []byte(s)}, nil
}

// warnFormatName warns when an image's name promises a container its
// content is not (a .vmdk or .vhd that holds no such header is served as
// raw bytes, which is seldom what was meant: a truncated download, a
// renamed raw image, another container).
func warnFormatName(e *env, path string) {
	f, err := imagefs.Detect(path)
	if err != nil {
		return
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case ext == ".vmdk" && !f.IsVMDK(), (ext == ".vhd" || ext == ".vpc") && !f.IsVHD():
		e.log.Warn("the image's name says "+strings.TrimPrefix(ext, ".")+" but it has no such header: serving its bytes as a raw disk",
			"path", path, "detected", string(f))
	}
}

// chapAccounts collects the CHAP accounts of --chap (or XPBOOT_CHAP, or
// --chap-file) and the mutual account of --mutual-chap (or
// XPBOOT_MUTUAL_CHAP, or --mutual-chap-file). Secrets on a command line are
// visible to every user of the machine, hence the file and environment
// forms.
func chapAccounts(c *cli.Context, e *env) (incoming []iscsitarget.Account, outgoing *iscsitarget.Account, err error) {
	for _, v := range c.StringSlice("chap") {
		a, err := parseAccount("chap", v)
		if err != nil {
			return nil, nil, err
		}
		incoming = append(incoming, a)
	}
	if path := c.String("chap-file"); path != "" {
		if c.IsSet("chap") {
			return nil, nil, errors.New("--chap and --chap-file exclude each other")
		}
		lines, err := secretLines(e, "chap-file", path)
		if err != nil {
			return nil, nil, err
		}
		for i, l := range lines {
			a, err := parseAccount("chap-file", l)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: account %d: %w", path, i+1, err)
			}
			incoming = append(incoming, a)
		}
		if len(incoming) == 0 {
			return nil, nil, fmt.Errorf("--chap-file %s holds no USER:SECRET line", path)
		}
	}
	if v := c.String("mutual-chap"); v != "" {
		a, err := parseAccount("mutual-chap", v)
		if err != nil {
			return nil, nil, err
		}
		outgoing = &a
	}
	if path := c.String("mutual-chap-file"); path != "" {
		if outgoing != nil {
			return nil, nil, errors.New("--mutual-chap and --mutual-chap-file exclude each other")
		}
		lines, err := secretLines(e, "mutual-chap-file", path)
		if err != nil {
			return nil, nil, err
		}
		if len(lines) != 1 {
			return nil, nil, fmt.Errorf("--mutual-chap-file %s: want one USER:SECRET line, found %d", path, len(lines))
		}
		a, err := parseAccount("mutual-chap-file", lines[0])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		outgoing = &a
	}
	return incoming, outgoing, nil
}

// secretLines reads the non-empty lines of a secrets file that are not
// comments, warning when other users may read it.
func secretLines(e *env, flag, path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		e.log.Warn("secrets file is readable by other users; chmod 600 it", "file", path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}

var iqnUnsafe = regexp.MustCompile(`[^a-z0-9.:-]+`)

// defaultIQN names a target after its image file.
func defaultIQN(image string) string {
	base := strings.TrimSuffix(filepath.Base(image), filepath.Ext(image))
	base = strings.Trim(iqnUnsafe.ReplaceAllString(strings.ToLower(base), "-"), "-")
	if base == "" {
		base = "disk"
	}
	return "iqn.2026-01.org.xpboot:" + base
}

// listenAddr accepts ADDR, ADDR:PORT, :PORT and [v6]:PORT.
func listenAddr(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "3260")
}

func runServe(c *cli.Context, e *env) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("serve: unexpected argument %q", c.Args().First()), 2)
	}
	mode, err := sanboot.ParseMode(c.String("dhcp"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: --dhcp %q: want off, full or proxy", c.String("dhcp")), 2)
	}
	if mode == sanboot.ModeOff {
		for _, f := range netbootFlags {
			if c.IsSet(f) {
				return cli.Exit(fmt.Sprintf("serve: --%s needs --dhcp full or --dhcp proxy", f), 2)
			}
		}
	}
	image, config := c.String("image"), c.String("config")
	if (image == "") == (config == "") {
		return cli.Exit("serve: give exactly one of --image and --config", 2)
	}
	overlayDir := c.String("overlay-dir")
	if overlayDir != "" {
		if image == "" {
			return cli.Exit("serve: --overlay-dir needs --image (the base every overlay is a delta of)", 2)
		}
		if c.Bool("read-only") {
			return cli.Exit("serve: --overlay-dir and --read-only exclude each other: with overlays the base is never written and each client writes its own overlay; give clients the base read-only with \"overlay\": false in --clients", 2)
		}
		if err := os.MkdirAll(overlayDir, 0o755); err != nil {
			return cli.Exit(fmt.Sprintf("serve: --overlay-dir: %v", err), 1)
		}
	}
	var fc *iscsitarget.FileConfig
	if config != "" {
		for _, f := range []string{"iqn", "lun", "read-only", "chap", "chap-file", "mutual-chap", "mutual-chap-file", "require-mutual"} {
			if c.IsSet(f) {
				return cli.Exit(fmt.Sprintf("serve: --%s applies to --image; put it in %s instead", f, config), 2)
			}
		}
		f, err := os.Open(config)
		if err != nil {
			return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
		}
		fc, err = iscsitarget.ParseConfig(f, config)
		f.Close()
		if err != nil {
			return cli.Exit(fmt.Sprintf("serve: %v", err), 2)
		}
		for _, ig := range fc.Ignored {
			e.log.Info("config setting ignored (the target negotiates it)", "where", ig)
		}
	} else {
		if c.Uint("lun") > 16383 {
			return cli.Exit("serve: --lun must be 0..16383", 2)
		}
		iqn := c.String("iqn")
		if iqn == "" {
			iqn = defaultIQN(image)
		}
		t := iscsitarget.FileTarget{Name: iqn, LUNs: []iscsitarget.FileLUN{{Number: uint16(c.Uint("lun")), Path: image, ReadOnly: c.Bool("read-only")}}}
		incoming, outgoing, err := chapAccounts(c, e)
		if err != nil {
			return cli.Exit("serve: "+err.Error(), 2)
		}
		t.Auth.Incoming, t.Auth.Outgoing = incoming, outgoing
		t.Auth.RequireMutual = c.Bool("require-mutual")
		if t.Auth.RequireMutual && t.Auth.Outgoing == nil {
			return cli.Exit("serve: --require-mutual needs --mutual-chap", 2)
		}
		if t.Auth.Outgoing != nil && len(t.Auth.Incoming) == 0 {
			return cli.Exit("serve: --mutual-chap needs at least one --chap user (mutual CHAP follows one-way CHAP)", 2)
		}
		fc = &iscsitarget.FileConfig{Targets: []iscsitarget.FileTarget{t}}
	}

	var nb netbootSetup
	if mode != sanboot.ModeOff {
		var err error
		if nb, err = prepareNetboot(c, e, mode, fc); err != nil {
			return err
		}
	}

	// events is every client's story: DHCP and TFTP (with --dhcp) and the
	// iSCSI logins and overlays, logged and, with --json, printed.
	events := sanboot.NewEventLog(e.log, 0)
	status := newServeStatus(e, c.Bool("json"), events)
	// netboot is set once the DHCP/TFTP side is up; the target's callbacks
	// only run after that (the target serves only then).
	var netboot *sanboot.Netboot
	clientOf := func(remote net.Addr, initiator string) string {
		if netboot != nil {
			return netboot.ISCSIClient(remote, initiator)
		}
		if ta, ok := remote.(*net.TCPAddr); ok {
			return ta.IP.String()
		}
		return fmt.Sprint(remote)
	}
	targetLog := e.log
	if mode != sanboot.ModeOff {
		// Every line of the target about a connection names the client.
		targetLog = slog.New(sanboot.ClientLogHandler(e.log.Handler(), func(remote string) string {
			ap, err := netip.ParseAddrPort(remote)
			if err != nil || netboot == nil {
				return ""
			}
			return netboot.ISCSIClient(net.TCPAddrFromAddrPort(ap), "")
		}))
	}
	var maxMemory int64
	if v := c.String("max-memory"); v != "" {
		n, err := parseSize(v)
		if err != nil || n < 1<<20 {
			return cli.Exit(fmt.Sprintf("serve: --max-memory %q: want a size of at least 1M", v), 2)
		}
		maxMemory = n
	}
	if c.IsSet("max-sessions-per-initiator") && c.Int("max-sessions-per-initiator") < 2 {
		return cli.Exit("serve: --max-sessions-per-initiator must be at least 2: the OS logs in beside iPXE's session (the iBFT handoff)", 2)
	}
	cfg := iscsitarget.Config{
		DiscoveryAuth:           fc.Discovery,
		Logger:                  targetLog,
		UnsolicitedData:         c.Bool("unsolicited-data"),
		AllowGlobalReset:        c.Bool("allow-global-reset"),
		KeepAlive:               c.Duration("tcp-keepalive"),
		MaxSessionsPerInitiator: c.Int("max-sessions-per-initiator"),
		IdleTimeout:             c.Duration("idle-timeout"),
		MaxMemory:               int(maxMemory),
		AuthLog: func(m iscsitarget.ConnMeta, method string, err error) {
			attrs := []slog.Attr{slog.String("remote", fmt.Sprint(m.RemoteAddr)), slog.String("initiator", m.InitiatorName),
				slog.String("target", m.TargetName), slog.String("session", m.SessionType), slog.String("method", method),
				// The ISID tells a second session of the same initiator
				// (the OS logging in again from the iBFT) from a
				// reinstatement of the first.
				slog.String("isid", hex.EncodeToString(m.ISID[:]))}
			who := clientOf(m.RemoteAddr, m.InitiatorName)
			if err != nil {
				events.Record(who, "iscsi", sanboot.StateLoginFailed, "authentication failed", append(attrs, slog.String("err", err.Error()))...)
			} else {
				events.Record(who, "iscsi", sanboot.StateLogin, "iSCSI login", attrs...)
			}
		},
	}
	if mode != sanboot.ModeOff {
		cfg.Authorize = func(m iscsitarget.ConnMeta) error { return authorizeLogin(netboot, events, clientOf, m) }
	}
	var devs []blockdev.Device
	defer func() {
		for _, d := range devs {
			if err := d.Close(); err != nil {
				e.log.Error("closing image failed", "err", err)
			}
		}
	}()
	anyWritable := false
	for _, ft := range fc.Targets {
		t := iscsitarget.Target{Name: ft.Name, Alias: ft.Alias, Auth: ft.Auth}
		openTarget := len(ft.Auth.Incoming) == 0
		for _, fl := range ft.LUNs {
			if overlayDir != "" {
				lun, base, format, err := overlayLUN(e, events, fl, overlayDir, func(m iscsitarget.ConnMeta) (bool, string, string) {
					if netboot == nil {
						return true, clientOf(m.RemoteAddr, m.InitiatorName), ""
					}
					name := ""
					if cl, err := netboot.Policy.ClientByIQN(m.InitiatorName); err == nil {
						name = cl.Name
					}
					return overlayWanted(netboot.Policy, m.InitiatorName), clientOf(m.RemoteAddr, m.InitiatorName), name
				})
				if err != nil {
					return err
				}
				status.lun(ft, fl, format, base.Size(), overlayDir)
				devs = append(devs, base)
				t.LUNs = append(t.LUNs, lun)
				anyWritable = anyWritable || openTarget
				continue
			}
			warnFormatName(e, fl.Path)
			d, format, err := imagefs.OpenDevice(fl.Path, !fl.ReadOnly)
			if err != nil {
				if errors.Is(err, blockdev.ErrLocked) {
					return cli.Exit(fmt.Sprintf("serve: %v (is another xpboot using it?)", err), 1)
				}
				if f, derr := imagefs.Detect(fl.Path); derr == nil && f == imagefs.FormatVMDKStream && !fl.ReadOnly {
					return cli.Exit(fmt.Sprintf("serve: %s is a streamOptimized (compressed, export-only) VMDK, which cannot be written: "+
						"serve it with --read-only, or with --overlay-dir so that each client writes its own delta, or convert it "+
						"(xpboot image convert %s disk.vmdk)", fl.Path, fl.Path), 1)
				}
				return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
			}
			devs = append(devs, d)
			status.lun(ft, fl, format, d.Size(), "")
			e.log.Info("serving image", "target", ft.Name, "lun", fl.Number, "path", fl.Path, "format", string(format), "size", d.Size(), "read_only", fl.ReadOnly)
			t.LUNs = append(t.LUNs, iscsitarget.LUN{Number: fl.Number, Device: d, ReadOnly: fl.ReadOnly, Serial: fl.Serial})
			if !fl.ReadOnly && openTarget {
				anyWritable = true
			}
		}
		cfg.Targets = append(cfg.Targets, t)
	}
	srv, err := iscsitarget.NewServer(cfg)
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: %v", err), 2)
	}
	addr := listenAddr(c.String("listen"))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
	}
	if anyWritable && !loopbackOnly(l.Addr()) {
		e.log.Warn("SERVING A WRITABLE TARGET WITHOUT CHAP ON A NETWORK ADDRESS: anyone who can reach it can overwrite the disk; use --chap or --read-only",
			"listen", l.Addr().String())
	}
	if mode == sanboot.ModeOff {
		e.log.Info("iSCSI target listening", "listen", l.Addr().String())
		status.listening(l.Addr(), nil, nil)
		err := srv.Serve(c.Context, l)
		status.stopped(err)
		if err != nil {
			return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
		}
		e.log.Info("iSCSI target stopped; images flushed")
		return nil
	}

	nb.cfg.Log = e.log
	nb.cfg.Events = events
	if p := l.Addr().(*net.TCPAddr).Port; p != sanboot.DefaultISCSIPort {
		nb.cfg.Policy.Default.Port = p
		for k, t := range nb.cfg.Policy.Images {
			t.Port = p
			nb.cfg.Policy.Images[k] = t
		}
	}
	netboot, err = sanboot.NewNetboot(c.Context, nb.cfg)
	if err != nil {
		l.Close()
		return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
	}
	defer netboot.Close()
	if ta := l.Addr().(*net.TCPAddr); !ta.IP.IsUnspecified() && !ta.IP.Equal(netboot.ServerIP) {
		e.log.Warn("the iSCSI target does not listen on the address DHCP hands out; clients will not reach it",
			"listen", ta.String(), "server_ip", netboot.ServerIP.String())
	}
	def := nb.cfg.Policy.Default
	def.Server = netboot.ServerIP.String()
	e.log.Info("iSCSI target listening", "listen", l.Addr().String(), "root_path", def.RootPath(), "chap", def.CHAPUser != "", "mutual_chap", def.MutualUser != "")
	status.listening(l.Addr(), netboot, &nb.cfg)
	// The first failure of DHCP, TFTP or the target cancels the others;
	// Serve returns only after the images are flushed.
	netboot.Server.Services = append(netboot.Server.Services, func(ctx context.Context) error { return srv.Serve(ctx, l) })
	err = netboot.Server.Serve(c.Context)
	status.stopped(err)
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
	}
	e.log.Info("DHCP, TFTP and iSCSI target stopped; images flushed")
	return nil
}

// authorizeLogin is the target's Authorize hook with --dhcp: the clients
// policy gives each client its own initiator IQN and image, so a login from
// that IQN to another target is refused, and initiator names xpboot did not
// hand out follow --unknown (the default target, or nothing). A refused
// login to a normal session is a login-failed event of the client;
// discovery sessions only leave the target out of their list.
func authorizeLogin(nb *sanboot.Netboot, events *sanboot.EventLog, clientOf func(net.Addr, string) string, m iscsitarget.ConnMeta) error {
	if nb == nil {
		return errors.New("the network boot policy is not ready yet") // never: the target serves after it
	}
	_, err := nb.Policy.AuthorizeISCSI(m.InitiatorName, m.TargetName)
	if err != nil && m.SessionType == "Normal" {
		events.Record(clientOf(m.RemoteAddr, m.InitiatorName), "iscsi", sanboot.StateLoginFailed, "login refused: initiator not authorized for target",
			slog.String("remote", fmt.Sprint(m.RemoteAddr)), slog.String("initiator", m.InitiatorName), slog.String("target", m.TargetName),
			slog.String("session", m.SessionType), slog.String("err", err.Error()))
	}
	return err
}

func loopbackOnly(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// netbootFlags only make sense with --dhcp full|proxy.
var netbootFlags = []string{"interface", "dhcp-range", "router", "dns", "no-gateway", "ipxe-dir", "state-dir",
	"unknown", "server-ip", "install", "keep-san", "script", "clients", "ipv6-ra"}

// netbootSetup is the DHCP/TFTP half of serve, checked before any image is
// opened; the iSCSI port is filled in once the target listens.
type netbootSetup struct {
	cfg sanboot.ServeConfig
}

// defaultStateDir is where the lease file lives without --state-dir:
// $STATE_DIRECTORY (systemd's StateDirectory=), /var/lib/xpboot for root,
// else $XDG_STATE_HOME/xpboot (~/.local/state/xpboot).
func defaultStateDir() (string, error) {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0], nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/xpboot", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "xpboot"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory (set --state-dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "xpboot"), nil
}

// sanTarget is how clients see a served target: its first LUN and first
// CHAP user, the target's mutual CHAP name. Server and port are filled in
// later.
func sanTarget(ft iscsitarget.FileTarget) (sanboot.Target, error) {
	t := sanboot.Target{IQN: ft.Name}
	if len(ft.LUNs) > 0 {
		t.LUN = int(ft.LUNs[0].Number)
		if t.LUN > 255 {
			return t, fmt.Errorf("target %s: LUN %d: iPXE boots LUNs 0..255 only", ft.Name, t.LUN)
		}
	}
	if len(ft.Auth.Incoming) > 0 {
		t.CHAPUser, t.CHAPSecret = ft.Auth.Incoming[0].User, string(ft.Auth.Incoming[0].Secret)
	}
	if o := ft.Auth.Outgoing; o != nil {
		t.MutualUser, t.MutualSecret = o.User, string(o.Secret)
	}
	return t, nil
}

// prepareNetboot reads the DHCP/TFTP flags and the clients file. Clients
// with their own CHAP user and secret add that account to their target;
// a client naming an existing user without a secret gets that user's
// secret; a client whose secret differs from the target's account for the
// same user is logged as a warning (its logins will be refused).
func prepareNetboot(c *cli.Context, e *env, mode sanboot.Mode, fc *iscsitarget.FileConfig) (netbootSetup, error) {
	bad := func(format string, a ...any) (netbootSetup, error) {
		return netbootSetup{}, cli.Exit("serve: "+fmt.Sprintf(format, a...), 2)
	}
	sc := sanboot.ServeConfig{
		Mode:      mode,
		Interface: c.String("interface"),
		IPXEDir:   c.String("ipxe-dir"),
		Script:    c.Bool("script"),
		Probe:     2 * time.Second,

		RouterAdvertisements: c.Bool("ipv6-ra"),
	}
	if sc.Interface == "" {
		return bad("--dhcp %s needs --interface IF (the client link)", mode)
	}
	if r := c.String("dhcp-range"); r != "" {
		if mode != sanboot.ModeFull {
			return bad("--dhcp-range applies to --dhcp full only (proxy mode hands out no addresses)")
		}
		from, to, err := sanboot.ParseRange(r)
		if err != nil {
			return bad("--dhcp-range: %v", err)
		}
		sc.RangeStart, sc.RangeEnd = from, to
	} else if mode == sanboot.ModeFull {
		return bad("--dhcp full needs --dhcp-range FROM-TO")
	}
	if mode == sanboot.ModeProxy {
		for _, f := range []string{"router", "dns"} {
			if c.IsSet(f) {
				return bad("--%s applies to --dhcp full only (the router's DHCP server hands out the network settings)", f)
			}
		}
	}
	if r := c.String("router"); r != "" {
		if sc.Router = net.ParseIP(r).To4(); sc.Router == nil {
			return bad("--router %q: want an IPv4 address", r)
		}
	}
	for _, d := range c.StringSlice("dns") {
		ip := net.ParseIP(d).To4()
		if ip == nil {
			return bad("--dns %q: want an IPv4 address", d)
		}
		sc.DNS = append(sc.DNS, ip)
	}
	if s := c.String("server-ip"); s != "" {
		if sc.ServerIP = net.ParseIP(s).To4(); sc.ServerIP == nil {
			return bad("--server-ip %q: want an IPv4 address", s)
		}
	}
	if mode == sanboot.ModeFull {
		dir := c.String("state-dir")
		if dir == "" {
			var err error
			if dir, err = defaultStateDir(); err != nil {
				return bad("%v", err)
			}
		}
		sc.LeaseFile = filepath.Join(dir, "leases-"+sc.Interface+".json")
	}

	pc := sanboot.PolicyConfig{
		NoGateway: c.Bool("no-gateway"),
		Overlay:   c.String("overlay-dir") != "", // clients opt out with "overlay": false
		KeepSAN:   c.Bool("keep-san"),
		Install:   c.Bool("install"),
		Unknown:   sanboot.UnknownClients(c.String("unknown")),
		Images:    map[string]sanboot.Target{},
	}
	if pc.Unknown != sanboot.UnknownServe && pc.Unknown != sanboot.UnknownIgnore {
		return bad("--unknown %q: want serve or ignore", pc.Unknown)
	}
	byName := map[string]int{}
	for i, ft := range fc.Targets {
		t, err := sanTarget(ft)
		if err != nil {
			return bad("%v", err)
		}
		if i == 0 {
			pc.Default = t
		}
		pc.Images[ft.Name] = t
		byName[ft.Name] = i
	}
	if f := c.String("clients"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return netbootSetup{}, cli.Exit("serve: "+err.Error(), 1)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pc.Clients); err != nil {
			return bad("--clients %s: %v", f, err)
		}
	}
	for i := range pc.Clients {
		ce := &pc.Clients[i]
		if ce.CHAPUser == "" {
			if ce.CHAPSecret != "" {
				return bad("client %s: chap_secret without chap_user", ce.MAC)
			}
			continue
		}
		ti := 0
		if ce.Image != "" {
			var ok bool
			if ti, ok = byName[ce.Image]; !ok {
				return bad("client %s: image %q is not a served target (use the target IQN)", ce.MAC, ce.Image)
			}
		}
		ft := &fc.Targets[ti]
		var acct *iscsitarget.Account
		for j := range ft.Auth.Incoming {
			if ft.Auth.Incoming[j].User == ce.CHAPUser {
				acct = &ft.Auth.Incoming[j]
			}
		}
		switch {
		case acct == nil && ce.CHAPSecret == "":
			return bad("client %s: CHAP user %q is not a user of %s; give its chap_secret or a --chap for it", ce.MAC, ce.CHAPUser, ft.Name)
		case acct == nil:
			ft.Auth.Incoming = append(ft.Auth.Incoming, iscsitarget.Account{User: ce.CHAPUser, Secret: []byte(ce.CHAPSecret)})
		case ce.CHAPSecret == "":
			ce.CHAPSecret = string(acct.Secret)
		case ce.CHAPSecret != string(acct.Secret):
			e.log.Warn("client's CHAP secret differs from the target's account: its logins will be refused", "client", ce.MAC, "chap_user", ce.CHAPUser, "target", ft.Name)
		}
	}
	// Check the clients and credentials now, before any image is opened;
	// NewNetboot builds the policy again with the real server address.
	check := pc
	check.Default.Server = "192.0.2.1"
	check.Images = map[string]sanboot.Target{}
	for k, t := range pc.Images {
		t.Server = "192.0.2.1"
		check.Images[k] = t
	}
	if _, err := sanboot.NewStaticPolicy(check); err != nil {
		return bad("%v", err)
	}
	sc.Policy = pc
	return netbootSetup{cfg: sc}, nil
}

// overlayLUN serves the VMDK base fl.Path read-only and gives each
// initiator its own copy-on-write delta in dir (created on its first login,
// reopened afterwards). wantOverlay says whether an initiator gets an
// overlay (true) or the base read-only, and names its client for the log.
func overlayLUN(e *env, events *sanboot.EventLog, fl iscsitarget.FileLUN, dir string, wantOverlay func(iscsitarget.ConnMeta) (overlay bool, who, name string)) (iscsitarget.LUN, blockdev.Device, imagefs.Format, error) {
	format, err := imagefs.Detect(fl.Path)
	if err != nil {
		return iscsitarget.LUN{}, nil, "", cli.Exit(fmt.Sprintf("serve: %v", err), 1)
	}
	// Overlays are VMDK deltas; a raw base gets a flat descriptor in dir
	// for them to name as parent.
	parent, err := imagefs.OverlayParent(fl.Path, dir)
	if err != nil {
		return iscsitarget.LUN{}, nil, "", cli.Exit(fmt.Sprintf("serve: --overlay-dir: %v", err), 2)
	}
	base, _, err := imagefs.OpenDevice(parent, false)
	if err != nil {
		return iscsitarget.LUN{}, nil, "", cli.Exit(fmt.Sprintf("serve: %v", err), 1)
	}
	if _, ok := base.(*vmdk.Disk); !ok {
		base.Close()
		return iscsitarget.LUN{}, nil, "", cli.Exit(fmt.Sprintf("serve: --overlay-dir: the base %s is %s; overlays need a raw or VMDK base (xpboot image convert it to vmdk first)", fl.Path, format), 2)
	}
	// Writers into the base (xpboot image put, convert over it) find
	// overlays outside its directory through this registry.
	if err := imagefs.RegisterOverlayDir(fl.Path, dir); err != nil {
		e.log.Warn("could not register the overlay directory beside the base: xpboot image put into the base will not see these overlays and would invalidate them",
			"path", fl.Path, "overlay_dir", dir, "err", err)
	}
	e.log.Info("serving image with per-client overlays", "lun", fl.Number, "path", fl.Path, "format", string(format), "parent", parent, "size", base.Size(), "overlay_dir", dir)
	var mu sync.Mutex // one create at a time per server
	open := func(m iscsitarget.ConnMeta) (blockdev.Device, error) {
		overlay, who, name := wantOverlay(m)
		ini := slog.String("initiator", m.InitiatorName)
		if !overlay {
			events.Record(who, "iscsi", sanboot.StateOverlay, "client without overlay: serving the base read-only", ini, slog.String("path", fl.Path))
			return sharedReadOnly{base}, nil
		}
		path := filepath.Join(dir, overlayName(m.InitiatorName))
		ov := slog.String("overlay", path)
		mu.Lock()
		defer mu.Unlock()
		d, err := vmdk.Open(path, true)
		switch {
		case err == nil:
			events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay reopened", ini, ov)
		case errors.Is(err, fs.ErrNotExist):
			if d, err = vmdk.CreateDelta(path, parent, nil); err != nil {
				events.Record(who, "iscsi", sanboot.StateOverlayFailed, "creating client overlay failed", ini, ov, slog.String("err", err.Error()))
				return nil, err
			}
			events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay created", ini, ov, slog.String("base", fl.Path))
			if name != "" {
				nd, err := nameOverlay(d, path, parent, name)
				switch {
				case nd == nil:
					events.Record(who, "iscsi", sanboot.StateOverlayFailed, "creating client overlay failed", ini, ov, slog.String("err", err.Error()))
					return nil, err
				case err != nil:
					events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay serves the base unnamed", ini, ov, slog.String("err", err.Error()))
				default:
					events.Record(who, "iscsi", sanboot.StateOverlay, "computer name written into the client's overlay", ini, ov, slog.String("name", name))
				}
				d = nd
			}
		default:
			events.Record(who, "iscsi", sanboot.StateOverlayFailed, "opening client overlay failed (delete it to reset the client)", ini, ov, slog.String("err", err.Error()))
			return nil, err
		}
		return d, nil
	}
	return iscsitarget.LUN{Number: fl.Number, Device: sharedReadOnly{base}, Serial: fl.Serial, Open: open}, base, format, nil
}

// nameOverlay writes a client's computer name into its new overlay (the
// installed Windows of the base, through the NTFS or FAT32 writer and the
// hive editor), so that one base boots as many named PCs; the base is
// never written. d is closed for the edit and the overlay reopened. When
// the name cannot be written (no installed Windows in the base), the
// overlay is made anew, unnamed, and the client still boots.
func nameOverlay(d *vmdk.Disk, path, parent, name string) (*vmdk.Disk, error) {
	if err := d.Close(); err != nil {
		return nil, err
	}
	err := func() error {
		f, err := integrate.OpenImage(path, 0, "/", true)
		if err != nil {
			return err
		}
		if err := installed.SetComputerName(f, name); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	if err != nil {
		os.Remove(path)
		nd, cerr := vmdk.CreateDelta(path, parent, nil)
		if cerr != nil {
			return nil, cerr
		}
		return nd, fmt.Errorf("computer name %q not written (the overlay serves the base unnamed): %w", name, err)
	}
	return vmdk.Open(path, true)
}

// overlayWanted says whether initiator iqn gets an overlay: a client of the
// policy as its overlay switch says (on by default with --overlay-dir),
// initiator names the policy did not hand out always.
func overlayWanted(p *sanboot.StaticPolicy, iqn string) bool {
	if p == nil {
		return true
	}
	cl, err := p.ClientByIQN(iqn)
	if err != nil {
		return true
	}
	return cl.Overlay
}

// overlayName is the overlay file of an initiator: its IQN lower-cased with
// every character other than a-z, 0-9, '.' and '-' replaced by '_'.
func overlayName(iqn string) string {
	b := []byte(strings.ToLower(iqn))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b) + ".vmdk"
}

// sharedReadOnly is the base image handed to clients without an overlay:
// read-only, and not closed when a client's session ends.
type sharedReadOnly struct{ blockdev.Device }

func (sharedReadOnly) ReadOnly() bool { return true }
func (sharedReadOnly) Close() error   { return nil }
