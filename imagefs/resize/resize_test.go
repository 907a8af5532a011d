package resize

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/internal/peertest"
)

const (
	mib     = 1 << 20
	peerMax = 2 * time.Minute
)

func TestGrowContainers(t *testing.T) {
	dir := t.TempDir()
	raw, _ := fat32Disk(t, dir, 64*mib)
	tests := []struct {
		name    string
		format  string
		opts    []string
		size    int64
		rewrite bool
	}{
		{"raw", "", nil, 300 * mib, false},
		{"vmdk sparse in place", "vmdk", nil, 1 << 30, false},
		{"vmdk sparse rewritten", "vmdk", nil, 9 << 30, true},
		{"vmdk flat", "vmdk", []string{"subformat=monolithicFlat"}, 1 << 30, false},
		{"vhd dynamic in place", "vpc", nil, 200 * mib, false},
		{"vhd dynamic rewritten", "vpc", nil, 2 << 30, true},
		{"vhd fixed", "vpc", []string{"subformat=fixed"}, 300 * mib, false},
		{"xpboot vmdk in place", "xpboot-vmdk", nil, 3 << 30, false},
		{"xpboot vhd in place", "xpboot-vhd", nil, 200 * mib, false},
		{"xpboot vhd rewritten", "xpboot-vhd", nil, 1 << 30, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			orig := filepath.Join(d, "orig.img")
			copyFile(t, raw, orig)
			img := orig
			switch {
			case strings.HasPrefix(tt.format, "xpboot-"):
				ext := map[string]string{"xpboot-vmdk": ".vmdk", "xpboot-vhd": ".vpc"}[tt.format]
				img = xpbootImage(t, orig, filepath.Join(d, "disk"+ext))
				orig = xpbootImage(t, orig, filepath.Join(d, "ref"+ext))
			case tt.format != "":
				img = qemuImg(t, orig, filepath.Join(d, fmt.Sprintf("disk%d.%s", i, tt.format)), tt.format, tt.opts...)
				// The reference for compare: the same container, untouched.
				orig = qemuImg(t, orig, filepath.Join(d, fmt.Sprintf("ref%d.%s", i, tt.format)), tt.format, tt.opts...)
			default:
				img = filepath.Join(d, "disk.img")
				copyFile(t, orig, img)
			}
			before := qemuInfo(t, img)
			res, err := Resize(ctx(t), img, Options{Size: tt.size})
			if err != nil {
				t.Fatal(err)
			}
			if res.OldSize != before.VirtualSize {
				t.Errorf("old size %d, qemu-img says %d", res.OldSize, before.VirtualSize)
			}
			if got := res.Container == "rewritten"; got != tt.rewrite {
				t.Errorf("container %q (%s), want rewritten=%v", res.Container, res.RewriteReason, tt.rewrite)
			}
			want := tt.size
			if strings.HasSuffix(img, ".vpc") {
				want, _ = vhd.RoundSize(tt.size)
			}
			after := qemuInfo(t, img)
			if after.VirtualSize != want || res.NewSize != want {
				t.Errorf("virtual size %d (result %d), want %d", after.VirtualSize, res.NewSize, want)
			}
			if tt.format != "" {
				qemuCheck(t, img)
			}
			qemuCompare(t, orig, img)
			// The image still opens in xpboot and its file system reads.
			im, err := imagefs.Open(img, false)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.Dev.Size() != want {
				t.Errorf("xpboot sees %d bytes, want %d", im.Dev.Size(), want)
			}
			fs, err := im.FS(1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Stat("/DATA.TXT"); err != nil {
				t.Error(err)
			}
			// And stays writable past the old end.
			im.Close()
			dev, _, err := imagefs.OpenDevice(img, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dev.WriteAt(bytes.Repeat([]byte{0xa5}, 4096), want-8192); err != nil {
				t.Fatal(err)
			}
			if err := dev.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.format != "" {
				qemuCheck(t, img)
			}
		})
	}
}

// fatMax returns the total sectors the FATs of the FAT32 volume at off
// can map (a test oracle independent of fat32.PlanGrow).
func fatMax(t *testing.T, disk string, off int64) int64 {
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	rsv, nfat, fatsz, spc := int64(le.Uint16(b[0x0E:])), int64(b[0x10]), int64(le.Uint32(b[0x24:])), int64(b[0x0D])
	return rsv + nfat*fatsz + (fatsz*512/4-2)*spc
}

func TestGrowFAT32(t *testing.T) {
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	mdir := peertest.Need(t, "mdir", "mtools")
	mtype := peertest.Need(t, "mtype", "mtools")
	d := t.TempDir()
	disk, data := fat32Disk(t, d, 1<<30)
	im, err := imagefs.Open(disk, false)
	if err != nil {
		t.Fatal(err)
	}
	p := im.Partitions()[0]
	im.Close()
	maxSectors := fatMax(t, disk, p.Offset)
	if maxSectors*512 <= p.Size {
		t.Fatalf("the FAT has no room: %d sectors max, partition %d bytes", maxSectors, p.Size)
	}

	// Beyond what the FAT maps: refused, naming the sectors needed, and
	// nothing changes.
	before := sum(t, disk)
	_, err = Resize(ctx(t), disk, Options{Size: 2 << 30, GrowPartition: true})
	if !errors.Is(err, fat32.ErrFATTooSmall) || !strings.Contains(err.Error(), "sectors per FAT") {
		t.Fatalf("grow beyond the FAT: %v", err)
	}
	if sum(t, disk) != before {
		t.Fatal("a refused resize changed the image")
	}

	// Up to what the FAT maps.
	size := max((p.Offset/512+maxSectors+100)*512, int64(1<<30))
	res, err := Resize(ctx(t), disk, Options{Size: size, GrowPartition: true, PartitionSize: maxSectors * 512})
	if err != nil {
		t.Fatal(err)
	}
	if res.FileSystem.Type != "fat32" || res.FileSystem.NewSectors != maxSectors || res.FileSystem.NewClusters <= res.FileSystem.OldClusters {
		t.Fatalf("file system %+v, want %d sectors", res.FileSystem, maxSectors)
	}
	vol := extract(t, disk, p.Offset/512, maxSectors)
	out, err := peertest.Try(t, peerMax, fsck, "-n", "-v", vol)
	if err != nil || strings.Contains(string(out), "Free cluster summary wrong") {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
	spec := fmt.Sprintf("%s@@%d", disk, p.Offset)
	out = peertest.Run(t, peerMax, mdir, "-i", spec, "::/")
	if !strings.Contains(string(out), "DATA") {
		t.Errorf("mdir:\n%s", out)
	}
	got := peertest.Run(t, peerMax, mtype, "-i", spec, "::/DATA.TXT")
	if !bytes.Equal(got, data) {
		t.Errorf("mtype DATA.TXT: %d bytes differ", len(got))
	}
	fs, err := fat32.Open(osFile(t, disk), p.Offset, maxSectors*512, true)
	if err != nil {
		t.Fatal(err)
	}
	if free, added := fs.FreeBytes(), res.FileSystem.AddedBytes; free < added {
		t.Errorf("FSInfo free %d bytes, less than the %d added", free, added)
	}
}

func TestShrinkAndBadInput(t *testing.T) {
	d := t.TempDir()
	// A 64 MiB disk whose one partition ends at 16 MiB.
	small := filepath.Join(d, "small.img")
	if err := os.WriteFile(small, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(small, 64*mib); err != nil {
		t.Fatal(err)
	}
	sfdisk(t, small, "start=2048, size=30720, type=7\n")
	full, _ := fat32Disk(t, d, 64*mib)
	vmdkSmall := qemuImg(t, small, filepath.Join(d, "small.vmdk"), "vmdk")
	vhdSmall := qemuImg(t, small, filepath.Join(d, "small.vpc"), "vpc")
	stream := qemuImg(t, small, filepath.Join(d, "stream.vmdk"), "vmdk", "subformat=streamOptimized")
	tests := []struct {
		name    string
		path    string
		opts    Options
		wantErr error
		want    int64 // virtual size after
	}{
		{"shrink without --shrink", small, Options{Size: 32 * mib}, ErrShrink, 0},
		{"shrink below the partition", full, Options{Size: 32 * mib, Shrink: true}, ErrShrink, 0},
		{"shrink and grow partition", small, Options{Size: 32 * mib, Shrink: true, GrowPartition: true}, ErrShrink, 0},
		{"size not in sectors", small, Options{Size: 64*mib + 100}, ErrSize, 0},
		{"size zero", small, Options{Size: 0}, ErrSize, 0},
		{"vhd past 2040 GiB", vhdSmall, Options{Size: 2041 << 30}, ErrSize, 0},
		{"vhd not CHS with exact", vhdSmall, Options{Size: 100 * mib, Exact: true}, ErrSize, 0},
		{"stream vmdk", stream, Options{Size: 128 * mib}, ErrUnsupported, 0},
		{"partition size without grow", small, Options{Size: 128 * mib, PartitionSize: 64 * mib}, nil, -1},
		{"partition past the disk", small, Options{Size: 128 * mib, GrowPartition: true, PartitionSize: 200 * mib}, nil, -1},
		{"unformatted partition grows alone", small, Options{Size: 96 * mib, GrowPartition: true}, nil, 96 * mib},
		{"shrink raw", small, Options{Size: 24 * mib, Shrink: true}, nil, 24 * mib},
		{"grow by delta", small, Options{Delta: 8 * mib}, nil, 72 * mib},
		{"shrink vmdk", vmdkSmall, Options{Size: 20 * mib, Shrink: true}, nil, 20 * mib},
		{"shrink vhd", vhdSmall, Options{Size: 20 * mib, Shrink: true}, nil, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every case starts from a fresh copy of its image.
			path := filepath.Join(t.TempDir(), filepath.Base(tt.path))
			copyFile(t, tt.path, path)
			tt.path = path
			before := sum(t, tt.path)
			res, err := Resize(ctx(t), tt.path, tt.opts)
			if tt.want <= 0 && tt.want != -2 {
				if err == nil {
					t.Fatalf("resize succeeded: %+v", res)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				t.Log(err)
				if sum(t, tt.path) != before {
					t.Fatal("a refused resize changed the image")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == -2 {
				want, _ = vhd.RoundSize(tt.opts.Size)
			}
			if q := qemuInfo(t, tt.path); q.VirtualSize != want {
				t.Errorf("qemu-img info: %d bytes, want %d", q.VirtualSize, want)
			}
			if !strings.HasSuffix(tt.path, ".img") {
				qemuCheck(t, tt.path)
			}
		})
	}
}

// An empty dynamic VHD: its BAT grows over the trailing footer, which
// moves behind it.
func TestGrowEmptyVHD(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.vpc")
	d, err := vhd.Create(p, 8*mib, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	want, _ := vhd.RoundSize(1 << 30)
	res, err := Resize(ctx(t), p, Options{Size: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Container != "in place" || res.NewSize != want {
		t.Errorf("result %+v, want in place, %d bytes", res, want)
	}
	if q := qemuInfo(t, p); q.VirtualSize != want {
		t.Errorf("qemu-img info: %d bytes, want %d", q.VirtualSize, want)
	}
	dev, _, err := imagefs.OpenDevice(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.WriteAt([]byte("last block"), want-512); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	bin := peertest.Need(t, "qemu-img", "qemu-utils")
	raw := filepath.Join(t.TempDir(), "back.raw")
	peertest.Run(t, peerMax, bin, "convert", "-f", "vpc", "-O", "raw", p, raw)
	f := osFile(t, raw)
	got := make([]byte, 10)
	if _, err := f.ReadAt(got, want-512); err != nil || string(got) != "last block" {
		t.Errorf("qemu reads %q at the last sector (%v)", got, err)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	d := t.TempDir()
	disk, _ := fat32Disk(t, d, 64*mib)
	vmdk := qemuImg(t, disk, filepath.Join(d, "d.vmdk"), "vmdk")
	for _, p := range []string{disk, vmdk} {
		before := sum(t, p)
		st, _ := os.Stat(p)
		res, err := Resize(ctx(t), p, Options{Size: 8 << 30, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		st2, _ := os.Stat(p)
		if sum(t, p) != before || st.Size() != st2.Size() {
			t.Errorf("%s: dry run changed the file", p)
		}
		if !res.DryRun || res.NewSize != 8<<30 {
			t.Errorf("%s: dry run result %+v", p, res)
		}
	}
}

// TestFullDestination rewrites a VHD on a file system too small for the
// copy: a clear error, the image unchanged, no temporary file left.
func TestFullDestination(t *testing.T) {
	peertest.NeedRoot(t, "mounting a small tmpfs")
	d := t.TempDir()
	raw, _ := fat32Disk(t, d, 64*mib)
	src := xpbootImage(t, raw, filepath.Join(d, "src.vpc"))
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	size := st.Size() + mib
	peertest.Run(t, peerMax, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", mnt)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), peerMax)
		defer cancel()
		exec.CommandContext(c, "umount", mnt).Run()
	})
	img := filepath.Join(mnt, "disk.vpc")
	copyFile(t, src, img)
	before := sum(t, img)
	_, err = Resize(ctx(t), img, Options{Size: 1 << 30})
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), img) {
		t.Fatalf("resize on a full file system: %v", err)
	}
	if sum(t, img) != before {
		t.Error("the failed rewrite changed the image")
	}
	names, _ := os.ReadDir(mnt)
	if len(names) != 1 {
		t.Errorf("files left in the directory: %v", names)
	}
}

// TestBlockDevice: a block device keeps its size, but its last partition
// grows into space the disk gained.
func TestBlockDevice(t *testing.T) {
	peertest.NeedRoot(t, "attaching a loop device")
	losetup := peertest.Need(t, "losetup", "mount")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64*mib); err != nil {
		t.Fatal(err)
	}
	sfdisk(t, img, "start=2048, size=20480, type=7\n")
	out, err := peertest.Try(t, peerMax, losetup, "-f", "--show", img)
	if err != nil {
		peertest.Missing(t, "a free loop device ("+strings.TrimSpace(string(out))+")", "mount")
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), peerMax)
		defer cancel()
		exec.CommandContext(c, losetup, "-d", loop).Run()
	})
	if _, err := Resize(ctx(t), loop, Options{Size: 128 * mib}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("growing a block device: %v", err)
	}
	res, err := Resize(ctx(t), loop, Options{Size: 64 * mib, GrowPartition: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Partition == nil || res.Partition.NewSectors != 64*mib/512-2048 {
		t.Fatalf("partition %+v", res.Partition)
	}
	if dump := sfdiskDump(t, img); !strings.Contains(dump, fmt.Sprintf("start=        2048, size=%12d", 64*mib/512-2048)) {
		t.Errorf("sfdisk -d:\n%s", dump)
	}
}
