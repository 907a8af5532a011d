package integrate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
)

// hivePlanner owns the registry setup starts with: setupreg.hiv (loaded
// on first use, edited through a hive.Editor) and the hivesys.inf /
// hivesft.inf AddReg lines that repeat it for the installed system.
// Methods: setupreg.go (values, keys, both hives), setupreg_device.go
// (services, class instances, Enum keys, NICs), setupreg_finish.go
// (TCP/IP boot set, the hive's output), hivesys.go (INF lines).
type hivePlanner struct {
	*planEnv
	texts  *textPlanner // hivesys.inf and hivesft.inf
	copies *copyPlanner // setupreg.hiv as a whole file
	// setupReg is the in-memory setupreg.hiv, loaded on first use.
	setupReg *setupRegState
	// nics are the network adapters' class instances, in the order
	// integrated.
	nics []*nicInstance
}

// SetupRegHIV is the logical name of setupreg.hiv in Edit.File.
const SetupRegHIV = "setupreg.hiv"

// setupRegState is the in-memory setupreg.hiv of a plan: the hive as read
// (for what was there) and an Editor holding the edits, which reads back
// the hive as the plan leaves it. Nothing is ever deleted.
type setupRegState struct {
	path string // Tree.SetupReg
	orig []byte
	file *hive.File
	ed   *hive.Editor
	ccs  string // the control set CurrentControlSet stands for: ControlSet001
	// set records which values the plan set, by regKey(key, name); the
	// values themselves are read from ed.
	set map[string]bool
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
	data drivers.RegData
}

func regKey(key, name string) string { return strings.ToLower(key) + "\x00" + strings.ToLower(name) }

// setupRegLoad reads setupreg.hiv on first use. A hive that hive.Check
// finds fault with (dirty, bad checksum, broken cells …) or that has no
// control set is refused: the error names the file and the first problem.
func (p *hivePlanner) setupRegLoad() (*setupRegState, error) {
	if p.setupReg != nil {
		return p.setupReg, nil
	}
	name := p.tree.SetupReg
	b, ok, err := p.copies.readOptional(name)
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
	// Text-mode setup uses ControlSet001 when setupreg.hiv has no
	// \Select\Current.
	ccs, err := f.CurrentControlSet("ControlSet001")
	if err != nil {
		return nil, fmt.Errorf("integrate: %s: %w: not the registry of a setup tree", name, err)
	}
	s := &setupRegState{path: name, orig: b, file: f, ed: ed, ccs: ccs,
		set: map[string]bool{}, created: map[string]string{}}
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
	v, err := s.ed.Value(key, name)
	if err != nil {
		return hive.Value{}, false
	}
	return *v, true
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
	out, _ := s.ed.Subkeys(key)
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
	for k := range s.set {
		key, name, _ := strings.Cut(k, "\x00")
		v, _ := s.value(key, name)
		o, ok := s.origValue(key, name)
		if !ok || o.Type != v.Type || !bytes.Equal(o.Data, v.Data) {
			return true
		}
	}
	return false
}

// encodeReg encodes data of a drivers.Reg* type as registry bytes. The
// kind of the data must fit the type; raw bytes fit any type.
func encodeReg(typ uint32, data drivers.RegData) ([]byte, error) {
	switch data.Kind {
	case drivers.KindString:
		if typ == drivers.RegSZ || typ == drivers.RegExpandSZ {
			return hive.EncodeString(data.Str), nil
		}
	case drivers.KindMulti:
		if typ == drivers.RegMultiSZ {
			return hive.EncodeMultiString(data.Multi), nil
		}
	case drivers.KindDWORD:
		if typ == drivers.RegDWORD {
			return hive.EncodeDWORD(data.DWord), nil
		}
	case drivers.KindBinary:
		return []byte(data.Bin), nil
	}
	return nil, fmt.Errorf("registry type %d with %s data %s", typ, kindName(data.Kind), data)
}

