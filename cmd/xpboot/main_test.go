package main

import (
	"log/slog"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/urfave/cli/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// xpbootBinary is the binary built once for the tests that run the command
// as a user would, to check exit statuses and output streams.
var xpbootBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xpboot-test-")
	if err != nil {
		panic(err)
	}
	xpbootBinary = filepath.Join(dir, "xpboot")
	// Built as README builds it, so that the tests run what users run.
	build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs", "-o", xpbootBinary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// xpboot runs the binary with args in dir.
func xpboot(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, xpbootBinary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("xpboot %q: %v", args, err)
	}
	return r
}

func TestVersionAndHelp(t *testing.T) {
	r := xpboot(t, "", "--version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "xpboot version ") {
		t.Errorf("--version: %+v", r)
	}
	r = xpboot(t, "", "--help")
	for _, group := range []string{"image", "hive", "integrate", "serve", "sanboot", "completion"} {
		if !strings.Contains(r.stdout, group) {
			t.Errorf("--help does not list %s", group)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := xpboot(t, "", "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "xpboot") {
			t.Errorf("completion %s: %+v", sh, r)
		}
	}
	r := xpboot(t, "", "__complete", "image", "")
	if !strings.Contains(r.stdout, "create") || !strings.Contains(r.stdout, "put") {
		t.Errorf("completion words for image: %q", r.stdout)
	}
	if r := xpboot(t, "", "completion", "tcsh"); r.code == 0 {
		t.Error("unknown shell accepted")
	}
}

func TestLogFormats(t *testing.T) {
	dir := t.TempDir()
	r := xpboot(t, dir, "--log-format", "json", "--log-level", "debug", "image", "create", "--size", "64M", "d.img")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(r.stderr, "\n", 2)[0]), &rec); err != nil || rec["msg"] != "image created" {
		t.Errorf("log line %q: %v", r.stderr, err)
	}
	if r := xpboot(t, dir, "--log-format", "xml", "image", "info", "d.img"); r.code == 0 {
		t.Error("bad --log-format accepted")
	}
}

