package ntfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// formatNoWrites is a blockdev.ReaderWriterAt that must never be written.
type formatNoWrites struct {
	t *testing.T
}

func (d formatNoWrites) ReadAt(p []byte, off int64) (int, error) { return len(p), nil }
func (d formatNoWrites) WriteAt(p []byte, off int64) (int, error) {
	d.t.Errorf("write of %d bytes at %d after a refused option", len(p), off)
	return len(p), nil
}

func TestFormatBadOptions(t *testing.T) {
	tests := []struct {
		name string
		size int64
		opts FormatOptions
		want string
	}{
		{"too small", 4 << 20, FormatOptions{}, "too small"},
		{"just below the minimum", MinFormatSize - 1, FormatOptions{}, "too small"},
		{"cluster not a power of two", 64 << 20, FormatOptions{ClusterSize: 3072}, "cluster size 3072"},
		{"cluster too small", 64 << 20, FormatOptions{ClusterSize: 256}, "cluster size 256"},
		{"cluster too large", 64 << 20, FormatOptions{ClusterSize: 128 << 10}, "cluster size 131072"},
		{"label too long", 64 << 20, FormatOptions{Label: strings.Repeat("x", 33)}, "at most 32"},
		{"label control character", 64 << 20, FormatOptions{Label: "a\tb"}, "control character"},
		{"too many clusters", 4 << 40, FormatOptions{ClusterSize: 512}, "--cluster-size 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Format(formatNoWrites{t}, 0, tt.size, tt.opts)
			if !errors.Is(err, ErrFormatOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Format: %v, want ErrFormatOptions mentioning %q", err, tt.want)
			}
			if err2 := CheckFormat(tt.size, tt.opts); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("CheckFormat: %v, want %v", err2, err)
			}
			if n := FormatMetadataSize(tt.size, tt.opts.ClusterSize); n != 0 && tt.opts.Label == "" {
				t.Errorf("FormatMetadataSize = %d for a refused volume", n)
			}
		})
	}
	if err := CheckFormat(64<<20, FormatOptions{Label: strings.Repeat("ü", 32)}); err != nil {
		t.Errorf("32-character label refused: %v", err)
	}
}

