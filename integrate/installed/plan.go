package installed

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/cab"
)

// Options are the integration's choices beyond the driver packages.
type Options struct {
	// NIC, Address, Gateway and DHCP choose the boot adapter and its
	// TCP/IP settings as for setup trees; with neither Address nor DHCP
	// the adapter uses DHCP. Backup keeps NAME.xpboot-orig copies.
	// Preconf is not used: an installed system's PCI instances exist.
	integrate.Options
	// MergeIDE applies KB314082: the IDE CriticalDeviceDatabase entries,
	// the atapi, IntelIde and PCIIde services, and their driver files
	// from the system's own driver cabinets when missing.
	MergeIDE bool `json:"mergeide,omitempty"`
	// DevicePath directories (relative to the system drive, or
	// %SystemRoot%\…) are appended to SOFTWARE's DevicePath.
	DevicePath []string `json:"devicepath,omitempty"`
}

// An Edit is one registry change of a plan: a key created (Name and
// Value empty) or a value set; Was is the value before, when there was
// one.
type Edit struct {
	Hive  string `json:"hive"`
	Key   string `json:"key"`
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`
	Was   string `json:"was,omitempty"`
	Why   string `json:"why,omitempty"`
}

// Kinds of FileChange.
const (
	KindHive   = "hive"
	KindDriver = "driver"
	KindBoot   = "boot sector"
	KindUndo   = "undo record"
	KindBackup = integrate.KindBackup
)

// A Plan collects an installed-system integration: nothing is written
// until Commit.
type Plan struct {
	FS       imagefs.FS
	Sys      *System
	Options  Options
	Warnings []string
	// Boot, when set, is the partition's boot sector, whose geometry
	// fields Commit sets to what iPXE presents.
	Boot BootSector

	system, software *regHive
	files            []*fileOut
	nics             []*nic
	bootStart        map[string]string // lower service name → why
	boot             *bootEdit
	finished         bool
}

// nic is a network adapter of the plan and its NetCfgInstanceId.
type nic struct {
	dev  *drivers.Device
	guid string
}

// fileOut is one whole file the plan writes.
type fileOut struct {
	path   string
	data   []byte
	orig   []byte
	exists bool
	why    string
	kind   string
}

// NewPlan starts a plan for the installed system sys of fsys: it reads
// and checks both hives.
func NewPlan(fsys imagefs.FS, sys *System, opts Options) (*Plan, error) {
	p := &Plan{FS: fsys, Sys: sys, Options: opts, bootStart: map[string]string{}}
	var err error
	if p.system, err = loadHive(fsys, sys.SystemHive(), "SYSTEM"); err != nil {
		return nil, err
	}
	if p.software, err = loadHive(fsys, sys.SoftwareHive(), "SOFTWARE"); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Plan) warn(format string, a ...any) {
	w := fmt.Sprintf(format, a...)
	if !slices.Contains(p.Warnings, w) {
		p.Warnings = append(p.Warnings, w)
	}
}

// Edits returns every registry change of the plan, SYSTEM first.
func (p *Plan) Edits() []Edit {
	return slices.Concat(p.system.edits, p.software.edits)
}

// putFile plans a whole file; the same path twice must have the same
// content.
func (p *Plan) putFile(name string, data []byte, kind, why string) error {
	for _, f := range p.files {
		if strings.EqualFold(f.path, name) {
			if !bytes.Equal(f.data, data) {
				return fmt.Errorf("installed: two different files want %s", name)
			}
			return nil
		}
	}
	o := &fileOut{path: name, data: data, why: why, kind: kind}
	b, err := imagefs.ReadFile(p.FS, name)
	switch {
	case err == nil:
		o.orig, o.exists = b, true
	case !isNotExist(err):
		return fmt.Errorf("installed: %s: %w", name, err)
	}
	p.files = append(p.files, o)
	return nil
}

// readSource reads a package file, expanding a cabinet (a compressed
// X.SY_ source under either name) to the one file it holds.
func readSource(pkg *drivers.Package, rel string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(pkg.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("installed: driver package %s: %w", pkg.Dir, err)
	}
	if !bytes.HasPrefix(b, []byte("MSCF")) {
		return b, nil
	}
	r, err := cab.NewNamedReader(bytes.NewReader(b), int64(len(b)), rel)
	if err != nil {
		return nil, fmt.Errorf("installed: driver package %s: %w", pkg.Dir, err)
	}
	if len(r.File) != 1 {
		return nil, fmt.Errorf("installed: driver package %s: %s: cabinet holds %d files, not one", pkg.Dir, rel, len(r.File))
	}
	d, err := r.File[0].ReadAll()
	if err != nil {
		return nil, fmt.Errorf("installed: driver package %s: %s: %w", pkg.Dir, rel, err)
	}
	return d, nil
}

// AddDriver plans one driver package's devices: the files, and in every
// control set the services, class instances, CriticalDeviceDatabase
// entries, root-enumerated device instances and, for network adapters,
// the TCP/IP bindings.
func (p *Plan) AddDriver(pkg *drivers.Package, devs []*drivers.Device) error {
	p.finished = false
	for _, d := range devs {
		for _, fc := range d.Files {
			dest := strings.ReplaceAll(fc.Dest, `\`, "/")
			if dest == ".." || strings.HasPrefix(dest, "../") {
				p.warn("%s: %s goes outside the Windows directory (DIRID %d); not copied", d.INF, fc.Source, fc.DirID)
				continue
			}
			b, err := readSource(pkg, fc.Source)
			if err != nil {
				return err
			}
			if err := p.putFile(p.Sys.Root+"/"+dest, b, KindDriver, d.INF+": "+d.HardwareID); err != nil {
				return err
			}
		}
	}
	for _, cs := range p.Sys.ControlSets {
		for _, sv := range drivers.UniqueServices(devs) {
			if err := p.service(cs, sv); err != nil {
				return err
			}
		}
		for _, d := range devs {
			if err := p.device(cs, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// isKernelDriver reports a SERVICE_KERNEL_DRIVER or
// SERVICE_FILE_SYSTEM_DRIVER type, the only ones NTLDR loads.
func isKernelDriver(t uint32) bool { return t == 1 || t == 2 }

// service writes a service key in control set cs: kernel drivers boot
// start (Start=0), others the INF's start type.
func (p *Plan) service(cs string, sv *drivers.Service) error {
	h := p.system
	key := cs + `\Services\` + sv.Name
	why := "service " + sv.Name
	start := sv.StartType
	if isKernelDriver(sv.ServiceType) {
		start = 0
		p.bootStart[strings.ToLower(sv.Name)] = why
		if sv.LoadOrderGroup == "" {
			p.warn("service %s has no LoadOrderGroup: NTLDR loads boot drivers group by group and may never load it", sv.Name)
		}
	}
	if sv.DisplayName != "" {
		if err := h.setSZ(key, "DisplayName", sv.DisplayName, why); err != nil {
			return err
		}
	}
	if err := h.setDWORD(key, "ErrorControl", sv.ErrorControl, why); err != nil {
		return err
	}
	if sv.LoadOrderGroup != "" {
		if err := h.setSZ(key, "Group", sv.LoadOrderGroup, why); err != nil {
			return err
		}
	}
	if err := h.setDWORD(key, "Start", start, why); err != nil {
		return err
	}
	if err := h.setDWORD(key, "Type", sv.ServiceType, why); err != nil {
		return err
	}
	if sv.ImagePath != "" {
		if err := h.setExpandSZ(key, "ImagePath", sv.ImagePath, why); err != nil {
			return err
		}
	}
	if len(sv.DependOnService) > 0 {
		if err := h.appendMulti(key, "DependOnService", why, sv.DependOnService...); err != nil {
			return err
		}
	}
	if len(sv.DependOnGroup) > 0 {
		if err := h.appendMulti(key, "DependOnGroup", why, sv.DependOnGroup...); err != nil {
			return err
		}
	}
	if sv.StartName != "" {
		if err := h.setSZ(key, "ObjectName", sv.StartName, why); err != nil {
			return err
		}
	}
	if err := p.regOps(cs, key, sv.Registry, why); err != nil {
		return err
	}
	if el := sv.EventLog; el != nil {
		typ, name := el.Type, el.Name
		if typ == "" {
			typ = "System"
		}
		if name == "" {
			name = sv.Name
		}
		if err := p.regOps(cs, cs+`\Services\EventLog\`+typ+`\`+name, el.Registry, why+" event log"); err != nil {
			return err
		}
	}
	return nil
}

// regOps applies INF AddReg operations, HKR being base: HKLM\SYSTEM\
// CurrentControlSet lines go to control set cs, HKLM\SOFTWARE lines to
// the SOFTWARE hive. Deletions and other roots are warned about.
func (p *Plan) regOps(cs, base string, ops []drivers.RegOp, why string) error {
	for _, r := range ops {
		h, key := p.system, ""
		switch r.Root {
		case "HKR":
			key = base
			if r.Key != "" {
				key += `\` + r.Key
			}
		case "HKLM":
			first, rest, _ := strings.Cut(r.Key, `\`)
			switch {
			case strings.EqualFold(first, "SYSTEM"):
				if c, tail, _ := strings.Cut(rest, `\`); strings.EqualFold(c, "CurrentControlSet") {
					rest = cs + `\` + tail
				}
				key = strings.TrimSuffix(rest, `\`)
			case strings.EqualFold(first, "SOFTWARE"):
				h, key = p.software, rest
			}
		}
		if key == "" {
			p.warn("%s: %s:%d: %s\\%s is outside the SYSTEM and SOFTWARE hives; not written", why, r.INF, r.Line, r.Root, r.Key)
			continue
		}
		switch r.Op {
		case drivers.OpKey:
			if err := h.createKey(key, why); err != nil {
				return err
			}
		case drivers.OpSet:
			b, err := integrate.EncodeReg(r.Type, r.Data)
			if err != nil {
				return fmt.Errorf("installed: %s:%d: %w", r.INF, r.Line, err)
			}
			cur, exists := h.value(key, r.Value)
			switch {
			case r.NoClobber() && exists:
				continue
			case r.OverwriteOnly() && !exists:
				continue
			case r.Append() && r.Type == drivers.RegMultiSZ:
				if exists && cur.Type == hive.MultiSZ {
					list := hive.DecodeMultiString(cur.Data)
					for _, s := range r.Data.Multi {
						if !hasFold(list, s) {
							list = append(list, s)
						}
					}
					b = hive.EncodeMultiString(list)
				}
			}
			if err := h.set(key, r.Value, hive.ValueType(r.Type), b, why); err != nil {
				return err
			}
		default:
			p.warn("%s: %s:%d: %s not applied to an installed system", why, r.INF, r.Line, r.Op)
		}
	}
	return nil
}

// sameModel reports whether two device IDs name one model: equal, or the
// &-parts of the shorter all among the longer's with the same bus and
// vendor (PCI\VEN_8086&DEV_100E and
// PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02).
func sameModel(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ap := strings.Split(strings.ToUpper(a), "&")
	bp := strings.Split(strings.ToUpper(b), "&")
	if len(ap) > len(bp) {
		ap, bp = bp, ap
	}
	if len(ap) < 2 || ap[0] != bp[0] {
		return false
	}
	for _, s := range ap[1:] {
		if !slices.Contains(bp[1:], s) {
			return false
		}
	}
	return true
}

func instanceNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// instance finds under parent the numbered subkey match accepts, else the
// lowest free number (prefer, when free, is taken first so control sets
// agree).
func (p *Plan) instance(parent, prefer string, match func(key string) bool) (num string, found bool) {
	used := map[int]bool{}
	for _, n := range p.system.subkeys(parent) {
		i, ok := instanceNumber(n)
		if !ok {
			continue
		}
		used[i] = true
		if !found && match(parent+`\`+n) {
			num, found = n, true
		}
	}
	if found {
		return num, true
	}
	if i, ok := instanceNumber(prefer); ok && !used[i] {
		return prefer, false
	}
	i := 0
	for used[i] {
		i++
	}
	return fmt.Sprintf("%04d", i), false
}

// device writes a device's keys in control set cs.
func (p *Plan) device(cs string, d *drivers.Device) error {
	h := p.system
	why := d.Description + " (" + d.HardwareID + ")"
	guid := integrate.ClassGUID(d)
	if guid == "" {
		p.warn("%s: %s has no class GUID; no class instance written", d.INF, d.HardwareID)
		return nil
	}
	classParent := cs + `\Control\Class\` + guid
	if !h.hasKey(classParent) && d.Class != "" {
		if err := h.setSZ(classParent, "Class", d.Class, why); err != nil {
			return err
		}
	}
	prefer := ""
	if cs != p.Sys.Current {
		// Use the current set's number when this set has it free.
		prefer, _ = p.instance(p.Sys.Current+`\Control\Class\`+guid, "", func(k string) bool { return p.classMatch(k, d) })
	}
	num, reused := p.instance(classParent, prefer, func(k string) bool { return p.classMatch(k, d) })
	classKey := classParent + `\` + num
	if !reused {
		if err := h.setSZ(classKey, "MatchingDeviceId", strings.ToLower(d.HardwareID), why); err != nil {
			return err
		}
	}
	if err := h.setSZ(classKey, "DriverDesc", d.Description, why); err != nil {
		return err
	}
	for _, v := range []struct{ name, val string }{{"DriverVersion", d.DriverVer}, {"DriverDate", d.DriverDate}, {"ProviderName", d.Provider}} {
		if v.val != "" {
			if err := h.setSZ(classKey, v.name, v.val, why); err != nil {
				return err
			}
		}
	}
	if err := p.regOps(cs, classKey, d.Registry, why); err != nil {
		return err
	}
	svc := integrate.FunctionService(d)
	if svc != nil {
		for _, id := range append([]string{d.HardwareID}, d.CompatibleIDs...) {
			if id == "" || strings.HasPrefix(strings.ToUpper(id), `ROOT\`) {
				continue
			}
			if err := p.criticalDevice(cs, id, svc.Name, guid, why); err != nil {
				return err
			}
		}
	}
	if strings.HasPrefix(strings.ToUpper(d.HardwareID), `ROOT\`) {
		if err := p.rootDevice(cs, d, guid, num, svc, why); err != nil {
			return err
		}
	}
	if integrate.IsNIC(d) {
		return p.netAdapter(cs, d, classKey, why)
	}
	return nil
}

// classMatch tells whether the class instance key was installed for d's
// model (its MatchingDeviceId names the same model).
func (p *Plan) classMatch(key string, d *drivers.Device) bool {
	mid, ok := p.system.str(key, "MatchingDeviceId")
	if !ok {
		return false
	}
	for _, id := range append([]string{d.HardwareID}, d.CompatibleIDs...) {
		if sameModel(mid, id) {
			return true
		}
	}
	return false
}

// criticalDevice writes Control\CriticalDeviceDatabase\<id> so that a
// new instance of the device, in any slot, gets its service at boot.
func (p *Plan) criticalDevice(cs, id, service, guid, why string) error {
	key := cs + `\Control\CriticalDeviceDatabase\` + strings.ReplaceAll(strings.ToLower(id), `\`, "#")
	if err := p.system.setSZ(key, "Service", service, why); err != nil {
		return err
	}
	return p.system.setSZ(key, "ClassGUID", guid, why)
}

// rootDevice writes a root-enumerated device's instance,
// Enum\Root\<CLASS>\NNNN (ROOT\iScsiPrt, ROOT\sanbootconf), reusing one
// with the same HardwareID.
func (p *Plan) rootDevice(cs string, d *drivers.Device, guid, num string, svc *drivers.Service, why string) error {
	h := p.system
	if d.Class == "" {
		p.warn("%s: %s has no class name; no Enum\\Root instance written", d.INF, d.HardwareID)
		return nil
	}
	parent := cs + `\Enum\Root\` + strings.ToUpper(d.Class)
	inst, _ := p.instance(parent, "", func(k string) bool {
		ids, ok := h.multi(k, "HardwareID")
		return ok && hasFold(ids, d.HardwareID)
	})
	key := parent + `\` + inst
	if err := h.setSZ(key, "ClassGUID", guid, why); err != nil {
		return err
	}
	if err := h.setSZ(key, "DeviceDesc", d.Description, why); err != nil {
		return err
	}
	if err := h.setSZ(key, "Driver", guid+`\`+num, why); err != nil {
		return err
	}
	if svc != nil {
		if err := h.setSZ(key, "Service", svc.Name, why); err != nil {
			return err
		}
	}
	if _, ok := h.value(key, "ConfigFlags"); !ok {
		if err := h.setDWORD(key, "ConfigFlags", 0, why); err != nil {
			return err
		}
	}
	if err := h.appendMulti(key, "HardwareID", why, d.HardwareID); err != nil {
		return err
	}
	if d.Manufacturer != "" {
		if err := h.setSZ(key, "Mfg", d.Manufacturer, why); err != nil {
			return err
		}
	}
	if err := h.setSZ(key, "Class", d.Class, why); err != nil {
		return err
	}
	return p.regOps(cs, key, d.HWRegistry, why)
}

// netAdapter makes a network adapter's class instance a TCP/IP-bound
// boot adapter (research setup-stage-installed.md B.4): NetCfgInstanceId
// (the instance's own when it has one), BusType, Characteristics,
// Linkage, the Tcpip and NetBT bindings and Tcpip's interface key.
func (p *Plan) netAdapter(cs string, d *drivers.Device, classKey, why string) error {
	h := p.system
	var n *nic
	for _, x := range p.nics {
		if x.dev == d {
			n = x
		}
	}
	g, ok := h.str(classKey, "NetCfgInstanceId")
	switch {
	case ok && integrate.IsGUID(g):
		g = strings.ToUpper(g)
		if n != nil && !strings.EqualFold(n.guid, g) {
			p.warn("%s: %s has NetCfgInstanceId %s in %s but %s in %s; each control set keeps its own", d.INF, d.HardwareID, g, cs, n.guid, p.Sys.Current)
		}
	case n != nil:
		g = n.guid
	default:
		g = integrate.NetCfgGUID(strings.TrimPrefix(classKey, cs+`\`), d.HardwareID)
	}
	if n == nil {
		n = &nic{dev: d, guid: g}
		p.nics = append(p.nics, n)
	}
	if err := h.setSZ(classKey, "NetCfgInstanceId", g, why); err != nil {
		return err
	}
	if d.HasBusType {
		if err := h.setSZ(classKey, "BusType", strconv.FormatUint(uint64(d.BusType), 10), why); err != nil {
			return err
		}
	}
	if d.HasCharacteristics {
		if err := h.setDWORD(classKey, "Characteristics", d.Characteristics, why); err != nil {
			return err
		}
	}
	if err := h.appendMulti(classKey+`\Linkage`, "Export", why, `\Device\`+g); err != nil {
		return err
	}
	if err := h.appendMulti(classKey+`\Linkage`, "RootDevice", why, g); err != nil {
		return err
	}
	if err := h.appendMulti(classKey+`\Linkage`, "UpperBind", why, "Tcpip"); err != nil {
		return err
	}
	tcp := cs + `\Services\Tcpip`
	twhy := "network adapter " + d.HardwareID + ": TCP/IP interface " + g
	if err := h.setMulti(tcp+`\Parameters\Adapters\`+g, "IpConfig", []string{`Tcpip\Parameters\Interfaces\` + g}, twhy); err != nil {
		return err
	}
	iface := tcp + `\Parameters\Interfaces\` + g
	if p.chosen(d) {
		o := p.Options
		ip, mask, gw, dhcp := "0.0.0.0", "0.0.0.0", "", uint32(1)
		if o.Address.IsValid() {
			dhcp = 0
			ip = o.Address.Addr().String()
			m := uint32(0xffffffff) << (32 - o.Address.Bits())
			mask = fmt.Sprintf("%d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
		}
		if o.Gateway.IsValid() {
			gw = o.Gateway.String()
		}
		if err := h.setDWORD(iface, "EnableDHCP", dhcp, twhy); err != nil {
			return err
		}
		for _, v := range []struct{ name, val string }{{"IPAddress", ip}, {"SubnetMask", mask}, {"DefaultGateway", gw}} {
			if err := h.setMulti(iface, v.name, []string{v.val}, twhy); err != nil {
				return err
			}
		}
	} else if _, ok := h.value(iface, "EnableDHCP"); !ok {
		if err := h.setDWORD(iface, "EnableDHCP", 1, twhy); err != nil {
			return err
		}
	}
	for _, v := range []struct{ key, name, add string }{
		{tcp + `\Linkage`, "Bind", `\Device\` + g},
		{tcp + `\Linkage`, "Export", `\Device\Tcpip_` + g},
		{tcp + `\Linkage`, "Route", `"` + g + `"`},
		{cs + `\Services\NetBT\Linkage`, "Bind", `\Device\Tcpip_` + g},
		{cs + `\Services\NetBT\Linkage`, "Export", `\Device\NetBT_Tcpip_` + g},
		{cs + `\Services\NetBT\Linkage`, "Route", `"Tcpip" "` + g + `"`},
	} {
		if err := h.appendMulti(v.key, v.name, twhy, v.add); err != nil {
			return err
		}
	}
	nb := cs + `\Services\NetBT\Parameters\Interfaces\Tcpip_` + g
	if _, ok := h.value(nb, "NameServerList"); !ok {
		if err := h.setMulti(nb, "NameServerList", nil, twhy); err != nil {
			return err
		}
	}
	return nil
}

// chosen tells whether d is the adapter that gets Options' TCP/IP
// settings: the one Options.NIC names, else the first adapter.
func (p *Plan) chosen(d *drivers.Device) bool {
	if p.Options.NIC != "" {
		return integrate.MatchesID(d, p.Options.NIC)
	}
	return len(p.nics) > 0 && p.nics[0].dev == d
}

// winPath maps a tree path to how Windows names it, for messages.
func winPath(p string) string { return strings.ReplaceAll(path.Clean(p), "/", `\`) }
