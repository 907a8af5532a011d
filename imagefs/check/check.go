package check

import (
	"context"
	"errors"
	"fmt"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/fsid"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// Severities of a Finding.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Finding is one problem found in an image.
type Finding struct {
	Severity  string `json:"severity"`  // "error" or "warning"
	Structure string `json:"structure"` // "vmdk grain table", "partition table", "FAT", "$Bitmap", …
	// Offset is a byte offset: in File for container findings, else on
	// the virtual disk (a partition's findings include its start).
	Offset int64 `json:"offset"`
	// Path is the file or directory inside the volume, when known.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Partition is the partition the finding is in (0: the container or
	// the partition table; -1: a volume without a partition table).
	Partition int `json:"partition,omitempty"`
	// File is the container file a container finding's Offset is in.
	File string `json:"file,omitempty"`
}

// Checked describes one stage of the check that ran.
type Checked struct {
	What      string `json:"what"` // "container", "partition table", "file system"
	Partition int    `json:"partition,omitempty"`
	Kind      string `json:"kind"` // the container format, "mbr", "fat32", "ntfs"
	Offset    int64  `json:"offset"`
	Size      int64  `json:"size"`
	// Skipped says why the stage did not run (a file system xpboot does
	// not read, a container too damaged to open).
	Skipped string `json:"skipped,omitempty"`
}

// Report is the result of Image.
type Report struct {
	Path        string         `json:"path"`
	Format      imagefs.Format `json:"format"`
	VirtualSize int64          `json:"virtual_size"`
	Checked     []Checked      `json:"checked"`
	Findings    []Finding      `json:"findings"`
}

// Errors reports how many findings have severity error.
func (r *Report) Errors() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			n++
		}
	}
	return n
}

// Options tunes Image.
type Options struct {
	// Unlocked reads an image another process holds (see
	// imagefs.OpenUnlocked).
	Unlocked bool
}

