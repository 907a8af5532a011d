package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
	"github.com/xpboot/xpboot/serve"
)

func serveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve disk images as iSCSI targets (iPXE sanboot, Windows XP/2003 initiator)",
		ArgsUsage: " ",
		Description: "Serves one image (--image) or the targets of an ietd.conf-style file (--config).\n" +
			"The disk is LUN 0 by default, so iPXE boots it with root-path iscsi:SERVER::::IQN.\n" +
			"CHAP secrets must have 12 to 16 characters, as the Windows iSCSI initiator requires.\n" +
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
			&cli.StringFlag{Name: "overlay-dir", Usage: "per-client write-back: keep --image (raw or VMDK) read-only and give each initiator IQN its own copy-on-write VMDK delta DIR/<iqn>.vmdk (xpboot overlay list/reset manage them)"},
			&cli.StringSliceFlag{Name: "chap", EnvVars: []string{"XPBOOT_CHAP"}, Usage: "USER:SECRET an initiator must prove (CHAP; 12 to 16 characters); repeatable; a command line is visible to every user in ps, so prefer --chap-file or the environment"},
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

// runServe maps the flags to a serve.Config, runs the server and renders
// its status.
func runServe(c *cli.Context, e *env) error {
	cfg, err := serveConfig(c, e)
	if err != nil {
		return serveExit(err)
	}
	cfg.Events = sanboot.NewEventLog(e.log, 0)
	status := newServeStatus(e, c.Bool("json"), cfg.Events)
	srv, err := serve.New(c.Context, cfg)
	if err != nil {
		return serveExit(err)
	}
	defer srv.Close()
	l := srv.Listening()
	status.listening(srv.Addr(), l.Targets, l.DHCP)
	err = srv.Serve(c.Context)
	status.stopped(err)
	if err != nil {
		return cli.Exit("serve: "+err.Error(), 1)
	}
	return nil
}

// serveExit gives configuration mistakes exit status 2, failures 1.
func serveExit(err error) error {
	if errors.Is(err, serve.ErrConfig) {
		return cli.Exit("serve: "+err.Error(), 2)
	}
	return cli.Exit("serve: "+err.Error(), 1)
}

// usage is a command-line mistake (exit status 2).
func usage(format string, a ...any) error { return cli.Exit("serve: "+fmt.Sprintf(format, a...), 2) }

// serveConfig maps the flags to a serve.Config, which serve.New checks.
func serveConfig(c *cli.Context, e *env) (serve.Config, error) {
	// netbootFlags only make sense with --dhcp full|proxy, imageFlags only
	// with --image.
	netbootFlags := []string{"interface", "dhcp-range", "router", "dns", "no-gateway", "ipxe-dir", "state-dir",
		"unknown", "server-ip", "install", "keep-san", "script", "clients", "ipv6-ra"}
	imageFlags := []string{"iqn", "lun", "read-only", "chap", "chap-file", "mutual-chap", "mutual-chap-file", "require-mutual"}
	cfg := serve.Config{Log: e.log, Listen: c.String("listen"), OverlayDir: c.String("overlay-dir")}
	if c.NArg() > 0 {
		return cfg, usage("unexpected argument %q", c.Args().First())
	}
	mode, err := sanboot.ParseMode(c.String("dhcp"))
	if err != nil {
		return cfg, usage("--dhcp %q: want off, full or proxy", c.String("dhcp"))
	}
	for _, f := range netbootFlags {
		if mode == sanboot.ModeOff && c.IsSet(f) {
			return cfg, usage("--%s needs --dhcp full or --dhcp proxy", f)
		}
	}
	image, config := c.String("image"), c.String("config")
	switch {
	case (image == "") == (config == ""):
		return cfg, usage("give exactly one of --image and --config")
	case cfg.OverlayDir != "" && image == "":
		return cfg, usage("--overlay-dir needs --image (the base every overlay is a delta of)")
	case cfg.OverlayDir != "" && c.Bool("read-only"):
		return cfg, usage("--overlay-dir and --read-only exclude each other: with overlays the base is never written and each client writes its own overlay; give clients the base read-only with \"overlay\": false in --clients")
	case c.Uint("lun") > 16383:
		return cfg, usage("--lun must be 0..16383")
	case c.IsSet("max-sessions-per-initiator") && c.Int("max-sessions-per-initiator") < 2:
		return cfg, usage("--max-sessions-per-initiator must be at least 2: the OS logs in beside iPXE's session (the iBFT handoff)")
	}
	if config != "" {
		for _, f := range imageFlags {
			if c.IsSet(f) {
				return cfg, usage("--%s applies to --image; put it in %s instead", f, config)
			}
		}
		if cfg.Targets, cfg.Discovery, err = serve.ReadConfigFile(config, e.log); err != nil {
			return cfg, err
		}
	} else {
		it := serve.ImageTarget{Image: image, IQN: c.String("iqn"), LUN: uint16(c.Uint("lun")), ReadOnly: c.Bool("read-only"), RequireMutual: c.Bool("require-mutual"),
			Accounts: serve.AccountSources{CHAP: c.StringSlice("chap"), CHAPFile: c.String("chap-file"), Mutual: c.String("mutual-chap"), MutualFile: c.String("mutual-chap-file")}}
		t, err := it.Target(e.log)
		if err != nil {
			return cfg, err
		}
		cfg.Targets = []iscsitarget.FileTarget{t}
	}
	if v := c.String("max-memory"); v != "" {
		n, err := parseSize(v)
		if err != nil || n < 1<<20 {
			return cfg, usage("--max-memory %q: want a size of at least 1M", v)
		}
		cfg.Tuning.MaxMemory = int(n)
	}
	cfg.Tuning.UnsolicitedData, cfg.Tuning.AllowGlobalReset = c.Bool("unsolicited-data"), c.Bool("allow-global-reset")
	cfg.Tuning.KeepAlive, cfg.Tuning.IdleTimeout = c.Duration("tcp-keepalive"), c.Duration("idle-timeout")
	cfg.Tuning.MaxSessionsPerInitiator = c.Int("max-sessions-per-initiator")
	if mode != sanboot.ModeOff {
		cfg.Netboot, err = netbootConfig(c, mode)
	}
	return cfg, err
}

// netbootConfig reads the DHCP/TFTP flags.
func netbootConfig(c *cli.Context, mode sanboot.Mode) (serve.Netboot, error) {
	nb := serve.Netboot{Mode: mode, Interface: c.String("interface"), IPXEDir: c.String("ipxe-dir"), Script: c.Bool("script"),
		Probe: 2 * time.Second, RouterAdvertisements: c.Bool("ipv6-ra"), Unknown: sanboot.UnknownClients(c.String("unknown")),
		NoGateway: c.Bool("no-gateway"), KeepSAN: c.Bool("keep-san"), Install: c.Bool("install")}
	text := serve.NetbootText{Range: c.String("dhcp-range"), Router: c.String("router"), DNS: c.StringSlice("dns"),
		ServerIP: c.String("server-ip"), StateDir: c.String("state-dir"), Clients: c.String("clients")}
	return nb, text.Fill(&nb)
}
