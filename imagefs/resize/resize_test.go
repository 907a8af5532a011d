package resize

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
)

const (
	mib     = 1 << 20
	peerMax = 2 * time.Minute
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

// qemuImg converts the raw image src into a new image of the qemu format
// fmt (with -o options) and returns its path.
func qemuImg(t *testing.T, src, dst, format string, opts ...string) string {
	t.Helper()
	bin := peertest.Need(t, "qemu-img", "qemu-utils")
	args := []string{"convert", "-f", "raw", "-O", format}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	peertest.Run(t, peerMax, bin, append(args, src, dst)...)
	return dst
}

type qinfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Format      string `json:"format"`
}

func qemuInfo(t *testing.T, path string) qinfo {
	t.Helper()
	bin := peertest.Need(t, "qemu-img", "qemu-utils")
	out := peertest.Run(t, peerMax, bin, append(append([]string{"info"}, fmtArg("-f", path)...), "--output=json", path)...)
	var q qinfo
	if err := json.Unmarshal(out, &q); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	return q
}

// qemuCheck runs qemu-img check, which must find no errors or leaks.
func qemuCheck(t *testing.T, path string) {
	t.Helper()
	bin := peertest.Need(t, "qemu-img", "qemu-utils")
	out, err := peertest.Try(t, peerMax, bin, append(append([]string{"check"}, fmtArg("-f", path)...), path)...)
	if strings.Contains(string(out), "does not support checks") {
		return // vpc: qemu has no checker for VHD; qemu-img info and compare still read it
	}
	if s := string(out); err != nil || !strings.Contains(s, "No errors were found") || strings.Contains(s, "leak") {
		t.Fatalf("qemu-img check %s:\n%s", path, out)
	}
}

// qemuCompare checks that b holds a's content, and zeros past a's end.
func qemuCompare(t *testing.T, a, b string) {
	t.Helper()
	bin := peertest.Need(t, "qemu-img", "qemu-utils")
	args := append([]string{"compare"}, fmtArg("-f", a)...)
	args = append(args, fmtArg("-F", b)...)
	peertest.Run(t, peerMax, bin, append(args, a, b)...)
}

// fmtArg names the format of VHD files for qemu-img, which does not
// probe fixed VHDs (their footer is at the end) and would take them as raw.
func fmtArg(flag, path string) []string {
	if strings.HasSuffix(path, ".vpc") || strings.HasSuffix(path, ".vhd") {
		return []string{flag, "vpc"}
	}
	return nil
}

// fat32Disk makes a raw disk with xpboot's layout (one FAT32 partition
// at LBA 63 ending on a cylinder boundary) holding a file.
func fat32Disk(t *testing.T, dir string, size int64) (string, []byte) {
	t.Helper()
	path := filepath.Join(dir, "fat.img")
	if _, err := imagefs.Create(path, imagefs.CreateOptions{Size: size, FS: imagefs.FSFAT32, Label: "RESIZE"}); err != nil {
		t.Fatal(err)
	}
	img, err := imagefs.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := img.FS(1)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("xpboot resize test\r\n"), 40000)
	if err := imagefs.PutFrom(fs, bytes.NewReader(data), "/DATA.TXT", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// sfdisk partitions the raw file path with script.
func sfdisk(t *testing.T, path, script string) {
	t.Helper()
	bin := peertest.Need(t, "sfdisk", "fdisk")
	ctx, cancel := context.WithTimeout(context.Background(), peerMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-q", "--no-reread", "--no-tell-kernel", path)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk %s: %v\n%s", path, err, out)
	}
}

func sfdiskDump(t *testing.T, path string) string {
	t.Helper()
	bin := peertest.Need(t, "sfdisk", "fdisk")
	return string(peertest.Run(t, peerMax, bin, "-d", path))
}

