package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestISOCommands: build a bootable CD from a directory, list and copy out
// of it, show its boot catalog, rebuild it from itself (boot image, load
// size, volume ID and date taken from the CD) and get the same bytes.
func TestISOCommands(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "cd")
	for name, data := range map[string]string{
		"I386/TXTSETUP.SIF": "[SetupData]\r\n", "I386/NTLDR": strings.Repeat("n", 5000),
		"Docs/A long name for a document.txt": "doc", "WIN51": "\r\n",
	} {
		p := filepath.Join(src, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	boot := filepath.Join(dir, "boot.bin")
	if err := os.WriteFile(boot, bytes.Repeat([]byte{0xF4}, 2048), 0o644); err != nil {
		t.Fatal(err)
	}
	r := xpboot(t, dir, "iso", "build", "--source", src, "--out", "a.iso", "--boot-image", boot, "--volume-id", "WXPFPP_EN", "--date", "2004-08-04T12:00:00Z", "--json")
	if r.code != 0 {
		t.Fatalf("iso build: %+v", r)
	}
	var built struct {
		Bytes      int64  `json:"bytes"`
		BootLoad   uint16 `json:"boot_load_size"`
		VolumeID   string `json:"volume_id"`
		BootSector uint32 `json:"boot_sector"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &built); err != nil || built.BootLoad != 4 || built.VolumeID != "WXPFPP_EN" {
		t.Fatalf("build --json: %v %s", err, r.stdout)
	}
	if r := xpboot(t, dir, "iso", "build", "--source", src, "--out", "a.iso"); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("existing output: %+v", r)
	}

	r = xpboot(t, dir, "iso", "ls", "--json", "a.iso:/docs")
	var ls []struct {
		Path string `json:"path"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ls); err != nil || len(ls) != 1 || ls[0].Path != "A long name for a document.txt" || ls[0].Size != 3 {
		t.Fatalf("iso ls: %v %+v", err, r)
	}
	r = xpboot(t, dir, "iso", "ls", "-r", "a.iso")
	if r.code != 0 || !strings.Contains(r.stdout, "I386/TXTSETUP.SIF") {
		t.Errorf("iso ls -r: %+v", r)
	}
	if r := xpboot(t, dir, "iso", "get", "a.iso:/I386/ntldr", "ntldr.out"); r.code != 0 {
		t.Fatalf("iso get: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ntldr.out")); string(b) != strings.Repeat("n", 5000) {
		t.Error("iso get: content differs")
	}
	if r := xpboot(t, dir, "iso", "get", "a.iso:/", "tree"); r.code != 0 {
		t.Fatalf("iso get dir: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "tree", "Docs", "A long name for a document.txt")); string(b) != "doc" {
		t.Error("iso get of the root lacks the document")
	}
	r = xpboot(t, dir, "iso", "info", "a.iso")
	if r.code != 0 || !strings.Contains(r.stdout, "no emulation") || !strings.Contains(r.stdout, "load size=4") {
		t.Errorf("iso info: %+v", r)
	}

	if r := xpboot(t, dir, "iso", "build", "--source", "a.iso", "--out", "b.iso"); r.code != 0 {
		t.Fatalf("rebuild: %+v", r)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.iso"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.iso"))
	if !bytes.Equal(a, b) {
		t.Error("rebuilding the CD from itself changed its bytes")
	}

	// Exit statuses: usage 2, unreadable input 3.
	if r := xpboot(t, dir, "iso", "ls"); r.code != 2 {
		t.Errorf("iso ls without argument: %+v", r)
	}
	if r := xpboot(t, dir, "iso", "info", "ntldr.out"); r.code != 3 || !strings.Contains(r.stderr, "not an ISO 9660 image") {
		t.Errorf("iso info of a non-ISO: %+v", r)
	}
}
