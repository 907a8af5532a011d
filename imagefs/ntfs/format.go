package ntfs

// Format builds an empty NTFS 3.1 volume the way Windows XP's format and
// mkntfs lay one out: the sixteen system files in records 0-15, records
// 16-23 formatted but free (Windows keeps them for $MFT extension
// records), $Extend's $Quota, $ObjId and $Reparse in 24-26, $MFT at 16 KiB
// with the MFT zone (12.5 % of the volume, XP's default
// NtfsMftZoneReservation) after it, the other metadata right behind the
// zone, $MFTMirr in the middle of the volume and $LogFile after it. The
// structures follow the public NTFS documentation (Russon, "NTFS
// Documentation"; the ntfs-3g headers for field names); the layout choices
// were taken by observing what mkntfs writes, never from its code.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/bootcode"
)

// FormatOptions describe a new NTFS volume.
type FormatOptions struct {
	// ClusterSize in bytes, a power of two from 512 to 65536; 0 picks what
	// XP's format picks for the volume size (see DefaultClusterSize).
	ClusterSize int
	// Label is the volume label, up to MaxLabel UTF-16 units.
	Label string
	// Serial is the volume serial number; 0 draws a random one from Rand.
	Serial uint64
	// HiddenSectors is the volume's first sector on the disk (the
	// partition start), which XP's boot code adds to every read.
	HiddenSectors uint32
	// Heads and SectorsPerTrack are the BIOS geometry in the boot sector;
	// 0 means 255 and 63, the geometry XP uses for large disks.
	Heads, SectorsPerTrack uint16
	// Time stamps every metadata file; the zero value means now.
	Time time.Time
	// Rand is the source of the serial number; nil means crypto/rand.
	Rand io.Reader
}

// Limits of Format.
const (
	// MinFormatSize is the smallest volume Format makes (bytes of the
	// whole partition): below it the metadata and a usable MFT zone no
	// longer fit.
	MinFormatSize = 8 << 20
	// MaxLabel is the longest label, in UTF-16 units, as XP's format allows.
	MaxLabel = 32
	// MaxClusters is the most clusters an NTFS volume may have for
	// Windows XP (cluster numbers are 32-bit there).
	MaxClusters = 1<<32 - 1
)

// Fixed sizes of a new volume.
const (
	fmtRecSize    = 1024
	fmtIdxSize    = 4096
	fmtSector     = 512
	fmtBootBytes  = bootcode.NTFSBootSize
	fmtInitRecs   = 27 // records 0..26: system files, reserved 16..23, $Extend's files
	fmtSDSMirror  = 256 << 10
	fmtUpcaseSize = 128 << 10
	fmtAttrDefLen = 2560
)

// ErrFormatOptions is wrapped by errors about bad options or sizes; Format
// writes nothing then.
var ErrFormatOptions = errors.New("ntfs: cannot format")

func optErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrFormatOptions, fmt.Sprintf(format, a...))
}

// DefaultClusterSize returns the cluster size XP's format chooses for an
// NTFS volume of size bytes (Microsoft KB 140365): 512 bytes up to 512 MiB,
// 1 KiB up to 1 GiB, 2 KiB up to 2 GiB, 4 KiB above.
func DefaultClusterSize(size int64) int {
	switch {
	case size <= 512<<20:
		return 512
	case size <= 1<<30:
		return 1024
	case size <= 2<<30:
		return 2048
	}
	return 4096
}

// LogFileSize returns the $LogFile size Format gives a volume of size
// bytes with the given cluster size: 2 MiB below 256 MiB, else 1/200 of the
// volume rounded down to whole clusters, at most 64 MiB (what mkntfs
// writes; XP's format makes logs of the same order).
func LogFileSize(size int64, cluster int) int64 {
	c := int64(cluster)
	if size < 256<<20 {
		return (2<<20 + c - 1) / c * c
	}
	return min(size/200/c*c, 64<<20)
}

