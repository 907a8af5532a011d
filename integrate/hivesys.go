package integrate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/internal/inftext"
)

// Logical names of the hive INFs in Edit.File.
const (
	HiveSysINF   = "hivesys.inf"
	HiveSftINF   = "hivesft.inf"
	HiveSft32INF = "hivsft32.inf"
)

// OpReplace replaces the first line of the section whose first
// Edit.Fields fields equal those of Value (case-insensitive), or adds
// Value: hive INF AddReg lines are told apart by root, key and value name.
const OpReplace Op = "replace"

// ReplaceLine makes section contain text: the first entry without '='
// whose first n fields equal text's is replaced (every physical line of a
// continued entry, by text on one line), else text is appended.
// It reports whether it changed t.
func (t *Text) ReplaceLine(section string, n int, text string) bool {
	t.EnsureSection(section)
	want := inftext.Fields(inftext.StripComment(text))
	for _, i := range t.sectionLines(section) {
		l := t.lines[i]
		if l.kind != kindEntry || l.key != "" || len(l.fields) < n || len(want) < n || !sameFields(l.fields[:n], want[:n]) {
			continue
		}
		if sameFields(l.fields, want) {
			return false
		}
		// Keep the identifying fields as written (their case), take the
		// rest from text; a continued entry becomes one line.
		if n > 0 {
			src := l.editText()
			if i, j := nthComma(src, n), nthComma(text, n); i >= 0 && j >= 0 {
				text = src[:i] + text[j:]
			}
		}
		l.text, l.raw = text, nil
		l.classify()
		return true
	}
	t.insert(t.appendAt(section), text)
	return true
}

// nthComma returns the index of the n-th comma outside quotes, or -1.
func nthComma(s string, n int) int {
	q := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			q = !q
		case s[i] == ',' && !q:
			if n--; n == 0 {
				return i
			}
		}
	}
	return -1
}

// Hive INF AddReg flags for each registry type (research §4.4).
const (
	hiveSZ       = 0x00000000
	hiveBinary   = 0x00000001
	hiveMultiSZ  = 0x00010000
	hiveDWORD    = 0x00010001
	hiveExpandSZ = 0x00020000
	hiveKeyOnly  = 0x00000010
)

// regLine formats `HKLM,"key","name",flags,data` as hivesys.inf writes
// it: strings quoted with "" doubled, DWORDs decimal, binary as hex bytes.
func regLine(key, name string, typ uint32, data drivers.RegData) (string, error) {
	var flags uint32
	var d string
	mismatch := fmt.Errorf("type %d with %s data %s", typ, kindName(data.Kind), data)
	switch typ {
	case drivers.RegSZ, drivers.RegExpandSZ:
		if data.Kind != drivers.KindString {
			return "", mismatch
		}
		flags, d = hiveSZ, quote(data.Str)
		if typ == drivers.RegExpandSZ {
			flags = hiveExpandSZ
		}
	case drivers.RegMultiSZ:
		if data.Kind != drivers.KindMulti {
			return "", mismatch
		}
		q := make([]string, len(data.Multi))
		for i, s := range data.Multi {
			q[i] = quote(s)
		}
		flags, d = hiveMultiSZ, strings.Join(q, ",")
	case drivers.RegDWORD:
		if data.Kind != drivers.KindDWORD {
			return "", mismatch
		}
		flags, d = hiveDWORD, strconv.FormatUint(uint64(data.DWord), 10)
	case drivers.RegBinary:
		if data.Kind != drivers.KindBinary {
			return "", mismatch
		}
		h := make([]string, len(data.Bin))
		for i, c := range data.Bin {
			h[i] = fmt.Sprintf("%02x", c)
		}
		flags, d = hiveBinary, strings.Join(h, ",")
	default:
		return "", fmt.Errorf("registry type %d not written to hive INFs", typ)
	}
	return fmt.Sprintf(`HKLM,%s,%s,0x%08x,%s`, quote(key), quote(name), flags, d), nil
}

