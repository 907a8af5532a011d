package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
)

// CompareOptions tunes Compare.
type CompareOptions struct {
	// Strict makes disks of different sizes differ, as qemu-img compare -s.
	Strict bool
	// Unlocked reads images another process holds.
	Unlocked bool
	// Progress, if set, is called with the bytes of the virtual disk
	// compared so far and the total.
	Progress func(done, total int64)
}

// CompareResult is the outcome of Compare.
type CompareResult struct {
	A         string `json:"a"`
	B         string `json:"b"`
	SizeA     int64  `json:"size_a"`
	SizeB     int64  `json:"size_b"`
	Identical bool   `json:"identical"`
	// FirstDiff is the offset of the first byte that differs, or -1.
	FirstDiff int64 `json:"first_difference"`
	// Reason says why the disks differ: "content", "size" (Strict), or
	// "" when identical.
	Reason string `json:"reason,omitempty"`
	// BytesRead counts the bytes read from both disks; ranges both store
	// as unallocated are not read.
	BytesRead int64 `json:"bytes_read"`
}

// compareChunk is the largest piece read at once from each side.
const compareChunk = 1 << 20

// Compare compares the virtual disks a and b; see the package
// documentation. The error is non-nil when either cannot be read.
func Compare(ctx context.Context, a, b string, opts CompareOptions) (*CompareResult, error) {
	open := func(p string) (blockdev.Device, imagefs.Format, error) { return imagefs.OpenDevice(p, false) }
	if opts.Unlocked {
		open = imagefs.OpenDeviceUnlocked
	}
	da, _, err := open(a)
	if err != nil {
		return nil, err
	}
	defer da.Close()
	db, _, err := open(b)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res := &CompareResult{A: a, B: b, SizeA: da.Size(), SizeB: db.Size(), FirstDiff: -1}
	if opts.Strict && res.SizeA != res.SizeB {
		res.Reason = "size"
		res.FirstDiff = min(res.SizeA, res.SizeB)
		return res, nil
	}
	common := min(res.SizeA, res.SizeB)
	total := max(res.SizeA, res.SizeB)
	diff, err := compareRange(ctx, da, db, 0, common, res, total, opts.Progress)
	if err != nil {
		return nil, err
	}
	if diff < 0 && res.SizeA != res.SizeB {
		longer, name := da, a
		if res.SizeB > res.SizeA {
			longer, name = db, b
		}
		if diff, err = compareRange(ctx, longer, nil, common, total-common, res, total, opts.Progress); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if diff >= 0 {
		res.FirstDiff, res.Reason = diff, "content"
		return res, nil
	}
	res.Identical = true
	return res, nil
}

// compareRange compares [off, off+n) of a with b, or with zeros when b is
// nil, and returns the first differing offset or -1.
func compareRange(ctx context.Context, a, b blockdev.Device, off, n int64, res *CompareResult, total int64, progress func(done, total int64)) (int64, error) {
	ba, bb := make([]byte, compareChunk), make([]byte, compareChunk)
	zero := make([]byte, compareChunk)
	end := off + n
	for pos := off; pos < end; {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		// Look ahead through the allocation of both sides; a window keeps
		// the extent lists short on large, fragmented disks.
		win := min(end-pos, 1<<30)
		za, err := zeroRanges(a, pos, win)
		if err != nil {
			return -1, err
		}
		zb := []blockdev.Extent{{Off: pos, Len: win, State: blockdev.Zero}}
		if b != nil {
			if zb, err = zeroRanges(b, pos, win); err != nil {
				return -1, err
			}
		}
		for _, r := range mergeStates(za, zb, pos, pos+win) {
			if r.bothZero {
				continue
			}
			for p := r.off; p < r.off+r.n; {
				m := min(compareChunk, r.off+r.n-p)
				x, y := ba[:m], bb[:m]
				if r.aZero {
					x = zero[:m]
				} else if _, err := a.ReadAt(x, p); err != nil {
					return -1, err
				} else {
					res.BytesRead += m
				}
				if r.bZero {
					y = zero[:m]
				} else if _, err := b.ReadAt(y, p); err != nil {
					return -1, err
				} else {
					res.BytesRead += m
				}
				if !bytes.Equal(x, y) {
					i := 0
					for x[i] == y[i] {
						i++
					}
					return p + int64(i), nil
				}
				p += m
				if progress != nil {
					progress(p, total)
				}
			}
		}
		pos += win
	}
	return -1, nil
}

// zeroRanges returns the extents of d in [off, off+n), Parent counted as
// data (it must be read).
func zeroRanges(d blockdev.Device, off, n int64) ([]blockdev.Extent, error) {
	ext, err := d.Extents(off, n)
	if err != nil {
		return nil, err
	}
	return ext, nil
}

type cmpRange struct {
	off, n                 int64
	aZero, bZero, bothZero bool
}

// mergeStates splits [from, to) at every extent boundary of either side.
func mergeStates(a, b []blockdev.Extent, from, to int64) []cmpRange {
	var out []cmpRange
	i, j := 0, 0
	for pos := from; pos < to; {
		for i < len(a) && a[i].Off+a[i].Len <= pos {
			i++
		}
		for j < len(b) && b[j].Off+b[j].Len <= pos {
			j++
		}
		end := to
		az, bz := false, false
		if i < len(a) {
			end = min(end, a[i].Off+a[i].Len)
			az = a[i].State == blockdev.Zero
		}
		if j < len(b) {
			end = min(end, b[j].Off+b[j].Len)
			bz = b[j].State == blockdev.Zero
		}
		if end <= pos {
			end = to // extents that do not cover the range: read it
			az, bz = false, false
		}
		out = append(out, cmpRange{off: pos, n: end - pos, aZero: az, bZero: bz, bothZero: az && bz})
		pos = end
	}
	return out
}

// FileDiff is one difference between two file trees.
type FileDiff struct {
	Path   string `json:"path"`
	Change string `json:"change"` // "added" (only in B), "removed" (only in A), "changed" (content), "type" (file vs directory)
	SizeA  int64  `json:"size_a"`
	SizeB  int64  `json:"size_b"`
	// Offset is the first differing byte of a changed file, or -1.
	Offset int64 `json:"offset"`
	Dir    bool  `json:"dir,omitempty"`
}

// FilesResult is the outcome of CompareFiles.
type FilesResult struct {
	A, B       string     `json:"-"`
	PartitionA int        `json:"partition_a"`
	PartitionB int        `json:"partition_b"`
	Files      int        `json:"files_compared"`
	Diffs      []FileDiff `json:"differences"`
}

// CompareFiles compares the file trees of partition pa of image a and
// partition pb of image b (0: the active partition). Names match
// case-insensitively, as on Windows; files of the same size are compared
// byte by byte. The error is non-nil when either side cannot be read.
func CompareFiles(ctx context.Context, a string, pa int, b string, pb int, unlocked bool) (*FilesResult, error) {
	fa, closeA, err := openFS(a, pa, unlocked)
	if err != nil {
		return nil, err
	}
	defer closeA()
	fb, closeB, err := openFS(b, pb, unlocked)
	if err != nil {
		return nil, err
	}
	defer closeB()
	res := &FilesResult{A: a, B: b, PartitionA: pa, PartitionB: pb, Diffs: []FileDiff{}}
	if err := compareDir(ctx, fa, fb, "/", res, 0); err != nil {
		return nil, err
	}
	return res, nil
}

func openFS(p string, part int, unlocked bool) (imagefs.FS, func(), error) {
	var img *imagefs.Image
	var err error
	if unlocked {
		img, err = imagefs.OpenUnlocked(p)
	} else {
		img, err = imagefs.Open(p, false)
	}
	if err != nil {
		return nil, nil, err
	}
	fs, err := img.FS(part)
	if err != nil {
		img.Close()
		return nil, nil, err
	}
	return fs, func() { img.Close() }, nil
}

func listing(fs imagefs.FS, dir string) (map[string]imagefs.FileInfo, []string, error) {
	list, err := fs.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	m := map[string]imagefs.FileInfo{}
	var keys []string
	for _, fi := range list {
		k := strings.ToUpper(fi.Name())
		if _, dup := m[k]; dup {
			continue
		}
		m[k] = fi
		keys = append(keys, k)
	}
	return m, keys, nil
}

func compareDir(ctx context.Context, fa, fb imagefs.FS, dir string, res *FilesResult, depth int) error {
	if depth > 256 {
		return fmt.Errorf("%s: directories nested deeper than 256 levels", dir)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ma, ka, err := listing(fa, dir)
	if err != nil {
		return fmt.Errorf("%s: A: %w", dir, err)
	}
	mb, kb, err := listing(fb, dir)
	if err != nil {
		return fmt.Errorf("%s: B: %w", dir, err)
	}
	keys := append(ka, kb...)
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 && keys[i-1] == k {
			continue
		}
		x, y := ma[k], mb[k]
		name := ""
		switch {
		case x != nil:
			name = x.Name()
		default:
			name = y.Name()
		}
		if isMeta(dir, name) {
			continue
		}
		p := path.Join(dir, name)
		switch {
		case y == nil:
			res.Diffs = append(res.Diffs, FileDiff{Path: p, Change: "removed", SizeA: x.Size(), Offset: -1, Dir: x.IsDir()})
		case x == nil:
			res.Diffs = append(res.Diffs, FileDiff{Path: p, Change: "added", SizeB: y.Size(), Offset: -1, Dir: y.IsDir()})
		case x.IsDir() != y.IsDir():
			res.Diffs = append(res.Diffs, FileDiff{Path: p, Change: "type", SizeA: x.Size(), SizeB: y.Size(), Offset: -1})
		case x.IsDir():
			if err := compareDir(ctx, fa, fb, p, res, depth+1); err != nil {
				return err
			}
		default:
			res.Files++
			off, err := compareFile(ctx, fa, fb, p, x.Size(), y.Size())
			if err != nil {
				return err
			}
			if off >= 0 {
				res.Diffs = append(res.Diffs, FileDiff{Path: p, Change: "changed", SizeA: x.Size(), SizeB: y.Size(), Offset: off})
			}
		}
	}
	return nil
}

// ntfsMeta names the NTFS metadata files of the root, which differ
// between any two volumes and are no user's files.
var ntfsMeta = map[string]bool{"$MFT": true, "$MFTMIRR": true, "$LOGFILE": true, "$VOLUME": true, "$ATTRDEF": true,
	"$BITMAP": true, "$BOOT": true, "$BADCLUS": true, "$SECURE": true, "$UPCASE": true, "$EXTEND": true, "$QUOTA": true}

func isMeta(dir, name string) bool { return dir == "/" && ntfsMeta[strings.ToUpper(name)] }

// compareFile returns the first differing offset of the two files, or -1.
func compareFile(ctx context.Context, fa, fb imagefs.FS, p string, sa, sb int64) (int64, error) {
	a, err := fa.Open(p)
	if err != nil {
		return -1, fmt.Errorf("A: %s: %w", p, err)
	}
	b, err := fb.Open(p)
	if err != nil {
		return -1, fmt.Errorf("B: %s: %w", p, err)
	}
	x, y := make([]byte, compareChunk), make([]byte, compareChunk)
	n := min(sa, sb)
	for pos := int64(0); pos < n; pos += compareChunk {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		m := min(compareChunk, n-pos)
		if _, err := a.ReadAt(x[:m], pos); err != nil && !errors.Is(err, io.EOF) {
			return -1, fmt.Errorf("A: %s: %w", p, err)
		}
		if _, err := b.ReadAt(y[:m], pos); err != nil && !errors.Is(err, io.EOF) {
			return -1, fmt.Errorf("B: %s: %w", p, err)
		}
		if !bytes.Equal(x[:m], y[:m]) {
			i := 0
			for x[i] == y[i] {
				i++
			}
			return pos + int64(i), nil
		}
	}
	if sa != sb {
		return n, nil
	}
	return -1, nil
}
