package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/convert"
)

func imageCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "create, inspect and convert disk images and the files inside them",
		Subcommands: []*cli.Command{
			imageCreateCommand(e),
			imageInfoCommand(e),
			imageLsCommand(e),
			imageGetCommand(e),
			imagePutCommand(e),
			imageMkdirCommand(e),
			imageRmCommand(e),
			convertCommand(e),
			imageResizeCommand(e),
			imageCheckCommand(e),
			imageCompareCommand(e),
			captureCommand(e),
		},
	}
}

var (
	forceShareFlag = &cli.BoolFlag{Name: "force-share", Aliases: []string{"U"}, Usage: "read an image another process holds (xpboot serve) without its lock, like qemu-img -U; what is read may be changing"}
	partitionFlag  = &cli.IntFlag{Name: "partition", Aliases: []string{"p"}, Usage: "partition number: 1-4 primary, 5… logical (as sfdisk numbers them); default: the active partition"}
	forceBaseFlag  = &cli.BoolFlag{Name: "force", Usage: "write even into a base image that delta disks depend on (invalidates them)"}
)

func imageCreateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a disk image XP setup and NTLDR can boot from",
		ArgsUsage: "OUT.img",
		Description: "Writes a raw disk with xpboot's MBR boot code, a disk signature and one active\n" +
			"primary partition at LBA 63 on a 255-head, 63-sector geometry, ending on a cylinder\n" +
			"boundary. With --fs fat32 (the default) the partition holds an empty FAT32 file system\n" +
			"whose boot code loads NTLDR; with --fs ntfs an empty NTFS 3.1 volume laid out as XP's\n" +
			"format makes it (cluster size by volume size as XP picks it, or --cluster-size), with\n" +
			"xpboot's NTFS boot code; with --fs none it is left unformatted (type 0x07) for XP\n" +
			"setup to format.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Value: "4G", Usage: "disk size: bytes, or with a K, M, G or T suffix (powers of 1024)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"O"}, Value: "raw", Usage: "container: raw, vmdk, vmdk-flat, vmdk-stream, vhd or vhd-fixed"},
			&cli.BoolFlag{Name: "exact", Usage: "refuse a size the container cannot hold exactly (VHD rounds up to its CHS geometry otherwise)"},
			&cli.StringFlag{Name: "fs", Value: "fat32", Usage: "file system: fat32, ntfs or none"},
			&cli.StringFlag{Name: "label", Value: "XPBOOT", Usage: "volume label (FAT32: up to 11 characters, NTFS: up to 32)"},
			&cli.StringFlag{Name: "serial", Usage: "volume serial number in hex (NTFS: up to 16 digits, FAT32: up to 8); random when omitted"},
			&cli.StringFlag{Name: "cluster-size", Usage: "NTFS cluster size, 512 to 64K (a power of two); default: XP's choice for the volume size"},
			&cli.UintFlag{Name: "align", Value: 63, Usage: "first sector of the partition: 63 (XP) or 2048 (1 MiB)"},
			&cli.StringFlag{Name: "disk-signature", Usage: "MBR disk signature as 8 hex digits; random when omitted"},
			&cli.BoolFlag{Name: "force", Usage: "replace OUT if it exists"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("image create: want exactly one output file", 2)
			}
			size, err := parseSize(c.String("size"))
			if err != nil {
				return cli.Exit("image create: --size: "+err.Error(), 2)
			}
			var sig uint64
			if s := c.String("disk-signature"); s != "" {
				sig, err = strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 32)
				if err != nil || sig == 0 {
					return cli.Exit(fmt.Sprintf("image create: --disk-signature %q: want 1 to 8 hex digits, not all zero", s), 2)
				}
			}
			format, err := imagefs.ParseFormat(c.String("format"))
			if err != nil {
				return cli.Exit("image create: --format: "+err.Error(), 2)
			}
			var cluster int64
			if s := c.String("cluster-size"); s != "" {
				if c.String("fs") != imagefs.FSNTFS {
					return cli.Exit("image create: --cluster-size applies to --fs ntfs only", 2)
				}
				cluster, err = parseSize(s)
				if err != nil || cluster < 512 || cluster > 64<<10 || cluster&(cluster-1) != 0 {
					return cli.Exit(fmt.Sprintf("image create: --cluster-size %q: want a power of two from 512 to 64K", s), 2)
				}
			}
			var serial uint64
			if s := c.String("serial"); s != "" {
				serial, err = strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
				if err != nil || serial == 0 {
					return cli.Exit(fmt.Sprintf("image create: --serial %q: want 1 to 16 hex digits, not all zero", s), 2)
				}
			}
			update, finish := e.meter("create")
			// The converter logs size notices (VHD rounding) itself.
			res, _, err := convert.CreateImage(c.Context, c.Args().First(), format, imagefs.CreateOptions{
				Size: size, FS: c.String("fs"), Label: c.String("label"), Align: uint32(c.Uint("align")),
				ClusterSize: int(cluster), Serial: serial, DiskSignature: uint32(sig), Force: c.Bool("force"),
				Progress: update,
			}, convert.Options{Exact: c.Bool("exact"), Log: e.log})
			finish()
			if err != nil {
				return cli.Exit(err, 1)
			}
			e.log.Debug("image created", "path", res.Path, "size", res.Size, "disk_signature", fmt.Sprintf("%08x", res.DiskSignature))
			if c.Bool("json") {
				return e.printJSON(map[string]any{
					"path": res.Path, "format": format, "size": res.Size, "disk_signature": fmt.Sprintf("%08x", res.DiskSignature),
					"filesystem": res.FS, "partition": map[string]any{
						"index": 1, "start_lba": res.Partition.Entry.Start, "sectors": res.Partition.Entry.Sectors,
						"type": fmt.Sprintf("0x%02x", res.Partition.Entry.Type),
					},
				})
			}
			fmt.Fprintf(e.stdout, "%s: %d bytes, disk signature %08x, partition 1 (%s, active) at LBA %d, %d sectors\n",
				res.Path, res.Size, res.DiskSignature, res.FS, res.Partition.Entry.Start, res.Partition.Entry.Sectors)
			return nil
		},
	}
}

func imageInfoCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "info",
		Usage:     "show container format, size, partition table and file systems",
		ArgsUsage: "IMG",
		Flags:     []cli.Flag{forceShareFlag, &cli.BoolFlag{Name: "json", Usage: "print as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("image info: want exactly one image", 2)
			}
			info, err := imagefs.Describe(c.Args().First(), c.Bool("force-share"))
			if err != nil {
				return cli.Exit(err, 1)
			}
			if c.Bool("json") {
				return e.printJSON(info)
			}
			fmt.Fprintf(e.stdout, "image:          %s\nformat:         %s\nvirtual size:   %d bytes (%s)\n", info.Path, info.Format, info.VirtualSize, humanSize(info.VirtualSize))
			fmt.Fprintf(e.stdout, "file size:      %d bytes (%s) in %d file(s)\nallocated:      %d bytes (%s)\n",
				info.FileSize, humanSize(info.FileSize), max(len(info.Files), 1), info.Allocated, humanSize(info.Allocated))
			for i, p := range info.Parents {
				fmt.Fprintf(e.stdout, "parent %d:       %s\n", i+1, p)
			}
			if info.PartitionTable != "mbr" {
				fmt.Fprintf(e.stdout, "partitions:     no partition table xpboot reads (%s)\n", info.TableError)
				return nil
			}
			fmt.Fprintf(e.stdout, "disk signature: %s\nMBR boot code:  %s\n", info.DiskSignature, info.BootCode)
			if info.Geometry != nil {
				fmt.Fprintf(e.stdout, "geometry:       %d heads, %d sectors/track\n", info.Geometry.Heads, info.Geometry.SectorsPerTrack)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tactive\ttype\tstart\tsectors\tsize\tCHS start\tCHS end\tfs\tlabel")
			for _, p := range info.Partitions {
				active := ""
				if p.Active {
					active = "*"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s %s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Index, active, p.Type, p.TypeName, p.StartLBA, p.Sectors,
					humanSize(p.Size), p.StartCHS, p.EndCHS, p.FS, p.Label)
			}
			tw.Flush()
			for _, p := range info.Partitions {
				if p.Error != "" {
					fmt.Fprintf(e.stdout, "partition %d: %s\n", p.Index, p.Error)
				}
			}
			if info.TableError != "" {
				fmt.Fprintf(e.stdout, "partition table: %s\n", info.TableError)
			}
			return nil
		},
	}
}

