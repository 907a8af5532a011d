package integrate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
)

// SetupRegHIV is the logical name of setupreg.hiv in Edit.File.
const SetupRegHIV = "setupreg.hiv"

// setupRegState is the in-memory setupreg.hiv of a plan: the hive as read
// (for what was there) and an Editor holding the edits. hive.Editor has no
// read API, so the values set are also kept in vals; reads look there
// first, then in the file as read. Nothing is ever deleted.
type setupRegState struct {
	path string // Tree.SetupReg
	orig []byte
	file *hive.File
	ed   *hive.Editor
	ccs  string // the control set CurrentControlSet stands for: ControlSet001
	// vals are the values set, by regKey(key, name).
	vals map[string]hive.Value
	// created are the keys the plan created, by lower-case path.
	created map[string]string
	// built is set when the outputs reflect every edit (finishSetupReg).
	built bool
	// chosen is the network adapter that got Options' TCP/IP settings.
	chosen *nicInstance
}

// A nicInstance is a network adapter's class instance, allocated by
// setupRegDriver: the software key Control\Class\{4D36E972-…}\NNNN and the
// NetCfgInstanceId written there. Later steps (hal.in_'s DelReg, the TCP/IP
// interface keys) refer to it.
type nicInstance struct {
	dev      *drivers.Device
	classKey string // `Control\Class\{4D36E972-E325-11CE-BFC1-08002BE10318}\0001`
	guid     string // `{…}` upper case
}

// regVal is one registry value to write.
type regVal struct {
	name string
	typ  uint32
	data any
}

func regKey(key, name string) string { return strings.ToLower(key) + "\x00" + strings.ToLower(name) }

// setupRegLoad reads setupreg.hiv on first use. A hive that hive.Check
// finds fault with (dirty, bad checksum, broken cells …) or that has no
// control set is refused: the error names the file and the first problem.
func (p *Plan) setupRegLoad() (*setupRegState, error) {
	if p.setupReg != nil {
		return p.setupReg, nil
	}
	name := p.Tree.SetupReg
	b, ok, err := p.readOptional(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrMissingFiles, name)
	}
	f, ed, err := CheckedHive(b, name)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	s := &setupRegState{path: name, orig: b, file: f, ed: ed, ccs: "ControlSet001",
		vals: map[string]hive.Value{}, created: map[string]string{}}
	if v, ok := s.origValue("Select", "Current"); ok {
		if v.Type != hive.DWORD || len(v.Data) != 4 {
			return nil, fmt.Errorf("integrate: %s: Select\\Current is %v of %d bytes, not a REG_DWORD", name, v.Type, len(v.Data))
		}
		n := binary.LittleEndian.Uint32(v.Data)
		if n < 1 || n > 999 {
			return nil, fmt.Errorf("integrate: %s: Select\\Current is %d, not a control set number", name, n)
		}
		s.ccs = fmt.Sprintf("ControlSet%03d", n)
	}
	if !ed.HasKey(s.ccs) {
		return nil, fmt.Errorf("integrate: %s has no %s key: not the registry of a setup tree", name, s.ccs)
	}
	p.setupReg = s
	return s, nil
}

