package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
)

func integrateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "integrate",
		Usage: "integrate NIC, iSCSI, sanbootconf and storage drivers into a Windows 2000/XP/2003 setup tree",
		UsageText: "xpboot integrate --target DIR|IMG[:/path] --driver DIR... [--textmode-driver DIR[:ID]...]\n" +
			"   [--device HWID...] [--nic HWID] [--ip ADDR/PREFIX --gateway ADDR | --dhcp] [--preconf PCI-SLOT]\n" +
			"   [--dry-run] [--json] [--backup] [--quiet]\n" +
			"xpboot integrate --installed --target DIR|IMG --driver DIR... [--device HWID...] [--nic HWID]\n" +
			"   [--ip ADDR/PREFIX --gateway ADDR] [--mergeide] [--devicepath DIR...] [--dry-run] [--json] [--backup]\n" +
			"xpboot integrate --undo --target DIR|IMG [--force] [--dry-run] [--json]",
		Description: "The target is a winnt32 /makelocalsource /syspart tree ($WIN_NT$.~BT and\n" +
			"$WIN_NT$.~LS), installation media or an nLite folder (I386 or AMD64), either a\n" +
			"directory or a directory inside a disk image (IMG is its root; --partition picks\n" +
			"a partition other than the active one). Images are written only without --dry-run\n" +
			"and only on FAT32. Every check happens before the first write, and a failure while\n" +
			"writing restores the files already written. --backup keeps each replaced file's\n" +
			"original as NAME.xpboot-orig, unless that backup already exists.\n" +
			"--device keeps, in each package that has one, only the devices whose hardware or\n" +
			"compatible IDs match (a full PCI ID such as PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086\n" +
			"matches the model lines Windows would match); packages without a match are\n" +
			"integrated whole.\n" +
			"With --installed the target is an installed Windows 2000/XP/2003 (a directory\n" +
			"holding WINDOWS or WINNT, or a partition of a disk image, FAT32 or NTFS): the\n" +
			"drivers become boot drivers in every control set Select names, the adapter a\n" +
			"TCP/IP boot adapter (DHCP unless --ip), and a disk image's boot sector gets the\n" +
			"geometry iPXE presents. An undo record is kept in xpboot-undo at the target's\n" +
			"root; --undo restores the files and sectors of the newest one byte for byte.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "target", Aliases: []string{"t"}, Usage: "setup tree: a directory, IMG or IMG:/path", Required: true},
			&cli.StringSliceFlag{Name: "driver", Aliases: []string{"d"}, Usage: "PnP driver package directory (*.inf); repeatable"},
			&cli.StringSliceFlag{Name: "textmode-driver", Usage: "text-mode driver disk directory (txtsetup.oem), optionally :ID of the option; repeatable"},
			&cli.StringSliceFlag{Name: "device", Usage: "integrate only devices with this hardware ID; repeatable"},
			&cli.StringFlag{Name: "nic", Usage: "hardware ID of the network adapter that gets --ip/--dhcp (default: the first one)"},
			&cli.StringFlag{Name: "ip", Usage: "static fallback address of the adapter, ADDR/PREFIX (e.g. 192.168.1.50/24)"},
			&cli.StringFlag{Name: "gateway", Usage: "default gateway for --ip"},
			&cli.BoolFlag{Name: "dhcp", Usage: "the adapter uses DHCP (no static address)"},
			&cli.StringFlag{Name: "preconf", Usage: "PCI slot of the NIC, bus:device.function as lspci prints it (e.g. 00:03.0)"},
			partitionFlag,
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the diff of every file and write nothing"},
			&cli.BoolFlag{Name: "json", Usage: "print the tree, edits, files and warnings as JSON"},
			&cli.BoolFlag{Name: "backup", Usage: "keep each replaced or removed file as NAME.xpboot-orig (not overwritten later)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only warnings and errors"},
			&cli.BoolFlag{Name: "installed", Usage: "the target is an installed Windows, not a setup tree: make the drivers boot drivers offline"},
			&cli.BoolFlag{Name: "mergeide", Usage: "with --installed: apply KB314082 (IDE critical devices, atapi/intelide/pciide)"},
			&cli.StringSliceFlag{Name: "devicepath", Usage: "with --installed: append DIR to SOFTWARE's DevicePath; repeatable"},
			&cli.BoolFlag{Name: "undo", Usage: "take back the newest --installed integration of the target"},
			&cli.BoolFlag{Name: "force", Usage: "with --undo: restore files changed since the integration too"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("installed") || c.Bool("undo") {
				return e.integrateInstalled(c)
			}
			for _, f := range []string{"mergeide", "devicepath", "force"} {
				if c.IsSet(f) {
					return integrateUsage("--%s needs --installed", f)
				}
			}
			return e.integrate(c)
		},
	}
}

