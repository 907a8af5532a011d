package setup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

var testTime = time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC)

// writeMedia writes XP Professional SP2-shaped media (integratetest's
// setup files) with the loaders, the boot files dosnet.inf and
// txtsetup.sif name, a setupp.ini and extra payload, and returns its root.
func writeMedia(t testing.TB, extra map[string][]byte) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cd")
	integratetest.WriteXPMedia(t, root)
	w := func(name string, data []byte) { integratetest.WriteFile(t, root, name, data) }
	w("I386/NTLDR", integratetest.FakePE(integratetest.I386, "stand-in NTLDR"))
	w("I386/NTDETECT.COM", []byte("stand-in NTDETECT"))
	w("I386/SETUPLDR.BIN", []byte("stand-in SETUPLDR"))
	w("I386/NTKRNLMP.EX_", integratetest.Cabinet(t, "ntkrnlmp.exe", integratetest.FakePE(integratetest.I386, "mp kernel")))
	w("I386/SETUPP.INI", []byte(integratetest.CRLF("[Pid]\nExtraData=786F687170637175716954806365EF\nPid=76487OEM\n")))
	w("I386/LANG/README.TXT", []byte("lang"))
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 40; i++ {
		b := make([]byte, rng.IntN(20000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		w(fmt.Sprintf("I386/FILE%02d.DL_", i), b)
	}
	w("I386/SYSTEM32/SMSS.EXE", []byte("smss"))
	w("SUPPORT/TOOLS/README.TXT", []byte("not staged"))
	for name, data := range extra {
		w(name, data)
	}
	return root
}

func newImage(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if _, err := imagefs.Create(p, imagefs.CreateOptions{Size: size, FS: "fat32", DiskSignature: 0x12345678}); err != nil {
		t.Fatal(err)
	}
	return p
}

func sum(t testing.TB, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// snapshotImage returns every file of the image's active partition.
func snapshotImage(t testing.TB, p string) map[string]string {
	t.Helper()
	img, err := imagefs.Open(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Dev.Close()
	fsys, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	return integratetest.SnapshotFS(t, fsys, "/")
}

func lower(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// checkStage checks a staged tree (snapshot of the partition) against the
// media: loaders at the root, ~BT per dosnet.inf and txtsetup.sif, ~LS a
// byte-identical copy of I386, and the generated files.
func checkStage(t *testing.T, snap map[string]string, media string) {
	t.Helper()
	s := lower(snap)
	src := integratetest.Snapshot(t, media)
	get := func(rel string) string {
		v, ok := src[rel]
		if !ok {
			t.Fatalf("media lacks %s", rel)
		}
		return v
	}
	for dst, from := range map[string]string{
		"ntldr": "I386/NTLDR", "ntdetect.com": "I386/NTDETECT.COM", "$ldr$": "I386/SETUPLDR.BIN",
		"txtsetup.sif": "I386/TXTSETUP.SIF", "$win_nt$.~bt/txtsetup.sif": "I386/TXTSETUP.SIF",
		"$win_nt$.~bt/setupreg.hiv": "I386/SETUPREG.HIV",
		// dosnet.inf [FloppyFiles.0] d1,ntdetect.com and [FloppyFiles.1]
		// d1,ntkrnlmp.ex_ (listed compressed, kept compressed).
		"$win_nt$.~bt/ntdetect.com": "I386/NTDETECT.COM", "$win_nt$.~bt/ntkrnlmp.ex_": "I386/NTKRNLMP.EX_",
	} {
		if got, ok := s[dst]; !ok {
			t.Errorf("%s missing", dst)
		} else if got != get(from) {
			t.Errorf("%s differs from %s", dst, from)
		}
	}
	// ~LS\I386 is the whole I386, byte for byte, and nothing else.
	n := 0
	for rel, v := range src {
		if !strings.HasPrefix(rel, "I386/") && rel != "I386" {
			if _, ok := s["$win_nt$.~ls/"+strings.ToLower(rel)]; ok {
				t.Errorf("%s outside I386 was staged", rel)
			}
			continue
		}
		got, ok := s["$win_nt$.~ls/"+strings.ToLower(rel)]
		switch {
		case !ok:
			t.Errorf("~LS lacks %s", rel)
		case got != v:
			t.Errorf("~LS/%s differs from the media", rel)
		}
		n++
	}
	if n < 50 {
		t.Fatalf("only %d entries compared", n)
	}
	ini := s["boot.ini"]
	if !strings.Contains(ini, "default=C:\\$WIN_NT$.~BT\\BOOTSECT.DAT\r\n") ||
		!strings.Contains(ini, "C:\\$WIN_NT$.~BT\\BOOTSECT.DAT=\"Microsoft Windows XP Professional Setup\"\r\n") {
		t.Errorf("BOOT.INI:\n%s", ini)
	}
	x, err := integrate.ParseText("WINNT.SIF", []byte(s["$win_nt$.~bt/winnt.sif"]), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"MsDosInitiated": `"1"`, "floppyless": `"1"`} {
		if v, _ := x.Value("Data", k); v != want {
			t.Errorf("WINNT.SIF [Data] %s = %q, want %s", k, v, want)
		}
	}
	if _, ok := s["$win_nt$.~bt/migrate.inf"]; ok {
		t.Error("MIGRATE.INF staged without --migrate-inf")
	}
}

func TestStageIntoImage(t *testing.T) {
	media := writeMedia(t, nil)
	img := newImage(t, 64<<20)
	res, err := Stage(media, img, Options{Now: testTime})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Plan.Media
	if m.OS != "XP" || m.Arch != "x86" || m.ServicePack != 2 || m.Edition != "Professional" || m.Channel != "oem" {
		t.Errorf("media %+v", m)
	}
	snap := snapshotImage(t, img)
	checkStage(t, snap, media)
	integratetest.FsckImage(t, img)

	// BOOTSECT.DAT: the volume's BPB, xpboot's code, loading $LDR$.
	dat := []byte(lower(snap)["$win_nt$.~bt/bootsect.dat"])
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vbr := make([]byte, 512)
	if _, err := f.ReadAt(vbr, 63*512); err != nil {
		t.Fatal(err)
	}
	if len(dat) != 512 || !bytes.Equal(dat[3:0x5A], vbr[3:0x5A]) || dat[510] != 0x55 || dat[511] != 0xAA {
		t.Fatalf("BOOTSECT.DAT (%d bytes) does not carry the volume's BPB", len(dat))
	}
	if !bytes.Contains(dat, []byte("$LDR$      ")) {
		t.Error("BOOTSECT.DAT does not name $LDR$")
	}

	// Again: refused without --force, the image untouched.
	before := sum(t, img)
	_, err = Stage(media, img, Options{})
	if !errors.Is(err, ErrStaged) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("re-stage: %v", err)
	}
	if sum(t, img) != before {
		t.Fatal("a refused stage changed the image")
	}
	// With --force: the same tree.
	if _, err := Stage(media, img, Options{Force: true, Now: testTime}); err != nil {
		t.Fatal(err)
	}
	checkStage(t, snapshotImage(t, img), media)
	integratetest.FsckImage(t, img)
}

// TestStageFromISO stages from a CD image made by xorriso (Joliet names,
// as Microsoft's CDs have) and from the same CD image inside a disk image.
func TestStageFromISO(t *testing.T) {
	xorriso := peertest.Need(t, "xorriso", "xorriso")
	media := writeMedia(t, nil)
	cd := filepath.Join(t.TempDir(), "xp.iso")
	peertest.Run(t, 2*time.Minute, xorriso, "-as", "mkisofs", "-N", "-D", "-J", "-joliet-long", "-relaxed-filenames", "-V", "WXPFPP_EN", "-o", cd, media)

	img := newImage(t, 64<<20)
	if _, err := Stage(cd, img, Options{}); err != nil {
		t.Fatal(err)
	}
	checkStage(t, snapshotImage(t, img), media)

	// The CD image inside another image.
	holder := newImage(t, 64<<20)
	h, err := imagefs.Open(holder, true)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := h.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cd)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("/media/xp.iso", bytes.NewReader(b), int64(len(b)), testTime); err == nil {
		t.Fatal("wrote into a missing directory")
	}
	if err := fsys.MkdirAll("/media", testTime); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("/media/xp.iso", bytes.NewReader(b), int64(len(b)), testTime); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := Stage(holder+":/media/xp.iso", dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.Media.OS != "XP" {
		t.Errorf("media %+v", res.Plan.Media)
	}
	snap := integratetest.Snapshot(t, dir)
	delete(snap, ".")
	checkStage(t, snap, media)
}

// TestDryRun plans and checks but writes nothing.
func TestDryRun(t *testing.T) {
	media := writeMedia(t, nil)
	img := newImage(t, 64<<20)
	before := sum(t, img)
	res, err := Stage(media, img, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Items) < 50 || res.Plan.Needed <= res.Plan.Bytes {
		t.Errorf("plan: %d items, %d bytes, %d needed", len(res.Plan.Items), res.Plan.Bytes, res.Plan.Needed)
	}
	if sum(t, img) != before {
		t.Fatal("a dry run changed the image")
	}
	dir := t.TempDir()
	if _, err := Stage(media, dir, Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a dry run wrote %v", ents)
	}
}

// TestRoom refuses a stage that does not fit, with the numbers, before
// writing anything: txtsetup.sif reserves 64.5 MB on a 64 MiB disk.
func TestRoom(t *testing.T) {
	media := writeMedia(t, nil)
	sif := filepath.Join(media, "I386", "TXTSETUP.SIF")
	b, err := os.ReadFile(sif)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("[SetupData]\r\n"), []byte("[DiskSpaceRequirements]\r\nWinDirSpace = 63000\r\n\r\n[SetupData]\r\n"), 1)
	if err := os.WriteFile(sif, b, 0o644); err != nil {
		t.Fatal(err)
	}
	img := newImage(t, 64<<20)
	before := sum(t, img)
	_, err = Stage(media, img, Options{})
	if err == nil || !strings.Contains(err.Error(), "not enough room") || !strings.Contains(err.Error(), "WinDirSpace 64,512,000") {
		t.Fatalf("err = %v", err)
	}
	if sum(t, img) != before {
		t.Fatal("a refused stage changed the image")
	}
	// A larger disk takes it.
	if _, err := Stage(media, newImage(t, 128<<20), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestAnswers(t *testing.T) {
	media := writeMedia(t, nil)
	tests := []struct {
		name    string
		opts    Options
		want    map[string]string // "Section/Key" -> value
		wantErr string
	}{
		{"flags", Options{Answers: Answers{ProductKey: "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", ComputerName: "XPBOOT1", FullName: "Test User",
			Org: "xpboot", AdminPassword: "secret", TimeZone: "85"}, ConvertNTFS: true},
			map[string]string{"UserData/ProductKey": `"AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"`, "UserData/ComputerName": `"XPBOOT1"`,
				"UserData/FullName": `"Test User"`, "UserData/OrgName": `"xpboot"`, "GuiUnattended/AdminPassword": `"secret"`,
				"GuiUnattended/TimeZone": "85", "Unattended/FileSystem": "ConvertNTFS"}, ""},
		{"unattended missing keys", Options{Unattended: true, Answers: Answers{FullName: "x"}}, nil,
			"[UserData] ComputerName (--computer-name), [UserData] ProductKey (--product-key)"},
		{"answer file supplies them, flags win", Options{Unattended: true, Answers: Answers{FullName: "Flag Name"},
			AnswerFile: []byte("[UserData]\r\nFullName=\"File Name\"\r\nComputerName=\"FROMFILE\"\r\nProductKey=\"K\"\r\n[Data]\r\nMsDosInitiated=0\r\n"), AnswerFileName: "unattend.txt"},
			map[string]string{"UserData/FullName": `"Flag Name"`, "UserData/ComputerName": `"FROMFILE"`, "Data/MsDosInitiated": `"1"`,
				"Data/UnattendedInstall": `"Yes"`, "Unattended/UnattendMode": "FullUnattended"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Stage(media, dir, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("a refused stage left %v", ents)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, BootDir, "WINNT.SIF"))
			if err != nil {
				t.Fatal(err)
			}
			x, err := integrate.ParseText("WINNT.SIF", b, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				sec, key, _ := strings.Cut(k, "/")
				if v, _ := x.Value(sec, key); v != want {
					t.Errorf("[%s] %s = %q, want %s\n%s", sec, key, v, want, b)
				}
			}
		})
	}
}

func TestOEMAndMigrate(t *testing.T) {
	media := writeMedia(t, nil)
	oem := t.TempDir()
	integratetest.WriteFile(t, oem, "$$/System32/oem.txt", []byte("oem"))
	img := newImage(t, 64<<20)
	if _, err := Stage(media, img, Options{OEMDir: oem, MigrateINF: true}); err != nil {
		t.Fatal(err)
	}
	s := lower(snapshotImage(t, img))
	if s["$win_nt$.~ls/$oem$/$$/system32/oem.txt"] != "oem" {
		t.Error("$OEM$ not staged")
	}
	if !strings.Contains(s["$win_nt$.~bt/winnt.sif"], "OemPreinstall = Yes") && !strings.Contains(s["$win_nt$.~bt/winnt.sif"], "OemPreinstall=Yes") {
		t.Errorf("WINNT.SIF:\n%s", s["$win_nt$.~bt/winnt.sif"])
	}
	// Disk signature 12345678 and byte offset 63*512 = 0x7e00, little-endian.
	if !strings.Contains(s["$win_nt$.~bt/migrate.inf"], `"\DosDevices\C:",0x00030001,78,56,34,12,00,7e,00,00,00,00,00,00`) {
		t.Errorf("MIGRATE.INF:\n%s", s["$win_nt$.~bt/migrate.inf"])
	}
}

// TestRefusals: media and targets staging cannot use.
func TestRefusals(t *testing.T) {
	media := writeMedia(t, nil)
	noLoader := writeMedia(t, nil)
	os.Remove(filepath.Join(noLoader, "I386", "SETUPLDR.BIN"))
	noFloppy := writeMedia(t, nil)
	os.Remove(filepath.Join(noFloppy, "I386", "NTKRNLMP.EX_"))
	notISO := filepath.Join(t.TempDir(), "x.iso")
	os.WriteFile(notISO, make([]byte, 100000), 0o644)
	// A volume that says NTFS but is FAT32 inside.
	ntfs := newImage(t, 64<<20)
	f, _ := os.OpenFile(ntfs, os.O_RDWR, 0)
	f.WriteAt([]byte("NTFS    "), 63*512+3)
	f.Close()
	tests := []struct {
		name, src, dst, want string
	}{
		{"no setupldr", noLoader, "", "lacks SETUPLDR.BIN"},
		{"dosnet file missing", noFloppy, "", "[FloppyFiles.1] ntkrnlmp.ex_"},
		{"not an ISO", notISO, "", "neither a directory nor an ISO 9660 image"},
		{"damaged NTFS target", media, ntfs, "ntfs: volume byte 0x28"},
		{"subdirectory of an image", media, "IMG:/sub", "at the root of a partition"},
		{"staged tree as source", "", "", "already a staged tree"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := tc.dst
			if dst == "" {
				dst = t.TempDir()
			}
			if dst == "IMG:/sub" {
				dst = newImage(t, 64<<20) + ":/sub"
			}
			src := tc.src
			if src == "" {
				src = t.TempDir()
				if _, err := Stage(media, src, Options{}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Stage(src, dst, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestIntegrateSameAsAfterwards: integration in the stage run gives the
// same files as staging, then integrating with package integrate the way
// `xpboot integrate --target IMG` does.
func TestIntegrateSameAsAfterwards(t *testing.T) {
	media := writeMedia(t, nil)
	nic := filepath.Join(t.TempDir(), "e1000")
	integratetest.NICPackage(t, nic, integratetest.I386)
	req := func() *IntegrateRequest {
		return &IntegrateRequest{Drivers: []string{nic}, Options: integrate.Options{DHCP: true}}
	}

	a := newImage(t, 64<<20)
	res, err := Stage(media, a, Options{Integrate: req()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Integration == nil || res.Integration.Changed == 0 {
		t.Fatalf("integration result %+v", res.Integration)
	}

	b := newImage(t, 64<<20)
	if _, err := Stage(media, b, Options{}); err != nil {
		t.Fatal(err)
	}
	fsys, err := integrate.OpenImage(b, 0, "/", true)
	if err != nil {
		t.Fatal(err)
	}
	r := req()
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.run(fsys); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	sa := integratetest.NormalizeHives(t, snapshotImage(t, a))
	sb := integratetest.NormalizeHives(t, snapshotImage(t, b))
	// Each volume has its own serial number in its BPB.
	delete(sa, "$WIN_NT$.~BT/BOOTSECT.DAT")
	delete(sb, "$WIN_NT$.~BT/BOOTSECT.DAT")
	integratetest.SameSnapshot(t, sb, sa)
	integratetest.FsckImage(t, a)
}

// metadata returns the partition's reserved sectors and FATs: with the
// directories (compared through a snapshot) they are the file system.
func metadata(t testing.TB, img string) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 63*512); err != nil {
		t.Fatal(err)
	}
	reserved := int64(bs[0x0E]) | int64(bs[0x0F])<<8
	fatSize := int64(bs[0x24]) | int64(bs[0x25])<<8 | int64(bs[0x26])<<16 | int64(bs[0x27])<<24
	b := make([]byte, (reserved+int64(bs[0x10])*fatSize)*512)
	if _, err := f.ReadAt(b, 63*512); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	return append(mbr, b...)
}

// TestFailedStageLeavesImage: an integration that fails after every
// staged file was written leaves the file system as it was: the MBR, the
// reserved sectors, both FATs and every directory and file are unchanged
// (the data went to clusters the FAT still calls free).
func TestFailedStageLeavesImage(t *testing.T) {
	media := writeMedia(t, nil)
	nic := filepath.Join(t.TempDir(), "e1000")
	integratetest.NICPackage(t, nic, integratetest.I386)
	img := newImage(t, 64<<20)
	meta, snap := metadata(t, img), snapshotImage(t, img)
	_, err := Stage(media, img, Options{Integrate: &IntegrateRequest{Drivers: []string{nic}, Devices: []string{`PCI\VEN_1234&DEV_0001`}}})
	if err == nil || !strings.Contains(err.Error(), "matches no device") {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Equal(meta, metadata(t, img)) {
		t.Fatal("a failed stage changed the MBR, reserved sectors or FATs")
	}
	integratetest.SameSnapshot(t, snap, snapshotImage(t, img))
	integratetest.FsckImage(t, img)
	dir := t.TempDir()
	_, err = Stage(media, dir, Options{Integrate: &IntegrateRequest{Drivers: []string{nic}, Devices: []string{`PCI\VEN_1234&DEV_0001`}}})
	if err == nil {
		t.Fatal("no error")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a failed stage left %v", ents)
	}
}

// TestStagedBootChain boots a staged image in QEMU through the whole
// chain: xpboot's MBR, its FAT32 boot code loading NTLDR, a stand-in NTLDR
// (testdata/ntldr.asm) that does what NTLDR does for BOOT.INI's default
// entry C:\$WIN_NT$.~BT\BOOTSECT.DAT (load the file to 0:7C00, jump with
// DL set), BOOTSECT.DAT loading $LDR$, and a stand-in setup loader
// (testdata/marker.asm) that prints its marker and the drive it got.
func TestStagedBootChain(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	media := writeMedia(t, standIns(t, nasm))
	img := newImage(t, 64<<20)
	if _, err := Stage(media, img, Options{}); err != nil {
		t.Fatal(err)
	}
	out := runQEMU(t, qemu, img, "LDR-MARKER DL=80")
	for _, want := range []string{"STANDIN-NTLDR", "BOOTSECT.DAT LOADED", "LDR-MARKER DL=80"} {
		if !strings.Contains(out, want) {
			t.Fatalf("serial lacks %q:\n%s", want, out)
		}
	}

	// Staged into a directory, copied in with imagefs.Put (xpboot image
	// put), BOOTSECT.DAT written by WriteBootSect (xpboot setup bootsect).
	t.Run("directory, then bootsect", func(t *testing.T) {
		dir := t.TempDir()
		res, err := Stage(media, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(res.Plan.Warnings, "\n"), "setup bootsect") {
			t.Errorf("no BOOTSECT.DAT warning: %v", res.Plan.Warnings)
		}
		img := newImage(t, 64<<20)
		if _, err := WriteBootSect(img, 0); err == nil || !strings.Contains(err.Error(), "stage first") {
			t.Fatalf("bootsect before staging: %v", err)
		}
		h, err := imagefs.Open(img, true)
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := h.FS(0)
		if err != nil {
			t.Fatal(err)
		}
		ents, _ := os.ReadDir(dir)
		var srcs []string
		for _, e := range ents {
			srcs = append(srcs, filepath.Join(dir, e.Name()))
		}
		if _, err := imagefs.Put(fsys, srcs, "/", nil); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := WriteBootSect(img, 0); err != nil {
			t.Fatal(err)
		}
		out := runQEMU(t, qemu, img, "LDR-MARKER DL=80")
		if !strings.Contains(out, "BOOTSECT.DAT LOADED") || !strings.Contains(out, "LDR-MARKER DL=80") {
			t.Fatalf("serial:\n%s", out)
		}
	})
}

// standIns assembles the stand-in NTLDR (with nasm options ntldrDefs)
// and setup loader as media files.
func standIns(t testing.TB, nasm string, ntldrDefs ...string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	out := map[string][]byte{}
	for file, args := range map[string][]string{
		"I386/NTLDR":        append(ntldrDefs, "testdata/ntldr.asm"),
		"I386/SETUPLDR.BIN": {"-DMARKER='LDR-MARKER'", "testdata/marker.asm"},
	} {
		bin := filepath.Join(dir, filepath.Base(file))
		peertest.Run(t, time.Minute, nasm, append([]string{"-f", "bin", "-o", bin}, args...)...)
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		out[file] = b
	}
	return out
}

// runQEMU boots the raw disk and returns COM1 output once it holds until.
func runQEMU(t *testing.T, qemu, disk, until string) string {
	t.Helper()
	return qemuBoot(t, qemu, []string{"-drive", "file=" + strings.ReplaceAll(disk, ",", ",,") + ",format=raw,if=ide", "-boot", "c"}, until, 90*time.Second)
}

// TestCancelled: a stage cancelled while writing leaves the file system
// as it was.
func TestCancelled(t *testing.T) {
	media := writeMedia(t, nil)
	img := newImage(t, 64<<20)
	meta, snap := metadata(t, img), snapshotImage(t, img)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Stage(media, img, Options{Context: ctx, Progress: func(done, total int64) {
		if n++; n == 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Equal(meta, metadata(t, img)) {
		t.Fatal("a cancelled stage changed the MBR, reserved sectors or FATs")
	}
	integratetest.SameSnapshot(t, snap, snapshotImage(t, img))
}
