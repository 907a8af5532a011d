package fat32

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/blockdev"
)

// FormatOptions describe the volume Format creates.
type FormatOptions struct {
	Label string // up to 11 characters; empty means "NO NAME"
	// HiddenSectors is the LBA of the partition. The BPB must carry it (and
	// the geometry below) because Windows' boot code and NTLDR locate the
	// volume through it.
	HiddenSectors   uint32
	Heads           uint16
	SectorsPerTrack uint16
	// VolumeID is the volume serial number; 0 picks a random one.
	VolumeID uint32
	// Fresh says the region already reads as zeros (a new image file), so
	// Format writes only the structures that are not zero; otherwise it
	// clears the reserved area, the FATs and the root cluster first.
	Fresh bool
}

// MinSize is the smallest volume Format accepts: below it FAT32 would have
// fewer than 65,525 clusters and every FAT driver would take it for FAT16.
// It is 32 reserved sectors, two 512-sector FATs and 65,527 clusters of 512
// bytes (two are trimmed so that the FAT maps every cluster).
const MinSize = (32 + 2*512 + minClusters + 2) * 512

// MaxSize is the largest volume Format accepts: the BPB counts sectors in
// 32 bits, the most an MBR partition holds too (2 TiB less one sector).
// Windows XP reads FAT32 volumes of that size; only Windows' own format
// tool stops at 32 GiB.
const MaxSize = 0xFFFFFFFF * 512

// Layout constants of the volumes Format writes, as Windows writes them.
const (
	reservedSectors = 32
	numFATs         = 2
	fsInfoSector    = 1
	backupBoot      = 6
	rootCluster     = 2
	mediaFixed      = 0xF8
)

// layout chooses the cluster size of Microsoft's FAT32 table (FAT
// specification 1.03, "FAT32 cluster size table"; the 512-byte clusters of
// its first row are kept up to 260 MiB) and the FAT size from the
// specification's formula, and returns how many clusters the FAT maps.
func layout(size int64) (clusters uint32, sectorsPerFAT int64, clusterBytes int64) {
	const mb, gb = 1 << 20, 1 << 30
	switch {
	case size <= 260*mb:
		clusterBytes = 512
	case size <= 8*gb:
		clusterBytes = 4096
	case size <= 16*gb:
		clusterBytes = 8192
	case size <= 32*gb:
		clusterBytes = 16384
	default:
		clusterBytes = 32768
	}
	total := size / 512
	spc := clusterBytes / 512
	sectorsPerFAT = (4*(total-reservedSectors) + (512*spc + 8) - 1) / (512*spc + 8)
	data := total - reservedSectors - numFATs*sectorsPerFAT
	if data < 0 {
		return 0, sectorsPerFAT, clusterBytes
	}
	n := data / spc
	if mappable := sectorsPerFAT*128 - 2; n > mappable {
		n = mappable // the volume is shortened to what its FAT maps
	}
	return uint32(n), sectorsPerFAT, clusterBytes
}

// CheckSize reports whether a volume of size bytes can be formatted.
func CheckSize(size int64) error {
	if size > MaxSize {
		return fmt.Errorf("fat32: a %d-byte volume exceeds the FAT32 maximum of %d bytes (2^32-1 sectors)", size, int64(MaxSize))
	}
	clusters, _, cb := layout(size)
	if clusters < minClusters {
		return fmt.Errorf("fat32: a %d-byte volume gives %d clusters of %d bytes; FAT32 needs at least %d (a volume of at least %d MiB)",
			size, clusters, cb, minClusters, MinSize>>20+1)
	}
	return nil
}

