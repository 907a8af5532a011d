package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runConvert runs `convert ARGS` in an app holding only convertCommand and
// returns stdout, stderr (with the error appended) and the exit code.
func runConvert(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	out, errs, code, err := runInProcess(convertCommand, "convert", args...)
	if err != nil {
		errs += err.Error()
	}
	return out, errs, code
}

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	data := bytes.Repeat([]byte("xpboot convert "), 70_000) // ~1 MiB
	f, _ := os.Create(src)
	f.Truncate(8 << 20)
	f.WriteAt(data, 4096)
	f.Close()

	// --json summary; the VHD size rounding is a logged notice.
	out := filepath.Join(dir, "disk.vhd")
	stdout, stderr, code := runConvert(t, "--to", "vhd", "--json", src, out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum struct {
		OutputFormat string `json:"output_format"`
		InputSize    int64  `json:"input_size"`
		OutputSize   int64  `json:"output_size"`
		BytesRead    int64  `json:"bytes_read"`
		BytesWritten int64  `json:"bytes_written"`
		BytesSkipped int64  `json:"bytes_skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if sum.OutputFormat != "vhd" || sum.InputSize != 8<<20 || sum.OutputSize < 8<<20 || sum.BytesRead < int64(len(data)) || sum.BytesWritten+sum.BytesSkipped != 8<<20 {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(stderr, "rounded up") {
		t.Errorf("no rounding notice on stderr: %q", stderr)
	}

	// An existing OUT is refused without --force, replaced with it.
	if _, stderr, code := runConvert(t, "--to", "vhd", src, out); code != 1 || !strings.Contains(stderr, "--force") {
		t.Errorf("existing OUT: exit %d: %s", code, stderr)
	}
	if stdout, stderr, code := runConvert(t, "--to", "vhd-fixed", "--force", src, out); code != 0 || !strings.Contains(stdout, "vhd-fixed") {
		t.Errorf("--force: exit %d: %s %s", code, stdout, stderr)
	}
	if stdout, stderr, code := runConvert(t, "--to", "vmdk-stream", "-j", "2", src, filepath.Join(dir, "s.vmdk")); code != 0 || !strings.Contains(stdout, "vmdk-stream") {
		t.Errorf("vmdk-stream: exit %d: %s %s", code, stdout, stderr)
	}

	// Without --to the format follows OUT's extension.
	for name, want := range map[string]string{"by-name.vmdk": "vmdk", "by-name.VHD": "vhd", "by-name.img": "raw"} {
		if stdout, stderr, code := runConvert(t, "--json", src, filepath.Join(dir, name)); code != 0 || !strings.Contains(stdout, `"output_format": "`+want+`"`) {
			t.Errorf("%s: exit %d: %s %s", name, code, stdout, stderr)
		}
	}

	// Usage errors exit 2.
	for _, args := range [][]string{
		{"--to", "qcow2", src, out + "2"},
		{src},
		{"--exact", "--to", "vhd-fixed", src, out + "3"},
		{"--level", "11", "--to", "vmdk-stream", src, out + "4"},
		{"--to", "raw", src, filepath.Join(dir, "raw-named.vmdk")}, // contradicts the name
		{"--to", "vmdk", src, filepath.Join(dir, "vmdk-named.vhd")},
		{src, filepath.Join(dir, "no-extension")}, // no --to, no telling extension
	} {
		if _, stderr, code := runConvert(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", args, code, stderr)
		}
	}
	for _, name := range []string{"raw-named.vmdk", "vmdk-named.vhd", "no-extension"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("refused convert left %s", name)
		}
	}
	if _, err := os.Stat(out + "3"); !os.IsNotExist(err) {
		t.Error("--exact refusal left an output")
	}
}
