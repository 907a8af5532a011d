package drivers

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// maxPackageFiles bounds the directory walk of OpenPackage.
const maxPackageFiles = 20000

// A Package is a driver directory: its INFs, its txtsetup.oem and an
// index of its files.
type Package struct {
	Dir      string
	INFs     []*INF       // every *.inf of the top directory, sorted by name
	TxtSetup *TxtSetupOEM // txtsetup.oem of the top directory, or nil
	// System lists INFs of the target system (machine.inf, … unpacked
	// from the setup tree) that Include= directives may name besides the
	// package's own. Set it before Resolve.
	System []*INF
	files  map[string]string
}

// OpenPackage reads the driver directory dir: *.inf and txtsetup.oem are
// found case-insensitively in its top directory; the files of every
// subdirectory are indexed for Resolve. Every file a txtsetup.oem names
// must exist.
func OpenPackage(dir string) (*Package, error) {
	p := &Package{Dir: dir, files: map[string]string{}}
	err := filepath.WalkDir(dir, func(pth string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			// A symbolic link counts when it leads to a regular file.
			if fi, err := os.Stat(pth); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		}
		if len(p.files) >= maxPackageFiles {
			return fmt.Errorf("%s: more than %d files", dir, maxPackageFiles)
		}
		rel, err := filepath.Rel(dir, pth)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		p.files[strings.ToLower(rel)] = rel
		return nil
	})
	if err != nil {
		return nil, err
	}
	var top []string
	for low, rel := range p.files {
		if !strings.Contains(low, "/") {
			top = append(top, rel)
		}
	}
	sort.Strings(top)
	for _, rel := range top {
		low := strings.ToLower(rel)
		switch {
		case strings.HasSuffix(low, ".inf"):
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				return nil, err
			}
			f, err := ParseINF(rel, data)
			if err != nil {
				return nil, err
			}
			p.INFs = append(p.INFs, f)
		case low == "txtsetup.oem":
			data, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				return nil, err
			}
			o, err := ParseTxtSetupOEM(rel, data)
			if err != nil {
				return nil, err
			}
			for _, opt := range o.Options {
				for i, f := range opt.Files {
					real, ok := p.Lookup(f.Source)
					if !ok {
						return nil, errorf(rel, f.Line, "file %s (%s) is not in the package", f.Name, f.Source)
					}
					opt.Files[i].Source = real
				}
			}
			p.TxtSetup = o
		}
	}
	if len(p.INFs) == 0 && p.TxtSetup == nil {
		return nil, fmt.Errorf("%s: no *.inf and no txtsetup.oem", dir)
	}
	return p, nil
}

// Lookup finds a slash-separated path in the package case-insensitively
// and returns it with the case it has on disk.
func (p *Package) Lookup(rel string) (string, bool) {
	rel = path.Clean(strings.ReplaceAll(rel, `\`, "/"))
	real, ok := p.files[strings.ToLower(rel)]
	return real, ok
}

// Resolve resolves every INF of the package for t (see INF.Resolve),
// Include= directives finding the package's other INFs, and checks that
// every file to copy is in the package (Source then has its on-disk case).
func (p *Package) Resolve(t Target) ([]*Device, error) {
	r := &resolver{t: t, infs: map[string]*INF{}}
	for _, f := range append(append([]*INF{}, p.System...), p.INFs...) {
		r.infs[strings.ToLower(path.Base(strings.ReplaceAll(f.Name, `\`, "/")))] = f
	}
	var out []*Device
	for _, f := range p.INFs {
		devs, err := r.resolveINF(f)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			for i, fc := range d.Files {
				real, ok := p.Lookup(fc.Source)
				if !ok {
					return nil, errorf(fc.INF, fc.Line, "file %s (%s) is not in the package", path.Base(fc.Source), fc.Source)
				}
				d.Files[i].Source = real
			}
		}
		out = append(out, devs...)
	}
	return out, nil
}