// ntfsPartition formats sectors sectors at LBA start of the raw disk with
// mkntfs and copies files into it with ntfscp.
func ntfsPartition(t *testing.T, disk string, start, sectors int64, cluster int, files map[string][]byte) {
	t.Helper()
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	ntfscp := peertest.Need(t, "ntfscp", "ntfs-3g")
	dir := t.TempDir()
	part := filepath.Join(dir, "part.img")
	if err := os.WriteFile(part, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(part, sectors*512); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-F", "-f", "-p", fmt.Sprint(start), "-H", "255", "-S", "63", "-L", "GROW"}
	if cluster != 0 {
		args = append(args, "-c", fmt.Sprint(cluster))
	}
	peertest.Run(t, peerMax, mkntfs, append(args, part)...)
	for name, data := range files {
		src := filepath.Join(dir, "src")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		peertest.Run(t, peerMax, ntfscp, "-f", part, src, "/"+name)
	}
	copyInto(t, part, disk, start*512)
}

// copyInto writes the file src into dst at byte off.
func copyInto(t *testing.T, src, dst string, off int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(io.NewOffsetWriter(out, off), in); err != nil {
		t.Fatal(err)
	}
}

// extract copies sectors sectors at LBA start of the raw disk into a new
// file (holes stay holes) and returns its path.
func extract(t *testing.T, disk string, start, sectors int64) string {
	t.Helper()
	in, err := blockdev.OpenRaw(disk, false)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), "vol.img")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(sectors * 512); err != nil {
		t.Fatal(err)
	}
	eachData(t, in, start*512, sectors*512, func(b []byte, off int64) {
		if _, err := out.WriteAt(b, off-start*512); err != nil {
			t.Fatal(err)
		}
	})
	return path
}

// eachData calls fn with the data of dev in [off, off+n), skipping holes.
func eachData(t *testing.T, dev blockdev.Device, off, n int64, fn func(b []byte, off int64)) {
	t.Helper()
	exts, err := dev.Extents(off, n)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, mib)
	for _, x := range exts {
		if x.State != blockdev.Data {
			continue
		}
		for o := x.Off; o < x.Off+x.Len; o += int64(len(buf)) {
			k := min(int64(len(buf)), x.Off+x.Len-o)
			if _, err := dev.ReadAt(buf[:k], o); err != nil {
				t.Fatal(err)
			}
			fn(buf[:k], o)
		}
	}
}

