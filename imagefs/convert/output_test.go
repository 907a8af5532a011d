package convert

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// TestExistsIsOneError: an existing output is refused with an error that
// errors.Is matches against both names of the one sentinel (and
// fs.ErrExist), also when the output is the base of a delta disk.
func TestExistsIsOneError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	makeSource(t, src, 16<<20)
	base := filepath.Join(dir, "base.vmdk")
	if _, err := Convert(ctx, src, base, Options{To: imagefs.FormatVMDKSparse}); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error) {
		t.Helper()
		for _, target := range []error{ErrExists, imagefs.ErrExists, fs.ErrExist} {
			if !errors.Is(err, target) {
				t.Errorf("%s: %v does not match %v", what, err, target)
			}
		}
		if err == nil || !strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "--force") {
			t.Errorf("%s: %v, want the output named and --force suggested", what, err)
		}
	}
	_, err := Convert(ctx, src, base, Options{To: imagefs.FormatVMDKSparse})
	check("existing output", err)
	d, err := vmdk.CreateDelta(filepath.Join(dir, "client1.vmdk"), base, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, err = Convert(ctx, src, base, Options{To: imagefs.FormatVMDKSparse})
	check("base of a delta", err)
	if err == nil || !strings.Contains(err.Error(), "client1.vmdk") {
		t.Errorf("base of a delta: %v, want the delta named", err)
	}
}

// TestReplacedOutputKeepsMode: a forced conversion over existing files
// keeps their permissions (every file of a flat VMDK), with and without
// Sync, and leaves no temporary file.
func TestReplacedOutputKeepsMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	makeSource(t, src, 16<<20)
	for _, to := range []imagefs.Format{imagefs.FormatVHDDynamic, imagefs.FormatVMDKFlat, imagefs.FormatVMDKStream} {
		for _, sync := range []bool{false, true} {
			out := filepath.Join(dir, fmt.Sprintf("out-%s-%v.img", to, sync))
			if _, err := Convert(ctx, src, out, Options{To: to}); err != nil {
				t.Fatal(err)
			}
			files := []string{out}
			if to == imagefs.FormatVMDKFlat {
				files = append(files, FlatExtentPath(out))
			}
			for _, f := range files {
				os.Chmod(f, 0o600)
			}
			if _, err := Convert(ctx, src, out, Options{To: to, Force: true, Sync: sync}); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("%s sync=%v: %s: mode %v (%v), want the replaced 0600", to, sync, f, st.Mode().Perm(), err)
				}
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "xpboot-tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestResizeRewriteKeepsMode: a resize that copies a VHD or VMDK into a new
// file (shrinking does) keeps the file's permissions and leaves no
// temporary file.
func TestResizeRewriteKeepsMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	for _, to := range []imagefs.Format{imagefs.FormatVHDDynamic, imagefs.FormatVMDKSparse} {
		path := filepath.Join(dir, "disk-"+string(to))
		big, _, err := OutputSize(to, 32<<20, false)
		if err != nil {
			t.Fatal(err)
		}
		small, _, err := OutputSize(to, 16<<20, false)
		if err != nil {
			t.Fatal(err)
		}
		d, err := CreateDevice(path, to, big, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o600)
		var rewrite bool
		if to == imagefs.FormatVHDDynamic {
			p, err := vhd.Resize(ctx, path, small)
			if err != nil {
				t.Fatal(err)
			}
			rewrite = p.Rewrite
		} else {
			p, err := vmdk.Resize(ctx, path, small)
			if err != nil {
				t.Fatal(err)
			}
			rewrite = p.Rewrite
		}
		if !rewrite {
			t.Fatalf("%s: shrinking did not rewrite the file", to)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600 kept", to, st.Mode().Perm(), err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("in the directory: %v, want the two disks", ents)
	}
}
