package imagefs_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/convert"
	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
)

// TestNTFSContainers writes NTFS inside every writable container: put,
// mkdir, overwrite and rm -r through imagefs, then converts the result
// back to raw and runs every NTFS checker on it. streamOptimized VMDKs
// stay read-only.
func TestNTFSContainers(t *testing.T) {
	ntfstest.NeedPeers(t)
	fx := ntfstest.Build(t, ntfstest.FixtureBasic)
	src := t.TempDir()
	files := map[string][]byte{
		"drivers/e1000.sys":        ntfstest.Content("e1000", 120_000),
		"drivers/oemsetup.inf":     []byte("[Version]\r\nSignature=\"$Windows NT$\"\r\n"),
		"drivers/Long Name 1.txt":  ntfstest.Content("long", 3000),
		"drivers/sub/deeper/a.bin": ntfstest.Content("a", 70_000),
	}
	for p, b := range files {
		full := filepath.Join(src, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, format := range []imagefs.Format{imagefs.FormatRaw, imagefs.FormatVMDKSparse, imagefs.FormatVMDKFlat, imagefs.FormatVHDDynamic, imagefs.FormatVHDFixed} {
		t.Run(string(format), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			dir := t.TempDir()
			img := filepath.Join(dir, "disk."+string(format))
			if _, err := convert.Convert(ctx, fx.Image, img, convert.Options{To: format}); err != nil {
				t.Fatal(err)
			}
			want := fx.Want.Clone()
			im, err := imagefs.Open(img, true)
			if err != nil {
				t.Fatal(err)
			}
			fsys, err := im.FS(0)
			if err != nil {
				t.Fatal(err)
			}
			if fsys.Type() != imagefs.FSNTFS {
				t.Fatalf("file system %s", fsys.Type())
			}
			if err := fsys.MkdirAll("/WINDOWS/system32", time.Now()); err != nil {
				t.Fatal(err)
			}
			want["WINDOWS"], want["WINDOWS/system32"] = ntfstest.Dir, ntfstest.Dir
			if _, err := imagefs.Put(fsys, []string{filepath.Join(src, "drivers")}, "/WINDOWS/system32/", nil); err != nil {
				t.Fatal(err)
			}
			for p, b := range files {
				want["WINDOWS/system32/"+p] = ntfstest.Hash(b)
				for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
					want["WINDOWS/system32/"+d] = ntfstest.Dir
				}
			}
			hive := bytes.Repeat([]byte("regf"), 300_000)
			if err := imagefs.PutFrom(fsys, bytes.NewReader(hive), "/WINDOWS/system32/drivers/e1000.sys", time.Now()); err != nil {
				t.Fatal(err)
			}
			want["WINDOWS/system32/drivers/e1000.sys"] = ntfstest.Hash(hive)
			if err := imagefs.RemoveAll(fsys, "/WINDOWS/system32/drivers/sub"); err != nil {
				t.Fatal(err)
			}
			for p := range want {
				if strings.HasPrefix(p, "WINDOWS/system32/drivers/sub") {
					delete(want, p)
				}
			}
			if err := im.Close(); err != nil {
				t.Fatal(err)
			}
			raw := filepath.Join(dir, "back.img")
			if _, err := convert.Convert(ctx, img, raw, convert.Options{To: imagefs.FormatRaw}); err != nil {
				t.Fatal(err)
			}
			ntfstest.Check(t, raw, fx.Offset, want)
		})
	}
	t.Run("vmdk-stream is read-only", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		img := filepath.Join(t.TempDir(), "disk.vmdk")
		if _, err := convert.Convert(ctx, fx.Image, img, convert.Options{To: imagefs.FormatVMDKStream}); err != nil {
			t.Fatal(err)
		}
		if im, err := imagefs.Open(img, true); err == nil {
			im.Close()
			t.Fatal("streamOptimized VMDK opened writable")
		}
		im, err := imagefs.Open(img, false)
		if err != nil {
			t.Fatal(err)
		}
		defer im.Close()
		fsys, err := im.FS(0)
		if err != nil {
			t.Fatal(err)
		}
		if err := fsys.Mkdir("/x", time.Now()); err == nil {
			t.Fatal("write to a read-only image accepted")
		}
	})
}