func TestDefaultClusterSize(t *testing.T) {
	for _, tt := range []struct {
		size int64
		want int
	}{
		{8 << 20, 512}, {512 << 20, 512}, {512<<20 + 1, 1024}, {1 << 30, 1024},
		{1<<30 + 1, 2048}, {2 << 30, 2048}, {2<<30 + 1, 4096}, {2 << 40, 4096},
	} {
		if got := DefaultClusterSize(tt.size); got != tt.want {
			t.Errorf("DefaultClusterSize(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
}

// formatVolume formats a sparse bare volume file of size bytes.
func formatVolume(t *testing.T, size int64, opts FormatOptions) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vol.ntfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := Format(f, 0, size, opts); err != nil {
		t.Fatalf("Format(%d, %+v): %v", size, opts, err)
	}
	return p
}

// formatFiles is how many files TestFormatCheckers puts into a fresh
// volume (XPBOOT_NTFS_FORMAT_FILES raises it).
func formatFiles() int {
	if n, err := strconv.Atoi(os.Getenv("XPBOOT_NTFS_FORMAT_FILES")); err == nil && n > 0 {
		return n
	}
	return 2500
}

// TestFormatCheckers formats volumes of several sizes and cluster sizes
// and runs every independent NTFS implementation over them: empty, after
// xpboot's writer filled one with thousands of files (so $MFT grows), and
// after ntfs-3g wrote to it.
func TestFormatCheckers(t *testing.T) {
	ntfstest.NeedPeers(t)
	tests := []struct {
		name    string
		size    int64
		cluster int
		files   int
	}{
		{"64M default", 64 << 20, 0, formatFiles()},
		{"64M 4K", 64 << 20, 4096, 300},
		{"1G default", 1 << 30, 0, 300},
		{"1G 8K", 1 << 30, 8192, 300},
		{"8G sparse 4K", 8 << 30, 4096, -1}, // empty only: the 64K case below fills one
		{"8G sparse 64K", 8 << 30, 64 << 10, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vol := formatVolume(t, tt.size, FormatOptions{ClusterSize: tt.cluster, Label: "XPBOOT", HiddenSectors: 63, Time: testTime})
			checkFormatted(t, vol, ntfstest.Tree{}, tt.cluster, tt.size)
			if t.Failed() || tt.files < 0 {
				return
			}
			want := ntfstest.Tree{}
			f, err := os.OpenFile(vol, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, err := OpenWritable(f, 0, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.CheckWritable(); err != nil {
				t.Fatalf("fresh volume refused by the writer: %v", err)
			}
			apply(t, fs, want, mkdir("WINDOWS"))
			apply(t, fs, want, mkdir("WINDOWS/system32"))
			for i := 0; i < tt.files; i++ {
				dir := []string{"", "WINDOWS/", "WINDOWS/system32/"}[i%3]
				apply(t, fs, want, put(fmt.Sprintf("%sfile number %05d.dat", dir, i), 10+i%3000))
			}
			apply(t, fs, want, put("big.bin", 3<<20))
			if err := fs.Flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			checkFormatted(t, vol, want, tt.cluster, tt.size)
			if t.Failed() {
				return
			}
			// ntfs-3g writes into the volume; every checker still
			// agrees afterwards.
			m, err := ntfstest.MountVolume(t, vol, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []ntfstest.Op{mkdir("by ntfs-3g"), put("by ntfs-3g/a.txt", 5000), put("WINDOWS/system32/b.sys", 70000)} {
				if err := ntfstest.ApplyDir(m.Dir, op); err != nil {
					t.Fatal(err)
				}
				if err := want.Apply(op); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Unmount(); err != nil {
				t.Fatal(err)
			}
			peertest.Run(t, ntfstest.PeerTimeout, "ntfsfix", "-n", vol)
			checkFormatted(t, vol, want, tt.cluster, tt.size)
		})
	}
}

// checkFormatted runs every checker of ntfstest on the bare volume vol.
// libfsntfs 20200921 does not follow index blocks when the cluster size is
// not 4 KiB: fsntfsinfo -H leaves out the entries of every directory
// whose index spills into INDX blocks, on volumes made by mkntfs and
// filled by ntfs-3g just the same (seen on this project's machine with
// 512-byte and 8 KiB clusters). There only its hierarchy listing is left
// out; fsntfsinfo -E all still parses every MFT entry.
func checkFormatted(t *testing.T, vol string, want ntfstest.Tree, cluster int, size int64) {
	t.Helper()
	if cluster == 0 {
		cluster = DefaultClusterSize(size)
	}
	if cluster == 4096 {
		ntfstest.Check(t, vol, 0, want)
		return
	}
	ntfstest.NeedPeers(t)
	tg, err := ntfstest.NewTarget(t, vol, 0, want)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, c := range ntfstest.Checkers() {
		if c.Name == "libfsntfs fsntfsinfo" {
			out, err := peertest.Try(t, ntfstest.PeerTimeout, "fsntfsinfo", "-E", "all", vol)
			if err != nil || bytes.Contains(bytes.ToLower(out), []byte("unable to")) {
				t.Errorf("fsntfsinfo -E all: %v\n%s", err, out)
			}
			continue
		}
		if err := c.Run(ctx, tg); err != nil {
			t.Errorf("%s: checker %s: %v", vol, c.Name, err)
		}
	}
}

// TestFormatGoNTFSReads opens a fresh volume with this package's reader
// (go-ntfs underneath) and lists the empty root.
func TestFormatGoNTFSReads(t *testing.T) {
	vol := formatVolume(t, 64<<20, FormatOptions{Label: "X", Time: testTime})
	f, err := os.Open(vol)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := Open(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	list, err := fs.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		var names []string
		for _, fi := range list {
			names = append(names, fi.Name())
		}
		t.Errorf("root of a fresh volume lists %q", names)
	}
}

// TestFormatDeterministic: the same options give the same bytes, and the
// serial number comes from Rand.
func TestFormatDeterministic(t *testing.T) {
	opts := FormatOptions{ClusterSize: 4096, Label: "SAME", Time: testTime, Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 64))}
	a := formatVolume(t, 64<<20, opts)
	opts.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 64))
	b := formatVolume(t, 64<<20, opts)
	if fileHash(t, a) != fileHash(t, b) {
		t.Error("two formats with the same options differ")
	}
	boot := make([]byte, 512)
	f, _ := os.Open(a)
	defer f.Close()
	f.ReadAt(boot, 0)
	if got := u64(boot, 0x48); got != 0x0707070707070707 {
		t.Errorf("serial %#x, want it from Rand", got)
	}
	var last [512]byte
	f.ReadAt(last[:], 64<<20-512)
	if !bytes.Equal(last[:], boot) {
		t.Error("the last sector is not the backup boot sector")
	}
}

// formatCountWrites sums the bytes written to it.
type formatCountWrites struct{ n int64 }

func (d *formatCountWrites) ReadAt(p []byte, off int64) (int, error) { return len(p), nil }
func (d *formatCountWrites) WriteAt(p []byte, off int64) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// TestFormatMetadataSize: the progress total is what Format writes.
func TestFormatMetadataSize(t *testing.T) {
	for _, tt := range []struct {
		size    int64
		cluster int
	}{{8 << 20, 0}, {64 << 20, 0}, {1 << 30, 0}, {3 << 30, 64 << 10}, {100 << 30, 0}} {
		var d formatCountWrites
		if err := Format(&d, 0, tt.size, FormatOptions{ClusterSize: tt.cluster, Serial: 1}); err != nil {
			t.Fatal(err)
		}
		if got := FormatMetadataSize(tt.size, tt.cluster); got != d.n {
			t.Errorf("FormatMetadataSize(%d, %d) = %d, Format wrote %d", tt.size, tt.cluster, got, d.n)
		}
	}
}
