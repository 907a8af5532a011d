package vmdk

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadDescriptor returns the descriptor of the VMDK at path (embedded or
// a text file) without opening its extents or parent.
func ReadDescriptor(path string) (*Descriptor, error) {
	f, st, head, err := openHead(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch {
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == Magic:
		d := &Disk{name: path}
		if err := d.initMonolithic(f, nil, st.Size()); err != nil {
			return nil, err
		}
		return d.desc, nil
	case IsDescriptor(head):
		if st.Size() > maxDescriptor {
			return nil, &FormatError{File: path, Msg: fmt.Sprintf("descriptor file of %d bytes exceeds %d", st.Size(), maxDescriptor), Err: ErrFormat}
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		d, err := ParseDescriptor(text)
		if err != nil {
			return nil, rebase(err, path, 0)
		}
		return d, nil
	}
	return nil, &FormatError{File: path, Msg: "not a VMDK", Err: ErrFormat}
}

// Children returns the delta disks (*.vmdk files in the same directory)
// whose parentFileNameHint names path and whose parentCID equals path's
// CID: the disks that writing into path would invalidate. Files that do not
// parse are ignored.
func Children(path string) ([]string, error) {
	desc, err := ReadDescriptor(path)
	if err != nil {
		return nil, err
	}
	self, err := os.Stat(path)
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
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".vmdk") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		cd, err := ReadDescriptor(p)
		if err != nil || !cd.HasParent() || cd.ParentCID != desc.CID {
			continue
		}
		hint := cd.ParentFileNameHint
		if !filepath.IsAbs(hint) {
			hint = filepath.Join(dir, hint)
		}
		if st, err := os.Stat(hint); err == nil && os.SameFile(st, self) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// openHead opens the VMDK at path for reading its structures and reads
// its first HeaderSize bytes (fewer for a shorter file), from which a
// sparse header and a descriptor file are told apart. The caller closes
// the file.
func openHead(path string) (*os.File, os.FileInfo, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	head := make([]byte, min(st.Size(), HeaderSize))
	if err := readFull(f, head, 0); err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("vmdk: %s: %w", path, err)
	}
	return f, st, head, nil
}