// openFS opens the image named by a location and the file system of the
// chosen partition.
func openFS(c *cli.Context, arg string, writable bool) (*imagefs.Image, imagefs.FS, imagefs.Location, error) {
	loc, ok := imagefs.ParseLocation(arg)
	if !ok {
		return nil, nil, loc, cli.Exit(fmt.Sprintf("%s: not IMG or IMG:/path with an existing image file", arg), 2)
	}
	if err := loc.Validate(); err != nil {
		return nil, nil, loc, cli.Exit(err, 2)
	}
	var img *imagefs.Image
	var err error
	if writable && c.Bool("force") {
		img, err = imagefs.OpenForce(loc.Image)
	} else if !writable && c.Bool("force-share") {
		img, err = imagefs.OpenUnlocked(loc.Image)
	} else {
		img, err = imagefs.Open(loc.Image, writable)
	}
	if err != nil {
		return nil, nil, loc, cli.Exit(err, 1)
	}
	fs, err := img.FS(c.Int("partition"))
	if err != nil {
		img.Close()
		return nil, nil, loc, cli.Exit(err, 1)
	}
	return img, fs, loc, nil
}

func imageLsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list a directory inside an image",
		ArgsUsage: "IMG[:/dir]",
		Flags:     []cli.Flag{partitionFlag, forceShareFlag, &cli.BoolFlag{Name: "json", Usage: "print as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("image ls: want one IMG[:/dir]", 2)
			}
			img, fs, loc, err := openFS(c, c.Args().First(), false)
			if err != nil {
				return err
			}
			defer img.Close()
			fi, err := fs.Stat(loc.Path)
			if err != nil {
				return cli.Exit(fmt.Errorf("%s: %w", loc, err), 1)
			}
			list := []imagefs.FileInfo{fi}
			if fi.IsDir() {
				if list, err = fs.ReadDir(loc.Path); err != nil {
					return cli.Exit(fmt.Errorf("%s: %w", loc, err), 1)
				}
			}
			if c.Bool("json") {
				type entry struct {
					Name      string `json:"name"`
					ShortName string `json:"short_name,omitempty"`
					Dir       bool   `json:"dir"`
					Size      int64  `json:"size"`
					ModTime   string `json:"mtime,omitempty"`
				}
				out := []entry{}
				for _, f := range list {
					en := entry{Name: f.Name(), Dir: f.IsDir(), Size: f.Size()}
					if s, ok := f.(interface{ ShortName() string }); ok && s.ShortName() != f.Name() {
						en.ShortName = s.ShortName()
					}
					if !f.ModTime().IsZero() {
						// RFC 3339 with the zone: FAT stores local time
						// (read in this machine's zone), NTFS UTC.
						en.ModTime = f.ModTime().Format(time.RFC3339)
					}
					out = append(out, en)
				}
				return e.printJSON(out)
			}
			for _, f := range list {
				kind := "-"
				if f.IsDir() {
					kind = "d"
				}
				fmt.Fprintf(e.stdout, "%s %s %12d %s\n", kind, f.ModTime().Format("2006-01-02 15:04"), f.Size(), f.Name())
			}
			return nil
		},
	}
}

func imageGetCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "copy a file or directory (recursively) out of an image",
		ArgsUsage: "IMG:/path LOCAL|-",
		Description: "LOCAL - writes a file's bytes to stdout. Entries whose names cannot be local\n" +
			"file names (.., or holding / or NUL, as a damaged image may hold) are left out\n" +
			"with a warning; a failed get leaves no partial tree.",
		Flags: []cli.Flag{partitionFlag, forceShareFlag, &cli.BoolFlag{Name: "json", Usage: "print a summary as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return cli.Exit("image get: want IMG:/path LOCAL", 2)
			}
			img, fs, loc, err := openFS(c, c.Args().Get(0), false)
			if err != nil {
				return err
			}
			defer img.Close()
			if c.Args().Get(1) == "-" {
				if c.Bool("json") {
					return cli.Exit("image get: --json and - (stdout) exclude each other", 2)
				}
				if err := imagefs.GetTo(fs, loc.Path, e.stdout); err != nil {
					return cli.Exit(fmt.Errorf("%s: %w", loc.Image, err), 1)
				}
				return nil
			}
			update, finish := e.meter("get")
			stats, err := imagefs.Get(fs, loc.Path, c.Args().Get(1), update)
			finish()
			if stats != nil && !c.Bool("json") {
				for _, p := range stats.Skipped {
					e.log.Warn("left out: the name in the image cannot be a local file name", "entry", p)
				}
			}
			if err != nil {
				return cli.Exit(fmt.Errorf("%s: %w", loc.Image, err), 1)
			}
			return e.reportCopy(c, stats)
		},
	}
}

func imagePutCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "put",
		Usage:     "copy local files and directories (recursively) into an image",
		ArgsUsage: "LOCAL...|- IMG:/path",
		Description: "Like cp -r: with several sources, or when /path is a directory or ends in /,\n" +
			"the sources are copied into it; otherwise the single source is copied to /path.\n" +
			"Missing parent directories are created. - reads the file's bytes from stdin\n" +
			"(then /path names the file).",
		Flags: []cli.Flag{partitionFlag, forceBaseFlag, &cli.BoolFlag{Name: "json", Usage: "print a summary as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return cli.Exit("image put: want LOCAL... IMG:/path", 2)
			}
			args := c.Args().Slice()
			img, fs, loc, err := openFS(c, args[len(args)-1], true)
			if err != nil {
				return err
			}
			if len(args) == 2 && args[0] == "-" {
				err := imagefs.PutFrom(fs, e.stdin, loc.Path, nowLocal())
				if cerr := img.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return cli.Exit(fmt.Errorf("%s: %w", loc.Image, err), 1)
				}
				return nil
			}
			update, finish := e.meter("put")
			dest := loc.Path
			if strings.HasSuffix(args[len(args)-1], "/") && dest != "/" {
				dest += "/"
			}
			stats, err := imagefs.Put(fs, args[:len(args)-1], dest, update)
			finish()
			if cerr := img.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return cli.Exit(fmt.Errorf("%s: %w", loc.Image, err), 1)
			}
			return e.reportCopy(c, stats)
		},
	}
}

func (e *env) reportCopy(c *cli.Context, stats *imagefs.CopyStats) error {
	if c.Bool("json") {
		return e.printJSON(stats)
	}
	e.log.Info("copied", "files", stats.Files, "dirs", stats.Dirs, "bytes", stats.Bytes)
	return nil
}

func imageMkdirCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "mkdir",
		Usage:     "create a directory (and its parents) inside an image",
		ArgsUsage: "IMG:/path",
		Flags:     []cli.Flag{partitionFlag, forceBaseFlag},
		Action: func(c *cli.Context) error {
			return e.editImage(c, "mkdir", func(fs imagefs.FS, p string) error {
				if err := imagefs.CheckNewPath(fs, p); err != nil {
					return err
				}
				return fs.MkdirAll(p, nowLocal())
			})
		},
	}
}

func imageRmCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "remove a file or an empty directory (with -r, any directory) inside an image",
		ArgsUsage: "IMG:/path",
		Flags: []cli.Flag{partitionFlag, forceBaseFlag,
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "remove a directory and everything in it"}},
		Action: func(c *cli.Context) error {
			return e.editImage(c, "rm", func(fs imagefs.FS, p string) error {
				if c.Bool("recursive") {
					return imagefs.RemoveAll(fs, p)
				}
				return fs.Remove(p)
			})
		},
	}
}

func (e *env) editImage(c *cli.Context, name string, edit func(imagefs.FS, string) error) error {
	if c.NArg() != 1 {
		return cli.Exit("image "+name+": want one IMG:/path", 2)
	}
	img, fs, loc, err := openFS(c, c.Args().First(), true)
	if err != nil {
		return err
	}
	err = edit(fs, loc.Path)
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cli.Exit(fmt.Errorf("%s: %w", loc.Image, err), 1)
	}
	return nil
}
