package resize

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/fsid"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// Errors for errors.Is.
var (
	// ErrShrink reports a smaller size without Options.Shrink, or one that
	// would cut off a partition.
	ErrShrink = errors.New("resize: shrinking refused")
	// ErrSize reports a size the container cannot hold (or not exactly,
	// with Options.Exact).
	ErrSize = errors.New("resize: size not possible for this image")
	// ErrUnsupported reports an image or file system that is not resized.
	ErrUnsupported = errors.New("resize: unsupported")
)

// Options says what to resize.
type Options struct {
	// Size is the new disk size in bytes.
	Size int64
	// Delta, when Size is 0, is added to the current size instead
	// (negative to shrink), as qemu-img resize's +SIZE and -SIZE.
	Delta int64
	// GrowPartition grows the last partition and its file system too.
	GrowPartition bool
	// PartitionSize is the grown partition's size in bytes (a multiple of
	// 512); 0 grows it to the end of the disk.
	PartitionSize int64
	// Shrink allows a smaller size when every partition lies below it.
	Shrink bool
	// Exact refuses a VHD size that is not a CHS size instead of rounding
	// it up.
	Exact bool
	// DryRun checks and plans without writing.
	DryRun bool
}

// Result describes a resize (or, with DryRun, the plan).
type Result struct {
	Path    string         `json:"path"`
	Format  imagefs.Format `json:"format"`
	OldSize int64          `json:"old_size"`
	NewSize int64          `json:"new_size"`
	// Container is "unchanged", "in place" or "rewritten".
	Container string `json:"container"`
	// RewriteReason says why the container was (or would be) rewritten.
	RewriteReason string           `json:"rewrite_reason,omitempty"`
	Notices       []string         `json:"notices,omitempty"`
	Partition     *PartitionResult `json:"partition,omitempty"`
	FileSystem    *FSResult        `json:"filesystem,omitempty"`
	DryRun        bool             `json:"dry_run"`
}

// PartitionResult describes the grown partition.
type PartitionResult struct {
	Index      int    `json:"index"` // 1..4 primary, 5… logical
	Type       string `json:"type"`  // "0x07"
	StartLBA   uint32 `json:"start_lba"`
	OldSectors uint32 `json:"old_sectors"`
	NewSectors uint32 `json:"new_sectors"`
	// Extended is the index of the extended partition that grew with a
	// logical one, or 0.
	Extended int `json:"extended,omitempty"`
}

// FSResult describes the grown file system.
type FSResult struct {
	Type        string `json:"type"` // "ntfs", "fat32" or "none"
	OldSectors  int64  `json:"old_sectors"`
	NewSectors  int64  `json:"new_sectors"`
	OldClusters int64  `json:"old_clusters"`
	NewClusters int64  `json:"new_clusters"`
	ClusterSize int64  `json:"cluster_size"`
	// AddedBytes is the free space added.
	AddedBytes int64 `json:"added_bytes"`
}

// fsGrowth is a planned file system growth.
type fsGrowth interface {
	Changed() bool
	// prepare writes what must be in place before the partition grows.
	prepare(dev blockdev.Device) error
	apply(dev blockdev.Device) error
}

type ntfsGrowth struct{ *ntfs.Growth }

func (g ntfsGrowth) prepare(dev blockdev.Device) error { return g.Growth.Prepare(dev) }
func (g ntfsGrowth) apply(dev blockdev.Device) error   { return g.Growth.Apply(dev) }

type fatGrowth struct{ *fat32.Growth }

func (g fatGrowth) prepare(blockdev.Device) error   { return nil }
func (g fatGrowth) apply(dev blockdev.Device) error { return g.Growth.Apply(dev) }

