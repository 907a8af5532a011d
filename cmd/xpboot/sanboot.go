package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/sanboot"
	"github.com/xpboot/xpboot/sanboot/media"
)

// sanbootCommand prints what iPXE needs to boot from an xpboot target, for
// users whose DHCP server or NIC ROM is not xpboot's.
func sanbootCommand(e *env) *cli.Command {
	targetFlags := func() []cli.Flag {
		return []cli.Flag{
			&cli.StringFlag{Name: "server", Required: true, Usage: "address of the iSCSI portal (IPv4 or host name)"},
			&cli.IntFlag{Name: "port", Value: sanboot.DefaultISCSIPort, Usage: "iSCSI port"},
			&cli.StringFlag{Name: "iqn", Required: true, Usage: "target name"},
			&cli.IntFlag{Name: "lun", Usage: "LUN of the disk (0-255)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		}
	}
	return &cli.Command{
		Name:  "sanboot",
		Usage: "print an iPXE root-path or SAN boot script for an iSCSI target",
		Description: "For machines that get DHCP from another server or run a flashed iPXE ROM.\n" +
			"Examples:\n" +
			"   xpboot sanboot rootpath --server 10.0.0.1 --iqn iqn.2026-01.org.xpboot:disk\n" +
			"   xpboot sanboot script --server 10.0.0.1 --iqn iqn.2026-01.org.xpboot:disk \\\n" +
			"       --chap user:secret123456 --initiator-iqn 'iqn.2026-01.org.xpboot:client-${mac:hexhyp}' --no-gateway > boot.ipxe\n" +
			"   xpboot sanboot media --format iso --out sanboot.iso --server 10.0.0.1 --iqn iqn.2026-01.org.xpboot:disk \\\n" +
			"       --chap user:secret123456 --no-gateway",
		Subcommands: []*cli.Command{
			sanbootMediaCommand(e),
			{
				Name:      "rootpath",
				Usage:     "print the DHCP option 17 root-path, iscsi:SERVER::PORT:LUN:IQN",
				ArgsUsage: " ",
				Flags:     targetFlags(),
				Action: func(c *cli.Context) error {
					t, err := sanbootTarget(c)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return e.printJSON(struct {
							RootPath string         `json:"root_path"`
							Target   sanboot.Target `json:"target"`
						}{t.RootPath(), t})
					}
					_, err = fmt.Fprintln(e.stdout, t.RootPath())
					return err
				},
			},
			{
				Name:      "script",
				Usage:     "print an iPXE script that sets the initiator and credentials and SAN-boots the target",
				ArgsUsage: " ",
				Flags:     append(targetFlags(), scriptFlags()...),
				Action: func(c *cli.Context) error {
					t, err := sanbootTarget(c)
					if err != nil {
						return err
					}
					s, err := sanbootScript(c, t)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return e.printJSON(struct {
							RootPath string `json:"root_path"`
							Script   string `json:"script"`
						}{t.RootPath(), s})
					}
					_, err = io.WriteString(e.stdout, s)
					return err
				},
			},
		},
	}
}

// scriptFlags are the flags of `sanboot script` beyond the target's,
// shared with `sanboot media`.
func scriptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "chap", EnvVars: []string{"XPBOOT_CHAP"}, Usage: "USER:SECRET the initiator proves (CHAP; secret ≥ 12 characters)"},
		&cli.StringFlag{Name: "mutual-chap", EnvVars: []string{"XPBOOT_MUTUAL_CHAP"}, Usage: "USER:SECRET the target must prove (mutual CHAP)"},
		&cli.StringFlag{Name: "initiator-iqn", Usage: "initiator name; iPXE expands ${mac:hexhyp} and similar settings"},
		&cli.BoolFlag{Name: "no-gateway", Usage: "clear the DHCP gateway before booting (Microsoft initiator gateway route, KB 960104)"},
		&cli.BoolFlag{Name: "install", Usage: "sanhook the disk and exit to the next boot device (install onto the iSCSI disk)"},
		&cli.BoolFlag{Name: "keep-san", Usage: "set keep-san 1: keep the disk attached if the boot fails or returns"},
		&cli.BoolFlag{Name: "no-dhcp", Usage: "omit the leading `dhcp` (for scripts chainloaded after DHCP)"},
	}
}

// sanbootScript builds the iPXE script from the target and script flags.
func sanbootScript(c *cli.Context, t sanboot.Target) (string, error) {
	var err error
	if t.CHAPUser, t.CHAPSecret, err = sanbootAccount(c, "chap"); err != nil {
		return "", err
	}
	if t.MutualUser, t.MutualSecret, err = sanbootAccount(c, "mutual-chap"); err != nil {
		return "", err
	}
	cfg := sanboot.ScriptConfig{
		Target:       t,
		InitiatorIQN: c.String("initiator-iqn"),
		DHCP:         !c.Bool("no-dhcp"),
		NoGateway:    c.Bool("no-gateway"),
		Install:      c.Bool("install"),
		KeepSAN:      c.Bool("keep-san"),
	}
	s, err := sanboot.Script(cfg)
	if err != nil {
		return "", cli.Exit("sanboot "+c.Command.Name+": "+err.Error(), 2)
	}
	return s, nil
}

