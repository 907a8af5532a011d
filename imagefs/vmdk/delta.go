package vmdk

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/xpboot/xpboot/internal/atomicfile"
)

// CreateDelta makes a new monolithicSparse delta disk at path, which must
// not exist, over the VMDK at parentPath, and returns it open for writing
// with the parent open read-only (shared lock). The delta records the
// parent's CID as parentCID and parentFileNameHint, relative to the delta's
// directory when possible, so that qemu-img and VMware open the chain; its
// capacity is the parent's. opts.AdapterType and opts.CID apply
// (CreateType is always monolithicSparse). The file is built under a
// temporary name (internal/atomicfile), synced and linked into place, so a
// crash never leaves a half-made delta at path, and an existing file at
// path is never replaced: that fails with an error wrapping fs.ErrExist.
func CreateDelta(path, parentPath string, opts *CreateOptions) (*Disk, error) {
	o := opts.defaults()
	o.CreateType = TypeMonolithicSparse
	pd, err := Open(parentPath, false)
	if err != nil {
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, err)
	}
	pdesc := pd.Descriptor()
	size := pd.Size()
	pd.Close()
	if size <= 0 || size%sectorSize != 0 {
		return nil, fmt.Errorf("vmdk: create delta %s: parent size %d is not a multiple of 512", path, size)
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, os.ErrExist)
	}
	hint, err := parentHint(path, parentPath)
	if err != nil {
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, err)
	}
	// Older versions built the delta at path+".tmp"; an interrupted one
	// may have left that name behind.
	os.Remove(path + ".tmp")
	out, err := atomicfile.CreateNamed(path)
	if err != nil {
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, err)
	}
	if err := createSparse(out.Temp, size, o); err != nil {
		out.Abort()
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, err)
	}
	if err := finishDelta(out.Temp, path, hint, pdesc.CID); err != nil {
		out.Abort()
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, err)
	}
	// A delta never replaces a file: a name taken since the check above
	// fails with fs.ErrExist.
	if err := out.CommitNew(); err != nil {
		return nil, fmt.Errorf("vmdk: create delta %s: %w", path, err)
	}
	return open(path, true, 0, nil, false)
}

// parentHint returns the parentFileNameHint for a delta at path: the
// parent's path relative to the delta's directory, or absolute.
func parentHint(path, parentPath string) (string, error) {
	ad, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	ap, err := filepath.Abs(parentPath)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(ad, ap); err == nil {
		return rel, nil
	}
	return ap, nil
}

// finishDelta turns the fresh sparse file tmp, which will be named path,
// into a delta of the parent with CID parentCID.
func finishDelta(tmp, path, hint string, parentCID uint32) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	text := make([]byte, DescriptorSectors*sectorSize)
	if err := readFull(f, text, sectorSize); err != nil {
		return err
	}
	desc, err := ParseDescriptor(text)
	if err != nil {
		return err
	}
	desc.ParentCID = parentCID
	desc.ParentFileNameHint = hint
	for i := range desc.Extents {
		desc.Extents[i].File = filepath.Base(path)
	}
	out := desc.Marshal()
	if len(out) > len(text) {
		return fmt.Errorf("descriptor of %d bytes does not fit in %d sectors (parent path too long?)", len(out), DescriptorSectors)
	}
	buf := make([]byte, len(text))
	copy(buf, out)
	_, err = f.WriteAt(buf, sectorSize)
	return err
}
