package installed

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/cab"
)

// SGOBackup is the ServiceGroupOrder value that keeps the List as it was
// before the groups were moved; sanbootconf's installer uses this name,
// so either tool finds the other's backup.
const SGOBackup = "List.pre-sanbootconf"

// finish plans what depends on every driver: the TCP/IP boot set, Start=0
// carried through bindings and dependencies, the group order, the
// system-wide values, KB314082, DevicePath and SuppressNewHWUI. It runs
// again after a later AddDriver.
func (p *Plan) finish() error {
	if p.finished {
		return nil
	}
	for _, cs := range p.Sys.ControlSets {
		if err := p.finishSet(cs); err != nil {
			return err
		}
	}
	if p.Options.MergeIDE {
		if err := p.mergeIDEFiles(); err != nil {
			return err
		}
	}
	if err := p.devicePath(); err != nil {
		return err
	}
	if p.Sys.Minor == 1 {
		// virt-v2v sets this for XP so that the Found New Hardware
		// wizard does not block the first boot on new hardware.
		if err := p.software.setDWORD(`Policies\Microsoft\Windows\DeviceInstall\Settings`, "SuppressNewHWUI", 1,
			"no Found New Hardware wizard on the first boot on new hardware"); err != nil {
			return err
		}
	}
	p.finished = true
	return nil
}

