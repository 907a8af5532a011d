package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageResize runs `xpboot image resize` as a user would: a dry run,
// a grow with --grow-partition and --json, the exit status of refusals.
func TestImageResize(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"--fs", "none", "disk.img"}, {"fat.img"}} {
		if r := xpboot(t, dir, append([]string{"image", "create", "--size", "64M"}, args...)...); r.code != 0 {
			t.Fatalf("create: %d %s", r.code, r.stderr)
		}
	}
	r := xpboot(t, dir, "image", "resize", "--dry-run", "--grow-partition", "disk.img", "+8M")
	if r.code != 0 || !strings.Contains(r.stdout, "would be resized to 75497472 bytes") || !strings.Contains(r.stdout, "would be grown to") {
		t.Fatalf("dry run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, _ := os.Stat(filepath.Join(dir, "disk.img")); st.Size() != 64<<20 {
		t.Fatalf("the dry run resized the image to %d", st.Size())
	}
	r = xpboot(t, dir, "image", "resize", "--json", "--grow-partition", "disk.img", "+8M")
	if r.code != 0 {
		t.Fatalf("resize: %d %s", r.code, r.stderr)
	}
	var res struct {
		NewSize   int64 `json:"new_size"`
		Partition struct {
			Index      int    `json:"index"`
			NewSectors uint32 `json:"new_sectors"`
		} `json:"partition"`
		FileSystem struct {
			Type string `json:"type"`
		} `json:"filesystem"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if res.NewSize != 72<<20 || res.Partition.Index != 1 || res.FileSystem.Type != "none" {
		t.Errorf("result %+v", res)
	}
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"disk.img", "32M"}, 1, "--shrink"},
		{[]string{"disk.img", "1000"}, 2, "512-byte sectors"},
		{[]string{"disk.img", "lots"}, 2, "not a size"},
		{[]string{"disk.img"}, 2, "need IMG and SIZE"},
		{[]string{"--partition-size", "10M", "disk.img", "80M"}, 2, "needs --grow-partition"},
		{[]string{"missing.img", "80M"}, 1, "missing.img"},
		{[]string{"--grow-partition", "fat.img", "+8M"}, 1, "sectors per FAT"},
	} {
		r := xpboot(t, dir, append([]string{"image", "resize"}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("resize %q: exit %d, want %d with %q\n%s", tt.args, r.code, tt.code, tt.msg, r.stderr)
		}
	}
}
