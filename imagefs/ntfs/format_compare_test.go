package ntfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestFormatMatchesMkntfs formats volumes with Format and with mkntfs
// (same size, cluster size and geometry) and compares them field by field.
// The differences allowed, each asserted below:
//
//   - the serial number (random) and the boot code (xpboot's own);
//   - time stamps ($STANDARD_INFORMATION, $FILE_NAME, the $Quota change
//     time) and attribute instance numbers;
//   - the root directory's security descriptor: mkntfs writes a 4,140-byte
//     non-resident one, Format the resident descriptor XP gives the root
//     of a new volume, so mkntfs uses that many more clusters, and every
//     metadata file after the root descriptor sits that much further on;
//   - the 4 padding bytes after the owner id in $Quota:$O's entry, which
//     mkntfs fills with 0x20 and Format with zeros;
//   - mkntfs adds a $DATA:$Info stream to $UpCase, which Windows Vista
//     introduced; XP does not write it.
func TestFormatMatchesMkntfs(t *testing.T) {
	peertest.Need(t, "mkntfs", "ntfs-3g")
	tests := []struct {
		size    int64
		cluster int
	}{
		{64 << 20, 512},
		{1 << 30, 4096},
		{2 << 30, 2048},
		{8 << 30, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dM_%d", tt.size>>20, tt.cluster), func(t *testing.T) {
			dir := t.TempDir()
			ref := filepath.Join(dir, "mkntfs.ntfs")
			if err := os.WriteFile(ref, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(ref, tt.size); err != nil {
				t.Fatal(err)
			}
			peertest.Run(t, ntfstest.PeerTimeout, "mkntfs", "-F", "-f", "-q", "-s", "512", "-p", "63", "-H", "255", "-S", "63",
				"-c", strconv.Itoa(tt.cluster), "-L", "XPBOOT", ref)
			mine := formatVolume(t, tt.size, FormatOptions{ClusterSize: tt.cluster, Label: "XPBOOT", HiddenSectors: 63, Time: testTime})
			compareVolumes(t, ref, mine, tt.size)
		})
	}
}

type openedVol struct {
	*vol
	f    *os.File
	boot []byte
	last []byte
}

func openForCompare(t *testing.T, p string, size int64) *openedVol {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	v, err := loadVol(roDevice{f}, 0, size)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	o := &openedVol{vol: v, f: f, boot: make([]byte, 512), last: make([]byte, 512)}
	f.ReadAt(o.boot, 0)
	f.ReadAt(o.last, size-512)
	return o
}