// Resize resizes the image at path as opts say and returns what it did.
// See the package documentation for the contract.
func Resize(ctx context.Context, path string, opts Options) (*Result, error) {
	if opts.Size == 0 && opts.Delta != 0 {
		dev, _, err := imagefs.OpenDevice(path, false)
		if err != nil {
			return nil, err
		}
		opts.Size = dev.Size() + opts.Delta
		dev.Close()
	}
	if opts.Size <= 0 {
		return nil, fmt.Errorf("%s: %w: size %d is not positive", path, ErrSize, opts.Size)
	}
	if opts.PartitionSize != 0 && !opts.GrowPartition {
		return nil, fmt.Errorf("%s: a partition size needs GrowPartition", path)
	}
	if opts.PartitionSize < 0 || opts.PartitionSize%mbr.SectorSize != 0 {
		return nil, fmt.Errorf("%s: %w: partition size %d is not a positive multiple of 512", path, ErrSize, opts.PartitionSize)
	}
	format, err := imagefs.Detect(path)
	if err != nil {
		return nil, err
	}
	res := &Result{Path: path, Format: format, DryRun: opts.DryRun, Container: "unchanged"}
	size, err := containerSize(format, opts.Size, opts.Exact, res)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	res.NewSize = size
	if err := imagefs.CheckNoChildren(path); err != nil {
		return nil, err
	}
	var (
		vmdkPlan *vmdk.ResizePlan
		vhdPlan  *vhd.ResizePlan
	)
	switch format {
	case imagefs.FormatRaw:
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		res.OldSize = st.Size()
		if !st.Mode().IsRegular() {
			// A block device keeps the size of its disk; its partition
			// can still grow into space the disk gained.
			dev, err := blockdev.OpenRaw(path, false)
			if err != nil {
				return nil, err
			}
			res.OldSize = dev.Size()
			dev.Close()
			if size != res.OldSize {
				return nil, fmt.Errorf("%s: %w: a block device has the size of its disk (%d bytes); only its partition can grow (give that size with --grow-partition)", path, ErrUnsupported, res.OldSize)
			}
		}
	case imagefs.FormatVMDKSparse, imagefs.FormatVMDKFlat:
		if vmdkPlan, err = vmdk.PlanResize(path, size); err != nil {
			return nil, err
		}
		res.OldSize = vmdkPlan.OldSize
		if vmdkPlan.Rewrite {
			res.RewriteReason = vmdkPlan.Reason
		}
	case imagefs.FormatVHDDynamic, imagefs.FormatVHDFixed:
		if vhdPlan, err = vhd.PlanResize(path, size); err != nil {
			return nil, err
		}
		res.OldSize = vhdPlan.OldSize
		if vhdPlan.Rewrite {
			res.RewriteReason = vhdPlan.Reason
		}
	case imagefs.FormatVMDKStream:
		return nil, fmt.Errorf("%s: %w: a streamOptimized VMDK is read-only; convert it to vmdk, resize, and convert back", path, ErrUnsupported)
	default:
		return nil, fmt.Errorf("%s: %w: %s images are not resized (delta, differencing and split disks depend on other files' sizes)", path, ErrUnsupported, format)
	}

	// Plan the partition and file system while reading the image as it is.
	var (
		part *mbr.Growth
		fsg  fsGrowth
	)
	if size < res.OldSize || opts.GrowPartition {
		dev, _, err := imagefs.OpenDevice(path, false)
		if err != nil {
			return nil, err
		}
		part, fsg, err = plan(dev, path, res, size, opts)
		dev.Close()
		if err != nil {
			return nil, err
		}
	}
	if opts.DryRun {
		if size != res.OldSize {
			res.Container = "in place"
			if res.RewriteReason != "" {
				res.Container = "rewritten"
			}
		}
		return res, nil
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Writes: container, partition table, file system.
	if size != res.OldSize {
		switch {
		case vmdkPlan != nil:
			_, err = vmdk.Resize(ctx, path, size)
		case vhdPlan != nil:
			_, err = vhd.Resize(ctx, path, size)
		default:
			err = resizeRaw(path, size)
		}
		if err != nil {
			return nil, err
		}
		res.Container = "in place"
		if res.RewriteReason != "" {
			res.Container = "rewritten"
		}
	}
	if part == nil || (!part.Changed() && (fsg == nil || !fsg.Changed())) {
		return res, nil
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%s: the container was resized, the partition was not: %w", path, err)
	}
	dev, _, err := imagefs.OpenDevice(path, true)
	if err != nil {
		return res, fmt.Errorf("%s: the container was resized, the partition was not: %w", path, err)
	}
	if dev.Size() != size {
		dev.Close()
		return res, fmt.Errorf("%s: the resized image has %d bytes, want %d", path, dev.Size(), size)
	}
	// An NTFS volume gets its backup boot sector at the grown partition's
	// end before the partition grows, so that the partition never ends
	// without one.
	if fsg != nil {
		err = fsg.prepare(dev)
	}
	if err == nil {
		err = part.Apply(dev)
	}
	if err == nil {
		err = dev.Flush()
	}
	if err == nil && fsg != nil {
		err = fsg.apply(dev)
	}
	if cerr := dev.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// containerSize checks size against the format and returns the size the
// container gets (VHD: rounded up to a CHS size unless exact).
func containerSize(format imagefs.Format, size int64, exact bool, res *Result) (int64, error) {
	if size%blockdev.SectorSize != 0 {
		return 0, fmt.Errorf("%w: %d bytes is not a whole number of 512-byte sectors", ErrSize, size)
	}
	switch format {
	case imagefs.FormatVMDKSparse, imagefs.FormatVMDKFlat:
		if size > vmdk.MaxSize {
			return 0, fmt.Errorf("%w: %d bytes exceeds the %d bytes (64 TiB) a VMDK holds", ErrSize, size, int64(vmdk.MaxSize))
		}
	case imagefs.FormatVHDDynamic, imagefs.FormatVHDFixed:
		if size > vhd.MaxSize {
			return 0, fmt.Errorf("%w: %d bytes exceeds the %d bytes (2040 GiB) a VHD holds", ErrSize, size, int64(vhd.MaxSize))
		}
		r, ok := vhd.RoundSize(size)
		if !ok {
			if exact {
				return 0, fmt.Errorf("%w: %d bytes is not a VHD CHS size (the next one is %d)", ErrSize, size, r)
			}
			if r > vhd.MaxSize {
				return 0, fmt.Errorf("%w: %d bytes rounds up to %d, past the %d bytes a VHD holds", ErrSize, size, r, int64(vhd.MaxSize))
			}
			res.Notices = append(res.Notices, fmt.Sprintf("size %d is not a VHD CHS size: the VHD gets %d bytes (geometry %v) so that every VHD reader agrees", size, r, vhd.CHS(r/512)))
			size = r
		}
	}
	return size, nil
}

// plan checks a shrink and plans the partition and file system growth.
func plan(dev blockdev.Device, path string, res *Result, size int64, opts Options) (*mbr.Growth, fsGrowth, error) {
	sector := make([]byte, mbr.SectorSize)
	if _, err := dev.ReadAt(sector, 0); err != nil {
		return nil, nil, fmt.Errorf("%s: read MBR: %w", path, err)
	}
	m, merr := mbr.Parse(sector, uint64(dev.Size()/mbr.SectorSize))
	if size < res.OldSize {
		if !opts.Shrink {
			return nil, nil, fmt.Errorf("%s: %w: %d bytes is smaller than the image (%d bytes); pass --shrink to cut off space no partition uses", path, ErrShrink, size, res.OldSize)
		}
		if opts.GrowPartition {
			return nil, nil, fmt.Errorf("%s: %w: shrinking and growing the partition at once", path, ErrShrink)
		}
		if merr != nil {
			return nil, nil, fmt.Errorf("%s: %w: no partition table to tell which space is in use (%v)", path, ErrShrink, merr)
		}
		end, err := mbr.LastEnd(dev, m)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if int64(end)*mbr.SectorSize > size {
			return nil, nil, fmt.Errorf("%s: %w: the partitions end at byte %d (sector %d), past the new size %d; shrink the file system and partition first", path, ErrShrink, int64(end)*mbr.SectorSize, end, size)
		}
		return nil, nil, nil
	}
	if merr != nil {
		return nil, nil, fmt.Errorf("%s: no partition to grow: %w", path, merr)
	}
	for _, e := range m.Entries {
		if e.Type == mbr.TypeGPT {
			return nil, nil, fmt.Errorf("%s: %w: GPT disks (protective MBR) are not resized", path, ErrUnsupported)
		}
	}
	part, err := mbr.PlanGrow(dev, m, uint64(size/mbr.SectorSize), uint64(opts.PartitionSize/mbr.SectorSize))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	res.Partition = &PartitionResult{
		Index: part.Index, Type: fmt.Sprintf("0x%02x", part.Type), StartLBA: part.Start,
		OldSectors: part.OldSectors, NewSectors: part.NewSectors, Extended: part.Extended,
	}
	off := int64(part.Start) * mbr.SectorSize
	newBytes := int64(part.NewSectors) * mbr.SectorSize
	boot := make([]byte, mbr.SectorSize)
	if _, err := dev.ReadAt(boot, off); err != nil {
		return nil, nil, fmt.Errorf("%s: partition %d: read boot sector: %w", path, part.Index, err)
	}
	// Size 0: fat32.PlanGrow checks the volume against its partition itself.
	kind, why := fsid.Detect(boot, 0)
	switch kind {
	case fsid.NTFS:
		g, err := ntfs.PlanGrow(dev, off, newBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: partition %d: %w", path, part.Index, err)
		}
		res.FileSystem = &FSResult{Type: imagefs.FSNTFS, OldSectors: g.OldSectors, NewSectors: g.NewSectors,
			OldClusters: g.OldClusters, NewClusters: g.NewClusters, ClusterSize: g.ClusterSize, AddedBytes: g.AddedBytes()}
		return part, ntfsGrowth{g}, nil
	case fsid.FAT32:
		// A damaged FAT32 boot sector comes here too: fat32.PlanGrow
		// refuses it naming the field at fault.
		g, err := fat32.PlanGrow(dev, off, newBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: partition %d: %w", path, part.Index, err)
		}
		res.FileSystem = &FSResult{Type: imagefs.FSFAT32, OldSectors: int64(g.OldSectors), NewSectors: int64(g.NewSectors),
			OldClusters: int64(g.OldClusters), NewClusters: int64(g.NewClusters), ClusterSize: g.ClusterSize, AddedBytes: g.AddedBytes()}
		return part, fatGrowth{g}, nil
	case fsid.None:
		res.FileSystem = &FSResult{Type: "none"}
		res.Notices = append(res.Notices, fmt.Sprintf("partition %d is not formatted: only the partition grows", part.Index))
		return part, nil, nil
	}
	// why names the file system (FAT16 and its cluster count, exFAT, the
	// OEM id of an unknown one) and says that only FAT32 and NTFS are read.
	return nil, nil, fmt.Errorf("%s: partition %d: %w: %v", path, part.Index, ErrUnsupported, why)
}

// resizeRaw sets the length of a raw image under an exclusive lock.
// Growing adds a hole that reads as zeros.
func resizeRaw(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := blockdev.Lock(f, true); err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Sync()
}
