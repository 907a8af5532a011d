package resize

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestRefusedFileSystems: growing a partition whose file system is not
// FAT32 or NTFS is refused before any write, the error naming what the
// boot sector holds (fsid.Detect's reason).
func TestRefusedFileSystems(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	d := t.TempDir()
	tests := []struct {
		name string
		boot func(vol string)
		want string
	}{
		{"FAT16", func(vol string) { peertest.Run(t, peerMax, mkfs, "-F", "16", vol) }, "FAT16 file system ("},
		{"exFAT", func(vol string) {
			b := make([]byte, 512)
			copy(b, "\xEB\x76\x90EXFAT   ")
			b[510], b[511] = 0x55, 0xAA
			os.WriteFile(vol, b, 0o644)
		}, "exFAT file system"},
		{"unknown", func(vol string) {
			b := make([]byte, 512)
			copy(b, "\xEB\x3C\x90OTHEROS!")
			b[510], b[511] = 0x55, 0xAA
			os.WriteFile(vol, b, 0o644)
		}, `unknown file system (OEM id "OTHEROS!")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			disk := filepath.Join(d, tc.name+".img")
			if err := os.WriteFile(disk, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(disk, 64*mib); err != nil {
				t.Fatal(err)
			}
			sfdisk(t, disk, "start=2048, size=30720, type=6\n")
			vol := filepath.Join(d, tc.name+".vol")
			if err := os.WriteFile(vol, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(vol, 30720*512); err != nil {
				t.Fatal(err)
			}
			tc.boot(vol)
			b, err := os.ReadFile(vol)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(disk, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteAt(b, 2048*512)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			before := sum(t, disk)
			_, err = Resize(ctx(t), disk, Options{Size: 96 * mib, GrowPartition: true})
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "partition 1") {
				t.Fatalf("error %v, want ErrUnsupported naming partition 1 and %q", err, tc.want)
			}
			if sum(t, disk) != before {
				t.Error("a refused resize changed the image")
			}
		})
	}
}
