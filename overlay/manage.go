package overlay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// Errors of List and Reset, for errors.Is.
var (
	// ErrInUse reports an overlay that a running server holds open (its
	// client is logged in): resetting it then would pull the disk from
	// under a running Windows.
	ErrInUse = errors.New("overlay: in use by a running xpboot serve (the client is connected)")
	// ErrNotOverlay reports a file in the overlay directory that is not a
	// client's delta (the flat descriptor of a raw base, another VMDK).
	ErrNotOverlay = errors.New("overlay: not a client overlay (a VMDK delta)")
)

// States of an overlay (Info.State).
const (
	// StateOK: the parent exists and still has the CID the delta records.
	StateOK = "ok"
	// StateStale: the parent was written after the delta was made (its CID
	// changed); the overlay no longer opens. Reset the client.
	StateStale = "stale"
	// StateNoParent: the parent named by the delta is missing or unreadable.
	StateNoParent = "parent-missing"
)

// Info describes one client overlay of a directory.
type Info struct {
	// Client is the file name without ".vmdk": the initiator IQN as Name
	// sanitises it; Reset accepts it.
	Client string `json:"client"`
	Path   string `json:"path"`
	// Size is the virtual disk size; Allocated the bytes the file occupies.
	Size      int64     `json:"size"`
	Allocated int64     `json:"allocated"`
	Modified  time.Time `json:"modified"`
	// Parent is the parent image as the delta names it, resolved against
	// the directory; Base is the raw file behind a flat descriptor parent.
	Parent string `json:"parent"`
	Base   string `json:"base,omitempty"`
	// State is StateOK, StateStale or StateNoParent, Problem the details.
	State   string `json:"state"`
	Problem string `json:"problem,omitempty"`
	// InUse: a process holds the overlay's lock (a running server with the
	// client connected), as /proc/locks shows.
	InUse bool `json:"in_use"`
}

// List returns the client overlays in dir (VMDK deltas; the flat
// descriptors of raw bases and other files are skipped), sorted by client.
// It reads descriptors only, takes no lock, and never changes a file, so it
// is safe beside a running server.
func List(dir string) ([]Info, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	held := heldInodes()
	var out []Info
	for _, e := range ents {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".vmdk") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		desc, err := vmdk.ReadDescriptor(p)
		if err != nil || !desc.HasParent() {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		in := Info{Client: strings.TrimSuffix(e.Name(), filepath.Ext(e.Name())), Path: p, Modified: st.ModTime().UTC(), State: StateOK}
		for _, x := range desc.Extents {
			in.Size += x.Sectors * blockdev.SectorSize
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			in.Allocated = sys.Blocks * 512
			in.InUse = held[fileID{uint64(sys.Dev), sys.Ino}]
		}
		in.Parent = desc.ParentFileNameHint
		if !filepath.IsAbs(in.Parent) {
			in.Parent = filepath.Join(dir, in.Parent)
		}
		pd, err := vmdk.ReadDescriptor(in.Parent)
		switch {
		case err != nil:
			in.State, in.Problem = StateNoParent, err.Error()
		case pd.CID != desc.ParentCID:
			in.State = StateStale
			in.Problem = fmt.Sprintf("parent %s has CID %08x, the overlay expects %08x: the base was written after the overlay was made", in.Parent, pd.CID, desc.ParentCID)
		}
		if err == nil && !pd.HasParent() && pd.CreateType == vmdk.TypeMonolithicFlat && len(pd.Extents) == 1 {
			in.Base = pd.Extents[0].File
			if !filepath.IsAbs(in.Base) {
				in.Base = filepath.Join(filepath.Dir(in.Parent), in.Base)
			}
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Client < out[j].Client })
	return out, nil
}

// Reset removes the overlay of client in dir (an initiator IQN or a name
// List shows; see Path), so that the client boots the base again: a server
// creates a fresh delta, with the client's computer name, at its next
// login. A stale overlay (its base was written since) is reset like any
// other. An overlay a server holds open is refused with ErrInUse; the check
// takes the overlay's exclusive lock and removes the file while holding it,
// so no server can open it in between. A missing overlay is an error
// wrapping fs.ErrNotExist, a file that is not a delta ErrNotOverlay, one
// that does not parse is left alone. It returns the overlay's path.
func Reset(dir, client string) (string, error) {
	p, err := Path(dir, client)
	if err != nil {
		return "", err
	}
	desc, err := vmdk.ReadDescriptor(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p, fmt.Errorf("overlay: no overlay of %s in %s: %w", client, dir, err)
	case err != nil:
		// A file that does not parse may be anyone's: a person decides
		// whether to delete it, not a reset.
		return p, fmt.Errorf("%w (not reset: remove the file by hand if it is a damaged overlay)", err)
	case !desc.HasParent():
		return p, fmt.Errorf("%s: %w", p, ErrNotOverlay)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return p, err
	}
	defer f.Close()
	if err := blockdev.Lock(f, true); err != nil {
		if errors.Is(err, blockdev.ErrLocked) {
			return p, fmt.Errorf("%s: %w; reset it after the client has shut down", p, ErrInUse)
		}
		return p, err
	}
	if err := os.Remove(p); err != nil {
		return p, err
	}
	return p, nil
}

type fileID struct {
	dev, ino uint64
}

// heldInodes returns the files with a flock (xpboot's image locks) or POSIX
// lock, from /proc/locks: reading it disturbs no lock holder, unlike trying
// a lock, which could make a client's login fail at that moment. Where it
// cannot be read, nothing is reported held.
func heldInodes() map[fileID]bool {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseLocks(f)
}

// parseLocks reads the format of /proc/locks; lines it does not know are
// skipped.
func parseLocks(r io.Reader) map[fileID]bool {
	held := map[fileID]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 08:01:131090 0 EOF"; blocked
		// waiters ("1: -> FLOCK ...") have one field more.
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[1] == "->" {
			continue
		}
		if len(fields) < 6 {
			continue
		}
		parts := strings.Split(fields[5], ":")
		if len(parts) != 3 {
			continue
		}
		maj, err1 := strconv.ParseUint(parts[0], 16, 32)
		mnr, err2 := strconv.ParseUint(parts[1], 16, 32)
		ino, err3 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		held[fileID{mkdev(maj, mnr), ino}] = true
	}
	return held
}

// mkdev encodes a device number as Linux's stat does (glibc's
// gnu_dev_makedev).
func mkdev(major, minor uint64) uint64 {
	return (major&0xfff)<<8 | (major&^0xfff)<<32 | minor&0xff | (minor&^0xff)<<12
}