// integrateFail is the exit of a failed integration: the package error
// (which names the file) with the target in front.
func integrateFail(target string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "integrate: ")
	if !strings.HasPrefix(msg, target) {
		msg = target + ": " + msg
	}
	return cli.Exit("integrate: "+msg, 1)
}

func integrateUsage(format string, a ...any) error {
	return cli.Exit("integrate: "+fmt.Sprintf(format, a...), 2)
}

// integrateReport is the --json output.
type integrateReport struct {
	Target   string                 `json:"target"`
	DryRun   bool                   `json:"dry_run"`
	Tree     *integrate.Tree        `json:"tree"`
	Options  integrate.Options      `json:"options"`
	Drivers  []integrateDriver      `json:"drivers"`
	Edits    []integrate.Edit       `json:"edits"`
	Files    []integrate.FileChange `json:"files"`
	Changed  int                    `json:"changed"`
	Warnings []string               `json:"warnings"`
	Diff     string                 `json:"diff,omitempty"`
}

// integrateDriver is one package of the report and the devices integrated
// from it.
type integrateDriver struct {
	Dir      string            `json:"dir"`
	TextMode string            `json:"textmode_id,omitempty"`
	Devices  []integrateDevice `json:"devices,omitempty"`
}

type integrateDevice struct {
	HardwareID  string   `json:"hardware_id"`
	Description string   `json:"description,omitempty"`
	INF         string   `json:"inf"`
	Services    []string `json:"services,omitempty"`
}

