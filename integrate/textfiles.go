package integrate

import (
	"bytes"
	"debug/pe"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/xpboot/xpboot/drivers"
)

// textFile is a file that text-mode setup loads or copies from the setup
// directory root (disk 1).
type textFile struct {
	name    string // name in the setup directory (the service name for images)
	orig    string // file name in the package / on the installed system
	source  string // slash path of the file in the package
	dirID   string // WinntDirectories id of the destination: 4 drivers, 2 system32
	service *drivers.Service
	dev     *drivers.Device
	data    []byte // the file's content in the package
	// patched is set for a service image whose import of a renamed
	// dependency was rewritten (research §6.5): text mode loads this
	// content under name and never copies it; the unpatched data goes
	// into the setup directory under orig, for the installed system.
	patched []byte
}

// content is what the setup directory holds under f.name.
func (f *textFile) content() []byte {
	if f.patched != nil {
		return f.patched
	}
	return f.data
}

// checkPackagePath refuses a package-relative path that is absolute,
// leaves the package (..) or is not clean: drivers.Package refuses them
// already, this guards the joins made here.
func checkPackagePath(rel string) error {
	if rel == "" || strings.ContainsAny(rel, `\:`) || path.IsAbs(rel) || path.Clean(rel) != rel {
		return fmt.Errorf("integrate: driver file path %q is not a clean path inside the package", rel)
	}
	for _, el := range strings.Split(rel, "/") {
		if el == ".." || el == "." {
			return fmt.Errorf("integrate: driver file path %q leaves the package", rel)
		}
	}
	return nil
}

// checkFileName refuses a destination file name that is not a plain name.
func checkFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `\/:`) {
		return fmt.Errorf("integrate: driver file name %q is not a plain file name", name)
	}
	return nil
}

// readPackageFile reads the package file at the slash path rel.
func readPackageFile(pkg *drivers.Package, rel string) ([]byte, error) {
	if err := checkPackagePath(rel); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(pkg.Dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("integrate: driver package %s: %w", pkg.Dir, err)
	}
	return b, nil
}

