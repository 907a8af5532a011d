package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/convert"
)

// convertCommand is `xpboot image convert`.
func convertCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert a disk image between raw, VMDK and VHD",
		ArgsUsage: "IN OUT",
		Description: "IN may be raw, any VMDK (monolithicSparse, monolithicFlat, streamOptimized, split, delta)\n" +
			"or any VHD (fixed, dynamic, differencing); its format is detected from its content. Delta and\n" +
			"differencing disks are flattened through their parents. OUT is written under a temporary name\n" +
			"and renamed into place when complete. Holes and zero runs are not stored.\n\n" +
			"Without --to the format follows OUT's extension (.vmdk, .vhd, .img/.raw/.bin); a --to that\n" +
			"contradicts the extension (raw into x.vmdk) is refused.\n\n" +
			"Formats (--to): raw; vmdk (monolithicSparse); vmdk-flat (descriptor OUT plus data file\n" +
			"OUT-flat.vmdk); vmdk-stream (streamOptimized, compressed on all cores); vhd (dynamic);\n" +
			"vhd-fixed. A VHD size is rounded up to a CHS geometry that every reader agrees on, with a\n" +
			"notice; --exact refuses any size change instead.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Aliases: []string{"O"}, Usage: "output format: raw, vmdk, vmdk-flat, vmdk-stream, vhd or vhd-fixed (default: from OUT's extension: .vmdk vmdk, .vhd vhd, .img/.raw/.bin raw)"},
			&cli.BoolFlag{Name: "exact", Usage: "refuse to round the virtual size up (VHD CHS geometry, whole sectors)"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing OUT, even the base of delta disks"},
			&cli.StringFlag{Name: "adapter", Value: "ide", Usage: "VMDK ddb.adapterType: ide, lsilogic or buslogic"},
			&cli.IntFlag{Name: "level", Value: 6, Usage: "deflate level (1-9) of vmdk-stream grains"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "compressing threads for vmdk-stream (default: all cores)"},
			&cli.BoolFlag{Name: "sync", Usage: "fsync the output before renaming it into place (qemu-img and cp do not)"},
			&cli.BoolFlag{Name: "json", Usage: "print a summary as JSON"},
			&cli.BoolFlag{Name: "skip-free", Usage: "read only the clusters the FAT32 and NTFS file systems use, as image capture does"},
			&cli.BoolFlag{Name: "force-share", Aliases: []string{"U"}, Usage: "with --skip-free: copy a mounted block device, or a source that changes meanwhile (reported)"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("skip-free") {
				return e.convertImage(c, "image convert", true)
			}
			if c.NArg() != 2 {
				return cli.Exit("image convert: need IN and OUT; usage: xpboot image convert [--to FORMAT] IN OUT", 2)
			}
			to, err := convertFormat(c.String("to"), c.Args().Get(1))
			if err != nil {
				return cli.Exit("image convert: "+err.Error(), 2)
			}
			if l := c.Int("level"); l < 1 || l > 9 {
				return cli.Exit(fmt.Sprintf("image convert: --level %d: want 1 to 9", l), 2)
			}
			switch c.String("adapter") {
			case "ide", "lsilogic", "buslogic":
			default:
				return cli.Exit(fmt.Sprintf("image convert: --adapter %q: want ide, lsilogic or buslogic", c.String("adapter")), 2)
			}
			update, finish := e.meter("convert")
			sum, err := convert.Convert(c.Context, c.Args().Get(0), c.Args().Get(1), convert.Options{
				To:       to,
				Exact:    c.Bool("exact"),
				Force:    c.Bool("force"),
				Adapter:  c.String("adapter"),
				Level:    c.Int("level"),
				Workers:  c.Int("jobs"),
				Sync:     c.Bool("sync"),
				Progress: update,
				Log:      e.log,
			})
			finish()
			if err != nil {
				code := 1
				if errors.Is(err, convert.ErrSize) {
					code = 2
				}
				return cli.Exit("image convert: "+err.Error(), code)
			}
			if c.Bool("json") {
				return e.printJSON(sum)
			}
			fmt.Fprintf(e.stdout, "%s (%s, %s) -> %s (%s, %s): read %s, wrote %s, skipped %s; file %s; %.2f s\n",
				sum.Input, sum.InputFormat, convertBytes(sum.InputSize),
				sum.Output, sum.OutputFormat, convertBytes(sum.OutputSize),
				convertBytes(sum.BytesRead), convertBytes(sum.BytesWritten), convertBytes(sum.BytesSkipped),
				convertBytes(sum.FileBytes), sum.Seconds)
			return nil
		},
	}
}

// convertBytes renders a byte count with a binary unit: humanSize, the
// CLI's one byte formatter.
func convertBytes(n int64) string { return humanSize(n) }

// convertFormat returns the output format: --to when given, else the one
// OUT's extension names. A --to that contradicts the extension is refused:
// a raw image named x.vmdk misleads every later reader of the name.
func convertFormat(to, out string) (imagefs.Format, error) {
	ext := strings.ToLower(filepath.Ext(out))
	var byName imagefs.Format
	switch ext {
	case ".vmdk":
		byName = imagefs.FormatVMDKSparse
	case ".vhd", ".vpc":
		byName = imagefs.FormatVHDDynamic
	case ".img", ".raw", ".bin", ".dd", ".ima":
		byName = imagefs.FormatRaw
	}
	if to == "" {
		if byName == "" {
			return "", fmt.Errorf("cannot tell the output format from %q: give --to raw, vmdk, vmdk-flat, vmdk-stream, vhd or vhd-fixed", out)
		}
		return byName, nil
	}
	f, err := imagefs.ParseFormat(to)
	if err != nil {
		return "", fmt.Errorf("--to: %w", err)
	}
	if byName != "" && (f.IsVMDK() != byName.IsVMDK() || f.IsVHD() != byName.IsVHD()) {
		return "", fmt.Errorf("--to %s would write a %s image named %s: use an extension that matches, or another --to", to, f, filepath.Base(out))
	}
	return f, nil
}
