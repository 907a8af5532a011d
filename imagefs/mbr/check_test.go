package mbr_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/internal/peertest"
)

// Sectors of the layout tableDisk makes.
const (
	diskSectors = 131072 // 64 MiB
	ext         = 43008  // extended partition, first EBR
	ebr2        = 53248  // second EBR (sfdisk puts it 2048 sectors before logical 6)
)

// tableDisk partitions a 64 MiB file with sfdisk: an active FAT32
// partition, an NTFS partition, and an extended partition holding two
// logical ones; it returns the disk's bytes.
func tableDisk(t *testing.T) []byte {
	t.Helper()
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, diskSectors*512); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sfdisk, "-q", p)
	cmd.Stdin = strings.NewReader("label: dos\nlabel-id: 0x12345678\n" +
		"start=2048, size=20480, type=c, bootable\n" +
		"start=22528, size=20480, type=7\n" +
		"start=43008, type=f\n" +
		"start=45056, size=8192, type=83\n" +
		"start=55296, size=8192, type=83\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(b[ebr2*512+446+8:]) != 2048 {
		t.Fatalf("sfdisk put the second EBR elsewhere than sector %d", ebr2)
	}
	return b
}

// entry returns the offset of primary entry i (1-based) of the table in
// the sector at lba.
func entry(lba, i int) int { return lba*512 + 446 + (i-1)*16 }

func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// sfdiskErrors runs sfdisk --verify and returns the problems it lists,
// or nil when it says "No errors detected" (its exit status is 0 either
// way).
func sfdiskErrors(t *testing.T, disk []byte) []string {
	t.Helper()
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	p := filepath.Join(t.TempDir(), "v.img")
	if err := os.WriteFile(p, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, sfdisk, "--verify", p).CombinedOutput()
	s := string(out)
	if strings.Contains(s, "No errors detected") {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasSuffix(l, ":") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("sfdisk --verify said neither clean nor what is wrong:\n%s", s)
	}
	return lines
}

func TestCheckTableFindings(t *testing.T) {
	clean := tableDisk(t)
	tests := []struct {
		name      string
		corrupt   func(b []byte)
		structure string
		off       int64 // where the finding must point
		msg       string
		// sfdisk is what sfdisk --verify must print among its errors,
		// "" when it reports no error for this damage.
		sfdisk string
	}{
		{"clean", func([]byte) {}, "", 0, "", ""},
		{"primaries overlap", func(b []byte) { put32(b, entry(0, 2)+8, 3000) },
			"partition table", 446 + 16 + 8, "partitions 1 (sectors 2048..22527) and 2 (sectors 3000..23479) overlap", "Partition 1: overlaps partition 2"},
		{"past the end of the disk", func(b []byte) { put32(b, entry(0, 2)+12, 200000) },
			"partition table", 446 + 16 + 8, "partition 2: sectors 22528..222527 lie past the end of the 131072-sector disk", "overlaps partition 5"},
		{"boot indicator", func(b []byte) { b[entry(0, 2)] = 0x81 },
			"partition table", 446 + 16, "partition 2: boot indicator 0x81 is neither 0x00 nor 0x80", ""},
		{"two active", func(b []byte) { b[entry(0, 2)] = 0x80 },
			"partition table", 446, "2 partitions are marked active", ""},
		{"active extended", func(b []byte) { b[entry(0, 3)] = 0x80; b[entry(0, 1)] = 0 },
			"partition table", 446 + 32, "partition 3: an extended partition is marked active", ""},
		{"no sectors", func(b []byte) { put32(b, entry(0, 2)+12, 0) },
			"partition table", 446 + 16 + 8, "partition 2 (type 0x07): start sector 22528, 0 sectors", ""},
		{"starts at sector 0", func(b []byte) { put32(b, entry(0, 2)+8, 0) },
			"partition table", 446 + 16 + 8, "partition 2 (type 0x07): start sector 0, 20480 sectors", "Partition 1: overlaps partition 2"},
		{"empty entry with sectors", func(b []byte) { put32(b, entry(0, 4)+8, 100000); put32(b, entry(0, 4)+12, 100) },
			"partition table", 446 + 48, "partition 4: type 0 (empty) but active or with 100 sectors", ""},
		{"EBR chain loops", func(b []byte) {
			put32(b, entry(ebr2, 2)+8, 0)
			b[entry(ebr2, 2)+4] = 0x05
			put32(b, entry(ebr2, 2)+12, 100)
		},
			"extended boot record", ebr2 * 512, "extended boot record at sector 43008: the chain loops back to it",
			// sfdisk follows the loop to 60 logical partitions, each
			// overlapping the ones before.
			"Omitting partitions after #60"},
		{"logical partition leaves the extended one", func(b []byte) { put32(b, entry(ext, 1)+12, 200000) },
			"extended boot record", ext * 512, "logical partition at 2048+200000 sectors lies outside the extended partition (sectors 43008..131071)",
			"Logical partition 5: not entirely in partition 3"},
		{"EBR link leaves the extended one", func(b []byte) { put32(b, entry(ext, 2)+8, 100000) },
			"extended boot record", ext * 512, "extended boot record at sector 43008: next record at 100000 lies outside the extended partition", ""},
		{"EBR without signature", func(b []byte) { b[ebr2*512+510] = 0 },
			"extended boot record", ebr2 * 512, "extended boot record at sector 53248 does not end in 55 AA", ""},
		{"EBR link of another type", func(b []byte) { b[entry(ext, 2)+4] = 0x83 },
			"extended boot record", ext * 512, "second entry has type 0x83", ""},
		{"logical partitions overlap", func(b []byte) { put32(b, entry(ext, 1)+12, 12000) },
			"extended boot record", ebr2 * 512, "logical partitions 5 and 6 overlap", "Partition 5: overlaps partition 6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(clean)
			tc.corrupt(b)
			fs, err := mbr.CheckTable(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.structure == "" {
				if len(fs) != 0 {
					t.Fatalf("clean table has findings: %+v", fs)
				}
			} else {
				found := false
				for _, f := range fs {
					if f.Structure == tc.structure && strings.Contains(f.Message, tc.msg) && f.Severity == mbr.SeverityError {
						if f.Offset != tc.off {
							t.Fatalf("finding at byte %d, want %d: %+v", f.Offset, tc.off, f)
						}
						found = true
					}
				}
				if !found {
					t.Fatalf("no %s finding %q; got %+v", tc.structure, tc.msg, fs)
				}
			}
			errs := sfdiskErrors(t, b)
			switch {
			case tc.structure == "" && errs != nil:
				t.Fatalf("sfdisk --verify finds errors on the clean table: %q", errs)
			case tc.sfdisk != "" && !strings.Contains(strings.Join(errs, "\n"), tc.sfdisk):
				t.Fatalf("sfdisk --verify says %q, want %q among its errors", errs, tc.sfdisk)
			case tc.sfdisk == "" && errs != nil:
				t.Logf("sfdisk --verify also reports: %q", errs[:min(len(errs), 3)])
			}
		})
	}
	t.Run("no table", func(t *testing.T) {
		b := bytes.Clone(clean)
		b[511] = 0
		if _, err := mbr.CheckTable(bytes.NewReader(b), int64(len(b))); err != mbr.ErrNoTable {
			t.Fatalf("err %v, want ErrNoTable", err)
		}
	})
}
