package main

import (
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/iso"
	"github.com/xpboot/xpboot/setup"
)

func isoCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "iso",
		Usage: "read and build ISO 9660 + Joliet CD images (El Torito boot)",
		Subcommands: []*cli.Command{
			{
				Name:      "build",
				Usage:     "build a bootable CD image from a directory or another CD image",
				UsageText: "xpboot iso build --source DIR|ISO|IMG:/x.iso --out X.iso [--boot-image FILE] [--boot-load-size N]",
				Description: "Writes ISO 9660 + Joliet as mkisofs -N -D -J -joliet-long -relaxed-filenames\n" +
					"-no-emul-boot -boot-load-size 4 does: 8.3 upper-case primary names without ;1,\n" +
					"no directory relocation, Joliet names up to 103 characters, an El Torito\n" +
					"no-emulation boot entry. From a CD image the boot image, load size, volume ID and\n" +
					"date come from the source; from a directory --boot-image (default load size 4\n" +
					"sectors of 512 bytes) and --volume-id, and the date is the newest file time\n" +
					"unless --date says. The same input gives the same bytes. The image is written to\n" +
					"a temporary file and renamed to --out when complete.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "source", Aliases: []string{"s"}, Usage: "directory, ISO image, or IMG:/path of an ISO inside a disk image", Required: true},
					&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output ISO image", Required: true},
					&cli.StringFlag{Name: "boot-image", Aliases: []string{"b"}, Usage: "El Torito no-emulation boot image (a directory source)"},
					&cli.IntFlag{Name: "boot-load-size", Usage: "512-byte sectors the BIOS loads (default: the source catalog's, else 4)"},
					&cli.BoolFlag{Name: "no-boot", Usage: "make a data CD even when the source CD boots"},
					&cli.StringFlag{Name: "volume-id", Aliases: []string{"V"}, Usage: "volume identifier (default: the source CD's, else the directory's name)"},
					&cli.StringFlag{Name: "date", Usage: "volume date, RFC 3339 (default: the source CD's, else the newest file time)"},
					&cli.BoolFlag{Name: "fixed-date", Usage: "stamp every file and directory with the volume date"},
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing --out"},
					&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
				},
				Action: func(c *cli.Context) error { return e.isoBuild(c) },
			},
			{
				Name:      "ls",
				Usage:     "list a directory of a CD image (Joliet names when present)",
				ArgsUsage: "ISO[:/dir]",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "list every file below the directory"},
					&cli.BoolFlag{Name: "json", Usage: "print as JSON"},
				},
				Action: func(c *cli.Context) error { return e.isoLs(c) },
			},
			{
				Name:      "get",
				Usage:     "copy a file or directory out of a CD image",
				ArgsUsage: "ISO:/path OUT",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace existing files"}},
				Action:    func(c *cli.Context) error { return e.isoGet(c) },
			},
			{
				Name:      "info",
				Usage:     "show the volume descriptors and the El Torito boot catalog",
				ArgsUsage: "ISO",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print as JSON"}},
				Action:    func(c *cli.Context) error { return e.isoInfo(c) },
			},
		},
	}
}

