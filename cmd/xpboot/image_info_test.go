package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestImageInfoAnyContainer: image info describes any container, also one
// without a partition table, with its files, allocation and parent chain.
func TestImageInfoAnyContainer(t *testing.T) {
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	peertest.Run(t, time.Minute, qemuImg, "create", "-f", "vmdk", filepath.Join(dir, "blank.vmdk"), "1G")
	r := xpboot(t, dir, "image", "info", "blank.vmdk", "--json")
	var info struct {
		Format         string   `json:"format"`
		VirtualSize    int64    `json:"virtual_size"`
		FileSize       int64    `json:"file_size"`
		Allocated      int64    `json:"allocated"`
		Files          []string `json:"files"`
		Parents        []string `json:"parents"`
		PartitionTable string   `json:"partition_table"`
		TableError     string   `json:"partition_table_error"`
		Partitions     []struct {
			Index int    `json:"index"`
			FS    string `json:"filesystem"`
		} `json:"partitions"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil {
		t.Fatalf("info of a blank VMDK: %+v", r)
	}
	if info.Format != "vmdk" || info.VirtualSize != 1<<30 || info.PartitionTable != "none" || !strings.Contains(info.TableError, "no partition table") || info.Allocated != 0 {
		t.Errorf("blank VMDK: %+v", info)
	}

	if r := xpboot(t, dir, "image", "create", "--size", "64M", "--format", "vmdk-flat", "base.vmdk"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	peertest.Run(t, time.Minute, qemuImg, "create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", filepath.Join(dir, "delta.vmdk"))
	info.Parents, info.Files = nil, nil
	r = xpboot(t, dir, "image", "info", "--json", "base.vmdk")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info.Files) != 2 || info.FileSize < 64<<20 {
		t.Errorf("flat VMDK counts descriptor and extent: %+v %+v", info, r)
	}
	info.Parents, info.Files = nil, nil
	r = xpboot(t, dir, "image", "info", "--json", "delta.vmdk")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info.Parents) != 1 || !strings.HasSuffix(info.Parents[0], "base.vmdk") ||
		info.PartitionTable != "mbr" || len(info.Partitions) != 1 || info.Partitions[0].FS != "fat32" {
		t.Errorf("delta: %+v %+v", info, r)
	}
	if r := xpboot(t, dir, "image", "info", "delta.vmdk"); r.code != 0 || !strings.Contains(r.stdout, "parent 1:") {
		t.Errorf("text info of a delta: %+v", r)
	}
}

// TestLogicalPartitions: logical partitions in an extended partition are
// listed and addressed as 5, 6, … like sfdisk numbers them.
func TestLogicalPartitions(t *testing.T) {
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sfdisk, "--no-reread", "--no-tell-kernel", img)
	cmd.Stdin = strings.NewReader("label: dos\nstart=63, size=100000, type=c, bootable\nstart=100352, type=f\nsize=150000, type=c\ntype=c\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	out := peertest.Run(t, time.Minute, sfdisk, "--json", img)
	var table struct {
		PartitionTable struct {
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	for _, p := range table.PartitionTable.Partitions {
		label := "P" + p.Node[len(p.Node)-1:]
		if strings.HasSuffix(p.Node, "2") {
			continue // the extended container
		}
		peertest.Run(t, time.Minute, mkfs, "-F", "32", "-n", label, "--offset", itoa(p.Start), img, itoa(p.Size/2))
	}
	r := xpboot(t, dir, "image", "info", "disk.img")
	for _, want := range []string{"\n5 ", "\n6 ", "P5", "P6", "Extended"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("image info lacks %q:\n%s", want, r.stdout)
		}
	}
	os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("on a logical drive"), 0o644)
	if r := xpboot(t, dir, "image", "put", "hello.txt", "disk.img:/", "-p", "6"); r.code != 0 {
		t.Fatalf("put -p 6: %+v", r)
	}
	if r := xpboot(t, dir, "image", "get", "disk.img:/hello.txt", "-", "--partition", "6"); r.code != 0 || r.stdout != "on a logical drive" {
		t.Errorf("get -p 6: %+v", r)
	}
	if r := xpboot(t, dir, "image", "ls", "disk.img:/", "-p", "5"); r.code != 0 || strings.Contains(r.stdout, "hello") {
		t.Errorf("ls -p 5: %+v", r)
	}
	if r := xpboot(t, dir, "image", "ls", "disk.img:/", "-p", "7"); r.code != 1 || !strings.Contains(r.stderr, "partition 7 does not exist") {
		t.Errorf("ls -p 7: %+v", r)
	}
	// fsck.fat checks the logical partition written to.
	for _, p := range table.PartitionTable.Partitions {
		if strings.HasSuffix(p.Node, "6") {
			part := filepath.Join(dir, "p6.img")
			peertest.Run(t, time.Minute, "dd", "if="+img, "of="+part, "bs=512", "skip="+itoa(p.Start), "count="+itoa(p.Size), "status=none")
			peertest.Run(t, time.Minute, peertest.Need(t, "fsck.fat", "dosfstools"), "-n", part)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDamagedBootSectorDiagnosed: a FAT32 partition whose boot sector is
// damaged is reported with the field at fault, not as "unknown".
func TestDamagedBootSectorDiagnosed(t *testing.T) {
	dir := t.TempDir()
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	f, err := os.OpenFile(filepath.Join(dir, "disk.img"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{3}, 63*512+0x0D) // sectors per cluster: not a power of two
	f.Close()
	r := xpboot(t, dir, "image", "info", "disk.img")
	if r.code != 0 || !strings.Contains(r.stdout, "sectors per cluster 3") || !strings.Contains(r.stdout, "0xd") {
		t.Errorf("info: %+v", r)
	}
	r = xpboot(t, dir, "image", "ls", "disk.img")
	if r.code != 1 || !strings.Contains(r.stderr, "sectors per cluster 3") {
		t.Errorf("ls: %+v", r)
	}
}

// TestForceShare: an image another process holds exclusively (as xpboot
// serve does) is refused by read-only commands, and readable with -U.
func TestForceShare(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"image", "create", "--size", "64M", "disk.img"},
		{"image", "convert", "disk.img", "disk.vmdk"},
		{"image", "convert", "disk.img", "disk.vhd"},
	} {
		if r := xpboot(t, dir, args...); r.code != 0 {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	for _, name := range []string{"disk.img", "disk.vmdk", "disk.vhd"} {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if r := xpboot(t, dir, "image", "ls", name); r.code == 0 || !strings.Contains(r.stderr, "lock") {
			t.Errorf("%s held: ls without -U: %+v", name, r)
		}
		for _, args := range [][]string{
			{"image", "ls", name + ":/", "-U"},
			{"image", "info", name, "--force-share"},
			{"image", "get", name + ":/", filepath.Join(dir, "out-"+name), "-U"},
		} {
			if r := xpboot(t, dir, args...); r.code != 0 {
				t.Errorf("%s held: %q: %+v", name, args, r)
			}
		}
		f.Close()
	}
}

// TestImageInfoFreeBytes: image info gives the free space of FAT32 and
// NTFS volumes, and for NTFS it is exactly the clusters $Bitmap leaves
// clear, as Sleuth Kit's icat reads $Bitmap (record 6), after a put and
// after a removal.
func TestImageInfoFreeBytes(t *testing.T) {
	icat := peertest.Need(t, "icat", "sleuthkit")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "src", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := os.WriteFile(filepath.Join(dir, "src", "sub", "f"+strconv.Itoa(i)), make([]byte, 100+i*300), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "big.bin"), make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	free := func(img string) int64 {
		t.Helper()
		r := xpboot(t, dir, "image", "info", "--json", img)
		var info struct {
			Partitions []struct {
				StartLBA  int64  `json:"start_lba"`
				FreeBytes *int64 `json:"free_bytes"`
			} `json:"partitions"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || len(info.Partitions) != 1 || info.Partitions[0].FreeBytes == nil {
			t.Fatalf("image info %s: no free_bytes: %+v", img, r)
		}
		return *info.Partitions[0].FreeBytes
	}
	// bitmapFree counts the clear bits of $Bitmap as icat reads it.
	bitmapFree := func(img string) int64 {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join(dir, img))
		if err != nil {
			t.Fatal(err)
		}
		boot := raw[63*512:]
		csize := int64(boot[0x0B]) | int64(boot[0x0C])<<8
		csize *= int64(boot[0x0D])
		total := int64(0)
		for i := 7; i >= 0; i-- {
			total = total<<8 | int64(boot[0x28+i])
		}
		clusters := total * 512 / csize
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		bm, err := exec.CommandContext(ctx, icat, "-o", "63", filepath.Join(dir, img), "6").Output() // stdout only: the stream
		if err != nil || int64(len(bm))*8 < clusters {
			t.Fatalf("icat $Bitmap: %v, %d bytes for %d clusters", err, len(bm), clusters)
		}
		var n int64
		for c := int64(0); c < clusters; c++ {
			if bm[c/8]&(1<<(c%8)) == 0 {
				n++
			}
		}
		return n * csize
	}
	for _, fs := range []string{"fat32", "ntfs"} {
		img := fs + ".img"
		if r := xpboot(t, dir, "image", "create", "--fs", fs, "--size", "128M", img); r.code != 0 {
			t.Fatalf("create %s: %+v", fs, r)
		}
		empty := free(img)
		if r := xpboot(t, dir, "image", "put", "src/sub", "src/big.bin", img+":/"); r.code != 0 {
			t.Fatalf("put: %+v", r)
		}
		full := free(img)
		if r := xpboot(t, dir, "image", "rm", img+":/big.bin"); r.code != 0 {
			t.Fatalf("rm: %+v", r)
		}
		after := free(img)
		if empty-full < 3<<20 || after-full < 3<<20-64<<10 || after > empty {
			t.Errorf("%s: free %d empty, %d after putting 3.4 MB, %d after removing 3 MB of it", fs, empty, full, after)
		}
		if fs == "ntfs" {
			if want := bitmapFree(img); after != want {
				t.Errorf("ntfs: image info says %d bytes free, $Bitmap (icat) %d", after, want)
			}
		}
	}
}
