package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// writeSetupMedia writes XP-shaped installation media with stand-in
// loaders under dir/cd.
func writeSetupMedia(t *testing.T, dir string, setupldr []byte) string {
	t.Helper()
	root := filepath.Join(dir, "cd")
	integratetest.WriteXPMedia(t, root)
	integratetest.WriteFile(t, root, "I386/NTLDR", []byte("stand-in NTLDR"))
	integratetest.WriteFile(t, root, "I386/NTDETECT.COM", []byte("stand-in NTDETECT"))
	if setupldr == nil {
		setupldr = []byte("stand-in SETUPLDR")
	}
	integratetest.WriteFile(t, root, "I386/SETUPLDR.BIN", setupldr)
	integratetest.WriteFile(t, root, "I386/NTKRNLMP.EX_", integratetest.Cabinet(t, "ntkrnlmp.exe", integratetest.FakePE(integratetest.I386, "mp")))
	return root
}

func imageSnapshot(t *testing.T, p string) map[string]string {
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

// TestSetupStage: --dry-run --json lists the layout and writes nothing;
// a stage with --driver equals a stage followed by xpboot integrate.
func TestSetupStage(t *testing.T) {
	dir := t.TempDir()
	media := writeSetupMedia(t, dir, nil)
	nic := filepath.Join(dir, "e1000")
	integratetest.NICPackage(t, nic, integratetest.I386)
	for _, img := range []string{"a.img", "b.img"} {
		if r := xpboot(t, dir, "image", "create", "--size", "64M", img); r.code != 0 {
			t.Fatalf("image create: %+v", r)
		}
	}
	r := xpboot(t, dir, "setup", "stage", "--source", media, "--target", "a.img", "--dry-run", "--json")
	if r.code != 0 {
		t.Fatalf("dry run: %+v", r)
	}
	var res struct {
		DryRun bool `json:"dry_run"`
		Plan   struct {
			Media struct {
				OS, Arch, Edition, Title string
			} `json:"media"`
			Files []struct{ Path string } `json:"files"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.DryRun || res.Plan.Media.OS != "XP" || res.Plan.Media.Arch != "x86" {
		t.Fatalf("dry run --json: %v %s", err, r.stdout)
	}
	var paths []string
	for _, f := range res.Plan.Files {
		paths = append(paths, f.Path)
	}
	for _, want := range []string{"$LDR$", "BOOT.INI", "$WIN_NT$.~BT/BOOTSECT.DAT", "$WIN_NT$.~BT/WINNT.SIF", "$WIN_NT$.~LS/I386/TXTSETUP.SIF"} {
		if !strings.Contains(strings.Join(paths, "\n")+"\n", want+"\n") {
			t.Errorf("dry run lacks %s", want)
		}
	}
	if snap := imageSnapshot(t, filepath.Join(dir, "a.img")); len(snap) != 1 {
		t.Fatalf("dry run wrote %d entries", len(snap)-1)
	}

	if r := xpboot(t, dir, "setup", "stage", "--source", media, "--target", "a.img", "--driver", nic, "--dhcp"); r.code != 0 {
		t.Fatalf("stage --driver: %+v", r)
	}
	if r := xpboot(t, dir, "setup", "stage", "--source", media, "--target", "b.img"); r.code != 0 {
		t.Fatalf("stage: %+v", r)
	}
	if r := xpboot(t, dir, "integrate", "--target", "b.img", "--driver", nic, "--dhcp"); r.code != 0 {
		t.Fatalf("integrate: %+v", r)
	}
	a := integratetest.NormalizeHives(t, imageSnapshot(t, filepath.Join(dir, "a.img")))
	b := integratetest.NormalizeHives(t, imageSnapshot(t, filepath.Join(dir, "b.img")))
	delete(a, "$WIN_NT$.~BT/BOOTSECT.DAT") // each volume has its own serial number
	delete(b, "$WIN_NT$.~BT/BOOTSECT.DAT")
	integratetest.SameSnapshot(t, b, a)

	// Staged already: refused (exit 1) without --force.
	if r := xpboot(t, dir, "setup", "stage", "--source", media, "--target", "b.img"); r.code != 1 || !strings.Contains(r.stderr, "already staged") {
		t.Errorf("re-stage: %+v", r)
	}
	if r := xpboot(t, dir, "setup", "stage", "--source", media, "--target", "b.img", "--unattended", "--force"); r.code != 1 || !strings.Contains(r.stderr, "--computer-name") {
		t.Errorf("unattended without answers: %+v", r)
	}
	if r := xpboot(t, dir, "setup", "stage", "--source", media, "--target", "b.img", "--timezone", "GMT"); r.code != 2 {
		t.Errorf("bad --timezone: %+v", r)
	}
	if r := xpboot(t, dir, "setup", "stage", "--source", filepath.Join(dir, "nosuch"), "--target", "b.img"); r.code != 3 {
		t.Errorf("missing source: %+v", r)
	}
}
