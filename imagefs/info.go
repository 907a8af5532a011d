package imagefs

import (
	"fmt"
	"os"
	"strings"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// Info describes a disk image for `xpboot image info`.
type Info struct {
	Path        string `json:"path"`
	Format      Format `json:"format"`
	VirtualSize int64  `json:"virtual_size"`
	// FileSize is the size of every file of the image (a flat VMDK's
	// descriptor and extents), without its parents.
	FileSize int64 `json:"file_size"`
	// Allocated counts the bytes of the virtual disk stored in this image
	// (not holes, unallocated grains or blocks, or the parent's data).
	Allocated int64 `json:"allocated"`
	// Files lists the image's files; Parents the chain of backing images
	// of a delta or differencing disk, nearest first.
	Files   []string `json:"files,omitempty"`
	Parents []string `json:"parents,omitempty"`
	// PartitionTable is "mbr", "gpt" or "none"; TableError says why a
	// table could not be read.
	PartitionTable string          `json:"partition_table"`
	TableError     string          `json:"partition_table_error,omitempty"`
	DiskSignature  string          `json:"disk_signature,omitempty"`
	BootCode       string          `json:"boot_code,omitempty"`
	Geometry       *GeometryInfo   `json:"geometry,omitempty"`
	Partitions     []PartitionInfo `json:"partitions"`
}

// Describe describes the image at path whatever it holds: its container
// (format, virtual size, files, allocation, parent chain) and then its
// partitions, or why it has no partition table xpboot reads (a blank
// disk, GPT). It fails only when the container itself cannot be opened.
// With unlocked it takes no lock (see OpenUnlocked).
func Describe(path string, unlocked bool) (*Info, error) {
	open := func(p string) (blockdev.Device, Format, error) { return OpenDevice(p, false) }
	if unlocked {
		open = OpenDeviceUnlocked
	}
	dev, format, err := open(path)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	if dev.Size() < mbr.SectorSize || dev.Size()%mbr.SectorSize != 0 {
		return nil, fmt.Errorf("%s: %d bytes is not a disk image (not a whole number of 512-byte sectors)", path, dev.Size())
	}
	var info *Info
	if img, err := openDevice(path, format, dev, false); err == nil {
		info = img.Info()
	} else {
		info = &Info{Path: path, Format: format, VirtualSize: dev.Size(), PartitionTable: "none",
			TableError: err.Error(), Partitions: []PartitionInfo{}}
		if strings.Contains(err.Error(), "GPT") {
			info.PartitionTable = "gpt"
		}
		if st, err := os.Stat(path); err == nil {
			info.FileSize = st.Size()
		}
	}
	describeContainer(info, dev)
	return info, nil
}

// Container facts that only image info asks for: the files an image
// consists of, its backing image, and the name it was opened by. They are
// not device capabilities (nothing decides how to serve or copy a disk by
// them), so they stay optional interfaces of the container types instead
// of methods of blockdev.Device. The assertions below hold vmdk.Disk and
// vhd.Disk to them, so that a renamed method fails the build instead of
// silently emptying image info's files and parents.
type (
	fileLister interface{ FileNames() []string }
	layered    interface{ Parent() blockdev.Device }
	named      interface{ Path() string }
)

var (
	_ fileLister = (*vmdk.Disk)(nil)
	_ layered    = (*vmdk.Disk)(nil)
	_ named      = (*vmdk.Disk)(nil)
	_ fileLister = (*vhd.Disk)(nil)
	_ layered    = (*vhd.Disk)(nil)
	_ named      = (*vhd.Disk)(nil)
)

// describeContainer fills in the container facts of info from dev.
func describeContainer(info *Info, dev blockdev.Device) {
	if d, ok := dev.(fileLister); ok {
		info.Files = d.FileNames()
		info.FileSize = 0
		for _, f := range info.Files {
			if st, err := os.Stat(f); err == nil {
				info.FileSize += st.Size()
			}
		}
	}
	if ext, err := dev.Extents(0, dev.Size()); err == nil {
		for _, e := range ext {
			if e.State == blockdev.Data {
				info.Allocated += e.Len
			}
		}
	}
	for d, depth := dev, 0; depth < 64; depth++ {
		p, ok := d.(layered)
		if !ok || p.Parent() == nil {
			break
		}
		d = p.Parent()
		if n, ok := d.(named); ok {
			info.Parents = append(info.Parents, n.Path())
		} else {
			info.Parents = append(info.Parents, "(unnamed)")
		}
	}
}

// GeometryInfo is the CHS translation the partition table was laid out for.
type GeometryInfo struct {
	Heads           uint32 `json:"heads"`
	SectorsPerTrack uint32 `json:"sectors_per_track"`
}

// PartitionInfo describes one partition entry and its file system.
type PartitionInfo struct {
	Index      int    `json:"index"`
	Active     bool   `json:"active"`
	Type       string `json:"type"`
	TypeName   string `json:"type_name"`
	StartLBA   uint32 `json:"start_lba"`
	Sectors    uint32 `json:"sectors"`
	Size       int64  `json:"size"`
	StartCHS   string `json:"start_chs"`
	EndCHS     string `json:"end_chs"`
	CHSMatches bool   `json:"chs_matches_lba"`
	FS         string `json:"filesystem"`
	Label      string `json:"label,omitempty"`
	FreeBytes  *int64 `json:"free_bytes,omitempty"`
	Error      string `json:"error,omitempty"`
}

var typeNames = map[byte]string{
	mbr.TypeFAT32CHS: "FAT32 (CHS)",
	mbr.TypeFAT32LBA: "FAT32 (LBA)",
	mbr.TypeNTFS:     "NTFS/exFAT/HPFS",
	mbr.TypeFAT16LBA: "FAT16 (LBA)",
	0x06:             "FAT16",
	0x04:             "FAT16 (<32 MiB)",
	0x01:             "FAT12",
	mbr.TypeExtended: "Extended",
	mbr.TypeExtLBA:   "Extended (LBA)",
	0x83:             "Linux",
	mbr.TypeGPT:      "GPT protective",
}

// Info describes the image: container, size, partition table and the file
// system of each partition. Problems with one partition are reported in its
// Error field rather than failing the whole description.
func (img *Image) Info() *Info {
	info := &Info{
		Path:           img.Path,
		Format:         img.Format,
		VirtualSize:    img.Dev.Size(),
		PartitionTable: "mbr",
		DiskSignature:  fmt.Sprintf("%08x", img.MBR.Signature),
		BootCode:       describeMBRCode(img.MBR),
		Partitions:     []PartitionInfo{},
	}
	if st, err := os.Stat(img.Path); err == nil {
		info.FileSize = st.Size()
	}
	g, ok := img.MBR.GuessGeometry()
	if ok {
		info.Geometry = &GeometryInfo{Heads: g.Heads, SectorsPerTrack: g.SectorsPerTrack}
	}
	for _, p := range img.Partitions() {
		e := p.Entry
		pi := PartitionInfo{
			Index: p.Index, Active: e.Active, Type: fmt.Sprintf("0x%02x", e.Type), TypeName: typeNames[e.Type],
			StartLBA: e.Start, Sectors: e.Sectors, Size: p.Size,
			StartCHS: e.StartCHS.String(), EndCHS: e.EndCHS.String(),
		}
		if pi.TypeName == "" {
			pi.TypeName = "unknown"
		}
		if ok {
			pi.CHSMatches = g.CHSOf(e.Start) == e.StartCHS && g.CHSOf(uint32(e.End()-1)) == e.EndCHS
		}
		pi.FS = img.Detect(p)
		if pi.FS == FSUnknown {
			if err := img.fatDiagnosis(p); err != nil {
				pi.Error = err.Error()
			}
		}
		if pi.FS == FSFAT32 || pi.FS == FSNTFS {
			if fs, err := img.FS(p.Index); err != nil {
				pi.Error = err.Error()
			} else {
				if l, err := fs.Label(); err == nil {
					pi.Label = l
				}
				// Negative when the volume cannot say (an NTFS volume its
				// writer refuses): shown as not known, not as zero.
				if free := fs.FreeBytes(); free >= 0 {
					pi.FreeBytes = &free
				}
			}
		}
		info.Partitions = append(info.Partitions, pi)
	}
	if err := img.LogicalErr(); err != nil {
		info.TableError = err.Error()
	}
	return info
}

func describeMBRCode(m *mbr.MBR) string {
	empty := true
	for _, b := range m.Code {
		if b != 0 {
			empty = false
			break
		}
	}
	switch {
	case empty:
		return "none"
	case isXPBootMBR(m):
		return "xpboot"
	}
	return "other"
}

// fatDiagnosis explains why a partition that is meant to hold FAT32 (its
// type says so, or its boot sector names FAT32) is not readable: the boot
// sector field at fault, with its offset. It returns nil for partitions
// that do not look like FAT32 at all.
func (img *Image) fatDiagnosis(p Partition) error {
	boot := make([]byte, 512)
	if _, err := img.Dev.ReadAt(boot, p.Offset); err != nil {
		return fmt.Errorf("boot sector at byte %d: %w", p.Offset, err)
	}
	fatType := p.Entry.Type == mbr.TypeFAT32CHS || p.Entry.Type == mbr.TypeFAT32LBA
	if !fatType && string(boot[0x52:0x5A]) != "FAT32   " {
		return nil
	}
	if _, err := fat32.ParseBootSector(boot, p.Size); err != nil {
		return fmt.Errorf("damaged FAT32 boot sector (partition at byte %d): %w", p.Offset, err)
	}
	return nil
}
