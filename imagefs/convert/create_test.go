package convert

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestCreateImageFormats creates an XP disk directly in every output format:
// qemu-img must see the format and the size, and xpboot must find the same
// partition table, FAT32 volume and files through the container.
func TestCreateImageFormats(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	qemuFormat := map[imagefs.Format]string{
		imagefs.FormatVMDKSparse: "vmdk", imagefs.FormatVMDKFlat: "vmdk", imagefs.FormatVMDKStream: "vmdk",
		imagefs.FormatVHDDynamic: "vpc", imagefs.FormatVHDFixed: "vpc",
	}
	for format, qf := range qemuFormat {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "disk."+qf)
			res, _, err := CreateImage(context.Background(), out, format,
				imagefs.CreateOptions{Size: 128 << 20, Label: "FMT", DiskSignature: 0xabcd0123}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Format      string `json:"format"`
				VirtualSize int64  `json:"virtual-size"`
			}
			if err := json.Unmarshal(peertest.Run(t, time.Minute, qemu, "info", "--output=json", "-f", qf, out), &info); err != nil {
				t.Fatal(err)
			}
			if info.Format != qf || info.VirtualSize < 128<<20 || info.VirtualSize != res.Size {
				t.Errorf("qemu-img info: %+v, xpboot size %d", info, res.Size)
			}
			img, err := imagefs.Open(out, false)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Format != format || img.MBR.Signature != 0xabcd0123 {
				t.Errorf("opened as %s, signature %08x", img.Format, img.MBR.Signature)
			}
			if pi := img.Info().Partitions; len(pi) != 1 || pi[0].FS != imagefs.FSFAT32 || pi[0].Label != "FMT" {
				t.Errorf("partitions %+v", pi)
			}
			entries, _ := os.ReadDir(dir)
			want := 1
			if format == imagefs.FormatVMDKFlat {
				want = 2 // descriptor and extent
			}
			if len(entries) != want {
				t.Errorf("%d files left in the directory, want %d", len(entries), want)
			}
		})
	}
	if _, _, err := CreateImage(context.Background(), filepath.Join(t.TempDir(), "x.vhd"), imagefs.FormatVHDFixed,
		imagefs.CreateOptions{Size: 100<<20 + 512}, Options{Exact: true}); err == nil {
		t.Error("--exact with a size VHD cannot hold was accepted")
	}
}
