package fat32

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/xpboot/xpboot/blockdev"
)

// ErrFATTooSmall is wrapped when a FAT32 volume cannot grow in place
// because its FATs have no room for the entries of the new clusters: the
// FATs would have to grow, which moves the whole data area.
var ErrFATTooSmall = errors.New("fat32: the FAT cannot map the grown volume")

// Growth is a planned enlargement of a FAT32 volume into a larger
// partition. PlanGrow computes it without writing; Apply writes it.
type Growth struct {
	OldSectors, NewSectors   uint32 // BPB total sectors
	OldClusters, NewClusters uint32
	ClusterSize              int64
	FATSectors               uint32 // sectors per FAT (unchanged)
	// MaxSectors is the largest total sector count the existing FATs
	// can map, so that a refusal can say how far the volume could grow.
	MaxSectors uint32

	off      int64
	bs       *BootSector
	boot     []byte // primary boot sector as read
	backup   []byte // backup boot sector as read, nil when there is none
	fsInfo   []int64
	oldFree  uint32
	freeOK   bool
	sectorSz int64
}

// AddedBytes is the data space the growth adds.
func (g *Growth) AddedBytes() int64 {
	return int64(g.NewClusters-g.OldClusters) * g.ClusterSize
}

// PlanGrow plans growing the FAT32 volume at off on dev into a partition
// of newSize bytes. The FATs keep their size: the growth succeeds when
// the FAT sectors already hold an entry for every new cluster (Windows
// and xpboot round the FAT up, so there is often room for some growth),
// and is refused with ErrFATTooSmall otherwise, naming how many sectors
// per FAT the new size would need. A partition not larger than the volume
// is a no-op Growth. Nothing is written.
func PlanGrow(dev blockdev.ReaderWriterAt, off, newSize int64) (*Growth, error) {
	boot := make([]byte, 512)
	if _, err := dev.ReadAt(boot, off); err != nil {
		return nil, fmt.Errorf("fat32: read boot sector: %w", err)
	}
	bs, err := ParseBootSector(boot, 0)
	if err != nil {
		return nil, err
	}
	bps := int64(bs.BytesPerSector)
	g := &Growth{
		OldSectors: bs.TotalSectors, OldClusters: bs.Clusters(), ClusterSize: bs.ClusterSize(),
		FATSectors: bs.FATSize, off: off, bs: bs, boot: boot, sectorSz: bps,
	}
	total := newSize / bps
	if total > 0xFFFFFFFF {
		total = 0xFFFFFFFF
	}
	if total < int64(bs.TotalSectors) {
		return nil, fmt.Errorf("fat32: the partition of %d sectors is smaller than the file system (%d sectors); FAT32 volumes are not shrunk", total, bs.TotalSectors)
	}
	meta := int64(bs.ReservedSectors) + int64(bs.NumFATs)*int64(bs.FATSize)
	spc := int64(bs.SectorsPerCluster)
	// Entries the FAT sectors hold, minus the two reserved ones; the
	// cluster count must also stay below the FAT32 maximum.
	maxClusters := min(int64(bs.FATSize)*bps/4-2, fatEntryMask-10)
	g.MaxSectors = uint32(min(meta+maxClusters*spc+spc-1, 0xFFFFFFFF))
	clusters := (total - meta) / spc
	if clusters > maxClusters {
		need := ((clusters+2)*4 + bps - 1) / bps
		return nil, fmt.Errorf("%w: %d sectors would hold %d clusters, whose entries need %d sectors per FAT; the FATs have %d sectors (room for %d clusters, a file system of at most %d sectors = %d bytes); growing the FAT would move the data area, which xpboot does not do",
			ErrFATTooSmall, total, clusters, need, bs.FATSize, maxClusters, g.MaxSectors, int64(g.MaxSectors)*bps)
	}
	g.NewSectors = uint32(total)
	g.NewClusters = uint32(clusters)
	if g.NewClusters == g.OldClusters {
		// Sectors past the last whole cluster are unused either way;
		// keep the volume as it is.
		g.NewSectors = g.OldSectors
		return g, nil
	}
	if bs.BackupBootSector != 0 && bs.BackupBootSector < bs.ReservedSectors {
		g.backup = make([]byte, 512)
		if _, err := dev.ReadAt(g.backup, off+int64(bs.BackupBootSector)*bps); err != nil {
			return nil, fmt.Errorf("fat32: read backup boot sector %d: %w", bs.BackupBootSector, err)
		}
		if g.backup[510] != 0x55 || g.backup[511] != 0xAA {
			g.backup = nil // not a boot sector: leave it alone
		}
	}
	// FSInfo sectors with valid signatures, and the free count they hold.
	for _, sec := range []int64{int64(bs.FSInfoSector), int64(bs.BackupBootSector) + int64(bs.FSInfoSector)} {
		if bs.FSInfoSector == 0 || sec >= int64(bs.ReservedSectors) || (bs.BackupBootSector == 0 && sec != int64(bs.FSInfoSector)) {
			continue
		}
		b := make([]byte, 512)
		if _, err := dev.ReadAt(b, off+sec*bps); err != nil {
			return nil, fmt.Errorf("fat32: read FSInfo sector %d: %w", sec, err)
		}
		le := binary.LittleEndian
		if le.Uint32(b[0:]) != fsInfoLeadSig || le.Uint32(b[484:]) != fsInfoStructSig {
			continue
		}
		if len(g.fsInfo) == 0 {
			g.oldFree = le.Uint32(b[488:])
			g.freeOK = g.oldFree <= g.OldClusters
		}
		g.fsInfo = append(g.fsInfo, sec)
	}
	return g, nil
}

