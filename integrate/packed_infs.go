package integrate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xpboot/xpboot/drivers"
)

// packedTCPIP makes GUI-mode setup reinstall TCP/IP (and IPSec), and on
// XP the QoS packet scheduler and its classifier, as boot-start drivers
// (research §7.3): StartType = 0 in their service-install sections of
// nettcpip.inf, netgpc.inf and netpsa.inf, packed or plain. On 2003 and
// XP x64 the scheduler is left alone: there it breaks iSCSI boot.
func (p *infPlanner) packedTCPIP() error {
	t := p.tree
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
func (p *infPlanner) packedDriverINFs(pkg *drivers.Package, devs []*drivers.Device) error {
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
func (p *infPlanner) stagedBootStart(pkg *drivers.Package, devs []*drivers.Device) error {
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
		cur, ok, err := p.copies.current(staged)
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
			o, err := p.copies.putFile(staged, b, KindText, why)
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
func (p *infPlanner) packedHAL() error {
	t := p.tree
	if len(p.hives.nics) == 0 || t.Arch != "x86" || t.Minor > 1 {
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
		for _, n := range p.hives.nics {
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
