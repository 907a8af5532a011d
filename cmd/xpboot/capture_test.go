package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// runCapture runs `capture ARGS` in an app holding only captureCommand and
// returns stdout, stderr (with the error appended) and the exit code.
func runCapture(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	out, errs, code, err := runInProcess(captureCommand, "capture", args...)
	if err != nil {
		errs += err.Error()
	}
	return out, errs, code
}

// captureSource makes a FAT32 disk whose free clusters hold a removed
// file's data.
func captureSource(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "src.img")
	if _, err := imagefs.Create(src, imagefs.CreateOptions{Size: 64 << 20, FS: "fat32"}); err != nil {
		t.Fatal(err)
	}
	img, err := imagefs.Open(src, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte("old data "), 1<<20)
	mt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := fs.WriteFile("/OLD.BIN", bytes.NewReader(old), int64(len(old)), mt); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove("/OLD.BIN"); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile("/KEEP.TXT", strings.NewReader("keep"), 4, mt); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestCaptureCommand(t *testing.T) {
	dir := t.TempDir()
	src := captureSource(t, dir)

	out := filepath.Join(dir, "cap.vmdk")
	stdout, stderr, code := runCapture(t, "--json", src, out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum struct {
		OutputFormat string `json:"output_format"`
		BytesRead    int64  `json:"bytes_read"`
		Partitions   []struct {
			Index        int    `json:"index"`
			FS           string `json:"fs"`
			Method       string `json:"method"`
			UsedBytes    int64  `json:"used_bytes"`
			BytesRead    int64  `json:"bytes_read"`
			BytesSkipped int64  `json:"bytes_skipped"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if sum.OutputFormat != "vmdk" || len(sum.Partitions) != 1 || sum.Partitions[0].FS != "fat32" || sum.Partitions[0].Method != "allocated" ||
		sum.BytesRead > 4<<20 || sum.Partitions[0].BytesSkipped < 32<<20 {
		t.Errorf("summary %s", stdout)
	}
	back, err := imagefs.Open(out, false)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	fs, err := back.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := fs.ReadDir("/"); err != nil || len(list) != 1 {
		t.Errorf("capture lists %v, %v", list, err)
	}

	// Text summary; an existing OUT needs --force.
	if _, stderr, code := runCapture(t, src, out); code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("existing OUT: exit %d: %s", code, stderr)
	}
	stdout, stderr, code = runCapture(t, "--force", "--to", "vhd", src, filepath.Join(dir, "cap.vhd"))
	if code != 0 || !strings.Contains(stdout, "partition 1 (type 0x0c, fat32") || !strings.Contains(stdout, "allocated") {
		t.Errorf("text: exit %d: %s%s", code, stdout, stderr)
	}

	// Usage errors: exit 2.
	for _, args := range [][]string{{src}, {"--to", "raw", src, filepath.Join(dir, "x.vmdk")}, {src, filepath.Join(dir, "noext")}, {"--level", "0", src, filepath.Join(dir, "y.vmdk")}} {
		if _, stderr, code := runCapture(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", args, code, stderr)
		}
	}
	// A missing source: exit 1, nothing written.
	missing := filepath.Join(dir, "missing.vmdk")
	if _, _, code := runCapture(t, filepath.Join(dir, "nope.img"), missing); code != 1 {
		t.Errorf("missing source: exit %d", code)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("output written for a missing source")
	}
}

// TestConvertSkipFree: image convert --skip-free is capture.
func TestConvertSkipFree(t *testing.T) {
	dir := t.TempDir()
	src := captureSource(t, dir)
	stdout, stderr, code := runConvert(t, "--skip-free", "--json", src, filepath.Join(dir, "c.img"))
	if code != 0 || !strings.Contains(stdout, `"method": "allocated"`) {
		t.Errorf("exit %d: %s%s", code, stdout, stderr)
	}
}
