package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/sanboot"
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
			"       --chap user:secret123456 --initiator-iqn 'iqn.2026-01.org.xpboot:client-${mac:hexhyp}' --no-gateway > boot.ipxe",
		Subcommands: []*cli.Command{
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
				Flags: append(targetFlags(),
					&cli.StringFlag{Name: "chap", EnvVars: []string{"XPBOOT_CHAP"}, Usage: "USER:SECRET the initiator proves (CHAP; secret ≥ 12 characters)"},
					&cli.StringFlag{Name: "mutual-chap", EnvVars: []string{"XPBOOT_MUTUAL_CHAP"}, Usage: "USER:SECRET the target must prove (mutual CHAP)"},
					&cli.StringFlag{Name: "initiator-iqn", Usage: "initiator name; iPXE expands ${mac:hexhyp} and similar settings"},
					&cli.BoolFlag{Name: "no-gateway", Usage: "clear the DHCP gateway before booting (Microsoft initiator gateway route, KB 960104)"},
					&cli.BoolFlag{Name: "install", Usage: "sanhook the disk and exit to the next boot device (install onto the iSCSI disk)"},
					&cli.BoolFlag{Name: "keep-san", Usage: "set keep-san 1: keep the disk attached if the boot fails or returns"},
					&cli.BoolFlag{Name: "no-dhcp", Usage: "omit the leading `dhcp` (for scripts chainloaded after DHCP)"},
				),
				Action: func(c *cli.Context) error {
					t, err := sanbootTarget(c)
					if err != nil {
						return err
					}
					if t.CHAPUser, t.CHAPSecret, err = sanbootAccount(c, "chap"); err != nil {
						return err
					}
					if t.MutualUser, t.MutualSecret, err = sanbootAccount(c, "mutual-chap"); err != nil {
						return err
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
						return cli.Exit("sanboot script: "+err.Error(), 2)
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
		return "", "", cli.Exit(fmt.Sprintf("sanboot script: --%s: want USER:SECRET", flag), 2)
	}
	return u, s, nil
}
