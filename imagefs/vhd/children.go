package vhd

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadFooter returns the footer of the VHD at path without opening its
// parent or taking a lock.
func ReadFooter(path string) (*Footer, error) {
	d, _, err := parseFile(path)
	if err != nil {
		return nil, err
	}
	ft := d.footer
	return &ft, nil
}

// parseFile parses the VHD at path for reading its structures (no parent
// opened, no lock) and returns it with the file's size; the file is
// closed again.
func parseFile(path string) (*Disk, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	d, err := parse(f, st.Size(), path)
	return d, st.Size(), err
}

// Children returns the differencing disks (*.vhd files in the same
// directory) whose parent unique id is the unique id of the disk at path:
// the disks that writing into path would invalidate. Files that do not
// parse are ignored.
func Children(path string) ([]string, error) {
	self, err := ReadFooter(path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".vhd") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		d, err := parse(f, st.Size(), p)
		f.Close()
		if err == nil && d.footer.DiskType == TypeDifferencing && d.header.ParentUUID == self.UniqueID {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}
