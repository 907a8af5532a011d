package check_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/check"
	"github.com/xpboot/xpboot/imagefs/convert"
)

// treeEntry is a file (data != nil) or directory (dir) to create.
type treeEntry struct {
	path string
	data []byte
	dir  bool
}

// treeImage makes a 64 MiB disk with file system fs holding entries,
// written by xpboot, in container to.
func treeImage(t *testing.T, fs string, to imagefs.Format, entries []treeEntry) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, fs+".img")
	if _, err := imagefs.Create(raw, imagefs.CreateOptions{Size: 64 << 20, FS: fs, DiskSignature: 0x1234, Serial: 42}); err != nil {
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
	for _, e := range entries {
		if e.dir {
			err = v.MkdirAll(e.path, mtime)
		} else {
			if err = v.MkdirAll(filepath.Dir(e.path), mtime); err == nil {
				err = v.WriteFile(e.path, bytes.NewReader(e.data), int64(len(e.data)), mtime)
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", e.path, err)
		}
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	if to == imagefs.FormatRaw {
		return raw
	}
	out := filepath.Join(dir, fs+"."+string(to))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := convert.Convert(ctx, raw, out, convert.Options{To: to}); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	big     = bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes: several clusters, non-resident on NTFS
	bigEdit = func() []byte { b := bytes.Clone(big); b[300001] = '!'; return b }()
)

// treeA and treeB differ in every way CompareFiles reports, and agree
// on the rest (a long name whose case differs counts as the same file).
var (
	treeA = []treeEntry{
		{path: "/KEEP.TXT", data: []byte("same on both sides")},
		{path: "/CHANGED.TXT", data: []byte("hello world")},
		{path: "/BIG.BIN", data: big},
		{path: "/GROWN.TXT", data: []byte("0123456789")},
		{path: "/GONE.TXT", data: []byte("only in A")},
		{path: "/DIR/SUB/SAME.BIN", data: big},
		{path: "/DIR/SUB/DEEP.TXT", data: []byte("deep, only in A")},
		{path: "/FLIP", data: []byte("a file in A")},
		{path: "/FLIP2/INNER.TXT", data: []byte("in a directory in A")},
		{path: "/Long Name File.txt", data: []byte("long")},
		{path: "/EMPTYDIR", dir: true},
	}
	treeB = []treeEntry{
		{path: "/KEEP.TXT", data: []byte("same on both sides")},
		{path: "/CHANGED.TXT", data: []byte("hello World")},
		{path: "/BIG.BIN", data: bigEdit},
		{path: "/GROWN.TXT", data: []byte("0123456789ab")},
		{path: "/DIR/SUB/SAME.BIN", data: big},
		{path: "/FLIP/INNER.TXT", data: []byte("a directory in B")},
		{path: "/FLIP2", data: []byte("a file in B")},
		{path: "/long name file.TXT", data: []byte("long")},
		{path: "/EMPTYDIR", dir: true},
		{path: "/NEW.TXT", data: []byte("only in B")},
		{path: "/NEWDIR/X.TXT", data: []byte("x")},
	}
	// wantDiffs is what comparing A with B must give, in order.
	wantDiffs = []check.FileDiff{
		{Path: "/BIG.BIN", Change: "changed", SizeA: int64(len(big)), SizeB: int64(len(big)), Offset: 300001},
		{Path: "/CHANGED.TXT", Change: "changed", SizeA: 11, SizeB: 11, Offset: 6},
		{Path: "/DIR/SUB/DEEP.TXT", Change: "removed", SizeA: 15, Offset: -1},
		{Path: "/FLIP", Change: "type", SizeA: 11, Offset: -1},
		{Path: "/FLIP2", Change: "type", SizeB: 11, Offset: -1},
		{Path: "/GONE.TXT", Change: "removed", SizeA: 9, Offset: -1},
		{Path: "/GROWN.TXT", Change: "changed", SizeA: 10, SizeB: 12, Offset: 10},
		{Path: "/NEW.TXT", Change: "added", SizeB: 9, Offset: -1},
		{Path: "/NEWDIR", Change: "added", Offset: -1, Dir: true},
	}
)

// sameDiff compares the fields that do not depend on the file system
// (directory sizes do).
func sameDiff(a, b check.FileDiff) bool {
	if a.Change == "type" || a.Dir {
		a.SizeA, a.SizeB, b.SizeA, b.SizeB = 0, 0, 0, 0
	}
	return strings.EqualFold(a.Path, b.Path) && a.Change == b.Change && a.SizeA == b.SizeA && a.SizeB == b.SizeB && a.Offset == b.Offset && a.Dir == b.Dir
}

func TestCompareFiles(t *testing.T) {
	fatA := treeImage(t, "fat32", imagefs.FormatRaw, treeA)
	fatB := treeImage(t, "fat32", imagefs.FormatVMDKSparse, treeB)
	ntfsA := treeImage(t, "ntfs", imagefs.FormatVHDDynamic, treeA)
	ntfsB := treeImage(t, "ntfs", imagefs.FormatVMDKStream, treeB)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{"fat32 raw vs fat32 vmdk", fatA, fatB, false},
		{"ntfs vhd vs ntfs vmdk-stream", ntfsA, ntfsB, false},
		{"fat32 raw vs ntfs vmdk-stream", fatA, ntfsB, false},
		{"ntfs vhd vs fat32 vmdk", ntfsA, fatB, false},
		{"fat32 vs ntfs, same tree", fatA, ntfsA, true},
		{"ntfs vs itself", ntfsB, ntfsB, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := check.CompareFiles(ctx, tc.a, 0, tc.b, 1, false)
			if err != nil {
				t.Fatal(err)
			}
			if res.PartitionA != 0 || res.PartitionB != 1 {
				t.Errorf("partitions %d, %d, want 0, 1", res.PartitionA, res.PartitionB)
			}
			want := wantDiffs
			if tc.same {
				want = nil
			}
			if len(res.Diffs) != len(want) {
				t.Fatalf("%d differences, want %d:\n got %+v\nwant %+v", len(res.Diffs), len(want), res.Diffs, want)
			}
			for i := range want {
				if !sameDiff(res.Diffs[i], want[i]) {
					t.Errorf("difference %d: got %+v, want %+v", i, res.Diffs[i], want[i])
				}
			}
			// Files present on both sides as files: KEEP, CHANGED, BIG,
			// GROWN, SAME.BIN and the long name (and, in the same tree,
			// GONE, DEEP and FLIP2/INNER as well, with FLIP).
			wantFiles := 6
			if tc.same {
				wantFiles = len(treeA) - 1
			}
			if res.Files != wantFiles {
				t.Errorf("%d files compared, want %d", res.Files, wantFiles)
			}
		})
	}
	t.Run("no such partition", func(t *testing.T) {
		if _, err := check.CompareFiles(ctx, fatA, 3, fatB, 0, false); err == nil {
			t.Fatal("partition 3 of a one-partition disk compared")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		c, stop := context.WithCancel(ctx)
		stop()
		if _, err := check.CompareFiles(c, fatA, 0, ntfsB, 0, false); err == nil {
			t.Fatal("a cancelled comparison succeeded")
		}
	})
}