const ccs = `SYSTEM\CurrentControlSet\`

// setReg plans one hivesys.inf value.
func (p *hivePlanner) setReg(key, name string, typ uint32, data drivers.RegData, why string) {
	l, err := regLine(key, name, typ, data)
	if err != nil {
		p.warn("%s: %s\\%s: %v", why, key, name, err)
		return
	}
	p.texts.do(Edit{File: HiveSysINF, Op: OpReplace, Section: "AddReg", Fields: 3, Value: l, Why: why})
}

// hiveSysServices writes what the installed system needs for each
// service (research §6.4, §9(b)): boot start, type, error control,
// group, display name, ImagePath, dependencies as REG_MULTI_SZ, the
// service's own AddReg values and those of its event-log install.
func (p *hivePlanner) hiveSysServices(devs []*drivers.Device) {
	done := map[string]bool{}
	for _, d := range devs {
		for _, s := range d.Services {
			if done[strings.ToLower(s.Name)] {
				continue
			}
			done[strings.ToLower(s.Name)] = true
			key := ccs + `Services\` + s.Name
			why := "service " + s.Name
			for _, v := range serviceVals(&s, true) {
				p.setReg(key, v.name, v.typ, v.data, why)
			}
			for _, r := range s.Registry {
				p.hiveSysOp(key, r, why)
			}
			if el := s.EventLog; el != nil {
				base := eventLogKey(&s, el)
				for _, r := range el.Registry {
					p.hiveSysOp(base, r, why+" event log")
				}
			}
		}
	}
}

// serviceVals returns the values of a service's key, boot start, in the
// order hivesys.inf gets them; image adds ImagePath, which text-mode setup
// does without (it loads <service>.sys from its own list).
func serviceVals(s *drivers.Service, image bool) []regVal {
	var vals []regVal
	if s.DisplayName != "" {
		vals = append(vals, regVal{"DisplayName", drivers.RegSZ, drivers.StringData(s.DisplayName)})
	}
	vals = append(vals, regVal{"ErrorControl", drivers.RegDWORD, drivers.DWORDData(s.ErrorControl)})
	if s.LoadOrderGroup != "" {
		vals = append(vals, regVal{"Group", drivers.RegSZ, drivers.StringData(s.LoadOrderGroup)})
	}
	vals = append(vals, regVal{"Start", drivers.RegDWORD, drivers.DWORDData(0)}, regVal{"Type", drivers.RegDWORD, drivers.DWORDData(s.ServiceType)})
	if image && s.ImagePath != "" {
		vals = append(vals, regVal{"ImagePath", drivers.RegExpandSZ, drivers.StringData(s.ImagePath)})
	}
	if len(s.DependOnService) > 0 {
		vals = append(vals, regVal{"DependOnService", drivers.RegMultiSZ, drivers.MultiData(s.DependOnService)})
	}
	if len(s.DependOnGroup) > 0 {
		vals = append(vals, regVal{"DependOnGroup", drivers.RegMultiSZ, drivers.MultiData(s.DependOnGroup)})
	}
	return vals
}

// hiveSysOp writes one AddReg operation whose HKR is base (HKLM lines
// under SYSTEM\CurrentControlSet are written as they are). Operations a
// hive INF line cannot express, and other roots, are warned about;
// setupRegOp leaves them out of setupreg.hiv too.
func (p *hivePlanner) hiveSysOp(base string, r drivers.RegOp, why string) {
	key, ok := regOpKey(base, r)
	if !ok {
		p.warn("%s: %s:%d: %s\\%s is outside the SYSTEM hive; not written to the hives", why, r.INF, r.Line, r.Root, r.Key)
		return
	}
	switch r.Op {
	case drivers.OpSet:
		// The flags are applied against hivesys.inf as the plan leaves
		// it: NOCLOBBER keeps a value that is there (a second run still
		// reports its own line), OVERWRITEONLY writes only over one,
		// APPEND adds the missing strings to a REG_MULTI_SZ.
		cur, exists := p.hiveSysFields(key, r.Value)
		switch {
		case r.OverwriteOnly() && !exists:
			return
		case r.NoClobber() && exists:
			l, err := regLine(key, r.Value, r.Type, r.Data)
			if err != nil || !sameFields(p.hiveSysLine(key, r.Value), inftext.Fields(l)) {
				return
			}
		case r.Append():
			if r.Data.Kind != drivers.KindMulti || r.Type != drivers.RegMultiSZ {
				p.warn("%s: %s:%d: FLG_ADDREG_APPEND to a value that is not REG_MULTI_SZ; skipped", why, r.INF, r.Line)
				return
			}
			if len(cur) == 1 && cur[0] == "" {
				cur = nil
			}
			p.setRegFinal(key, r.Value, r.Type, drivers.MultiData(appendNew(cur, r.Data.Multi...)), why)
			return
		}
		p.setReg(key, r.Value, r.Type, r.Data, why)
	case drivers.OpKey:
		// Any line naming the key creates it, so a key-only line is added
		// only to a key that has no line yet, and is kept (reported again
		// as a no-op) once there. Replacing "the first line of the key"
		// instead overwrote a value written before it, such as the class
		// instance's MatchingDeviceId, which the next run then re-added.
		line := fmt.Sprintf(`HKLM,%s,,0x%08x`, quote(key), hiveKeyOnly)
		if names, keyOnly := p.hiveSysKey(key); names && !keyOnly {
			return
		}
		p.texts.do(Edit{File: HiveSysINF, Op: OpAdd, Section: "AddReg", Value: line, Why: why})
	default:
		p.warn("%s: %s:%d: %s not written to the hives yet", why, r.INF, r.Line, r.Op)
	}
}

// hiveSysCriticalDevices adds the CriticalDeviceDatabase entries of the
// installed system (research §6.7): Service, and ClassGUID for NICs.
func (p *hivePlanner) hiveSysCriticalDevices(devs []*drivers.Device) {
	for _, d := range devs {
		s := functionService(d)
		if s == nil {
			continue
		}
		for _, id := range append([]string{d.HardwareID}, d.CompatibleIDs...) {
			if id == "" || strings.HasPrefix(strings.ToUpper(id), `ROOT\`) {
				continue
			}
			key := ccs + `Control\CriticalDeviceDatabase\` + strings.ReplaceAll(strings.ToLower(id), `\`, "#")
			p.setReg(key, "Service", drivers.RegSZ, drivers.StringData(s.Name), d.Description)
			if isNIC(d) {
				p.setReg(key, "ClassGUID", drivers.RegSZ, drivers.StringData(NetClassGUID), d.Description)
			}
		}
	}
}

// hiveSysTCPIP makes TCP/IP boot start in the installed system (the
// both-hives rows of research §7.2; setupRegTCPIP writes their
// setupreg.hiv side and the ServiceGroupOrder of both hives).
// DependOnService is REG_MULTI_SZ, as Windows has it (IntegrateDrv wrote SZ).
func (p *hivePlanner) hiveSysTCPIP() {
	const why = "network adapter: TCP/IP boot start"
	svcs := []string{"Tcpip"}
	if p.tree.Minor != 0 {
		svcs = []string{"IPSec", "Tcpip"}
	}
	for _, s := range svcs {
		key := ccs + `Services\` + s
		p.setReg(key, "Start", drivers.RegDWORD, drivers.DWORDData(0), why)
		p.setReg(key, "Group", drivers.RegSZ, drivers.StringData("PNP_TDI"), why)
		p.setReg(key, "Type", drivers.RegDWORD, drivers.DWORDData(1), why)
	}
	if p.tree.Minor != 0 {
		p.setReg(ccs+`Services\Tcpip`, "DependOnService", drivers.RegMultiSZ, drivers.MultiData([]string{"IPSec"}), why)
	}
	p.setReg(ccs+`Control\Session Manager\Memory Management`, "DisablePagingExecutive", drivers.RegDWORD, drivers.DWORDData(1), why)
	p.setReg(ccs+`Services\Tcpip\Parameters`, "DisableDHCPMediaSense", drivers.RegDWORD, drivers.DWORDData(1), why)
}

// devicePath puts the staging directories first in the DevicePath that
// GUI-mode setup searches for INFs (research §4.4), in hivesft.inf and,
// on 64-bit systems, hivsft32.inf (Wow6432Node).
func (p *hivePlanner) devicePath(dirs []string) {
	for _, f := range []struct{ logical, key string }{
		{HiveSftINF, `SOFTWARE\Microsoft\Windows\CurrentVersion`},
		{HiveSft32INF, `SOFTWARE\Wow6432Node\Microsoft\Windows\CurrentVersion`},
	} {
		x := p.texts.text(f.logical)
		if x == nil {
			continue
		}
		cur, ok := regValue(x, f.key, "DevicePath")
		if !ok {
			cur = `%SystemRoot%\inf`
		}
		parts := strings.Split(cur, ";")
		for i := len(dirs) - 1; i >= 0; i-- {
			found := false
			for _, q := range parts {
				if strings.EqualFold(strings.TrimSpace(q), dirs[i]) {
					found = true
				}
			}
			if !found {
				parts = append([]string{dirs[i]}, parts...)
			}
		}
		l, _ := regLine(f.key, "DevicePath", drivers.RegExpandSZ, drivers.StringData(strings.Join(parts, ";")))
		p.texts.do(Edit{File: f.logical, Op: OpReplace, Section: "AddReg", Fields: 3, Value: l, Why: "staging directories for GUI-mode setup"})
	}
}