// fmtLayout is where Format puts everything, in clusters.
type fmtLayout struct {
	csize, clusters                     int64
	totalSectors                        int64
	bootN                               int64
	mftLCN, mftN, mftSize               int64
	mftBmLCN                            int64
	mirrLCN, mirrN                      int64 // mirrN: bytes of $MFTMirr
	logLCN, logN                        int64 // logN: bytes
	zoneEnd                             int64
	rootIALCN, attrDefLCN, bitmapLCN    int64
	bitmapBytes, sdsLCN, sdsSize, upLCN int64
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// planFormat validates the options and computes the layout.
func planFormat(size int64, opts *FormatOptions) (*fmtLayout, error) {
	if size < MinFormatSize {
		return nil, optErr("a volume of %d bytes is too small for NTFS: at least %d bytes (%d MiB)", size, int64(MinFormatSize), MinFormatSize>>20)
	}
	c := opts.ClusterSize
	if c == 0 {
		c = DefaultClusterSize(size)
	}
	if c < 512 || c > 64<<10 || c&(c-1) != 0 {
		return nil, optErr("cluster size %d: use a power of two from 512 to 65536", c)
	}
	if n := len(utf16.Encode([]rune(opts.Label))); n > MaxLabel {
		return nil, optErr("label %q is %d characters long; NTFS labels hold at most %d", opts.Label, n, MaxLabel)
	}
	for _, r := range opts.Label {
		if r < 0x20 || r == 0x7F {
			return nil, optErr("label %q contains the control character %U", opts.Label, r)
		}
	}
	l := &fmtLayout{csize: int64(c)}
	// The last sector holds the backup boot sector and is not part of the
	// volume's sector count.
	l.totalSectors = size/fmtSector - 1
	l.clusters = l.totalSectors * fmtSector / l.csize
	if l.clusters > MaxClusters {
		return nil, optErr("a volume of %d bytes has %d clusters of %d bytes; XP addresses at most %d: use --cluster-size %d or larger",
			size, l.clusters, c, int64(MaxClusters), nextClusterSize(size))
	}
	// $Boot, then $MFT's bitmap in the next cluster, then $MFT at 16 KiB
	// or right after the bitmap when clusters are larger.
	l.bootN = ceilDiv(fmtBootBytes, l.csize)
	l.mftBmLCN = l.bootN
	l.mftLCN = max(16<<10/l.csize, l.bootN+1)
	l.mirrN = max(4*fmtRecSize, l.csize)
	l.mftSize = max(fmtInitRecs*fmtRecSize, l.mirrN)
	l.mftN = ceilDiv(l.mftSize, l.csize)
	next := l.mftLCN + l.mftN
	l.zoneEnd = max(next, l.mftLCN+l.clusters/8)
	next = l.zoneEnd
	take := func(bytes int64) int64 {
		at := next
		next += ceilDiv(bytes, l.csize)
		return at
	}
	l.rootIALCN = take(fmtIdxSize)
	l.attrDefLCN = take(fmtAttrDefLen)
	l.bitmapBytes = int64(align8(int(ceilDiv(l.clusters, 8))))
	l.bitmapLCN = take(l.bitmapBytes)
	l.sdsSize = fmtSDSMirror + sdsUsed
	l.sdsLCN = take(l.sdsSize)
	l.upLCN = take(fmtUpcaseSize)
	l.logN = LogFileSize(size, c)
	l.mirrLCN = max(l.clusters/2, next)
	l.logLCN = l.mirrLCN + ceilDiv(l.mirrN, l.csize)
	if end := l.logLCN + ceilDiv(l.logN, l.csize); end > l.clusters {
		return nil, optErr("a volume of %d bytes is too small for the NTFS metadata with %d-byte clusters (needs %d clusters, has %d)", size, c, end, l.clusters)
	}
	return l, nil
}

// nextClusterSize is the smallest cluster size that keeps a volume of size
// bytes under MaxClusters.
func nextClusterSize(size int64) int {
	c := 512
	for c < 64<<10 && (size/fmtSector-1)*fmtSector/int64(c) > MaxClusters {
		c <<= 1
	}
	return c
}

// Format writes an empty NTFS 3.1 volume into the size bytes of dev that
// start at byte off, with xpboot's NTFS boot code in $Boot. Options are
// checked before anything is written; a bad option returns an error
// wrapping ErrFormatOptions and leaves dev untouched. The whole volume
// range is not zeroed: Format writes every structure it needs, and data
// clusters are free in $Bitmap whatever they hold.
func Format(dev blockdev.ReaderWriterAt, off, size int64, opts FormatOptions) error {
	l, err := planFormat(size, &opts)
	if err != nil {
		return err
	}
	if opts.Heads == 0 {
		opts.Heads = 255
	}
	if opts.SectorsPerTrack == 0 {
		opts.SectorsPerTrack = 63
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	serial := opts.Serial
	for serial == 0 {
		r := opts.Rand
		if r == nil {
			r = rand.Reader
		}
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return fmt.Errorf("ntfs: serial number: %w", err)
		}
		serial = le.Uint64(b[:])
	}
	boot, err := l.bootSector(&opts, serial)
	if err != nil {
		return err
	}
	f := &formatter{l: l, now: ntTime(opts.Time), upcase: UpcaseTable()}
	mft, rootIA := f.records(&opts)
	// Everything is built; now write, lowest offset first.
	w := func(b []byte, lcn int64) error {
		if _, err := dev.WriteAt(b, off+lcn*l.csize); err != nil {
			return fmt.Errorf("ntfs: format: write at volume byte 0x%x: %w", lcn*l.csize, err)
		}
		return nil
	}
	if err := w(boot, 0); err != nil {
		return err
	}
	mbm := make([]byte, l.csize)
	copy(mbm, f.mftBitmap())
	if err := w(mbm, l.mftBmLCN); err != nil {
		return err
	}
	mftArea := make([]byte, l.mftN*l.csize)
	copy(mftArea, mft)
	if err := w(mftArea, l.mftLCN); err != nil {
		return err
	}
	ia := make([]byte, ceilDiv(fmtIdxSize, l.csize)*l.csize)
	copy(ia, rootIA)
	if err := w(ia, l.rootIALCN); err != nil {
		return err
	}
	ad := make([]byte, ceilDiv(fmtAttrDefLen, l.csize)*l.csize)
	copy(ad, AttrDefTable())
	if err := w(ad, l.attrDefLCN); err != nil {
		return err
	}
	if err := w(f.clusterBitmap(), l.bitmapLCN); err != nil {
		return err
	}
	sds := make([]byte, ceilDiv(l.sdsSize, l.csize)*l.csize)
	copy(sds, sdsData())
	if err := w(sds, l.sdsLCN); err != nil {
		return err
	}
	up := make([]byte, fmtUpcaseSize)
	for i, c := range f.upcase {
		put16(up, 2*i, c)
	}
	if err := w(up, l.upLCN); err != nil {
		return err
	}
	mirr := make([]byte, ceilDiv(l.mirrN, l.csize)*l.csize)
	copy(mirr, mftArea[:l.mirrN])
	if err := w(mirr, l.mirrLCN); err != nil {
		return err
	}
	// An empty $LogFile is all 0xff, as mkntfs and ntfsfix leave it;
	// Windows initialises the restart area at the first mount.
	chunk := make([]byte, min(ceilDiv(l.logN, l.csize)*l.csize, 1<<20))
	for i := range chunk {
		chunk[i] = 0xFF
	}
	for done := int64(0); done < l.logN; done += int64(len(chunk)) {
		n := min(int64(len(chunk)), l.logN-done)
		if _, err := dev.WriteAt(chunk[:n], off+l.logLCN*l.csize+done); err != nil {
			return fmt.Errorf("ntfs: format: write $LogFile: %w", err)
		}
	}
	// The backup boot sector in the partition's last sector.
	if _, err := dev.WriteAt(boot[:fmtSector], off+(l.totalSectors)*fmtSector); err != nil {
		return fmt.Errorf("ntfs: format: write the backup boot sector: %w", err)
	}
	return nil
}

// structSize encodes a record or index block size for the boot sector: in
// clusters when at least one cluster, else as -log2(bytes).
func structSize(n, csize int64) byte {
	if n >= csize {
		return byte(n / csize)
	}
	s := 0
	for int64(1)<<s < n {
		s++
	}
	return byte(-int8(s))
}

// bootSector fills the BPB of xpboot's $Boot template.
func (l *fmtLayout) bootSector(o *FormatOptions, serial uint64) ([]byte, error) {
	b := bootcode.NTFS()
	if len(b) != fmtBootBytes || string(b[3:11]) != "NTFS    " || u16(b, 510) != 0xAA55 {
		return nil, errors.New("ntfs: the NTFS boot code template is malformed (internal error)")
	}
	put16(b, 0x0B, fmtSector)
	b[0x0D] = byte(l.csize / fmtSector)
	b[0x15] = 0xF8 // media: fixed disk
	put16(b, 0x18, o.SectorsPerTrack)
	put16(b, 0x1A, o.Heads)
	put32(b, 0x1C, o.HiddenSectors)
	b[0x24], b[0x26] = 0x80, 0x80 // BIOS drive 0x80; extended BPB signature
	put64(b, 0x28, uint64(l.totalSectors))
	put64(b, 0x30, uint64(l.mftLCN))
	put64(b, 0x38, uint64(l.mirrLCN))
	b[0x40] = structSize(fmtRecSize, l.csize)
	b[0x44] = structSize(fmtIdxSize, l.csize)
	put64(b, 0x48, serial)
	return b, nil
}

// formatter builds the MFT records.
type formatter struct {
	l      *fmtLayout
	now    uint64
	upcase []uint16
}

// System file names, by record.
var sysNames = [...]string{"$MFT", "$MFTMirr", "$LogFile", "$Volume", "$AttrDef", ".", "$Bitmap", "$Boot", "$BadClus", "$Secure", "$UpCase", "$Extend"}

// Records of $Extend's files.
const (
	recExtend  = 11
	recQuota   = 24
	recObjID   = 25
	recReparse = 26
)

// Extra MFT record flags of view-index files.
const (
	recIsExtend    = 0x0004 // a file in $Extend
	recIsViewIndex = 0x0008 // holds a view index ($Secure, $Quota …)
)

// Security ids in $Secure, as mkntfs numbers them.
const (
	secIDFile = 0x100 // SYSTEM and Administrators: read, execute
	secIDDir  = 0x101 // SYSTEM and Administrators: read, write, execute
)

// sysRef is the file reference of record n of a new volume: the sequence
// number is the record number, but 1 for $MFT and the files in use from
// record 24 on ($Extend's).
func sysRef(n uint64) uint64 {
	seq := uint16(n)
	if n == 0 || n >= 24 && n < fmtInitRecs {
		seq = 1
	}
	return mftRef(n, seq)
}

// stdInfo builds a $STANDARD_INFORMATION value: the 72-byte NTFS 3 form
// with a security id, or the 48-byte form when secID is 0 (the file then
// carries its own $SECURITY_DESCRIPTOR, as mkntfs gives some system files).
func (f *formatter) stdInfo(fa uint32, secID uint32) []byte {
	n := 48
	if secID != 0 {
		n = 72
	}
	si := make([]byte, n)
	for o := 0; o < 0x20; o += 8 {
		put64(si, o, f.now)
	}
	put32(si, 0x20, fa)
	if secID != 0 {
		put32(si, 0x34, secID)
	}
	return si
}

// fileName builds a $FILE_NAME value in root (or parent) with the
// WIN32_AND_DOS namespace, as the system files have.
func (f *formatter) fileName(parent uint64, name string, fa uint32, alloc, size int64) []byte {
	u := utf16.Encode([]rune(name))
	fn := make([]byte, 0x42+2*len(u))
	put64(fn, 0, parent)
	for o := 0x08; o < 0x28; o += 8 {
		put64(fn, o, f.now)
	}
	put64(fn, 0x28, uint64(alloc))
	put64(fn, 0x30, uint64(size))
	put32(fn, 0x38, fa)
	fn[0x40] = byte(len(u))
	fn[0x41] = nsWin32AndDOS
	for i, c := range u {
		put16(fn, 0x42+2*i, c)
	}
	return fn
}

// indexRoot builds an $INDEX_ROOT value: typ is the indexed attribute
// (0 for view indexes), es the serialised entries, large set when the END
// entry points to an INDX block.
func (f *formatter) indexRoot(typ, collation uint32, es []byte, large bool) []byte {
	b := make([]byte, 0x20+len(es))
	put32(b, 0, typ)
	put32(b, 4, collation)
	put32(b, 8, fmtIdxSize)
	if f.l.csize <= fmtIdxSize {
		b[0x0C] = byte(fmtIdxSize / f.l.csize)
	} else {
		b[0x0C] = fmtIdxSize / blockSize
	}
	put32(b, 0x10, 0x10)
	put32(b, 0x14, uint32(0x10+len(es)))
	put32(b, 0x18, uint32(0x10+len(es)))
	if large {
		put32(b, 0x1C, ihLarge)
	}
	copy(b[0x20:], es)
	return b
}

// viewEntry serialises one view-index entry (key and data at fixed
// offsets, as $Secure, $Quota and $ObjId use them), padded with zeros to
// length.
func viewEntry(key, data []byte, length int) []byte {
	b := make([]byte, length)
	do := 0x10 + len(key)
	put16(b, 0, uint16(do))
	put16(b, 2, uint16(len(data)))
	put16(b, 8, uint16(length))
	put16(b, 10, uint16(len(key)))
	copy(b[0x10:], key)
	copy(b[do:], data)
	return b
}

// endEntry is the closing entry of a view index.
func endEntry() []byte {
	b := make([]byte, 0x10)
	put16(b, 8, 0x10)
	put16(b, 12, ieEnd)
	return b
}

// newRec starts a record.
func (f *formatter) newRec(n uint64, flags uint16, links uint16) *record {
	r := &record{num: n, b: emptyRecord(n, uint16(refSeq(sysRef(n))), fmtRecSize)}
	put16(r.b, 0x16, flags)
	put16(r.b, 0x12, links)
	return r
}

func refSeq(ref uint64) uint16 { return uint16(ref >> 48) }

func (f *formatter) add(r *record, a []byte) {
	if r.insertAttr(a) < 0 {
		panic(fmt.Sprintf("ntfs: format: record %d overflows (internal error)", r.num))
	}
}

// records builds the decoded-then-encoded $MFT (the first mftSize bytes)
// and the root directory's INDX block.
func (f *formatter) records(o *FormatOptions) (mft, rootIA []byte) {
	l := f.l
	recs := make([]*record, l.mftSize/fmtRecSize)
	root := sysRef(recRoot)
	hs := uint32(faHidden | faSystem)
	keys := map[uint64][]byte{}
	// plain builds a system file with one unnamed $DATA.
	plain := func(n uint64, secID uint32, data []byte, runs []run, clusters, size, init int64) *record {
		// Without a security id the file carries its own descriptor:
		// read-only for the tables nobody changes ($AttrDef, $Boot).
		sd := sysFileSD(maskRWX)
		if n == 4 || n == 7 {
			sd = sysFileSD(maskReadOnl)
		}
		r := f.newRec(n, recInUse, 1)
		f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs, secID), 0))
		alloc := clusters * l.csize
		if data != nil || runs == nil {
			alloc = int64(align8(len(data)))
			size = int64(len(data))
		}
		fn := f.fileName(root, sysNames[n], hs, alloc, size)
		keys[n] = fn
		f.add(r, residentAttr(atFileName, nil, fn, 1))
		if secID == 0 {
			f.add(r, residentAttr(atSecurityDescriptor, nil, sd, 0))
		}
		if runs != nil {
			f.add(r, nonResidentAttr(atData, nil, encodeRuns(runs), clusters, size, init, l.csize))
		} else {
			f.add(r, residentAttr(atData, nil, data, 0))
		}
		recs[n] = r
		return r
	}
	mftC := l.mftN
	r := plain(recMFT, secIDFile, nil, []run{{l.mftLCN, mftC}}, mftC, l.mftSize, l.mftSize)
	f.add(r, nonResidentAttr(atBitmap, nil, encodeRuns([]run{{l.mftBmLCN, 1}}), 1, 8, 8, l.csize))
	mirrC := ceilDiv(l.mirrN, l.csize)
	plain(recMFTMirr, secIDFile, nil, []run{{l.mirrLCN, mirrC}}, mirrC, l.mirrN, l.mirrN)
	logC := ceilDiv(l.logN, l.csize)
	plain(recLogFile, secIDFile, nil, []run{{l.logLCN, logC}}, logC, l.logN, l.logN)

	// $Volume: label, version 3.1, not dirty.
	r = plain(recVolume, 0, []byte{}, nil, 0, 0, 0)
	label := utf16.Encode([]rune(o.Label))
	lb := make([]byte, 2*len(label))
	for i, c := range label {
		put16(lb, 2*i, c)
	}
	f.add(r, residentAttr(atVolumeName, nil, lb, 0))
	vi := make([]byte, 12)
	vi[8], vi[9] = 3, 1
	f.add(r, residentAttr(atVolumeInformation, nil, vi, 0))

	adC := ceilDiv(fmtAttrDefLen, l.csize)
	plain(4, 0, nil, []run{{l.attrDefLCN, adC}}, adC, fmtAttrDefLen, fmtAttrDefLen)
	bmC := ceilDiv(l.bitmapBytes, l.csize)
	plain(recBitmap, secIDFile, nil, []run{{l.bitmapLCN, bmC}}, bmC, l.bitmapBytes, l.bitmapBytes)
	bootC := l.bootN
	plain(7, 0, nil, []run{{0, bootC}}, bootC, fmtBootBytes, fmtBootBytes)

	// $BadClus: an empty unnamed $DATA and the sparse $Bad stream that
	// spans the volume (bad clusters would be mapped into it).
	r = plain(8, secIDFile, []byte{}, nil, 0, 0, 0)
	f.add(r, nonResidentAttr(atData, utf16.Encode([]rune("$Bad")), encodeRuns([]run{{-1, l.clusters}}), l.clusters, l.clusters*l.csize, 0, l.csize))

	// $Secure: $SDS with the two descriptors, the $SDH and $SII indexes.
	r = f.newRec(9, recInUse|recIsViewIndex, 1)
	f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs, secIDDir), 0))
	keys[9] = f.fileName(root, "$Secure", hs|faViewIndexPres, 0, 0)
	f.add(r, residentAttr(atFileName, nil, keys[9], 1))
	sdsC := ceilDiv(l.sdsSize, l.csize)
	f.add(r, nonResidentAttr(atData, utf16.Encode([]rune("$SDS")), encodeRuns([]run{{l.sdsLCN, sdsC}}), sdsC, l.sdsSize, l.sdsSize, l.csize))
	f.add(r, residentAttr(atIndexRoot, utf16.Encode([]rune("$SDH")), f.indexRoot(0, 0x12, sdhEntries(), false), 0))
	f.add(r, residentAttr(atIndexRoot, utf16.Encode([]rune("$SII")), f.indexRoot(0, 0x10, siiEntries(), false), 0))
	recs[9] = r

	upC := ceilDiv(fmtUpcaseSize, l.csize)
	plain(recUpCase, secIDFile, nil, []run{{l.upLCN, upC}}, upC, fmtUpcaseSize, fmtUpcaseSize)

	// $Extend and its files.
	ext := sysRef(recExtend)
	type sub struct {
		n    uint64
		name string
	}
	subs := []sub{{recObjID, "$ObjId"}, {recQuota, "$Quota"}, {recReparse, "$Reparse"}}
	extKeys := map[uint64][]byte{}
	for _, s := range subs {
		r := f.newRec(s.n, recInUse|recIsExtend|recIsViewIndex, 1)
		f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs|faArchive, secIDDir), 0))
		extKeys[s.n] = f.fileName(ext, s.name, hs|faArchive|faViewIndexPres, 0, 0)
		f.add(r, residentAttr(atFileName, nil, extKeys[s.n], 1))
		switch s.n {
		case recObjID:
			f.add(r, residentAttr(atIndexRoot, utf16.Encode([]rune("$O")), f.indexRoot(0, 0x13, endEntry(), false), 0))
		case recQuota:
			f.add(r, residentAttr(atIndexRoot, utf16.Encode([]rune("$O")), f.indexRoot(0, 0x11, quotaOEntries(), false), 0))
			f.add(r, residentAttr(atIndexRoot, utf16.Encode([]rune("$Q")), f.indexRoot(0, 0x10, quotaQEntries(f.now), false), 0))
		case recReparse:
			f.add(r, residentAttr(atIndexRoot, utf16.Encode([]rune("$R")), f.indexRoot(0, 0x13, endEntry(), false), 0))
		}
		recs[s.n] = r
	}
	r = f.newRec(recExtend, recInUse|recDirectory, 1)
	f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs, secIDDir), 0))
	keys[recExtend] = f.fileName(root, "$Extend", hs|faIndexPresent, 0, 0)
	f.add(r, residentAttr(atFileName, nil, keys[recExtend], 1))
	var es []ientry
	for _, s := range subs {
		es = append(es, ientry{ref: sysRef(s.n), key: extKeys[s.n], child: -1})
	}
	es = f.sortEntries(es)
	f.add(r, residentAttr(atIndexRoot, i30, f.indexRoot(atFileName, collationFileName, serializeEntries(es), false), 0))
	recs[recExtend] = r

	// The root directory: "." and the system files in one INDX block.
	r = f.newRec(recRoot, recInUse|recDirectory, 1)
	f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs|faArchive, 0), 0))
	keys[recRoot] = f.fileName(root, ".", hs|faIndexPresent, 0, 0)
	f.add(r, residentAttr(atFileName, nil, keys[recRoot], 1))
	f.add(r, residentAttr(atSecurityDescriptor, nil, rootSD(), 0))
	f.add(r, residentAttr(atIndexRoot, i30, f.indexRoot(atFileName, collationFileName, serializeEntries([]ientry{{child: 0}}), true), 0))
	iaC := ceilDiv(fmtIdxSize, l.csize)
	f.add(r, nonResidentAttr(atIndexAllocation, i30, encodeRuns([]run{{l.rootIALCN, iaC}}), iaC, fmtIdxSize, fmtIdxSize, l.csize))
	f.add(r, residentAttr(atBitmap, i30, []byte{1, 0, 0, 0, 0, 0, 0, 0}, 0))
	recs[recRoot] = r
	es = es[:0]
	for n := uint64(0); n <= recExtend; n++ {
		es = append(es, ientry{ref: sysRef(n), key: keys[n], child: -1})
	}
	es = f.sortEntries(es)
	blk := emptyBlock(fmtIdxSize, 0)
	ser := serializeEntries(es)
	eo := int(u32(blk, 0x18))
	copy(blk[0x18+eo:], ser)
	put32(blk, 0x1C, uint32(eo+len(ser)))
	rootIA = fixup(blk)

	// Records 12-15: in use, nameless, reserved by Windows.
	for n := uint64(12); n < 16; n++ {
		r := f.newRec(n, recInUse, 0)
		f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs, 0), 0))
		f.add(r, residentAttr(atSecurityDescriptor, nil, sysFileSD(maskRWX), 0))
		f.add(r, residentAttr(atData, nil, nil, 0))
		recs[n] = r
	}
	// Records 16-23: free, but formatted with a $STANDARD_INFORMATION as
	// Windows leaves them (reserved for $MFT's extension records).
	for n := uint64(16); n < 24; n++ {
		r := f.newRec(n, 0, 0)
		f.add(r, residentAttr(atStandardInformation, nil, f.stdInfo(hs, 0), 0))
		recs[n] = r
	}
	mft = make([]byte, l.mftSize)
	for n := range recs {
		if recs[n] == nil {
			// Free records: formatted, so that Windows and chkdsk see
			// valid, unused FILE records (16-23 and any up to the end
			// of the first clusters).
			recs[n] = &record{num: uint64(n), b: emptyRecord(uint64(n), refSeq(sysRef(uint64(n))), fmtRecSize)}
		}
		copy(mft[n*fmtRecSize:], fixup(recs[n].b))
	}
	return mft, rootIA
}

