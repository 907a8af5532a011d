package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs/check"
)

func imageCheckCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "check a disk image's container, partition table and FAT32/NTFS file systems without changing it",
		ArgsUsage: "IMG",
		Description: "Checks the container like qemu-img check (VMDK: header, descriptor against the\n" +
			"extents, grain directory and tables in range and not overlapping, redundant grain\n" +
			"directory; VHD: footer and its copy, dynamic header, BAT entries in range and not\n" +
			"overlapping, block bitmaps; raw: whole sectors), the MBR partition table (boot\n" +
			"flags, overlaps, partitions past the disk's end, extended boot record chains), then\n" +
			"each FAT32 volume (backup boot sector, FSInfo free count and next-free hint, FAT\n" +
			"copies, lost clusters, cross-linked chains, chains shorter or longer than the file,\n" +
			"entries pointing outside the volume, '.' and '..') and each NTFS volume ($MFTMirr,\n" +
			"dirty flag, $LogFile, record fixups, $MFT $BITMAP against in-use flags, $Bitmap\n" +
			"against every runlist, $I30 index order and references). Each finding names the\n" +
			"structure, the byte offset and the file where known. Nothing is repaired.\n" +
			"Exit status: 0 clean, 1 findings, 2 usage, 3 the image could not be read.",
		Flags: []cli.Flag{forceShareFlag, &cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("image check: want exactly one image", exitUsage)
			}
			path := c.Args().First()
			rep, err := check.Image(c.Context, path, check.Options{Unlocked: c.Bool("force-share")})
			if err != nil {
				if c.Context.Err() != nil {
					return err // exit 130 (applyConventions)
				}
				return cli.Exit(fmt.Sprintf("image check: %v", err), exitUnreadable)
			}
			if c.Bool("json") {
				out := struct {
					*check.Report
					Clean bool `json:"clean"`
				}{rep, len(rep.Findings) == 0}
				if err := e.printJSON(out); err != nil {
					return err
				}
			} else {
				printCheckReport(e, rep)
			}
			if n := len(rep.Findings); n > 0 {
				return cli.Exit(fmt.Sprintf("image check: %s: %d finding(s), %d error(s)", path, n, rep.Errors()), 1)
			}
			return nil
		},
	}
}

func printCheckReport(e *env, rep *check.Report) {
	for _, c := range rep.Checked {
		what := c.What
		if c.Partition > 0 {
			what = fmt.Sprintf("partition %d", c.Partition)
		}
		if c.Skipped != "" {
			e.log.Info("not checked", "what", what, "kind", c.Kind, "why", c.Skipped)
		} else {
			e.log.Debug("checked", "what", what, "kind", c.Kind)
		}
	}
	for _, f := range rep.Findings {
		where := fmt.Sprintf("0x%x", f.Offset)
		if f.File != "" && f.File != rep.Path {
			where = f.File + ":" + where
		}
		if f.Partition > 0 {
			where = fmt.Sprintf("partition %d, disk byte %s", f.Partition, where)
		} else if f.File == "" {
			where = "disk byte " + where
		} else {
			where = "file byte " + where
		}
		path := ""
		if f.Path != "" {
			path = " " + f.Path + ":"
		}
		fmt.Fprintf(e.stdout, "%s: %s (%s):%s %s\n", f.Severity, f.Structure, where, path, f.Message)
	}
	if len(rep.Findings) == 0 && !e.quiet {
		var kinds []string
		for _, c := range rep.Checked {
			if c.Skipped == "" && c.Kind != "" {
				kinds = append(kinds, c.Kind)
			}
		}
		fmt.Fprintf(e.stdout, "%s: no findings (checked %s)\n", rep.Path, strings.Join(kinds, ", "))
	}
}

func imageCompareCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare the contents of two disk images across containers, or with --files the file trees of two partitions",
		ArgsUsage: "A B",
		Description: "Compares the virtual disks A and B whatever their containers (raw, VMDK, VHD),\n" +
			"like qemu-img compare: ranges both leave unallocated are skipped, a range one side\n" +
			"leaves unallocated must read as zeros there. Disks of different sizes are equal\n" +
			"when the extra part of the larger reads as zeros, unless --strict.\n" +
			"With --files, compares the file trees of one partition of each (A:N and B:N, or\n" +
			"--partition given once for both or twice for A then B; default the active one):\n" +
			"files added, removed or changed, with their sizes.\n" +
			"Exit status: 0 identical, 1 different, 2 usage, 3 an image could not be read.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "strict", Aliases: []string{"s"}, Usage: "disks of different sizes differ"},
			&cli.BoolFlag{Name: "files", Usage: "compare the file trees of a partition of each image"},
			&cli.IntSliceFlag{Name: "partition", Aliases: []string{"p"}, Usage: "with --files: partition number, once for both images or twice (A, then B)"},
			forceShareFlag,
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("image compare: want two images, A and B", exitUsage)
			}
			if c.Bool("files") {
				return e.compareFiles(c)
			}
			if len(c.IntSlice("partition")) > 0 {
				return cli.Exit("image compare: --partition needs --files", exitUsage)
			}
			a, b := c.Args().Get(0), c.Args().Get(1)
			update, finish := e.meter("compare")
			res, err := check.Compare(c.Context, a, b, check.CompareOptions{Strict: c.Bool("strict"), Unlocked: c.Bool("force-share"), Progress: update})
			finish()
			if err != nil {
				if c.Context.Err() != nil {
					return err
				}
				return cli.Exit(fmt.Sprintf("image compare: %v", err), exitUnreadable)
			}
			if c.Bool("json") {
				if err := e.printJSON(res); err != nil {
					return err
				}
			} else if res.Identical {
				if !e.quiet {
					fmt.Fprintln(e.stdout, "Images are identical.")
				}
			} else if res.Reason == "size" {
				fmt.Fprintf(e.stdout, "Image size mismatch: %s has %d bytes, %s has %d\n", a, res.SizeA, b, res.SizeB)
			} else {
				fmt.Fprintf(e.stdout, "Content mismatch at offset %d (sector %d)\n", res.FirstDiff, res.FirstDiff/512)
			}
			if !res.Identical {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// splitPartition takes "IMG:N" apart when IMG:N is not itself a file.
func splitPartition(arg string) (string, int) {
	i := strings.LastIndexByte(arg, ':')
	if i <= 0 {
		return arg, 0
	}
	n, err := strconv.Atoi(arg[i+1:])
	if err != nil || n < 1 {
		return arg, 0
	}
	if _, err := os.Stat(arg); err == nil {
		return arg, 0
	}
	return arg[:i], n
}

func (e *env) compareFiles(c *cli.Context) error {
	a, pa := splitPartition(c.Args().Get(0))
	b, pb := splitPartition(c.Args().Get(1))
	switch ps := c.IntSlice("partition"); len(ps) {
	case 0:
	case 1:
		if pa == 0 {
			pa = ps[0]
		}
		if pb == 0 {
			pb = ps[0]
		}
	case 2:
		pa, pb = ps[0], ps[1]
	default:
		return cli.Exit("image compare: --partition at most twice (A, then B)", exitUsage)
	}
	res, err := check.CompareFiles(c.Context, a, pa, b, pb, c.Bool("force-share"))
	if err != nil {
		if c.Context.Err() != nil {
			return err
		}
		return cli.Exit(fmt.Sprintf("image compare --files: %v", err), exitUnreadable)
	}
	if c.Bool("json") {
		if err := e.printJSON(res); err != nil {
			return err
		}
	} else {
		for _, d := range res.Diffs {
			p := d.Path
			if d.Dir {
				p += "/"
			}
			switch d.Change {
			case "added":
				fmt.Fprintf(e.stdout, "+ %s (%d bytes)\n", p, d.SizeB)
			case "removed":
				fmt.Fprintf(e.stdout, "- %s (%d bytes)\n", p, d.SizeA)
			case "changed":
				fmt.Fprintf(e.stdout, "M %s (%d -> %d bytes, first difference at byte %d)\n", p, d.SizeA, d.SizeB, d.Offset)
			default:
				fmt.Fprintf(e.stdout, "T %s (a file on one side, a directory on the other)\n", p)
			}
		}
		if len(res.Diffs) == 0 && !e.quiet {
			fmt.Fprintf(e.stdout, "File trees are identical (%d files compared).\n", res.Files)
		}
	}
	if len(res.Diffs) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}
