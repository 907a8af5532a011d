package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/atomicfile"
)

// ErrBase marks errors about the base or the overlay directory that the
// user must fix by choosing another base or directory (a VHD base, a
// directory holding the overlays of another raw base). Errors wrapping it
// keep their own text; test with errors.Is.
var ErrBase = errors.New("overlay: unusable base or overlay directory")

// baseError gives an error ErrBase's class without changing its text.
type baseError struct{ err error }

func (e baseError) Error() string           { return e.err.Error() }
func (e baseError) Unwrap() []error         { return []error{e.err, ErrBase} }
func badBase(format string, a ...any) error { return baseError{fmt.Errorf(format, a...)} }

// Parent returns the image that overlays (VMDK deltas) of the base at path
// name as their parent when they are kept in dir: a VMDK base itself; for a
// raw base, a monolithicFlat descriptor dir/@base-NAME.vmdk whose extent is
// the raw file (relative to dir when possible), written on the first call
// and checked on later ones, so that its CID, which the deltas record,
// stays the same. qemu-img and VMware read such a chain. Other formats are
// refused with an error wrapping ErrBase, as is a descriptor there that
// describes another base.
func Parent(path, dir string) (string, error) {
	format, err := imagefs.Detect(path)
	if err != nil {
		return "", err
	}
	switch {
	case format.IsVMDK():
		return path, nil
	case format != imagefs.FormatRaw:
		return "", badBase("%s is %s; overlays need a raw or VMDK base (xpboot image convert it first)", path, format)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	desc := filepath.Join(dir, "@base-"+filepath.Base(path)+".vmdk")
	if d, err := vmdk.ReadDescriptor(desc); err == nil {
		ok := d.CreateType == vmdk.TypeMonolithicFlat && len(d.Extents) == 1 && d.Extents[0].Sectors*512 == st.Size()
		if ok {
			ext := d.Extents[0].File
			if !filepath.IsAbs(ext) {
				ext = filepath.Join(dir, ext)
			}
			est, err := os.Stat(ext)
			ok = err == nil && os.SameFile(est, st)
		}
		if !ok {
			return "", badBase("%s describes another raw base than %s (or another size); overlays in %s belong to that base: use another --overlay-dir", desc, path, dir)
		}
		return desc, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	ad, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	ap, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	ext := ap
	if rel, err := filepath.Rel(ad, ap); err == nil {
		ext = rel
	}
	out, err := atomicfile.CreateNamed(desc)
	if err != nil {
		return "", err
	}
	if err := vmdk.WriteFlatDescriptor(out.Temp, ext, st.Size(), nil); err != nil {
		out.Abort()
		return "", err
	}
	if err := out.Commit(); err != nil {
		return "", err
	}
	return desc, nil
}
