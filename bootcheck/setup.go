package bootcheck

import (
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// checkSetup checks a staged or integrated setup tree: the drivers of
// txtsetup.sif's *.Load sections are what setupldr loads; setupreg.hiv,
// the registry text-mode setup boots with, orders them and holds the
// adapter's class instance and TCP/IP interface.
func checkSetup(fsys imagefs.FS, t *integrate.Tree, opts Options) (*Report, error) {
	b, err := imagefs.ReadFile(fsys, t.TxtSetup)
	if err != nil {
		return nil, fmt.Errorf("bootcheck: %s: %w", t.TxtSetup, err)
	}
	sif, err := integrate.ParseText(t.TxtSetup, b, nil)
	if err != nil {
		return nil, fmt.Errorf("bootcheck: %w", err)
	}
	r, err := openReg(fsys, t.SetupReg)
	if err != nil {
		return nil, err
	}
	cs, err := r.currentSet(false)
	if err != nil {
		return nil, err
	}
	// The directories setupldr loads from: the boot directory of a local
	// source first, then the architecture directory (media, or files a
	// local source's boot directory lacks), each file plain or
	// compressed (X.SY_).
	dirs := []string{t.SetupDir}
	if t.Layout == integrate.LocalSource && t.BootDir != "" {
		dirs = []string{t.BootDir, t.SetupDir}
	}
	files := map[string]string{} // lower service → file
	for _, sec := range sif.Sections() {
		if !strings.HasSuffix(strings.ToLower(sec), ".load") {
			continue
		}
		for _, e := range sif.Entries(sec) {
			if e.Key == "" || len(e.Fields) == 0 || e.Fields[0] == "" {
				continue
			}
			if _, ok := files[strings.ToLower(e.Key)]; !ok {
				files[strings.ToLower(e.Key)] = e.Fields[0]
			}
		}
	}
	svcs := r.services(cs)
	// A loaded driver without a service key in setupreg.hiv still loads
	// (text mode creates its key); it has no group to order it by.
	for k := range files {
		if svcs[k] == nil {
			svcs[k] = &service{name: k, hasStart: true}
			r.syntheticOrder = append(r.syntheticOrder, k)
		}
	}
	rep := &Report{Kind: KindSetup, Hive: t.SetupReg, ControlSet: cs, Drivers: []Driver{}, NICs: []NIC{}, Findings: []Finding{}}
	hwdb := map[string]string{}
	for _, e := range sif.Entries("HardwareIdsDatabase") {
		if e.Key != "" && len(e.Fields) > 0 {
			hwdb[strings.ReplaceAll(strings.ToLower(e.Key), `\`, "#")] = e.Fields[0]
		}
	}
	sys := &system{r: r, cs: cs, svcs: svcs, hwdb: hwdb, hwdbFile: t.TxtSetup,
		isBoot: func(s *service) bool { _, ok := files[strings.ToLower(s.name)]; return ok },
		image: func(s *service) (string, bool) {
			f := files[strings.ToLower(s.name)]
			for _, d := range dirs {
				p := d + "/" + f
				if exists(fsys, p) {
					return p, true
				}
				if c := p[:len(p)-1] + "_"; exists(fsys, c) {
					return c, true
				}
			}
			return dirs[0] + "/" + f, false
		}}
	sys.run(rep, opts)
	// Drivers without a setupreg.hiv key are loaded but unordered: not a
	// finding of their own in text mode.
	kept := rep.Findings[:0]
	for _, f := range rep.Findings {
		if f.Code == "ungrouped" {
			name := f.Where[strings.LastIndex(f.Where, `\`)+1:]
			if hasFold(r.syntheticOrder, name) {
				continue
			}
		}
		kept = append(kept, f)
	}
	rep.Findings = kept
	if rep.NICs == nil {
		rep.NICs = []NIC{}
	}
	return rep, nil
}