func (p *Plan) finishSet(cs string) error {
	h := p.system
	svc := cs + `\Services\`
	why := "TCP/IP boot start (sanbootconf installer)"
	boot := map[string]string{}
	for k, v := range p.bootStart {
		boot[k] = v
	}
	if len(p.nics) > 0 {
		for _, s := range []struct{ name, group string }{
			{"NDIS", "NDIS Wrapper"}, {"KSecDD", "Base"}, {"IPSec", "PNP_TDI"}, {"Tcpip", "PNP_TDI"},
		} {
			if !h.hasKey(svc + s.name) {
				if s.name == "Tcpip" || s.name == "NDIS" {
					return fmt.Errorf("installed: %s: %s has no Services\\%s: TCP/IP is not installed", p.system.path, cs, s.name)
				}
				continue
			}
			if _, ok := h.str(svc+s.name, "Group"); !ok || s.name == "Tcpip" || s.name == "IPSec" {
				if err := h.setSZ(svc+s.name, "Group", s.group, why); err != nil {
					return err
				}
			}
			boot[strings.ToLower(s.name)] = why
		}
		// Everything bound above a boot adapter must load with it.
		for _, n := range p.nics {
			for _, s := range p.boundAbove(cs, n.guid) {
				if _, ok := boot[strings.ToLower(s)]; !ok {
					boot[strings.ToLower(s)] = "bound above network adapter " + n.guid
				}
			}
		}
		if err := h.setDWORD(svc+`Tcpip\Parameters`, "DisableDhcpMediaSense", 1,
			"a link flap must not drop the address the boot disk depends on"); err != nil {
			return err
		}
	}
	// Start=0 through DependOnService, until nothing is added.
	for changed := true; changed; {
		changed = false
		names := make([]string, 0, len(boot))
		for n := range boot {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			deps, _ := h.multi(svc+n, "DependOnService")
			for _, dep := range deps {
				l := strings.ToLower(dep)
				if dep == "" || boot[l] != "" {
					continue
				}
				if !h.hasKey(svc + dep) {
					p.warn("%s: service %s depends on %s, which is not installed", cs, n, dep)
					continue
				}
				boot[l] = "dependency of boot service " + n
				changed = true
			}
		}
	}
	names := make([]string, 0, len(boot))
	for n := range boot {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		key := p.serviceKey(cs, n)
		if key == "" {
			continue
		}
		t, _ := h.dword(key, "Type")
		if !isKernelDriver(t) {
			p.warn("%s: %s must start with the boot drivers but is not a kernel driver (Type %d)", cs, key, t)
			continue
		}
		if err := h.setDWORD(key, "Start", 0, boot[n]); err != nil {
			return err
		}
		if _, mine := p.bootStart[n]; mine {
			continue
		}
		// NTLDR loads boot drivers group by group: one in a group the
		// list lacks may never load. sanbootconf's installer moves such
		// network drivers into NDIS; so does this.
		list, _ := h.multi(cs+`\Control\ServiceGroupOrder`, "List")
		if g, _ := h.str(key, "Group"); !hasFold(list, g) {
			if err := h.setSZ(key, "Group", "NDIS", boot[n]+"; its group "+strconvQuote(g)+" is not in ServiceGroupOrder"); err != nil {
				return err
			}
		}
	}
	if h.hasKey(svc + "MSiSCSI") {
		if err := h.setDWORD(svc+"MSiSCSI", "Start", 2, "MS iSCSI initiator service starts automatically"); err != nil {
			return err
		}
	}
	if err := h.setDWORD(cs+`\Control\Session Manager\Memory Management`, "DisablePagingExecutive", 1,
		"keep kernel code in memory: its pages come over iSCSI"); err != nil {
		return err
	}
	if err := h.setDWORD(cs+`\Control\CrashControl`, "CrashDumpEnabled", 0,
		"no dump-capable driver for an iSCSI disk"); err != nil {
		return err
	}
	if err := p.groupOrder(cs); err != nil {
		return err
	}
	if p.Options.MergeIDE {
		if err := p.mergeIDE(cs); err != nil {
			return err
		}
	}
	if p.Sys.Minor == 2 {
		if err := h.setDWORD(cs+`\Services\PlugPlay\Parameters`, "SuppressUI", 1,
			"no Found New Hardware wizard on the first boot on new hardware"); err != nil {
			return err
		}
	}
	return nil
}

// serviceKey returns the service key of name in cs with its on-disk
// case, or "".
func (p *Plan) serviceKey(cs, name string) string {
	for _, s := range p.system.subkeys(cs + `\Services`) {
		if strings.EqualFold(s, name) {
			return cs + `\Services\` + s
		}
	}
	return ""
}

// boundAbove returns the services bound above the adapter \Device\{G}:
// those whose Linkage\Bind lists it (PSched and other filters,
// protocols) and those the adapter's class instance lists in UpperBind.
func (p *Plan) boundAbove(cs, guid string) []string {
	h := p.system
	dev := `\Device\` + guid
	var out []string
	for _, s := range h.subkeys(cs + `\Services`) {
		if strings.EqualFold(s, "Tcpip") {
			continue
		}
		bind, _ := h.multi(cs+`\Services\`+s+`\Linkage`, "Bind")
		if hasFold(bind, dev) {
			out = append(out, s)
		}
	}
	for _, g := range h.subkeys(cs + `\Control\Class\` + integrate.NetClassGUID) {
		k := cs + `\Control\Class\` + integrate.NetClassGUID + `\` + g
		if id, _ := h.str(k, "NetCfgInstanceId"); !strings.EqualFold(id, guid) {
			continue
		}
		ub, _ := h.multi(k+`\Linkage`, "UpperBind")
		for _, s := range ub {
			if s != "" && !hasFold(out, s) && p.serviceKey(cs, s) != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// groupOrder moves NDIS Wrapper, NDIS, Base and PNP_TDI, in that order,
// to just after System Bus Extender (so before SCSI miniport), as
// sanbootconf's installer does, keeping the old list as SGOBackup (once:
// a backup already there is the true original).
func (p *Plan) groupOrder(cs string) error {
	h := p.system
	key := cs + `\Control\ServiceGroupOrder`
	list, ok := h.multi(key, "List")
	if !ok {
		return fmt.Errorf("installed: %s: %s has no List", h.path, key)
	}
	moved := integrate.ServiceGroups()
	var out []string
	for _, g := range list {
		if !hasFold(moved, g) {
			out = append(out, g)
		}
	}
	i := slices.IndexFunc(out, func(s string) bool { return strings.EqualFold(s, "System Bus Extender") }) + 1
	if i == 0 {
		i = slices.IndexFunc(out, func(s string) bool { return strings.EqualFold(s, "SCSI miniport") })
		if i < 0 {
			i = min(3, len(out))
		}
	}
	out = slices.Concat(out[:i], moved, out[i:])
	if slices.Equal(out, list) {
		return nil
	}
	why := "NDIS, TCP/IP and Base load before SCSI miniport (iScsiPrt)"
	if _, ok := h.value(key, SGOBackup); !ok {
		if err := h.setMulti(key, SGOBackup, list, "the group order before xpboot moved it"); err != nil {
			return err
		}
	}
	return h.setMulti(key, "List", out, why)
}

// devicePath appends Options.DevicePath to SOFTWARE's DevicePath.
func (p *Plan) devicePath() error {
	if len(p.Options.DevicePath) == 0 {
		return nil
	}
	h := p.software
	const key = `Microsoft\Windows\CurrentVersion`
	cur, ok := h.str(key, "DevicePath")
	if !ok {
		cur = `%SystemRoot%\inf`
	}
	parts := strings.Split(cur, ";")
	for _, d := range p.Options.DevicePath {
		d = strings.ReplaceAll(d, "/", `\`)
		if !hasFold(parts, d) {
			parts = append(parts, d)
		}
	}
	return h.setExpandSZ(key, "DevicePath", strings.Join(parts, ";"), "PnP searches these directories for drivers")
}

// KB314082's CriticalDeviceDatabase entries (the IDE controllers Windows
// ships drivers for) and services; research integratedrv.md §11.
var (
	ideAtapi   = []string{"primary_ide_channel", "secondary_ide_channel", "*pnp0600", "*azt0502"}
	idePCIIDE  = []string{"pci#cc_0101", "pci#ven_0e11&dev_ae33", "pci#ven_1039&dev_0601", "pci#ven_1039&dev_5513", "pci#ven_1042&dev_1000", "pci#ven_105a&dev_4d33", "pci#ven_1095&dev_0640", "pci#ven_1095&dev_0646", "pci#ven_1095&dev_0646&rev_05", "pci#ven_1095&dev_0646&rev_07", "pci#ven_1095&dev_0648", "pci#ven_1095&dev_0649", "pci#ven_1097&dev_0038", "pci#ven_10ad&dev_0001", "pci#ven_10ad&dev_0150", "pci#ven_10b9&dev_5215", "pci#ven_10b9&dev_5219", "pci#ven_10b9&dev_5229", "pci#ven_1106&dev_0571"}
	ideIntel   = []string{"pci#ven_8086&dev_1222", "pci#ven_8086&dev_1230", "pci#ven_8086&dev_2411", "pci#ven_8086&dev_2421", "pci#ven_8086&dev_7010", "pci#ven_8086&dev_7111", "pci#ven_8086&dev_7199"}
	ideFiles   = []string{"atapi.sys", "intelide.sys", "pciide.sys", "pciidex.sys"}
	hdcGUID    = integrate.HDCClassGUID
	diskGUID   = "{4D36E967-E325-11CE-BFC1-08002BE10318}"
	ideService = []struct {
		name, display, group, image string
		tag                         uint32
	}{
		{"atapi", "Standard IDE/ESDI Hard Disk Controller", "SCSI miniport", `System32\DRIVERS\atapi.sys`, 0x19},
		{"IntelIde", "", "System Bus Extender", `System32\DRIVERS\intelide.sys`, 4},
		{"PCIIde", "", "System Bus Extender", `System32\DRIVERS\pciide.sys`, 3},
	}
)

// mergeIDE writes KB314082's registry part in control set cs.
func (p *Plan) mergeIDE(cs string) error {
	h := p.system
	const why = "KB314082 (mergeide): boot from any standard IDE controller"
	cddb := cs + `\Control\CriticalDeviceDatabase\`
	put := func(ids []string, svc, guid string) error {
		for _, id := range ids {
			if err := h.setSZ(cddb+id, "ClassGUID", guid, why); err != nil {
				return err
			}
			if err := h.setSZ(cddb+id, "Service", svc, why); err != nil {
				return err
			}
		}
		return nil
	}
	if err := put(ideAtapi, "atapi", hdcGUID); err != nil {
		return err
	}
	if err := put([]string{"gendisk"}, "disk", diskGUID); err != nil {
		return err
	}
	if err := put(idePCIIDE, "pciide", hdcGUID); err != nil {
		return err
	}
	if err := put(ideIntel, "intelide", hdcGUID); err != nil {
		return err
	}
	for _, s := range ideService {
		key := p.serviceKey(cs, s.name)
		if key == "" {
			key = cs + `\Services\` + s.name
		}
		if s.display != "" {
			if _, ok := h.value(key, "DisplayName"); !ok {
				if err := h.setSZ(key, "DisplayName", s.display, why); err != nil {
					return err
				}
			}
		}
		for _, v := range []struct {
			name string
			val  uint32
		}{{"ErrorControl", 1}, {"Start", 0}, {"Tag", s.tag}, {"Type", 1}} {
			if err := h.setDWORD(key, v.name, v.val, why); err != nil {
				return err
			}
		}
		if err := h.setSZ(key, "Group", s.group, why); err != nil {
			return err
		}
		if _, ok := h.value(key, "ImagePath"); !ok {
			if err := h.setExpandSZ(key, "ImagePath", s.image, why); err != nil {
				return err
			}
		}
	}
	return nil
}

// mergeIDEFiles plans KB314082's four driver files when system32\drivers
// lacks them, taken from the system's own cabinets under Driver Cache
// (the newest service pack's first, then driver.cab).
func (p *Plan) mergeIDEFiles() error {
	var missing []string
	for _, f := range ideFiles {
		if _, err := p.FS.Stat(p.Sys.DriversDir() + "/" + f); isNotExist(err) {
			missing = append(missing, f)
		} else if err != nil {
			return fmt.Errorf("installed: %s/%s: %w", p.Sys.DriversDir(), f, err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	arch := "i386"
	if p.Sys.Arch == "amd64" {
		arch = "amd64"
	}
	dir := p.Sys.Root + "/Driver Cache/" + arch
	ents, err := p.FS.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("installed: --mergeide: %s is missing from system32/drivers and %s cannot be read: %w", strings.Join(missing, ", "), dir, err)
	}
	var cabs []string
	for _, e := range ents {
		n := strings.ToLower(e.Name())
		if strings.HasSuffix(n, ".cab") && (n == "driver.cab" || strings.HasPrefix(n, "sp")) {
			cabs = append(cabs, e.Name())
		}
	}
	// spN.cab newest first, driver.cab last.
	sort.Slice(cabs, func(i, j int) bool {
		a, b := strings.ToLower(cabs[i]), strings.ToLower(cabs[j])
		if (a == "driver.cab") != (b == "driver.cab") {
			return b == "driver.cab"
		}
		return a > b
	})
	for _, name := range cabs {
		if len(missing) == 0 {
			break
		}
		b, err := imagefs.ReadFile(p.FS, dir+"/"+name)
		if err != nil {
			return fmt.Errorf("installed: %s/%s: %w", dir, name, err)
		}
		r, err := cab.NewNamedReader(bytes.NewReader(b), int64(len(b)), dir+"/"+name)
		if err != nil {
			return fmt.Errorf("installed: --mergeide: %w", err)
		}
		var still []string
		for _, f := range missing {
			cf := r.Lookup(f)
			if cf == nil {
				still = append(still, f)
				continue
			}
			data, err := cf.ReadAll()
			if err != nil {
				return fmt.Errorf("installed: --mergeide: %s/%s: %s: %w", dir, name, f, err)
			}
			if err := p.putFile(p.Sys.DriversDir()+"/"+f, data, KindDriver, "KB314082 (mergeide) from "+name); err != nil {
				return err
			}
		}
		missing = still
	}
	if len(missing) > 0 {
		return fmt.Errorf("installed: --mergeide: %s missing from %s and from the cabinets of %s", strings.Join(missing, ", "), p.Sys.DriversDir(), dir)
	}
	return nil
}

func strconvQuote(s string) string { return `"` + s + `"` }
