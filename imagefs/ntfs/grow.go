package ntfs

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/xpboot/xpboot/blockdev"
)

// Growth is a planned enlargement of an NTFS volume into a larger
// partition: more clusters in the boot sector, a longer $Bitmap (whose
// $DATA may take more clusters from the old free space), a longer $BadClus
// $Bad stream and the backup boot sector moved to the new last sector.
// $MFT does not change: the added clusters are free space. PlanGrow
// computes every byte to write without writing; Apply writes.
type Growth struct {
	OldSectors, NewSectors   int64 // boot sector total sectors
	OldClusters, NewClusters int64
	ClusterSize              int64
	// BitmapClusters is the number of clusters $Bitmap's $DATA takes from
	// the old free space (0 when its allocation already covers the new
	// size).
	BitmapClusters int64

	v        *vol
	boot     []byte
	bitmap   []byte // the whole new $Bitmap content
	bmRuns   []run
	bmFrom   int64 // first byte of bitmap that changes
	recs     []*record
	sectSize int64
}

// Changed reports whether Apply writes anything.
func (g *Growth) Changed() bool { return g.NewSectors != g.OldSectors }

// AddedBytes is the free space the growth adds (the added clusters, less
// those the longer $Bitmap takes from the old free space).
func (g *Growth) AddedBytes() int64 {
	return (g.NewClusters - g.OldClusters - g.BitmapClusters) * g.ClusterSize
}

// PlanGrow plans growing the NTFS volume at byte off of dev into a
// partition of newSize bytes. The volume must pass the same guard rails as
// writing (NTFS 3.1, not dirty, clean $LogFile, $MFTMirr in step, no live
// hibernation file). The boot sector's total sectors become the
// partition's sectors minus one: the last sector holds the backup boot
// sector, as Windows and mkntfs lay it out. Shrinking is refused. Nothing
// is written.
func PlanGrow(dev blockdev.ReaderWriterAt, off, newSize int64) (*Growth, error) {
	boot := make([]byte, 512)
	if _, err := dev.ReadAt(boot, off); err != nil {
		return nil, fmt.Errorf("ntfs: read boot sector: %w", err)
	}
	v, err := openVol(dev, off, off+newSize)
	if err != nil {
		return nil, err
	}
	bps := int64(u16(boot, 0x0B))
	spc := v.csize / bps
	g := &Growth{
		OldSectors: int64(u64(boot, 0x28)), OldClusters: v.clusters, ClusterSize: v.csize,
		v: v, boot: boot, sectSize: bps,
	}
	g.NewSectors = newSize/bps - 1
	if g.NewSectors < g.OldSectors {
		return nil, fmt.Errorf("ntfs: the partition of %d sectors is smaller than the volume (%d sectors and the backup boot sector); NTFS volumes are not shrunk", newSize/bps, g.OldSectors)
	}
	g.NewClusters = g.NewSectors / spc
	if g.NewClusters <= g.OldClusters {
		// Less than a cluster more: only the sector count and the backup
		// boot sector's place (the partition's last sector) change.
		g.NewClusters = g.OldClusters
		return g, nil
	}
	if err := g.planBitmap(); err != nil {
		return nil, err
	}
	if err := g.planBadClus(); err != nil {
		return nil, err
	}
	return g, nil
}

