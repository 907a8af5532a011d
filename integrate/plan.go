package integrate

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
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
//
// The work is done by four planners, each owning one kind of output and
// the methods that plan it; Plan only orders their steps (AddDriver,
// AddTextModeDriver) and writes what they produced (Files, Diff,
// Commit):
//
//   - textPlanner (textplan.go): txtsetup.sif, dosnet.inf and the hive
//     INFs as text, the staging entries and text-mode loading;
//   - hivePlanner (setupreg*.go, hivesys.go): the registry, setupreg.hiv
//     and the AddReg lines of hivesys.inf, written through the text planner;
//   - copyPlanner (outputs.go, copies.go, textfiles.go, loader.go): whole
//     files, the driver files copied and the setup loader;
//   - infPlanner (packed*.go): the setup directory's own INFs, packed
//     (*.in_) or plain.
//
// textmode.go holds each planner's step for txtsetup.oem drivers.
type Plan struct {
	Tree *Tree
	// Options are the integration's choices beyond the driver packages
	// (--nic, --ip, --preconf …); set them before the first AddDriver.
	Options  Options
	Edits    []Edit
	Warnings []string

	texts  *textPlanner
	hives  *hivePlanner
	copies *copyPlanner
	infs   *infPlanner
	// nicDone is set once text-mode TCP/IP, common to every adapter
	// (tcpipTextMode), is planned.
	nicDone bool
}

// NewPlan reads the files the edits touch. It writes nothing.
func NewPlan(t *Tree) (*Plan, error) {
	p := &Plan{Tree: t}
	env := &planEnv{tree: t, opts: &p.Options, edits: &p.Edits, warnings: &p.Warnings, seen: map[string]bool{}}
	p.texts = &textPlanner{planEnv: env}
	p.copies = &copyPlanner{planEnv: env, texts: p.texts}
	p.hives = &hivePlanner{planEnv: env, texts: p.texts, copies: p.copies}
	p.infs = &infPlanner{planEnv: env, texts: p.texts, hives: p.hives, copies: p.copies}
	if err := p.texts.read(); err != nil {
		return nil, err
	}
	return p, nil
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

	tfs, err := p.copies.textFiles(pkg, devs)
	if err != nil {
		return err
	}

	// Staging for GUI mode, then text mode, then the critical devices.
	devPath, err := p.texts.stage(pkg, devs)
	if err != nil {
		return err
	}
	p.hives.devicePath(devPath)
	p.texts.textMode(tfs)
	p.texts.criticalDevices(devs)
	p.hives.hiveSysServices(devs)
	p.hives.hiveSysCriticalDevices(devs)
	// Whole files: the setupreg.hiv keys (both-hives rows also go to
	// hivesys.inf), then the driver files, then the packed INFs, which
	// may rewrite what the copies put into the staging tree.
	if err := p.hives.setupRegDriver(pkg, devs); err != nil {
		return err
	}
	if err := p.copies.copyDriverFiles(pkg, devs, tfs); err != nil {
		return err
	}
	if err := p.infs.packedDriverINFs(pkg, devs); err != nil {
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
				p.texts.enableGUIBoot()
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

// tcpipTextMode plans TCP/IP in text mode once per plan, for the first
// network adapter: the hive INFs' boot set, the txtsetup.sif loading and
// dosnet.inf copies, setupreg.hiv's TCP/IP keys, the files and the
// packed INFs' boot start.
func (p *Plan) tcpipTextMode() error {
	if p.nicDone {
		return nil
	}
	p.nicDone = true
	p.hives.hiveSysTCPIP()
	p.texts.tcpipLoad()
	if err := p.hives.setupRegTCPIP(); err != nil {
		return err
	}
	if err := p.copies.tcpipFiles(); err != nil {
		return err
	}
	return p.infs.packedTCPIP()
}
