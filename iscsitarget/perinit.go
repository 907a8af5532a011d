package iscsitarget

import (
	"errors"
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/blockdev"
)

// privSet is the per-initiator logical units of one target: the devices
// LUN.Open returned for one initiator name, shared by all its sessions to
// that target and closed when the last of them ends.
type privSet struct {
	key  string
	lus  map[uint16]*lu
	refs int
}

// lu returns the logical unit n as this session sees it: the initiator's
// own one for a LUN with Open, else the target's.
func (s *session) lu(n uint16) *lu {
	if s.priv != nil {
		if l := s.priv.lus[n]; l != nil {
			return l
		}
	}
	return s.tgt.lus[n]
}

// acquirePriv opens (or takes another reference to) the initiator's own
// devices of the LUNs of l's target that have Open. It returns nil when the
// target has none.
func (s *Server) acquirePriv(l *login) (*privSet, error) {
	t := l.tgt
	if t == nil || len(t.open) == 0 {
		return nil, nil
	}
	key := strings.ToLower(l.initiatorName) + "\x00" + strings.ToLower(t.name)
	s.privMu.Lock()
	defer s.privMu.Unlock()
	if p := s.priv[key]; p != nil {
		p.refs++
		return p, nil
	}
	meta := l.c.meta
	meta.InitiatorName = l.initiatorName
	meta.TargetName = t.name
	meta.SessionType = "Normal"
	meta.ISID = l.isid
	p := &privSet{key: key, lus: make(map[uint16]*lu), refs: 1}
	for _, n := range t.lunNo {
		lun, ok := t.open[n]
		if !ok {
			continue
		}
		d, err := lun.Open(meta)
		if err == nil && d == nil {
			err = errors.New("Open returned no device")
		}
		if err == nil && d.Size() < blockdev.SectorSize {
			d.Close()
			err = fmt.Errorf("device of %d bytes is smaller than one block", d.Size())
		}
		if err != nil {
			s.closePriv(p)
			s.log.Warn("opening the initiator's device failed", "initiator", l.initiatorName, "target", t.name, "lun", n, "err", err)
			return nil, loginFail(statusTargetError, "LUN %d: %v", n, err)
		}
		lun.Device = d // newLU serves it write-protected if d.ReadOnly()
		p.lus[n] = newLU(t, lun, s.cfg.MaxTransferLength)
	}
	s.priv[key] = p
	return p, nil
}

// releasePriv drops a reference; the last one flushes and closes the
// devices.
func (s *Server) releasePriv(p *privSet) {
	if p == nil {
		return
	}
	s.privMu.Lock()
	defer s.privMu.Unlock()
	p.refs--
	if p.refs > 0 {
		return
	}
	if s.priv[p.key] == p {
		delete(s.priv, p.key)
	}
	s.closePriv(p)
}

func (s *Server) closePriv(p *privSet) {
	for n, l := range p.lus {
		if err := l.dev.Close(); err != nil {
			s.log.Warn("closing the initiator's device", "key", strings.ReplaceAll(p.key, "\x00", " "), "lun", n, "err", err)
		}
	}
}

// flushPriv flushes every open per-initiator device (Shutdown).
func (s *Server) flushPriv() error {
	s.privMu.Lock()
	defer s.privMu.Unlock()
	var err error
	for _, p := range s.priv {
		for n, l := range p.lus {
			if ferr := l.dev.Flush(); ferr != nil && err == nil {
				err = fmt.Errorf("iscsitarget: flush %s LUN %d: %w", strings.ReplaceAll(p.key, "\x00", " "), n, ferr)
			}
		}
	}
	return err
}

// absentDevice stands in for the Device of a LUN that only has Open; no
// session ever does I/O on it.
type absentDevice struct{}

func (absentDevice) ReadAt([]byte, int64) (int, error)  { return 0, blockdev.ErrReadOnly }
func (absentDevice) WriteAt([]byte, int64) (int, error) { return 0, blockdev.ErrReadOnly }
func (absentDevice) Size() int64                        { return 0 }
func (absentDevice) Flush() error                       { return nil }
func (absentDevice) Close() error                       { return nil }
func (absentDevice) Extents(int64, int64) ([]blockdev.Extent, error) {
	return nil, blockdev.ErrReadOnly
}
func (absentDevice) ReadOnly() bool             { return true }
func (absentDevice) Discard(int64, int64) error { return blockdev.ErrReadOnly }
