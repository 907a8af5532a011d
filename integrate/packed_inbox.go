package integrate

import (
	"bytes"
	"debug/pe"
	"fmt"
	"path"
	"strings"

	"github.com/xpboot/xpboot/drivers"
)

// disableInBox comments out, in every INF of the setup directory (packed
// *.in_ or plain *.inf), the model lines that name one of the integrated
// devices, compared without &SUBSYS_/&REV_: GUI-mode setup ranks a
// signed in-box driver above the integrated one even when the latter
// matches the subsystem too (research §6.7). Every such line is an edit
// and a warning.
func (p *infPlanner) disableInBox(devs []*drivers.Device) error {
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
	ents, err := p.tree.FS.ReadDir(p.tree.SetupDir)
	if err != nil {
		return fmt.Errorf("integrate: %w", err)
	}
	for _, ent := range ents {
		low := strings.ToLower(ent.Name())
		if ent.IsDir() || (!strings.HasSuffix(low, ".in_") && !strings.HasSuffix(low, ".inf")) {
			continue
		}
		name := p.tree.SetupDir + "/" + ent.Name()
		own := false
		for _, f := range p.texts.files {
			own = own || strings.EqualFold(f.path, name)
		}
		if own {
			continue // dosnet.inf, the hive INFs: edited as text files
		}
		b, ok, err := p.copies.current(name)
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
func (p *infPlanner) packedSfcFiles(files []string) error {
	if len(files) == 0 {
		return nil
	}
	names, err := p.setupFiles("sfcfiles.dll")
	if err != nil {
		return err
	}
	if len(names) == 0 {
		p.warn("sfcfiles.dl_ is not in %s: Windows File Protection may restore in-box versions of integrated driver files (skipped)", p.tree.SetupDir)
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
