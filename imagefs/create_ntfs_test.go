package imagefs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/convert"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestCreateNTFS creates NTFS disks in every container, fills them
// through imagefs, converts them back to raw with qemu-img (an independent
// reader of the container) and runs every NTFS checker on the partition.
func TestCreateNTFS(t *testing.T) {
	ntfstest.NeedPeers(t)
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	tests := []struct {
		format  imagefs.Format
		size    int64
		cluster int
	}{
		{imagefs.FormatRaw, 64 << 20, 0},
		{imagefs.FormatVMDKSparse, 1 << 30, 0},
		{imagefs.FormatVHDDynamic, 8 << 30, 4096},
		{imagefs.FormatVMDKStream, 256 << 20, 1024},
		{imagefs.FormatVHDFixed, 64 << 20, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			dir := t.TempDir()
			img := filepath.Join(dir, "disk."+string(tt.format))
			res, _, err := convert.CreateImage(ctx, img, tt.format, imagefs.CreateOptions{
				Size: tt.size, FS: imagefs.FSNTFS, Label: "XP NTFS", ClusterSize: tt.cluster,
			}, convert.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Partition.Entry.Type != mbr.TypeNTFS || res.Partition.Entry.Start != 63 {
				t.Errorf("partition type 0x%02x at %d, want 0x07 at 63", res.Partition.Entry.Type, res.Partition.Entry.Start)
			}
			want := ntfstest.Tree{}
			if tt.format != imagefs.FormatVMDKStream {
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
				if err := fsys.MkdirAll("/WINDOWS/system32/drivers", time.Now()); err != nil {
					t.Fatal(err)
				}
				data := ntfstest.Content("ntldr", 250_000)
				if err := fsys.WriteFile("/ntldr", strings.NewReader(string(data)), int64(len(data)), time.Now()); err != nil {
					t.Fatal(err)
				}
				if err := im.Close(); err != nil {
					t.Fatal(err)
				}
				want = ntfstest.Tree{"WINDOWS": ntfstest.Dir, "WINDOWS/system32": ntfstest.Dir,
					"WINDOWS/system32/drivers": ntfstest.Dir, "ntldr": ntfstest.Hash(data)}
			}
			raw := filepath.Join(dir, "back.img")
			peertest.Run(t, 5*time.Minute, qemuImg, "convert", "-O", "raw", img, raw)
			ntfstest.Check(t, raw, res.Partition.Offset, want)
		})
	}
}

// TestCreateNTFSRefusals: sizes and options the formatter cannot take give
// a clear error and leave no file behind.
func TestCreateNTFSRefusals(t *testing.T) {
	tests := []struct {
		name string
		opts imagefs.CreateOptions
		want string
	}{
		{"too small", imagefs.CreateOptions{Size: 9 << 20}, "too small"},
		{"bad cluster size", imagefs.CreateOptions{Size: 64 << 20, ClusterSize: 3000}, "cluster size 3000"},
		{"label too long", imagefs.CreateOptions{Size: 64 << 20, Label: strings.Repeat("L", 40)}, "at most 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "disk.img")
			tt.opts.FS = imagefs.FSNTFS
			_, err := imagefs.Create(p, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create: %v, want an error mentioning %q", err, tt.want)
			}
			if tt.name != "too small" && !errors.Is(err, ntfs.ErrFormatOptions) {
				t.Errorf("error %v does not wrap ntfs.ErrFormatOptions", err)
			}
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after a refused create", p)
			}
			if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 0 {
				t.Errorf("refused create left %d files", len(ents))
			}
		})
	}
	_, err := imagefs.Create(filepath.Join(t.TempDir(), "x.img"), imagefs.CreateOptions{Size: 64 << 20, FS: imagefs.FSFAT32, ClusterSize: 4096})
	if err == nil {
		t.Error("a cluster size for FAT32 was accepted")
	}
}
