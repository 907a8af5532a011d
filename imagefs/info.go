package imagefs

import (
	"fmt"
	"os"

	"github.com/xpboot/xpboot/imagefs/mbr"
)

// Info describes a disk image for `xpboot image info`.
type Info struct {
	Path          string          `json:"path"`
	Format        Format          `json:"format"`
	VirtualSize   int64           `json:"virtual_size"`
	FileSize      int64           `json:"file_size"`
	DiskSignature string          `json:"disk_signature"`
	BootCode      string          `json:"boot_code"`
	Geometry      *GeometryInfo   `json:"geometry,omitempty"`
	Partitions    []PartitionInfo `json:"partitions"`
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
		Path:          img.Path,
		Format:        img.Format,
		VirtualSize:   img.Dev.Size(),
		DiskSignature: fmt.Sprintf("%08x", img.MBR.Signature),
		BootCode:      describeMBRCode(img.MBR),
		Partitions:    []PartitionInfo{},
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
		if pi.FS == FSFAT32 || pi.FS == FSNTFS {
			if fs, err := img.FS(p.Index); err != nil {
				pi.Error = err.Error()
			} else {
				if l, err := fs.Label(); err == nil {
					pi.Label = l
				}
				if f, ok := fs.(fatFS); ok {
					free := f.FreeBytes()
					pi.FreeBytes = &free
				}
			}
		}
		info.Partitions = append(info.Partitions, pi)
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
