package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs/convert"
)

// captureCommand is `xpboot image capture`: image convert that reads only
// what the file systems of the source use.
func captureCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "capture",
		Usage:     "copy a disk or image, reading only the clusters its FAT32 and NTFS file systems use",
		ArgsUsage: "SRC OUT",
		Description: "SRC is a block device (/dev/sdb, a loop device) or an image in any format image convert\n" +
			"reads. For every partition holding FAT32 (through its FAT) or NTFS (through $Bitmap) only\n" +
			"the file system's metadata and allocated clusters are read; free clusters become holes or\n" +
			"unallocated grains in OUT. The MBR, extended boot records, space outside partitions and\n" +
			"partitions whose file system is unknown, damaged, or (NTFS) not cleanly unmounted are\n" +
			"copied whole; the summary says which and why.\n\n" +
			"A mounted or otherwise held block device is refused, and so is a source that changes\n" +
			"while it is read (its allocation, size or modification time); --force-share copies\n" +
			"anyway and reports it. OUT appears only when complete. The output format follows OUT's\n" +
			"extension unless --to is given, as in image convert.",
		Flags: append(captureFlags(),
			&cli.BoolFlag{Name: "force-share", Aliases: []string{"U"}, Usage: "copy a mounted block device or an image another process holds, and keep a copy whose source changed meanwhile (reported)"},
		),
		Action: func(c *cli.Context) error {
			return e.convertImage(c, "image capture", true)
		},
	}
}

// captureFlags are the output flags capture shares with convert.
func captureFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "to", Aliases: []string{"O"}, Usage: "output format: raw, vmdk, vmdk-flat, vmdk-stream, vhd or vhd-fixed (default: from OUT's extension: .vmdk vmdk, .vhd vhd, .img/.raw/.bin raw)"},
		&cli.BoolFlag{Name: "exact", Usage: "refuse to round the virtual size up (VHD CHS geometry, whole sectors)"},
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing OUT, even the base of delta disks"},
		&cli.StringFlag{Name: "adapter", Value: "ide", Usage: "VMDK ddb.adapterType: ide, lsilogic or buslogic"},
		&cli.IntFlag{Name: "level", Value: 6, Usage: "deflate level (1-9) of vmdk-stream grains"},
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "compressing threads for vmdk-stream (default: all cores)"},
		&cli.BoolFlag{Name: "sync", Usage: "fsync the output before renaming it into place (qemu-img and cp do not)"},
		&cli.BoolFlag{Name: "json", Usage: "print a summary as JSON"},
	}
}

// convertImage is the action of image capture and image convert
// --skip-free: flags to convert.Options, the conversion, the summary.
func (e *env) convertImage(c *cli.Context, name string, skipFree bool) error {
	if c.NArg() != 2 {
		return cli.Exit(name+": need SRC and OUT; usage: xpboot "+name+" [--to FORMAT] SRC OUT", 2)
	}
	to, err := convertFormat(c.String("to"), c.Args().Get(1))
	if err != nil {
		return cli.Exit(name+": "+err.Error(), 2)
	}
	if l := c.Int("level"); l < 1 || l > 9 {
		return cli.Exit(fmt.Sprintf("%s: --level %d: want 1 to 9", name, l), 2)
	}
	switch c.String("adapter") {
	case "ide", "lsilogic", "buslogic":
	default:
		return cli.Exit(fmt.Sprintf("%s: --adapter %q: want ide, lsilogic or buslogic", name, c.String("adapter")), 2)
	}
	update, finish := e.meter("capture")
	sum, err := convert.Convert(c.Context, c.Args().Get(0), c.Args().Get(1), convert.Options{
		To:         to,
		Exact:      c.Bool("exact"),
		Force:      c.Bool("force"),
		Adapter:    c.String("adapter"),
		Level:      c.Int("level"),
		Workers:    c.Int("jobs"),
		Sync:       c.Bool("sync"),
		SkipFree:   skipFree,
		ForceShare: c.Bool("force-share"),
		Progress:   update,
		Log:        e.log,
	})
	finish()
	if err != nil {
		code := 1
		if errors.Is(err, convert.ErrSize) {
			code = 2
		}
		return cli.Exit(name+": "+err.Error(), code)
	}
	if c.Bool("json") {
		return e.printJSON(sum)
	}
	e.printCapture(sum)
	return nil
}

// printCapture prints the summary of a conversion that skipped free space:
// one line per partition, then the totals.
func (e *env) printCapture(sum *convert.Summary) {
	for _, p := range sum.Partitions {
		line := fmt.Sprintf("partition %d (type %s, %s, %s): %s", p.Index, p.Type, p.FS, convertBytes(p.Size), p.Method)
		switch p.Method {
		case convert.MethodAllocated:
			line += fmt.Sprintf(": %s used, read %s, skipped %s", convertBytes(p.UsedBytes), convertBytes(p.BytesRead), convertBytes(p.BytesSkipped))
			if p.BadClusters > 0 {
				line += fmt.Sprintf(", %d bad clusters not read", p.BadClusters)
			}
		case convert.MethodWhole:
			line += fmt.Sprintf(" (%s): read %s", p.Fallback, convertBytes(p.BytesRead))
		}
		fmt.Fprintln(e.stdout, line)
	}
	for _, n := range sum.Notices {
		fmt.Fprintln(e.stdout, "notice: "+n)
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s) -> %s (%s, %s): read %s, wrote %s, skipped %s; file %s; %.2f s\n",
		sum.Input, sum.InputFormat, convertBytes(sum.InputSize),
		sum.Output, sum.OutputFormat, convertBytes(sum.OutputSize),
		convertBytes(sum.BytesRead), convertBytes(sum.BytesWritten), convertBytes(sum.BytesSkipped),
		convertBytes(sum.FileBytes), sum.Seconds)
}
