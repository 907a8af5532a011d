package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unicode/utf16"

	"github.com/xpboot/xpboot/blockdev"
)

// ErrRefused is wrapped by every refusal to write a volume or a file that
// xpboot cannot change safely (dirty volume, unclean $LogFile, hibernated
// Windows, compressed file …); the message says why.
var ErrRefused = errors.New("ntfs: refused")

// ErrNoSpace is wrapped when the volume has too few free clusters.
var ErrNoSpace = errors.New("ntfs: not enough free space")

func refused(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, a...))
}

// vol is an NTFS volume opened for writing. Its caches hold the decoded
// state as last committed; a tx collects the changes of one operation.
type vol struct {
	dev       blockdev.ReaderWriterAt
	base      int64 // byte offset of the volume in dev
	csize     int64 // bytes per cluster
	clusters  int64
	mftLCN    int64
	mirrLCN   int64
	recSize   int
	idxSize   int // default index block size from the boot sector
	mirrN     int // records mirrored in $MFTMirr
	mftRuns   []run
	mftRecs   int64 // records covered by $MFT's $DATA
	upcase    []uint16
	bitmap    []byte // $Bitmap's data, one bit per cluster
	bmRuns    []run
	mftBitmap []byte // $MFT's $BITMAP data (its allocated length)
	mbmRuns   []run
	zoneStart int64 // the MFT zone, kept free for $MFT growth
	zoneEnd   int64
	recCache  map[uint64][]byte
	blkCache  map[int64][]byte
	// nodeCache holds the parsed entries of committed INDX blocks by
	// volume offset, so that a directory's upper nodes are not decoded
	// again for every file put into it. Keys are shared and never changed
	// in place; a node taken from here gets its own entries slice.
	nodeCache map[int64][]ientry
	pend      pending
	dataQ     dataQueue // file data of committed operations not yet written
	broken    error     // a queued write failed: the device no longer matches
	hint      int64     // no free cluster outside the MFT zone lies below it
	secCache  map[uint64]secChoice
}

// secChoice is how new entries of one kind in one directory get their
// security (see tx.security), cached per directory record and kind.
type secChoice struct {
	id uint32
	sd []byte
}

// recordAttrs returns MFT record n and its decoded attributes.
func (v *vol) recordAttrs(n uint64) (*record, []attr, error) {
	r, err := v.record(n)
	if err != nil {
		return nil, nil, err
	}
	as, err := r.attrs()
	if err != nil {
		return nil, nil, err
	}
	return r, as, nil
}

// recordCopy is recordAttrs on a private copy of record n, for a plan
// that changes it without touching the cached record.
func (v *vol) recordCopy(n uint64) (*record, []attr, error) {
	r, err := v.record(n)
	if err != nil {
		return nil, nil, err
	}
	r = &record{num: r.num, b: bytes.Clone(r.b)}
	as, err := r.attrs()
	if err != nil {
		return nil, nil, err
	}
	return r, as, nil
}

// readAt reads from the volume with a clear error.
func (v *vol) readAt(b []byte, off int64) error {
	if off < 0 || off+int64(len(b)) > v.clusters*v.csize {
		return &FormatError{Record: -1, Off: off, Msg: fmt.Sprintf("read of %d bytes outside the volume", len(b))}
	}
	// Metadata still queued (see tx.commit) never needs to be read
	// back from here: queued records and INDX blocks are in recCache and
	// blkCache, the bitmaps in memory. Queued file data is written first
	// when the read overlaps it.
	if v.dataQ.overlaps(off, int64(len(b))) {
		if err := v.dataQ.write(v); err != nil {
			v.broken = err
			return err
		}
	}
	if _, err := v.dev.ReadAt(b, v.base+off); err != nil {
		return fmt.Errorf("ntfs: read at volume byte 0x%x: %w", off, err)
	}
	return nil
}