// splitISO splits ISO[:/path]; the ISO part must be an existing file.
func splitISO(s string) (file, p string) {
	if st, err := os.Stat(s); err == nil && !st.IsDir() {
		return s, "/"
	}
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == ':' && i+1 < len(s) && (s[i+1] == '/' || s[i+1] == '\\') {
			if st, err := os.Stat(s[:i]); err == nil && !st.IsDir() {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, "/"
}

func openISO(file string) (*iso.ReadCloser, error) {
	rc, err := iso.Open(file)
	if err != nil {
		return nil, cli.Exit(err, 3)
	}
	return rc, nil
}

func (e *env) isoBuild(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("iso build: unexpected argument %q (options only)", c.Args().First()), 2)
	}
	out := c.String("out")
	if _, err := os.Stat(out); err == nil && !c.Bool("force") {
		return cli.Exit(fmt.Sprintf("iso build: %s exists; --force replaces it", out), 1)
	}
	opts := iso.Options{VolumeID: c.String("volume-id"), FixedTime: c.Bool("fixed-date")}
	if d := c.String("date"); d != "" {
		t, err := time.Parse(time.RFC3339, d)
		if err != nil {
			return cli.Exit(fmt.Sprintf("iso build: --date %q: want RFC 3339, e.g. 2004-08-04T12:00:00Z", d), 2)
		}
		opts.Time = t
	}
	if n := c.Int("boot-load-size"); n < 0 || n > 0xFFFF {
		return cli.Exit(fmt.Sprintf("iso build: --boot-load-size %d: want 1..65535", n), 2)
	}
	loadSize := uint16(c.Int("boot-load-size"))

	src, err := setup.OpenSource(c.String("source"))
	if err != nil {
		return cli.Exit(err, 3)
	}
	defer src.Close()
	if src.ISO != nil {
		if opts.VolumeID == "" {
			opts.VolumeID = src.ISO.Primary.VolumeID
		}
		if opts.Time.IsZero() {
			opts.Time = src.ISO.Primary.Created
		}
		if src.ISO.Boot != nil && !c.Bool("no-boot") && c.String("boot-image") == "" {
			var entry *iso.BootEntry
			for i, be := range src.ISO.Boot.Entries {
				if be.Bootable && be.Media == iso.MediaNoEmulation && be.Platform == 0 {
					entry = &src.ISO.Boot.Entries[i]
					break
				}
			}
			if entry == nil {
				return cli.Exit(fmt.Sprintf("iso build: %s: the boot catalog has no x86 no-emulation entry; give --boot-image or --no-boot", src.Name), 1)
			}
			img, err := src.ISO.BootImage(*entry)
			if err != nil {
				return cli.Exit(err, 1)
			}
			// Keep whole 2048-byte sectors of the original image.
			if rem := len(img) % iso.SectorSize; rem != 0 {
				img = append(img, make([]byte, iso.SectorSize-rem)...)
			}
			if loadSize == 0 {
				loadSize = entry.SectorCount
			}
			opts.Boot = &iso.Boot{Image: img, LoadSize: loadSize, LoadSegment: entry.LoadSegment}
		}
	} else if opts.VolumeID == "" {
		opts.VolumeID = filepath.Base(filepath.Clean(c.String("source")))
	}
	if b := c.String("boot-image"); b != "" && !c.Bool("no-boot") {
		img, err := os.ReadFile(b)
		if err != nil {
			return cli.Exit(fmt.Sprintf("iso build: --boot-image: %v", err), 3)
		}
		opts.Boot = &iso.Boot{Image: img, LoadSize: loadSize}
		// A boot image inside the source tree is pointed at, as mkisofs -b does.
		if src.ISO == nil {
			if rel, err := filepath.Rel(c.String("source"), b); err == nil && !strings.HasPrefix(rel, "..") {
				opts.Boot = &iso.Boot{TreePath: filepath.ToSlash(rel), LoadSize: loadSize}
			}
		}
	}
	if opts.Boot == nil && !c.Bool("no-boot") {
		e.log.Warn("no boot image: the CD will not boot (give --boot-image, or --no-boot to silence this)")
	}
	update, finish := e.meter("iso build")
	opts.Progress = update
	res, err := iso.Build(src.Root, out, opts)
	finish()
	if err != nil {
		return cli.Exit(err, 1)
	}
	if c.Bool("json") {
		return e.printJSON(struct {
			Out      string `json:"out"`
			VolumeID string `json:"volume_id"`
			*iso.Result
		}{out, opts.VolumeID, res})
	}
	if !e.quiet {
		e.log.Info("built", "out", out, "bytes", res.Bytes, "files", res.Files, "directories", res.Directories, "boot_sector", res.BootSector, "boot_load_size", res.BootLoad)
	}
	return nil
}

