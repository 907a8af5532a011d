package bootcheck

import (
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// system is what both kinds of check share: the registry, the control
// set, the services and which of them load at boot.
type system struct {
	r      *reg
	cs     string
	svcs   map[string]*service
	isBoot func(s *service) bool
	// image returns the tree path of a boot service's image and whether
	// it is there.
	image func(s *service) (string, bool)
	// hwdb is a setup tree's [HardwareIdsDatabase] (lower-case ID with
	// # for \ → service), which text mode uses as its critical device
	// database; hwdbFile names it.
	hwdb     map[string]string
	hwdbFile string
}

// run lists the boot drivers in load order and adds every finding.
func (sys *system) run(rep *Report, opts Options) {
	r, cs := sys.r, sys.cs
	var boot []*service
	for _, n := range r.subkeys(cs + `\Services`) {
		if s := sys.svcs[strings.ToLower(n)]; s != nil && sys.isBoot(s) {
			boot = append(boot, s)
		}
	}
	for _, n := range r.syntheticOrder {
		if s := sys.svcs[n]; s != nil && sys.isBoot(s) {
			boot = append(boot, s)
		}
	}
	order, ungrouped := r.loadOrder(cs, boot)
	pos := map[string]int{}
	for i, s := range order {
		img, ok := sys.image(s)
		d := Driver{Service: s.name, Group: s.group, Image: img, Missing: !ok, Ungrouped: ungrouped[s]}
		if s.hasTag {
			d.Tag = s.tag
		}
		rep.Drivers = append(rep.Drivers, d)
		pos[strings.ToLower(s.name)] = i
		if !ok {
			rep.add("missing-image", img, "boot driver %s: its image %s is missing", s.name, img)
		}
		if ungrouped[s] {
			g := s.group
			if g == "" {
				g = "(none)"
			}
			rep.add("ungrouped", cs+`\Services\`+s.name, "boot driver %s is in group %s, which ServiceGroupOrder\\List lacks: NTLDR loads it last, if at all", s.name, g)
		}
	}
	for _, s := range order {
		for _, dep := range s.deps {
			d := sys.svcs[strings.ToLower(dep)]
			switch {
			case d == nil:
				rep.add("dependency", cs+`\Services\`+s.name+`\DependOnService`, "boot driver %s depends on %s, which is not installed", s.name, dep)
			case !sys.isBoot(d):
				rep.add("dependency", cs+`\Services\`+s.name+`\DependOnService`, "boot driver %s depends on %s, which is not a boot driver (Start=%d)", s.name, d.name, d.start)
			}
		}
	}
	bootSvc := func(name string) (*service, bool) {
		s := sys.svcs[strings.ToLower(name)]
		return s, s != nil && sys.isBoot(s)
	}
	for _, n := range []string{"NDIS", "Tcpip"} {
		if s, ok := bootSvc(n); !ok {
			if s == nil {
				rep.add("not-boot", cs+`\Services\`+n, "%s is not installed", n)
			} else {
				rep.add("not-boot", cs+`\Services\`+s.name+`\Start`, "%s is not a boot driver (Start=%d): TCP/IP cannot carry the boot disk", s.name, s.start)
			}
		}
	}
	if s, ok := bootSvc("iScsiPrt"); !ok {
		if s == nil {
			rep.add("no-iscsiprt", cs+`\Services\iScsiPrt`, "the MS iSCSI initiator (iScsiPrt) is not installed")
		} else {
			rep.add("no-iscsiprt", cs+`\Services\`+s.name+`\Start`, "iScsiPrt is not a boot driver (Start=%d)", s.start)
		}
	} else if !sys.rootInstance("SCSIADAPTER", "iScsiPrt") {
		rep.add("no-iscsiprt", cs+`\Enum\Root\SCSIADAPTER`, "no root-enumerated instance has Service=iScsiPrt: the initiator's adapter is never started")
	}
	if s, ok := bootSvc("sanbootconf"); !ok {
		if s == nil {
			rep.add("no-sanbootconf", cs+`\Services\sanbootconf`, "sanbootconf is not installed: nothing applies the iBFT's address to the adapter")
		} else {
			rep.add("no-sanbootconf", cs+`\Services\`+s.name+`\Start`, "sanbootconf is not a boot driver (Start=%d)", s.start)
		}
	} else if !sys.rootInstance("SYSTEM", "sanbootconf") {
		rep.add("no-sanbootconf", cs+`\Enum\Root\SYSTEM`, "no root-enumerated instance has Service=sanbootconf")
	}
	// NDIS before TCP/IP and iScsiPrt.
	before := func(a, b string) bool {
		pa, oka := pos[strings.ToLower(a)]
		pb, okb := pos[strings.ToLower(b)]
		return oka && okb && pa < pb
	}
	for _, n := range []string{"Tcpip", "iScsiPrt"} {
		if before(n, "NDIS") {
			rep.add("order", cs+`\Control\ServiceGroupOrder\List`, "%s (group %s) loads before NDIS (group %s)", n, sys.svcs[strings.ToLower(n)].group, sys.svcs["ndis"].group)
		}
	}
	if before("iScsiPrt", "Tcpip") {
		rep.add("order", cs+`\Control\ServiceGroupOrder\List`, "iScsiPrt (group %s) loads before Tcpip (group %s)", sys.svcs["iscsiprt"].group, sys.svcs["tcpip"].group)
	}

	cands := sys.nics()
	var bootNICs []NIC
	for _, c := range cands {
		if s, ok := bootSvc(c.Service); ok {
			c.Service = s.name
			bootNICs = append(bootNICs, c)
		}
	}
	rep.NICs = bootNICs
	if len(opts.Devices) > 0 {
		for _, id := range opts.Devices {
			found := false
			for _, c := range bootNICs {
				if sameModel(c.HardwareID, id) {
					found = true
				}
			}
			if found {
				continue
			}
			where, why := cs+`\Control\Class\`+integrate.NetClassGUID, "no network adapter class instance for this model"
			for _, c := range cands {
				if sameModel(c.HardwareID, id) {
					where, why = cs+`\Services\`+c.Service+`\Start`, fmt.Sprintf("its driver %s is not a boot driver", c.Service)
				}
			}
			if svc, key := sys.criticalDevice(id); svc != "" && !strings.Contains(why, "boot driver") {
				where = key
				why += fmt.Sprintf(" (the CriticalDeviceDatabase names %s, but without a class instance holding a NetCfgInstanceId TCP/IP does not bind)", svc)
			}
			rep.add("no-boot-nic", where, "no boot network adapter for %s: %s", id, why)
		}
	} else if len(bootNICs) == 0 {
		rep.add("no-boot-nic", cs+`\Control\Class\`+integrate.NetClassGUID, "no network adapter's driver is a boot driver")
	}
	for _, n := range bootNICs {
		for _, other := range []string{"Tcpip", "iScsiPrt"} {
			if before(other, n.Service) {
				rep.add("order", cs+`\Services\`+n.Service+`\Group`, "%s loads before the adapter's driver %s (group %s)", other, n.Service, sys.svcs[strings.ToLower(n.Service)].group)
			}
		}
		if n.GUID == "" {
			rep.add("no-interface", n.ClassKey, "adapter %s has no NetCfgInstanceId: TCP/IP does not bind to it", n.HardwareID)
			continue
		}
		iface := cs + `\Services\Tcpip\Parameters\Interfaces\` + n.GUID
		if !r.has(iface) {
			rep.add("no-interface", iface, "adapter %s: TCP/IP has no interface key for %s (sanbootconf cannot set the iBFT address)", n.HardwareID, n.GUID)
		} else if dhcp, _ := r.dword(iface, "EnableDHCP"); dhcp == 0 {
			if gw := r.multi(iface, "DefaultGateway"); len(gw) > 0 {
				rep.add("gateway", iface+`\DefaultGateway`, "adapter %s has the static gateway %s: the MS initiator routes to the target through the iBFT gateway (KB960104); serve no router option, or let sanbootconf set it", n.HardwareID, strings.Join(gw, ", "))
			}
		}
		bind := r.multi(cs+`\Services\Tcpip\Linkage`, "Bind")
		if !hasFold(bind, `\Device\`+n.GUID) {
			rep.add("no-interface", cs+`\Services\Tcpip\Linkage\Bind`, "TCP/IP is not bound to adapter %s (\\Device\\%s)", n.HardwareID, n.GUID)
		}
		for _, s := range sys.boundAbove(n) {
			if !sys.isBoot(s) && (s.typ == 1 || s.typ == 2) {
				rep.add("filter-not-boot", cs+`\Services\`+s.name+`\Start`, "%s is bound above boot adapter %s but starts later (Start=%d): the adapter's binding stalls until it loads", s.name, n.HardwareID, s.start)
			}
		}
	}
}

// nics lists the physical network adapters' class instances with the
// service that drives them (from the Enum instance pointing at the class
// key, else the CriticalDeviceDatabase entry of the model).
func (sys *system) nics() []NIC {
	r, cs := sys.r, sys.cs
	parent := cs + `\Control\Class\` + integrate.NetClassGUID
	drivers := map[string]string{} // lower "{guid}\nnnn" → service
	for _, bus := range r.subkeys(cs + `\Enum`) {
		for _, dev := range r.subkeys(cs + `\Enum\` + bus) {
			for _, inst := range r.subkeys(cs + `\Enum\` + bus + `\` + dev) {
				k := cs + `\Enum\` + bus + `\` + dev + `\` + inst
				if d, ok := r.str(k, "Driver"); ok {
					if s, ok := r.str(k, "Service"); ok {
						drivers[strings.ToLower(d)] = s
					}
				}
			}
		}
	}
	var out []NIC
	for _, n := range r.subkeys(parent) {
		k := parent + `\` + n
		mid, ok := r.str(k, "MatchingDeviceId")
		if !ok || !strings.Contains(mid, `\`) || strings.HasPrefix(strings.ToUpper(mid), `ROOT\`) {
			continue
		}
		g, _ := r.str(k, "NetCfgInstanceId")
		svc := drivers[strings.ToLower(integrate.NetClassGUID+`\`+n)]
		if svc == "" {
			svc, _ = sys.criticalDevice(mid)
		}
		if svc == "" {
			continue
		}
		out = append(out, NIC{HardwareID: mid, Service: svc, ClassKey: k, GUID: strings.ToUpper(g)})
	}
	return out
}

// criticalDevice returns the service the CriticalDeviceDatabase gives a
// hardware ID (or a less specific form of it) and the key.
func (sys *system) criticalDevice(id string) (string, string) {
	for _, c := range cddbIDs(id) {
		if s, ok := sys.hwdb[c]; ok {
			return s, sys.hwdbFile + " [HardwareIdsDatabase] " + strings.ReplaceAll(c, "#", `\`)
		}
		k := sys.cs + `\Control\CriticalDeviceDatabase\` + c
		for _, sub := range sys.r.subkeys(sys.cs + `\Control\CriticalDeviceDatabase`) {
			if strings.EqualFold(sub, c) {
				k = sys.cs + `\Control\CriticalDeviceDatabase\` + sub
				if s, ok := sys.r.str(k, "Service"); ok {
					return s, k
				}
			}
		}
	}
	return "", ""
}

// rootInstance reports whether Enum\Root\<class> has an instance whose
// Service is svc.
func (sys *system) rootInstance(class, svc string) bool {
	for _, c := range sys.r.subkeys(sys.cs + `\Enum\Root`) {
		if !strings.EqualFold(c, class) {
			continue
		}
		for _, i := range sys.r.subkeys(sys.cs + `\Enum\Root\` + c) {
			if s, _ := sys.r.str(sys.cs+`\Enum\Root\`+c+`\`+i, "Service"); strings.EqualFold(s, svc) {
				return true
			}
		}
	}
	return false
}

// boundAbove returns the services bound above adapter n: those whose
// Linkage\Bind lists \Device\{G} and those its class instance's
// Linkage\UpperBind names (Tcpip excepted: checked on its own).
func (sys *system) boundAbove(n NIC) []*service {
	var out []*service
	seen := map[*service]bool{}
	dev := `\Device\` + n.GUID
	for _, name := range sys.r.subkeys(sys.cs + `\Services`) {
		s := sys.svcs[strings.ToLower(name)]
		if s == nil || strings.EqualFold(name, "Tcpip") {
			continue
		}
		if hasFold(sys.r.multi(sys.cs+`\Services\`+name+`\Linkage`, "Bind"), dev) {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, u := range sys.r.multi(n.ClassKey+`\Linkage`, "UpperBind") {
		if s := sys.svcs[strings.ToLower(u)]; s != nil && !seen[s] && !strings.EqualFold(u, "Tcpip") {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func hasFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// checkInstalled checks an installed system whose Windows directory is
// root.
func checkInstalled(fsys imagefs.FS, root string, opts Options) (*Report, error) {
	name := root + "/system32/config/SYSTEM"
	r, err := openReg(fsys, name)
	if err != nil {
		return nil, err
	}
	cs, err := r.currentSet(true)
	if err != nil {
		return nil, err
	}
	rep := &Report{Kind: KindInstalled, Hive: name, ControlSet: cs, Drivers: []Driver{}, NICs: []NIC{}, Findings: []Finding{}}
	sys := &system{r: r, cs: cs, svcs: r.services(cs),
		isBoot: func(s *service) bool { return s.hasStart && s.start == 0 },
		image: func(s *service) (string, bool) {
			p := imageFile(root, s)
			return p, exists(fsys, p)
		}}
	sys.run(rep, opts)
	if rep.NICs == nil {
		rep.NICs = []NIC{}
	}
	return rep, nil
}
