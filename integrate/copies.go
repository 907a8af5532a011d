package integrate

import (
	"crypto/sha256"
	"fmt"
	"path"
	"strings"

	"github.com/xpboot/xpboot/drivers"
)

// A driverOut is one whole file a driver package puts into the tree.
type driverOut struct {
	path string
	data []byte
	why  string
}

// stagedFile is one file of the GUI-mode staging tree: rel is its path in
// the package (relative to the INF's directory, the package's top).
type stagedFile struct{ inf, rel string }

// stagedFiles lists the files stage() gives [SourceDisksFiles] lines, in
// its order and with its deduplication: per INF the INF itself, its
// catalog when the package has it, and every file its devices copy.
func stagedFiles(pkg *drivers.Package, devs []*drivers.Device) []stagedFile {
	var out []stagedFile
	add := func(inf, rel string) {
		for _, s := range out {
			if s.inf == inf && strings.EqualFold(s.rel, rel) {
				return
			}
		}
		out = append(out, stagedFile{inf, rel})
	}
	for _, d := range devs {
		add(d.INF, d.INF)
		if d.CatalogFile != "" {
			if src, ok := pkg.Lookup(d.CatalogFile); ok {
				add(d.INF, src)
			}
		}
		for _, fc := range d.Files {
			add(d.INF, fc.Source)
		}
	}
	return out
}

// driverOutputs returns every whole file the package puts into the tree,
// reading the package, and refuses one whose name another driver of the
// plan already fills with other contents:
//
//   - each text-mode file in the setup directory under its text-mode name
//     (patched service images included), and in a local-source tree each
//     driver also in the boot directory, which text mode loads them from
//     (on media dosnet.inf [FloppyFiles.1] has winnt32 copy them);
//   - the unpatched original of a patched image under its own name;
//   - the staging tree <setup>/scsidrv/<inf>/<path in package, lower
//     case> that GUI-mode setup installs the devices from.
func (p *copyPlanner) driverOutputs(pkg *drivers.Package, devs []*drivers.Device, tfs []*textFile) ([]driverOut, error) {
	t := p.tree
	var outs []driverOut
	for _, f := range tfs {
		why := "text-mode copy of " + f.orig
		switch {
		case f.patched != nil:
			why = fmt.Sprintf("service %s: %s with its imports renamed, for text mode only", f.service.Name, f.orig)
		case f.service != nil:
			why = fmt.Sprintf("service %s: image %s under the name text mode loads", f.service.Name, f.orig)
		case !strings.EqualFold(f.name, f.orig):
			why = fmt.Sprintf("%s renamed: its name is a service's text-mode name", f.orig)
		}
		outs = append(outs, driverOut{t.SetupDir + "/" + f.name, f.content(), why})
		if t.Layout == LocalSource && f.dirID == "4" {
			outs = append(outs, driverOut{t.BootDir + "/" + f.name, f.content(), why + " (boot directory)"})
		}
		if f.patched != nil {
			outs = append(outs, driverOut{t.SetupDir + "/" + f.orig, f.data,
				fmt.Sprintf("service %s: unpatched %s for the installed system", f.service.Name, f.orig)})
		}
	}
	for _, s := range stagedFiles(pkg, devs) {
		b, err := readPackageFile(pkg, s.rel)
		if err != nil {
			return nil, err
		}
		outs = append(outs, driverOut{p.stagingDir(s.inf) + "/" + strings.ToLower(s.rel), b, "staged for GUI-mode setup (" + s.inf + ")"})
	}
	mine := map[string][32]byte{}
	for _, o := range outs {
		k := strings.ToLower(o.path)
		sum := sha256.Sum256(o.data)
		if prev, ok := mine[k]; ok && prev != sum {
			return nil, fmt.Errorf("integrate: %s: two different files want %s", pkg.Dir, o.path)
		}
		mine[k] = sum
		if prev, ok := p.driverFiles[k]; ok && prev != sum {
			return nil, fmt.Errorf("integrate: %s: %s is already planned with other contents by an earlier driver (two drivers with one service or INF name?)", pkg.Dir, o.path)
		}
	}
	return outs, nil
}

// copyDriverFiles plans the driver file copies of one package (see
// driverOutputs). In a local-source tree it also removes the boot
// directory's migrate.inf, as IntegrateDrv does on every run (research
// §2 step 9): it carries the drive letters of the system winnt32 ran on,
// which would move the new system off C:.
func (p *copyPlanner) copyDriverFiles(pkg *drivers.Package, devs []*drivers.Device, tfs []*textFile) error {
	t := p.tree
	outs, err := p.driverOutputs(pkg, devs, tfs)
	if err != nil {
		return err
	}
	if p.driverFiles == nil {
		p.driverFiles = map[string][32]byte{}
	}
	for _, o := range outs {
		if _, err := p.putFile(o.path, o.data, KindBinary, o.why); err != nil {
			return err
		}
		p.driverFiles[strings.ToLower(o.path)] = sha256.Sum256(o.data)
	}
	for _, f := range tfs {
		// An in-box driver of the same name is shadowed: text mode takes
		// the uncompressed file first.
		if n := f.name; len(n) > 4 {
			packed := n[:len(n)-1] + "_"
			if _, ok, err := p.readOptional(t.SetupDir + "/" + packed); err == nil && ok {
				p.warn("%s/%s replaces Windows' own %s in text mode", t.SetupDir, f.name, packed)
			}
		}
	}
	if t.Layout == LocalSource {
		return p.removeFile(path.Join(t.BootDir, "migrate.inf"),
			"holds the drive letters of the system winnt32 ran on; without it the new system is C:")
	}
	return nil
}
