package setup

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/bootcode"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

const ntfsPeerTime = 2 * time.Minute

// newMkntfsImage returns a 64 MiB disk (8 cylinders of 255 × 63) whose one
// partition, type 0x07 from LBA 63, not active, mkntfs formatted; sector 0
// has no boot code, so the stage must install xpboot's MBR and NTFS code.
func newMkntfsImage(t testing.TB) string {
	t.Helper()
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	const cyl = 255 * 63
	diskSectors := 8 * cyl
	partSectors := diskSectors - 63
	dir := t.TempDir()
	vol := filepath.Join(dir, "volume.img")
	if err := os.WriteFile(vol, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(vol, int64(partSectors)*512); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, ntfsPeerTime, mkntfs, "-F", "-Q", "-q", "-s", "512", "-p", "63", "-H", "255", "-S", "63",
		"-c", "4096", "-L", "XPSETUP", vol)
	v, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(diskSectors) * 512); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(v, 63*512); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	binary.LittleEndian.PutUint32(mbr[440:], 0x12345678)
	e := mbr[446:462]
	copy(e[1:4], []byte{1, 1, 0}) // CHS of LBA 63: head 1, sector 1
	e[4] = 0x07
	copy(e[5:8], []byte{254, 63 | 7>>8<<6, 7}) // cylinder 7, head 254, sector 63
	binary.LittleEndian.PutUint32(e[8:], 63)
	binary.LittleEndian.PutUint32(e[12:], uint32(partSectors))
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// newCreatedNTFSImage is `xpboot image create --fs ntfs`'s disk.
func newCreatedNTFSImage(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if _, err := imagefs.Create(p, imagefs.CreateOptions{Size: 64 << 20, FS: "ntfs", DiskSignature: 0x12345678}); err != nil {
		t.Fatal(err)
	}
	return p
}

// partitionFile copies the first partition of the image to a file of its
// own for ntfs-3g's tools, which have no offset option, and returns it
// with the partition's byte offset.
func partitionFile(t testing.TB, img string) (string, int64) {
	t.Helper()
	h, err := imagefs.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := h.Partitions()[0]
	out := filepath.Join(t.TempDir(), "part1.img")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(h.Dev, p.Offset, p.Size)); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out, p.Offset
}

// ntfsfixClean runs ntfsfix -n on the volume file and fails on anything
// but a clean report.
func ntfsfixClean(t testing.TB, vol string) {
	t.Helper()
	bin := peertest.Need(t, "ntfsfix", "ntfs-3g")
	out, err := peertest.Try(t, ntfsPeerTime, bin, "-n", vol)
	s := string(out)
	if err != nil || !strings.Contains(s, "Checking the alternate boot sector... OK") || strings.Contains(s, "FAILED") ||
		strings.Contains(s, "corrupt") || !strings.Contains(s, "NTFS volume version is 3.1") {
		t.Fatalf("ntfsfix -n %s: %v\n%s", vol, err, s)
	}
}