// kindName names a kind of registry data for messages.
func kindName(k drivers.RegKind) string {
	switch k {
	case drivers.KindString:
		return "string"
	case drivers.KindMulti:
		return "string list"
	case drivers.KindDWORD:
		return "DWORD"
	case drivers.KindBinary:
		return "binary"
	}
	return "no"
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

// setRegFinal is setReg for a value the plan may set several times: the
// earlier hivesys.inf edits of the same key and name are dropped, the
// last one (changed if any was) stands for them.
func (p *hivePlanner) setRegFinal(key, name string, typ uint32, data drivers.RegData, why string) {
	n := len(*p.edits)
	p.setReg(key, name, typ, data, why)
	if len(*p.edits) == n {
		return
	}
	prefix := strings.ToUpper(fmt.Sprintf(`HKLM,%s,%s,`, quote(key), quote(name)))
	changed := false
	kept := (*p.edits)[:0]
	for i, e := range *p.edits {
		if i < n && e.File == HiveSysINF && e.Op == OpReplace && strings.HasPrefix(strings.ToUpper(e.Value), prefix) {
			changed = changed || e.Changed
			continue
		}
		kept = append(kept, e)
	}
	*p.edits = kept
	last := &kept[len(kept)-1]
	last.Changed = last.Changed || changed
}

// setupRegSet plans one value in setupreg.hiv. key is written as for
// hivesys.inf, under `SYSTEM\CurrentControlSet\`; setupreg.hiv stores it
// under ControlSet001. typ is a drivers.Reg* type, data as for regLine.
func (p *hivePlanner) setupRegSet(key, name string, typ uint32, data drivers.RegData, why string) error {
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
func (p *hivePlanner) setupRegPut(s *setupRegState, key, name string, t hive.ValueType, b []byte, why string) error {
	if err := s.createKey(key); err != nil {
		return err
	}
	if err := s.ed.SetValue(key, name, t, b); err != nil {
		return fmt.Errorf("integrate: %s: %s\\%s: %w", s.path, key, name, err)
	}
	s.set[regKey(key, name)] = true
	s.built = false
	o, ok := s.origValue(key, name)
	p.recordHive(Edit{File: SetupRegHIV, Op: OpSet, Section: key, Key: name, Value: renderValue(t, b), Why: why,
		Changed: !ok || o.Type != t || !bytes.Equal(o.Data, b)})
	return nil
}

// setupRegKey plans a key (without values) in setupreg.hiv.
func (p *hivePlanner) setupRegKey(key, why string) error {
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
func (p *hivePlanner) setBoth(key, name string, typ uint32, data drivers.RegData, why string) error {
	p.setReg(key, name, typ, data, why)
	return p.setupRegSet(key, name, typ, data, why)
}

// setBothVals is setBoth for each of vals, in order.
func (p *hivePlanner) setBothVals(key string, vals []regVal, why string) error {
	for _, v := range vals {
		if err := p.setBoth(key, v.name, v.typ, v.data, why); err != nil {
			return err
		}
	}
	return nil
}

// bothOps applies AddReg operations whose HKR is base to hivesys.inf
// (hiveSysOp) and setupreg.hiv (setupRegOp), in order.
func (p *hivePlanner) bothOps(base string, ops []drivers.RegOp, why string) error {
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
func (p *hivePlanner) setupRegOp(base string, r drivers.RegOp, why string) error {
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
		if !s.set[regKey(k, r.Value)] {
			p.recordHive(Edit{File: SetupRegHIV, Op: OpSet, Section: k, Key: r.Value, Value: renderValue(cur.Type, cur.Data), Why: why})
		}
		return nil
	case r.OverwriteOnly() && !exists:
		return nil
	case r.Append() && r.Type == drivers.RegMultiSZ:
		if exists && cur.Type == hive.MultiSZ {
			b = hive.EncodeMultiString(appendNew(hive.DecodeMultiString(cur.Data), r.Data.Multi...))
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
