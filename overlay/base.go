package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/overlay/registry"
)

// Base is a base image served with per-client overlays kept in one
// directory. Its methods may be called concurrently.
type Base struct {
	path, dir string
	parent    string
	format    imagefs.Format
	dev       blockdev.Device // the parent, read-only (shared lock)
	opt       Options

	mu sync.Mutex // one creation at a time
}

// Options are the optional parts of a Base.
type Options struct {
	// SetComputerName writes a computer name into the installed Windows
	// of the disk image at path (a new overlay, closed while it runs). The
	// serve package passes integrate/installed's; nil leaves new overlays
	// unnamed. It lives outside this package so that overlays do not
	// depend on the Windows integration code.
	SetComputerName func(path, name string) error
}

// OpenBase prepares the image at path to be served with overlays in dir:
// it finds or writes the overlays' parent (Parent) and opens it read-only
// with a shared lock, which keeps writers out of the base while it is
// served. Every error of the parent step, and a parent that is not a VMDK,
// wraps ErrBase (the base or the directory must change); an error opening
// the parent does not.
func OpenBase(path, dir string, opt Options) (*Base, error) {
	format, err := imagefs.Detect(path)
	if err != nil {
		return nil, err
	}
	parent, err := Parent(path, dir)
	if err != nil {
		if !errors.Is(err, ErrBase) {
			err = baseError{err}
		}
		return nil, err
	}
	dev, _, err := imagefs.OpenDevice(parent, false)
	if err != nil {
		return nil, err
	}
	if _, ok := dev.(*vmdk.Disk); !ok {
		dev.Close()
		return nil, badBase("the base %s is %s; overlays need a raw or VMDK base (xpboot image convert it to vmdk first)", path, format)
	}
	return &Base{path: path, dir: dir, parent: parent, format: format, dev: dev, opt: opt}, nil
}

// Path returns the base image's path.
func (b *Base) Path() string { return b.path }

// Dir returns the overlay directory.
func (b *Base) Dir() string { return b.dir }

// ParentPath returns the image the overlays name as their parent: the base
// itself, or the flat descriptor of a raw base in Dir.
func (b *Base) ParentPath() string { return b.parent }

// Format returns the base's container format.
func (b *Base) Format() imagefs.Format { return b.format }

// Size returns the size of the disk in bytes.
func (b *Base) Size() int64 { return b.dev.Size() }

// Register records Dir in the registry beside the base (overlay/registry),
// so that writers into the base (xpboot image put, convert over it) find
// the overlays outside its directory and refuse to invalidate them.
func (b *Base) Register() error { return registry.Register(b.path, b.dir) }

// Shared returns the base as one device for every client without an
// overlay: read-only, and not closed by its Close (the Base owns it).
func (b *Base) Shared() blockdev.Device { return sharedReadOnly{b.dev} }

// Close closes the base. Overlays opened from it stay usable: each holds
// its own read-only view of its parent.
func (b *Base) Close() error { return b.dev.Close() }

// Opened says what Open did.
type Opened struct {
	// Path is the client's overlay file.
	Path string
	// Existed: the overlay was there and was reopened; else it was created.
	Existed bool
	// Named is the computer name written into a new overlay; NameErr says
	// why the name given to Open was not written (no installed Windows in
	// the base, say): the overlay then serves the base unnamed.
	Named   string
	NameErr error
}

// Open returns the overlay of the client with initiator name iqn, opened
// writable (which takes its exclusive lock: Reset and other processes are
// refused while it is open). An existing overlay is reopened, its parent's
// CID checked by imagefs/vmdk; a missing one is created as a VMDK delta of
// the parent and, when computerName is not empty (and Options has
// SetComputerName), given that computer name in the installed Windows of
// the base before anything reads it. The caller closes the device. On
// error, Opened.Existed still tells a failed reopen (a stale or damaged
// overlay: reset the client) from a failed creation.
func (b *Base) Open(iqn, computerName string) (*vmdk.Disk, Opened, error) {
	res := Opened{Path: filepath.Join(b.dir, Name(iqn))}
	b.mu.Lock()
	defer b.mu.Unlock()
	d, err := vmdk.Open(res.Path, true)
	if err == nil {
		res.Existed = true
		return d, res, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		res.Existed = true
		return nil, res, err
	}
	if d, err = vmdk.CreateDelta(res.Path, b.parent, nil); err != nil {
		return nil, res, err
	}
	if computerName == "" || b.opt.SetComputerName == nil {
		return d, res, nil
	}
	nd, err := b.name(d, res.Path, computerName)
	switch {
	case nd == nil:
		return nil, res, err
	case err != nil:
		res.NameErr = err
	default:
		res.Named = computerName
	}
	return nd, res, nil
}

// name writes a client's computer name into its new overlay
// (Options.SetComputerName), so that one base boots as many named PCs; the
// base is never written. d is closed for the edit and the overlay
// reopened. When the name cannot be written (no installed Windows in the
// base), the overlay is made anew, unnamed, and returned with the error:
// the client still boots.
func (b *Base) name(d *vmdk.Disk, path, name string) (*vmdk.Disk, error) {
	if err := d.Close(); err != nil {
		return nil, err
	}
	if err := b.opt.SetComputerName(path, name); err != nil {
		os.Remove(path)
		nd, cerr := vmdk.CreateDelta(path, b.parent, nil)
		if cerr != nil {
			return nil, cerr
		}
		return nd, fmt.Errorf("computer name %q not written (the overlay serves the base unnamed): %w", name, err)
	}
	return vmdk.Open(path, true)
}

// sharedReadOnly is the base handed to clients without an overlay:
// read-only whatever the device underneath, and not closed when a client's
// session ends.
type sharedReadOnly struct{ blockdev.Device }

func (sharedReadOnly) ReadOnly() bool                     { return true }
func (sharedReadOnly) WriteAt([]byte, int64) (int, error) { return 0, blockdev.ErrReadOnly }
func (sharedReadOnly) Discard(int64, int64) error         { return blockdev.ErrReadOnly }
func (sharedReadOnly) Close() error                       { return nil }
