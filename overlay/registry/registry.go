package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/atomicfile"
)

// Suffix names the registry beside a base image that lists the
// directories holding overlays (VMDK deltas) of it: for disk.img it is
// disk.img.xpboot-overlays, a JSON object {"overlay_dirs": [absolute
// paths]}. `xpboot serve --overlay-dir` writes it, so that writers into
// the base find overlays kept outside the base's directory.
const Suffix = ".xpboot-overlays"

type file struct {
	OverlayDirs []string `json:"overlay_dirs"`
}

// Dirs returns the overlay directories registered for the base at path
// (none when there is no registry).
func Dirs(path string) ([]string, error) {
	b, err := os.ReadFile(path + Suffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r file
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s%s: %w", path, Suffix, err)
	}
	return r.OverlayDirs, nil
}

// Register records dir in the overlay registry of the base at path (see
// Suffix), unless it is the base's own directory or listed already. The
// registry is replaced atomically (internal/atomicfile).
func Register(path, dir string) error {
	ad, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if same, err := sameDir(filepath.Dir(path), ad); err != nil || same {
		return err
	}
	dirs, err := Dirs(path)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if same, _ := sameDir(d, ad); same || d == ad {
			return nil
		}
	}
	b, err := json.MarshalIndent(file{OverlayDirs: append(dirs, ad)}, "", "  ")
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(path+Suffix, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, nil
	}
	return os.SameFile(sa, sb), nil
}

// Deltas returns the VMDK deltas that depend on the base at path, in its
// own directory and in every overlay directory registered for it: deltas
// whose parent is path itself (when isVMDK, with content id cid) or a
// monolithicFlat descriptor in the delta's directory whose only extent is
// path (how overlays of a raw base name it). A registered directory that
// no longer exists holds no overlays; files that do not parse are skipped.
// The order is that of the directories, then of the names.
func Deltas(path string, isVMDK bool, cid uint32) ([]string, error) {
	self, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	dirs, err := Dirs(path)
	if err != nil {
		return nil, err
	}
	dirs = append([]string{filepath.Dir(path)}, dirs...)
	var seenDirs []os.FileInfo
	var out []string
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil {
			continue // an overlay directory deleted since: no overlays there
		}
		dup := false
		for _, s := range seenDirs {
			dup = dup || os.SameFile(s, st)
		}
		if dup {
			continue
		}
		seenDirs = append(seenDirs, st)
		out = append(out, deltasIn(dir, self, isVMDK, cid)...)
	}
	return out, nil
}

// deltasIn returns the VMDK deltas in dir whose parent is the file self
// (a VMDK with content id cid when isVMDK), or a monolithicFlat descriptor
// in dir whose only extent is self. Files that do not parse are skipped.
func deltasIn(dir string, self os.FileInfo, isVMDK bool, cid uint32) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type disk struct {
		path string
		desc *vmdk.Descriptor
		st   os.FileInfo
	}
	var disks []disk
	for _, e := range ents {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".vmdk") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		desc, err := vmdk.ReadDescriptor(p)
		if err != nil {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		disks = append(disks, disk{p, desc, st})
	}
	// The parents: self, and flat descriptors that are views of it.
	type parent struct {
		st  os.FileInfo
		cid uint32
	}
	var parents []parent
	if isVMDK {
		parents = append(parents, parent{self, cid})
	}
	for _, d := range disks {
		if d.desc.HasParent() || d.desc.CreateType != vmdk.TypeMonolithicFlat || len(d.desc.Extents) != 1 {
			continue
		}
		ext := d.desc.Extents[0].File
		if !filepath.IsAbs(ext) {
			ext = filepath.Join(dir, ext)
		}
		if st, err := os.Stat(ext); err == nil && os.SameFile(st, self) && !os.SameFile(d.st, self) {
			parents = append(parents, parent{d.st, d.desc.CID})
		}
	}
	var out []string
	for _, d := range disks {
		if !d.desc.HasParent() {
			continue
		}
		hint := d.desc.ParentFileNameHint
		if !filepath.IsAbs(hint) {
			hint = filepath.Join(dir, hint)
		}
		st, err := os.Stat(hint)
		if err != nil {
			continue
		}
		for _, p := range parents {
			if os.SameFile(st, p.st) && d.desc.ParentCID == p.cid {
				out = append(out, d.path)
				break
			}
		}
	}
	return out
}