// textModeSpec splits DIR[:ID]; a DIR that exists as given wins over a
// split at its last colon.
func textModeSpec(s string) (dir, id string) {
	if st, err := os.Stat(s); err == nil && st.IsDir() {
		return s, ""
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// openTarget opens the setup tree: a directory, or IMG / IMG:/path. The
// returned close function must be called after the last write.
func openTarget(target string, partition int, writable bool) (imagefs.FS, func() error, error) {
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		return integrate.DirFS(target), func() error { return nil }, nil
	}
	loc, ok := imagefs.ParseLocation(target)
	if !ok {
		return nil, nil, fmt.Errorf("not a directory or a disk image (IMG or IMG:/path)")
	}
	if err := loc.Validate(); err != nil {
		return nil, nil, err
	}
	f, err := integrate.OpenImage(loc.Image, partition, loc.Path, writable)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func (e *env) integrate(c *cli.Context) error {
	if c.NArg() > 0 {
		return integrateUsage("unexpected argument %q (options only; see xpboot integrate --help)", c.Args().First())
	}
	target := c.String("target")
	driverDirs := c.StringSlice("driver")
	textMode := c.StringSlice("textmode-driver")
	if len(driverDirs) == 0 && len(textMode) == 0 {
		return integrateUsage("no --driver or --textmode-driver given")
	}
	quiet := e.quiet || c.Bool("quiet")
	dryRun := c.Bool("dry-run")

	opts := integrate.Options{NIC: c.String("nic"), DHCP: c.Bool("dhcp"), Preconf: c.String("preconf"), Backup: c.Bool("backup")}
	if s := c.String("ip"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return integrateUsage("--ip %q: want ADDR/PREFIX, e.g. 192.168.1.50/24", s)
		}
		opts.Address = p
	}
	if s := c.String("gateway"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return integrateUsage("--gateway %q: want an IPv4 address", s)
		}
		opts.Gateway = a
	}
	warnings, err := opts.Check()
	if err != nil {
		return integrateUsage("%s", strings.TrimPrefix(err.Error(), "integrate: "))
	}

	// Read every package before the target is opened (and, for an image,
	// locked for writing).
	type pnp struct {
		pkg  *drivers.Package
		devs []*drivers.Device
	}
	var pkgs []pnp
	for _, d := range driverDirs {
		pkg, err := openPackage(d)
		if err != nil {
			return integrateFail(d, err)
		}
		pkgs = append(pkgs, pnp{pkg: pkg})
	}
	type oem struct {
		dir, id string
		pkg     *drivers.Package
	}
	var oems []oem
	for _, s := range textMode {
		dir, id := textModeSpec(s)
		pkg, err := openPackage(dir)
		if err != nil {
			return integrateFail(dir, err)
		}
		if pkg.TxtSetup == nil {
			return integrateFail(dir, errors.New("no txtsetup.oem (use --driver for an INF package)"))
		}
		oems = append(oems, oem{dir: dir, id: id, pkg: pkg})
	}

	fsys, closeTarget, err := openTarget(target, c.Int("partition"), !dryRun)
	if err != nil {
		return integrateFail(target, err)
	}
	closed := false
	defer func() {
		if !closed {
			closeTarget()
		}
	}()
	tree, err := integrate.Detect(fsys)
	if err != nil {
		return integrateFail(target, err)
	}
	warnings = append(append([]string{}, tree.Warnings...), warnings...)

	// Resolve, then apply --device across all packages.
	var all []*drivers.Device
	deviceIDs := c.StringSlice("device")
	matched := make([]bool, len(deviceIDs))
	for i := range pkgs {
		devs, err := pkgs[i].pkg.Resolve(tree.Target())
		if err != nil {
			return integrateFail(pkgs[i].pkg.Dir, err)
		}
		if len(deviceIDs) > 0 {
			sel, used := integrate.SelectDevices(devs, deviceIDs)
			for j, u := range used {
				matched[j] = matched[j] || u
			}
			if len(sel) > 0 {
				devs = sel
			} else if !quiet {
				e.log.Info("no --device matches the package; integrating all its devices", "driver", pkgs[i].pkg.Dir)
			}
		}
		pkgs[i].devs = devs
		all = append(all, devs...)
	}
	for j, ok := range matched {
		if !ok {
			return integrateUsage("--device %s matches no device of the driver packages for %s (Windows %s %s)", deviceIDs[j], tree.Target(), tree.OS, tree.Arch)
		}
	}
	w, err := opts.CheckDevices(all)
	if err != nil {
		return integrateUsage("%s", strings.TrimPrefix(err.Error(), "integrate: "))
	}
	warnings = append(warnings, w...)

	plan, err := integrate.NewPlan(tree)
	if err != nil {
		return integrateFail(target, err)
	}
	plan.Options = opts
	report := integrateReport{Target: target, DryRun: dryRun, Tree: tree, Options: opts, Drivers: []integrateDriver{}}
	for _, o := range oems {
		if err := plan.AddTextModeDriver(o.dir, o.pkg.TxtSetup, o.id); err != nil {
			return integrateFail(o.dir, err)
		}
		id := o.id
		if id == "" {
			id = o.pkg.TxtSetup.Defaults["scsi"]
		}
		report.Drivers = append(report.Drivers, integrateDriver{Dir: o.dir, TextMode: id})
	}
	for _, p := range pkgs {
		if err := plan.AddDriver(p.pkg, p.devs); err != nil {
			return integrateFail(p.pkg.Dir, err)
		}
		report.Drivers = append(report.Drivers, driverReport(p.pkg.Dir, p.devs))
	}
	warnings = append(warnings, plan.Warnings...)
	files, err := plan.Files()
	if err != nil {
		return integrateFail(target, err)
	}
	for _, f := range files {
		if f.Changed {
			report.Changed++
		}
	}
	warnings = unique(warnings)
	report.Edits, report.Files, report.Warnings = plan.Edits, files, warnings
	if report.Edits == nil {
		report.Edits = []integrate.Edit{}
	}
	if report.Warnings == nil {
		report.Warnings = []string{}
	}
	if !c.Bool("json") {
		// With --json the warnings are data in the report, not log lines.
		for _, w := range warnings {
			e.log.Warn(w)
		}
	}

	if dryRun {
		diff, err := plan.Diff()
		if err != nil {
			return integrateFail(target, err)
		}
		report.Diff = diff
		return e.dryRunOutput(c, report, diff, target, report.Changed, quiet)
	}

	// SIGINT and SIGTERM cancel the context instead of killing the
	// process: once Commit starts it finishes (or rolls back) and the
	// image is closed cleanly.
	if c.Context.Err() != nil {
		return cli.Exit("integrate: interrupted; nothing written", 130)
	}
	if err := plan.Commit(); err != nil {
		return integrateFail(target, err)
	}
	closed = true
	if err := closeTarget(); err != nil {
		return integrateFail(target, err)
	}
	if c.Bool("json") {
		return e.printJSON(report)
	}
	if !quiet {
		if err := e.listChanged(files); err != nil {
			return err
		}
		e.log.Info("integrated", "target", target, "os", tree.OS, "sp", tree.ServicePack, "arch", tree.Arch,
			"layout", tree.Layout.String(), "drivers", len(report.Drivers), "files_changed", report.Changed)
	}
	return nil
}

