package integrate

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/internal/inftext"
)

// Logical names of the files a Plan edits (Edit.File); see also HiveSysINF.
const (
	TxtSetupSIF = "txtsetup.sif"
	DosNetINF   = "dosnet.inf"
)

// Class GUIDs the integration treats specially.
const (
	NetClassGUID         = "{4D36E972-E325-11CE-BFC1-08002BE10318}"
	SCSIAdapterClassGUID = "{4D36E97B-E325-11CE-BFC1-08002BE10318}"
	HDCClassGUID         = "{4D36E96A-E325-11CE-BFC1-08002BE10318}"
)

// First IDs given to staging directories, as IntegrateDrv allocates them.
const (
	firstDiskID    = 2001 // [SourceDisksNames.<arch>]
	firstWinntDir  = 3001 // [WinntDirectories]
	firstDosNetDir = 11   // dosnet.inf [Directories] dNN
)

// ErrArch reports a driver built for another architecture than the tree.
var ErrArch = errors.New("integrate: architecture mismatch")

// Op is what an Edit does to a section.
type Op string

// Edit operations.
const (
	OpSection Op = "section" // make sure [Section] exists
	OpSet     Op = "set"     // Key = Value, replacing the key's line or adding one
	OpAdd     Op = "add"     // add the line Value unless an equal line exists
	OpRemove  Op = "remove"  // remove every line equal to Value
)

// FieldMatch narrows OpSet to the entry whose field Index (0-based, after
// '=') equals Value: [SourceDisksFiles] lists a file once per destination
// directory, told apart by field 7.
type FieldMatch struct {
	Index int    `json:"index"`
	Value string `json:"value"`
}

// An Edit is one change to an INI-shaped setup file.
type Edit struct {
	File    string      `json:"file"` // TxtSetupSIF or DosNetINF
	Op      Op          `json:"op"`
	Section string      `json:"section"`
	Key     string      `json:"key,omitempty"`
	Match   *FieldMatch `json:"match,omitempty"`
	// Fields is how many leading fields identify the line of OpReplace.
	Fields int    `json:"fields,omitempty"`
	Value  string `json:"value,omitempty"`
	// Why names the driver, service or rule the edit is for.
	Why string `json:"why,omitempty"`
	// Changed tells whether the edit changed the file (false when the
	// tree already had it: a second run).
	Changed bool `json:"changed"`
}

// String renders the edit for --dry-run listings.
func (e Edit) String() string {
	s := fmt.Sprintf("%s [%s] %s", e.File, e.Section, e.Op)
	switch e.Op {
	case OpSet:
		s += " " + e.Key + " = " + e.Value
		if e.Match != nil {
			s += fmt.Sprintf(" (where field %d is %s)", e.Match.Index, e.Match.Value)
		}
	case OpAdd, OpRemove, OpReplace, OpComment:
		s += " " + e.Value
	}
	return s
}

// Apply performs the edit on t and reports whether t changed.
func (e Edit) Apply(t *Text) bool {
	switch e.Op {
	case OpSection:
		return t.EnsureSection(e.Section)
	case OpSet:
		if e.Match != nil {
			return t.SetMatch(e.Section, e.Key, e.Match.Index, e.Match.Value, e.Value)
		}
		return t.Set(e.Section, e.Key, e.Value)
	case OpAdd:
		return t.AddLine(e.Section, e.Value)
	case OpRemove:
		return t.RemoveLine(e.Section, e.Value)
	case OpReplace:
		return t.ReplaceLine(e.Section, e.Fields, e.Value)
	}
	return false
}

// A Plan collects the edits of one integration against a detected tree.
// Edits are applied to in-memory copies as they are added, so IDs are
// allocated against the edited state; nothing is written before Commit.
type Plan struct {
	Tree *Tree
	// Options are the integration's choices beyond the driver packages
	// (--nic, --ip, --preconf …); set them before the first AddDriver.
	Options  Options
	Edits    []Edit
	Warnings []string
	// seen holds the edits recorded in Edits (Edit.String), so that each
	// is listed once whichever planner makes it.
	seen map[string]bool

	// The work is shared by three planners, each owning the state of one
	// kind of output; their methods are on Plan (they record Edits and
	// Warnings) and live in the files named on each.
	textPlanner
	hivePlanner
	copyPlanner
}

// textPlanner holds the edited setup text files: txtsetup.sif (and its
// copies), dosnet.inf, hivesys.inf and hivesft.inf, edited through Text.
// Methods: plan.go, textfiles.go, hivesys.go, textmode.go, and packed*.go
// for the packed and plain INFs of the setup directory.
type textPlanner struct {
	files []*planFile
	// nicDone is set once text-mode TCP/IP, common to every adapter
	// (tcpipTextMode: txtsetup.sif entries and hivesys.inf's boot set),
	// is planned.
	nicDone bool
}