// parseBoot reads the NTFS boot sector fields the writer needs.
func parseBoot(b []byte, devSize int64) (v *vol, err error) {
	bad := func(off int, msg string, a ...any) error {
		return &FormatError{Record: -1, Off: int64(off), Msg: "boot sector: " + fmt.Sprintf(msg, a...)}
	}
	if string(b[3:11]) != "NTFS    " {
		return nil, bad(3, "no NTFS signature")
	}
	bps := int64(u16(b, 0x0B))
	if bps < 256 || bps > 4096 || bps&(bps-1) != 0 {
		return nil, bad(0x0B, "bytes per sector %d", bps)
	}
	spc := int64(b[0x0D])
	if spc > 0x80 { // 2^(256-n) sectors, used for clusters over 64 KiB
		spc = 1 << (256 - spc)
	}
	if spc == 0 || spc&(spc-1) != 0 || spc*bps > 2<<20 {
		return nil, bad(0x0D, "sectors per cluster %d", b[0x0D])
	}
	v = &vol{csize: bps * spc}
	total := int64(u64(b, 0x28))
	v.clusters = total / spc
	if total <= 0 || v.clusters < 16 {
		return nil, bad(0x28, "total sectors %d", total)
	}
	if devSize > 0 && v.clusters*v.csize > devSize {
		// The boot sector's count excludes the backup boot sector at the
		// end of the partition, so the volume always fits a sane image.
		return nil, bad(0x28, "volume of %d bytes is larger than the image (%d bytes)", v.clusters*v.csize, devSize)
	}
	v.mftLCN, v.mirrLCN = int64(u64(b, 0x30)), int64(u64(b, 0x38))
	if v.mftLCN <= 0 || v.mftLCN >= v.clusters || v.mirrLCN <= 0 || v.mirrLCN >= v.clusters {
		return nil, bad(0x30, "$MFT at LCN %d or $MFTMirr at LCN %d outside the volume", v.mftLCN, v.mirrLCN)
	}
	size := func(off int) (int, error) {
		c := int8(b[off])
		var n int64
		if c < 0 {
			if -c < 9 || -c > 16 {
				return 0, bad(off, "record size 2^%d", -c)
			}
			n = 1 << uint(-c)
		} else {
			n = int64(c) * v.csize
		}
		if n < blockSize || n > 64<<10 || n&(n-1) != 0 {
			return 0, bad(off, "structure size %d", n)
		}
		return int(n), nil
	}
	if v.recSize, err = size(0x40); err != nil {
		return nil, err
	}
	if v.idxSize, err = size(0x44); err != nil {
		return nil, err
	}
	v.mirrN = 4
	if v.csize > 4*int64(v.recSize) {
		v.mirrN = int(v.csize) / v.recSize
	}
	return v, nil
}

// rawRecord reads MFT record n (decoded) from the device, not the cache.
func (v *vol) rawRecord(n uint64) ([]byte, error) {
	if int64(n) >= v.mftRecs {
		return nil, recErr(int64(n), 0, "record number beyond $MFT (%d records)", v.mftRecs)
	}
	off, err := v.locate(v.mftRuns, int64(n)*int64(v.recSize), int64(v.recSize), int64(n))
	if err != nil {
		return nil, err
	}
	b := make([]byte, v.recSize)
	if err := v.readAt(b, off); err != nil {
		return nil, err
	}
	if err := unfixup(b, "FILE", int64(n), off); err != nil {
		return nil, err
	}
	return b, checkRecord(b, int64(n))
}

// locate maps the byte range [off, off+n) of an attribute with runs to one
// contiguous volume offset. Structures never straddle runs (records and
// index blocks are cluster-aligned or inside one cluster).
func (v *vol) locate(runs []run, off, n, rec int64) (int64, error) {
	vcn := off / v.csize
	for _, r := range runs {
		if vcn < r.n {
			if r.lcn < 0 {
				return 0, recErr(rec, 0, "data at offset %d is in a sparse hole", off)
			}
			in := vcn*v.csize + off%v.csize
			if in+n > r.n*v.csize {
				// The range crosses into the next run: only legal when
				// the runs are physically contiguous.
				return 0, recErr(rec, 0, "%d bytes at offset %d cross a fragment boundary", n, off)
			}
			return r.lcn*v.csize + in, nil
		}
		vcn -= r.n
	}
	return 0, recErr(rec, 0, "offset %d beyond the runlist", off)
}

// readRuns reads the first size bytes described by runs; holes read as 0.
func (v *vol) readRuns(runs []run, size int64) ([]byte, error) {
	out := make([]byte, size)
	pos := int64(0)
	for _, r := range runs {
		if pos >= size {
			break
		}
		n := min(r.n*v.csize, size-pos)
		if r.lcn >= 0 {
			if err := v.readAt(out[pos:pos+n], r.lcn*v.csize); err != nil {
				return nil, err
			}
		}
		pos += n
	}
	if pos < size {
		return nil, &FormatError{Record: -1, Off: 0, Msg: fmt.Sprintf("runlist covers %d of %d bytes", pos, size)}
	}
	return out, nil
}

// attrData reads the whole value of attribute a of record r.
func (v *vol) attrData(r *record, a *attr) ([]byte, []run, error) {
	if !a.nonRes {
		return bytes.Clone(r.value(a)), nil, nil
	}
	runs, err := v.runs(r, a)
	if err != nil {
		return nil, nil, err
	}
	return v.runsData(r, a, runs)
}