// sortEntries sorts $FILE_NAME index entries in collation order and
// appends the END entry.
func (f *formatter) sortEntries(es []ientry) []ientry {
	v := &vol{upcase: f.upcase}
	slices.SortFunc(es, func(a, b ientry) int { return v.cmpFull(keyName(a.key), keyName(b.key)) })
	return append(es, ientry{child: -1})
}

// mftBitmap is $MFT's $BITMAP: records 0-15 and 24-26 in use.
func (f *formatter) mftBitmap() []byte {
	return []byte{0xFF, 0xFF, 0x00, 0x07, 0, 0, 0, 0}
}

// clusterBitmap is $Bitmap, padded to whole clusters: the metadata
// clusters in use, and the bits past the last cluster set (they describe
// no cluster and must never be allocated).
func (f *formatter) clusterBitmap() []byte {
	l := f.l
	b := make([]byte, ceilDiv(l.bitmapBytes, l.csize)*l.csize)
	set := func(lcn, n int64) {
		for c := lcn; c < lcn+n; c++ {
			b[c>>3] |= 1 << (c & 7)
		}
	}
	set(0, l.bootN)
	set(l.mftBmLCN, 1)
	set(l.mftLCN, l.mftN)
	set(l.rootIALCN, ceilDiv(fmtIdxSize, l.csize))
	set(l.attrDefLCN, ceilDiv(fmtAttrDefLen, l.csize))
	set(l.bitmapLCN, ceilDiv(l.bitmapBytes, l.csize))
	set(l.sdsLCN, ceilDiv(l.sdsSize, l.csize))
	set(l.upLCN, ceilDiv(fmtUpcaseSize, l.csize))
	set(l.mirrLCN, ceilDiv(l.mirrN, l.csize))
	set(l.logLCN, ceilDiv(l.logN, l.csize))
	set(l.clusters, l.bitmapBytes*8-l.clusters)
	return b
}

// CheckFormat reports whether Format would accept a volume of size bytes
// with these options, without writing anything.
func CheckFormat(size int64, opts FormatOptions) error {
	_, err := planFormat(size, &opts)
	return err
}

// FormatMetadataSize is how many bytes Format writes for a volume of size
// bytes with the given cluster size (0: the default), for progress bars;
// 0 when Format would refuse the volume.
func FormatMetadataSize(size int64, clusterSize int) int64 {
	l, err := planFormat(size, &FormatOptions{ClusterSize: clusterSize})
	if err != nil {
		return 0
	}
	c := func(n int64) int64 { return ceilDiv(n, l.csize) * l.csize }
	return fmtBootBytes + l.csize + l.mftN*l.csize + c(fmtIdxSize) + c(fmtAttrDefLen) + c(l.bitmapBytes) +
		c(l.sdsSize) + fmtUpcaseSize + c(l.mirrN) + l.logN + fmtSector
}