// resolve maps a hivesys.inf key (SYSTEM\CurrentControlSet\…) to its path
// in setupreg.hiv, whose root is SYSTEM (ControlSet001\…).
func (s *setupRegState) resolve(key string) (string, error) {
	const sys = `SYSTEM\`
	if len(key) <= len(sys) || !strings.EqualFold(key[:len(sys)], sys) {
		return "", fmt.Errorf("integrate: %s: key %q is not under SYSTEM", s.path, key)
	}
	k := key[len(sys):]
	const cur = `CurrentControlSet`
	if len(k) >= len(cur) && strings.EqualFold(k[:len(cur)], cur) && (len(k) == len(cur) || k[len(cur)] == '\\') {
		k = s.ccs + k[len(cur):]
	}
	return k, nil
}

// origValue returns a value of the hive as read.
func (s *setupRegState) origValue(key, name string) (hive.Value, bool) {
	k, err := s.file.Key(key)
	if err != nil {
		return hive.Value{}, false
	}
	v, err := k.Value(name)
	if err != nil {
		return hive.Value{}, false
	}
	return *v, true
}

// value returns a value as the plan leaves it.
func (s *setupRegState) value(key, name string) (hive.Value, bool) {
	if v, ok := s.vals[regKey(key, name)]; ok {
		return v, true
	}
	return s.origValue(key, name)
}

// str returns a REG_SZ/REG_EXPAND_SZ value as the plan leaves it.
func (s *setupRegState) str(key, name string) (string, bool) {
	v, ok := s.value(key, name)
	if !ok || (v.Type != hive.SZ && v.Type != hive.ExpandSZ) {
		return "", false
	}
	return hive.DecodeString(v.Data), true
}

// multi returns a REG_MULTI_SZ value as the plan leaves it.
func (s *setupRegState) multi(key, name string) ([]string, bool) {
	v, ok := s.value(key, name)
	if !ok || v.Type != hive.MultiSZ {
		return nil, false
	}
	return hive.DecodeMultiString(v.Data), true
}

// subkeys returns the names of key's subkeys as the plan leaves them.
func (s *setupRegState) subkeys(key string) []string {
	var out []string
	if k, err := s.file.Key(key); err == nil {
		if subs, err := k.Subkeys(); err == nil {
			for _, c := range subs {
				out = append(out, c.Name())
			}
		}
	}
	prefix := strings.ToLower(key) + `\`
	for l, c := range s.created {
		if strings.HasPrefix(l, prefix) && !strings.Contains(l[len(prefix):], `\`) {
			out = append(out, c[len(prefix):])
		}
	}
	slices.Sort(out)
	return out
}

// createKey creates key and its missing parents, remembering them.
func (s *setupRegState) createKey(key string) error {
	if s.ed.HasKey(key) {
		return nil
	}
	parts := strings.Split(key, `\`)
	for i := range parts {
		k := strings.Join(parts[:i+1], `\`)
		if !s.ed.HasKey(k) {
			s.created[strings.ToLower(k)] = k
		}
	}
	if err := s.ed.CreateKey(key); err != nil {
		return fmt.Errorf("integrate: %s: key %s: %w", s.path, key, err)
	}
	s.built = false
	return nil
}

// dirty reports whether the plan changed any key or value of the hive.
func (s *setupRegState) dirty() bool {
	if len(s.created) > 0 {
		return true
	}
	for k, v := range s.vals {
		key, name, _ := strings.Cut(k, "\x00")
		o, ok := s.origValue(key, name)
		if !ok || o.Type != v.Type || !bytes.Equal(o.Data, v.Data) {
			return true
		}
	}
	return false
}

// encodeReg encodes data of a drivers.Reg* type as registry bytes.
func encodeReg(typ uint32, data any) ([]byte, error) {
	switch d := data.(type) {
	case string:
		if typ == drivers.RegSZ || typ == drivers.RegExpandSZ {
			return hive.EncodeString(d), nil
		}
	case []string:
		if typ == drivers.RegMultiSZ {
			return hive.EncodeMultiString(d), nil
		}
	case uint32:
		if typ == drivers.RegDWORD {
			return hive.EncodeDWORD(d), nil
		}
	case uint64:
		if typ == drivers.RegQWORD {
			return hive.EncodeQWORD(d), nil
		}
	case drivers.Binary:
		return []byte(d), nil
	case []byte:
		return d, nil
	}
	return nil, fmt.Errorf("registry type %d with %T data", typ, data)
}

// renderValue shows value data for Edit.Value and the hive diff:
// sz:"text", expand_sz:"…", multi_sz:"a","b", dword:1, hex:01,02 for
// binary, hex(N):… for other types or data that does not fit its type.
func renderValue(t hive.ValueType, b []byte) string {
	switch t {
	case hive.SZ, hive.ExpandSZ:
		if len(b)%2 == 0 {
			n := "sz:"
			if t == hive.ExpandSZ {
				n = "expand_sz:"
			}
			return n + quote(hive.DecodeString(b))
		}
	case hive.MultiSZ:
		if len(b)%2 == 0 {
			ss := hive.DecodeMultiString(b)
			q := make([]string, len(ss))
			for i, s := range ss {
				q[i] = quote(s)
			}
			return "multi_sz:" + strings.Join(q, ",")
		}
	case hive.DWORD:
		if len(b) == 4 {
			return "dword:" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b)), 10)
		}
	}
	h := make([]string, len(b))
	for i, c := range b {
		h[i] = fmt.Sprintf("%02x", c)
	}
	if t == hive.Binary {
		return "hex:" + strings.Join(h, ",")
	}
	return fmt.Sprintf("hex(%x):", uint32(t)) + strings.Join(h, ",")
}

// recordHive adds a setupreg.hiv edit to p.Edits, one per key and value
// name: a value set again (a list that grows per adapter) replaces the
// earlier edit in place, so --json shows what the hive ends with and a
// second run reports the same edits.
func (p *Plan) recordHive(e Edit) {
	for i := range p.Edits {
		o := &p.Edits[i]
		if o.File == e.File && o.Op == e.Op && strings.EqualFold(o.Section, e.Section) && strings.EqualFold(o.Key, e.Key) {
			*o = e
			return
		}
	}
	p.Edits = append(p.Edits, e)
}

// setRegFinal is setReg for a value the plan may set several times: the
// earlier hivesys.inf edits of the same key and name are dropped, the
// last one (changed if any was) stands for them.
func (p *Plan) setRegFinal(key, name string, typ uint32, data any, why string) {
	n := len(p.Edits)
	p.setReg(key, name, typ, data, why)
	if len(p.Edits) == n {
		return
	}
	prefix := strings.ToUpper(fmt.Sprintf(`HKLM,%s,%s,`, quote(key), quote(name)))
	changed := false
	kept := p.Edits[:0]
	for i, e := range p.Edits {
		if i < n && e.File == HiveSysINF && e.Op == OpReplace && strings.HasPrefix(strings.ToUpper(e.Value), prefix) {
			changed = changed || e.Changed
			continue
		}
		kept = append(kept, e)
	}
	p.Edits = kept
	p.Edits[len(p.Edits)-1].Changed = p.Edits[len(p.Edits)-1].Changed || changed
}

// setupRegSet plans one value in setupreg.hiv. key is written as for
// hivesys.inf, under `SYSTEM\CurrentControlSet\`; setupreg.hiv stores it
// under ControlSet001. typ is a drivers.Reg* type, data as for regLine.
func (p *Plan) setupRegSet(key, name string, typ uint32, data any, why string) error {
	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	k, err := s.resolve(key)
	if err != nil {
		return err
	}
	b, err := encodeReg(typ, data)
	if err != nil {
		return fmt.Errorf("integrate: %s: %s\\%s: %w", s.path, k, name, err)
	}
	return p.setupRegPut(s, k, name, hive.ValueType(typ), b, why)
}

// setupRegPut sets a value at a hive path. Edit.Changed tells whether
// the hive as read had another value (or none).
func (p *Plan) setupRegPut(s *setupRegState, key, name string, t hive.ValueType, b []byte, why string) error {
	if err := s.createKey(key); err != nil {
		return err
	}
	if err := s.ed.SetValue(key, name, t, b); err != nil {
		return fmt.Errorf("integrate: %s: %s\\%s: %w", s.path, key, name, err)
	}
	s.vals[regKey(key, name)] = hive.Value{Name: name, Type: t, Data: bytes.Clone(b)}
	s.built = false
	o, ok := s.origValue(key, name)
	p.recordHive(Edit{File: SetupRegHIV, Op: OpSet, Section: key, Key: name, Value: renderValue(t, b), Why: why,
		Changed: !ok || o.Type != t || !bytes.Equal(o.Data, b)})
	return nil
}

// setupRegKey plans a key (without values) in setupreg.hiv.
func (p *Plan) setupRegKey(key, why string) error {
	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	k, err := s.resolve(key)
	if err != nil {
		return err
	}
	_, missing := s.file.Key(k)
	if err := s.createKey(k); err != nil {
		return err
	}
	p.recordHive(Edit{File: SetupRegHIV, Op: OpSection, Section: k, Why: why, Changed: missing != nil})
	return nil
}

// setBoth plans a value in hivesys.inf (the installed system) and
// setupreg.hiv (text-mode setup): the "both hives" rows of research §6
// and §7.
func (p *Plan) setBoth(key, name string, typ uint32, data any, why string) error {
	p.setReg(key, name, typ, data, why)
	return p.setupRegSet(key, name, typ, data, why)
}

// setBothVals is setBoth for each of vals, in order.
func (p *Plan) setBothVals(key string, vals []regVal, why string) error {
	for _, v := range vals {
		if err := p.setBoth(key, v.name, v.typ, v.data, why); err != nil {
			return err
		}
	}
	return nil
}

// bothOps applies AddReg operations whose HKR is base to hivesys.inf
// (hiveSysOp) and setupreg.hiv (setupRegOp), in order.
func (p *Plan) bothOps(base string, ops []drivers.RegOp, why string) error {
	for _, r := range ops {
		p.hiveSysOp(base, r, why)
		if err := p.setupRegOp(base, r, why); err != nil {
			return err
		}
	}
	return nil
}

// regOpKey returns the hivesys.inf-style key (SYSTEM\CurrentControlSet\…)
// an AddReg line writes to, HKR being base; ok is false for roots outside
// the SYSTEM hive.
func regOpKey(base string, r drivers.RegOp) (string, bool) {
	switch r.Root {
	case "HKR":
		if r.Key == "" {
			return base, true
		}
		return base + `\` + r.Key, true
	case "HKLM":
		if len(r.Key) > len(ccs) && strings.EqualFold(r.Key[:len(ccs)], ccs) {
			return ccs + r.Key[len(ccs):], true
		}
	}
	return "", false
}

// setupRegOp applies one AddReg operation to setupreg.hiv, HKR being
// base: values (NOCLOBBER keeps an existing value, OVERWRITEONLY writes
// only over one, APPEND adds missing strings to a REG_MULTI_SZ) and
// key-only lines. Other operations and roots are left to hiveSysOp's
// warnings.
func (p *Plan) setupRegOp(base string, r drivers.RegOp, why string) error {
	key, ok := regOpKey(base, r)
	if !ok {
		return nil
	}
	switch r.Op {
	case drivers.OpKey:
		return p.setupRegKey(key, why)
	case drivers.OpSet:
	default:
		return nil
	}
	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	k, err := s.resolve(key)
	if err != nil {
		return err
	}
	b, err := encodeReg(r.Type, r.Data)
	if err != nil {
		return fmt.Errorf("integrate: %s:%d: %w", r.INF, r.Line, err)
	}
	cur, exists := s.value(k, r.Value)
	switch {
	case r.NoClobber() && exists:
		// Kept: reported (unchanged) unless this plan set it.
		if _, mine := s.vals[regKey(k, r.Value)]; !mine {
			p.recordHive(Edit{File: SetupRegHIV, Op: OpSet, Section: k, Key: r.Value, Value: renderValue(cur.Type, cur.Data), Why: why})
		}
		return nil
	case r.OverwriteOnly() && !exists:
		return nil
	case r.Append() && r.Type == drivers.RegMultiSZ:
		if exists && cur.Type == hive.MultiSZ {
			b = hive.EncodeMultiString(appendNew(hive.DecodeMultiString(cur.Data), r.Data.([]string)...))
		}
	}
	return p.setupRegPut(s, k, r.Value, hive.ValueType(r.Type), b, why)
}

// appendNew appends the strings of add that list lacks (case-insensitive).
func appendNew(list []string, add ...string) []string {
	out := slices.Clone(list)
	for _, a := range add {
		if !slices.ContainsFunc(out, func(s string) bool { return strings.EqualFold(s, a) }) {
			out = append(out, a)
		}
	}
	return out
}

// setupRegDriver plans the setupreg.hiv keys of one driver package, and
// the hivesys.inf side of the keys both hives get (research §6.2–§6.4,
// §6.7): the services, each device's class instance, its Enum key for
// root-enumerated devices (and with Options.Preconf the chosen network
// adapter's Enum\PCI key), and per network adapter the TCP/IP interface.
func (p *Plan) setupRegDriver(pkg *drivers.Package, devs []*drivers.Device) error {
	if _, err := p.setupRegLoad(); err != nil {
		return err
	}
	done := map[string]bool{}
	for _, d := range devs {
		for i := range d.Services {
			sv := &d.Services[i]
			if done[strings.ToLower(sv.Name)] {
				continue
			}
			done[strings.ToLower(sv.Name)] = true
			if err := p.setupRegService(sv); err != nil {
				return err
			}
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
func (p *Plan) setupRegService(sv *drivers.Service) error {
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
func (p *Plan) deviceKeys(d *drivers.Device) error {
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
		{"MatchingDeviceId", drivers.RegSZ, strings.ToLower(d.HardwareID)},
		{"DriverDesc", drivers.RegSZ, d.Description},
	}
	if d.DriverVer != "" {
		vals = append(vals, regVal{"DriverVersion", drivers.RegSZ, d.DriverVer})
	}
	if d.Provider != "" {
		vals = append(vals, regVal{"ProviderName", drivers.RegSZ, d.Provider})
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
		vals := []regVal{{"NetCfgInstanceId", drivers.RegSZ, g}}
		if d.HasBusType {
			vals = append(vals, regVal{"BusType", drivers.RegSZ, strconv.FormatUint(uint64(d.BusType), 10)})
		}
		if d.HasCharacteristics {
			vals = append(vals, regVal{"Characteristics", drivers.RegDWORD, d.Characteristics})
		}
		if err := p.setBothVals(classKey, vals, why); err != nil {
			return err
		}
		if err := p.setBothVals(classKey+`\Linkage`, []regVal{
			{"Export", drivers.RegMultiSZ, []string{`\Device\` + g}},
			{"RootDevice", drivers.RegMultiSZ, []string{g}},
			{"UpperBind", drivers.RegMultiSZ, []string{"Tcpip"}},
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
	if chosen && p.Options.Preconf != "" {
		return p.preconfNIC(nic, guid, num)
	}
	return nil
}

// hiveSysAddReg calls fn with the data fields of every hivesys.inf
// [AddReg] line under HKLM, with its key and value name.
func (p *Plan) hiveSysAddReg(fn func(key, name string, data []string)) {
	x := p.text(HiveSysINF)
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
func (p *Plan) hiveSysLine(key, name string) []string {
	x := p.text(HiveSysINF)
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
func (p *Plan) hiveSysKey(key string) (names, keyOnly bool) {
	x := p.text(HiveSysINF)
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
func (p *Plan) hiveSysFields(key, name string) ([]string, bool) {
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
func (p *Plan) instances(parent string, match func(get func(name string) ([]string, bool)) bool) (free, found string, err error) {
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
func (p *Plan) classInstance(d *drivers.Device, guid string) (string, error) {
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
func (p *Plan) netCfgInstanceID(classKey string, d *drivers.Device) (string, error) {
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
func (p *Plan) deviceValues(key string, d *drivers.Device, guid, num string, hwid bool) error {
	why := d.Description
	vals := []regVal{
		{"ClassGUID", drivers.RegSZ, guid},
		{"DeviceDesc", drivers.RegSZ, d.Description},
		{"Driver", drivers.RegSZ, guid + `\` + num},
	}
	if s := functionService(d); s != nil {
		vals = append(vals, regVal{"Service", drivers.RegSZ, s.Name})
	}
	vals = append(vals, regVal{"ConfigFlags", drivers.RegDWORD, uint32(0)})
	if hwid {
		vals = append(vals, regVal{"HardwareID", drivers.RegMultiSZ, []string{d.HardwareID}})
	}
	if d.Manufacturer != "" {
		vals = append(vals, regVal{"Mfg", drivers.RegSZ, d.Manufacturer})
	}
	if d.Class != "" {
		vals = append(vals, regVal{"Class", drivers.RegSZ, d.Class})
	}
	if err := p.setBothVals(key, vals, why); err != nil {
		return err
	}
	return p.bothOps(key, d.HWRegistry, why)
}

// rootDevice pre-creates a root-enumerated device (ROOT\iScsiPrt,
// ROOT\sanbootconf) as Enum\Root\<CLASS>\NNNN; its HardwareID keeps a
// later install from adding a second one (research §6.7).
func (p *Plan) rootDevice(d *drivers.Device, guid, num string) error {
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
func (p *Plan) chooseNIC(n *nicInstance) bool {
	s := p.setupReg
	if s.chosen != nil {
		return false
	}
	if p.Options.NIC == "" || MatchesID(n.dev, p.Options.NIC) {
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
func (p *Plan) tcpipAdapter(n *nicInstance, chosen bool) error {
	g := n.guid
	why := "network adapter " + n.dev.HardwareID + ": TCP/IP interface " + g
	tcp := ccs + `Services\Tcpip\`
	if err := p.setBoth(tcp+`Parameters\Adapters\`+g, "IpConfig", drivers.RegMultiSZ,
		[]string{`Tcpip\Parameters\Interfaces\` + g}, why); err != nil {
		return err
	}
	ip, mask, gw, dhcp := "0.0.0.0", "0.0.0.0", "", uint32(1)
	if chosen {
		dhcp = 0
		o := p.Options
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
		{"EnableDHCP", drivers.RegDWORD, dhcp},
		{"IPAddress", drivers.RegMultiSZ, []string{ip}},
		{"SubnetMask", drivers.RegMultiSZ, []string{mask}},
		{"DefaultGateway", drivers.RegMultiSZ, []string{gw}},
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
func (p *Plan) appendBoth(key, name, add, why string) error {
	cur, _ := p.hiveSysFields(key, name)
	if len(cur) == 1 && cur[0] == "" {
		cur = nil
	}
	p.setRegFinal(key, name, drivers.RegMultiSZ, appendNew(cur, add), why)
	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	k, err := s.resolve(key)
	if err != nil {
		return err
	}
	list, _ := s.multi(k, name)
	return p.setupRegSet(key, name, drivers.RegMultiSZ, appendNew(list, add), why)
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
func (p *Plan) preconfNIC(n *nicInstance, guid, num string) error {
	inst, err := preconfInstance(p.Options.Preconf)
	if err != nil {
		return err
	}
	id := n.dev.HardwareID
	if o := p.Options.NIC; o != "" && len(strings.Split(o, "&")) > len(strings.Split(id, "&")) {
		id = o
	}
	u := strings.ToUpper(id)
	if !strings.HasPrefix(u, `PCI\`) {
		return fmt.Errorf("%w: preconf %s: network adapter %s is not a PCI device", ErrOptions, p.Options.Preconf, id)
	}
	if !strings.Contains(u, "&SUBSYS_") || !strings.Contains(u, "&REV_") {
		p.warn("preconf: Windows names the Enum\\PCI key by the adapter's full ID (VEN&DEV&SUBSYS&REV); %s is less specific and will only match such a device (give the NIC option the full ID)", id)
	}
	key := ccs + `Enum\PCI\` + u[len(`PCI\`):] + `\` + inst
	return p.deviceValues(key, n.dev, guid, num, false)
}

// tcpipGroups are the load-order groups the TCP/IP boot set moves
// (research §7.2), in their new order.
var tcpipGroups = []string{"NDIS Wrapper", "NDIS", "Base", "PNP_TDI"}

// groupOrder removes the TCP/IP boot groups from list and inserts them
// after the third entry (the first group, which setupdd uses to tell text
// mode, Boot Bus Extender and System Bus Extender), before SCSI miniport.
// Applying it twice gives the same list.
func groupOrder(list []string) []string {
	var out []string
	for _, g := range list {
		if !hasFold(tcpipGroups, g) {
			out = append(out, g)
		}
	}
	i := min(3, len(out))
	return slices.Concat(out[:i], tcpipGroups, out[i:])
}

// setupRegTCPIP plans the setupreg.hiv TCP/IP boot-start set (research
// §7.2): KSecDD and NDIS boot start (text mode only), IPSec and Tcpip,
// DependOnService as REG_MULTI_SZ, DisablePagingExecutive,
// DisableDHCPMediaSense (hiveSysTCPIP wrote hivesys.inf's), and the
// ServiceGroupOrder in both hives.
func (p *Plan) setupRegTCPIP() error {
	const why = "network adapter: TCP/IP boot start"
	type val struct {
		key, name string
		typ       uint32
		data      any
	}
	svc := ccs + `Services\`
	vals := []val{
		{svc + "KSecDD", "Start", drivers.RegDWORD, uint32(0)},
		{svc + "KSecDD", "Group", drivers.RegSZ, "Base"},
		{svc + "NDIS", "Start", drivers.RegDWORD, uint32(0)},
		{svc + "NDIS", "Group", drivers.RegSZ, "NDIS Wrapper"},
	}
	tcp := []string{"Tcpip"}
	if p.Tree.Minor != 0 {
		tcp = []string{"IPSec", "Tcpip"}
	}
	for _, s := range tcp {
		vals = append(vals, val{svc + s, "Start", drivers.RegDWORD, uint32(0)},
			val{svc + s, "Group", drivers.RegSZ, "PNP_TDI"},
			val{svc + s, "Type", drivers.RegDWORD, uint32(1)})
	}
	if p.Tree.Minor != 0 {
		vals = append(vals, val{svc + "Tcpip", "DependOnService", drivers.RegMultiSZ, []string{"IPSec"}})
	}
	vals = append(vals,
		val{ccs + `Control\Session Manager\Memory Management`, "DisablePagingExecutive", drivers.RegDWORD, uint32(1)},
		val{svc + `Tcpip\Parameters`, "DisableDHCPMediaSense", drivers.RegDWORD, uint32(1)})
	for _, v := range vals {
		if err := p.setupRegSet(v.key, v.name, v.typ, v.data, why); err != nil {
			return err
		}
	}

	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	const sgo = ccs + `Control\ServiceGroupOrder`
	hp, err := s.resolve(sgo)
	if err != nil {
		return err
	}
	regList, ok := s.multi(hp, "List")
	if !ok {
		p.warn("%s has no ServiceGroupOrder List; NDIS, TCP/IP and Base keep text mode's default order", s.path)
	} else if err := p.setupRegSet(sgo, "List", drivers.RegMultiSZ, groupOrder(regList), why); err != nil {
		return err
	}
	// hivesys.inf: its own list when it sets one, else setupreg.hiv's.
	sysList, ok := p.hiveSysFields(sgo, "List")
	if !ok {
		sysList = regList
	}
	if len(sysList) > 0 {
		p.setReg(sgo, "List", drivers.RegMultiSZ, groupOrder(sysList), why)
	}
	return nil
}

// finishSetupReg turns the in-memory hive into the planned file output:
// setupreg.hiv in the setup directory and, for a local source, the copy
// in $WIN_NT$.~BT that text-mode setup boots with. The hive is laid out
// anew only when a key or value really changed (hive.Editor.Bytes
// rewrites every cell), so a second run writes nothing. It also refuses
// an Options.NIC that no integrated adapter matched.
func (p *Plan) finishSetupReg() error {
	s := p.setupReg
	if s == nil {
		return nil
	}
	if p.Options.NIC != "" && s.chosen == nil {
		var ids []string
		for _, n := range p.nics {
			ids = append(ids, n.dev.HardwareID)
		}
		have := "none"
		if len(ids) > 0 {
			have = strings.Join(ids, ", ")
		}
		return fmt.Errorf("%w: NIC %s matches no integrated network adapter (integrated: %s)", ErrOptions, p.Options.NIC, have)
	}
	if s.built {
		return nil
	}
	data := s.orig
	dirty := s.dirty()
	if dirty {
		b, err := s.ed.Bytes()
		if err != nil {
			return fmt.Errorf("integrate: %s: %w", s.path, err)
		}
		if probs, err := hive.Check(bytes.NewReader(b), int64(len(b))); err != nil || len(probs) > 0 {
			return fmt.Errorf("integrate: %s as edited fails the hive check (%v %v); nothing written", s.path, err, probs)
		}
		data = b
	}
	o, err := p.putFile(s.path, data, KindHive, "registry of text-mode setup")
	if err != nil {
		return err
	}
	o.diff = hiveDiffer(o.path)
	if p.Tree.Layout == LocalSource && p.Tree.BootDir != "" {
		bt := p.Tree.BootDir + "/" + path.Base(s.path)
		var cur []byte
		var ok bool
		if ob := p.output(bt); ob != nil {
			cur, ok = ob.orig, ob.exists
		} else if cur, ok, err = p.readOptional(bt); err != nil {
			return err
		}
		btData := data
		if !dirty && ok && sameHive(cur, s.orig) {
			btData = cur
		}
		ob, err := p.putFile(bt, btData, KindHive, "copy of "+s.path+" text-mode setup boots with")
		if err != nil {
			return err
		}
		ob.diff = hiveDiffer(ob.path)
	}
	s.built = true
	return nil
}

// sameHive reports whether two hives hold the same keys and values.
func sameHive(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	d, err := hiveDiff(a, b)
	return err == nil && d == ""
}

// hiveDiffer renders a hive output's change for --dry-run: a header and
// hiveDiff's lines. An original that is not a hive (a damaged ~BT copy the
// plan replaces) is noted and diffed as empty.
func hiveDiffer(name string) func(orig, data []byte) (string, error) {
	return func(orig, data []byte) (string, error) {
		note := ""
		if orig != nil {
			if _, err := flatten(orig); err != nil {
				note, orig = fmt.Sprintf("(a/%s is not a valid hive: %v)\n", name, err), nil
			}
		}
		d, err := hiveDiff(orig, data)
		if err != nil || d == "" {
			return "", err
		}
		return "--- a/" + name + "\n+++ b/" + name + "\n" + note + d, nil
	}
}

// flatHive is a hive's keys and values by upper-case path.
type flatHive struct {
	keys map[string]string      // upper path → path
	vals map[string]*hive.Value // upper path \x00 upper name → value
}

func flatten(b []byte) (*flatHive, error) {
	h := &flatHive{keys: map[string]string{}, vals: map[string]*hive.Value{}}
	if b == nil {
		return h, nil
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	err = f.Walk(func(p string, k *hive.Key) error {
		up := strings.ToUpper(p)
		h.keys[up] = p
		vals, err := k.Values()
		if err != nil {
			return err
		}
		for _, v := range vals {
			h.vals[up+"\x00"+strings.ToUpper(v.Name)] = v
		}
		return nil
	})
	return h, err
}

// hiveDiff renders the key/value difference of two hives, one line each,
// in key order: `+ key\` for a new key, `- key\` for a removed one,
// `+ key\name = type:data`, `- …`, `~ key\name = new (was old)`; the
// default value is named @. a nil hive is empty.
func hiveDiff(a, b []byte) (string, error) {
	fa, err := flatten(a)
	if err != nil {
		return "", err
	}
	fb, err := flatten(b)
	if err != nil {
		return "", err
	}
	type line struct{ sortKey, text string }
	var lines []line
	add := func(sortKey, text string) { lines = append(lines, line{sortKey, text}) }
	for up, p := range fb.keys {
		if _, ok := fa.keys[up]; !ok && up != "" {
			add(up+"\x00", "+ "+p+`\`)
		}
	}
	for up, p := range fa.keys {
		if _, ok := fb.keys[up]; !ok && up != "" {
			add(up+"\x00", "- "+p+`\`)
		}
	}
	name := func(k string, v *hive.Value, keys map[string]string) string {
		up, _, _ := strings.Cut(k, "\x00")
		n := v.Name
		if n == "" {
			n = "@"
		}
		if p := keys[up]; p != "" {
			return p + `\` + n
		}
		return n
	}
	for k, v := range fb.vals {
		o, ok := fa.vals[k]
		switch {
		case !ok:
			add(k, "+ "+name(k, v, fb.keys)+" = "+renderValue(v.Type, v.Data))
		case o.Type != v.Type || !bytes.Equal(o.Data, v.Data):
			add(k, "~ "+name(k, v, fb.keys)+" = "+renderValue(v.Type, v.Data)+" (was "+renderValue(o.Type, o.Data)+")")
		}
	}
	for k, v := range fa.vals {
		if _, ok := fb.vals[k]; !ok {
			add(k, "- "+name(k, v, fa.keys)+" = "+renderValue(v.Type, v.Data))
		}
	}
	slices.SortFunc(lines, func(x, y line) int { return strings.Compare(x.sortKey, y.sortKey) })
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(l.text)
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}