// hivePlanner holds setupreg.hiv and what its planning allocates.
// Methods: setupreg.go, setupreg_device.go, setupreg_finish.go.
type hivePlanner struct {
	// setupReg is the in-memory setupreg.hiv, loaded on first use.
	setupReg *setupRegState
	// nics are the network adapters' class instances, in the order
	// integrated.
	nics []*nicInstance
}

// copyPlanner holds the output files of the plan: every file it writes
// or removes, and the driver files copied. Methods: outputs.go,
// copies.go, loader.go.
type copyPlanner struct {
	outs []*fileOut
	// driverFiles is the content hash of each driver file output.
	driverFiles map[string][32]byte
}

type planFile struct {
	logical string // TxtSetupSIF, DosNetINF
	path    string
	orig    []byte
	text    *Text
}

// NewPlan reads the files the edits touch. It writes nothing.
func NewPlan(t *Tree) (*Plan, error) {
	p := &Plan{Tree: t, seen: map[string]bool{}}
	add := func(logical, name string) error {
		b, err := t.FS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("integrate: %w", err)
		}
		x, err := ParseText(name, b, nil)
		if err != nil {
			return err
		}
		p.files = append(p.files, &planFile{logical, name, b, x})
		return nil
	}
	if err := add(TxtSetupSIF, t.TxtSetup); err != nil {
		return nil, err
	}
	for _, c := range t.TxtSetupCopies {
		if err := add(TxtSetupSIF, c); err != nil {
			return nil, err
		}
	}
	if t.DosNet != "" {
		if err := add(DosNetINF, t.DosNet); err != nil {
			return nil, err
		}
	}
	if err := add(HiveSysINF, t.HiveSys); err != nil {
		return nil, err
	}
	if err := add(HiveSftINF, t.HiveSft); err != nil {
		return nil, err
	}
	if t.HiveSft32 != "" {
		if err := add(HiveSft32INF, t.HiveSft32); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// text returns the primary in-memory copy of a logical file, or nil.
func (p *Plan) text(logical string) *Text {
	for _, f := range p.files {
		if f.logical == logical {
			return f.text
		}
	}
	return nil
}

// do applies e to every copy of its file and records it once.
func (p *Plan) do(e Edit) {
	for _, f := range p.files {
		if f.logical == e.File && e.Apply(f.text) {
			e.Changed = true
		}
	}
	k := e.String()
	if p.seen[k] {
		return
	}
	p.seen[k] = true
	p.Edits = append(p.Edits, e)
}

// warn records a warning once: several devices or drivers of one run may
// hit the same condition, and the user needs to read it once.
func (p *Plan) warn(format string, a ...any) {
	w := fmt.Sprintf(format, a...)
	if !slices.Contains(p.Warnings, w) {
		p.Warnings = append(p.Warnings, w)
	}
}

// isNIC reports a network adapter ([Version] Class=Net or its GUID).
func isNIC(d *drivers.Device) bool {
	return strings.EqualFold(d.Class, "Net") || strings.EqualFold(d.ClassGUID, NetClassGUID)
}

// isStorage reports a storage controller (SCSIAdapter or HDC class).
func isStorage(d *drivers.Device) bool {
	return strings.EqualFold(d.Class, "SCSIAdapter") || strings.EqualFold(d.ClassGUID, SCSIAdapterClassGUID) ||
		strings.EqualFold(d.Class, "HDC") || strings.EqualFold(d.ClassGUID, HDCClassGUID)
}

// functionService returns the device's function driver: the service with
// SPSVCINST_ASSOCSERVICE, else the first one.
func functionService(d *drivers.Device) *drivers.Service {
	for i := range d.Services {
		if d.Services[i].Flags&0x2 != 0 {
			return &d.Services[i]
		}
	}
	if len(d.Services) > 0 {
		return &d.Services[0]
	}
	return nil
}

func winBase(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func winDir(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[:i]
	}
	return ""
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// AddDriver plans the txtsetup.sif and dosnet.inf edits for one driver
// package, given its resolved devices (drivers.Package.Resolve with
// Tree.Target()). It checks everything first: a driver without a device
// for the target, or with binaries of the other architecture, is refused
// with nothing planned.
func (p *Plan) AddDriver(pkg *drivers.Package, devs []*drivers.Device) error {
	t := p.Tree
	if len(devs) == 0 {
		return fmt.Errorf("%w: %s has no device for %s (Windows %s %s)", ErrArch, pkg.Dir, t.Target(), t.OS, t.Arch)
	}

	tfs, err := p.textFiles(pkg, devs)
	if err != nil {
		return err
	}

	// Staging for GUI mode, then text mode, then the critical devices.
	if err := p.stage(pkg, devs); err != nil {
		return err
	}
	p.textMode(tfs)
	p.criticalDevices(devs)
	p.hiveSysServices(devs)
	p.hiveSysCriticalDevices(devs)
	// Whole files: the setupreg.hiv keys (both-hives rows also go to
	// hivesys.inf), then the driver files, then the packed INFs, which
	// may rewrite what the copies put into the staging tree.
	if err := p.setupRegDriver(pkg, devs); err != nil {
		return err
	}
	if err := p.copyDriverFiles(pkg, devs, tfs); err != nil {
		return err
	}
	if err := p.packedDriverINFs(pkg, devs); err != nil {
		return err
	}
	for _, d := range devs {
		if isNIC(d) {
			if err := p.tcpipTextMode(); err != nil {
				return err
			}
			break
		}
	}
	for _, d := range devs {
		for _, s := range d.Services {
			if strings.EqualFold(s.Name, "sanbootconf") {
				p.enableGUIBoot()
			}
		}
	}
	return nil
}

// stagingName is the staging subdirectory of an INF: its base name,
// lower-cased (IntegrateDrv used the hardware ID, whose '&' and '\' break
// ISO 9660 names).
func stagingName(inf string) string {
	b := strings.ToLower(winBase(inf))
	return strings.TrimSuffix(b, path.Ext(b))
}

// stagingDir is the tree path of an INF's staging directory,
// <setup dir>/scsidrv/<stagingName>; a package file at rel (relative to the
// INF's directory) is staged at path.Join(stagingDir, rel) in lower case.
func (p *Plan) stagingDir(inf string) string {
	return p.Tree.SetupDir + "/scsidrv/" + stagingName(inf)
}

// allocID returns the id of the entry of section whose field holds want
// (case-insensitive), or the next free number from first.
func allocID(x *Text, section string, field int, want string, first int, prefix string) (string, bool) {
	next := first
	for _, e := range x.Entries(section) {
		if field < len(e.Fields) && strings.EqualFold(e.Fields[field], want) {
			return e.Key, true
		}
		k := strings.ToLower(e.Key)
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if n, err := strconv.Atoi(k[len(prefix):]); err == nil && n >= next {
			next = n + 1
		}
	}
	return prefix + strconv.Itoa(next), false
}

// A setupDisk is the source disk of the setup directory: entry 1 of
// [SourceDisksNames.<arch>], whose name and tag file the staging disks
// repeat.
type setupDisk struct{ desc, tag string }

// sourceDisk returns entry 1 of txtsetup.sif's [SourceDisksNames.<arch>].
func (p *Plan) sourceDisk() (setupDisk, error) {
	t := p.Tree
	sdn := "SourceDisksNames." + t.Arch
	var d setupDisk
	for _, e := range p.text(TxtSetupSIF).Entries(sdn) {
		if e.Key == "1" && len(e.Fields) >= 2 {
			d = setupDisk{e.Fields[0], e.Fields[1]}
		}
	}
	if d.desc == "" {
		return d, fmt.Errorf("integrate: %s: [%s] has no entry 1 to copy the disk name from", t.TxtSetup, sdn)
	}
	return d, nil
}

// stagingIDs are the ids of a staging directory: its source disk, its
// [WinntDirectories] entry and its dosnet.inf [Directories] entry ("" when
// the tree has no dosnet.inf).
type stagingIDs struct{ disk, winnt, dosnet string }

// addStagingDir plans the staging directory <setup dir>\scsidrv\<dir>
// (dir a backslash path) as a source disk like src, the Windows directory
// %SystemRoot%\TEMP\SCSIDRV\<dir> and, with dosnet.inf, a directory and
// an optional source directory winnt32 copies.
func (p *Plan) addStagingDir(src setupDisk, dir, why string) stagingIDs {
	t := p.Tree
	sif := p.text(TxtSetupSIF)
	sdn := "SourceDisksNames." + t.Arch
	media := `\` + strings.ToLower(path.Base(t.SetupDir)) + `\scsidrv\` + dir
	win := `TEMP\SCSIDRV\` + dir
	var id stagingIDs
	id.disk, _ = allocID(sif, sdn, 3, media, firstDiskID, "")
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdn, Key: id.disk, Value: quote(src.desc) + "," + src.tag + ",," + media, Why: why})
	id.winnt, _ = allocID(sif, "WinntDirectories", 0, win, firstWinntDir, "")
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "WinntDirectories", Key: id.winnt, Value: win, Why: why})
	if dn := p.text(DosNetINF); dn != nil {
		id.dosnet, _ = allocID(dn, "Directories", 0, media, firstDosNetDir, "d")
		p.do(Edit{File: DosNetINF, Op: OpSet, Section: "Directories", Key: id.dosnet, Value: media, Why: why})
		p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "OptionalSrcDirs", Value: `scsidrv\` + dir, Why: why})
	}
	return id
}

// addStagedFile plans the copy of the staged file name from the staging
// directory id: its [SourceDisksFiles.<arch>] line and, with dosnet.inf,
// its [Files] line.
func (p *Plan) addStagedFile(id stagingIDs, name, why string) {
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SourceDisksFiles." + p.Tree.Arch, Key: name,
		Match: &FieldMatch{7, id.winnt}, Value: id.disk + ",,,,,,," + id.winnt + ",0,0", Why: why})
	if id.dosnet != "" {
		p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: id.dosnet + "," + name, Why: why})
	}
}

// stage copies every file of the package's INFs into the staging tree
// \<setup>\scsidrv\<inf>\… for GUI-mode setup: a source disk and a
// Windows directory per subdirectory, a SourceDisksFiles line per file.
func (p *Plan) stage(pkg *drivers.Package, devs []*drivers.Device) error {
	src, err := p.sourceDisk()
	if err != nil {
		return err
	}

	type staged struct{ rel string }
	byINF := map[string][]staged{}
	var infs []string
	addFile := func(inf, rel string) {
		if _, ok := byINF[inf]; !ok {
			infs = append(infs, inf)
		}
		for _, s := range byINF[inf] {
			if strings.EqualFold(s.rel, rel) {
				return
			}
		}
		byINF[inf] = append(byINF[inf], staged{rel})
	}
	for _, d := range devs {
		addFile(d.INF, d.INF)
		if d.CatalogFile != "" {
			if src, ok := pkg.Lookup(d.CatalogFile); ok {
				addFile(d.INF, src)
			} else {
				p.warn("%s: catalog %s is not in the package; GUI-mode setup will see the driver unsigned", d.INF, d.CatalogFile)
			}
		}
		for _, fc := range d.Files {
			addFile(d.INF, fc.Source)
		}
	}
	var devPath []string
	for _, inf := range infs {
		name := stagingName(inf)
		devPath = append(devPath, `%SystemRoot%\TEMP\SCSIDRV\`+name)
		why := "staging " + inf
		dirs := map[string]stagingIDs{} // subdir → its directory ids
		for _, s := range byINF[inf] {
			sub := strings.ToLower(path.Dir(s.rel))
			id, ok := dirs[sub]
			if !ok {
				dir := name
				if sub != "." {
					dir += `\` + strings.ReplaceAll(sub, "/", `\`)
				}
				id = p.addStagingDir(src, dir, why)
				dirs[sub] = id
			}
			p.addStagedFile(id, path.Base(s.rel), why)
		}
	}
	p.devicePath(devPath)
	return nil
}

// textMode makes text-mode setup copy and load the driver files from the
// setup directory (research §6.5, §6.6; SCSI.Load for storage drivers).
func (p *Plan) textMode(tfs []*textFile) {
	t := p.Tree
	sdf := "SourceDisksFiles." + t.Arch
	dn := p.text(DosNetINF)
	for _, f := range tfs {
		why := f.orig
		if f.service != nil {
			why = "service " + f.service.Name
		}
		if f.dirID == "2" { // a DLL: system32
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdf, Key: f.name, Match: &FieldMatch{7, "2"},
				Value: "1,,,,,,,2,0,0", Why: why})
			if dn != nil {
				p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: "d1," + f.name, Why: why})
			}
			continue
		}
		// A patched image is loaded, never copied (textModeUnpatched
		// installs the original), nor through SCSI.Load, which would copy it.
		scsi := f.service != nil && isStorage(f.dev) && f.service == functionService(f.dev) && f.patched == nil
		disp := "0"
		dest := ""
		if !strings.EqualFold(f.name, f.orig) && f.patched == nil {
			dest = f.orig
		}
		if scsi && dest == "" || f.patched != nil {
			disp = "3" // [SCSI.Load] copies it; a patched image is only loaded
		}
		v := "1,,,,,,4_,4," + disp + "," + disp
		if t.Minor != 0 || dest != "" {
			v += "," + dest + ",1,4"
		}
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdf, Key: f.name, Match: &FieldMatch{7, "4"}, Value: v, Why: why})
		if dn != nil {
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: "d1," + f.name, Why: why})
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "FloppyFiles.1", Value: "d1," + f.name, Why: why})
		}
		if disp == "3" && f.patched == nil {
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "FileFlags", Key: f.name, Value: "16", Why: why})
		}
		p.textModeUnpatched(f)
		if f.service == nil {
			continue
		}
		svc := f.service.Name
		if len(svc) > 8 && t.Layout == Media {
			p.warn("service %s: text-mode file %s is not an 8.3 name; an ISO 9660 level 1 CD cannot carry it", svc, f.name)
		}
		desc := f.service.DisplayName
		if desc == "" {
			desc = f.dev.Description
		}
		switch {
		case scsi:
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SCSI.Load", Key: svc, Value: f.name + ",4", Why: why})
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SCSI", Key: svc, Value: quote(desc), Why: why})
		case f.service.LoadOrderGroup != "":
			// A non-sticky load section; the service's Group in
			// setupreg.hiv decides the real order.
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "Keyboard.Load", Key: svc, Value: f.name, Why: why})
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "Keyboard", Key: svc,
				Value: quote(desc) + ",files.none," + svc, Why: why})
		default:
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "CdRomDrivers.Load", Key: svc, Value: f.name, Why: why})
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "CdRomDrivers", Key: svc, Value: quote(desc), Why: why})
		}
	}
}

// criticalDevices maps every hardware and compatible ID of each device to
// its function service in [HardwareIdsDatabase], with the class GUID for
// network adapters (NICBootConf needs it on the instance). Root-enumerated
// IDs are left out: those devices are pre-created in the Enum tree.
func (p *Plan) criticalDevices(devs []*drivers.Device) {
	for _, d := range devs {
		s := functionService(d)
		if s == nil {
			p.warn("%s: %s has no service; no critical-device entry", d.INF, d.HardwareID)
			continue
		}
		v := quote(s.Name)
		if isNIC(d) {
			v += "," + NetClassGUID
		}
		ids := append([]string{d.HardwareID}, d.CompatibleIDs...)
		for _, id := range ids {
			if id == "" || strings.HasPrefix(strings.ToUpper(id), `ROOT\`) {
				continue
			}
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "HardwareIdsDatabase", Key: id, Value: v, Why: d.Description})
		}
	}
}

// tcpipTextMode loads NDIS, IPSec and TCP/IP in text mode (research §7.1)
// and, on media, has winnt32 copy their files to the boot directory.
func (p *Plan) tcpipTextMode() error {
	if p.nicDone {
		return nil
	}
	p.nicDone = true
	p.hiveSysTCPIP()
	const why = "network adapter: TCP/IP in text mode"
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "BusExtenders.Load", Key: "ndis", Value: "ndis.sys", Why: why})
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "BusExtenders", Key: "ndis", Value: `"NDIS",files.none,ndis`, Why: why})
	if p.Tree.Minor != 0 {
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers.Load", Key: "ipsec", Value: "ipsec.sys", Why: why})
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers", Key: "ipsec", Value: `"IPSEC Driver"`, Why: why})
	}
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers.Load", Key: "tcpip", Value: "tcpip.sys", Why: why})
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers", Key: "tcpip", Value: `"TCP/IP Protocol Driver"`, Why: why})
	if p.text(DosNetINF) != nil {
		files := []string{"tdi.sy_", "ndis.sy_", "ipsec.sy_", "tcpip.sy_"}
		if p.Tree.Minor == 0 {
			files = []string{"tdi.sy_", "ndis.sy_", "tcpip.sy_"}
		}
		for _, f := range files {
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "FloppyFiles.1", Value: "d1," + f, Why: why})
		}
	}
	if err := p.setupRegTCPIP(); err != nil {
		return err
	}
	if err := p.tcpipFiles(); err != nil {
		return err
	}
	return p.packedTCPIP()
}

// enableGUIBoot removes /noguiboot from [SetupData] OsLoadOptions so that
// sanbootconf's boot text shows (research §2 step 6).
func (p *Plan) enableGUIBoot() {
	v, ok := p.text(TxtSetupSIF).Value("SetupData", "OsLoadOptions")
	if !ok {
		return
	}
	var kept []string
	for _, o := range strings.Fields(inftext.Unquote(v)) {
		if !strings.EqualFold(o, "/noguiboot") {
			kept = append(kept, o)
		}
	}
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SetupData", Key: "OsLoadOptions",
		Value: quote(strings.Join(kept, " ")), Why: "sanbootconf: boot text needs the GUI boot screen"})
}