// Changed reports whether Apply writes anything.
func (g *Growth) Changed() bool { return g.NewSectors != g.OldSectors }

// barrier makes the writes so far durable before later ones, when dev can.
func barrier(dev blockdev.ReaderWriterAt) error {
	if f, ok := dev.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("fat32: flush: %w", err)
		}
	}
	return nil
}

// Apply writes the growth (flushing dev between the steps when it has a
// Flush method). The order keeps every intermediate state a
// consistent volume: first the FSInfo free counts are set to "unknown"
// (0xFFFFFFFF, always valid), then the FAT entries of the new clusters
// are zeroed in every FAT copy (they lie past the old cluster count, so
// no reader looks at them yet), then the backup boot sector and last the
// primary boot sector, one sector write that commits the new size; only
// then do the FSInfo sectors get the real free count. A crash leaves the
// old volume, or the new one with an unknown free count.
func (g *Growth) Apply(dev blockdev.ReaderWriterAt) error {
	if !g.Changed() {
		return nil
	}
	bps := g.sectorSz
	le := binary.LittleEndian
	setFree := func(free uint32) error {
		for _, sec := range g.fsInfo {
			b := make([]byte, 512)
			if _, err := dev.ReadAt(b, g.off+sec*bps); err != nil {
				return fmt.Errorf("fat32: read FSInfo sector %d: %w", sec, err)
			}
			le.PutUint32(b[488:], free)
			if _, err := dev.WriteAt(b, g.off+sec*bps); err != nil {
				return fmt.Errorf("fat32: write FSInfo sector %d: %w", sec, err)
			}
		}
		return nil
	}
	if err := setFree(0xFFFFFFFF); err != nil {
		return err
	}
	// Zero the entries from the first new cluster to the end of the FAT
	// region the new count uses (whole entries, cluster numbers
	// OldClusters+2 .. NewClusters+1).
	first, last := int64(g.OldClusters)+2, int64(g.NewClusters)+2
	zero := make([]byte, min((last-first)*4, 1<<20))
	for i := 0; i < int(g.bs.NumFATs); i++ {
		base := g.off + g.bs.fatStart(i)
		for at := first * 4; at < last*4; at += int64(len(zero)) {
			n := min(int64(len(zero)), last*4-at)
			if _, err := dev.WriteAt(zero[:n], base+at); err != nil {
				return fmt.Errorf("fat32: zero FAT %d entries at byte 0x%x: %w", i+1, g.bs.fatStart(i)+at, err)
			}
		}
	}
	if err := barrier(dev); err != nil {
		return err
	}
	if g.backup != nil {
		le.PutUint32(g.backup[0x20:], g.NewSectors)
		if _, err := dev.WriteAt(g.backup, g.off+int64(g.bs.BackupBootSector)*bps); err != nil {
			return fmt.Errorf("fat32: write backup boot sector: %w", err)
		}
	}
	le.PutUint32(g.boot[0x20:], g.NewSectors)
	if _, err := dev.WriteAt(g.boot, g.off); err != nil {
		return fmt.Errorf("fat32: write boot sector: %w", err)
	}
	if err := barrier(dev); err != nil {
		return err
	}
	if g.freeOK {
		return setFree(g.oldFree + (g.NewClusters - g.OldClusters))
	}
	return nil
}