// attrOf returns the attribute (type, name) of record n and its value.
func (o *openedVol) attrOf(t *testing.T, n uint64, typ uint32, name string) (*attr, []byte) {
	t.Helper()
	a := o.attrHead(t, n, typ, name)
	r, _ := o.record(n)
	b, _, err := o.attrData(r, a)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// attrHead returns the attribute (type, name) of record n without
// reading its value ($BadClus:$Bad spans the whole volume).
func (o *openedVol) attrHead(t *testing.T, n uint64, typ uint32, name string) *attr {
	t.Helper()
	r, err := o.record(n)
	if err != nil {
		t.Fatal(err)
	}
	as, err := r.attrs()
	if err != nil {
		t.Fatal(err)
	}
	a := find(as, typ, name)
	if a == nil {
		t.Fatalf("record %d has no attribute 0x%x %q", n, typ, name)
	}
	return a
}

// layout describes a record for comparison: flags, sequence, links and
// its attributes (type, name, residency).
func (o *openedVol) layout(t *testing.T, n uint64) string {
	r, err := o.record(n)
	if err != nil {
		t.Fatal(err)
	}
	as, err := r.attrs()
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("flags %#x seq %d links %d:", u16(r.b, 0x16), r.seq(), u16(r.b, 0x12))
	for _, a := range as {
		nm := string(utf16Decode(a.name))
		if n == recUpCase && nm == "$Info" {
			continue // Vista's $UpCase:$Info, see the test's comment
		}
		res := "res"
		if a.nonRes {
			res = "nonres"
		}
		if n == recRoot && a.typ == atSecurityDescriptor {
			res = "any" // the root descriptor, see the test's comment
		}
		if a.typ == atStandardInformation {
			res += fmt.Sprintf("/%d", a.valLen)
		}
		s += fmt.Sprintf(" 0x%x%s(%s)", a.typ, nm, res)
	}
	return s
}

func utf16Decode(u []uint16) []rune {
	out := make([]rune, len(u))
	for i, c := range u {
		out[i] = rune(c)
	}
	return out
}

func compareVolumes(t *testing.T, refPath, minePath string, size int64) {
	ref, mine := openForCompare(t, refPath, size), openForCompare(t, minePath, size)

	// Boot sector: the BPB from 0x0B to the serial number.
	if !bytes.Equal(ref.boot[0x0B:0x48], mine.boot[0x0B:0x48]) {
		t.Errorf("boot sector BPB differs:\nmkntfs %x\nxpboot %x", ref.boot[0x0B:0x48], mine.boot[0x0B:0x48])
	}
	if !bytes.Equal(mine.boot, mine.last) || !bytes.Equal(ref.boot, ref.last) {
		t.Error("the last sector is not a copy of the boot sector")
	}
	if ref.mftLCN != mine.mftLCN || ref.mirrLCN != mine.mirrLCN {
		t.Errorf("$MFT/$MFTMirr at %d/%d, mkntfs %d/%d", mine.mftLCN, mine.mirrLCN, ref.mftLCN, ref.mirrLCN)
	}
	if ref.zoneEnd != mine.zoneEnd || ref.mftRecs != mine.mftRecs || ref.mirrN != mine.mirrN {
		t.Errorf("MFT zone end %d, records %d, mirrored %d; mkntfs %d, %d, %d", mine.zoneEnd, mine.mftRecs, mine.mirrN, ref.zoneEnd, ref.mftRecs, ref.mirrN)
	}
	if !bytes.Equal(ref.mftBitmap, mine.mftBitmap) {
		t.Errorf("$MFT's $BITMAP %x, mkntfs %x", mine.mftBitmap, ref.mftBitmap)
	}
	// Record layout.
	for n := uint64(0); n < uint64(ref.mftRecs); n++ {
		if a, b := ref.layout(t, n), mine.layout(t, n); a != b {
			t.Errorf("record %d:\nmkntfs %s\nxpboot %s", n, a, b)
		}
	}
	// Contents that must be byte-identical.
	same := []struct {
		rec  uint64
		typ  uint32
		name string
	}{
		{4, atData, ""},                       // $AttrDef
		{recUpCase, atData, ""},               // $UpCase
		{9, atData, "$SDS"},                   // $Secure
		{9, atIndexRoot, "$SDH"},              //
		{9, atIndexRoot, "$SII"},              //
		{recVolume, atVolumeInformation, ""},  // version 3.1, flags 0
		{recVolume, atVolumeName, ""},         // the label
		{recVolume, atSecurityDescriptor, ""}, // system file descriptors
		{4, atSecurityDescriptor, ""},         //
		{7, atSecurityDescriptor, ""},         //
		{12, atSecurityDescriptor, ""},        //
		{recObjID, atIndexRoot, "$O"},         // $Extend files
		{recReparse, atIndexRoot, "$R"},       //
		{8, atData, ""},                       // $BadClus
		{recMFT, atBitmap, ""},                //
	}
	for _, s := range same {
		_, a := ref.attrOf(t, s.rec, s.typ, s.name)
		_, b := mine.attrOf(t, s.rec, s.typ, s.name)
		if !bytes.Equal(a, b) {
			t.Errorf("record %d attribute 0x%x %q differs:\nmkntfs %x\nxpboot %x", s.rec, s.typ, s.name, hexHead(a), hexHead(b))
		}
	}
	// $Quota:$O: equal but for the padding after the owner id.
	_, oa := ref.attrOf(t, recQuota, atIndexRoot, "$O")
	_, ob := mine.attrOf(t, recQuota, atIndexRoot, "$O")
	if len(oa) == len(ob) && len(oa) >= 0x20+0x28 {
		copy(oa[0x20+0x24:0x20+0x28], ob[0x20+0x24:])
	}
	if !bytes.Equal(oa, ob) {
		t.Errorf("$Quota:$O differs beyond the padding:\nmkntfs %x\nxpboot %x", oa, ob)
	}
	// $Quota:$Q: equal but for the change times of both entries.
	_, qa := ref.attrOf(t, recQuota, atIndexRoot, "$Q")
	_, qb := mine.attrOf(t, recQuota, atIndexRoot, "$Q")
	if len(qa) == len(qb) && len(qa) > 0x20+0x68+0x18 {
		for _, o := range []int{0x20 + 0x24, 0x20 + 0x48 + 0x24} {
			copy(qa[o:o+8], qb[o:o+8])
		}
	}
	if !bytes.Equal(qa, qb) {
		t.Errorf("$Quota:$Q differs beyond the change times:\nmkntfs %x\nxpboot %x", qa, qb)
	}
	// Non-resident metadata: same sizes.
	for _, s := range []struct {
		rec  uint64
		name string
	}{{recMFT, ""}, {recMFTMirr, ""}, {recLogFile, ""}, {4, ""}, {recBitmap, ""}, {7, ""}, {8, "$Bad"}, {9, "$SDS"}, {recUpCase, ""}} {
		a := ref.attrHead(t, s.rec, atData, s.name)
		b := mine.attrHead(t, s.rec, atData, s.name)
		if a.alloc != b.alloc || a.size != b.size || a.init != b.init || a.nonRes != b.nonRes {
			t.Errorf("record %d $DATA %q: allocated/size/initialized %d/%d/%d, mkntfs %d/%d/%d", s.rec, s.name, b.alloc, b.size, b.init, a.alloc, a.size, a.init)
		}
	}
	// $LogFile: empty (all 0xff) in both.
	for _, o := range []*openedVol{ref, mine} {
		_, lb := o.attrOf(t, recLogFile, atData, "")
		if bytes.Count(lb, []byte{0xFF}) != len(lb) {
			t.Error("$LogFile is not all 0xff")
		}
	}
	// $Bitmap: the same clusters in use but for mkntfs's larger root
	// descriptor, and the same bits set past the end of the volume.
	rootSDClusters := int64(0)
	if a := ref.attrHead(t, recRoot, atSecurityDescriptor, ""); a.nonRes {
		rootSDClusters = a.alloc / ref.csize
	}
	used := func(o *openedVol) (n int64) {
		for c := int64(0); c < int64(len(o.bitmap))*8; c++ {
			if bit(o.bitmap, c) {
				n++
			}
		}
		return n
	}
	if a, b := used(ref), used(mine); a != b+rootSDClusters {
		t.Errorf("$Bitmap: %d clusters in use, mkntfs %d of which %d for its root descriptor", b, a, rootSDClusters)
	}
	// The root and $Extend index the same names in the same order.
	for _, dir := range []uint64{recRoot, recExtend} {
		if a, b := indexNames(t, ref, dir), indexNames(t, mine, dir); a != b {
			t.Errorf("record %d indexes\nmkntfs %s\nxpboot %s", dir, a, b)
		}
	}
}

func hexHead(b []byte) []byte { return b[:min(len(b), 256)] }

func indexNames(t *testing.T, o *openedVol, dir uint64) string {
	t.Helper()
	tx := o.begin()
	defer tx.abort()
	d, err := tx.openIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := d.each(func(e *ientry) bool {
		s += fmt.Sprintf(" %s->%d/%d", string(utf16Decode(keyName(e.key))), refRecord(e.ref), e.ref>>48)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return s
}