// openPackage opens a driver directory, naming it when it is not one.
func openPackage(dir string) (*drivers.Package, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("no such driver directory")
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, errors.New("not a directory")
	}
	return drivers.OpenPackage(dir)
}

// unique drops repeated strings, keeping the first of each in order.
func unique(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// installedReport is the --json output of --installed.
type installedReport struct {
	Target   string                 `json:"target"`
	DryRun   bool                   `json:"dry_run"`
	System   *installed.System      `json:"system"`
	Options  installed.Options      `json:"options"`
	Drivers  []integrateDriver      `json:"drivers"`
	Edits    []installed.Edit       `json:"edits"`
	Files    []integrate.FileChange `json:"files"`
	Boot     []string               `json:"boot_sector,omitempty"`
	Changed  int                    `json:"changed"`
	Warnings []string               `json:"warnings"`
	Diff     string                 `json:"diff,omitempty"`
}

// openInstalled opens an installed system's tree: a directory, or a
// partition of a disk image (IMG, or IMG:/ for its root), whose boot
// sector it also returns.
func openInstalled(target string, partition int, writable bool) (imagefs.FS, installed.BootSector, func() error, error) {
	fsys, boot, closeTarget, _, err := openInstalledAbort(target, partition, writable)
	return fsys, boot, closeTarget, err
}

// openInstalledAbort is openInstalled that also returns the function
// that takes back every write below the file system (an image: sectors
// restored from the recorded originals) instead of closing normally.
func openInstalledAbort(target string, partition int, writable bool) (imagefs.FS, installed.BootSector, func() error, func() error, error) {
	if st, err := os.Stat(target); err == nil && st.IsDir() {
		nop := func() error { return nil }
		return integrate.DirFS(target), nil, nop, nop, nil
	}
	loc, ok := imagefs.ParseLocation(target)
	if !ok {
		return nil, nil, nil, nil, fmt.Errorf("not a directory or a disk image")
	}
	if p := strings.Trim(loc.Path, "/"); p != "" {
		return nil, nil, nil, nil, fmt.Errorf("an installed system is a whole partition: give IMG, not IMG:/%s", p)
	}
	f, err := integrate.OpenVolume(loc.Image, partition, writable)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return f, f, f.Close, f.Abort, nil
}

func (e *env) integrateInstalled(c *cli.Context) error {
	if c.NArg() > 0 {
		return integrateUsage("unexpected argument %q (options only; see xpboot integrate --help)", c.Args().First())
	}
	for _, f := range []string{"textmode-driver", "preconf"} {
		if c.IsSet(f) {
			return integrateUsage("--%s is for setup trees, not with --installed or --undo", f)
		}
	}
	target := c.String("target")
	quiet := e.quiet || c.Bool("quiet")
	dryRun := c.Bool("dry-run")
	if c.Bool("undo") {
		for _, f := range []string{"driver", "device", "nic", "ip", "gateway", "dhcp", "mergeide", "devicepath", "backup"} {
			if c.IsSet(f) {
				return integrateUsage("--undo takes no --%s", f)
			}
		}
		// A disk image's block journal restores every sector byte for
		// byte; without one, the undo record inside the target restores
		// the files.
		if st, err := os.Stat(target); err == nil && !st.IsDir() {
			res, err := integrate.UndoImage(target, c.Bool("force"), dryRun)
			if err == nil {
				if c.Bool("json") {
					return e.printJSON(res)
				}
				if !quiet {
					msg := "undone"
					if dryRun {
						msg = "dry run: nothing written"
					}
					e.log.Info(msg, "target", target, "journal", res.Journal, "extents", res.Extents, "bytes", res.Bytes)
				}
				return nil
			}
			if !errors.Is(err, integrate.ErrNoJournal) {
				return integrateFail(target, err)
			}
			if !quiet {
				e.log.Info("no undo journal beside the image; restoring the files of the record inside it", "journal", integrate.JournalDir(target))
			}
		}
		fsys, boot, closeTarget, err := openInstalled(target, c.Int("partition"), !dryRun)
		if err != nil {
			return integrateFail(target, err)
		}
		res, err := installed.Undo(fsys, boot, c.Bool("force"), dryRun)
		if cerr := closeTarget(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return integrateFail(target, err)
		}
		if c.Bool("json") {
			return e.printJSON(res)
		}
		if !quiet {
			for _, p := range res.Restored {
				fmt.Fprintf(e.stdout, "restore\t%s\n", p)
			}
			for _, p := range res.Removed {
				fmt.Fprintf(e.stdout, "remove\t%s\n", p)
			}
			for _, s := range res.Sectors {
				fmt.Fprintf(e.stdout, "restore\tsector %d of the partition\n", s)
			}
			msg := "undone"
			if dryRun {
				msg = "dry run: nothing written"
			}
			e.log.Info(msg, "target", target, "record", res.Record)
		}
		return nil
	}
	if c.Bool("force") {
		return integrateUsage("--force is for --undo")
	}
	driverDirs := c.StringSlice("driver")
	if len(driverDirs) == 0 {
		return integrateUsage("no --driver given")
	}
	opts := installed.Options{Options: integrate.Options{NIC: c.String("nic"), DHCP: c.Bool("dhcp"), Backup: c.Bool("backup")},
		MergeIDE: c.Bool("mergeide"), DevicePath: c.StringSlice("devicepath")}
	if s := c.String("ip"); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return integrateUsage("--ip %q: want ADDR/PREFIX, e.g. 192.168.1.50/24", s)
		}
		opts.Address = p
	}
	if s := c.String("gateway"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return integrateUsage("--gateway %q: want an IPv4 address", s)
		}
		opts.Gateway = a
	}
	warnings, err := opts.Options.Check()
	if err != nil {
		return integrateUsage("%s", strings.TrimPrefix(err.Error(), "integrate: "))
	}
	var pkgs []*drivers.Package
	for _, d := range driverDirs {
		pkg, err := openPackage(d)
		if err != nil {
			return integrateFail(d, err)
		}
		pkgs = append(pkgs, pkg)
	}
	fsys, boot, closeTarget, abortTarget, err := openInstalledAbort(target, c.Int("partition"), !dryRun)
	if err != nil {
		return integrateFail(target, err)
	}
	closed := false
	defer func() {
		if !closed {
			closeTarget()
		}
	}()
	sys, err := installed.Detect(fsys)
	if err != nil {
		return integrateFail(target, err)
	}
	deviceIDs := c.StringSlice("device")
	matched := make([]bool, len(deviceIDs))
	devs := make([][]*drivers.Device, len(pkgs))
	var all []*drivers.Device
	for i, pkg := range pkgs {
		d, err := pkg.Resolve(sys.Target())
		if err != nil {
			return integrateFail(pkg.Dir, err)
		}
		if len(deviceIDs) > 0 {
			sel, used := integrate.SelectDevices(d, deviceIDs)
			for j, u := range used {
				matched[j] = matched[j] || u
			}
			if len(sel) > 0 {
				d = sel
			} else if !quiet {
				e.log.Info("no --device matches the package; integrating all its devices", "driver", pkg.Dir)
			}
		}
		devs[i] = d
		all = append(all, d...)
	}
	for j, ok := range matched {
		if !ok {
			return integrateUsage("--device %s matches no device of the driver packages for %s (%s %s)", deviceIDs[j], sys.Target(), sys.OS, sys.Arch)
		}
	}
	w, err := opts.Options.CheckDevices(all)
	if err != nil {
		return integrateUsage("%s", strings.TrimPrefix(err.Error(), "integrate: "))
	}
	warnings = append(warnings, w...)
	plan, err := installed.NewPlan(fsys, sys, opts)
	if err != nil {
		return integrateFail(target, err)
	}
	plan.Boot = boot
	report := installedReport{Target: target, DryRun: dryRun, System: sys, Options: opts, Drivers: []integrateDriver{}}
	for i, pkg := range pkgs {
		if err := plan.AddDriver(pkg, devs[i]); err != nil {
			return integrateFail(pkg.Dir, err)
		}
		report.Drivers = append(report.Drivers, driverReport(pkg.Dir, devs[i]))
	}
	files, err := plan.Files()
	if err != nil {
		return integrateFail(target, err)
	}
	warnings = unique(append(warnings, plan.Warnings...))
	for _, f := range files {
		if f.Changed {
			report.Changed++
		}
	}
	report.Edits, report.Files, report.Warnings, report.Boot = plan.Edits(), files, warnings, plan.BootChanges()
	if report.Edits == nil {
		report.Edits = []installed.Edit{}
	}
	if report.Warnings == nil {
		report.Warnings = []string{}
	}
	if !c.Bool("json") {
		for _, w := range warnings {
			e.log.Warn(w)
		}
		if b := plan.BootChanges(); len(b) > 0 && !quiet {
			e.log.Info("boot sector geometry: "+strings.Join(b[:len(b)-1], ", "), "reason", b[len(b)-1])
		}
	}
	if dryRun {
		diff, err := plan.Diff()
		if err != nil {
			return integrateFail(target, err)
		}
		report.Diff = diff
		return e.dryRunOutput(c, report, diff, target, report.Changed, quiet)
	}
	if c.Context.Err() != nil {
		return cli.Exit("integrate: interrupted; nothing written", 130)
	}
	if err := plan.Commit(); err != nil {
		// Commit put the files back; an image also gets every sector
		// back, so not even the file system's allocations remain.
		closed = true
		if aerr := abortTarget(); aerr != nil {
			return integrateFail(target, fmt.Errorf("%w; %v", err, aerr))
		}
		return integrateFail(target, err)
	}
	closed = true
	if err := closeTarget(); err != nil {
		return integrateFail(target, err)
	}
	if c.Bool("json") {
		return e.printJSON(report)
	}
	if !quiet {
		if err := e.listChanged(files); err != nil {
			return err
		}
		e.log.Info("integrated", "target", target, "os", sys.OS, "sp", sys.ServicePack, "arch", sys.Arch,
			"control_sets", strings.Join(sys.ControlSets, ","), "drivers", len(report.Drivers), "files_changed", report.Changed,
			"edits", len(report.Edits))
	}
	return nil
}

// driverReport describes a driver package and the devices integrated from
// it, for the report (--json).
func driverReport(dir string, devs []*drivers.Device) integrateDriver {
	rd := integrateDriver{Dir: dir}
	for _, d := range devs {
		dev := integrateDevice{HardwareID: d.HardwareID, Description: d.Description, INF: d.INF}
		for _, s := range d.Services {
			dev.Services = append(dev.Services, s.Name)
		}
		rd.Devices = append(rd.Devices, dev)
	}
	return rd
}

// dryRunOutput prints a dry run: the report (which carries the diff) with
// --json, else the diff and a log line.
func (e *env) dryRunOutput(c *cli.Context, report any, diff, target string, changed int, quiet bool) error {
	if c.Bool("json") {
		return e.printJSON(report)
	}
	if _, err := fmt.Fprint(e.stdout, diff); err != nil {
		return err
	}
	if !quiet {
		e.log.Info("dry run: nothing written", "target", target, "files_to_change", changed)
	}
	return nil
}

// listChanged prints one line per file the integration changed.
func (e *env) listChanged(files []integrate.FileChange) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, f := range files {
		if f.Changed {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Action, f.Path, f.Kind)
		}
	}
	return tw.Flush()
}
