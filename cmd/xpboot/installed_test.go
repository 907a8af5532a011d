package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/integrate/installed/installedtest"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// installedWork writes the installed-XP tree and the three driver
// packages under a temporary directory.
func installedWork(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	installedtest.WriteXP(t, filepath.Join(dir, "tree"))
	integratetest.NICPackage(t, filepath.Join(dir, "nic"), integratetest.I386)
	integratetest.RootPackage(t, filepath.Join(dir, "sbc"))
	if err := os.CopyFS(filepath.Join(dir, "iscsi"), os.DirFS("../../drivers/testdata/iscsi")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func installedArgs(target string) []string {
	return []string{"integrate", "--installed", "--target", target, "--driver", "nic", "--driver", "iscsi", "--driver", "sbc",
		"--device", installedtest.NICID, "--mergeide"}
}

type bootJSON struct {
	Kind     string                                  `json:"kind"`
	Drivers  []struct{ Service string }              `json:"drivers"`
	Findings []struct{ Code, Where, Message string } `json:"findings"`
}

func checkBoot(t *testing.T, dir, target string, wantCode int) bootJSON {
	t.Helper()
	r := xpboot(t, dir, "check", "boot", "--json", "--device", installedtest.NICID, target)
	var out bootJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("check boot --json: %v\n%+v", err, r)
	}
	if r.code != wantCode {
		t.Errorf("check boot %s: exit %d, want %d; findings %+v", target, r.code, wantCode, out.Findings)
	}
	return out
}

func TestCheckBootUsage(t *testing.T) {
	dir := installedWork(t)
	if r := xpboot(t, dir, "check", "boot"); r.code != 2 {
		t.Errorf("no argument: %+v", r)
	}
	if r := xpboot(t, dir, "check", "boot", "nosuch"); r.code != 3 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("missing target: %+v", r)
	}
	if r := xpboot(t, dir, "check", "boot", "nic"); r.code != 3 || !strings.Contains(r.stderr, "no installed Windows and no setup tree") {
		t.Errorf("not a system: %+v", r)
	}
	os.WriteFile(filepath.Join(dir, "tree/WINDOWS/system32/config/SYSTEM"), []byte("garbage"), 0o644)
	if r := xpboot(t, dir, "check", "boot", "tree"); r.code != 3 || !strings.Contains(r.stderr, "config/SYSTEM") {
		t.Errorf("damaged hive: %+v", r)
	}
	r := xpboot(t, dir, "integrate", "--installed", "--target", "tree", "--driver", "nic", "--preconf", "00:03.0")
	if r.code != 2 {
		t.Errorf("--preconf with --installed: %+v", r)
	}
	if r := xpboot(t, dir, "integrate", "--target", "tree", "--driver", "nic", "--mergeide"); r.code != 2 {
		t.Errorf("--mergeide without --installed: %+v", r)
	}
	if r := xpboot(t, dir, "integrate", "--undo", "--target", "tree", "--driver", "nic"); r.code != 2 {
		t.Errorf("--undo with --driver: %+v", r)
	}
}

// TestIntegrateInstalledDir: check boot fails on the untouched tree,
// naming the causes, passes after integrate --installed; --undo restores
// every file.
func TestIntegrateInstalledDir(t *testing.T) {
	dir := installedWork(t)
	before := integratetest.Snapshot(t, filepath.Join(dir, "tree"))
	rep := checkBoot(t, dir, "tree", 1)
	var causes []string
	for _, f := range rep.Findings {
		causes = append(causes, f.Code+" "+f.Where)
	}
	for _, want := range []string{`not-boot ControlSet001\Services\Tcpip\Start`, `no-iscsiprt ControlSet001\Services\iScsiPrt`,
		`no-sanbootconf ControlSet001\Services\sanbootconf`, `no-boot-nic ControlSet001\Services\E1000\Start`} {
		if !strings.Contains(strings.Join(causes, "\n"), want) {
			t.Errorf("check boot before: no %q among %q", want, causes)
		}
	}
	r := xpboot(t, dir, append(installedArgs("tree"), "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, `~ ControlSet001\Services\Tcpip\Start = dword:0 (was dword:1)`) {
		t.Fatalf("dry run: %+v", r)
	}
	integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, filepath.Join(dir, "tree")))
	if r := xpboot(t, dir, installedArgs("tree")...); r.code != 0 {
		t.Fatalf("integrate --installed: %+v", r)
	}
	checkBoot(t, dir, "tree", 0)
	if r := xpboot(t, dir, "hive", "check", "tree/WINDOWS/system32/config/SYSTEM"); r.code != 0 {
		t.Errorf("hive check: %+v", r)
	}
	hivexOpens(t, filepath.Join(dir, "tree/WINDOWS/system32/config/SYSTEM"))
	r = xpboot(t, dir, append(installedArgs("tree"), "--json")...)
	var j installedJSON
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || r.code != 0 || j.Changed != 0 || len(j.Edits) != 0 {
		t.Errorf("second run: %v %+v", err, r)
	}
	if r := xpboot(t, dir, "integrate", "--undo", "--target", "tree"); r.code != 0 {
		t.Fatalf("undo: %+v", r)
	}
	integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, filepath.Join(dir, "tree")))
	checkBoot(t, dir, "tree", 1)
}

type installedJSON struct {
	System struct {
		OS, Arch string
	} `json:"system"`
	Edits   []json.RawMessage `json:"edits"`
	Changed int               `json:"changed"`
	Boot    []string          `json:"boot_sector"`
}

// putTree copies the installed tree into the image's file system.
func putTree(t *testing.T, dir, img string) {
	t.Helper()
	if r := xpboot(t, dir, "image", "put", "tree/WINDOWS", "tree/boot.ini", img+":/"); r.code != 0 {
		t.Fatalf("image put: %+v", r)
	}
}

