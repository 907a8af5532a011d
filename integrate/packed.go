package integrate

import (
	"bytes"
	"debug/pe"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/integrate/cab"
)

// OpComment turns every line of the section equal to Value into a
// comment (';' put in front, the line's bytes kept): in-box model lines
// that would beat the integrated driver in GUI mode.
const OpComment Op = "comment"

// maxPackedSize bounds the file read out of a packed setup file
// (sfcfiles.dll, the largest one edited, is under 2 MiB).
const maxPackedSize = 64 << 20

// signingAdvice ends every warning about an edit that voids a catalog
// signature (issue 7 §5).
const signingAdvice = "GUI-mode setup may then stop to ask about an unsigned driver: set DriverSigningPolicy=Ignore in winnt.sif [Unattended]"

// What a packed file must hold when it is stored uncompressed.
const (
	packedINF = "INF"
	packedPE  = "PE image"
)

// A packedFile is a setup file as the plan will leave it, uncompressed:
// either a single-file cabinet (nettcpip.in_ holding nettcpip.inf) or the
// plain file some trees carry instead (setup takes either).
type packedFile struct {
	path  string // slash path in the tree
	isCab bool
	hdr   cab.FileHeader  // the cabinet's file: name, time, attributes
	comp  cab.Compression // the cabinet's compression
	data  []byte          // the (inner) content
}

// openPacked reads name as a single-file cabinet or, when it is not one,
// as a plain file of the given kind (packedINF, packedPE). A missing file
// gives nil. A file that is neither — a damaged or unsupported cabinet,
// garbage — is warned about (why says what is then not done) and gives
// nil too: setup trees differ, and issue 7 §2 wants those skipped.
func (p *Plan) openPacked(name, kind, why string) (*packedFile, error) {
	b, ok, err := p.current(name)
	if err != nil || !ok {
		return nil, err
	}
	pf, err := unpack(name, b, kind)
	if err != nil {
		p.warn("%s: %v; %s skipped", name, err, why)
		return nil, nil
	}
	return pf, nil
}

// unpack decodes the content of a packed setup file.
func unpack(name string, b []byte, kind string) (*packedFile, error) {
	pf := &packedFile{path: name}
	if !bytes.HasPrefix(b, []byte("MSCF")) {
		if err := plausible(b, kind); err != nil {
			return nil, err
		}
		pf.data = b
		return pf, nil
	}
	r, err := cab.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	if len(r.File) != 1 {
		return nil, fmt.Errorf("cabinet holds %d files, not one", len(r.File))
	}
	f := r.File[0]
	if f.Size > maxPackedSize {
		return nil, fmt.Errorf("cabinet file %s is %d bytes, more than a setup file can be", f.Name, f.Size)
	}
	d, err := f.ReadAll()
	if err != nil {
		return nil, err
	}
	pf.isCab = true
	pf.hdr = cab.FileHeader{Name: f.Name, Modified: f.Modified, Attrs: f.Attrs}
	pf.comp = r.Folder[f.FolderIndex].Compression
	pf.data = d
	return pf, nil
}

// plausible checks that an uncompressed file is of the kind expected: an
// INF is text (UTF-16 with its byte-order mark, or without NUL bytes); a
// PE image starts with MZ.
func plausible(b []byte, kind string) error {
	switch kind {
	case packedPE:
		if bytes.HasPrefix(b, []byte("MZ")) {
			return nil
		}
	default:
		if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.IndexByte(b, 0) < 0 {
			return nil
		}
	}
	return fmt.Errorf("neither a cabinet nor a plain %s", kind)
}