// planBitmap builds the new $Bitmap content and its record.
func (g *Growth) planBitmap() error {
	v := g.v
	r, as, err := v.recordCopy(recBitmap)
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	if d == nil || !d.nonRes || d.flags&(attrCompressed|attrEncrypted|attrSparse) != 0 {
		return recErr(recBitmap, 0, "$Bitmap has no plain non-resident $DATA")
	}
	runs, err := v.runs(r, d)
	if err != nil {
		return err
	}
	// The bitmap's length is a multiple of 8 bytes, as Windows and
	// mkntfs make it; the bits past the last cluster are set, so that
	// nothing ever allocates them.
	n := (g.NewClusters + 63) / 64 * 8
	bm := make([]byte, n)
	copy(bm, v.bitmap)
	for c := g.OldClusters; c < g.NewClusters; c++ {
		bm[c>>3] &^= 1 << (c & 7)
	}
	for c := g.NewClusters; c < n*8; c++ {
		bm[c>>3] |= 1 << (c & 7)
	}
	have := runClusters(runs)
	need := (n + v.csize - 1) / v.csize
	g.bmFrom = g.OldClusters / 8
	if need > have {
		// New clusters for $Bitmap come from the old volume's free
		// space, the highest first (away from $MFT and its zone). The
		// record that points at them is written before the boot
		// sector grows the volume, so they must lie inside the old
		// volume: clusters in the added space would be past its end
		// until then. Their bits are set (in the old part of the
		// bitmap) before the record is written, so that a crash in
		// between leaves them allocated but unused, never used but
		// free.
		k := need - have
		var got []int64
		for c := g.OldClusters - 1; c >= 0 && int64(len(got)) < k; c-- {
			if !bit(v.bitmap, c) && (c < v.zoneStart || c >= v.zoneEnd) {
				got = append(got, c)
			}
		}
		for c := v.zoneEnd - 1; c >= v.zoneStart && int64(len(got)) < k; c-- {
			if c < g.OldClusters && !bit(v.bitmap, c) {
				got = append(got, c) // the MFT zone only when nothing else is free
			}
		}
		if int64(len(got)) < k {
			return fmt.Errorf("%w: the grown $Bitmap needs %d more clusters, but the volume has only %d free; free some space first", ErrNoSpace, k, len(got))
		}
		slices.Sort(got)
		for _, c := range got {
			bm[c>>3] |= 1 << (c & 7)
			runs = appendRuns(runs, run{lcn: c, n: 1})
		}
		g.bmFrom = min(g.bmFrom, got[0]/8)
		g.BitmapClusters = k
	}
	g.bitmap, g.bmRuns = bm, runs
	if !setRuns(r, d, runs, v.csize, n, n) {
		return noRunlistRoom(r, d, runs)
	}
	g.recs = append(g.recs, r)
	return nil
}

// planBadClus extends $BadClus's $Bad stream, a sparse stream as long as
// the volume whose allocated runs are the bad clusters, with a hole over
// the added clusters.
func (g *Growth) planBadClus() error {
	v := g.v
	const recBadClus = 8
	r, as, err := v.recordCopy(recBadClus)
	if err != nil {
		return err
	}
	d := find(as, atData, "$Bad")
	if d == nil || !d.nonRes {
		return recErr(recBadClus, 0, "$BadClus has no non-resident $Bad stream")
	}
	runs, err := v.runs(r, d)
	if err != nil {
		return err
	}
	have := runClusters(runs)
	if have > g.NewClusters {
		return recErr(recBadClus, d.off, "$Bad covers %d clusters, more than the grown volume's %d", have, g.NewClusters)
	}
	if add := g.NewClusters - have; add > 0 {
		if k := len(runs); k > 0 && runs[k-1].lcn < 0 {
			runs[k-1].n += add
		} else {
			runs = append(runs, run{lcn: -1, n: add})
		}
	}
	size := g.NewClusters * v.csize
	if !setRuns(r, d, runs, v.csize, size, min(d.init, size)) {
		return noRunlistRoom(r, d, runs)
	}
	g.recs = append(g.recs, r)
	return nil
}

// noRunlistRoom is the error of a grow whose new runlist does not fit
// the attribute's record.
func noRunlistRoom(r *record, a *attr, runs []run) error {
	n := align8(a.runsOff - a.off + len(encodeRuns(runs)))
	return recErr(int64(r.num), a.off, "attribute 0x%x needs %d bytes for its runlist; the record has no room", a.typ, n)
}

