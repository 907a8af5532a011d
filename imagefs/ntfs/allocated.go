package ntfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrUnclean is wrapped by AllocatedRanges for a volume whose $Bitmap
// cannot be trusted to name every cluster in use: one marked dirty, or
// with a $LogFile that Windows has not finished with. Replaying the log
// may allocate clusters the bitmap on disk still shows free, so such a
// volume must be copied whole.
var ErrUnclean = errors.New("ntfs: volume not cleanly unmounted")

// Range is a run of bytes of a volume, relative to its first byte.
type Range struct {
	Off, Len int64
}

// Allocation says which parts of an NTFS volume hold anything a reader of
// the volume can reach.
type Allocation struct {
	// Ranges are ascending, merged and inside [0, size): the boot
	// sector and the rest of $Boot (the first 8 KiB, whatever $Bitmap
	// says), every cluster set in $Bitmap, and everything from the end
	// of the last cluster to the end of the partition, where the backup
	// boot sector lives.
	Ranges []Range
	// ClusterSize is the cluster size in bytes; Clusters the number of
	// clusters of the volume, Used of them set in $Bitmap and not bad.
	ClusterSize, Clusters, Used int64
	// Bad counts the clusters $BadClus lists: allocated to it, holding
	// nothing a file refers to, and left out of Ranges (reading them from
	// a failing disk only errors).
	Bad int64
}

// bootArea is $Boot's size on every NTFS volume: the boot sector and the
// boot code that follows it.
const bootArea = 8192

// AllocatedRanges reads the boot sector, the records of $MFT, $LogFile,
// $Volume and $Bitmap, and $Bitmap's data of the NTFS volume starting at
// byte off of r, in a partition of size bytes, and returns the parts of
// the volume in use; see Allocation. A volume marked dirty or with an
// unclean $LogFile gives an error wrapping ErrUnclean; damage gives a
// *FormatError naming the record and byte. Only the first extent of
// $MFT's runlist is needed (records 0 to 15 lie in it), so a volume whose
// $MFT has an attribute list is read too.
func AllocatedRanges(r io.ReaderAt, off, size int64) (*Allocation, error) {
	v, mft, err := openBoot(roDevice{r}, off, size)
	if err != nil {
		return nil, err
	}
	as, err := mft.attrs()
	if err != nil {
		return nil, err
	}
	var d *attr
	for i := range as {
		if as[i].typ == atData && len(as[i].name) == 0 && as[i].lowVCN == 0 {
			d = &as[i]
			break
		}
	}
	if d == nil || !d.nonRes {
		return nil, recErr(recMFT, 0, "$MFT has no non-resident $DATA starting at VCN 0")
	}
	if v.mftRuns, err = v.runs(mft, d); err != nil {
		return nil, err
	}
	if len(v.mftRuns) == 0 || v.mftRuns[0].lcn != v.mftLCN {
		return nil, recErr(recMFT, d.off, "$MFT $DATA does not start at the boot sector's LCN %d", v.mftLCN)
	}
	v.mftRecs = min(d.init, runClusters(v.mftRuns)*v.csize) / int64(v.recSize)
	if v.mftRecs <= recUpCase {
		return nil, recErr(recMFT, d.off, "$MFT's first extent holds only %d records", v.mftRecs)
	}
	v.recCache[recMFT] = mft.b

	if err := v.checkVolume(); err != nil {
		if errors.Is(err, ErrRefused) {
			return nil, fmt.Errorf("%w: %v", ErrUnclean, err)
		}
		return nil, err
	}
	if err := v.checkLogFile(); err != nil {
		if errors.Is(err, ErrRefused) {
			return nil, fmt.Errorf("%w: %v", ErrUnclean, err)
		}
		return nil, err
	}
	if err := v.loadBitmap(); err != nil {
		return nil, err
	}
	var bad int64
	for _, r := range v.badRuns() {
		for c := r.lcn; c < r.lcn+r.n; c++ {
			if c/8 < int64(len(v.bitmap)) && bit(v.bitmap, c) {
				v.bitmap[c/8] &^= 1 << (c % 8)
				bad++
			}
		}
	}
	a := allocation(v.bitmap, v.clusters, v.csize, size)
	a.Bad = bad
	return a, nil
}

// badRuns returns the runs of $BadClus's $Bad stream that are not holes:
// the clusters the volume has marked bad. A $BadClus that cannot be read
// gives none, and its clusters are then read like any other.
func (v *vol) badRuns() []run {
	const recBadClus = 8
	r, as, err := v.recordAttrs(recBadClus)
	if err != nil {
		return nil
	}
	d := find(as, atData, "$Bad")
	if d == nil || !d.nonRes || d.lowVCN != 0 {
		return nil
	}
	runs, err := v.runs(r, d)
	if err != nil {
		return nil
	}
	var out []run
	for _, x := range runs {
		if x.lcn >= 0 {
			out = append(out, x)
		}
	}
	return out
}

// allocation turns a cluster bitmap into an Allocation of a partition of
// size bytes.
func allocation(bm []byte, clusters, csize, size int64) *Allocation {
	a := &Allocation{ClusterSize: csize, Clusters: clusters}
	add := func(o, n int64) {
		if k := len(a.Ranges); k > 0 && a.Ranges[k-1].Off+a.Ranges[k-1].Len >= o {
			a.Ranges[k-1].Len = max(a.Ranges[k-1].Len, o+n-a.Ranges[k-1].Off)
			return
		}
		a.Ranges = append(a.Ranges, Range{o, n})
	}
	add(0, min(size, max(bootArea, csize)))
	// Walk the bitmap a 64-bit word at a time: a 2 TiB volume with 4 KiB
	// clusters has 512 Mi bits, mostly in long runs of all-set or
	// all-clear words.
	runStart := int64(-1)
	end := func(c int64) {
		if runStart >= 0 {
			add(runStart*csize, (c-runStart)*csize)
			a.Used += c - runStart
			runStart = -1
		}
	}
	for c := int64(0); c < clusters; {
		if c%64 == 0 && c+64 <= clusters && int64(len(bm)) >= c/8+8 {
			w := binary.LittleEndian.Uint64(bm[c/8:])
			if w == 0 {
				end(c)
				c += 64
				continue
			}
			if w == ^uint64(0) {
				if runStart < 0 {
					runStart = c
				}
				c += 64
				continue
			}
			// A mixed word: bit by bit.
			for i := range int64(64) {
				if w>>i&1 != 0 {
					if runStart < 0 {
						runStart = c + i
					}
				} else {
					end(c + i)
				}
			}
			c += 64
			continue
		}
		if c/8 < int64(len(bm)) && bit(bm, c) {
			if runStart < 0 {
				runStart = c
			}
		} else {
			end(c)
		}
		c++
	}
	end(clusters)
	if tail := clusters * csize; tail < size {
		add(tail, size-tail)
	}
	return a
}