// putPacked plans writing data back to pf's file, packed as it was: the
// cabinet keeps its file name, time and attributes, and is written with
// MSZIP (stored when it was stored; LZX, which the writer lacks, becomes
// MSZIP, which setup reads as well). Nothing is written when data is
// what the file already holds, so a second run changes nothing. kind is
// KindText for an INF (the dry-run diff then shows the INF) or
// KindBinary.
func (p *Plan) putPacked(pf *packedFile, data []byte, kind, why string) (*fileOut, error) {
	if bytes.Equal(data, pf.data) {
		return nil, nil
	}
	out := data
	k := kind
	if pf.isCab {
		var buf bytes.Buffer
		w := cab.NewWriter(&buf)
		if pf.comp.Method() == cab.None {
			w.Compression = cab.None
		}
		fw, err := w.CreateHeader(&pf.hdr)
		if err != nil {
			return nil, fmt.Errorf("integrate: %s: %w", pf.path, err)
		}
		if _, err := fw.Write(data); err != nil {
			return nil, fmt.Errorf("integrate: %s: %w", pf.path, err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("integrate: %s: %w", pf.path, err)
		}
		out, k = buf.Bytes(), KindCabinet
	}
	o, err := p.putFile(pf.path, out, k, why)
	if err != nil {
		return nil, err
	}
	if kind == KindText {
		o.diff = packedTextDiff(pf.path)
	}
	pf.data = data
	return o, nil
}

// packedTextDiff renders the change of a packed (or plain) INF as a
// unified diff of the INF itself.
func packedTextDiff(name string) func(orig, data []byte) (string, error) {
	return func(orig, data []byte) (string, error) {
		label := name
		var a []byte
		if orig != nil {
			pf, err := unpack(name, orig, packedINF)
			if err != nil {
				return "", err
			}
			a = pf.data
		}
		pf, err := unpack(name, data, packedINF)
		if err != nil {
			return "", err
		}
		if pf.isCab {
			label += ":" + pf.hdr.Name
		}
		ta, _ := ParseText(name, a, nil)
		tb, _ := ParseText(name, pf.data, nil)
		return Diff("a/"+label, "b/"+label, ta.Lines(), tb.Lines()), nil
	}
}

// setupFiles returns the tree paths, with their on-disk case, of a setup
// file stored packed (nettcpip.in_) and plain (nettcpip.inf) in the setup
// directory: packed first, either or both or none.
func (p *Plan) setupFiles(plain string) ([]string, error) {
	ents, err := p.Tree.FS.ReadDir(p.Tree.SetupDir)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	var out []string
	for _, want := range []string{packedName(plain), plain} {
		for _, e := range ents {
			if !e.IsDir() && strings.EqualFold(e.Name(), want) {
				out = append(out, p.Tree.SetupDir+"/"+e.Name())
				break
			}
		}
	}
	return out, nil
}

// record adds an edit of a packed file (applied by the caller) to
// p.Edits once; a repeat that changed the file marks the first changed.
func (p *Plan) record(e Edit) {
	k := e.String()
	if p.seen[k] {
		if e.Changed {
			for i := range p.Edits {
				if p.Edits[i].String() == k {
					p.Edits[i].Changed = true
				}
			}
		}
		return
	}
	p.seen[k] = true
	p.Edits = append(p.Edits, e)
}

// infNumber parses an INF number: decimal, or hexadecimal after 0x.
func infNumber(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		n, err := strconv.ParseUint(h, 16, 32)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return n, err == nil
}

// bootStart sets StartType = 0 (SERVICE_BOOT_START) in a service-install
// section of x, leaving a section already at 0 alone (however it writes
// the 0), and records the edit as an edit of file.
func (p *Plan) bootStart(x *Text, file, section, why string) {
	p.record(bootStartEdit(x, file, section, why))
}

// bootStartEdit is bootStart without recording the edit.
func bootStartEdit(x *Text, file, section, why string) Edit {
	e := Edit{File: file, Op: OpSet, Section: section, Key: "StartType", Value: "0", Why: why}
	if v, ok := x.Value(section, "StartType"); ok {
		if n, ok := infNumber(v); ok && n == 0 {
			return e
		}
	}
	e.Changed = e.Apply(x)
	return e
}

// serviceSection returns the name of the service-install section of
// service in an INF: the section IntegrateDrv names if it is there, else
// the one an AddService line for the service names.
func serviceSection(x *Text, known, service string) string {
	if x.HasSection(known) {
		return known
	}
	for _, s := range x.Sections() {
		for _, e := range x.Entries(s) {
			if strings.EqualFold(e.Key, "AddService") && len(e.Fields) > 2 &&
				strings.EqualFold(e.Fields[0], service) && x.HasSection(e.Fields[2]) {
				return e.Fields[2]
			}
		}
	}
	return ""
}

// packedTCPIP makes GUI-mode setup reinstall TCP/IP (and IPSec), and on
// XP the QoS packet scheduler and its classifier, as boot-start drivers
// (research §7.3): StartType = 0 in their service-install sections of
// nettcpip.inf, netgpc.inf and netpsa.inf, packed or plain. On 2003 and
// XP x64 the scheduler is left alone: there it breaks iSCSI boot.
func (p *Plan) packedTCPIP() error {
	t := p.Tree
	const why = "network adapter: TCP/IP boot start in GUI mode"
	type svc struct{ section, service string }
	type inf struct {
		name string
		svcs []svc
	}
	files := []inf{{"nettcpip.inf", []svc{{"Install.AddService.TCPIP", "Tcpip"}}}}
	if t.Minor != 0 {
		files[0].svcs = append(files[0].svcs, svc{"Install.AddService.IPSEC", "IPSec"})
	}
	if t.Minor == 1 {
		files = append(files,
			inf{"netgpc.inf", []svc{{"GPC.AddService", "Gpc"}}},
			inf{"netpsa.inf", []svc{{"PSchedMP.AddService", "PSched"}}})
	}
	for _, f := range files {
		names, err := p.setupFiles(f.name)
		if err != nil {
			return err
		}
		var svcNames []string
		for _, s := range f.svcs {
			svcNames = append(svcNames, s.service)
		}
		if len(names) == 0 {
			p.warn("%s is not in %s: GUI-mode setup will install %s with its own start type (skipped)",
				packedName(f.name), t.SetupDir, strings.Join(svcNames, " and "))
			continue
		}
		for _, name := range names {
			pf, err := p.openPacked(name, packedINF, "boot start of "+strings.Join(svcNames, " and "))
			if err != nil {
				return err
			}
			if pf == nil {
				continue
			}
			x, _ := ParseText(name, pf.data, nil)
			edited := false
			for _, s := range f.svcs {
				sec := serviceSection(x, s.section, s.service)
				if sec == "" {
					p.warn("%s: no [%s] nor an AddService for %s; %s keeps its start type in GUI mode", name, s.section, s.service, s.service)
					continue
				}
				p.bootStart(x, name, sec, why)
				edited = true
			}
			b, err := x.Bytes()
			if err != nil {
				return err
			}
			if _, err := p.putPacked(pf, b, KindText, why); err != nil {
				return err
			}
			if edited {
				p.warn("%s: boot-start edit voids the in-box catalog signature; %s", name, signingAdvice)
			}
		}
	}
	return nil
}

// packedDriverINFs plans the INF and file-protection patches of one
// package for GUI-mode setup (research §6.7, §6.8): the staged INF's
// services boot start, hal.inf deleting each network adapter's early
// NetCfgInstanceId (x86 XP and 2000), in-box INFs for the same devices
// disabled, and the driver files taken off sfcfiles.dll's list.
func (p *Plan) packedDriverINFs(pkg *drivers.Package, devs []*drivers.Device) error {
	if err := p.stagedBootStart(pkg, devs); err != nil {
		return err
	}
	if err := p.packedHAL(); err != nil {
		return err
	}
	if err := p.disableInBox(devs); err != nil {
		return err
	}
	var names []string
	seen := map[string]bool{}
	for _, d := range devs {
		for _, fc := range d.Files {
			n := strings.ToLower(winBase(fc.Dest))
			if n != "" && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return p.packedSfcFiles(names)
}

// addServices returns the AddService lines (service name, install
// section) of a DDInstall.Services section, following Needs= to
// sections of the same INF.
func addServices(f *drivers.INF, section string, seen map[string]bool) [][2]string {
	s := f.Section(section)
	if s == nil || seen[strings.ToLower(section)] {
		return nil
	}
	seen[strings.ToLower(section)] = true
	var out [][2]string
	for _, l := range s.Values("AddService") {
		if l.Field(0) != "" && l.Field(2) != "" {
			out = append(out, [2]string{l.Field(0), l.Field(2)})
		}
	}
	for _, l := range s.Values("Needs") {
		for _, n := range l.Fields {
			out = append(out, addServices(f, n, seen)...)
		}
	}
	return out
}

// stagedBootStart edits the staged copy of each INF of the package so
// that GUI-mode setup installs its services boot start: StartType = 0 in
// every service-install section its devices' AddService lines name,
// unless the package already says 0 (research §6.8). Any such edit voids
// the package's catalog signature, which is warned about.
func (p *Plan) stagedBootStart(pkg *drivers.Package, devs []*drivers.Device) error {
	var infs []string
	byINF := map[string][]*drivers.Device{}
	for _, d := range devs {
		if _, ok := byINF[d.INF]; !ok {
			infs = append(infs, d.INF)
		}
		byINF[d.INF] = append(byINF[d.INF], d)
	}
	for _, inf := range infs {
		var parsed *drivers.INF
		for _, f := range pkg.INFs {
			if f.Name == inf {
				parsed = f
			}
		}
		if parsed == nil {
			continue
		}
		staged := p.stagingDir(inf) + "/" + strings.ToLower(winBase(inf))
		cur, ok, err := p.current(staged)
		if err != nil {
			return err
		}
		if !ok {
			// Not copied into the staging tree (yet): start from the
			// package's INF.
			if cur, err = os.ReadFile(filepath.Join(pkg.Dir, filepath.FromSlash(inf))); err != nil {
				return fmt.Errorf("integrate: %w", err)
			}
		}
		x, _ := ParseText(staged, cur, nil)
		why := "boot start in GUI mode: " + inf
		var changed []string
		var edits []Edit
		done := map[string]bool{}
		for _, d := range byINF[inf] {
			for _, as := range addServices(parsed, d.InstallSection+".Services", map[string]bool{}) {
				name, sec := as[0], as[1]
				if done[strings.ToLower(sec)] {
					continue
				}
				done[strings.ToLower(sec)] = true
				var svc *drivers.Service
				for i := range d.Services {
					if strings.EqualFold(d.Services[i].Name, name) {
						svc = &d.Services[i]
					}
				}
				if svc != nil && svc.StartType == 0 {
					continue // already boot start: keep the INF (and its signature) intact
				}
				if !x.HasSection(sec) {
					p.warn("%s: service %s's install section [%s] is not in the INF itself; it keeps its start type in GUI mode", inf, name, sec)
					continue
				}
				edits = append(edits, bootStartEdit(x, staged, sec, why))
				changed = append(changed, "["+sec+"]")
			}
		}
		if len(changed) == 0 {
			continue
		}
		b, err := x.Bytes()
		if err != nil {
			return err
		}
		if !bytes.Equal(b, cur) {
			o, err := p.putFile(staged, b, KindText, why)
			if err != nil {
				return err
			}
			if o.exists {
				// A new staged copy is listed as a new file; an
				// existing one gets the INF's diff.
				o.diff = packedTextDiff(staged)
			}
			if !o.changed() {
				// The copy step put the package's INF over a staged copy
				// a previous run had already edited: the tree keeps it.
				for i := range edits {
					edits[i].Changed = false
				}
			}
		}
		for _, e := range edits {
			p.record(e)
		}
		cat := "its catalog"
		if c := byINF[inf][0].CatalogFile; c != "" {
			cat = c
		}
		p.warn("%s: StartType = 0 in %s of the staged copy voids the signature of %s; %s",
			inf, strings.Join(changed, ", "), cat, signingAdvice)
	}
	return nil
}

// packedHAL adds to hal.inf's [ClassInstall32], which GUI-mode setup runs
// once at its start, a DelReg of each network adapter's NetCfgInstanceId
// value: on x86 XP and 2000 its presence hangs GUI-mode setup after the
// adapter is installed (research §6.4, §6.8). The NetCfgInstanceId under
// Linkage, which Windows uses, stays.
func (p *Plan) packedHAL() error {
	t := p.Tree
	if len(p.nics) == 0 || t.Arch != "x86" || t.Minor > 1 {
		return nil
	}
	const why = "network adapter: NetCfgInstanceId deleted at the start of GUI mode"
	names, err := p.setupFiles("hal.inf")
	if err != nil {
		return err
	}
	if len(names) == 0 {
		p.warn("hal.in_ is not in %s: the network adapter's NetCfgInstanceId is not deleted at the start of GUI mode, which may then hang (skipped)", t.SetupDir)
		return nil
	}
	const delReg = "NetCfgInstanceId.DelReg"
	for _, name := range names {
		pf, err := p.openPacked(name, packedINF, "NetCfgInstanceId deletion")
		if err != nil {
			return err
		}
		if pf == nil {
			continue
		}
		x, _ := ParseText(name, pf.data, nil)
		// setupapi runs the most specific decoration present.
		sec := ""
		for _, s := range []string{"ClassInstall32.NTx86", "ClassInstall32.NT", "ClassInstall32"} {
			if x.HasSection(s) {
				sec = s
				break
			}
		}
		if sec == "" {
			p.warn("%s: no [ClassInstall32] section; the network adapter's NetCfgInstanceId is not deleted at the start of GUI mode", name)
			continue
		}
		e := Edit{File: name, Op: OpAdd, Section: sec, Value: "DelReg = " + delReg, Why: why}
		e.Changed = e.Apply(x)
		p.record(e)
		for _, n := range p.nics {
			e := Edit{File: name, Op: OpAdd, Section: delReg,
				Value: `HKLM,"SYSTEM\CurrentControlSet\` + n.classKey + `","NetCfgInstanceId"`, Why: why}
			e.Changed = e.Apply(x)
			p.record(e)
		}
		b, err := x.Bytes()
		if err != nil {
			return err
		}
		if _, err := p.putPacked(pf, b, KindText, why); err != nil {
			return err
		}
		p.warn("%s: the DelReg voids the in-box catalog signature; %s", name, signingAdvice)
	}
	return nil
}

// genericID returns a device ID without its &SUBSYS_, &REV_ and &CC_
// parts, upper case (PCI\VEN_8086&DEV_100E), or "" for IDs that name no
// particular device (ROOT\…, PCI\CC_…, *PNP…): only those would disable
// a whole class of in-box drivers.
func genericID(id string) string {
	u := strings.ToUpper(strings.TrimSpace(id))
	if strings.HasPrefix(u, `ROOT\`) {
		return ""
	}
	for _, cut := range []string{"&SUBSYS_", "&REV_", "&CC_"} {
		if i := strings.Index(u, cut); i >= 0 {
			u = u[:i]
		}
	}
	if !strings.Contains(u, `\`) || !strings.Contains(u, "&") {
		return ""
	}
	return u
}

// asciiLower lower-cases ASCII letters of b (also in UTF-16LE text).
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// utf16le encodes an ASCII string as UTF-16LE.
func utf16leASCII(s string) []byte {
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i], 0)
	}
	return out
}

// mentions reports whether b holds any of the IDs (ANSI or UTF-16LE),
// a cheap test before parsing an INF.
func mentions(b []byte, ids map[string]string) bool {
	low := asciiLower(b)
	for id := range ids {
		l := strings.ToLower(id)
		if bytes.Contains(low, []byte(l)) || bytes.Contains(low, utf16leASCII(l)) {
			return true
		}
	}
	return false
}

// commentLine makes line i of t a comment by putting ';' in front of it
// (in front of each physical line of a continued entry, or the rest would
// come back as entries); its original bytes follow unchanged.
func (t *Text) commentLine(i int) error {
	l := t.lines[i]
	if l.raw != nil {
		semi, err := t.encode(";")
		if err != nil {
			return err
		}
		nl, err := t.encode("\n")
		if err != nil {
			return err
		}
		var out []byte
		start := 0
		for j := 0; j+len(nl) <= len(l.raw); j += len(nl) {
			if bytes.Equal(l.raw[j:j+len(nl)], nl) {
				out = append(append(out, semi...), l.raw[start:j+len(nl)]...)
				start = j + len(nl)
			}
		}
		if start < len(l.raw) {
			out = append(append(out, semi...), l.raw[start:]...)
		}
		l.raw = out
	}
	parts := strings.SplitAfter(l.text, "\n")
	for k := range parts {
		if parts[k] != "" {
			parts[k] = ";" + parts[k]
		}
	}
	l.text = strings.Join(parts, "")
	l.classify()
	return nil
}

// disableInBox comments out, in every INF of the setup directory (packed
// *.in_ or plain *.inf), the model lines that name one of the integrated
// devices, compared without &SUBSYS_/&REV_: GUI-mode setup ranks a
// signed in-box driver above the integrated one even when the latter
// matches the subsystem too (research §6.7). Every such line is an edit
// and a warning.
func (p *Plan) disableInBox(devs []*drivers.Device) error {
	ids := map[string]string{} // generic ID → INF of the integrated device
	for _, d := range devs {
		for _, id := range append([]string{d.HardwareID}, d.CompatibleIDs...) {
			if g := genericID(id); g != "" {
				if _, ok := ids[g]; !ok {
					ids[g] = d.INF
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ents, err := p.Tree.FS.ReadDir(p.Tree.SetupDir)
	if err != nil {
		return fmt.Errorf("integrate: %w", err)
	}
	for _, ent := range ents {
		low := strings.ToLower(ent.Name())
		if ent.IsDir() || (!strings.HasSuffix(low, ".in_") && !strings.HasSuffix(low, ".inf")) {
			continue
		}
		name := p.Tree.SetupDir + "/" + ent.Name()
		own := false
		for _, f := range p.files {
			own = own || strings.EqualFold(f.path, name)
		}
		if own {
			continue // dosnet.inf, the hive INFs: edited as text files
		}
		b, ok, err := p.current(name)
		if err != nil {
			return err
		}
		if !ok || (!bytes.HasPrefix(b, []byte("MSCF")) && !mentions(b, ids)) {
			continue
		}
		pf, err := p.openPacked(name, packedINF, "search for in-box drivers of the integrated devices")
		if err != nil {
			return err
		}
		if pf == nil || (pf.isCab && !strings.HasSuffix(strings.ToLower(pf.hdr.Name), ".inf")) || !mentions(pf.data, ids) {
			continue // netmon.in_ holds netmon.ini, not an INF
		}
		x, _ := ParseText(name, pf.data, nil)
		var found []string
		for _, sec := range modelSections(x) {
			for _, i := range x.sectionLines(sec) {
				l := x.lines[i]
				if l.kind != kindEntry || l.key == "" || len(l.fields) < 2 {
					continue
				}
				id := ""
				for _, f := range l.fields[1:] {
					if _, ok := ids[genericID(f)]; ok {
						id = f
						break
					}
				}
				if id == "" {
					continue
				}
				e := Edit{File: name, Op: OpComment, Section: sec, Value: strings.TrimSpace(l.text),
					Why: "in-box driver for " + genericID(id) + " disabled so GUI-mode setup picks " + ids[genericID(id)], Changed: true}
				if err := x.commentLine(i); err != nil {
					return err
				}
				p.record(e)
				found = append(found, genericID(id))
			}
		}
		if len(found) == 0 {
			continue
		}
		b, err = x.Bytes()
		if err != nil {
			return err
		}
		if _, err := p.putPacked(pf, b, KindText, "in-box drivers of "+strings.Join(dedupe(found), ", ")+" disabled"); err != nil {
			return err
		}
		p.warn("%s: in-box model lines for %s commented out so that GUI-mode setup installs the integrated driver; this voids the in-box catalog signature; %s",
			name, strings.Join(dedupe(found), ", "), signingAdvice)
	}
	return nil
}

func dedupe(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[strings.ToLower(s)] {
			seen[strings.ToLower(s)] = true
			out = append(out, s)
		}
	}
	return out
}

// modelSections lists the models sections [Manufacturer] names, with
// every decoration it lists, that exist in x.
func modelSections(x *Text) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[strings.ToLower(s)] && x.HasSection(s) {
			seen[strings.ToLower(s)] = true
			out = append(out, s)
		}
	}
	for _, e := range x.Entries("Manufacturer") {
		if e.Key == "" || len(e.Fields) == 0 {
			continue
		}
		add(e.Fields[0])
		for _, dec := range e.Fields[1:] {
			if dec != "" {
				add(e.Fields[0] + "." + dec)
			}
		}
	}
	return out
}

// sfcPrefix is how sfcfiles.dll lists a protected driver, in UTF-16LE,
// lower case.
const sfcPrefix = `%systemroot%\system32\drivers\`

// packedSfcFiles takes the driver files off the Windows File Protection
// list in sfcfiles.dll, so that sfc at the end of GUI-mode setup does not
// put the in-box version back: the list entry's last character becomes
// '0' (e1000325.sys → e1000325.sy0) in every PE section holding it, and
// the PE checksum is recomputed (research §6.7). Files not on the list
// are left alone; a missing sfcfiles.dl_ is warned about.
func (p *Plan) packedSfcFiles(files []string) error {
	if len(files) == 0 {
		return nil
	}
	names, err := p.setupFiles("sfcfiles.dll")
	if err != nil {
		return err
	}
	if len(names) == 0 {
		p.warn("sfcfiles.dl_ is not in %s: Windows File Protection may restore in-box versions of integrated driver files (skipped)", p.Tree.SetupDir)
		return nil
	}
	for _, name := range names {
		pf, err := p.openPacked(name, packedPE, "Windows File Protection list edit")
		if err != nil {
			return err
		}
		if pf == nil {
			continue
		}
		data := append([]byte(nil), pf.data...)
		f, err := pe.NewFile(bytes.NewReader(data))
		if err != nil {
			p.warn("%s: not a PE image (%v); Windows File Protection list left alone", name, err)
			continue
		}
		var patched []string
		for _, s := range f.Sections {
			start, end := int64(s.Offset), int64(s.Offset)+int64(s.Size)
			if s.Size == 0 || start >= int64(len(data)) {
				continue
			}
			end = min(end, int64(len(data)))
			for _, n := range files {
				if patchUTF16(data[start:end], sfcPrefix+n) {
					patched = append(patched, n)
				}
			}
		}
		f.Close()
		if len(patched) == 0 {
			continue
		}
		setPEChecksum(data)
		why := "Windows File Protection list: " + strings.Join(dedupe(patched), ", ") + " taken off"
		o, err := p.putPacked(pf, data, KindBinary, why)
		if err != nil {
			return err
		}
		if o != nil && !strings.Contains(o.why, why) && o.why != why {
			o.why += "; " + why
		}
	}
	return nil
}

// patchUTF16 finds every NUL-terminated UTF-16LE occurrence of s
// (ASCII, compared case-insensitively) in b and replaces its last
// character with '0'. It reports whether it changed b.
func patchUTF16(b []byte, s string) bool {
	want := utf16leASCII(strings.ToLower(s))
	changed := false
	low := asciiLower(b)
	for off := 0; ; {
		i := bytes.Index(low[off:], want)
		if i < 0 {
			return changed
		}
		at := off + i
		end := at + len(want)
		if end+2 <= len(b) && b[end] == 0 && b[end+1] == 0 {
			b[end-2], b[end-1] = '0', 0
			low[end-2] = '0'
			changed = true
		}
		off = at + 1
	}
}

// packedName returns the packed form of a setup file name (x.inf → x.in_).
func packedName(name string) string {
	ext := path.Ext(name)
	if len(ext) < 2 {
		return name
	}
	return name[:len(name)-1] + "_"
}
