package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// integrateJSON is the part of integrate --json the tests read.
type integrateJSON struct {
	Target string `json:"target"`
	DryRun bool   `json:"dry_run"`
	Tree   struct {
		OS          string `json:"os"`
		ServicePack int    `json:"servicePack"`
		Arch        string `json:"arch"`
		Layout      string `json:"layout"`
	} `json:"tree"`
	Drivers []struct {
		Dir     string `json:"dir"`
		Devices []struct {
			HardwareID string `json:"hardware_id"`
		} `json:"devices"`
	} `json:"drivers"`
	Edits []struct {
		File    string `json:"file"`
		Changed bool   `json:"changed"`
	} `json:"edits"`
	Files []struct {
		Path    string `json:"path"`
		Kind    string `json:"kind"`
		Changed bool   `json:"changed"`
		Action  string `json:"action"`
	} `json:"files"`
	Changed  int      `json:"changed"`
	Warnings []string `json:"warnings"`
	Diff     string   `json:"diff"`
}

func parseIntegrateJSON(t *testing.T, r result) integrateJSON {
	t.Helper()
	var out integrateJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("integrate --json: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return out
}

func (j integrateJSON) changed(path string) bool {
	for _, f := range j.Files {
		if strings.EqualFold(f.Path, path) {
			return f.Changed
		}
	}
	return false
}

// integrateWork makes an XP SP2 media tree and the driver packages in a
// temporary directory: tree, e1000, sanbootconf, vscsi, e1000-x64.
func integrateWork(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	integratetest.WriteXPMedia(t, filepath.Join(dir, "tree"))
	integratetest.NICPackage(t, filepath.Join(dir, "e1000"), integratetest.I386)
	integratetest.NICPackage(t, filepath.Join(dir, "e1000-x64"), integratetest.AMD64)
	integratetest.RootPackage(t, filepath.Join(dir, "sanbootconf"))
	integratetest.SCSIPackage(t, filepath.Join(dir, "vscsi"))
	return dir
}

// hivexOpens checks that hivexsh reads the hive and finds ControlSet001.
func hivexOpens(t *testing.T, hivePath string) {
	t.Helper()
	peertest.Need(t, "hivexsh", "libhivex-bin")
	script := filepath.Join(t.TempDir(), "ls.hivexsh")
	if err := os.WriteFile(script, []byte("ls\ncd ControlSet001\nls\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := peertest.Run(t, time.Minute, "hivexsh", "-f", script, hivePath)
	if !bytes.Contains(out, []byte("ControlSet001")) || !bytes.Contains(out, []byte("Services")) {
		t.Errorf("hivexsh %s:\n%s", hivePath, out)
	}
}

func TestIntegrateDir(t *testing.T) {
	dir := integrateWork(t)
	tree := filepath.Join(dir, "tree")
	pristine := integratetest.Snapshot(t, tree)
	args := []string{"integrate", "--target", "tree", "--driver", "e1000", "--driver", "sanbootconf", "--driver", "vscsi",
		"--ip", "192.168.1.50/24", "--gateway", "192.168.1.1"}

	// --dry-run prints the diff and writes nothing.
	r := xpboot(t, dir, append(args, "--dry-run")...)
	if r.code != 0 {
		t.Fatalf("dry run: %+v", r)
	}
	for _, want := range []string{"--- a/I386/TXTSETUP.SIF", "+++ b/I386/TXTSETUP.SIF", "@@ ", `+PCI\VEN_8086&DEV_100E = "E1000"`, "--- a/I386/DOSNET.INF"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry-run diff lacks %q:\n%s", want, r.stdout)
		}
	}
	integratetest.SameSnapshot(t, pristine, integratetest.Snapshot(t, tree))

	r = xpboot(t, dir, append(args, "--dry-run", "--json")...)
	if r.code != 0 {
		t.Fatalf("dry run --json: %+v", r)
	}
	j := parseIntegrateJSON(t, r)
	if !j.DryRun || j.Tree.OS != "XP" || j.Tree.ServicePack != 2 || j.Tree.Arch != "x86" || j.Tree.Layout != "media" {
		t.Errorf("dry run --json tree: %+v", j)
	}
	if !j.changed("I386/TXTSETUP.SIF") || !j.changed("I386/HIVESYS.INF") || j.Changed == 0 || len(j.Edits) == 0 || j.Diff == "" {
		t.Errorf("dry run --json files: %+v", j.Files)
	}
	if len(j.Drivers) != 3 || len(j.Drivers[0].Devices) != 2 {
		t.Errorf("dry run --json drivers: %+v", j.Drivers)
	}
	integratetest.SameSnapshot(t, pristine, integratetest.Snapshot(t, tree))

	// The real run, keeping originals.
	r = xpboot(t, dir, append(args, "--json", "--backup")...)
	if r.code != 0 {
		t.Fatalf("integrate: %+v", r)
	}
	j = parseIntegrateJSON(t, r)
	if j.DryRun || !j.changed("I386/TXTSETUP.SIF") || !j.changed("I386/TXTSETUP.SIF.xpboot-orig") {
		t.Errorf("integrate --json: %+v", j.Files)
	}
	after := integratetest.Snapshot(t, tree)
	for _, f := range j.Files {
		switch {
		case f.Kind == "backup":
			orig := strings.TrimSuffix(f.Path, ".xpboot-orig")
			if after[f.Path] != pristine[orig] {
				t.Errorf("%s is not the original of %s", f.Path, orig)
			}
		case f.Action == "remove":
			if _, ok := after[f.Path]; ok {
				t.Errorf("%s not removed", f.Path)
			}
		case f.Changed && after[f.Path] == pristine[f.Path]:
			t.Errorf("%s reported changed but is not", f.Path)
		case !f.Changed && after[f.Path] != pristine[f.Path]:
			t.Errorf("%s changed but reported unchanged", f.Path)
		}
	}
	sif := after["I386/TXTSETUP.SIF"]
	for _, want := range []string{`PCI\VEN_8086&DEV_100E = "E1000"`, "sanbootconf", "vscsi = vscsi.sys,4"} {
		if !strings.Contains(sif, want) {
			t.Errorf("txtsetup.sif lacks %q", want)
		}
	}
	hivexOpens(t, filepath.Join(tree, "I386", "SETUPREG.HIV"))

	// The second run changes nothing, and its text output lists nothing.
	r = xpboot(t, dir, append(args, "--json", "--backup")...)
	if r.code != 0 {
		t.Fatalf("second run: %+v", r)
	}
	if j := parseIntegrateJSON(t, r); j.Changed != 0 {
		for _, f := range j.Files {
			if f.Changed {
				t.Errorf("second run changes %s", f.Path)
			}
		}
	}
	r = xpboot(t, dir, args...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("third run: %+v", r)
	}
	integratetest.SameSnapshot(t, after, integratetest.Snapshot(t, tree))

	// Text output of a first run names the files; --quiet prints nothing.
	integratetest.WriteXPMedia(t, filepath.Join(dir, "tree2"))
	r = xpboot(t, dir, "integrate", "--target", "tree2", "--driver", "e1000")
	if r.code != 0 || !strings.Contains(r.stdout, "edit") || !strings.Contains(r.stdout, "I386/TXTSETUP.SIF") {
		t.Errorf("text output: %+v", r)
	}
	integratetest.WriteXPMedia(t, filepath.Join(dir, "tree3"))
	r = xpboot(t, dir, "integrate", "--quiet", "--target", "tree3", "--driver", "e1000")
	if r.code != 0 || r.stdout != "" || strings.Contains(r.stderr, "level=INFO") {
		t.Errorf("--quiet: %+v", r)
	}
}

// TestIntegrateImage integrates into a tree put into FAT32 images made by
// xpboot image create: at the root (IMG) and in a directory (IMG:/path).
func TestIntegrateImage(t *testing.T) {
	dir := integrateWork(t)
	for _, tc := range []struct{ name, format, where, target string }{
		{"root", "raw", "/", "root.img"},
		{"subdir", "raw", "/setup/xpsp2/", "sub.img:/SETUP/xpsp2"},
		{"vmdk", "vmdk", "/", "disk.vmdk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := strings.SplitN(tc.target, ":", 2)[0]
			if r := xpboot(t, dir, "image", "create", "--format", tc.format, "--size", "64M", img); r.code != 0 {
				t.Fatalf("image create: %+v", r)
			}
			if r := xpboot(t, dir, "image", "put", "tree/I386", "tree/WIN51IP.SP2", img+":"+tc.where); r.code != 0 {
				t.Fatalf("image put: %+v", r)
			}
			pristine, _ := os.ReadFile(filepath.Join(dir, img))
			args := []string{"integrate", "--target", tc.target, "--driver", "e1000", "--driver", "sanbootconf", "--dhcp"}

			r := xpboot(t, dir, append(args, "--dry-run")...)
			if r.code != 0 || !strings.Contains(r.stdout, "+++ b/I386/TXTSETUP.SIF") {
				t.Fatalf("dry run: %+v", r)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, img)); !bytes.Equal(b, pristine) {
				t.Fatal("--dry-run changed the image")
			}

			r = xpboot(t, dir, append(args, "--backup", "--json")...)
			if r.code != 0 {
				t.Fatalf("integrate: %+v", r)
			}
			if j := parseIntegrateJSON(t, r); !j.changed("I386/TXTSETUP.SIF") || j.Tree.Layout != "media" {
				t.Errorf("integrate --json: %+v", j)
			}
			integratetest.FsckImage(t, filepath.Join(dir, img))

			in := img + ":" + tc.where
			r = xpboot(t, dir, "image", "ls", in+"I386")
			if r.code != 0 || !strings.Contains(r.stdout, "TXTSETUP.SIF.xpboot-orig") {
				t.Errorf("image ls: %+v", r)
			}
			got := filepath.Join(t.TempDir(), "txtsetup.sif")
			if r := xpboot(t, dir, "image", "get", in+"I386/txtsetup.sif", got); r.code != 0 {
				t.Fatalf("image get: %+v", r)
			}
			if b, _ := os.ReadFile(got); !bytes.Contains(b, []byte(`PCI\VEN_8086&DEV_100E = "E1000"`)) {
				t.Errorf("txtsetup.sif in the image lacks the NIC:\n%s", b)
			}
			hiv := filepath.Join(t.TempDir(), "SETUPREG.HIV")
			if r := xpboot(t, dir, "image", "get", in+"I386/SETUPREG.HIV", hiv); r.code != 0 {
				t.Fatalf("image get: %+v", r)
			}
			hivexOpens(t, hiv)

			done, _ := os.ReadFile(filepath.Join(dir, img))
			r = xpboot(t, dir, append(args, "--backup", "--json")...)
			if j := parseIntegrateJSON(t, r); r.code != 0 || j.Changed != 0 {
				t.Errorf("second run: %+v", r)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, img)); !bytes.Equal(b, done) {
				t.Error("the second run changed the image")
			}
		})
	}
}

