package bootcode_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/bootcode"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/internal/peertest"
)

// Disk layout of the NTFS boot tests: XP's, one active type 0x07 partition
// from LBA 63 to the end of a cylinder of a 255-head, 63-sector geometry.
const (
	ntfsCylSectors = 255 * 63
	ntfsPartStart  = 63
	ntfsPeerTime   = 60 * time.Second
)

// ntfsDisk describes a test disk whose volume mkntfs formats.
type ntfsDisk struct {
	cylinders int // disk size in cylinders
	cluster   int // mkntfs -c, bytes per cluster
	heads     int // the BPB's geometry (mkntfs -H, -S)
	spt       int
	// populate fills the volume through xpboot's NTFS writer.
	populate func(t *testing.T, fs *ntfs.FS)
	// check inspects the filled volume image with peers before the disk
	// is put together; nil for none.
	check func(t *testing.T, vol string)
}

// build formats the volume with mkntfs in an image of its own, fills it,
// copies it to sector 63 of a disk with an MBR partition table and xpboot's
// MBR code, and installs the NTFS boot code with InstallNTFS.
func (d ntfsDisk) build(t *testing.T) string {
	t.Helper()
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	dir := t.TempDir()
	diskSectors := d.cylinders * ntfsCylSectors
	// The partition ends on a cylinder boundary of the BPB's geometry: QEMU
	// guesses the disk's geometry from the table's end CHS fields, and the
	// CHS test needs the BIOS and the BPB to agree.
	partSectors := diskSectors/(d.heads*d.spt)*(d.heads*d.spt) - ntfsPartStart
	vol := filepath.Join(dir, "volume.img")
	vf, err := os.Create(vol)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	if err := vf.Truncate(int64(partSectors) * bootcode.SectorSize); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, ntfsPeerTime, mkntfs, "-F", "-Q", "-q", "-s", "512",
		"-p", strconv.Itoa(ntfsPartStart), "-H", strconv.Itoa(d.heads), "-S", strconv.Itoa(d.spt),
		"-c", strconv.Itoa(d.cluster), "-L", "XPBOOTTEST", vol)
	if d.populate != nil {
		fs, err := ntfs.OpenWritable(vf, 0, int64(partSectors)*bootcode.SectorSize)
		if err != nil {
			t.Fatalf("open the mkntfs volume for writing: %v", err)
		}
		d.populate(t, fs)
		if err := fs.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if d.check != nil {
		d.check(t, vol)
	}

	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(diskSectors) * bootcode.SectorSize); err != nil {
		t.Fatal(err)
	}
	copySparse(t, f, ntfsPartStart*bootcode.SectorSize, vf)
	mbr := make([]byte, bootcode.SectorSize)
	if err := bootcode.InstallMBR(mbr); err != nil {
		t.Fatal(err)
	}
	copy(mbr[446:], partitionEntry(ntfsPartStart, partSectors, d.heads, d.spt))
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if err := bootcode.InstallNTFS(f, ntfsPartStart*bootcode.SectorSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// copySparse copies src to dst at byte off, skipping blocks of zeros (the
// disk image is sparse).
func copySparse(t *testing.T, dst *os.File, off int64, src *os.File) {
	t.Helper()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := int64(0); ; {
		n, err := src.ReadAt(buf, pos)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := dst.WriteAt(buf[:n], off+pos); err != nil {
				t.Fatal(err)
			}
		}
		pos += int64(n)
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// partitionEntry returns an active type 0x07 MBR entry with CHS fields for
// the given geometry (capped at cylinder 1023 as usual).
func partitionEntry(start, sectors, heads, spt int) []byte {
	chs := func(lba int) [3]byte {
		c, h, s := lba/(heads*spt), lba/spt%heads, lba%spt+1
		if c > 1023 {
			c, h, s = 1023, heads-1, spt
		}
		return [3]byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
	}
	e := make([]byte, 16)
	e[0] = 0x80
	s, l := chs(start), chs(start+sectors-1)
	copy(e[1:4], s[:])
	e[4] = 0x07
	copy(e[5:8], l[:])
	binary.LittleEndian.PutUint32(e[8:], uint32(start))
	binary.LittleEndian.PutUint32(e[12:], uint32(sectors))
	return e
}

// standIn assembles testdata/ntfsldr.asm and pads it with pseudo-random
// bytes to size, storing the size at offset 4. It returns the file and the
// hash the program must print.
func standIn(t *testing.T, size int) ([]byte, uint32) {
	t.Helper()
	nasm := peertest.Need(t, "nasm", "nasm")
	code := bootcode.Assemble(t, nasm, "testdata/ntfsldr.asm")
	if len(code) > size {
		t.Fatalf("test NTLDR code is %d bytes, more than %d", len(code), size)
	}
	file := make([]byte, size)
	rng := rand.New(rand.NewPCG(3, uint64(size)))
	for i := range file {
		file[i] = byte(rng.Uint32())
	}
	copy(file, code)
	binary.LittleEndian.PutUint32(file[4:], uint32(size))
	var h uint32
	for _, b := range file {
		h = h*31 + uint32(b)
	}
	return file, h
}

// put writes a file into the volume.
func put(t *testing.T, fs *ntfs.FS, name string, data []byte) {
	t.Helper()
	if err := fs.WriteFile(name, bytes.NewReader(data), int64(len(data)), time.Date(2008, 4, 14, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
}

// ntfsinfo runs ntfs-3g's ntfsinfo -v on the volume image with args (-i N
// or -F path) and returns its output.
func ntfsinfo(t *testing.T, vol string, args ...string) string {
	t.Helper()
	bin := peertest.Need(t, "ntfsinfo", "ntfs-3g")
	return string(peertest.Run(t, ntfsPeerTime, bin, append(append([]string{"-v", "-f"}, args...), vol)...))
}

var runLine = regexp.MustCompile(`(?m)^\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s*$`)

// checkBoot boots img and checks the stand-in NTLDR's report.
func checkBoot(t *testing.T, img, rom string, hash uint32) string {
	t.Helper()
	serial, exit := bootcode.BootQEMU(t, img, rom, "")
	want := fmt.Sprintf("NTLDR-TEST DL=80 BPBDL=80 FS=NTFS     CS=2000 SP=7BC0 SEGS=0000,0000,0000 HASH=%08X ", hash)
	if !strings.Contains(serial, want) || !strings.Contains(serial, " END") {
		t.Fatalf("serial output lacks %q… END:\n%s", want, serial)
	}
	if exit != bootcode.DebugExitOK {
		t.Fatalf("QEMU exit status %d, want %d", exit, bootcode.DebugExitOK)
	}
	return serial
}

// TestNTFSBoot boots MBR → NTFS boot code → a stand-in NTLDR that hashes its
// own image in memory, on volumes mkntfs made and xpboot's NTFS writer
// filled.
func TestNTFSBoot(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	const size = 150000 // 2000:0000..2000:0000+size spans three 64 KiB segments
	ntldr, hash := standIn(t, size)

	tests := []struct {
		name  string
		disk  ntfsDisk
		noExt bool
	}{
		{"LBA 4 KiB clusters", ntfsDisk{cylinders: 9, cluster: 4096, heads: 255, spt: 63,
			populate: func(t *testing.T, fs *ntfs.FS) { put(t, fs, "NTLDR", ntldr) }}, false},
		// The CHS path computes addresses from the BPB geometry, which must
		// be the BIOS's: SeaBIOS keeps 16 heads for a disk this small.
		{"CHS 512-byte clusters", ntfsDisk{cylinders: 9, cluster: 512, heads: 16, spt: 63,
			populate: func(t *testing.T, fs *ntfs.FS) { put(t, fs, "NTLDR", ntldr) }}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.disk.build(t)
			rom := ""
			if tc.noExt {
				rom = bootcode.NoExtROM(t)
			}
			serial := checkBoot(t, img, rom, hash)
			if tc.noExt {
				var ext, chs int
				if _, err := fmt.Sscanf(serial[strings.Index(serial, " EXT="):], " EXT=%X CHS=%X", &ext, &chs); err != nil {
					t.Fatalf("parse counters: %v\n%s", err, serial)
				}
				if ext != 2 || chs < size/bootcode.SectorSize {
					t.Fatalf("extension calls %d (want 2), CHS reads %d (want at least %d)", ext, chs, size/bootcode.SectorSize)
				}
				t.Logf("%d INT 13h AH=02h reads, %d refused extension calls", chs, ext)
			}
		})
	}
}

// populateManyFiles fills the root directory with 300 files and names that
// sort right next to NTLDR, so that the root index spills into INDX blocks
// and NTLDR's entry sits in a leaf block, then writes NTLDR (nil: leaves it
// out; a directory named NTLDR must not count either).
func populateManyFiles(ntldr []byte) func(t *testing.T, fs *ntfs.FS) {
	return func(t *testing.T, fs *ntfs.FS) {
		small := []byte("filler\r\n")
		for i := range 300 {
			put(t, fs, fmt.Sprintf("file%03d.dat", i), small)
		}
		for _, n := range []string{"ntldq", "NTLD", "ntldr.bak", "NTLDR1", "ntldrx", "ntlds", "NTLDR~1"} {
			put(t, fs, n, small)
		}
		if ntldr == nil {
			if err := fs.Mkdir("ntldr", time.Date(2008, 4, 14, 12, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
		} else {
			put(t, fs, "NTLDR", ntldr)
		}
		for i := range 40 {
			put(t, fs, fmt.Sprintf("zz%02d.sys", i), small)
		}
	}
}

// checkDeepIndex checks with ntfsinfo that the root directory's index has
// INDX blocks and that NTLDR's entry is not in the root node.
func checkDeepIndex(t *testing.T, vol string) {
	t.Helper()
	dump := ntfsinfo(t, vol, "-i", "5")
	i := strings.Index(dump, "Dumping index root:")
	j := strings.Index(dump, "Dumping attribute $INDEX_ALLOCATION")
	if i < 0 || j < i {
		t.Fatalf("ntfsinfo shows no index root followed by an $INDEX_ALLOCATION:\n%s", dump)
	}
	root := dump[i:j]
	if !strings.Contains(root, "Subnode VCN") {
		t.Fatalf("ntfsinfo's root node shows no entries with children:\n%s", root)
	}
	if strings.Contains(root, "NTLDR") {
		t.Fatalf("NTLDR is in the root node; the test wants it in an INDX block:\n%s", root)
	}
	// ntfsinfo refuses to dump an $INDEX_ALLOCATION over 64 KiB, so the
	// blocks are counted from its data size.
	var size int
	if m := regexp.MustCompile(`Data size:\s+(\d+)`).FindStringSubmatch(dump[j:]); m != nil {
		size, _ = strconv.Atoi(m[1])
	}
	if size < 3*4096 {
		t.Fatalf("the root index has %d bytes of INDX blocks, want at least 3 blocks:\n%s", size, dump[j:])
	}
	t.Logf("root index: %d INDX blocks", size/4096)
}

// populateFragmented fills the volume with 64 KiB files until it is nearly
// full, deletes every other one, creates enough empty files that $MFT must
// grow into the holes, and then writes NTLDR, whose record lands in $MFT's
// new runs and whose data is spread over several holes.
func populateFragmented(ntldr []byte) func(t *testing.T, fs *ntfs.FS) {
	return func(t *testing.T, fs *ntfs.FS) {
		mtime := time.Date(2008, 4, 14, 12, 0, 0, 0, time.UTC)
		for _, d := range []string{"fill", "more"} {
			if err := fs.Mkdir(d, mtime); err != nil {
				t.Fatal(err)
			}
		}
		block := make([]byte, 64<<10)
		n := 0
		for fs.FreeBytes() > 4*int64(len(block)) {
			block[0] = byte(n)
			put(t, fs, fmt.Sprintf("fill/f%04d", n), block)
			n++
		}
		for i := 0; i < n; i += 2 {
			if err := fs.Remove(fmt.Sprintf("fill/f%04d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n/2 + 600 {
			put(t, fs, fmt.Sprintf("more/m%04d", i), nil)
		}
		put(t, fs, "NTLDR", ntldr)
		t.Logf("%d filler files of 64 KiB, every other one deleted, %d empty files", n, n/2+600)
	}
}

// runList parses the runs of the unnamed $DATA attribute in ntfsinfo's
// dump: VCN, LCN and length of each.
func runList(t *testing.T, dump string) [][3]uint64 {
	t.Helper()
	i := strings.Index(dump, "Dumping attribute $DATA")
	if i < 0 {
		t.Fatalf("ntfsinfo shows no $DATA attribute:\n%s", dump)
	}
	part := dump[i:]
	if j := strings.Index(part[1:], "Dumping attribute"); j >= 0 {
		part = part[:j+1]
	}
	var runs [][3]uint64
	for _, l := range runLine.FindAllString(part, -1) {
		var r [3]uint64
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "0x%x 0x%x 0x%x", &r[0], &r[1], &r[2]); err != nil {
			t.Fatalf("runlist line %q: %v", l, err)
		}
		runs = append(runs, r)
	}
	return runs
}

var inodeLine = regexp.MustCompile(`Dumping Inode (\d+)`)

// checkFragmented checks with ntfsinfo that NTLDR's data has at least three
// runs, that $MFT has at least two and that NTLDR's record lies beyond
// $MFT's first run.
func checkFragmented(t *testing.T, vol string) {
	t.Helper()
	mft := runList(t, ntfsinfo(t, vol, "-i", "0"))
	dump := ntfsinfo(t, vol, "-F", "/NTLDR")
	file := runList(t, dump)
	m := inodeLine.FindStringSubmatch(dump)
	if m == nil {
		t.Fatalf("ntfsinfo names no inode:\n%s", dump)
	}
	rec, _ := strconv.ParseUint(m[1], 10, 64)
	t.Logf("$MFT runs %v; NTLDR is record %d with runs %v", mft, rec, file)
	if len(file) < 3 || len(mft) < 2 {
		t.Fatalf("NTLDR has %d runs (want at least 3) and $MFT %d (want at least 2)", len(file), len(mft))
	}
	// 1 KiB records and 4 KiB clusters (the test volume's).
	if vcn := rec * 1024 / 4096; vcn < mft[0][2] {
		t.Fatalf("NTLDR's record %d is in $MFT's first run (%d clusters)", rec, mft[0][2])
	}
}

// TestNTFSBootLayouts boots volumes whose layout the NTFS boot code must
// handle: a root index with INDX blocks and NTLDR in a leaf, a fragmented
// NTLDR in a fragmented $MFT, and an NTLDR small enough to be resident.
func TestNTFSBootLayouts(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	big, bigHash := standIn(t, 300000)
	small, smallHash := standIn(t, 150000)
	tiny, tinyHash := standIn(t, 600)
	largest, largestHash := standIn(t, 0x9F000-0x20000)
	tests := []struct {
		name string
		disk ntfsDisk
		hash uint32
	}{
		// 8 KiB clusters: index blocks are smaller than a cluster, so
		// child VCNs count 512-byte units.
		{"root index in INDX blocks", ntfsDisk{cylinders: 9, cluster: 8192, heads: 255, spt: 63,
			populate: populateManyFiles(small), check: checkDeepIndex}, smallHash},
		{"fragmented NTLDR and $MFT", ntfsDisk{cylinders: 9, cluster: 4096, heads: 255, spt: 63,
			populate: populateFragmented(big), check: checkFragmented}, bigHash},
		// The most the code loads: NTLDR ends right below 0x9F000.
		{"NTLDR of 0x7F000 bytes", ntfsDisk{cylinders: 9, cluster: 4096, heads: 255, spt: 63,
			populate: func(t *testing.T, fs *ntfs.FS) { put(t, fs, "NTLDR", largest) }}, largestHash},
		// ntfs-3g keeps a file this small in its MFT record; xpboot's
		// writer never does.
		{"resident NTLDR written by ntfscp", ntfsDisk{cylinders: 9, cluster: 4096, heads: 255, spt: 63,
			check: func(t *testing.T, vol string) {
				ntfscp(t, vol, "ntldr", tiny) // found whatever its case
				if d := ntfsinfo(t, vol, "-F", "/ntldr"); !regexp.MustCompile(`Dumping attribute \$DATA[^D]*Resident:\s+Yes`).MatchString(d) {
					t.Fatalf("NTLDR's $DATA is not resident:\n%s", d)
				}
			}}, tinyHash},
		// ntfs-3g's B+tree keeps keys in the root node, unlike xpboot's
		// writer, so the walk compares against real entries there too.
		{"root index written by ntfs-3g", ntfsDisk{cylinders: 9, cluster: 2048, heads: 255, spt: 63,
			check: func(t *testing.T, vol string) {
				for i := range 200 {
					ntfscp(t, vol, fmt.Sprintf("Program File %03d.txt", i), []byte("filler"))
				}
				ntfscp(t, vol, "NTLDR", small)
				checkDeepIndex(t, vol)
			}}, smallHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkBoot(t, tc.disk.build(t), "", tc.hash)
		})
	}
}

// ntfscp writes data as name into the root of the volume image with
// ntfs-3g's ntfscp.
func ntfscp(t *testing.T, vol, name string, data []byte) {
	t.Helper()
	bin := peertest.Need(t, "ntfscp", "ntfs-3g")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, ntfsPeerTime, bin, "-q", "-f", vol, src, "/"+name)
}

// patchFile writes b at byte off of the file.
func patchFile(t *testing.T, name string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// mftRecordOffset returns the disk offset of MFT record n of the test disk
// (one of the first records, which mkntfs puts in $MFT's first run).
func mftRecordOffset(t *testing.T, img string, n int64) int64 {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs := make([]byte, bootcode.SectorSize)
	if _, err := f.ReadAt(bs, ntfsPartStart*bootcode.SectorSize); err != nil {
		t.Fatal(err)
	}
	cluster := int64(bs[0x0D]) * bootcode.SectorSize
	return ntfsPartStart*bootcode.SectorSize + int64(binary.LittleEndian.Uint64(bs[0x30:]))*cluster + n*1024
}

// TestNTFSBootErrors boots volumes the NTFS boot code must refuse and
// checks its messages.
func TestNTFSBootErrors(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	const limit = 0x9F000 - 0x20000 // the most NTLDR bytes below 0x9F000
	withNTLDR := func(b []byte) func(t *testing.T, fs *ntfs.FS) {
		return func(t *testing.T, fs *ntfs.FS) { put(t, fs, "NTLDR", b) }
	}
	part := int64(ntfsPartStart * bootcode.SectorSize)
	tests := []struct {
		name     string
		populate func(t *testing.T, fs *ntfs.FS)
		damage   func(t *testing.T, img string) // after the install
		want     string
	}{
		{"no NTLDR on a fresh volume", nil, nil, "NTLDR is missing"},
		// A directory named ntldr, and names sorting right around it, in
		// a root index with INDX blocks.
		{"directory NTLDR among 300 files", populateManyFiles(nil), nil, "NTLDR is missing"},
		{"NTLDR larger than 0x7F000", withNTLDR(make([]byte, limit+1)), nil, "NTLDR is too big"},
		{"sectors 1..15 overwritten", withNTLDR([]byte("x")),
			func(t *testing.T, img string) {
				patchFile(t, img, part+15*bootcode.SectorSize, make([]byte, bootcode.SectorSize))
			},
			"Boot code damaged"},
		{"volume outside the disk", withNTLDR([]byte("x")),
			func(t *testing.T, img string) { patchFile(t, img, part+0x1C, []byte{0, 0, 0, 0x70}) },
			"Disk error"},
		{"4096-byte sectors", withNTLDR([]byte("x")),
			func(t *testing.T, img string) { patchFile(t, img, part+0x0B, []byte{0, 0x10}) },
			"NTFS not supported"},
		{"root directory record not FILE", withNTLDR([]byte("x")),
			func(t *testing.T, img string) { patchFile(t, img, mftRecordOffset(t, img, 5), []byte("BAAD")) },
			"NTFS damaged"},
		{"torn root directory record", withNTLDR([]byte("x")),
			func(t *testing.T, img string) {
				patchFile(t, img, mftRecordOffset(t, img, 5)+1022, []byte{0xEE, 0xEE})
			},
			"NTFS damaged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := ntfsDisk{cylinders: 9, cluster: 4096, heads: 255, spt: 63, populate: tc.populate}.build(t)
			if tc.damage != nil {
				tc.damage(t, img)
			}
			serial, _ := bootcode.BootQEMU(t, img, "", tc.want)
			if !strings.Contains(serial, tc.want) {
				t.Fatalf("serial output lacks %q:\n%s", tc.want, serial)
			}
		})
	}
}

// TestInstallNTFSPeers installs the boot code into a volume mkntfs made and
// has ntfs-3g's ntfsfix and Sleuth Kit's fsstat read it: the BPB and the
// backup boot sector must still be what they expect.
func TestInstallNTFSPeers(t *testing.T) {
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
	fsstat := peertest.Need(t, "fsstat", "sleuthkit")
	vol := filepath.Join(t.TempDir(), "volume.img")
	if err := os.WriteFile(vol, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol, 32<<20); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, ntfsPeerTime, mkntfs, "-F", "-Q", "-q", "-p", "0", "-H", "255", "-S", "63", vol)
	before, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(vol, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := bootcode.InstallNTFS(f, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	want := bootcode.NTFS()
	copy(want[3:bootcode.NTFSCodeOffset], before[3:bootcode.NTFSCodeOffset])
	if !bytes.Equal(after[:bootcode.NTFSBootSize], want) {
		t.Fatal("$Boot is not the template with mkntfs's BPB")
	}
	last := len(after) - bootcode.SectorSize // mkntfs's backup boot sector
	if !bytes.Equal(after[last:], after[:bootcode.SectorSize]) {
		t.Fatal("the backup boot sector differs from the boot sector")
	}
	if !bytes.Equal(after[bootcode.NTFSBootSize:last], before[bootcode.NTFSBootSize:last]) {
		t.Fatal("InstallNTFS changed bytes outside $Boot and the backup boot sector")
	}
	out := string(peertest.Run(t, ntfsPeerTime, ntfsfix, "-n", vol))
	if !strings.Contains(out, "Checking the alternate boot sector... OK") {
		t.Fatalf("ntfsfix -n:\n%s", out)
	}
	if out := string(peertest.Run(t, ntfsPeerTime, fsstat, "-f", "ntfs", vol)); !strings.Contains(out, "File System Type: NTFS") {
		t.Fatalf("fsstat:\n%s", out)
	}
}

// TestNTFSBootClusterSizes boots volumes of every cluster size mkntfs
// makes with 512-byte sectors, from 512 bytes (an MFT record spans two
// clusters, an index block eight) to 64 KiB (128 sectors per cluster; a
// cluster holds 64 records and 16 index blocks), with a root index in INDX
// blocks and a 150,000-byte NTLDR.
func TestNTFSBootClusterSizes(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	ntldr, hash := standIn(t, 150000)
	for _, cluster := range []int{512, 1024, 2048, 4096, 8192, 16384, 32768, 65536} {
		t.Run(strconv.Itoa(cluster), func(t *testing.T) {
			populate := func(t *testing.T, fs *ntfs.FS) {
				for i := range 120 {
					put(t, fs, fmt.Sprintf("Document %03d.txt", i), []byte("filler"))
				}
				put(t, fs, "NTLDR", ntldr)
			}
			checkBoot(t, ntfsDisk{cylinders: 9, cluster: cluster, heads: 255, spt: 63, populate: populate}.build(t), "", hash)
		})
	}
}
