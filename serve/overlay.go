package serve

import (
	"errors"
	"log/slog"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/overlay"
	"github.com/xpboot/xpboot/sanboot"
)

// overlayLUN serves the base fl.Path read-only and gives each initiator
// its own copy-on-write delta in dir (package overlay: created on its first
// login, reopened afterwards); the policy says which initiators get one and
// names their clients. The caller closes the returned base.
func (s *Server) overlayLUN(fl iscsitarget.FileLUN, dir string) (iscsitarget.LUN, *overlay.Base, error) {
	base, err := overlay.OpenBase(fl.Path, dir, overlay.Options{SetComputerName: setComputerName})
	if err != nil {
		if errors.Is(err, overlay.ErrBase) {
			return iscsitarget.LUN{}, nil, badConfig("--overlay-dir: %v", err)
		}
		return iscsitarget.LUN{}, nil, err
	}
	// Writers into the base (xpboot image put, convert over it) find
	// overlays outside its directory through this registry.
	if err := base.Register(); err != nil {
		s.log.Warn("could not register the overlay directory beside the base: xpboot image put into the base will not see these overlays and would invalidate them",
			"path", fl.Path, "overlay_dir", dir, "err", err)
	}
	s.log.Info("serving image with per-client overlays", "lun", fl.Number, "path", fl.Path, "format", string(base.Format()), "parent", base.ParentPath(), "size", base.Size(), "overlay_dir", dir)
	events := s.events
	open := func(m iscsitarget.ConnMeta) (blockdev.Device, error) {
		wanted, name := s.policy.Overlay(m.InitiatorName)
		who := s.policy.ClientOf(m.RemoteAddr, m.InitiatorName)
		ini := slog.String("initiator", m.InitiatorName)
		if !wanted {
			events.Record(who, "iscsi", sanboot.StateOverlay, "client without overlay: serving the base read-only", ini, slog.String("path", fl.Path))
			return base.Shared(), nil
		}
		d, res, err := base.Open(m.InitiatorName, name)
		ov := slog.String("overlay", res.Path)
		switch {
		case err != nil && res.Existed:
			events.Record(who, "iscsi", sanboot.StateOverlayFailed, "opening client overlay failed (xpboot overlay reset resets the client)", ini, ov, slog.String("err", err.Error()))
			return nil, err
		case err != nil:
			events.Record(who, "iscsi", sanboot.StateOverlayFailed, "creating client overlay failed", ini, ov, slog.String("err", err.Error()))
			return nil, err
		case res.Existed:
			events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay reopened", ini, ov)
			return d, nil
		}
		events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay created", ini, ov, slog.String("base", fl.Path))
		switch {
		case res.NameErr != nil:
			events.Record(who, "iscsi", sanboot.StateOverlay, "client overlay serves the base unnamed", ini, ov, slog.String("err", res.NameErr.Error()))
		case res.Named != "":
			events.Record(who, "iscsi", sanboot.StateOverlay, "computer name written into the client's overlay", ini, ov, slog.String("name", res.Named))
		}
		return d, nil
	}
	return iscsitarget.LUN{Number: fl.Number, Device: base.Shared(), Serial: fl.Serial, Open: open}, base, nil
}

// setComputerName writes a client's computer name into the installed
// Windows of its new overlay (through the NTFS or FAT32 writer and the
// hive editor), so that one base boots as many named PCs.
func setComputerName(path, name string) error {
	f, err := integrate.OpenImage(path, 0, "/", true)
	if err != nil {
		return err
	}
	if err := installed.SetComputerName(f, name); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