// Apply writes the growth. Every step before the boot sector leaves the
// old volume consistent, so that a crash gives the old (not grown)
// volume:
//
//  1. the new $Bitmap bytes: the bits of the clusters the longer $Bitmap
//     takes from the old free space (allocated, not yet used), the bits
//     past the old end (which no reader of the old volume consults) and
//     the bitmap's new clusters (free until then);
//  2. the $BadClus and $Bitmap records (and their $MFTMirr copies when
//     mirrored): an old volume may have a longer $Bitmap and $Bad than it
//     needs;
//  3. the primary boot sector, one sector write, which commits the new
//     size;
//  4. the backup boot sector at the partition's new last sector. Until it
//     is written, the backup there is the old one Prepare put there, stale
//     but harmless: ntfsfix and chkdsk copy the primary over it.
//
// Before all that, Apply writes Prepare's sector (see there) again.
//
// dev is the device PlanGrow read (or the same disk opened again after its
// container grew); it is flushed between the steps when it has a Flush
// method, so that the order also holds across a power failure.
func (g *Growth) Apply(dev blockdev.ReaderWriterAt) error {
	if !g.Changed() {
		return nil
	}
	if err := g.Prepare(dev); err != nil {
		return err
	}
	v := g.v
	v.dev = dev
	pos := int64(0)
	for _, r := range g.bmRuns { // none when the cluster count stays
		lo, hi := max(pos, g.bmFrom), min(pos+r.n*v.csize, int64(len(g.bitmap)))
		if lo < hi {
			at := r.lcn*v.csize + lo - pos
			if _, err := v.dev.WriteAt(g.bitmap[lo:hi], v.base+at); err != nil {
				return fmt.Errorf("ntfs: write $Bitmap at volume byte 0x%x: %w", at, err)
			}
		}
		pos += r.n * v.csize
	}
	if err := barrier(dev); err != nil {
		return err
	}
	for _, r := range g.recs {
		enc := fixup(r.b)
		at, err := v.locate(v.mftRuns, int64(r.num)*int64(v.recSize), int64(v.recSize), int64(r.num))
		if err != nil {
			return err
		}
		if _, err := v.dev.WriteAt(enc, v.base+at); err != nil {
			return fmt.Errorf("ntfs: write MFT record %d: %w", r.num, err)
		}
		if int(r.num) < v.mirrN {
			at := v.mirrLCN*v.csize + int64(r.num)*int64(v.recSize)
			if _, err := v.dev.WriteAt(enc, v.base+at); err != nil {
				return fmt.Errorf("ntfs: write $MFTMirr record %d: %w", r.num, err)
			}
		}
	}
	boot := bytes.Clone(g.boot)
	put64(boot, 0x28, uint64(g.NewSectors))
	if _, err := v.dev.WriteAt(boot, v.base); err != nil {
		return fmt.Errorf("ntfs: write boot sector: %w", err)
	}
	if err := barrier(dev); err != nil {
		return err
	}
	if _, err := v.dev.WriteAt(boot, v.base+g.NewSectors*g.sectSize); err != nil {
		return fmt.Errorf("ntfs: write backup boot sector at sector %d: %w", g.NewSectors, err)
	}
	return barrier(dev)
}

// Prepare copies the volume's current boot sector to the last sector of
// the grown partition, where the backup boot sector belongs. ntfs-3g and
// Windows look for the backup there, at the end of the partition. The
// sector lies past the old volume, so writing it changes nothing for the
// old volume. A caller that grows the partition table first calls Prepare
// before it: a partition grown around the old volume then still ends in a
// valid backup boot sector.
func (g *Growth) Prepare(dev blockdev.ReaderWriterAt) error {
	if !g.Changed() {
		return nil
	}
	if _, err := dev.WriteAt(g.boot, g.v.base+g.NewSectors*g.sectSize); err != nil {
		return fmt.Errorf("ntfs: write backup boot sector at sector %d: %w", g.NewSectors, err)
	}
	return barrier(dev)
}

// barrier makes the writes so far durable before later ones, when dev can.
func barrier(dev blockdev.ReaderWriterAt) error {
	if f, ok := dev.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			return fmt.Errorf("ntfs: flush: %w", err)
		}
	}
	return nil
}
