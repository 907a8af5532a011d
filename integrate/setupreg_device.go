package integrate

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
)

// setupRegDriver plans the setupreg.hiv keys of one driver package, and
// the hivesys.inf side of the keys both hives get (research §6.2–§6.4,
// §6.7): the services, each device's class instance, its Enum key for
// root-enumerated devices (and with Options.Preconf the chosen network
// adapter's Enum\PCI key), and per network adapter the TCP/IP interface.
func (p *hivePlanner) setupRegDriver(pkg *drivers.Package, devs []*drivers.Device) error {
	if _, err := p.setupRegLoad(); err != nil {
		return err
	}
	for _, sv := range drivers.UniqueServices(devs) {
		if err := p.setupRegService(sv); err != nil {
			return err
		}
	}
	for _, d := range devs {
		if err := p.deviceKeys(d); err != nil {
			return err
		}
	}
	return nil
}

// setupRegService writes what text mode needs of a service: boot start
// and the service's values, without ImagePath (text-mode setup loads
// <service>.sys from its own list); hiveSysServices wrote hivesys.inf's.
func (p *hivePlanner) setupRegService(sv *drivers.Service) error {
	key := ccs + `Services\` + sv.Name
	why := "service " + sv.Name
	for _, v := range serviceVals(sv, false) {
		if err := p.setupRegSet(key, v.name, v.typ, v.data, why); err != nil {
			return err
		}
	}
	for _, r := range sv.Registry {
		if err := p.setupRegOp(key, r, why); err != nil {
			return err
		}
	}
	if el := sv.EventLog; el != nil {
		base := eventLogKey(sv, el)
		for _, r := range el.Registry {
			if err := p.setupRegOp(base, r, why+" event log"); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventLogKey is the key HKR stands for in an AddService event-log
// install: Services\EventLog\<Type, default System>\<Name, default the
// service's>.
func eventLogKey(sv *drivers.Service, el *drivers.EventLog) string {
	typ, name := el.Type, el.Name
	if typ == "" {
		typ = "System"
	}
	if name == "" {
		name = sv.Name
	}
	return ccs + `Services\EventLog\` + typ + `\` + name
}

// classGUID returns the device's class GUID in upper case with braces,
// the Net class for a network adapter that names only its class.
func classGUID(d *drivers.Device) string {
	g := strings.ToUpper(strings.TrimSpace(d.ClassGUID))
	if g == "" && isNIC(d) {
		return NetClassGUID
	}
	if g != "" && !strings.HasPrefix(g, "{") {
		g = "{" + g + "}"
	}
	return g
}

// deviceKeys writes a device's class instance (software key), its Enum
// key if it is root-enumerated or the pre-configured network adapter,
// and a network adapter's TCP/IP interface, in both hives.
func (p *hivePlanner) deviceKeys(d *drivers.Device) error {
	why := d.Description
	guid := classGUID(d)
	if guid == "" {
		p.warn("%s: %s has no class GUID; no class instance or device key written", d.INF, d.HardwareID)
		return nil
	}
	num, err := p.classInstance(d, guid)
	if err != nil {
		return err
	}
	rel := `Control\Class\` + guid + `\` + num
	classKey := ccs + rel
	vals := []regVal{
		{"MatchingDeviceId", drivers.RegSZ, drivers.StringData(strings.ToLower(d.HardwareID))},
		{"DriverDesc", drivers.RegSZ, drivers.StringData(d.Description)},
	}
	if d.DriverVer != "" {
		vals = append(vals, regVal{"DriverVersion", drivers.RegSZ, drivers.StringData(d.DriverVer)})
	}
	if d.Provider != "" {
		vals = append(vals, regVal{"ProviderName", drivers.RegSZ, drivers.StringData(d.Provider)})
	}
	if err := p.setBothVals(classKey, vals, why); err != nil {
		return err
	}
	var nic *nicInstance
	if isNIC(d) {
		g, err := p.netCfgInstanceID(classKey, d)
		if err != nil {
			return err
		}
		nic = &nicInstance{dev: d, classKey: rel, guid: g}
		vals := []regVal{{"NetCfgInstanceId", drivers.RegSZ, drivers.StringData(g)}}
		if d.HasBusType {
			vals = append(vals, regVal{"BusType", drivers.RegSZ, drivers.StringData(strconv.FormatUint(uint64(d.BusType), 10))})
		}
		if d.HasCharacteristics {
			vals = append(vals, regVal{"Characteristics", drivers.RegDWORD, drivers.DWORDData(d.Characteristics)})
		}
		if err := p.setBothVals(classKey, vals, why); err != nil {
			return err
		}
		if err := p.setBothVals(classKey+`\Linkage`, []regVal{
			{"Export", drivers.RegMultiSZ, drivers.MultiData([]string{`\Device\` + g})},
			{"RootDevice", drivers.RegMultiSZ, drivers.MultiData([]string{g})},
			{"UpperBind", drivers.RegMultiSZ, drivers.MultiData([]string{"Tcpip"})},
		}, why); err != nil {
			return err
		}
	}
	if err := p.bothOps(classKey, d.Registry, why); err != nil {
		return err
	}
	if strings.HasPrefix(strings.ToUpper(d.HardwareID), `ROOT\`) {
		if err := p.rootDevice(d, guid, num); err != nil {
			return err
		}
	}
	if nic == nil {
		return nil
	}
	p.nics = append(p.nics, nic)
	chosen := p.chooseNIC(nic)
	if err := p.tcpipAdapter(nic, chosen); err != nil {
		return err
	}
	if chosen && p.opts.Preconf != "" {
		return p.preconfNIC(nic, guid, num)
	}
	return nil
}

// hiveSysAddReg calls fn with the data fields of every hivesys.inf
// [AddReg] line under HKLM, with its key and value name.
func (p *hivePlanner) hiveSysAddReg(fn func(key, name string, data []string)) {
	x := p.texts.text(HiveSysINF)
	if x == nil {
		return
	}
	for _, e := range x.Entries("AddReg") {
		f := e.Fields
		if e.Key != "" || len(f) < 3 || !strings.EqualFold(f[0], "HKLM") {
			continue
		}
		var data []string
		if len(f) > 4 {
			data = f[4:]
		}
		fn(f[1], f[2], data)
	}
}

// hiveSysLine returns every field of the hivesys.inf line of a value, as
// the plan leaves it, or nil.
func (p *hivePlanner) hiveSysLine(key, name string) []string {
	x := p.texts.text(HiveSysINF)
	if x == nil {
		return nil
	}
	for _, e := range x.Entries("AddReg") {
		f := e.Fields
		if e.Key == "" && len(f) >= 3 && strings.EqualFold(f[0], "HKLM") && strings.EqualFold(f[1], key) && strings.EqualFold(f[2], name) {
			return f
		}
	}
	return nil
}

// hiveSysKey reports whether a hivesys.inf AddReg line, as the plan leaves
// it, names key (and so creates it), and whether one of them is a key-only
// line (FLG_ADDREG_KEYONLY, no value name).
func (p *hivePlanner) hiveSysKey(key string) (names, keyOnly bool) {
	x := p.texts.text(HiveSysINF)
	if x == nil {
		return false, false
	}
	for _, e := range x.Entries("AddReg") {
		f := e.Fields
		if e.Key != "" || len(f) < 3 || !strings.EqualFold(f[0], "HKLM") || !strings.EqualFold(f[1], key) {
			continue
		}
		names = true
		if len(f) == 4 && f[2] == "" {
			if flags, err := strconv.ParseUint(strings.TrimSpace(f[3]), 0, 32); err == nil && flags == hiveKeyOnly {
				keyOnly = true
			}
		}
	}
	return names, keyOnly
}

// hiveSysFields returns the data fields of the hivesys.inf value, as the
// plan leaves it.
func (p *hivePlanner) hiveSysFields(key, name string) ([]string, bool) {
	var out []string
	found := false
	p.hiveSysAddReg(func(k, n string, data []string) {
		if !found && strings.EqualFold(k, key) && strings.EqualFold(n, name) {
			out, found = data, true
		}
	})
	return out, found
}

// instances scans the numbered subkeys of parent (a key under
// SYSTEM\CurrentControlSet\) in setupreg.hiv and hivesys.inf. It returns
// the lowest number free in both, and the first existing instance for
// which match (given a value reader for the instance) is true — looked
// for in setupreg.hiv first. Non-numeric subkeys (Properties) are skipped
// and gaps are filled, as Windows allocates instance keys.
func (p *hivePlanner) instances(parent string, match func(get func(name string) ([]string, bool)) bool) (free, found string, err error) {
	s, err := p.setupRegLoad()
	if err != nil {
		return "", "", err
	}
	hp, err := s.resolve(parent)
	if err != nil {
		return "", "", err
	}
	used := map[int]bool{}
	for _, n := range s.subkeys(hp) {
		i, ok := instanceNumber(n)
		if !ok {
			continue
		}
		used[i] = true
		get := func(name string) ([]string, bool) {
			v, ok := s.value(hp+`\`+n, name)
			switch {
			case !ok:
				return nil, false
			case v.Type == hive.MultiSZ:
				return hive.DecodeMultiString(v.Data), true
			case v.Type == hive.SZ || v.Type == hive.ExpandSZ:
				return []string{hive.DecodeString(v.Data)}, true
			}
			return nil, true
		}
		if found == "" && match(get) {
			found = n
		}
	}
	prefix := parent + `\`
	var sysFound []string
	p.hiveSysAddReg(func(k, _ string, _ []string) {
		if len(k) <= len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) {
			return
		}
		n, _, _ := strings.Cut(k[len(prefix):], `\`)
		if i, ok := instanceNumber(n); ok && !used[i] {
			used[i] = true
			sysFound = append(sysFound, n)
		}
	})
	for _, n := range sysFound {
		if found != "" {
			break
		}
		key := prefix + n
		if match(func(name string) ([]string, bool) { return p.hiveSysFields(key, name) }) {
			found = n
		}
	}
	i := 0
	for used[i] {
		i++
	}
	return fmt.Sprintf("%04d", i), found, nil
}

func instanceNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func hasFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// classInstance returns the device's instance number under
// Control\Class\{guid}: the one whose MatchingDeviceId (and DriverDesc,
// when set) are the device's, so that a second run reuses it, else the
// lowest number free in both hives (research §6.2; IntegrateDrv took the
// last subkey plus one and failed on names such as Properties).
func (p *hivePlanner) classInstance(d *drivers.Device, guid string) (string, error) {
	free, found, err := p.instances(ccs+`Control\Class\`+guid, func(get func(string) ([]string, bool)) bool {
		id, ok := get("MatchingDeviceId")
		if !ok || !hasFold(id, d.HardwareID) {
			return false
		}
		desc, ok := get("DriverDesc")
		return !ok || hasFold(desc, d.Description)
	})
	if found != "" {
		return found, err
	}
	return free, err
}

// netCfgInstanceID returns the NetCfgInstanceId of a network adapter's
// class instance: the one already there (setupreg.hiv, then hivesys.inf),
// else a name-based GUID (RFC 4122 version 5 layout over SHA-1) of the
// class key and the hardware ID — unique within the system, and the same
// for the same tree and drivers, so integrations are reproducible.
func (p *hivePlanner) netCfgInstanceID(classKey string, d *drivers.Device) (string, error) {
	s, err := p.setupRegLoad()
	if err != nil {
		return "", err
	}
	hp, err := s.resolve(classKey)
	if err != nil {
		return "", err
	}
	if g, ok := s.str(hp, "NetCfgInstanceId"); ok && isGUID(g) {
		return strings.ToUpper(g), nil
	}
	if f, ok := p.hiveSysFields(classKey, "NetCfgInstanceId"); ok && len(f) == 1 && isGUID(f[0]) {
		return strings.ToUpper(f[0]), nil
	}
	return NetCfgGUID(classKey, d.HardwareID), nil
}

func isGUID(s string) bool {
	if len(s) != 38 || s[0] != '{' || s[37] != '}' {
		return false
	}
	for i, c := range s[1:37] {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// deviceValues writes the values of a device instance key (research
// §6.7) and the device's .HW AddReg, in both hives.
func (p *hivePlanner) deviceValues(key string, d *drivers.Device, guid, num string, hwid bool) error {
	why := d.Description
	vals := []regVal{
		{"ClassGUID", drivers.RegSZ, drivers.StringData(guid)},
		{"DeviceDesc", drivers.RegSZ, drivers.StringData(d.Description)},
		{"Driver", drivers.RegSZ, drivers.StringData(guid + `\` + num)},
	}
	if s := functionService(d); s != nil {
		vals = append(vals, regVal{"Service", drivers.RegSZ, drivers.StringData(s.Name)})
	}
	vals = append(vals, regVal{"ConfigFlags", drivers.RegDWORD, drivers.DWORDData(0)})
	if hwid {
		vals = append(vals, regVal{"HardwareID", drivers.RegMultiSZ, drivers.MultiData([]string{d.HardwareID})})
	}
	if d.Manufacturer != "" {
		vals = append(vals, regVal{"Mfg", drivers.RegSZ, drivers.StringData(d.Manufacturer)})
	}
	if d.Class != "" {
		vals = append(vals, regVal{"Class", drivers.RegSZ, drivers.StringData(d.Class)})
	}
	if err := p.setBothVals(key, vals, why); err != nil {
		return err
	}
	return p.bothOps(key, d.HWRegistry, why)
}

// rootDevice pre-creates a root-enumerated device (ROOT\iScsiPrt,
// ROOT\sanbootconf) as Enum\Root\<CLASS>\NNNN; its HardwareID keeps a
// later install from adding a second one (research §6.7).
func (p *hivePlanner) rootDevice(d *drivers.Device, guid, num string) error {
	if d.Class == "" {
		p.warn("%s: %s has no class name; no Enum\\Root key written", d.INF, d.HardwareID)
		return nil
	}
	parent := ccs + `Enum\Root\` + strings.ToUpper(d.Class)
	free, found, err := p.instances(parent, func(get func(string) ([]string, bool)) bool {
		ids, ok := get("HardwareID")
		return ok && hasFold(ids, d.HardwareID)
	})
	if err != nil {
		return err
	}
	if found != "" {
		free = found
	}
	return p.deviceValues(parent+`\`+free, d, guid, num, true)
}

// chooseNIC tells whether n is the adapter that gets Options' TCP/IP
// settings: the one Options.NIC names, else the first.
func (p *hivePlanner) chooseNIC(n *nicInstance) bool {
	s := p.setupReg
	if s.chosen != nil {
		return false
	}
	if p.opts.NIC == "" || MatchesID(n.dev, p.opts.NIC) {
		s.chosen = n
		return true
	}
	return false
}

// tcpipAdapter binds a network adapter to TCP/IP in both hives (research
// §7.4): the Adapters and Interfaces\{G} keys (sanbootconf opens the
// latter and fails if it is missing) and Tcpip\Linkage. The chosen
// adapter gets Options' address, gateway and DHCP; the others 0.0.0.0
// and EnableDHCP=1.
func (p *hivePlanner) tcpipAdapter(n *nicInstance, chosen bool) error {
	g := n.guid
	why := "network adapter " + n.dev.HardwareID + ": TCP/IP interface " + g
	tcp := ccs + `Services\Tcpip\`
	if err := p.setBoth(tcp+`Parameters\Adapters\`+g, "IpConfig", drivers.RegMultiSZ,
		drivers.MultiData([]string{`Tcpip\Parameters\Interfaces\` + g}), why); err != nil {
		return err
	}
	ip, mask, gw, dhcp := "0.0.0.0", "0.0.0.0", "", uint32(1)
	if chosen {
		dhcp = 0
		o := p.opts
		if o.DHCP {
			dhcp = 1
		}
		if o.Address.IsValid() {
			ip = o.Address.Addr().String()
			m := uint32(0xffffffff) << (32 - o.Address.Bits())
			if o.Address.Bits() == 0 {
				m = 0
			}
			mask = fmt.Sprintf("%d.%d.%d.%d", byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
		}
		if o.Gateway.IsValid() {
			gw = o.Gateway.String()
		}
	}
	iface := tcp + `Parameters\Interfaces\` + g
	if err := p.setBothVals(iface, []regVal{
		{"EnableDHCP", drivers.RegDWORD, drivers.DWORDData(dhcp)},
		{"IPAddress", drivers.RegMultiSZ, drivers.MultiData([]string{ip})},
		{"SubnetMask", drivers.RegMultiSZ, drivers.MultiData([]string{mask})},
		{"DefaultGateway", drivers.RegMultiSZ, drivers.MultiData([]string{gw})},
	}, why); err != nil {
		return err
	}
	for _, v := range []struct{ name, add string }{
		{"Bind", `\DEVICE\` + g},
		{"Export", `\DEVICE\TCPIP_` + g},
		{"Route", `"` + g + `"`},
	} {
		if err := p.appendBoth(tcp+"Linkage", v.name, v.add, why); err != nil {
			return err
		}
	}
	return nil
}

// appendBoth adds s to a REG_MULTI_SZ list in both hives unless it is
// there, keeping what each hive has.
func (p *hivePlanner) appendBoth(key, name, add, why string) error {
	cur, _ := p.hiveSysFields(key, name)
	if len(cur) == 1 && cur[0] == "" {
		cur = nil
	}
	p.setRegFinal(key, name, drivers.RegMultiSZ, drivers.MultiData(appendNew(cur, add)), why)
	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	k, err := s.resolve(key)
	if err != nil {
		return err
	}
	list, _ := s.multi(k, name)
	return p.setupRegSet(key, name, drivers.RegMultiSZ, drivers.MultiData(appendNew(list, add)), why)
}

// The parent ID prefix Windows gives devices on the root PCI bus of an
// ACPI PC (parent ACPI\PNP0A03\0): it is the same on most PCs and on
// QEMU 5 and later (QEMU 3.0 gave 3&13c0b0c5&0), but it is derived from
// the firmware's description of the host bridge, so it is a best guess.
const rootBusPrefix = "3&267a616a&0"

// preconfInstance derives a PCI device's instance ID from its slot: the
// parent ID prefix, then the device and function as two hex digits
// (device<<3 | function), e.g. 00:03.0 → 3&267a616a&0&18. Only the root
// bus (00) can be derived; a device behind a bridge has the bridge's own
// prefix, which depends on the machine.
func preconfInstance(slot string) (string, error) {
	s, err := ParsePCISlot(slot)
	if err != nil {
		return "", err
	}
	bus, dev, fn := s[0:2], s[3:5], s[6:7]
	if bus != "00" {
		return "", fmt.Errorf("%w: PCI slot %s is on bus %s, behind a bridge: its instance ID depends on the bridge's and cannot be derived (only bus 00 can)", ErrOptions, s, bus)
	}
	d, _ := strconv.ParseUint(dev, 16, 8)
	f, _ := strconv.ParseUint(fn, 16, 8)
	return fmt.Sprintf("%s&%02X", rootBusPrefix, d<<3|f), nil
}

// preconfNIC pre-creates the chosen network adapter's device instance,
// Enum\PCI\<device ID>\<instance ID>, linked to its class instance, so
// that NDIS finds NetCfgInstanceId without NICBootConf (research §6.7
// /preconf). Windows names the key by the device's most specific ID
// (VEN&DEV&SUBSYS&REV): Options.NIC gives it when it is that specific,
// else the model line's ID is used, with a warning.
func (p *hivePlanner) preconfNIC(n *nicInstance, guid, num string) error {
	inst, err := preconfInstance(p.opts.Preconf)
	if err != nil {
		return err
	}
	id := n.dev.HardwareID
	if o := p.opts.NIC; o != "" && len(strings.Split(o, "&")) > len(strings.Split(id, "&")) {
		id = o
	}
	u := strings.ToUpper(id)
	if !strings.HasPrefix(u, `PCI\`) {
		return fmt.Errorf("%w: preconf %s: network adapter %s is not a PCI device", ErrOptions, p.opts.Preconf, id)
	}
	if !strings.Contains(u, "&SUBSYS_") || !strings.Contains(u, "&REV_") {
		p.warn("preconf: Windows names the Enum\\PCI key by the adapter's full ID (VEN&DEV&SUBSYS&REV); %s is less specific and will only match such a device (give the NIC option the full ID)", id)
	}
	key := ccs + `Enum\PCI\` + u[len(`PCI\`):] + `\` + inst
	return p.deviceValues(key, n.dev, guid, num, false)
}
