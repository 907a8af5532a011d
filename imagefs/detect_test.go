package imagefs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/fsid"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestDetectPartitions names partitions by fsid's rules through Image:
// Detect keeps its four names, Identify and FS say why a partition cannot
// be opened.
func TestDetectPartitions(t *testing.T) {
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	dir := t.TempDir()
	// volume returns the image of a partition-sized volume made by mkfs.fat.
	volume := func(size int64, args ...string) []byte {
		return peertest.Volume(t, size, mkfs, args...)
	}
	tests := []struct {
		name     string
		vol      func(size int64) []byte
		detect   string
		kind     fsid.Kind
		sentinel error  // of Identify and FS; nil: FS opens it
		fsErr    string // in FS's error
	}{
		{"fat32", func(size int64) []byte { return volume(size, "-F", "32", "-s", "1") }, FSFAT32, fsid.FAT32, nil, ""},
		{"fat16", func(size int64) []byte { return volume(size, "-F", "16") }, FSFAT16, fsid.FAT16, fsid.ErrUnsupported, "FAT16 file system ("},
		{"FAT32 with too few clusters", func(size int64) []byte {
			b := volume(size, "-F", "32", "-s", "1")
			binary.LittleEndian.PutUint32(b[0x20:], 60000) // total sectors
			return b
		}, FSUnknown, fsid.FAT32, fsid.ErrDamaged, "damaged FAT32 boot sector"},
		{"exFAT", func(size int64) []byte {
			b := make([]byte, 4096)
			copy(b, "\xEB\x76\x90EXFAT   ")
			b[510], b[511] = 0x55, 0xAA
			return b
		}, FSUnknown, fsid.ExFAT, fsid.ErrUnsupported, "exFAT file system: xpboot reads FAT32 and NTFS"},
		{"unformatted", func(int64) []byte { return nil }, FSUnknown, fsid.None, fsid.ErrUnsupported, "all zeros"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".img")
			res, err := Create(path, CreateOptions{Size: 64 << 20, FS: "none"})
			if err != nil {
				t.Fatal(err)
			}
			if b := tc.vol(res.Partition.Size); b != nil {
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.WriteAt(b, res.Partition.Offset)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			img, err := Open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			p := img.Partitions()[0]
			if got := img.Detect(p); got != tc.detect {
				t.Errorf("Detect %q, want %q", got, tc.detect)
			}
			kind, why := img.Identify(p)
			if kind != tc.kind || (tc.sentinel == nil) != (why == nil) || (why != nil && !errors.Is(why, tc.sentinel)) {
				t.Errorf("Identify: %q, %v; want %q, %v", kind, why, tc.kind, tc.sentinel)
			}
			_, err = img.FS(1)
			if tc.sentinel == nil {
				if err != nil {
					t.Fatalf("FS: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.fsErr) || !strings.Contains(err.Error(), "partition 1") {
				t.Errorf("FS error %v, want one naming partition 1 and %q", err, tc.fsErr)
			}
			// The default partition: the same reason.
			_, err = img.FS(0)
			if err == nil || !strings.Contains(err.Error(), tc.fsErr) || !strings.Contains(err.Error(), "partition 1") {
				t.Errorf("FS(0) error %v, want one naming partition 1 and %q", err, tc.fsErr)
			}
		})
	}
}

// TestPutRefusedNTFS: a put into an NTFS volume the writer refuses (here a
// live hiberfil.sys) fails with the refusal, not with a free-space check
// against FreeBytes' -1 ("only -1 free in the image"), as it did when the
// free space was found by a type assertion.
func TestPutRefusedNTFS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ntfs.img")
	if _, err := Create(path, CreateOptions{Size: 64 << 20, FS: "ntfs"}); err != nil {
		t.Fatal(err)
	}
	hiber := filepath.Join(dir, "hiberfil.sys")
	if err := os.WriteFile(hiber, append([]byte("hibr"), make([]byte, 8188)...), 0o644); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(small, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(src, dest string) (FS, error) {
		t.Helper()
		img, err := Open(path, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { img.Close() })
		fs, err := img.FS(0)
		if err != nil {
			t.Fatal(err)
		}
		if fs.FreeBytes() < 0 && dest == "/hiberfil.sys" {
			t.Fatalf("a fresh NTFS volume reports free space %d", fs.FreeBytes())
		}
		_, err = Put(fs, []string{src}, dest, nil)
		if cerr := img.Close(); err == nil {
			err = cerr
		}
		return fs, err
	}
	if _, err := put(hiber, "/hiberfil.sys"); err != nil {
		t.Fatal(err)
	}
	fs, err := put(small, "/small.txt")
	if !errors.Is(err, ntfs.ErrRefused) || strings.Contains(err.Error(), "free") {
		t.Fatalf("put into a hibernated volume: %v, want the refusal", err)
	}
	if free := fs.FreeBytes(); free >= 0 {
		t.Errorf("refused volume reports %d bytes free, want a negative (unknown) count", free)
	}
	var stdin bytes.Buffer
	stdin.WriteString("from stdin")
	img, err := Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	fs, err = img.FS(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := PutFrom(fs, &stdin, "/stdin.txt", time.Now()); !errors.Is(err, ntfs.ErrRefused) || strings.Contains(err.Error(), "free") {
		t.Errorf("put from stdin into a hibernated volume: %v, want the refusal", err)
	}
}