// Format writes an empty FAT32 file system over [off, off+size) of dev:
// boot sector and its backup, FSInfo and its backup, two FATs and an empty
// root directory (holding the label, when there is one). The BPB carries
// the geometry and hidden sectors of opts, which Windows' boot code and
// NTLDR locate the volume by. xpboot's boot code is installed separately.
func Format(dev blockdev.ReaderWriterAt, off, size int64, opts FormatOptions) error {
	if err := CheckSize(size); err != nil {
		return err
	}
	if err := checkLabel(opts.Label); err != nil {
		return err
	}
	clusters, spf, cb := layout(size)
	spc := cb / 512
	total := reservedSectors + numFATs*spf + int64(clusters)*spc
	if rest := size/512 - total; rest < spc {
		total += rest // the tail too short for another cluster stays in the volume
	}
	serial := opts.VolumeID
	for serial == 0 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		serial = binary.LittleEndian.Uint32(b[:])
	}
	label := strings.ToUpper(opts.Label)
	le := binary.LittleEndian
	boot := make([]byte, 512)
	copy(boot, []byte{0xEB, 0x58, 0x90})
	copy(boot[3:11], "MSWIN4.1") // the OEM name Microsoft's FAT specification recommends
	le.PutUint16(boot[0x0B:], 512)
	boot[0x0D] = byte(spc)
	le.PutUint16(boot[0x0E:], reservedSectors)
	boot[0x10] = numFATs
	boot[0x15] = mediaFixed
	le.PutUint16(boot[offSectorsPerTrack:], opts.SectorsPerTrack)
	le.PutUint16(boot[offHeads:], opts.Heads)
	le.PutUint32(boot[offHiddenSectors:], opts.HiddenSectors)
	le.PutUint32(boot[0x20:], uint32(total))
	le.PutUint32(boot[0x24:], uint32(spf))
	le.PutUint32(boot[0x2C:], rootCluster)
	le.PutUint16(boot[0x30:], fsInfoSector)
	le.PutUint16(boot[0x32:], backupBoot)
	boot[offDriveNumber] = 0x80
	boot[0x42] = 0x29 // extended boot signature: serial, label and type follow
	le.PutUint32(boot[0x43:], serial)
	bpbLabel := "NO NAME"
	if label != "" {
		bpbLabel = label
	}
	copy(boot[0x47:0x52], fmt.Sprintf("%-11s", bpbLabel))
	copy(boot[0x52:0x5A], "FAT32   ")
	boot[510], boot[511] = 0x55, 0xAA
	if _, err := ParseBootSector(boot, size); err != nil {
		return fmt.Errorf("fat32: formatter produced an invalid boot sector: %w", err)
	}

	info := make([]byte, 512)
	le.PutUint32(info[0:], fsInfoLeadSig)
	le.PutUint32(info[484:], fsInfoStructSig)
	le.PutUint32(info[488:], clusters-1) // every cluster but the root directory's
	le.PutUint32(info[492:], rootCluster+1)
	le.PutUint32(info[508:], fsInfoTrailSig)
	// Windows also puts the boot-sector signature at the end of the third
	// reserved sector (sector 2, and 8 in the backup), where its boot code
	// continues.
	third := make([]byte, 512)
	third[510], third[511] = 0x55, 0xAA

	sectorAt := func(n int64) int64 { return off + n*512 }
	if !opts.Fresh {
		// Clear what an earlier file system left in the structures the new
		// one reads: the reserved area, both FATs and the root cluster.
		if err := zero(dev, sectorAt(0), (reservedSectors+numFATs*spf)*512); err != nil {
			return err
		}
		if err := zero(dev, sectorAt(reservedSectors+numFATs*spf), cb); err != nil {
			return err
		}
	}
	for _, w := range []struct {
		sector int64
		data   []byte
	}{{0, boot}, {fsInfoSector, info}, {2, third}, {backupBoot, boot}, {backupBoot + fsInfoSector, info}, {backupBoot + 2, third}} {
		if _, err := dev.WriteAt(w.data, sectorAt(w.sector)); err != nil {
			return err
		}
	}
	fat := make([]byte, 12)
	le.PutUint32(fat[0:], 0x0FFFFF00|mediaFixed)
	le.PutUint32(fat[4:], 0x0FFFFFFF) // end of chain; clean-shutdown and no-error bits set
	le.PutUint32(fat[8:], 0x0FFFFFFF) // the root directory: one cluster
	for i := int64(0); i < numFATs; i++ {
		if _, err := dev.WriteAt(fat, sectorAt(reservedSectors+i*spf)); err != nil {
			return err
		}
	}
	if label != "" {
		// Windows shows the label of the root directory's volume-label entry.
		e := make([]byte, 32)
		copy(e[0:11], fmt.Sprintf("%-11s", label))
		e[11] = 0x08
		if _, err := dev.WriteAt(e, sectorAt(reservedSectors+numFATs*spf)); err != nil {
			return err
		}
	}
	return nil
}

// checkLabel accepts what Windows accepts in a FAT volume label: up to 11
// printable ASCII characters, none of those it forbids in file names.
func checkLabel(label string) error {
	if len(label) > 11 {
		return fmt.Errorf("fat32: label %q is longer than 11 characters", label)
	}
	for _, r := range label {
		if r < 0x20 || r > 0x7E || strings.ContainsRune(`"*+,./:;<=>?[\]|`, r) {
			return fmt.Errorf("fat32: label %q: %q is not allowed in a FAT volume label", label, r)
		}
	}
	return nil
}

// zero writes n zero bytes at off, in pieces of at most 1 MiB.
func zero(dev blockdev.ReaderWriterAt, off, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := dev.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// MetadataSize is the size of the reserved area and both FATs of a volume
// of size bytes: what Format clears on a device that is not Fresh.
func MetadataSize(size int64) int64 {
	_, spf, _ := layout(size)
	return (32 + 2*spf) * 512
}
