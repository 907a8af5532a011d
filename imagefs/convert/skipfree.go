package convert

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/xpboot/xpboot/blockdev"
)

// Errors of captures (Options.SkipFree), for errors.Is.
var (
	// ErrInUse reports a source block device that is mounted or held by
	// another driver, refused without Options.ForceShare.
	ErrInUse = errors.New("convert: the source device is in use")
	// ErrSourceChanged reports a source that changed while it was read:
	// the output would mix two states of the disk, so it is discarded
	// (with Options.ForceShare it is kept and a notice says so).
	ErrSourceChanged = errors.New("convert: the source changed during the capture")
)

// masked is a source device seen through a capture plan: the ranges
// outside the plan read as zeros and are reported as Zero extents, so the
// copy neither reads nor stores them, and the progress counts only what
// is read.
type masked struct {
	blockdev.Device
	keep []span
}

// WriteAt refuses: a capture never writes its source.
func (m *masked) WriteAt([]byte, int64) (int, error) { return 0, blockdev.ErrReadOnly }

// ReadOnly and Discard say the same as WriteAt, whatever the source says.
func (m *masked) ReadOnly() bool             { return true }
func (m *masked) Discard(int64, int64) error { return blockdev.ErrReadOnly }

// first returns the index of the first kept span ending after off.
func (m *masked) first(off int64) int {
	return sort.Search(len(m.keep), func(i int) bool { return m.keep[i].end > off })
}

// ReadAt reads the kept ranges of [off, off+len(p)) and zeros the rest.
func (m *masked) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("read", off, len(p), m.Size()); err != nil {
		return 0, err
	}
	end := off + int64(len(p))
	pos := off
	for i := m.first(off); i < len(m.keep) && m.keep[i].off < end; i++ {
		lo, hi := max(m.keep[i].off, off), min(m.keep[i].end, end)
		clear(p[pos-off : lo-off])
		if _, err := m.Device.ReadAt(p[lo-off:hi-off], lo); err != nil {
			return int(lo - off), err
		}
		pos = hi
	}
	clear(p[pos-off:])
	return len(p), nil
}

// Extents is the source's extent map with everything outside the kept
// ranges turned into Zero.
func (m *masked) Extents(off, length int64) ([]blockdev.Extent, error) {
	ext, err := m.Device.Extents(off, length)
	if err != nil {
		return nil, err
	}
	var out []blockdev.Extent
	for _, x := range ext {
		if x.State == blockdev.Zero {
			out = blockdev.AppendExtent(out, x.Off, x.Off+x.Len, blockdev.Zero)
			continue
		}
		pos, end := x.Off, x.Off+x.Len
		for i := m.first(pos); i < len(m.keep) && m.keep[i].off < end; i++ {
			lo, hi := max(m.keep[i].off, pos), min(m.keep[i].end, end)
			out = blockdev.AppendExtent(out, pos, lo, blockdev.Zero)
			out = blockdev.AppendExtent(out, lo, hi, x.State)
			pos = hi
		}
		out = blockdev.AppendExtent(out, pos, end, blockdev.Zero)
	}
	return out, nil
}

// stored returns the bytes of [off, off+n) that the device stores (not
// Zero), through its extent map.
func stored(d blockdev.Device, off, n int64) (int64, error) {
	var sum int64
	for pos, end := off, off+n; pos < end; {
		ext, err := d.Extents(pos, min(mapWindow, end-pos))
		if err != nil {
			return 0, err
		}
		if len(ext) == 0 {
			return 0, fmt.Errorf("empty extent map at 0x%x", pos)
		}
		for _, e := range ext {
			if e.State != blockdev.Zero {
				sum += e.Len
			}
		}
		last := ext[len(ext)-1]
		if last.Off+last.Len <= pos {
			return 0, fmt.Errorf("extent map of 0x%x does not advance", pos)
		}
		pos = last.Off + last.Len
	}
	return sum, nil
}

// capture is one capture in progress: the plan, and what it takes to tell
// afterwards whether the source changed under it.
type capture struct {
	path  string
	src   blockdev.Device // the source itself, not masked
	plan  *plan
	sum   [32]byte
	stat  os.FileInfo // nil for a block device
	force bool
}

// inUse reports whether the block device at path is mounted or claimed
// by another driver: Linux refuses an O_EXCL open of such a device with
// EBUSY.
func inUse(path string) (bool, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_EXCL|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.EBUSY) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	syscall.Close(fd)
	return false, nil
}

