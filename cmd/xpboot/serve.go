package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/blockdev"
	"github.com/xpboot/xpboot/iscsitarget"
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
			"   xpboot serve --config /etc/iet/ietd.conf",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "disk image to serve (raw; VMDK/VHD once imagefs opens them)"},
			&cli.StringFlag{Name: "config", Usage: "ietd.conf-style file with several targets, LUNs and CHAP users"},
			&cli.StringFlag{Name: "iqn", Usage: "target name (default iqn.2026-01.org.xpboot:<image name>)"},
			&cli.UintFlag{Name: "lun", Value: 0, Usage: "LUN number of --image"},
			&cli.StringFlag{Name: "listen", Value: ":3260", Usage: "address to listen on, ADDR[:PORT]"},
			&cli.BoolFlag{Name: "read-only", Usage: "refuse writes (DATA PROTECT) and open the image read-only"},
			&cli.StringSliceFlag{Name: "chap", Usage: "USER:SECRET an initiator must prove (CHAP); repeatable"},
			&cli.StringFlag{Name: "mutual-chap", Usage: "USER:SECRET the target proves itself with when asked (mutual CHAP)"},
			&cli.BoolFlag{Name: "require-mutual", Usage: "refuse initiators that do not ask for mutual CHAP"},
			&cli.BoolFlag{Name: "unsolicited-data", Usage: "offer ImmediateData=Yes and InitialR2T=No"},
			&cli.StringFlag{Name: "dhcp", Value: "off", Usage: "built-in DHCP/TFTP for iPXE: only \"off\" for now"},
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
	if d := c.String("dhcp"); d != "off" {
		return cli.Exit(fmt.Sprintf("serve: --dhcp %s: the built-in DHCP/TFTP server is not built yet (a later issue); use --dhcp off and your own DHCP server", d), 3)
	}
	image, config := c.String("image"), c.String("config")
	if (image == "") == (config == "") {
		return cli.Exit("serve: give exactly one of --image and --config", 2)
	}
	var fc *iscsitarget.FileConfig
	if config != "" {
		for _, f := range []string{"iqn", "lun", "read-only", "chap", "mutual-chap", "require-mutual"} {
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
		for _, v := range c.StringSlice("chap") {
			a, err := parseAccount("chap", v)
			if err != nil {
				return cli.Exit("serve: "+err.Error(), 2)
			}
			t.Auth.Incoming = append(t.Auth.Incoming, a)
		}
		if v := c.String("mutual-chap"); v != "" {
			a, err := parseAccount("mutual-chap", v)
			if err != nil {
				return cli.Exit("serve: "+err.Error(), 2)
			}
			t.Auth.Outgoing = &a
		}
		t.Auth.RequireMutual = c.Bool("require-mutual")
		if t.Auth.RequireMutual && t.Auth.Outgoing == nil {
			return cli.Exit("serve: --require-mutual needs --mutual-chap", 2)
		}
		if t.Auth.Outgoing != nil && len(t.Auth.Incoming) == 0 {
			return cli.Exit("serve: --mutual-chap needs at least one --chap user (mutual CHAP follows one-way CHAP)", 2)
		}
		fc = &iscsitarget.FileConfig{Targets: []iscsitarget.FileTarget{t}}
	}

	cfg := iscsitarget.Config{
		DiscoveryAuth:   fc.Discovery,
		Logger:          e.log,
		UnsolicitedData: c.Bool("unsolicited-data"),
		AuthLog: func(m iscsitarget.ConnMeta, method string, err error) {
			if err != nil {
				e.log.Warn("authentication failed", "remote", m.RemoteAddr.String(), "initiator", m.InitiatorName, "target", m.TargetName, "method", method, "err", err)
			}
		},
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
			d, format, err := imagefs.OpenDevice(fl.Path, !fl.ReadOnly)
			if err != nil {
				if errors.Is(err, blockdev.ErrLocked) {
					return cli.Exit(fmt.Sprintf("serve: %v (is another xpboot using it?)", err), 1)
				}
				return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
			}
			devs = append(devs, d)
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
	e.log.Info("iSCSI target listening", "listen", l.Addr().String())
	if err := srv.Serve(c.Context, l); err != nil {
		return cli.Exit(fmt.Sprintf("serve: %v", err), 1)
	}
	e.log.Info("iSCSI target stopped; images flushed")
	return nil
}

func loopbackOnly(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