type isoEntry struct {
	Path  string    `json:"path"`
	Dir   bool      `json:"dir"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
}

func (e *env) isoLs(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("iso ls: want one ISO[:/dir]", 2)
	}
	file, p := splitISO(c.Args().First())
	rc, err := openISO(file)
	if err != nil {
		return err
	}
	defer rc.Close()
	fi, err := rc.Stat(p)
	if err != nil {
		return cli.Exit(fmt.Errorf("%s:%s: %w", file, p, err), 1)
	}
	var list []isoEntry
	switch {
	case !fi.IsDir():
		list = []isoEntry{{fi.Name(), false, fi.Size(), fi.ModTime()}}
	case c.Bool("recursive"):
		prefix := strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
		err = rc.Walk(func(q string, fi iso.FileInfo) error {
			if prefix != "" && !strings.HasPrefix(strings.ToLower(q), strings.ToLower(prefix)+"/") {
				return nil
			}
			list = append(list, isoEntry{q, fi.IsDir(), fi.Size(), fi.ModTime()})
			return nil
		})
		if err != nil {
			return cli.Exit(err, 1)
		}
	default:
		ents, err := rc.ReadDir(p)
		if err != nil {
			return cli.Exit(err, 1)
		}
		for _, f := range ents {
			list = append(list, isoEntry{f.Name(), f.IsDir(), f.Size(), f.ModTime()})
		}
	}
	if c.Bool("json") {
		if list == nil {
			list = []isoEntry{}
		}
		return e.printJSON(list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, en := range list {
		name := en.Path
		if en.Dir {
			name += "/"
		}
		fmt.Fprintf(tw, "%d\t%s\t %s\n", en.Size, en.MTime.UTC().Format("2006-01-02 15:04"), name)
	}
	return tw.Flush()
}

func (e *env) isoGet(c *cli.Context) error {
	if c.NArg() != 2 {
		return cli.Exit("iso get: want ISO:/path OUT", 2)
	}
	file, p := splitISO(c.Args().Get(0))
	out := c.Args().Get(1)
	rc, err := openISO(file)
	if err != nil {
		return err
	}
	defer rc.Close()
	fi, err := rc.Stat(p)
	if err != nil {
		return cli.Exit(fmt.Errorf("%s:%s: %w", file, p, err), 1)
	}
	if !fi.IsDir() {
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			out = filepath.Join(out, fi.Name())
		}
		return isoGetFile(rc.Reader, p, out, c.Bool("force"))
	}
	prefix := strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return cli.Exit(err, 1)
	}
	return rc.Walk(func(q string, fi iso.FileInfo) error {
		rel := q
		if prefix != "" {
			if !strings.HasPrefix(strings.ToLower(q), strings.ToLower(prefix)+"/") {
				return nil
			}
			rel = q[len(prefix)+1:]
		}
		dst := filepath.Join(out, filepath.FromSlash(rel))
		if fi.IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return cli.Exit(err, 1)
			}
			return nil
		}
		return isoGetFile(rc.Reader, q, dst, c.Bool("force"))
	})
}

// isoGetFile copies one file out through a temporary file and a rename.
func isoGetFile(x *iso.Reader, p, out string, force bool) error {
	if _, err := os.Stat(out); err == nil && !force {
		return cli.Exit(fmt.Sprintf("iso get: %s exists; --force replaces it", out), 1)
	}
	f, err := x.Open(p)
	if err != nil {
		return cli.Exit(err, 1)
	}
	tmp, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return cli.Exit(err, 1)
	}
	if _, err = io.Copy(tmp, f.Reader()); err != nil {
		tmp.Abort()
	} else {
		err = tmp.Commit()
	}
	if err == nil && !f.ModTime().IsZero() {
		err = os.Chtimes(out, f.ModTime(), f.ModTime())
	}
	if err != nil {
		return cli.Exit(fmt.Errorf("iso get: %s: %w", out, err), 1)
	}
	return nil
}

func (e *env) isoInfo(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("iso info: want one ISO", 2)
	}
	rc, err := openISO(c.Args().First())
	if err != nil {
		return err
	}
	defer rc.Close()
	info := struct {
		Primary iso.Volume       `json:"primary"`
		Joliet  *iso.Volume      `json:"joliet"`
		Boot    *iso.BootCatalog `json:"boot"`
	}{rc.Primary, rc.Joliet, rc.Boot}
	if c.Bool("json") {
		return e.printJSON(info)
	}
	w := e.stdout
	fmt.Fprintf(w, "volume id:   %s\n", rc.Primary.VolumeID)
	fmt.Fprintf(w, "size:        %d sectors (%d bytes)\n", rc.Primary.Blocks, int64(rc.Primary.Blocks)*iso.SectorSize)
	fmt.Fprintf(w, "created:     %s\n", rc.Primary.Created.UTC().Format(time.RFC3339))
	if rc.Joliet != nil {
		fmt.Fprintf(w, "joliet:      level %d, volume id %q\n", rc.Joliet.Level, rc.Joliet.VolumeID)
	} else {
		fmt.Fprintln(w, "joliet:      none")
	}
	if rc.Boot == nil {
		fmt.Fprintln(w, "el torito:   none")
		return nil
	}
	fmt.Fprintf(w, "el torito:   catalog at sector %d, platform 0x%02x\n", rc.Boot.Sector, rc.Boot.Platform)
	media := map[byte]string{0: "no emulation", 1: "1.2M floppy", 2: "1.44M floppy", 3: "2.88M floppy", 4: "hard disk"}
	for i, be := range rc.Boot.Entries {
		fmt.Fprintf(w, "  entry %d:   bootable=%v media=%s load segment=0x%04x load size=%d sectors at sector %d\n",
			i, be.Bootable, media[be.Media], be.LoadSegment, be.SectorCount, be.LoadRBA)
	}
	return nil
}
