package setup

import (
	"fmt"
	"os"
	"sort"

	"github.com/xpboot/xpboot/blockdev"
)

// undoBlock is the granularity in which undoDevice saves original bytes.
const undoBlock = 4096

// undoDevice lets a failed stage on an NTFS volume leave the file system
// as it was. imagefs/ntfs is all-or-nothing per operation, but a stage is
// thousands of operations, and the writer writes queued metadata whenever
// its queue grows long or an operation frees space (--force removing an
// old stage). So before the first write to a block that anything on the
// disk used when the stage began (the MBR area, $Boot, every cluster
// $Bitmap had set, the backup boot sector, other partitions), the block's
// original bytes are saved to an unlinked temporary file; restore writes
// them back. Writes to clusters that were free are not saved: after the
// restore, $Bitmap calls them free again, as FAT32's abort leaves data in
// clusters its FAT calls free.
type undoDevice struct {
	blockdev.Device
	// keep is the sorted, merged list of disk byte ranges in use when the
	// stage began.
	keep  []span
	saved map[int64]int64 // block number → offset of its bytes in spill
	spill *os.File
	end   int64 // bytes written to spill
}

type span struct{ off, end int64 }

// newUndoDevice wraps dev; keep lists the byte ranges (disk offsets) to
// protect, in any order.
func newUndoDevice(dev blockdev.Device, keep []span) (*undoDevice, error) {
	f, err := os.CreateTemp("", "xpboot-stage-undo-")
	if err != nil {
		return nil, fmt.Errorf("undo file: %w", err)
	}
	// Unlinked at once: nothing is left behind whatever happens.
	os.Remove(f.Name())
	sort.Slice(keep, func(i, j int) bool { return keep[i].off < keep[j].off })
	var merged []span
	for _, s := range keep {
		if s.end <= s.off {
			continue
		}
		if n := len(merged); n > 0 && s.off <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return &undoDevice{Device: dev, keep: merged, saved: map[int64]int64{}, spill: f}, nil
}

// kept reports whether [off, end) overlaps a protected range.
func (d *undoDevice) kept(off, end int64) bool {
	i := sort.Search(len(d.keep), func(i int) bool { return d.keep[i].end > off })
	return i < len(d.keep) && d.keep[i].off < end
}

// WriteAt saves the original bytes of every protected block the write
// touches for the first time, then writes.
func (d *undoDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("write", off, len(p), d.Size()); err != nil {
		return 0, err
	}
	for b := off / undoBlock; b*undoBlock < off+int64(len(p)); b++ {
		if _, ok := d.saved[b]; ok {
			continue
		}
		start, stop := b*undoBlock, min((b+1)*undoBlock, d.Size())
		if !d.kept(start, stop) {
			continue
		}
		buf := make([]byte, stop-start)
		if _, err := d.Device.ReadAt(buf, start); err != nil {
			return 0, fmt.Errorf("saving the bytes at %d before changing them: %w", start, err)
		}
		if _, err := d.spill.WriteAt(buf, d.end); err != nil {
			return 0, fmt.Errorf("saving the bytes at %d before changing them: %w", start, err)
		}
		d.saved[b] = d.end
		d.end += int64(len(buf))
	}
	return d.Device.WriteAt(p, off)
}

// Discard refuses: a deallocation would bypass the undo record.
func (d *undoDevice) Discard(int64, int64) error { return blockdev.ErrNotSupported }

// restore writes every saved block back.
func (d *undoDevice) restore() error {
	var first error
	for b, at := range d.saved {
		start, stop := b*undoBlock, min((b+1)*undoBlock, d.Size())
		buf := make([]byte, stop-start)
		if _, err := d.spill.ReadAt(buf, at); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if _, err := d.Device.WriteAt(buf, start); err != nil && first == nil {
			first = err
		}
	}
	d.saved = map[int64]int64{}
	return first
}

// Close drops the saved bytes and closes the device.
func (d *undoDevice) Close() error {
	d.spill.Close()
	return d.Device.Close()
}