func TestImageCommands(t *testing.T) {
	dir := t.TempDir()
	r := xpboot(t, dir, "image", "create", "--size", "128M", "--label", "SETUP", "--disk-signature", "cafe0001", "disk.img")
	if r.code != 0 || !strings.Contains(r.stdout, "cafe0001") {
		t.Fatalf("create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "create", "--size", "128M", "disk.img"); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("create over existing: %+v", r)
	}
	r = xpboot(t, dir, "image", "info", "--json", "disk.img")
	var info struct {
		Format        string `json:"format"`
		VirtualSize   int64  `json:"virtual_size"`
		DiskSignature string `json:"disk_signature"`
		Partitions    []struct {
			StartLBA   uint32 `json:"start_lba"`
			Active     bool   `json:"active"`
			FS         string `json:"filesystem"`
			Label      string `json:"label"`
			CHSMatches bool   `json:"chs_matches_lba"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, r.stdout)
	}
	if info.Format != "raw" || info.VirtualSize != 128<<20 || info.DiskSignature != "cafe0001" || len(info.Partitions) != 1 ||
		info.Partitions[0].StartLBA != 63 || !info.Partitions[0].Active || info.Partitions[0].FS != "fat32" ||
		info.Partitions[0].Label != "SETUP" || !info.Partitions[0].CHSMatches {
		t.Errorf("info: %+v", info)
	}

	os.MkdirAll(filepath.Join(dir, "tree", "I386", "SYSTEM32"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "I386", "SYSTEM32", "hal.dll"), bytes.Repeat([]byte("hal"), 9999), 0o644)
	os.WriteFile(filepath.Join(dir, "tree", "boot.ini"), []byte("[boot loader]\r\n"), 0o644)
	r = xpboot(t, dir, "image", "put", "--json", "tree/I386", "tree/boot.ini", "disk.img:/")
	if r.code != 0 || !strings.Contains(r.stdout, `"files": 2`) {
		t.Fatalf("put: %+v", r)
	}
	if r := xpboot(t, dir, "image", "mkdir", "disk.img:/a/b"); r.code != 0 {
		t.Fatalf("mkdir: %+v", r)
	}
	r = xpboot(t, dir, "image", "ls", "disk.img")
	for _, want := range []string{"I386", "boot.ini", "a"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ls lacks %s:\n%s", want, r.stdout)
		}
	}
	r = xpboot(t, dir, "image", "ls", "--json", "disk.img:/i386/system32")
	if !strings.Contains(r.stdout, `"name": "hal.dll"`) || !strings.Contains(r.stdout, `"short_name": "HAL.DLL"`) {
		t.Errorf("ls --json: %s", r.stdout)
	}
	if r := xpboot(t, dir, "image", "get", "disk.img:/I386", "out"); r.code != 0 {
		t.Fatalf("get: %+v", r)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out", "SYSTEM32", "hal.dll"))
	if !bytes.Equal(got, bytes.Repeat([]byte("hal"), 9999)) {
		t.Error("get round trip differs")
	}
	if r := xpboot(t, dir, "image", "rm", "disk.img:/boot.ini"); r.code != 0 {
		t.Errorf("rm: %+v", r)
	}
	for _, bad := range [][]string{
		{"image", "get", "disk.img:/missing", "x"},
		{"image", "ls", "nonexistent.img"},
		{"image", "info", "tree/boot.ini"},
		{"image", "create", "--size", "10M", "small.img"},
		{"image", "create", "--size", "lots", "x.img"},
	} {
		r := xpboot(t, dir, bad...)
		if r.code == 0 || r.stderr == "" || strings.Contains(r.stderr, "panic") {
			t.Errorf("%q: %+v", bad, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "small.img")); err == nil {
		t.Error("refused create left a file")
	}
}

// TestHiveInsideImage edits a hive stored in a FAT32 image through IMG:/path.
func TestHiveInsideImage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"image", "create", "--size", "64M", "disk.img"},
		{"hive", "new", "SYSTEM"},
		{"image", "put", "SYSTEM", "disk.img:/WINDOWS/system32/config/SYSTEM"},
		{"hive", "set", "--type", "dword", "disk.img:/windows/system32/config/system", `ControlSet001\Services\iScsiPrt`, "Start", "0"},
	} {
		if r := xpboot(t, dir, args...); r.code != 0 {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	r := xpboot(t, dir, "hive", "get", "disk.img:/WINDOWS/system32/config/SYSTEM", `ControlSet001\Services\iScsiPrt`, "Start")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "0" && !strings.Contains(r.stdout, "0x00000000") {
		t.Errorf("get: %+v", r)
	}
	if r := xpboot(t, dir, "hive", "check", "disk.img:/WINDOWS/system32/config/SYSTEM"); r.code != 0 {
		t.Errorf("check: %+v", r)
	}
	r = xpboot(t, dir, "hive", "get", "disk.img:/WINDOWS/system32/config/SYSTEM", `NoSuchKey`, "x")
	if r.code == 0 || !strings.Contains(r.stderr, "NoSuchKey") || strings.Contains(r.stderr, "xpboot-edit") {
		t.Errorf("error should name the key, not the temporary copy: %+v", r)
	}
	// The local hive file is untouched; the copy in the image changed.
	if r := xpboot(t, dir, "hive", "ls", "SYSTEM"); strings.Contains(r.stdout, "ControlSet001") {
		t.Error("local SYSTEM changed")
	}
}

// runInProcess runs one command group in-process, on an app holding only
// that command, and returns its stdout, its stderr (logs included), the
// exit code it would have had and the error.
func runInProcess(command func(*env) *cli.Command, name string, args ...string) (stdout, stderr string, code int, err error) {
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, log: slog.New(slog.NewTextHandler(&errb, nil))}
	app := &cli.App{
		Name:           "xpboot",
		Writer:         &out,
		ErrWriter:      &errb,
		Commands:       []*cli.Command{command(e)},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"xpboot", name}, args...))
	if err != nil {
		code = 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		}
	}
	return out.String(), errb.String(), code, err
}
