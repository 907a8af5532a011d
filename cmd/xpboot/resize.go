package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs/resize"
)

// imageResizeCommand is `xpboot image resize`.
func imageResizeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "resize",
		Usage:     "grow (or shrink) a raw, VMDK or VHD image, with its last partition and file system",
		ArgsUsage: "IMG SIZE",
		Description: "SIZE is the new disk size (bytes, or with K, M, G or T), or +SIZE / -SIZE relative to\n" +
			"the current one. The container keeps its format: raw files are extended, monolithicSparse\n" +
			"VMDKs and dynamic VHDs grow in place when their grain directory or block table has room\n" +
			"(else they are rewritten to a temporary file that replaces them), monolithicFlat VMDKs\n" +
			"extend their data file, fixed VHDs move their footer. A VHD size is rounded up to a CHS\n" +
			"geometry (--exact refuses instead); VHDs hold at most 2040 GiB.\n\n" +
			"--grow-partition also grows the partition that ends last (primary, or the last logical\n" +
			"one with its extended partition) to the end of the disk or to --partition-size, and its\n" +
			"file system: NTFS (boot sector, $Bitmap, $BadClus, backup boot sector) or FAT32 when its\n" +
			"FATs already map the new clusters (otherwise refused, naming the FAT size needed).\n\n" +
			"A smaller SIZE is refused unless --shrink is given and every partition ends below it;\n" +
			"then only the container shrinks. Everything is checked before the first write; the\n" +
			"writes go container, partition table, file system, so that an interruption leaves a\n" +
			"consistent disk. --dry-run prints the plan.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "grow-partition", Usage: "grow the last partition and its NTFS or FAT32 file system too"},
			&cli.StringFlag{Name: "partition-size", Usage: "with --grow-partition: the partition's new size instead of up to the end of the disk"},
			&cli.BoolFlag{Name: "shrink", Usage: "allow a smaller size when no partition reaches past it"},
			&cli.BoolFlag{Name: "exact", Usage: "refuse a VHD size that is not a CHS size instead of rounding it up"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "check and print the plan, write nothing"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("image resize: need IMG and SIZE; usage: xpboot image resize [--grow-partition] [--shrink] IMG SIZE", 2)
			}
			opts := resize.Options{
				GrowPartition: c.Bool("grow-partition"), Shrink: c.Bool("shrink"),
				Exact: c.Bool("exact"), DryRun: c.Bool("dry-run"),
			}
			arg := strings.TrimSpace(c.Args().Get(1))
			sign := int64(0)
			switch {
			case strings.HasPrefix(arg, "+"):
				sign, arg = 1, arg[1:]
			case strings.HasPrefix(arg, "-"):
				sign, arg = -1, arg[1:]
			}
			n, err := parseSize(arg)
			if err != nil {
				return cli.Exit("image resize: SIZE: "+err.Error(), 2)
			}
			if sign != 0 {
				opts.Delta = sign * n
			} else {
				opts.Size = n
			}
			if s := c.String("partition-size"); s != "" {
				if !opts.GrowPartition {
					return cli.Exit("image resize: --partition-size needs --grow-partition", 2)
				}
				if opts.PartitionSize, err = parseSize(s); err != nil {
					return cli.Exit("image resize: --partition-size: "+err.Error(), 2)
				}
			}
			res, err := resize.Resize(c.Context, c.Args().Get(0), opts)
			if err != nil {
				code := 1
				if errors.Is(err, resize.ErrSize) {
					code = 2
				}
				return cli.Exit("image resize: "+err.Error(), code)
			}
			for _, n := range res.Notices {
				e.log.Info(n)
			}
			if c.Bool("json") {
				return e.printJSON(res)
			}
			e.printResize(res)
			return nil
		},
	}
}

func (e *env) printResize(res *resize.Result) {
	verb := ""
	if res.DryRun {
		verb = "would be "
	}
	switch {
	case res.NewSize == res.OldSize:
		fmt.Fprintf(e.stdout, "%s: %s, %d bytes (%s), size unchanged\n", res.Path, res.Format, res.NewSize, humanSize(res.NewSize))
	default:
		how := "in place"
		if res.RewriteReason != "" {
			how = "rewritten (" + res.RewriteReason + ")"
		}
		fmt.Fprintf(e.stdout, "%s: %s, %d bytes (%s) %sresized to %d bytes (%s), %s\n", res.Path, res.Format,
			res.OldSize, humanSize(res.OldSize), verb, res.NewSize, humanSize(res.NewSize), how)
	}
	if p := res.Partition; p != nil {
		if p.NewSectors == p.OldSectors {
			fmt.Fprintf(e.stdout, "partition %d (type %s) at LBA %d: %d sectors, unchanged\n", p.Index, p.Type, p.StartLBA, p.OldSectors)
		} else {
			fmt.Fprintf(e.stdout, "partition %d (type %s) at LBA %d: %d sectors %sgrown to %d\n", p.Index, p.Type, p.StartLBA, p.OldSectors, verb, p.NewSectors)
		}
	}
	if f := res.FileSystem; f != nil && f.Type != "none" {
		fmt.Fprintf(e.stdout, "%s: %d clusters of %d bytes %sgrown to %d, %s more free space\n", f.Type, f.OldClusters, f.ClusterSize, verb, f.NewClusters, humanSize(f.AddedBytes))
	}
}