// TestIntegrateRefused: bad input exits non-zero, names the problem and
// writes nothing.
func TestIntegrateRefused(t *testing.T) {
	dir := integrateWork(t)
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "empty.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "put", "tree/I386", "disk.img:/"); r.code != 0 {
		t.Fatalf("image put: %+v", r)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no target", []string{"--driver", "e1000"}, 2, "option --target is required"},
		{"no driver", []string{"--target", "tree"}, 2, "no --driver"},
		{"not a setup tree", []string{"--target", "empty", "--driver", "e1000"}, 1, "empty: not a Windows 2000/XP/2003 setup tree"},
		{"image not a setup tree", []string{"--target", "empty.img", "--driver", "e1000"}, 1, "not a Windows 2000/XP/2003 setup tree"},
		{"missing image dir", []string{"--target", "disk.img:/nowhere", "--driver", "e1000"}, 1, "/nowhere"},
		{"no such partition", []string{"--target", "disk.img", "--partition", "2", "--driver", "e1000"}, 1, "partition 2 does not exist"},
		{"missing target", []string{"--target", "nowhere", "--driver", "e1000"}, 1, "nowhere: not a directory or a disk image"},
		{"missing driver dir", []string{"--target", "tree", "--driver", "nodriver"}, 1, "nodriver: no such driver directory"},
		{"driver not a package", []string{"--target", "tree", "--driver", "empty"}, 1, "no *.inf"},
		{"other arch", []string{"--target", "tree", "--driver", "sanbootconf", "--driver", "e1000-x64"}, 1, "amd64"},
		{"other arch in image", []string{"--target", "disk.img", "--driver", "e1000-x64"}, 1, "amd64"},
		{"ip and dhcp", []string{"--target", "tree", "--driver", "e1000", "--ip", "10.0.0.5/24", "--dhcp"}, 2, "exclude each other"},
		{"bad ip", []string{"--target", "tree", "--driver", "e1000", "--ip", "10.0.0.5"}, 2, "ADDR/PREFIX"},
		{"bad preconf", []string{"--target", "tree", "--driver", "e1000", "--preconf", "0:3:0"}, 2, "bus:device.function"},
		{"device matches nothing", []string{"--target", "tree", "--driver", "e1000", "--device", `PCI\VEN_10EC&DEV_8139`}, 2, `--device PCI\VEN_10EC&DEV_8139 matches no device`},
		{"nic not a nic", []string{"--target", "tree", "--driver", "e1000", "--driver", "sanbootconf", "--nic", `ROOT\sanbootconf`}, 2, `ROOT\sanbootconf is not a network adapter`},
		{"textmode without oem", []string{"--target", "tree", "--textmode-driver", "e1000"}, 1, "no txtsetup.oem"},
		{"stray argument", []string{"--target", "tree", "--driver", "e1000", "extra"}, 2, `unexpected argument "extra"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := integratetest.Snapshot(t, dir)
			r := xpboot(t, dir, append([]string{"integrate"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("exit %d, want %d with %q:\n%s", r.code, tt.code, tt.msg, r.stderr)
			}
			integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, dir))
		})
	}
}

// TestIntegrateLockedImage: an image another process writes (xpboot
// serve, xpboot image put) is refused before anything is planned; a dry
// run still reads it.
func TestIntegrateLockedImage(t *testing.T) {
	dir := integrateWork(t)
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "put", "tree/I386", "disk.img:/"); r.code != 0 {
		t.Fatalf("image put: %+v", r)
	}
	f, err := os.Open(filepath.Join(dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := blockdev.Lock(f, false); err != nil { // a reader, as serve of a base image
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "disk.img"))
	r := xpboot(t, dir, "integrate", "--target", "disk.img", "--driver", "e1000")
	if r.code == 0 || !strings.Contains(r.stderr, "in use by another process") {
		t.Errorf("locked image: %+v", r)
	}
	if r := xpboot(t, dir, "integrate", "--target", "disk.img", "--driver", "e1000", "--dry-run"); r.code != 0 {
		t.Errorf("dry run of a locked image: %+v", r)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "disk.img")); !bytes.Equal(before, after) {
		t.Error("the image changed")
	}
}

// TestIntegrateDevice: --device narrows a package to the matching model
// and leaves packages without a match whole.
func TestIntegrateDevice(t *testing.T) {
	dir := integrateWork(t)
	r := xpboot(t, dir, "integrate", "--target", "tree", "--driver", "e1000", "--driver", "sanbootconf",
		"--device", `PCI\VEN_8086&DEV_100F&SUBSYS_00000000&REV_01`, "--dry-run", "--json")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	j := parseIntegrateJSON(t, r)
	if len(j.Drivers) != 2 || len(j.Drivers[0].Devices) != 1 || j.Drivers[0].Devices[0].HardwareID != `PCI\VEN_8086&DEV_100F` ||
		len(j.Drivers[1].Devices) != 1 {
		t.Errorf("drivers: %+v", j.Drivers)
	}
	if strings.Contains(j.Diff, `+PCI\VEN_8086&DEV_100E = "E1000"`) || !strings.Contains(j.Diff, `+PCI\VEN_8086&DEV_100F = "E1000"`) {
		t.Errorf("the diff does not integrate only the selected model:\n%s", j.Diff)
	}
}

// TestIntegrateTextMode integrates a txtsetup.oem driver disk and a NIC
// into a winnt32 /makelocalsource tree.
func TestIntegrateTextMode(t *testing.T) {
	dir := integrateWork(t)
	integratetest.WriteXPLocalSource(t, filepath.Join(dir, "ls"))
	integratetest.TextModePackage(t, filepath.Join(dir, "vmscsi"))
	args := []string{"integrate", "--target", "ls", "--textmode-driver", "vmscsi:VMSCSI", "--driver", "e1000", "--json"}
	r := xpboot(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	j := parseIntegrateJSON(t, r)
	if j.Tree.Layout != "local-source" || len(j.Drivers) != 2 || j.Drivers[0].Dir != "vmscsi" {
		t.Errorf("report: %+v", j)
	}
	snap := integratetest.Snapshot(t, filepath.Join(dir, "ls"))
	for _, name := range []string{"$WIN_NT$.~LS/I386/TXTSETUP.SIF", "$WIN_NT$.~BT/TXTSETUP.SIF", "TXTSETUP.SIF"} {
		if !strings.Contains(snap[name], "vmscsi = vmscsi.sys,4") || !strings.Contains(snap[name], `PCI\VEN_104B&DEV_1040 = "vmscsi"`) {
			t.Errorf("%s lacks the text-mode driver", name)
		}
	}
	if _, ok := snap["$WIN_NT$.~LS/I386/vmscsi.sys"]; !ok {
		t.Error("vmscsi.sys not in the setup directory")
	}
	r = xpboot(t, dir, args...)
	if j := parseIntegrateJSON(t, r); r.code != 0 || j.Changed != 0 {
		t.Errorf("second run: %+v", r)
	}
	integratetest.SameSnapshot(t, snap, integratetest.Snapshot(t, filepath.Join(dir, "ls")))
	r = xpboot(t, dir, "integrate", "--target", "ls", "--textmode-driver", "vmscsi:nope")
	if r.code == 0 || !strings.Contains(r.stderr, "no [scsi] option nope (available: vmscsi)") {
		t.Errorf("unknown option: %+v", r)
	}
	integratetest.SameSnapshot(t, snap, integratetest.Snapshot(t, filepath.Join(dir, "ls")))
}
