package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/convert"
)

// checkTree makes a 64 MiB disk with file system fs holding files (a nil
// value makes a directory), in container to.
func checkTree(t *testing.T, fs string, to imagefs.Format, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	if _, err := imagefs.Create(raw, imagefs.CreateOptions{Size: 64 << 20, FS: fs, DiskSignature: 0x1234}); err != nil {
		t.Fatal(err)
	}
	img, err := imagefs.Open(raw, true)
	if err != nil {
		t.Fatal(err)
	}
	v, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for p, data := range files {
		if data == nil {
			err = v.MkdirAll(p, mt)
		} else if err = v.MkdirAll(filepath.Dir(p), mt); err == nil {
			err = v.WriteFile(p, bytes.NewReader(data), int64(len(data)), mt)
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if to == imagefs.FormatRaw {
		return raw
	}
	out := filepath.Join(dir, "disk."+string(to))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := convert.Convert(ctx, raw, out, convert.Options{To: to}); err != nil {
		t.Fatal(err)
	}
	return out
}

func runImage(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	out, errs, code, err := runInProcess(imageCommand, "image", args...)
	if err != nil {
		errs += err.Error()
	}
	return out, errs, code
}

func TestImageCompareFiles(t *testing.T) {
	a := checkTree(t, "fat32", imagefs.FormatRaw, map[string][]byte{
		"/SAME.TXT": []byte("same"), "/EDIT.TXT": []byte("abcdef"), "/OLD.TXT": []byte("old"), "/X": []byte("file"),
	})
	b := checkTree(t, "ntfs", imagefs.FormatVMDKSparse, map[string][]byte{
		"/same.txt": []byte("same"), "/EDIT.TXT": []byte("abcXef"), "/NEW/IN.TXT": []byte("new"), "/X": nil,
	})
	same := checkTree(t, "ntfs", imagefs.FormatVHDDynamic, map[string][]byte{
		"/SAME.TXT": []byte("same"), "/EDIT.TXT": []byte("abcdef"), "/OLD.TXT": []byte("old"), "/X": []byte("file"),
	})

	out, errs, code := runImage(t, "compare", "--files", "--json", a, b+":1")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (different)\n%s%s", code, out, errs)
	}
	var res struct {
		PartitionA int `json:"partition_a"`
		PartitionB int `json:"partition_b"`
		Files      int `json:"files_compared"`
		Diffs      []struct {
			Path   string `json:"path"`
			Change string `json:"change"`
			SizeA  int64  `json:"size_a"`
			SizeB  int64  `json:"size_b"`
			Offset int64  `json:"offset"`
			Dir    bool   `json:"dir"`
		} `json:"differences"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if res.PartitionA != 0 || res.PartitionB != 1 || res.Files != 2 {
		t.Errorf("partitions %d/%d, %d files compared; want 0/1, 2", res.PartitionA, res.PartitionB, res.Files)
	}
	var got []string
	for _, d := range res.Diffs {
		got = append(got, strings.Join([]string{d.Path, d.Change, i64s(d.SizeA), i64s(d.SizeB), i64s(d.Offset), boolStr(d.Dir)}, " "))
	}
	want := []string{
		"/EDIT.TXT changed 6 6 3 false",
		"/NEW added 0 0 -1 true",
		"/OLD.TXT removed 3 0 -1 false",
		"/X type 4 0 -1 false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	out, _, code = runImage(t, "compare", "--files", a, b)
	wantText := "M /EDIT.TXT (6 -> 6 bytes, first difference at byte 3)\n+ /NEW/ (0 bytes)\n- /OLD.TXT (3 bytes)\nT /X (a file on one side, a directory on the other)\n"
	if code != 1 || out != wantText {
		t.Fatalf("exit %d, output:\n%s\nwant:\n%s", code, out, wantText)
	}

	out, errs, code = runImage(t, "compare", "--files", "-p", "1", "-p", "1", a, same)
	if code != 0 || !strings.Contains(out, "File trees are identical (4 files compared)") {
		t.Fatalf("same trees: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code = runImage(t, "compare", "--files", a, filepath.Join(t.TempDir(), "missing.img")); code != 3 {
		t.Fatalf("missing image: exit %d, want 3\n%s", code, errs)
	}
	if _, errs, code = runImage(t, "compare", "-p", "1", a, same); code != 2 {
		t.Fatalf("--partition without --files: exit %d, want 2\n%s", code, errs)
	}
}

func TestImageCheckCommand(t *testing.T) {
	clean := checkTree(t, "fat32", imagefs.FormatVHDDynamic, map[string][]byte{"/A.TXT": []byte("a")})
	out, errs, code := runImage(t, "check", "--json", clean)
	if code != 0 {
		t.Fatalf("clean image: exit %d\n%s%s", code, out, errs)
	}
	var rep struct {
		Format   string            `json:"format"`
		Checked  []json.RawMessage `json:"checked"`
		Findings []json.RawMessage `json:"findings"`
		Clean    bool              `json:"clean"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Clean || rep.Format != "vhd" || len(rep.Checked) != 3 || len(rep.Findings) != 0 {
		t.Fatalf("report %+v (%v):\n%s", rep, err, out)
	}

	// Damage the MBR: a second active partition entry over the first.
	raw := checkTree(t, "fat32", imagefs.FormatRaw, nil)
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[446+16:446+32], b[446:446+16])
	if err := os.WriteFile(raw, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = runImage(t, "check", raw)
	if code != 1 || !strings.Contains(out, "error: partition table (disk byte 0x1be): 2 partitions are marked active") ||
		!strings.Contains(out, "partitions 1 (sectors 63..") {
		t.Fatalf("damaged table: exit %d\n%s", code, out)
	}
	if _, errs, code = runImage(t, "check", filepath.Join(t.TempDir(), "missing.img")); code != 3 {
		t.Fatalf("missing image: exit %d, want 3\n%s", code, errs)
	}
	if _, _, code = runImage(t, "check"); code != 2 {
		t.Fatalf("no argument: exit %d, want 2", code)
	}

	// A cancelled context (main's, on SIGINT) stops the check: exit 130,
	// "interrupted", and no report.
	var stdout, stderr strings.Builder
	app := newApp(nil, &stdout, &stderr)
	code = -1
	saved := cli.OsExiter
	cli.OsExiter = func(c int) { code = c }
	defer func() { cli.OsExiter = saved }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runApp(ctx, app, []string{"xpboot", "image", "check", "--json", clean})
	if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") || stdout.Len() != 0 {
		t.Fatalf("cancelled check: exit %d, stdout %q, stderr %q; want 130, nothing, \"interrupted\"", code, stdout.String(), stderr.String())
	}
}

func i64s(n int64) string { return strconv.FormatInt(n, 10) }

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
