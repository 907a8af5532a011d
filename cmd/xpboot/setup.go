package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/setup"
)

func setupCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "setup",
		Usage: "prepare Windows 2000/XP/2003 setup on a disk from the installation media",
		Subcommands: []*cli.Command{{
			Name:  "stage",
			Usage: "leave on a disk what winnt32 /syspart /tempdrive /makelocalsource /noreboot leaves",
			UsageText: "xpboot setup stage --source ISO|DIR|IMG:/x.iso --target IMG[:/]|DIR [answers] [--driver DIR...]\n" +
				"   [--dry-run] [--json] [--force]",
			Description: "Copies the setup loaders to the root (NTLDR, NTDETECT.COM, $LDR$ = SETUPLDR.BIN,\n" +
				"TXTSETUP.SIF), writes BOOT.INI with the setup entry C:\\$WIN_NT$.~BT\\BOOTSECT.DAT as\n" +
				"default, the boot set to $WIN_NT$.~BT (dosnet.inf [FloppyFiles.*], the loader's\n" +
				"text-mode files, WINNT.SIF, BOOTSECT.DAT, SETUPREG.HIV) and the whole source to\n" +
				"$WIN_NT$.~LS (I386, and AMD64 on x64 media). The edition and architecture are\n" +
				"read from the media. On an image the target is a FAT32 or NTFS partition;\n" +
				"BOOTSECT.DAT is xpboot's boot sector for it loading $LDR$, the partition is made\n" +
				"active and xpboot's MBR and FAT32 or NTFS boot code are installed if the disk has\n" +
				"others. Room is checked before anything is written; a failed stage leaves the\n" +
				"image's file system as it was.\n" +
				"--driver and the other integration options integrate into the staged tree in the\n" +
				"same run, as xpboot integrate would afterwards.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "source", Aliases: []string{"s"}, Usage: "installation media: ISO image, directory, or IMG:/path of an ISO in a disk image", Required: true},
				&cli.StringFlag{Name: "target", Aliases: []string{"t"}, Usage: "disk image (IMG or IMG:/) or directory", Required: true},
				&cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Usage: "partition number (1-4); default: the active partition"},
				&cli.StringFlag{Name: "product-key", Usage: "WINNT.SIF [UserData] ProductKey (ProductID for Windows 2000)"},
				&cli.StringFlag{Name: "computer-name", Usage: "WINNT.SIF [UserData] ComputerName"},
				&cli.StringFlag{Name: "full-name", Usage: "WINNT.SIF [UserData] FullName"},
				&cli.StringFlag{Name: "org", Usage: "WINNT.SIF [UserData] OrgName"},
				&cli.StringFlag{Name: "admin-password", Usage: "WINNT.SIF [GuiUnattended] AdminPassword (\"*\" for none)"},
				&cli.StringFlag{Name: "timezone", Usage: "WINNT.SIF [GuiUnattended] TimeZone index, e.g. 85 for GMT"},
				&cli.BoolFlag{Name: "convert-ntfs", Usage: "[Unattended] FileSystem=ConvertNTFS: setup converts the FAT32 partition"},
				&cli.BoolFlag{Name: "unattended", Usage: "fully unattended setup; refused when a required answer is missing"},
				&cli.StringFlag{Name: "answer-file", Usage: "an unattend.txt / winnt.sif merged under the answers above"},
				&cli.StringFlag{Name: "oem", Usage: "a $OEM$ directory, staged as $WIN_NT$.~LS\\$OEM$ with OemPreinstall=Yes"},
				&cli.BoolFlag{Name: "migrate-inf", Usage: "write $WIN_NT$.~BT\\MIGRATE.INF mapping C: to the staged partition"},
				&cli.StringSliceFlag{Name: "driver", Aliases: []string{"d"}, Usage: "integrate this PnP driver package (as xpboot integrate); repeatable"},
				&cli.StringSliceFlag{Name: "textmode-driver", Usage: "integrate this text-mode driver disk DIR[:ID]; repeatable"},
				&cli.StringSliceFlag{Name: "device", Usage: "integrate only devices with this hardware ID; repeatable"},
				&cli.StringFlag{Name: "nic", Usage: "hardware ID of the network adapter that gets --ip/--dhcp"},
				&cli.StringFlag{Name: "ip", Usage: "static fallback address of the adapter, ADDR/PREFIX"},
				&cli.StringFlag{Name: "gateway", Usage: "default gateway for --ip"},
				&cli.BoolFlag{Name: "dhcp", Usage: "the adapter uses DHCP"},
				&cli.StringFlag{Name: "preconf", Usage: "PCI slot of the NIC, bus:device.function"},
				&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing stage"},
				&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print what would be written and write nothing"},
				&cli.BoolFlag{Name: "json", Usage: "print the staged layout as JSON"},
			},
			Action: func(c *cli.Context) error { return e.setupStage(c) },
		}, {
			Name:      "bootsect",
			Usage:     "write $WIN_NT$.~BT\\BOOTSECT.DAT for a tree staged into a directory and copied into the image",
			ArgsUsage: "IMG",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Usage: "partition number (1-4); default: the active partition"},
				&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("setup bootsect: want one IMG", 2)
				}
				res, err := setup.WriteBootSect(c.Args().First(), c.Int("partition"))
				if err != nil {
					return cli.Exit(strings.Replace(err.Error(), "setup: ", "setup bootsect: ", 1), 1)
				}
				if c.Bool("json") {
					return e.printJSON(res)
				}
				if !e.quiet {
					e.log.Info("wrote", "image", c.Args().First(), "path", res.Path, "boot_code", strings.Join(res.BootCode, "; "))
				}
				return nil
			},
		}},
	}
}