// sum hashes a file's size, its data and where that data lies (holes are
// not read, so that large sparse images hash fast).
func sum(t *testing.T, path string) [32]byte {
	t.Helper()
	dev, err := blockdev.OpenRaw(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", dev.Size())
	eachData(t, dev, 0, dev.Size(), func(b []byte, off int64) {
		fmt.Fprintf(h, "%d:", off)
		h.Write(b)
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

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

// xpbootImage copies the raw image src into a new VMDK (.vmdk) or dynamic
// VHD (.vpc) made by xpboot's own writers, in their layouts.
func xpbootImage(t *testing.T, src, dst string) string {
	t.Helper()
	in, err := blockdev.OpenRaw(src, false)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	size := in.Size()
	var out blockdev.Device
	if strings.HasSuffix(dst, ".vmdk") {
		out, err = vmdk.Create(dst, size, nil)
	} else {
		size, _ = vhd.RoundSize(size)
		out, err = vhd.Create(dst, size, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	exts, err := in.Extents(0, in.Size())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, mib)
	for _, x := range exts {
		if x.State != blockdev.Data {
			continue
		}
		for off := x.Off; off < x.Off+x.Len; off += int64(len(buf)) {
			n := min(int64(len(buf)), x.Off+x.Len-off)
			if _, err := in.ReadAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	copyInto(t, src, dst, 0)
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(dst, st.Size()); err != nil {
		t.Fatal(err)
	}
}

func TestGrowNTFS(t *testing.T) {
	peertest.Need(t, "ntfsfix", "ntfs-3g")
	files := map[string][]byte{
		"small.txt": []byte("hello from before the resize\r\n"),
		"big.bin":   bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, 700000),
	}
	tests := []struct {
		name      string
		script    string
		diskSize  int64
		start     int64
		sectors   int64
		newSize   int64
		partSize  int64
		wantIndex int
		format    string
		cluster   int
	}{
		// 200 MiB, 4 KiB clusters: $Bitmap grows from 1 to 8 clusters.
		{name: "primary", script: "start=63, size=409437, type=7, bootable\n", diskSize: 200 * mib, start: 63, sectors: 409437, newSize: 1 << 30, wantIndex: 1},
		// A small growth: $Bitmap's cluster still has room.
		{name: "primary small", script: "start=2048, size=204800, type=7\n", diskSize: 101 * mib, start: 2048, sectors: 204800, newSize: 120 * mib, wantIndex: 1},
		{name: "partition size", script: "start=2048, size=204800, type=7\n", diskSize: 101 * mib, start: 2048, sectors: 204800, newSize: 400 * mib, partSize: 300 * mib, wantIndex: 1},
		{name: "logical", script: "start=2048, size=40960, type=c\nstart=43008, type=5\nstart=45056, size=200704, type=7\n", diskSize: 128 * mib, start: 45056, sectors: 200704, newSize: 512 * mib, wantIndex: 5},
		// 16 KiB clusters: $MFTMirr mirrors 16 records, $Bitmap's and
		// $BadClus's among them.
		{name: "mirrored records", script: "start=2048, size=204800, type=7\n", diskSize: 101 * mib, start: 2048, sectors: 204800, newSize: 1 << 30, wantIndex: 1, cluster: 16384},
		{name: "vmdk", script: "start=63, size=204687, type=7, bootable\n", diskSize: 100 * mib, start: 63, sectors: 204687, newSize: 700 * mib, wantIndex: 1, format: "vmdk"},
		{name: "vhd", script: "start=63, size=204687, type=7, bootable\n", diskSize: 100 * mib, start: 63, sectors: 204687, newSize: 700 * mib, wantIndex: 1, format: "vpc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			disk := filepath.Join(d, "disk.img")
			if err := os.WriteFile(disk, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(disk, tt.diskSize); err != nil {
				t.Fatal(err)
			}
			sfdisk(t, disk, tt.script)
			ntfsPartition(t, disk, tt.start, tt.sectors, tt.cluster, files)
			img := disk
			if tt.format != "" {
				img = qemuImg(t, disk, filepath.Join(d, "disk."+tt.format), tt.format)
			}
			dry, err := Resize(ctx(t), img, Options{Size: tt.newSize, GrowPartition: true, PartitionSize: tt.partSize, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := Resize(ctx(t), img, Options{Size: tt.newSize, GrowPartition: true, PartitionSize: tt.partSize})
			if err != nil {
				t.Fatal(err)
			}
			dry.DryRun = false
			if fmt.Sprint(*dry.Partition, *dry.FileSystem) != fmt.Sprint(*res.Partition, *res.FileSystem) {
				t.Errorf("dry run planned %+v %+v, the run did %+v %+v", dry.Partition, dry.FileSystem, res.Partition, res.FileSystem)
			}
			if res.Partition.Index != tt.wantIndex || res.FileSystem.Type != "ntfs" {
				t.Fatalf("grew partition %d (%s), want %d (ntfs)", res.Partition.Index, res.FileSystem.Type, tt.wantIndex)
			}
			if res.FileSystem.NewClusters <= res.FileSystem.OldClusters {
				t.Fatalf("clusters %d -> %d", res.FileSystem.OldClusters, res.FileSystem.NewClusters)
			}
			raw := img
			if tt.format != "" {
				qemuCheck(t, img)
				raw = filepath.Join(d, "back.raw")
				bin := peertest.Need(t, "qemu-img", "qemu-utils")
				peertest.Run(t, peerMax, bin, "convert", "-O", "raw", img, raw)
			}
			dump := sfdiskDump(t, raw)
			wantSectors := int64(res.Partition.NewSectors)
			if tt.partSize != 0 && wantSectors != tt.partSize/512 {
				t.Errorf("partition of %d sectors, want %d", wantSectors, tt.partSize/512)
			}
			if !strings.Contains(dump, fmt.Sprintf("start=%12d, size=%12d", tt.start, wantSectors)) {
				t.Errorf("sfdisk -d does not show the partition at %d with %d sectors:\n%s", tt.start, wantSectors, dump)
			}
			if tt.wantIndex == 5 && !strings.Contains(dump, fmt.Sprintf("start=       43008, size=%12d", tt.start+wantSectors-43008)) {
				t.Errorf("sfdisk -d does not show the extended partition grown to the logical one's end:\n%s", dump)
			}
			vol := extract(t, raw, tt.start, wantSectors)
			checkNTFS(t, vol, files, res.FileSystem)
		})
	}
}

// checkNTFS runs the NTFS peers on the grown volume image.
func checkNTFS(t *testing.T, vol string, files map[string][]byte, fsr *FSResult) {
	t.Helper()
	out := peertest.Run(t, peerMax, peertest.Need(t, "ntfsfix", "ntfs-3g"), "-n", vol)
	if !strings.Contains(string(out), "processed successfully") || !strings.Contains(string(out), "alternate boot sector... OK") {
		t.Errorf("ntfsfix -n:\n%s", out)
	}
	out = peertest.Run(t, peerMax, peertest.Need(t, "ntfsresize", "ntfs-3g"), "--info", "--no-action", "--force", vol)
	if !strings.Contains(string(out), "You might resize at") {
		t.Errorf("ntfsresize --info:\n%s", out)
	}
	out = peertest.Run(t, peerMax, peertest.Need(t, "ntfsinfo", "ntfs-3g"), "-m", vol)
	if want := fmt.Sprintf("Volume Size in Clusters: %d", fsr.NewClusters); !strings.Contains(string(out), want) {
		t.Errorf("ntfsinfo -m does not say %q:\n%s", want, out)
	}
	out = peertest.Run(t, peerMax, peertest.Need(t, "fsstat", "sleuthkit"), vol)
	if want := fmt.Sprintf("Total Cluster Range: 0 - %d", fsr.NewClusters-1); !strings.Contains(string(out), want) {
		t.Errorf("fsstat does not say %q:\n%s", want, out)
	}
	for name, data := range files {
		got := peertest.Run(t, peerMax, peertest.Need(t, "ntfscat", "ntfs-3g"), vol, "/"+name)
		if !bytes.Equal(got, data) {
			t.Errorf("ntfscat %s: %d bytes differ from the %d written", name, len(got), len(data))
		}
	}
	mountNTFS(t, vol, files, fsr)
}

// mountNTFS mounts the volume with ntfs-3g (read-only), reads the files
// and checks the free space statfs reports.
func mountNTFS(t *testing.T, vol string, files map[string][]byte, fsr *FSResult) {
	t.Helper()
	bin := peertest.Need(t, "ntfs-3g", "ntfs-3g")
	peertest.NeedRoot(t, "FUSE mount of the grown volume")
	peertest.NeedFile(t, "/dev/fuse", "fuse3")
	mnt := t.TempDir()
	peertest.Run(t, peerMax, bin, "-o", "ro", vol, mnt)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), peerMax)
		defer cancel()
		exec.CommandContext(c, "umount", mnt).Run()
	})
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s through ntfs-3g: %v (%d bytes)", name, err, len(got))
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	total := int64(st.Blocks) * int64(st.Bsize)
	free := int64(st.Bfree) * int64(st.Bsize)
	if total != fsr.NewClusters*fsr.ClusterSize {
		t.Errorf("df: %d bytes total, want %d", total, fsr.NewClusters*fsr.ClusterSize)
	}
	// The added clusters are free, except those $Bitmap took.
	if free < fsr.AddedBytes {
		t.Errorf("df: %d bytes free, the growth alone added %d", free, fsr.AddedBytes)
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

func osFile(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
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