// setHeads writes the BPB heads field of the partition at LBA 63.
func setHeads(t *testing.T, img string, heads uint16) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint16(nil, heads), 63*512+0x1a); err != nil {
		t.Fatal(err)
	}
}

// installedImage runs the whole flow on a disk image: check fails,
// integrate (fixing the boot sector's heads), check passes, a second run
// changes no byte, --undo restores every byte of the image.
func installedImage(t *testing.T, dir, img string, integrated func()) {
	t.Helper()
	path := filepath.Join(dir, img)
	setHeads(t, path, 240)
	pristine, _ := os.ReadFile(path)
	checkBoot(t, dir, img, 1)
	r := xpboot(t, dir, append(installedArgs(img), "--dry-run")...)
	if r.code != 0 || !strings.Contains(r.stdout, "heads 240 → 255") {
		t.Fatalf("dry run: %+v", r)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, pristine) {
		t.Fatal("--dry-run changed the image")
	}
	r = xpboot(t, dir, append(installedArgs(img), "--json")...)
	if r.code != 0 {
		t.Fatalf("integrate --installed: %+v", r)
	}
	var j installedJSON
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.System.OS != "Windows XP" || len(j.Boot) == 0 || !strings.Contains(j.Boot[0], "heads 240 → 255") {
		t.Errorf("integrate --json: %v %+v", err, j)
	}
	if b, _ := os.ReadFile(path); binary.LittleEndian.Uint16(b[63*512+0x1a:]) != 255 {
		t.Error("boot sector heads not set to 255")
	}
	integrated()
	rep := checkBoot(t, dir, img, 0)
	if len(rep.Drivers) < 10 {
		t.Errorf("check boot lists %d drivers", len(rep.Drivers))
	}
	if r := xpboot(t, dir, "hive", "check", img+":/WINDOWS/system32/config/SYSTEM"); r.code != 0 {
		t.Errorf("hive check: %+v", r)
	}
	hiv := filepath.Join(t.TempDir(), "SYSTEM")
	if r := xpboot(t, dir, "image", "get", img+":/WINDOWS/system32/config/SYSTEM", hiv); r.code != 0 {
		t.Fatalf("image get: %+v", r)
	}
	hivexOpens(t, hiv)
	hivexget := peertest.Need(t, "hivexget", "libhivex-bin")
	if out := peertest.Run(t, 30*time.Second, hivexget, hiv, `ControlSet002\Services\iScsiPrt`, "Start"); strings.TrimSpace(string(out)) != "0" {
		t.Errorf("hivexget iScsiPrt Start = %q", out)
	}
	done, _ := os.ReadFile(path)
	if r := xpboot(t, dir, installedArgs(img)...); r.code != 0 {
		t.Fatalf("second run: %+v", r)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, done) {
		t.Error("the second run changed the image")
	}
	if r := xpboot(t, dir, "integrate", "--undo", "--target", img); r.code != 0 {
		t.Fatalf("undo: %+v", r)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, pristine) {
		t.Error("--undo did not restore the image byte for byte")
	}
	if _, err := os.Stat(path + ".xpboot-undo"); !os.IsNotExist(err) {
		t.Errorf("undo journal directory left behind: %v", err)
	}
	if r := xpboot(t, dir, "integrate", "--undo", "--target", img); r.code != 1 || !strings.Contains(r.stderr, "no undo record") {
		t.Errorf("undo with nothing to undo: %+v", r)
	}
}

func TestIntegrateInstalledFAT32(t *testing.T) {
	dir := installedWork(t)
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "xp.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	putTree(t, dir, "xp.img")
	installedImage(t, dir, "xp.img", func() { integratetest.FsckImage(t, filepath.Join(dir, "xp.img")) })
	integratetest.FsckImage(t, filepath.Join(dir, "xp.img"))
}

// TestIntegrateInstalledNTFS makes the NTFS partition with mkntfs, fills
// it through xpboot's NTFS writer and runs the same flow; it skips only
// while the NTFS writer refuses writes.
func TestIntegrateInstalledNTFS(t *testing.T) {
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	dir := installedWork(t)
	if r := xpboot(t, dir, "image", "create", "--fs", "none", "--size", "64M", "xp.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	img, err := imagefs.Open(filepath.Join(dir, "xp.img"), false)
	if err != nil {
		t.Fatal(err)
	}
	p := img.Partitions()[0]
	img.Dev.Close()
	part := filepath.Join(dir, "part")
	if err := os.WriteFile(part, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(part, p.Size); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, mkntfs, "-q", "-F", "-f", "-p", "63", "-H", "255", "-S", "63", part)
	b, _ := os.ReadFile(part)
	f, err := os.OpenFile(filepath.Join(dir, "xp.img"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(b, p.Offset)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r := xpboot(t, dir, "image", "put", "tree/WINDOWS", "tree/boot.ini", "xp.img:/"); r.code != 0 {
		if strings.Contains(r.stderr, ntfs.ErrReadOnly.Error()) {
			t.Skipf("the NTFS writer refuses writes: %s", r.stderr)
		}
		t.Fatalf("image put: %+v", r)
	}
	ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
	installedImage(t, dir, "xp.img", func() {
		// The integrated volume is consistent for ntfs-3g's checker,
		// the backup boot sector included.
		part2 := filepath.Join(dir, "part2")
		b, _ := os.ReadFile(filepath.Join(dir, "xp.img"))
		os.WriteFile(part2, b[p.Offset:p.Offset+p.Size], 0o644)
		if out, err := peertest.Try(t, time.Minute, ntfsfix, "-n", part2); err != nil {
			t.Errorf("ntfsfix -n: %v\n%s", err, out)
		}
		os.Remove(part2)
	})
}