// TestStageNTFS stages into NTFS volumes made by mkntfs and by image
// create --fs ntfs: the staged tree is checked file by file, ntfsfix -n
// finds the volume clean, ntfs-3g reads back BOOTSECT.DAT, which is the
// volume's boot sector (same BPB) with xpboot's setup-loader first stage,
// and QEMU boots the chain MBR → xpboot's NTFS boot code → stand-in NTLDR
// → BOOTSECT.DAT → stand-in $LDR$, whose marker appears on COM1. The
// stand-in NTLDR (testdata/ntldr.asm with FILE_LBA) loads BOOTSECT.DAT
// from disk sector 1, where the test puts the bytes ntfscat read from the
// staged file: finding a file by path is NTLDR's work, the boot sector it
// loads is xpboot's.
func TestStageNTFS(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	ntfscat := peertest.Need(t, "ntfscat", "ntfs-3g")
	media := writeMedia(t, standIns(t, nasm, "-DFILE_LBA=1"))
	for _, tc := range []struct {
		name    string
		make    func(testing.TB) string
		install bool // the stage installs xpboot's boot code
	}{
		{"mkntfs", newMkntfsImage, true},
		{"image create", newCreatedNTFSImage, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.make(t)
			res, err := Stage(media, img, Options{})
			if err != nil {
				t.Fatal(err)
			}
			notes := strings.Join(res.Plan.BootCode, "\n")
			if got := strings.Contains(notes, "install xpboot's NTFS boot code in partition 1"); got != tc.install {
				t.Errorf("boot code notes %q: NTFS install %v, want %v", notes, got, tc.install)
			}
			var dat []byte
			for _, it := range res.Plan.Items {
				if it.Path == BootDir+"/"+BootSectFile {
					dat = it.data
					if !strings.Contains(it.Why, "NTFS boot sector") {
						t.Errorf("BOOTSECT.DAT why: %q", it.Why)
					}
				}
			}
			snap := snapshotImage(t, img)
			checkStage(t, snap, media)

			vol, off := partitionFile(t, img)
			ntfsfixClean(t, vol)
			got := peertest.Run(t, ntfsPeerTime, ntfscat, vol, "/"+BootDir+"/"+BootSectFile)
			if !bytes.Equal(got, dat) || len(got) != 512 {
				t.Fatalf("ntfscat reads %d bytes of BOOTSECT.DAT that differ from the %d staged", len(got), len(dat))
			}
			v, err := os.ReadFile(vol)
			if err != nil {
				t.Fatal(err)
			}
			boot := v[:bootcode.NTFSBootSize]
			if !bootcode.HasNTFSCode(boot) {
				t.Fatal("the volume lacks xpboot's NTFS boot code after the stage")
			}
			if !bytes.Equal(v[len(v)-512:], boot[:512]) && !bytes.Equal(v[len(v)-512:], make([]byte, 512)) {
				// mkntfs's backup boot sector is the last sector of the
				// partition; it must follow the primary.
				backup := v[len(v)-512:]
				if bytes.Equal(backup[3:bootcode.NTFSCodeOffset], boot[3:bootcode.NTFSCodeOffset]) {
					t.Fatal("the backup boot sector was not updated with the boot code")
				}
			}
			want, err := bootcode.NTFSSetupLoaderSector(boot, off)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dat, want) || !bytes.Equal(dat[3:bootcode.NTFSCodeOffset], boot[3:bootcode.NTFSCodeOffset]) {
				t.Fatal("BOOTSECT.DAT is not the volume's boot sector with the setup-loader stage")
			}
			h, err := imagefs.Open(img, false)
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := h.MBR.Active(); a != 0 || !bootcode.HasMBRCode(mustSector(t, h, 0)) {
				t.Errorf("partition 1 active: %v; xpboot's MBR code: %v", a == 0, bootcode.HasMBRCode(mustSector(t, h, 0)))
			}
			h.Close()

			// Disk sector 1 (the gap before the partition) gets the file
			// for the stand-in NTLDR.
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteAt(got, 512)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			out := runQEMU(t, qemu, img, "LDR-MARKER DL=80")
			for _, want := range []string{"STANDIN-NTLDR", "BOOTSECT.DAT LOADED", "LDR-MARKER DL=80"} {
				if !strings.Contains(out, want) {
					t.Fatalf("serial lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func mustSector(t testing.TB, h *imagefs.Image, n int64) []byte {
	t.Helper()
	b := make([]byte, 512)
	if _, err := h.Dev.ReadAt(b, n*512); err != nil {
		t.Fatal(err)
	}
	return b
}

// usedBytes returns the bytes of the disk outside the NTFS partition's
// free clusters: everything a reader of the disk can reach.
func usedBytes(t testing.TB, img string) []byte {
	t.Helper()
	h, err := imagefs.Open(img, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	p := h.Partitions()[0]
	alloc, err := ntfs.AllocatedRanges(h.Dev, p.Offset, p.Size)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	add := func(off, n int64) {
		b := make([]byte, n)
		if _, err := h.Dev.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		out.WriteString(strconv.FormatInt(off, 16) + ":")
		out.Write(b)
	}
	add(0, p.Offset)
	for _, r := range alloc.Ranges {
		add(p.Offset+r.Off, r.Len)
	}
	return out.Bytes()
}

// TestFailedStageLeavesNTFS: a stage whose integration fails after every
// file was written leaves an NTFS volume as it was, also when it replaced
// an old stage (--force), which frees the old files' clusters and lets the
// new files reuse them: the MBR area, $Boot and every cluster in use are
// byte-identical, the files are the same and ntfsfix -n finds the volume
// clean.
func TestFailedStageLeavesNTFS(t *testing.T) {
	media := writeMedia(t, nil)
	nic := filepath.Join(t.TempDir(), "e1000")
	integratetest.NICPackage(t, nic, integratetest.I386)
	failing := func(force bool) Options {
		return Options{Force: force, Integrate: &IntegrateRequest{Drivers: []string{nic}, Devices: []string{`PCI\VEN_1234&DEV_0001`}}}
	}
	for _, force := range []bool{false, true} {
		t.Run("force="+strconv.FormatBool(force), func(t *testing.T) {
			img := newCreatedNTFSImage(t)
			if force {
				if _, err := Stage(media, img, Options{}); err != nil {
					t.Fatal(err)
				}
			}
			used, snap := usedBytes(t, img), snapshotImage(t, img)
			_, err := Stage(media, img, failing(force))
			if err == nil || !strings.Contains(err.Error(), "matches no device") {
				t.Fatalf("err = %v", err)
			}
			if !bytes.Equal(used, usedBytes(t, img)) {
				t.Fatal("a failed stage changed bytes in use")
			}
			integratetest.SameSnapshot(t, snap, snapshotImage(t, img))
			vol, _ := partitionFile(t, img)
			ntfsfixClean(t, vol)
		})
	}
}
