package check_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/check"
	"github.com/xpboot/xpboot/imagefs/convert"
	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
	"github.com/xpboot/xpboot/internal/peertest"
)

func TestMain(m *testing.M) { os.Exit(ntfstest.Main(m)) }

var mtime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fatImage makes a 64 MiB raw FAT32 disk with a small tree written by
// xpboot's FAT32 writer.
func fatImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fat.img")
	if _, err := imagefs.Create(p, imagefs.CreateOptions{Size: 64 << 20, FS: "fat32", DiskSignature: 0x12345678}); err != nil {
		t.Fatal(err)
	}
	img, err := imagefs.Open(p, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) {
		if err := fs.WriteFile(name, bytes.NewReader(data), int64(len(data)), mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.MkdirAll("/SUB/DEEP", mtime); err != nil {
		t.Fatal(err)
	}
	put("/A.TXT", bytes.Repeat([]byte("a"), 3000))
	put("/B.TXT", bytes.Repeat([]byte("b"), 1500))
	put("/SUB/C.TXT", bytes.Repeat([]byte("c"), 700))
	put("/SUB/DEEP/Long file name.bin", bytes.Repeat([]byte{1, 2, 3}, 10000))
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func structures(r *check.Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.Severity + " " + f.Structure + " @" + strconv.FormatInt(f.Offset, 10) + " " + f.Path + ": " + f.Message + "\n")
	}
	return b.String()
}

func mustCheck(t *testing.T, p string) *check.Report {
	t.Helper()
	r, err := check.Image(context.Background(), p, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCleanImages(t *testing.T) {
	raw := fatImage(t)
	for _, to := range []imagefs.Format{imagefs.FormatRaw, imagefs.FormatVMDKSparse, imagefs.FormatVMDKStream, imagefs.FormatVMDKFlat, imagefs.FormatVHDDynamic, imagefs.FormatVHDFixed} {
		t.Run(string(to), func(t *testing.T) {
			p := raw
			if to != imagefs.FormatRaw {
				p = filepath.Join(t.TempDir(), "out."+string(to))
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if _, err := convert.Convert(ctx, raw, p, convert.Options{To: to}); err != nil {
					t.Fatal(err)
				}
			}
			r := mustCheck(t, p)
			if len(r.Findings) != 0 {
				t.Fatalf("clean %s image has findings:\n%s", to, structures(r))
			}
			if len(r.Checked) < 3 || r.Checked[2].Kind != imagefs.FSFAT32 {
				t.Fatalf("checked %+v, want container, table, fat32", r.Checked)
			}
		})
	}
}

func TestCleanNTFS(t *testing.T) {
	fx := ntfstest.Build(t, ntfstest.FixtureBasic)
	r := mustCheck(t, fx.Image)
	if len(r.Findings) != 0 {
		t.Fatalf("clean NTFS fixture has findings:\n%s", structures(r))
	}
}

// TestCompareAgreesWithQemuImg compares pairs across containers with
// Compare and qemu-img compare: identical pairs, and a pair that differs
// in one byte.
func TestCompareAgreesWithQemuImg(t *testing.T) {
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	raw := fatImage(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vmdkPath, vhdPath := filepath.Join(dir, "d.vmdk"), filepath.Join(dir, "d.vhd")
	for p, to := range map[string]imagefs.Format{vmdkPath: imagefs.FormatVMDKSparse, vhdPath: imagefs.FormatVHDDynamic} {
		if _, err := convert.Convert(ctx, raw, p, convert.Options{To: to}); err != nil {
			t.Fatal(err)
		}
	}
	changed := filepath.Join(dir, "changed.img")
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	const at = 40<<20 + 123
	b[at] ^= 0x5A
	if err := os.WriteFile(changed, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{{raw, vmdkPath, true}, {vmdkPath, vhdPath, true}, {changed, vmdkPath, false}, {vhdPath, changed, false}} {
		res, err := check.Compare(ctx, tc.a, tc.b, check.CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, qerr := peertest.Try(t, time.Minute, qemuImg, "compare", tc.a, tc.b)
		if res.Identical != tc.same || (qerr == nil) != tc.same {
			t.Fatalf("%s vs %s: xpboot identical=%v, qemu-img err=%v, want same=%v", tc.a, tc.b, res.Identical, qerr, tc.same)
		}
		if !tc.same && res.FirstDiff != at {
			t.Fatalf("first difference at %d, want %d", res.FirstDiff, at)
		}
	}
}

// TestImageCancelled: a cancelled check returns the context's error and
// no report, in every container (each stage polls the context).
func TestImageCancelled(t *testing.T) {
	raw := fatImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, to := range []imagefs.Format{imagefs.FormatRaw, imagefs.FormatVMDKSparse, imagefs.FormatVMDKFlat, imagefs.FormatVHDDynamic} {
		p := raw
		if to != imagefs.FormatRaw {
			p = filepath.Join(t.TempDir(), "out."+string(to))
			c, stop := context.WithTimeout(context.Background(), time.Minute)
			if _, err := convert.Convert(c, raw, p, convert.Options{To: to}); err != nil {
				stop()
				t.Fatal(err)
			}
			stop()
		}
		if r, err := check.Image(ctx, p, check.Options{}); !errors.Is(err, context.Canceled) || r != nil {
			t.Errorf("%s: cancelled check gave %v, %v; want context.Canceled and no report", to, r, err)
		}
	}
}

// TestRawNotWholeSectors: a raw image whose size is not a multiple of
// 512 is reported at the first byte of the partial sector (qemu-img check
// has no check for raw images).
func TestRawNotWholeSectors(t *testing.T) {
	p := fatImage(t)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := mustCheck(t, p)
	if len(r.Findings) != 1 || r.Findings[0].Structure != "raw image" || r.Findings[0].Offset != 64<<20 || r.Findings[0].File != p {
		t.Fatalf("findings:\n%s", structures(r))
	}
}