// textFiles gathers the files text-mode setup must copy or load for the
// package's devices and checks them: every binary is of the tree's
// architecture, every service image is among the copied files.
//
// Text mode initialises Services\<file base name>, so a service image is
// put into the setup directory as <service>.sys (research §6.5). A
// dependency that already has that name (MS iSCSI: service iScsiPrt with
// image msiscsi.sys importing iscsiprt.sys) is renamed to <service minus
// two characters>_o.sys, a name of the same length, and every service
// image importing it is patched to import the new name; the patched
// image is loaded in text mode only and the original goes in under its
// own name for the installed system.
//
// It also reads every file the plan will write for the package (the
// staging tree included), so that nothing is planned for a package one
// of whose files is unreadable or clashes with another driver's.
func (p *copyPlanner) textFiles(pkg *drivers.Package, devs []*drivers.Device) ([]*textFile, error) {
	t := p.tree
	want := map[string]uint16{"x86": pe.IMAGE_FILE_MACHINE_I386, "amd64": pe.IMAGE_FILE_MACHINE_AMD64}[t.Arch]
	names := map[uint16]string{pe.IMAGE_FILE_MACHINE_I386: "x86", pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_IA64: "ia64"}

	// The candidates: service images first, then the other files, each
	// file once (by its name on the installed system, or per service
	// for images).
	var images, others []*textFile
	seen := map[string]*textFile{}
	for _, d := range devs {
		imageOf := map[string]*drivers.Service{}
		for i := range d.Services {
			s := &d.Services[i]
			if s.ServiceBinary != "" {
				imageOf[strings.ToLower(winBase(s.ServiceBinary))] = s
			}
		}
		for _, fc := range d.Files {
			base := winBase(fc.Dest)
			if err := checkFileName(base); err != nil {
				return nil, fmt.Errorf("%w (%s line %d)", err, fc.INF, fc.Line)
			}
			if err := checkPackagePath(fc.Source); err != nil {
				return nil, fmt.Errorf("%w (%s line %d)", err, fc.INF, fc.Line)
			}
			lower := strings.ToLower(base)
			dir := strings.ToLower(winDir(fc.Dest))
			var dirID string
			switch {
			case strings.HasSuffix(lower, ".sys") && dir == `system32\drivers`:
				dirID = "4"
			case strings.HasSuffix(lower, ".dll") && dir == "system32":
				dirID = "2"
			default:
				continue
			}
			b, err := readPackageFile(pkg, fc.Source)
			if err != nil {
				return nil, err
			}
			if m := peMachine(b); m != 0 && m != want {
				arch := names[m]
				if arch == "" {
					arch = fmt.Sprintf("machine 0x%x", m)
				}
				return nil, fmt.Errorf("%w: %s is %s, the setup tree is %s", ErrArch, path.Join(pkg.Dir, fc.Source), arch, t.Arch)
			}
			f := &textFile{name: base, orig: base, source: fc.Source, dirID: dirID, dev: d, data: b}
			key := dirID + "|" + lower
			if s := imageOf[lower]; s != nil && dirID == "4" {
				f.service, f.name = s, s.Name+".sys" // text mode loads Services\<file base name>
				key = "svc|" + strings.ToLower(s.Name)
			}
			if o := seen[key]; o != nil {
				if !bytes.Equal(o.data, f.data) {
					return nil, fmt.Errorf("integrate: %s: %s and %s both install %s, with different contents", pkg.Dir, o.source, f.source, base)
				}
				continue
			}
			seen[key] = f
			if f.service != nil {
				images = append(images, f)
			} else {
				others = append(others, f)
			}
		}
	}

	var tfs []*textFile
	byName := map[string]*textFile{}
	for _, f := range images {
		if o := byName[strings.ToLower(f.name)]; o != nil {
			return nil, fmt.Errorf("integrate: %s: services %s and %s both want the text-mode name %s", pkg.Dir, o.service.Name, f.service.Name, f.name)
		}
		byName[strings.ToLower(f.name)] = f
		tfs = append(tfs, f)
	}
	type rename struct {
		f        *textFile
		old, new string
	}
	var renames []rename
	for _, f := range others {
		// The same file as a service image: the image's line installs it.
		dup := false
		for _, im := range images {
			if strings.EqualFold(im.orig, f.orig) {
				if !bytes.Equal(im.data, f.data) {
					return nil, fmt.Errorf("integrate: %s: %s and %s both install %s, with different contents", pkg.Dir, im.source, f.source, f.orig)
				}
				dup = true
			}
		}
		if dup {
			continue
		}
		o := byName[strings.ToLower(f.name)]
		if o != nil {
			if o.service == nil || f.dirID != "4" {
				return nil, fmt.Errorf("integrate: %s: %s and %s both want the text-mode name %s", pkg.Dir, o.source, f.source, f.name)
			}
			svc := o.service.Name
			if len(svc) < 3 {
				return nil, fmt.Errorf("integrate: %s: %s has the text-mode name of service %s, too short a name to rename it", pkg.Dir, f.orig, svc)
			}
			f.name = svc[:len(svc)-2] + "_o.sys"
			if o2 := byName[strings.ToLower(f.name)]; o2 != nil {
				return nil, fmt.Errorf("integrate: %s: %s has the text-mode name of service %s and its new name %s is taken by %s", pkg.Dir, f.orig, svc, f.name, o2.source)
			}
			renames = append(renames, rename{f, f.orig, f.name})
		}
		byName[strings.ToLower(f.name)] = f
		tfs = append(tfs, f)
	}

	// Patch every text-mode driver importing a renamed file.
	for _, r := range renames {
		for _, f := range tfs {
			if f == r.f || f.dirID != "4" {
				continue
			}
			imps, err := peImports(f.content())
			if err != nil {
				if f.service != nil {
					return nil, fmt.Errorf("integrate: %s: reading the imports of %s (service %s) to rename %s: %w", pkg.Dir, f.source, f.service.Name, r.old, err)
				}
				continue
			}
			imported := false
			for _, im := range imps {
				imported = imported || strings.EqualFold(im, r.old)
			}
			if !imported {
				continue
			}
			if f.service == nil {
				return nil, fmt.Errorf("integrate: %s: %s imports %s, which text mode must load as %s; only a service image can be patched to follow the rename", pkg.Dir, f.source, r.old, r.new)
			}
			out, _, err := peRenameImport(f.content(), r.old, r.new)
			if err != nil {
				return nil, fmt.Errorf("integrate: %s: patching %s: %w", pkg.Dir, f.source, err)
			}
			f.patched = out
		}
	}
	// A patched image's original goes in under its own name.
	for _, f := range tfs {
		if f.patched == nil {
			continue
		}
		if o := byName[strings.ToLower(f.orig)]; o != nil && o != f {
			return nil, fmt.Errorf("integrate: %s: the unpatched %s needs its own name in the setup directory, which %s has", pkg.Dir, f.orig, o.source)
		}
		byName[strings.ToLower(f.orig)] = f
	}

	for _, d := range devs {
		for _, s := range d.Services {
			if s.ServiceBinary != "" && byName[strings.ToLower(s.Name+".sys")] == nil {
				return nil, fmt.Errorf("integrate: %s: service %s's image %s is not among the files the INF copies to system32\\drivers", d.INF, s.Name, s.ServiceBinary)
			}
		}
	}
	// Read and check the whole-file outputs now, before anything is
	// planned: copyDriverFiles writes them later.
	if _, err := p.driverOutputs(pkg, devs, tfs); err != nil {
		return nil, err
	}
	return tfs, nil
}
