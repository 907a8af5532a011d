package integrate

import (
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
}

// textFiles gathers the files text-mode setup must copy or load for the
// package's devices and checks them: every binary is of the tree's
// architecture, every service image is among the copied files, no two
// files want one text-mode name.
func (p *Plan) textFiles(pkg *drivers.Package, devs []*drivers.Device) ([]*textFile, error) {
	t := p.Tree
	want := map[string]uint16{"x86": pe.IMAGE_FILE_MACHINE_I386, "amd64": pe.IMAGE_FILE_MACHINE_AMD64}[t.Arch]
	names := map[uint16]string{pe.IMAGE_FILE_MACHINE_I386: "x86", pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_IA64: "ia64"}
	var tfs []*textFile
	byName := map[string]*textFile{}
	addTF := func(f *textFile) error {
		k := strings.ToLower(f.name)
		if o, ok := byName[k]; ok {
			if strings.EqualFold(o.orig, f.orig) {
				return nil
			}
			return fmt.Errorf("integrate: %s: text-mode name %s is wanted by both %s and %s (the rename-and-patch of IntegrateDrv §6.5 is not implemented yet)", pkg.Dir, f.name, o.orig, f.orig)
		}
		byName[k] = f
		tfs = append(tfs, f)
		return nil
	}
	for _, d := range devs {
		images := map[string]*drivers.Service{}
		for i := range d.Services {
			s := &d.Services[i]
			if s.ServiceBinary != "" {
				images[strings.ToLower(winBase(s.ServiceBinary))] = s
			}
		}
		for _, fc := range d.Files {
			b, err := os.ReadFile(filepath.Join(pkg.Dir, filepath.FromSlash(fc.Source)))
			if err != nil {
				return nil, fmt.Errorf("integrate: %s: %w", pkg.Dir, err)
			}
			base := winBase(fc.Dest)
			lower := strings.ToLower(base)
			isBin := strings.HasSuffix(lower, ".sys") || strings.HasSuffix(lower, ".dll")
			if isBin {
				if m := peMachine(b); m != 0 && m != want {
					arch := names[m]
					if arch == "" {
						arch = fmt.Sprintf("machine 0x%x", m)
					}
					return nil, fmt.Errorf("%w: %s is %s, the setup tree is %s", ErrArch, path.Join(pkg.Dir, fc.Source), arch, t.Arch)
				}
			}
			dir := strings.ToLower(winDir(fc.Dest))
			switch {
			case strings.HasSuffix(lower, ".sys") && dir == `system32\drivers`:
				f := &textFile{name: base, orig: base, source: fc.Source, dirID: "4", dev: d}
				if s := images[lower]; s != nil {
					f.service = s
					f.name = s.Name + ".sys" // text mode loads Services\<file base name>
				}
				if err := addTF(f); err != nil {
					return nil, err
				}
			case strings.HasSuffix(lower, ".dll") && dir == "system32":
				if err := addTF(&textFile{name: base, orig: base, source: fc.Source, dirID: "2", dev: d}); err != nil {
					return nil, err
				}
			}
		}
		for _, s := range d.Services {
			if s.ServiceBinary != "" && byName[strings.ToLower(s.Name+".sys")] == nil {
				return nil, fmt.Errorf("integrate: %s: service %s's image %s is not among the files the INF copies to system32\\drivers", d.INF, s.Name, s.ServiceBinary)
			}
		}
	}
	return tfs, nil
}