// sanbootTarget reads the target flags.
func sanbootTarget(c *cli.Context) (sanboot.Target, error) {
	if c.NArg() > 0 {
		return sanboot.Target{}, cli.Exit(fmt.Sprintf("sanboot %s: unexpected argument %q", c.Command.Name, c.Args().First()), 2)
	}
	t := sanboot.Target{Server: c.String("server"), Port: c.Int("port"), IQN: c.String("iqn"), LUN: c.Int("lun")}
	if t.Port == sanboot.DefaultISCSIPort {
		t.Port = 0
	}
	if err := t.Validate(); err != nil {
		return t, cli.Exit(fmt.Sprintf("sanboot %s: %v", c.Command.Name, err), 2)
	}
	return t, nil
}

// sanbootAccount splits a USER:SECRET flag at the first colon.
func sanbootAccount(c *cli.Context, flag string) (user, secret string, err error) {
	v := c.String(flag)
	if v == "" {
		return "", "", nil
	}
	u, s, ok := strings.Cut(v, ":")
	if !ok || u == "" || s == "" {
		return "", "", cli.Exit(fmt.Sprintf("sanboot %s: --%s: want USER:SECRET", c.Command.Name, flag), 2)
	}
	return u, s, nil
}

// sanbootMediaCommand writes a CD/USB image that runs iPXE with a SAN boot
// script, for PCs whose network card has no PXE ROM.
func sanbootMediaCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "format", Value: string(media.ISO), Usage: "iso (CD image, also bootable from a USB stick), usb (the same hybrid image) or floppy (1.44 MB FAT12)"},
		&cli.StringFlag{Name: "out", Required: true, Usage: "image file to write (replaced atomically)"},
		&cli.StringFlag{Name: "script", Usage: "use this iPXE script (starting with #!ipxe) instead of one made from the target flags"},
		&cli.StringFlag{Name: "server", Usage: "address of the iSCSI portal (IPv4 or host name)"},
		&cli.IntFlag{Name: "port", Value: sanboot.DefaultISCSIPort, Usage: "iSCSI port"},
		&cli.StringFlag{Name: "iqn", Usage: "target name"},
		&cli.IntFlag{Name: "lun", Usage: "LUN of the disk (0-255)"},
	}
	flags = append(flags, scriptFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "ipxe-dir", Value: media.DefaultIPXEDir, Usage: "directory holding ipxe.lkrn (Debian package ipxe; symbolic links are followed)"},
		&cli.StringFlag{Name: "isolinux-dir", Value: media.DefaultISOLinuxDir, Usage: "directory holding isolinux.bin and isohdpfx.bin (Debian package isolinux)"},
		&cli.StringFlag{Name: "syslinux-modules", Value: media.DefaultModulesDir, Usage: "directory holding ldlinux.c32 (Debian package syslinux-common)"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
	)
	return &cli.Command{
		Name:      "media",
		Usage:     "write a boot CD, USB or floppy image that SAN-boots the target with iPXE (for PCs without a PXE ROM)",
		ArgsUsage: " ",
		Description: "The image holds Debian's ipxe.lkrn and the script `sanboot script` prints\n" +
			"for the same flags (or --script FILE). iso/usb: ISOLINUX starts iPXE; the image boots\n" +
			"from a CD and, written to a USB stick (dd), from the stick. floppy: a 1.44 MB FAT12\n" +
			"image with xpboot's own loader. Credentials in the script are never printed; the\n" +
			"image is written with mode 0600 when it holds any.",
		Flags:  flags,
		Action: e.sanbootMedia,
	}
}

func (e *env) sanbootMedia(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("sanboot media: unexpected argument %q", c.Args().First()), 2)
	}
	var script string
	secret := false
	if p := c.String("script"); p != "" {
		for _, f := range []string{"server", "iqn", "lun", "port", "chap", "mutual-chap", "initiator-iqn", "no-gateway", "install", "keep-san", "no-dhcp"} {
			if c.IsSet(f) {
				return cli.Exit(fmt.Sprintf("sanboot media: --script and --%s exclude each other (the script says everything)", f), 2)
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return cli.Exit("sanboot media: "+err.Error(), 3)
		}
		script = string(b)
		// A script of the user's own may set passwords; treat it as
		// secret rather than guess wrong.
		secret = strings.Contains(strings.ToLower(script), "password")
		if err := media.CheckScript(script); err != nil {
			return cli.Exit(fmt.Sprintf("sanboot media: %s: %v", p, err), 1)
		}
	} else {
		if c.String("server") == "" || c.String("iqn") == "" {
			return cli.Exit("sanboot media: give --server and --iqn (or --script FILE)", 2)
		}
		t, err := sanbootTarget(c)
		if err != nil {
			return err
		}
		if script, err = sanbootScript(c, t); err != nil {
			return err
		}
		secret = c.String("chap") != "" || c.String("mutual-chap") != ""
	}
	res, err := media.Write(c.String("out"), media.Config{
		Format:      media.Format(c.String("format")),
		Script:      script,
		Secret:      secret,
		IPXEDir:     c.String("ipxe-dir"),
		ISOLinuxDir: c.String("isolinux-dir"),
		ModulesDir:  c.String("syslinux-modules"),
	})
	if err != nil {
		code := 1
		if errors.Is(err, media.ErrUnsupported) {
			code = 2
		}
		// Most of the package's errors start with "media: " already.
		msg := err.Error()
		if !strings.HasPrefix(msg, "media: ") {
			msg = "media: " + msg
		}
		return cli.Exit("sanboot "+msg, code)
	}
	if c.Bool("json") {
		return e.printJSON(res)
	}
	ver := res.IPXEVersion
	if ver == "" {
		ver = "version unknown"
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %s image, %d bytes, mode %s; %s starts iPXE %s (%s)\n",
		res.Path, res.Format, res.Bytes, res.Mode, res.Loader, ver, res.IPXEPath)
	return err
}
