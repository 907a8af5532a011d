package fsid_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/fsid"
)

// FuzzDetect feeds arbitrary sectors and partition sizes to Detect. Seeds in
// testdata/fuzz/FuzzDetect are boot sectors made by mkfs.fat (FAT12, FAT16,
// FAT32), mkntfs, an exFAT sector built by the specification, and damaged
// copies of them.
func FuzzDetect(f *testing.F) {
	f.Add(make([]byte, fsid.SectorSize), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		orig := bytes.Clone(b)
		kind, err := fsid.Detect(b, size)
		if !bytes.Equal(b, orig) {
			t.Fatal("Detect changed its input")
		}
		switch kind {
		case fsid.Unknown, fsid.None, fsid.FAT12, fsid.FAT16, fsid.FAT32, fsid.NTFS, fsid.ExFAT:
		default:
			t.Fatalf("kind %q is not one Detect documents", kind)
		}
		if ok := kind == fsid.FAT32 || kind == fsid.NTFS; err == nil && !ok {
			t.Fatalf("kind %q without an error", kind)
		}
		if err != nil {
			var de *fsid.Error
			if !errors.As(err, &de) || de.Kind != kind || err.Error() == "" {
				t.Fatalf("error %#v is not an *fsid.Error of kind %q", err, kind)
			}
			if errors.Is(err, fsid.ErrUnsupported) == errors.Is(err, fsid.ErrDamaged) {
				t.Fatalf("error %v: want exactly one of ErrUnsupported, ErrDamaged", err)
			}
			if errors.Is(err, fsid.ErrDamaged) && kind != fsid.FAT32 {
				t.Fatalf("damaged %q", kind)
			}
		}
		if kind == fsid.FAT32 && err == nil {
			if _, perr := fat32.ParseBootSector(b, size); perr != nil {
				t.Fatalf("FAT32 without error, but fat32 refuses it: %v", perr)
			}
		}
		if len(b) > fsid.SectorSize {
			// Only the first sector counts.
			k2, err2 := fsid.Detect(b[:fsid.SectorSize], size)
			if k2 != kind || (err2 == nil) != (err == nil) {
				t.Fatalf("Detect of the first sector: %q %v, of all: %q %v", k2, err2, kind, err)
			}
		}
	})
}
