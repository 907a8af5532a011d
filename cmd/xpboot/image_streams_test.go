package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/integrate/integratetest"
)

// xpbootStdin runs the built binary in dir with stdin.
func xpbootStdin(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xpbootBinary, args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("xpboot %q: %v", args, err)
	}
	return r
}

// TestImageStreamsAndRecursiveRm: - is stdin for put and stdout for get,
// rm -r removes a tree, and a path leaving the image's root is refused.
func TestImageStreamsAndRecursiveRm(t *testing.T) {
	dir := t.TempDir()
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	data := bytes.Repeat([]byte("stdin bytes\n"), 50000) // 600 KB, several clusters
	if r := xpbootStdin(t, dir, data, "image", "put", "-", "disk.img:/a/b/from-stdin.txt"); r.code != 0 {
		t.Fatalf("put -: %+v", r)
	}
	r := xpboot(t, dir, "image", "get", "disk.img:/A/B/FROM-STDIN.TXT", "-")
	if r.code != 0 || r.stdout != string(data) {
		t.Fatalf("get -: code %d, %d bytes on stdout, stderr %q", r.code, len(r.stdout), r.stderr)
	}
	if r := xpboot(t, dir, "image", "get", "disk.img:/a", "-"); r.code != 1 || !strings.Contains(r.stderr, "directory") {
		t.Errorf("get of a directory to stdout: %+v", r)
	}
	for _, args := range [][]string{
		{"image", "ls", "disk.img:/../"},
		{"image", "get", "disk.img:/a/../../etc", "x"},
		{"image", "put", "disk.img", "disk.img:/../x"},
		{"image", "rm", "disk.img:/../a"},
	} {
		if r := xpboot(t, dir, args...); r.code != 2 || !strings.Contains(r.stderr, "leaves the image's root") {
			t.Errorf("%q: want exit 2 naming the escape, got %+v", args, r)
		}
	}
	if r := xpboot(t, dir, "image", "rm", "disk.img:/a"); r.code != 1 {
		t.Errorf("rm of a non-empty directory without -r: %+v", r)
	}
	if r := xpboot(t, dir, "image", "rm", "disk.img:/a", "-r"); r.code != 0 {
		t.Fatalf("rm -r: %+v", r)
	}
	if r := xpboot(t, dir, "image", "ls", "disk.img:/"); r.code != 0 || strings.Contains(strings.ToLower(r.stdout), " a\n") || strings.Contains(r.stdout, "a/") {
		t.Errorf("after rm -r: %+v", r)
	}
	integratetest.FsckImage(t, filepath.Join(dir, "disk.img"))
}

// TestHiveStreamsAndImages: hive export writes UTF-8 to a pipe and UTF-16 to
// files, reading commands take - for standard input, and hive new creates a
// hive inside an image.
func TestHiveStreamsAndImages(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"image", "create", "--size", "64M", "disk.img"},
		{"hive", "new", "disk.img:/WINDOWS/system32/config/SYSTEM"},
		{"hive", "set", "-t", "dword", "disk.img:/WINDOWS/system32/config/SYSTEM", `ControlSet001\Services\iScsiPrt`, "Start", "0"},
		{"hive", "export", "-o", "sys.reg", "disk.img:/WINDOWS/system32/config/SYSTEM"},
	} {
		if r := xpboot(t, dir, args...); r.code != 0 {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	if r := xpboot(t, dir, "hive", "new", "disk.img:/WINDOWS/system32/config/SYSTEM"); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Errorf("hive new over an existing hive in an image: %+v", r)
	}
	r := xpboot(t, dir, "hive", "export", "disk.img:/WINDOWS/system32/config/SYSTEM")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Windows Registry Editor Version 5.00\n") || !strings.Contains(r.stdout, `"Start"=dword:00000000`) {
		t.Errorf("export to a pipe is not UTF-8 text: %.120q", r.stdout)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sys.reg")); len(b) < 2 || b[0] != 0xFF || b[1] != 0xFE {
		t.Errorf("export -o FILE is not UTF-16 with BOM: % x", b[:min(len(b), 8)])
	}
	hiveBytes := xpboot(t, dir, "image", "get", "disk.img:/WINDOWS/system32/config/SYSTEM", "-").stdout
	r = xpbootStdin(t, dir, []byte(hiveBytes), "hive", "get", "-", `ControlSet001\Services\iScsiPrt`, "Start")
	if r.code != 0 || !strings.Contains(r.stdout, "0") {
		t.Errorf("hive get from standard input: %+v", r)
	}
	if r := xpbootStdin(t, dir, []byte(hiveBytes), "hive", "set", "-", "K", "V", "x"); r.code != 2 {
		t.Errorf("hive set on standard input: %+v", r)
	}
	if r := xpboot(t, dir, "image", "mkdir", "disk.img:/CON"); r.code != 1 || !strings.Contains(r.stderr, "device") {
		t.Errorf("mkdir of a device name: %+v", r)
	}
}
