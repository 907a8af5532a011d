package bootcode

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// Disk layout of the FAT32 boot tests: XP's, one active type 0x0C partition
// from LBA 63 to the end of a cylinder of a 255-head, 63-sector geometry.
const (
	cylSectors = 255 * 63
	partStart  = 63
	peerTime   = 30 * time.Second
)

// fat32Disk describes a test disk.
type fat32Disk struct {
	cylinders int    // disk size in cylinders
	spc       int    // sectors per cluster for mkfs.fat
	label     string // volume label
	geometry  string // mkfs.fat -g HEADS/SECTORS, the BPB's CHS geometry
	// populate fills the file system through mtools; dir is a scratch
	// directory for host files.
	populate func(t *testing.T, m mtools, dir string)
}

// mtools runs mtools commands on the test volume.
type mtools struct {
	img  string // the disk image
	path string // directory holding mcopy, mdel, mmd (all from mtools)
}

func (m mtools) run(t *testing.T, cmd string, args ...string) {
	t.Helper()
	full := append([]string{"-i", fmt.Sprintf("%s@@%d", m.img, partStart*SectorSize)}, args...)
	peertest.Run(t, peerTime, filepath.Join(m.path, cmd), full...)
}

// build lays the disk out with sfdisk and mkfs.fat, fills it with mtools,
// and installs the MBR and FAT32 boot code with this package.
func (d fat32Disk) build(t *testing.T) string {
	t.Helper()
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	mcopy := peertest.Need(t, "mcopy", "mtools")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")

	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	diskSectors := d.cylinders * cylSectors
	if err := f.Truncate(int64(diskSectors) * SectorSize); err != nil {
		t.Fatal(err)
	}
	partSectors := diskSectors - partStart
	script := fmt.Sprintf("label: dos\nstart=%d, size=%d, type=c, bootable\n", partStart, partSectors)
	sf := filepath.Join(dir, "sfdisk.txt")
	if err := os.WriteFile(sf, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	runWithStdin(t, sf, sfdisk, "--no-reread", "--no-tell-kernel", "-q", img)
	peertest.Run(t, peerTime, mkfs, "-F", "32", "--offset", strconv.Itoa(partStart), "-h", strconv.Itoa(partStart),
		"-g", d.geometry, "-s", strconv.Itoa(d.spc), "-n", d.label, img, strconv.Itoa(partSectors/2))

	host := filepath.Join(dir, "files")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	d.populate(t, mtools{img: img, path: filepath.Dir(mcopy)}, host)

	mbr := make([]byte, SectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if err := InstallMBR(mbr); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if err := InstallFAT32(f, partStart*SectorSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// writeHost writes a file into the scratch directory and returns its path.
func writeHost(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// resetNextFree sets FSInfo's next-free-cluster hint to "unknown" so that
// mtools allocates from the start of the FAT again, filling the holes left
// by deleted files: that fragments the next file written.
func resetNextFree(t *testing.T, img string) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs := make([]byte, SectorSize)
	if _, err := f.ReadAt(bs, partStart*SectorSize); err != nil {
		t.Fatal(err)
	}
	fsinfo := int64(binary.LittleEndian.Uint16(bs[0x30:]))
	if _, err := f.WriteAt([]byte{0xFF, 0xFF, 0xFF, 0xFF}, (partStart+fsinfo)*SectorSize+0x1EC); err != nil {
		t.Fatal(err)
	}
}

// populateTricky lays out the root directory so that NTLDR is found only by
// code that follows the root directory's fragmented cluster chain and skips
// the volume label, long name and deleted entries before it, and so that
// NTLDR's own cluster chain is fragmented. ntldr nil leaves NTLDR out.
func populateTricky(ntldr []byte) func(t *testing.T, m mtools, dir string) {
	return func(t *testing.T, m mtools, dir string) {
		filler := make([]byte, 3000)
		var names []string
		for i := 1; i <= 40; i++ {
			names = append(names, writeHost(t, dir, fmt.Sprintf("Some long file name %02d.dat", i), filler))
		}
		m.run(t, "mcopy", append(names, "::")...)
		// Holes in the data area, and their directory slots taken again by
		// empty files so that NTLDR's entry goes after all of them.
		m.run(t, "mdel", "::Some long file name 05.dat", "::Some long file name 08.dat")
		var holders []string
		for _, n := range []string{"Placeholder number 05.dat", "Placeholder number 08.dat"} {
			holders = append(holders, writeHost(t, dir, n, nil))
		}
		m.run(t, "mcopy", append(holders, "::")...)
		if ntldr == nil {
			// A directory named NTLDR and a deleted NTLDR after it must
			// not count (mren renames in place, so the deleted entry
			// survives).
			m.run(t, "mmd", "::NTLDRDIR")
			m.run(t, "mcopy", writeHost(t, dir, "NTLDR", []byte("not me")), "::")
			m.run(t, "mdel", "::NTLDR")
			m.run(t, "mren", "::NTLDRDIR", "::NTLDR")
		} else {
			resetNextFree(t, m.img)
			m.run(t, "mcopy", writeHost(t, dir, "NTLDR", ntldr), "::")
		}
		m.run(t, "mdel", "::Placeholder number 05.dat", "::Placeholder number 08.dat", "::Some long file name 30.dat")
	}
}

// testNTLDR assembles testdata/ntldr.asm and pads it with pseudo-random
// bytes to size, storing the size at offset 4. It returns the file and the
// hash the program must print.
func testNTLDR(t *testing.T, size int) ([]byte, uint32) {
	t.Helper()
	nasm := peertest.Need(t, "nasm", "nasm")
	code := assemble(t, nasm, "testdata/ntldr.asm")
	if len(code) > size {
		t.Fatalf("test NTLDR code is %d bytes, more than %d", len(code), size)
	}
	file := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
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

// noExtROM assembles testdata/noext.asm and fixes its checksum byte.
func noExtROM(t *testing.T) string {
	t.Helper()
	nasm := peertest.Need(t, "nasm", "nasm")
	rom := assemble(t, nasm, "testdata/noext.asm")
	var sum byte
	for _, b := range rom[:len(rom)-1] {
		sum += b
	}
	rom[len(rom)-1] = -sum
	return writeHost(t, t.TempDir(), "noext.rom", rom)
}

// TestFAT32Boot boots MBR → FAT32 boot code → a 150,000-byte stand-in NTLDR
// that hashes its own image in memory, once with INT 13h extensions and once
// on a BIOS whose extensions an option ROM hides, so that every sector is
// read through the CHS path.
func TestFAT32Boot(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	const size = 150000 // 2000:0000..2000:0000+size spans three 64 KiB segments
	ntldr, hash := testNTLDR(t, size)

	tests := []struct {
		name  string
		disk  fat32Disk
		noExt bool
	}{
		// 17 cylinders, 2 KiB clusters: 67,986 clusters.
		{"LBA 4 sectors per cluster", fat32Disk{cylinders: 17, spc: 4, label: "XPBOOTTEST", geometry: "255/63"}, false},
		// 9 cylinders, 512-byte clusters: the root directory and NTLDR
		// span many clusters and FAT sectors. The CHS path computes
		// addresses from the BPB geometry, which must be the BIOS's: for
		// a disk this small (under 504 MiB) SeaBIOS keeps the 16-head
		// geometry QEMU's IDE disk reports, as INT 13h AH=08h shows, so
		// the BPB says 16/63 as a formatter running on that BIOS writes.
		{"CHS 1 sector per cluster", fat32Disk{cylinders: 9, spc: 1, label: "XPBOOTTEST", geometry: "16/63"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.disk.populate = populateTricky(ntldr)
			img := tc.disk.build(t)
			checkTrickyLayout(t, img, ntldr)
			// mkfs.fat wrote drive 0x80 into the BPB; clear it so that
			// BPBDL=80 proves the boot code stores the BIOS's DL there.
			patch(t, img, partStart*SectorSize+0x40, []byte{0})

			r := qemuRun{disk: img}
			if tc.noExt {
				r.optionROM = noExtROM(t)
			}
			res := boot(t, r)
			want := fmt.Sprintf("NTLDR-TEST DL=80 BPBDL=80 FS=FAT32    CS=2000 HASH=%08X ", hash)
			if !strings.Contains(res.serial, want) || !strings.Contains(res.serial, " END") {
				t.Fatalf("serial output lacks %q… END:\n%s", want, res.serial)
			}
			if res.exit != debugExitOK {
				t.Fatalf("QEMU exit status %d, want %d", res.exit, debugExitOK)
			}
			if tc.noExt {
				// AH=41h once from the MBR and once from the VBR, both
				// refused; the MBR's read, stage 2, directory, FAT and
				// every NTLDR sector through AH=02h.
				var ext, chs int
				if _, err := fmt.Sscanf(res.serial[strings.Index(res.serial, " EXT="):], " EXT=%X CHS=%X", &ext, &chs); err != nil {
					t.Fatalf("parse counters: %v\n%s", err, res.serial)
				}
				if ext != 2 || chs < size/SectorSize {
					t.Fatalf("extension calls %d (want 2), CHS reads %d (want at least %d)", ext, chs, size/SectorSize)
				}
				t.Logf("%d INT 13h AH=02h reads, %d refused extension calls", chs, ext)
			}
		})
	}
}

// TestFAT32BootErrors boots volumes the FAT32 boot code must refuse and
// checks its messages.
func TestFAT32BootErrors(t *testing.T) {
	peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	const limit = 0x9F000 - 0x20000 // the most NTLDR bytes below 0x9F000
	plain := func(ntldr []byte) func(t *testing.T, m mtools, dir string) {
		return func(t *testing.T, m mtools, dir string) {
			m.run(t, "mcopy", writeHost(t, dir, "NTLDR", ntldr), "::")
		}
	}
	tests := []struct {
		name     string
		label    string
		populate func(t *testing.T, m mtools, dir string)
		damage   func(t *testing.T, img string) // after the install
		want     string
	}{
		// The label, a deleted NTLDR and a directory NTLDR must not count.
		{"only label, deleted and directory NTLDR", "NTLDR", populateTricky(nil), checkMissingLayout, "NTLDR is missing"},
		{"NTLDR larger than 0x7F000", "XPBOOTTEST", plain(make([]byte, limit+1)), nil, "NTLDR is too big"},
		{"chain longer than its size says", "XPBOOTTEST", plain(make([]byte, limit+SectorSize)),
			func(t *testing.T, img string) { setNTLDRSize(t, img, 1000) }, "NTLDR is too big"},
		{"second stage overwritten", "XPBOOTTEST", plain([]byte("x")),
			func(t *testing.T, img string) {
				patch(t, img, (partStart+FAT32Stage2Sector)*SectorSize, make([]byte, SectorSize))
			},
			"Boot sector 12 damaged"},
		{"volume outside the disk", "XPBOOTTEST", plain([]byte("x")),
			func(t *testing.T, img string) { patch(t, img, partStart*SectorSize+bpbHidden, []byte{0, 0, 0, 0x70}) },
			"Disk error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := fat32Disk{cylinders: 9, spc: 1, label: tc.label, geometry: "255/63", populate: tc.populate}.build(t)
			if tc.damage != nil {
				tc.damage(t, img)
			}
			res := boot(t, qemuRun{disk: img, until: tc.want})
			if !strings.Contains(res.serial, tc.want) {
				t.Fatalf("serial output lacks %q:\n%s", tc.want, res.serial)
			}
		})
	}
}

// patch writes b at byte off of the image.
func patch(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// runWithStdin runs a peer with the file in as its standard input (sfdisk
// reads its script there), bounded by peerTime.
func runWithStdin(t *testing.T, in, name string, args ...string) {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), peerTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = f
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
}
