package check_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/check"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestFileSystemKinds: which file system check runs on a partition of type
// 0x07 is fsid's answer from the boot sector: FAT32 and NTFS are checked
// (a damaged FAT32 boot sector too, its fault reported at its offset),
// FAT16 and an unformatted partition are skipped.
func TestFileSystemKinds(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	dir := t.TempDir()
	volume := func(size int64, prog string, args ...string) []byte {
		return peertest.Volume(t, size, prog, args...)
	}
	tests := []struct {
		name    string
		vol     func(size int64) []byte
		kind    string
		skipped bool
		finding string // an error finding's message, "" for none
		at      int64  // its offset in the partition
	}{
		{"FAT32", func(n int64) []byte { return volume(n, mkfs, "-F", "32", "-s", "1", "-h", "63") }, imagefs.FSFAT32, false, "", 0},
		{"FAT32 without 55 AA", func(n int64) []byte {
			b := volume(n, mkfs, "-F", "32", "-s", "1", "-h", "63")
			b[510] = 0
			return b
		}, imagefs.FSFAT32, false, "55 AA", 510},
		{"NTFS", func(n int64) []byte { return volume(n, mkntfs, "-F", "-Q", "-q", "-p", "63", "-H", "255", "-S", "63") }, imagefs.FSNTFS, false, "", 0},
		{"FAT16", func(n int64) []byte { return volume(n, mkfs, "-F", "16", "-h", "63") }, "type 0x07", true, "", 0},
		{"unformatted", func(int64) []byte { return nil }, "type 0x07", true, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".img")
			res, err := imagefs.Create(path, imagefs.CreateOptions{Size: 64 << 20, FS: "none"})
			if err != nil {
				t.Fatal(err)
			}
			if b := tc.vol(res.Partition.Size); b != nil {
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.WriteAt(b, res.Partition.Offset)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			r := mustCheck(t, path)
			var fs *check.Checked
			for i := range r.Checked {
				if r.Checked[i].What == "file system" {
					fs = &r.Checked[i]
				}
			}
			if fs == nil || fs.Kind != tc.kind || (fs.Skipped != "") != tc.skipped {
				t.Fatalf("checked %+v, want a file system stage of kind %q (skipped %v)", r.Checked, tc.kind, tc.skipped)
			}
			var errs []check.Finding
			for _, f := range r.Findings {
				if f.Severity == check.SeverityError {
					errs = append(errs, f)
				}
			}
			if tc.finding == "" {
				if len(errs) != 0 {
					t.Fatalf("findings:\n%s", structures(r))
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs[0].Message, tc.finding) || errs[0].Offset != res.Partition.Offset+tc.at {
				t.Errorf("findings:\n%s\nwant an error saying %q at byte %d", structures(r), tc.finding, res.Partition.Offset+tc.at)
			}
		})
	}
}