// runsData reads the value of the non-resident attribute a (whose header
// is in record r) from runs: its initialized bytes, then zeros up to its
// data size.
func (v *vol) runsData(r *record, a *attr, runs []run) ([]byte, []run, error) {
	if a.alloc > runClusters(runs)*v.csize {
		return nil, nil, recErr(int64(r.num), a.off, "allocated size %d exceeds the runlist", a.alloc)
	}
	b, err := v.readRuns(runs, a.init)
	if err != nil {
		return nil, nil, err
	}
	if a.size > a.init {
		b = append(b, make([]byte, a.size-a.init)...)
	}
	return b, runs, nil
}

func (v *vol) runs(r *record, a *attr) ([]run, error) {
	if a.lowVCN != 0 {
		return nil, recErr(int64(r.num), a.off, "attribute 0x%x starts at VCN %d (needs an attribute list)", a.typ, a.lowVCN)
	}
	end := a.off + a.length
	runs, err := decodeRuns(r.b[a.runsOff:end], 0, v.clusters, int64(r.num), a.runsOff)
	if err != nil {
		return nil, err
	}
	if got := runClusters(runs); got != a.highVCN+1 && !(got == 0 && a.highVCN <= 0) {
		return nil, recErr(int64(r.num), a.off+0x18, "attribute 0x%x: runlist of %d clusters but highest VCN %d", a.typ, got, a.highVCN)
	}
	return runs, nil
}

// openVol opens the volume at base for writing and applies the guard
// rails. Nothing is written.
func openVol(dev blockdev.ReaderWriterAt, base, devSize int64) (*vol, error) {
	v, err := loadVol(dev, base, devSize)
	if err != nil {
		return nil, err
	}
	return v, v.guard()
}

// guard applies the guard rails for writing: $MFTMirr in step, NTFS 3.1
// and not dirty, a clean $LogFile, no live hiberfil.sys.
func (v *vol) guard() error {
	if err := v.checkMirror(); err != nil {
		return err
	}
	if err := v.checkVolume(); err != nil {
		return err
	}
	if err := v.checkLogFile(); err != nil {
		return err
	}
	return v.checkHiberfil()
}

// openBoot reads the boot sector of the volume at base (size bytes) and
// $MFT's record 0, which describes where every other record lives: the
// start of loadVol and of AllocatedRanges.
func openBoot(dev blockdev.ReaderWriterAt, base, size int64) (*vol, *record, error) {
	boot := make([]byte, 512)
	if _, err := dev.ReadAt(boot, base); err != nil {
		return nil, nil, fmt.Errorf("ntfs: read boot sector: %w", err)
	}
	v, err := parseBoot(boot, size)
	if err != nil {
		return nil, nil, err
	}
	v.dev, v.base = dev, base
	v.recCache, v.blkCache = map[uint64][]byte{}, map[int64][]byte{}
	v.nodeCache = map[int64][]ientry{}
	v.secCache = map[uint64]secChoice{}
	b := make([]byte, v.recSize)
	if err := v.readAt(b, v.mftLCN*v.csize); err != nil {
		return nil, nil, err
	}
	if err := unfixup(b, "FILE", 0, v.mftLCN*v.csize); err != nil {
		return nil, nil, err
	}
	return v, &record{num: recMFT, b: b}, nil
}

// loadVol reads the structures the reader and the writer need (boot
// sector, $MFT's runlist and bitmap, $UpCase, $Bitmap). Nothing is written.
func loadVol(dev blockdev.ReaderWriterAt, base, devSize int64) (*vol, error) {
	v, mft, err := openBoot(dev, base, devSize-base)
	if err != nil {
		return nil, err
	}
	as, err := mft.attrs()
	if err != nil {
		return nil, err
	}
	if find(as, atAttributeList, "") != nil {
		return nil, refused("$MFT is so fragmented that it has an $ATTRIBUTE_LIST; xpboot does not write such volumes (defragment it in Windows)")
	}
	d := find(as, atData, "")
	if d == nil || !d.nonRes {
		return nil, recErr(0, 0, "$MFT has no non-resident $DATA")
	}
	if v.mftRuns, err = v.runs(mft, d); err != nil {
		return nil, err
	}
	v.mftRecs = d.init / int64(v.recSize)
	if v.mftRecs < 16 {
		return nil, recErr(0, d.off, "$MFT holds only %d records", v.mftRecs)
	}
	if len(v.mftRuns) == 0 || v.mftRuns[0].lcn != v.mftLCN {
		return nil, recErr(0, d.off, "$MFT $DATA does not start at the boot sector's LCN %d", v.mftLCN)
	}
	bm := find(as, atBitmap, "")
	if bm == nil || !bm.nonRes {
		return nil, refused("$MFT's $BITMAP is missing or resident; xpboot only writes volumes made by Windows or mkntfs")
	}
	if v.mftBitmap, v.mbmRuns, err = v.attrData(mft, bm); err != nil {
		return nil, err
	}
	v.mftBitmap = append(v.mftBitmap, make([]byte, bm.alloc-int64(len(v.mftBitmap)))...)
	v.recCache[0] = mft.b
	v.zoneStart = v.mftLCN
	v.zoneEnd = min(v.clusters, v.mftLCN+v.clusters/8)

	if err := v.loadUpcase(); err != nil {
		return nil, err
	}
	if err := v.loadBitmap(); err != nil {
		return nil, err
	}
	return v, nil
}

