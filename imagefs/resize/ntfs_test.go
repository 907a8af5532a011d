package resize

// Growing NTFS volumes, checked by ntfsfix and read back through ntfs-3g.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

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
