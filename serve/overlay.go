package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

// overlayLUN serves the base fl.Path read-only and gives each initiator
// its own copy-on-write delta in dir (created on its first login, reopened
// afterwards); the policy says which initiators get one and names their
// clients.
func (s *Server) overlayLUN(fl iscsitarget.FileLUN, dir string) (iscsitarget.LUN, blockdev.Device, imagefs.Format, error) {
	format, err := imagefs.Detect(fl.Path)
	if err != nil {
		return iscsitarget.LUN{}, nil, "", err
	}
	// Overlays are VMDK deltas; a raw base gets a flat descriptor in dir
	// for them to name as parent.
	parent, err := imagefs.OverlayParent(fl.Path, dir)
	if err != nil {
		return iscsitarget.LUN{}, nil, "", badConfig("--overlay-dir: %v", err)
	}
	base, _, err := imagefs.OpenDevice(parent, false)
	if err != nil {
		return iscsitarget.LUN{}, nil, "", err
	}
	if _, ok := base.(*vmdk.Disk); !ok {
		base.Close()
		return iscsitarget.LUN{}, nil, "", badConfig("--overlay-dir: the base %s is %s; overlays need a raw or VMDK base (xpboot image convert it to vmdk first)", fl.Path, format)
	}
	// Writers into the base (xpboot image put, convert over it) find
	// overlays outside its directory through this registry.
	if err := imagefs.RegisterOverlayDir(fl.Path, dir); err != nil {
		s.log.Warn("could not register the overlay directory beside the base: xpboot image put into the base will not see these overlays and would invalidate them",
			"path", fl.Path, "overlay_dir", dir, "err", err)
	}
	s.log.Info("serving image with per-client overlays", "lun", fl.Number, "path", fl.Path, "format", string(format), "parent", parent, "size", base.Size(), "overlay_dir", dir)
	var mu sync.Mutex // one create at a time per server
	events := s.events
	open := func(m iscsitarget.ConnMeta) (blockdev.Device, error) {
		overlay, name := s.policy.Overlay(m.InitiatorName)
		who := s.policy.ClientOf(m.RemoteAddr, m.InitiatorName)
		ini := slog.String("initiator", m.InitiatorName)
		if !overlay {
			events.Record(who, "iscsi", sanboot.StateOverlay, "client without overlay: serving the base read-only", ini, slog.String("path", fl.Path))
			return sharedReadOnly{base}, nil
		}
		path := filepath.Join(dir, OverlayName(m.InitiatorName))
		ov := slog.String("overlay", path)
		mu.Lock()
		defer mu.Unlock()
		d, err := vmdk.Open(path, true)
		switch {
		case err == nil:
			events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay reopened", ini, ov)
		case errors.Is(err, fs.ErrNotExist):
			if d, err = vmdk.CreateDelta(path, parent, nil); err != nil {
				events.Record(who, "iscsi", sanboot.StateOverlayFailed, "creating client overlay failed", ini, ov, slog.String("err", err.Error()))
				return nil, err
			}
			events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay created", ini, ov, slog.String("base", fl.Path))
			if name != "" {
				nd, err := nameOverlay(d, path, parent, name)
				switch {
				case nd == nil:
					events.Record(who, "iscsi", sanboot.StateOverlayFailed, "creating client overlay failed", ini, ov, slog.String("err", err.Error()))
					return nil, err
				case err != nil:
					events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay serves the base unnamed", ini, ov, slog.String("err", err.Error()))
				default:
					events.Record(who, "iscsi", sanboot.StateOverlay, "computer name written into the client's overlay", ini, ov, slog.String("name", name))
				}
				d = nd
			}
		default:
			events.Record(who, "iscsi", sanboot.StateOverlayFailed, "opening client overlay failed (delete it to reset the client)", ini, ov, slog.String("err", err.Error()))
			return nil, err
		}
		return d, nil
	}
	return iscsitarget.LUN{Number: fl.Number, Device: sharedReadOnly{base}, Serial: fl.Serial, Open: open}, base, format, nil
}

// nameOverlay writes a client's computer name into its new overlay (the
// installed Windows of the base, through the NTFS or FAT32 writer and the
// hive editor), so that one base boots as many named PCs; the base is
// never written. d is closed for the edit and the overlay reopened. When
// the name cannot be written (no installed Windows in the base), the
// overlay is made anew, unnamed, and the client still boots.
func nameOverlay(d *vmdk.Disk, path, parent, name string) (*vmdk.Disk, error) {
	if err := d.Close(); err != nil {
		return nil, err
	}
	err := func() error {
		f, err := integrate.OpenImage(path, 0, "/", true)
		if err != nil {
			return err
		}
		if err := installed.SetComputerName(f, name); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}()
	if err != nil {
		os.Remove(path)
		nd, cerr := vmdk.CreateDelta(path, parent, nil)
		if cerr != nil {
			return nil, cerr
		}
		return nd, fmt.Errorf("computer name %q not written (the overlay serves the base unnamed): %w", name, err)
	}
	return vmdk.Open(path, true)
}

// OverlayName is the overlay file of an initiator: its IQN lower-cased
// with every character other than a-z, 0-9, '.' and '-' replaced by '_'.
func OverlayName(iqn string) string {
	b := []byte(strings.ToLower(iqn))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b) + ".vmdk"
}

// sharedReadOnly is the base image handed to clients without an overlay:
// read-only, and not closed when a client's session ends.
type sharedReadOnly struct{ blockdev.Device }

func (sharedReadOnly) ReadOnly() bool { return true }
func (sharedReadOnly) Close() error   { return nil }