func setupFail(err error) error {
	return cli.Exit(strings.Replace(err.Error(), "setup: ", "setup stage: ", 1), 1)
}

func setupUsage(format string, a ...any) error {
	return cli.Exit("setup stage: "+fmt.Sprintf(format, a...), 2)
}

func (e *env) setupStage(c *cli.Context) error {
	if c.NArg() > 0 {
		return setupUsage("unexpected argument %q (options only; see xpboot setup stage --help)", c.Args().First())
	}
	opts := setup.Options{
		Answers: setup.Answers{ProductKey: c.String("product-key"), ComputerName: c.String("computer-name"),
			FullName: c.String("full-name"), Org: c.String("org"), AdminPassword: c.String("admin-password"), TimeZone: c.String("timezone")},
		Unattended: c.Bool("unattended"), ConvertNTFS: c.Bool("convert-ntfs"), OEMDir: c.String("oem"),
		MigrateINF: c.Bool("migrate-inf"), Force: c.Bool("force"), DryRun: c.Bool("dry-run"), Partition: c.Int("partition"),
		Context: c.Context,
	}
	if tz := opts.Answers.TimeZone; tz != "" {
		var n int
		if _, err := fmt.Sscan(tz, &n); err != nil || n < 0 || n > 300 {
			return setupUsage("--timezone %q: want the numeric winnt.sif TimeZone index, e.g. 85 for GMT", tz)
		}
	}
	if f := c.String("answer-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return cli.Exit(fmt.Sprintf("setup stage: --answer-file: %v", err), 3)
		}
		opts.AnswerFile, opts.AnswerFileName = b, f
	}
	if d := opts.OEMDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return setupUsage("--oem %s: not a directory", d)
		}
	}
	req, err := setupIntegrate(c)
	if err != nil {
		return err
	}
	opts.Integrate = req
	if !opts.DryRun {
		update, finish := e.meter("setup stage")
		opts.Progress = update
		defer finish()
	}
	if c.Context.Err() != nil {
		return cli.Exit("setup stage: interrupted; nothing written", 130)
	}
	res, err := setup.Stage(c.String("source"), c.String("target"), opts)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return cli.Exit("setup stage: interrupted; nothing staged", 130)
		}
		if errors.Is(err, os.ErrNotExist) {
			return cli.Exit(strings.Replace(err.Error(), "setup: ", "setup stage: ", 1), 3)
		}
		return setupFail(err)
	}
	p := res.Plan
	for _, w := range p.Warnings {
		e.log.Warn(w)
	}
	if res.Integration != nil {
		for _, w := range res.Integration.Warnings {
			e.log.Warn(w)
		}
	}
	if c.Bool("json") {
		return e.printJSON(res)
	}
	if opts.DryRun {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, it := range p.Items {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", it.Size, it.Path, it.Why)
		}
		for _, b := range p.BootCode {
			fmt.Fprintf(tw, "-\t(boot code)\t%s\n", b)
		}
		if req != nil {
			fmt.Fprintf(tw, "-\t(integrate)\t%d driver packages, %d text-mode drivers after staging\n", len(req.Drivers), len(req.TextMode))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !e.quiet {
		msg := "staged"
		if opts.DryRun {
			msg = "dry run: nothing written"
		}
		m := p.Media
		args := []any{"target", p.Target, "os", m.OS, "edition", m.Edition, "sp", m.ServicePack, "arch", m.Arch,
			"files", len(p.Items), "bytes", p.Bytes, "needed", p.Needed, "free", p.Free}
		if res.Integration != nil {
			args = append(args, "integrated_files_changed", res.Integration.Changed)
		}
		e.log.Info(msg, args...)
	}
	return nil
}

// setupIntegrate builds the integration request from the integrate
// options; nil when none is given.
func setupIntegrate(c *cli.Context) (*setup.IntegrateRequest, error) {
	drv, tm := c.StringSlice("driver"), c.StringSlice("textmode-driver")
	if len(drv) == 0 && len(tm) == 0 {
		for _, f := range []string{"device", "nic", "ip", "gateway", "dhcp", "preconf"} {
			if c.IsSet(f) {
				return nil, setupUsage("--%s needs --driver or --textmode-driver", f)
			}
		}
		return nil, nil
	}
	req := &setup.IntegrateRequest{Drivers: drv, Devices: c.StringSlice("device"),
		Options: integrate.Options{NIC: c.String("nic"), DHCP: c.Bool("dhcp"), Preconf: c.String("preconf")}}
	for _, s := range tm {
		dir, id := textModeSpec(s)
		req.TextMode = append(req.TextMode, setup.TextModeDriver{Dir: dir, ID: id})
	}
	if s := c.String("ip"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, setupUsage("--ip %q: want ADDR/PREFIX, e.g. 192.168.1.50/24", s)
		}
		req.Options.Address = p
	}
	if s := c.String("gateway"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, setupUsage("--gateway %q: want an IPv4 address", s)
		}
		req.Options.Gateway = a
	}
	if _, err := req.Options.Check(); err != nil {
		return nil, setupUsage("%s", strings.TrimPrefix(err.Error(), "integrate: "))
	}
	return req, nil
}