// Image checks the image at path; see the package documentation. It
// returns ctx's error, and no report, once ctx is cancelled: the
// container, FAT32 and partition table checks poll it as they go, the
// NTFS check only before and after it runs.
func Image(ctx context.Context, path string, opts Options) (*Report, error) {
	format, err := imagefs.Detect(path)
	if err != nil {
		return nil, err
	}
	rep := &Report{Path: path, Format: format, Checked: []Checked{}, Findings: []Finding{}}
	if err := rep.container(ctx, path, format); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	open := func(p string) (blockdev.Device, imagefs.Format, error) { return imagefs.OpenDevice(p, false) }
	if opts.Unlocked {
		open = imagefs.OpenDeviceUnlocked
	}
	dev, _, err := open(path)
	if err != nil {
		if len(rep.Findings) == 0 {
			return nil, err
		}
		rep.Checked = append(rep.Checked, Checked{What: "partition table", Kind: "mbr", Skipped: "the container cannot be opened: " + err.Error()})
		return rep, nil
	}
	defer dev.Close()
	rep.VirtualSize = dev.Size()
	rep.disk(ctx, dev)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// container runs the container format's own check.
func (r *Report) container(ctx context.Context, path string, format imagefs.Format) error {
	c := Checked{What: "container", Kind: string(format)}
	switch {
	case format.IsVMDK():
		fs, err := vmdk.Check(ctx, path)
		if err != nil {
			return err
		}
		for _, f := range fs {
			r.add(Finding{Severity: f.Severity, Structure: "vmdk " + f.Structure, Offset: f.Offset, Message: f.Message, File: f.File})
		}
	case format.IsVHD():
		fs, err := vhd.Check(ctx, path)
		if err != nil {
			return err
		}
		for _, f := range fs {
			r.add(Finding{Severity: f.Severity, Structure: "vhd " + f.Structure, Offset: f.Offset, Message: f.Message, File: f.File})
		}
	default:
		dev, _, err := imagefs.OpenDevice(path, false)
		if err != nil {
			return err
		}
		size := dev.Size()
		dev.Close()
		if size%blockdev.SectorSize != 0 {
			r.add(Finding{Severity: SeverityError, Structure: "raw image", Offset: size - size%blockdev.SectorSize, File: path,
				Message: fmt.Sprintf("size %d is not a multiple of %d; the last %d bytes are not a whole sector", size, blockdev.SectorSize, size%blockdev.SectorSize)})
		}
	}
	r.Checked = append(r.Checked, c)
	return nil
}

// part is a partition to check.
type part struct {
	index     int
	typ       byte
	off, size int64
}

// disk checks the partition table and the file system of each partition.
func (r *Report) disk(ctx context.Context, dev blockdev.Device) {
	size := dev.Size() - dev.Size()%blockdev.SectorSize
	if size < blockdev.SectorSize {
		r.add(Finding{Severity: SeverityError, Structure: "partition table", Message: fmt.Sprintf("a disk of %d bytes has no sector 0", dev.Size())})
		return
	}
	sector := make([]byte, blockdev.SectorSize)
	if _, err := dev.ReadAt(sector, 0); err != nil {
		r.add(Finding{Severity: SeverityError, Structure: "partition table", Message: "sector 0 unreadable: " + err.Error()})
		return
	}
	// A volume that starts at sector 0 (a "superfloppy", or a bare
	// volume file) has a boot sector, not a partition table.
	if kind := fsKind(sector, 0); kind != "" {
		r.Checked = append(r.Checked, Checked{What: "partition table", Kind: "none", Skipped: "sector 0 is a " + kind + " boot sector (a volume without a partition table)"})
		r.volume(ctx, dev, part{index: -1, off: 0, size: size})
		return
	}
	fs, err := mbr.CheckTable(dev, size)
	if errors.Is(err, mbr.ErrNoTable) {
		r.Checked = append(r.Checked, Checked{What: "partition table", Kind: "mbr", Skipped: "sector 0 holds no partition table"})
		r.add(Finding{Severity: SeverityWarning, Structure: "partition table", Offset: 510, Message: "sector 0 does not end in 55 AA: the disk has no partition table and nothing to check inside"})
		return
	}
	if err != nil {
		r.add(Finding{Severity: SeverityError, Structure: "partition table", Message: err.Error()})
		return
	}
	r.Checked = append(r.Checked, Checked{What: "partition table", Kind: "mbr", Size: blockdev.SectorSize})
	for _, f := range fs {
		r.add(Finding{Severity: f.Severity, Structure: f.Structure, Offset: f.Offset, Message: f.Message})
	}
	entries := mbr.Entries(sector)
	var parts []part
	next := 5
	for i, e := range entries {
		if e.Empty() || e.Sectors == 0 || e.Start == 0 || e.Type == mbr.TypeGPT {
			continue
		}
		if e.End()*blockdev.SectorSize > uint64(size) {
			r.Checked = append(r.Checked, Checked{What: "file system", Partition: i + 1, Offset: int64(e.Start) * blockdev.SectorSize,
				Size: int64(e.Sectors) * blockdev.SectorSize, Skipped: "the partition lies past the end of the disk"})
			continue
		}
		if mbr.IsExtended(e.Type) {
			logical, _ := mbr.ReadLogical(dev, e) // its errors are findings already
			for _, l := range logical {
				parts = append(parts, part{next, l.Type, int64(l.Start) * blockdev.SectorSize, int64(l.Sectors) * blockdev.SectorSize})
				next++
			}
			continue
		}
		parts = append(parts, part{i + 1, e.Type, int64(e.Start) * blockdev.SectorSize, int64(e.Sectors) * blockdev.SectorSize})
	}
	for _, p := range parts {
		if ctx.Err() != nil {
			return
		}
		r.volume(ctx, dev, p)
	}
}

// fsKind names the file system whose boot sector b is, or "": FAT32
// (a damaged FAT32 boot sector too, so that its fault is reported) or
// NTFS, by fsid.Detect.
func fsKind(b []byte, size int64) string {
	switch kind, _ := fsid.Detect(b, size); kind {
	case fsid.NTFS:
		return imagefs.FSNTFS
	case fsid.FAT32:
		return imagefs.FSFAT32
	}
	return ""
}

// volume checks the file system of one partition.
func (r *Report) volume(ctx context.Context, dev blockdev.Device, p part) {
	c := Checked{What: "file system", Partition: p.index, Offset: p.off, Size: p.size}
	boot := make([]byte, blockdev.SectorSize)
	if _, err := dev.ReadAt(boot, p.off); err != nil {
		c.Skipped = "boot sector unreadable: " + err.Error()
		r.Checked = append(r.Checked, c)
		return
	}
	c.Kind = fsKind(boot, p.size)
	if c.Kind == "" && (p.typ == mbr.TypeFAT32CHS || p.typ == mbr.TypeFAT32LBA) {
		c.Kind = imagefs.FSFAT32 // the type says FAT32: let the check say why it is not
	}
	switch c.Kind {
	case imagefs.FSFAT32:
		fs, err := fat32.Check(ctx, dev, p.off, p.size)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.add(Finding{Severity: SeverityError, Structure: "FAT32 boot sector", Offset: p.off + errOff(err), Partition: p.index, Message: err.Error()})
		}
		for _, f := range fs {
			r.add(Finding{Severity: f.Severity, Structure: f.Structure, Offset: p.off + f.Offset, Path: f.Path, Message: f.Message, Partition: p.index})
		}
	case imagefs.FSNTFS:
		fs, err := ntfs.Check(dev, p.off, dev.Size())
		if err != nil {
			r.add(Finding{Severity: SeverityError, Structure: "NTFS", Offset: p.off + errOff(err), Partition: p.index, Message: err.Error()})
		}
		for _, f := range fs {
			r.add(Finding{Severity: f.Severity, Structure: f.Structure, Offset: p.off + f.Offset, Path: f.Path, Message: f.Message, Partition: p.index})
		}
	default:
		c.Kind = fmt.Sprintf("type 0x%02x", p.typ)
		c.Skipped = "not a FAT32 or NTFS file system"
	}
	r.Checked = append(r.Checked, c)
}

// errOff extracts the volume offset of a file system's FormatError.
func errOff(err error) int64 {
	var fe *fat32.FormatError
	if errors.As(err, &fe) {
		return fe.Off
	}
	var ne *ntfs.FormatError
	if errors.As(err, &ne) && ne.Record < 0 {
		return ne.Off
	}
	return 0
}
