package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/bootcheck"
)

func checkCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check offline that a system will boot",
		Subcommands: []*cli.Command{{
			Name:      "boot",
			Usage:     "list the boot drivers as NTLDR/setupldr loads them and report what keeps an iSCSI boot from loading",
			ArgsUsage: "IMG|IMG:/path|DIR",
			Description: "Reads an installed Windows 2000/XP/2003 (the SYSTEM hive and the driver files)\n" +
				"or a staged or integrated setup tree (txtsetup.sif, setupreg.hiv and the boot\n" +
				"directory's files), prints the boot drivers in load order (ServiceGroupOrder,\n" +
				"GroupOrderList tags, Start=0, Select\\Current) and reports findings naming the\n" +
				"key or file: a missing driver image, a boot driver depending on a non-boot\n" +
				"service, a demand-start service bound above the boot adapter, no boot adapter\n" +
				"for a --device ID, TCP/IP or iScsiPrt ordered before NDIS or the adapter, no\n" +
				"TCP/IP interface for the adapter, iScsiPrt or sanbootconf missing, a boot\n" +
				"driver in a group the list lacks, a static gateway on the boot adapter.\n" +
				"Exit status: 0 no findings, 1 findings, 2 usage, 3 the system could not be read.",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "device", Usage: "hardware ID of a network adapter that must be a boot adapter; repeatable"},
				partitionFlag,
				&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			},
			Action: func(c *cli.Context) error { return e.checkBoot(c) },
		}},
	}
}

func (e *env) checkBoot(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("check boot: want one IMG, IMG:/path or DIR", 2)
	}
	target := c.Args().First()
	fsys, closeTarget, err := openTarget(target, c.Int("partition"), false)
	if err != nil {
		return cli.Exit(fmt.Sprintf("check boot: %s: %s", target, strings.TrimPrefix(err.Error(), "integrate: ")), 3)
	}
	defer closeTarget()
	rep, err := bootcheck.Check(fsys, bootcheck.Options{Devices: c.StringSlice("device")})
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "bootcheck: ")
		if errors.Is(err, bootcheck.ErrNoSystem) {
			msg = "no installed Windows and no setup tree"
		}
		return cli.Exit(fmt.Sprintf("check boot: %s: %s", target, msg), 3)
	}
	if c.Bool("json") {
		if err := e.printJSON(rep); err != nil {
			return err
		}
	} else if err := printBootReport(e, rep); err != nil {
		return err
	}
	if n := len(rep.Findings); n > 0 {
		return cli.Exit(fmt.Sprintf("check boot: %s: %d finding(s)", target, n), 1)
	}
	return nil
}

func printBootReport(e *env, rep *bootcheck.Report) error {
	fmt.Fprintf(e.stdout, "%s system, %s (%s): boot drivers in load order\n", rep.Kind, rep.Hive, rep.ControlSet)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for i, d := range rep.Drivers {
		g := d.Group
		if d.Ungrouped {
			g += " (not in the list)"
		}
		tag := ""
		if d.Tag != 0 {
			tag = fmt.Sprintf("tag %d", d.Tag)
		}
		img := d.Image
		if d.Missing {
			img += " (missing)"
		}
		fmt.Fprintf(tw, "%3d\t%s\t%s\t%s\t%s\n", i+1, d.Service, g, tag, img)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range rep.NICs {
		fmt.Fprintf(e.stdout, "boot network adapter: %s (service %s, %s)\n", n.HardwareID, n.Service, n.GUID)
	}
	if len(rep.Findings) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no findings")
		return err
	}
	fmt.Fprintf(e.stdout, "%d finding(s):\n", len(rep.Findings))
	for _, f := range rep.Findings {
		fmt.Fprintf(e.stdout, "  %s: %s: %s\n", f.Code, f.Where, f.Message)
	}
	return nil
}