// startCapture plans the capture of src (opened from path) and records the
// state the source must still have when the copy is done. A block device
// that is mounted or held is refused with ErrInUse unless force.
func startCapture(path string, src blockdev.Device, force bool) (*capture, error) {
	c := &capture{path: path, src: src, force: force}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	busy := false
	if st.Mode()&os.ModeDevice != 0 {
		if busy, err = inUse(path); err != nil {
			return nil, fmt.Errorf("convert: %s: %w", path, err)
		}
		if busy && !force {
			return nil, fmt.Errorf("%w: %s is mounted or held by another driver; unmount it (or capture a snapshot), or give --force-share to copy it anyway", ErrInUse, path)
		}
	} else {
		c.stat = st
	}
	if c.plan, err = planCapture(src); err != nil {
		return nil, fmt.Errorf("convert: %s: %w", path, err)
	}
	c.sum = c.plan.fingerprint()
	if busy {
		c.plan.notices = append(c.plan.notices, fmt.Sprintf("%s is in use (--force-share): the capture may not be consistent", path))
	}
	return c, nil
}

// device returns the source as the capture reads it.
func (c *capture) device() blockdev.Device { return &masked{Device: c.src, keep: c.plan.keep} }

// account fills in the per-partition byte counts of the summary.
func (c *capture) account(m blockdev.Device) ([]PartitionCapture, error) {
	parts := append([]PartitionCapture(nil), c.plan.parts...)
	for i := range parts {
		p := &parts[i]
		if p.Method == MethodContainer {
			continue
		}
		n, err := stored(m, p.Offset, p.Size)
		if err != nil {
			return nil, fmt.Errorf("convert: %s: partition %d: %w", c.path, p.Index, err)
		}
		p.BytesRead, p.BytesSkipped = n, p.Size-n
	}
	return parts, nil
}

// fingerprint condenses what the capture depends on: the kept ranges and
// how each partition is read.
func (p *plan) fingerprint() [32]byte {
	h := sha256.New()
	var b [16]byte
	for _, s := range p.keep {
		binary.LittleEndian.PutUint64(b[:], uint64(s.off))
		binary.LittleEndian.PutUint64(b[8:], uint64(s.end))
		h.Write(b[:])
	}
	for _, q := range p.parts {
		fmt.Fprintf(h, "%d %s %s %s %q\n", q.Index, q.Type, q.FS, q.Method, q.Fallback)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// finish checks, after the copy and before the output is put in place,
// that the source still is what was planned: the same allocation of every
// file system, and for an image file the same size and modification
// time. A change gives ErrSourceChanged, or with force a notice.
func (c *capture) finish() (notice string, err error) {
	var why string
	if c.stat != nil {
		st, err := os.Stat(c.path)
		switch {
		case err != nil:
			why = err.Error()
		case st.Size() != c.stat.Size():
			why = fmt.Sprintf("its size went from %d to %d bytes", c.stat.Size(), st.Size())
		case !st.ModTime().Equal(c.stat.ModTime()):
			why = fmt.Sprintf("it was modified at %s", st.ModTime().UTC().Format(time.RFC3339Nano))
		}
	}
	if why == "" {
		p, err := planCapture(c.src)
		if err != nil {
			why = err.Error()
		} else if p.fingerprint() != c.sum {
			why = "the partition table or the allocation of a file system changed"
		}
	}
	if why == "" {
		return "", nil
	}
	if c.force {
		return fmt.Sprintf("%s changed during the capture (%s); kept because of --force-share: the copy may be inconsistent", c.path, why), nil
	}
	return "", fmt.Errorf("%w: %s: %s; nothing was written (capture a quiet source, or give --force-share to keep such a copy)", ErrSourceChanged, c.path, why)
}

// beginSkipFree starts the capture of Options.SkipFree: it plans it, fills
// in the summary's partitions and notices, and returns the source as the
// copy reads it.
func beginSkipFree(in string, src blockdev.Device, sum *Summary, opts Options) (*capture, blockdev.Device, error) {
	c, err := startCapture(in, src, opts.ForceShare)
	if err != nil {
		return nil, nil, err
	}
	m := c.device()
	if sum.Partitions, err = c.account(m); err != nil {
		return nil, nil, err
	}
	if sum.Partitions == nil {
		sum.Partitions = []PartitionCapture{}
	}
	sum.Notices = append(sum.Notices, c.plan.notices...)
	return c, m, nil
}
