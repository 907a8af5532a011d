package resize

// Helpers of the resize tests: the peers (qemu-img, sfdisk, mkntfs) and
// the disks they make, and reading data back.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
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

func osFile(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