// record returns the committed decoded record n (cached).
func (v *vol) record(n uint64) (*record, error) {
	if b, ok := v.recCache[n]; ok {
		return &record{num: n, b: b}, nil
	}
	v.prefetch(n)
	if b, ok := v.recCache[n]; ok {
		return &record{num: n, b: b}, nil
	}
	b, err := v.rawRecord(n)
	if err != nil {
		return nil, err
	}
	v.recCache[n] = b
	return &record{num: n, b: b}, nil
}

// prefetchRecords is how many records a cache miss reads at once: new
// files take consecutive records, and one read of 64 KiB instead of 64 of
// 1 KiB keeps a bulk put from waiting on the device for each of them.
const prefetchRecords = 64

// prefetch reads the records from n to the end of its aligned group of
// prefetchRecords (inside one run of $MFT) in one read and caches those
// that are not cached yet and decode cleanly. Any other record is left to
// rawRecord, which reports its damage.
func (v *vol) prefetch(n uint64) {
	end := min((int64(n)/prefetchRecords+1)*prefetchRecords, v.mftRecs)
	cnt := end - int64(n)
	for cnt > 1 {
		if _, err := v.locate(v.mftRuns, int64(n)*int64(v.recSize), cnt*int64(v.recSize), int64(n)); err == nil {
			break
		}
		cnt /= 2
	}
	if cnt <= 1 {
		return
	}
	off, _ := v.locate(v.mftRuns, int64(n)*int64(v.recSize), cnt*int64(v.recSize), int64(n))
	buf := make([]byte, cnt*int64(v.recSize))
	if v.readAt(buf, off) != nil {
		return
	}
	for i := int64(0); i < cnt; i++ {
		num := n + uint64(i)
		if _, ok := v.recCache[num]; ok {
			continue // the cache may be newer than the device
		}
		b := buf[i*int64(v.recSize) : (i+1)*int64(v.recSize) : (i+1)*int64(v.recSize)]
		if unfixup(b, "FILE", int64(num), off+i*int64(v.recSize)) != nil || checkRecord(b, int64(num)) != nil {
			continue
		}
		v.recCache[num] = b
	}
}

func (v *vol) checkMirror() error {
	n := v.mirrN
	for i := 0; i < n && int64(i) < v.mftRecs; i++ {
		a := make([]byte, v.recSize)
		m := make([]byte, v.recSize)
		off, err := v.locate(v.mftRuns, int64(i*v.recSize), int64(v.recSize), int64(i))
		if err != nil {
			return err
		}
		if err := v.readAt(a, off); err != nil {
			return err
		}
		if err := v.readAt(m, v.mirrLCN*v.csize+int64(i*v.recSize)); err != nil {
			return err
		}
		if !bytes.Equal(a, m) {
			return refused("$MFTMirr differs from $MFT at record %d; repair the volume first (chkdsk, or ntfsfix)", i)
		}
	}
	return nil
}

func (v *vol) checkVolume() error {
	r, as, err := v.recordAttrs(recVolume)
	if err != nil {
		return err
	}
	vi := find(as, atVolumeInformation, "")
	if vi == nil || vi.nonRes || vi.valLen < 12 {
		return recErr(recVolume, 0, "$Volume has no $VOLUME_INFORMATION")
	}
	val := r.value(vi)
	major, minor, flags := val[8], val[9], u16(val, 10)
	if major != 3 || minor != 1 {
		return refused("NTFS version %d.%d; xpboot writes NTFS 3.1 only (Windows XP and later)", major, minor)
	}
	if flags&volDirty != 0 {
		return refused("the volume is marked dirty ($Volume flags 0x%04x): Windows did not shut down cleanly or chkdsk is pending; boot Windows or run chkdsk first", flags)
	}
	return nil
}

