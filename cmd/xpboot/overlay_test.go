package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/overlay"
)

// TestOverlayCommands runs the built binary: overlay list shows each
// client's overlay (in use while this process holds it open, as a server
// would), --json for scripts; overlay reset refuses the open overlay and a
// missing client with status 1, removes the others, and answers wrong
// arguments with status 2.
func TestOverlayCommands(t *testing.T) {
	dir := t.TempDir()
	ovDir := filepath.Join(dir, "ov")
	if err := os.Mkdir(ovDir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw := sparseImage(t, "xp.img", 8<<20)
	b, err := overlay.OpenBase(raw, ovDir, overlay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const held, idle = "iqn.2026-01.org.xpboot:held", "iqn.2026-01.org.xpboot:idle"
	hd, _, err := b.Open(held, "")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	id, _, err := b.Open(idle, "")
	if err != nil {
		t.Fatal(err)
	}
	id.Close()

	r := xpboot(t, dir, "overlay", "list", ovDir, "--json")
	var list []overlay.Info
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 2 {
		t.Fatalf("overlay list --json: %+v", r)
	}
	for _, in := range list {
		wantUse := in.Client == strings.TrimSuffix(overlay.Name(held), ".vmdk")
		if in.InUse != wantUse || in.State != overlay.StateOK || in.Base != raw || in.Size != 8<<20 {
			t.Errorf("listed %+v", in)
		}
	}
	r = xpboot(t, dir, "overlay", "list", ovDir)
	if r.code != 0 || !strings.Contains(r.stdout, "CLIENT") || !strings.Contains(r.stdout, "iqn.2026-01.org.xpboot_idle") {
		t.Errorf("overlay list: %+v", r)
	}

	r = xpboot(t, dir, "overlay", "reset", ovDir, held)
	if r.code != exitFailure || !strings.Contains(r.stderr, "in use") {
		t.Errorf("reset of an open overlay: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(ovDir, overlay.Name(held))); err != nil {
		t.Errorf("the open overlay was touched: %v", err)
	}
	r = xpboot(t, dir, "overlay", "reset", ovDir, "iqn.2026-01.org.xpboot:nobody", "--json")
	var res []resetResult
	if r.code != exitFailure || json.Unmarshal([]byte(r.stdout), &res) != nil || len(res) != 1 || res[0].Reset {
		t.Errorf("reset of a missing client: %+v", r)
	}
	r = xpboot(t, dir, "overlay", "reset", ovDir, idle)
	if r.code != 0 || !strings.Contains(r.stdout, "boots the base") {
		t.Errorf("reset: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(ovDir, overlay.Name(idle))); !os.IsNotExist(err) {
		t.Errorf("the reset overlay is still there: %v", err)
	}

	hd.Close()
	r = xpboot(t, dir, "overlay", "reset", ovDir, strings.TrimSuffix(overlay.Name(held), ".vmdk"), "--json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || len(res) != 1 || !res[0].Reset {
		t.Errorf("reset after the client closed, by listed name: %+v", r)
	}
	r = xpboot(t, dir, "overlay", "list", ovDir, "--json")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty directory: %+v", r)
	}

	for _, args := range [][]string{{"overlay", "list"}, {"overlay", "list", ovDir, "extra"}, {"overlay", "reset", ovDir}} {
		if r := xpboot(t, dir, args...); r.code != exitUsage || r.stdout != "" {
			t.Errorf("%q: %+v", args, r)
		}
	}
	if r := xpboot(t, dir, "overlay", "list", filepath.Join(dir, "none")); r.code != exitFailure || !strings.Contains(r.stderr, "none") {
		t.Errorf("list of a missing directory: %+v", r)
	}
}