// checkLogFile refuses a $LogFile that records an unclean shutdown, the
// same test ntfs-3g applies before a read-write mount: the newer restart
// area has clients in use and lacks the clean flag. An all-0xff (emptied)
// log counts as clean.
func (v *vol) checkLogFile() error {
	r, as, err := v.recordAttrs(recLogFile)
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	if d == nil || !d.nonRes {
		return recErr(recLogFile, 0, "$LogFile has no non-resident $DATA")
	}
	runs, err := v.runs(r, d)
	if err != nil {
		return err
	}
	size := min(d.init, 64<<10)
	buf, err := v.readRuns(runs, size)
	if err != nil {
		return err
	}
	empty := true
	var best []byte
	var bestLSN uint64
	for pos := int64(0); pos+512 <= size; {
		page := buf[pos : pos+512]
		magic := string(page[:4])
		if u32(page, 0) != 0xFFFFFFFF {
			empty = false
		} else if !empty {
			break
		}
		if magic == "RCRD" {
			break
		}
		if magic == "RSTR" || magic == "CHKD" {
			ro := int(u16(page, 0x18))
			if ro+0x30 > 510 {
				return refused("$LogFile restart page at offset %d has a restart area offset 0x%x outside it", pos, ro)
			}
			lsn := u64(page, ro)
			if best == nil || lsn > bestLSN {
				best, bestLSN = page[ro:], lsn
			}
		}
		if pos == 0 {
			pos = 512
		} else {
			pos <<= 1
		}
	}
	if empty {
		return nil
	}
	if best == nil {
		return refused("$LogFile has no restart page and is not empty; let Windows (or ntfsfix) reset it")
	}
	inUse, flags := u16(best, 0x0C), u16(best, 0x0E)
	if inUse != 0xFFFF && flags&0x0002 == 0 {
		return refused("$LogFile is not clean (Windows did not shut down cleanly, client list 0x%04x, flags 0x%04x); boot Windows and shut it down, or run chkdsk", inUse, flags)
	}
	return nil
}

func (v *vol) loadUpcase() error {
	r, as, err := v.recordAttrs(recUpCase)
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	if d == nil || d.size != 128<<10 {
		return recErr(recUpCase, 0, "$UpCase is not a 128 KiB table")
	}
	b, _, err := v.attrData(r, d)
	if err != nil {
		return err
	}
	v.upcase = make([]uint16, 65536)
	for i := range v.upcase {
		v.upcase[i] = u16(b, 2*i)
	}
	return nil
}

func (v *vol) loadBitmap() error {
	r, as, err := v.recordAttrs(recBitmap)
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	if d == nil || !d.nonRes || d.size*8 < v.clusters {
		return recErr(recBitmap, 0, "$Bitmap $DATA is missing or covers fewer than %d clusters", v.clusters)
	}
	if v.bitmap, v.bmRuns, err = v.attrData(r, d); err != nil {
		return err
	}
	return nil
}

// checkHiberfil refuses a volume whose hiberfil.sys holds a live image
// (first bytes "hibr"): Windows would resume over whatever xpboot wrote.
func (v *vol) checkHiberfil() error {
	root, err := v.record(recRoot)
	if err != nil {
		return err
	}
	t := &tx{v: v}
	ref, _, found, err := t.lookup(root, utf16.Encode([]rune("hiberfil.sys")))
	if err != nil || !found {
		return err
	}
	hr, as, err := v.recordAttrs(refRecord(ref))
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	if d == nil || d.size < 4 {
		return nil
	}
	var head []byte
	if !d.nonRes {
		head = hr.value(d)[:4]
	} else {
		runs, err := v.runs(hr, d)
		if err != nil {
			return err
		}
		if d.init < 4 {
			return nil
		}
		if head, err = v.readRuns(runs, 4); err != nil {
			return err
		}
	}
	if s := string(head); s == "hibr" || s == "HIBR" || s == "wake" || s == "WAKE" {
		if s == "hibr" || s == "HIBR" {
			return refused("Windows is hibernated on this volume (hiberfil.sys is live); boot it and shut down instead of hibernating")
		}
	}
	return nil
}

// setBit and bit work on a little-endian bitmap.
func bit(b []byte, i int64) bool { return b[i>>3]&(1<<(i&7)) != 0 }

func sortedKeys[K int64 | uint64, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
