package mbr

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// sfdiskDisk lays out a 64 MiB disk with sfdisk: a primary partition, an
// extended partition with three logical ones, and returns the image bytes
// and sfdisk's own reading of it.
func sfdiskDisk(t *testing.T) ([]byte, []sfdiskPart) {
	t.Helper()
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "label: dos\n" +
		"start=63, size=20000, type=c, bootable\n" +
		"start=20480, type=f\n" +
		"size=10000, type=7\n" +
		"size=12000, type=b\n" +
		"type=7\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sfdisk, "--no-reread", "--no-tell-kernel", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	out := peertest.Run(t, time.Minute, sfdisk, "--json", img)
	var dump struct {
		PartitionTable struct {
			Partitions []sfdiskPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return data, dump.PartitionTable.Partitions
}

type sfdiskPart struct {
	Node  string `json:"node"`
	Start uint32 `json:"start"`
	Size  uint32 `json:"size"`
	Type  string `json:"type"`
}

// TestReadLogicalAgainstSfdisk reads the EBR chain sfdisk wrote and
// compares every logical partition with sfdisk's own listing (nodes 5, 6, 7).
func TestReadLogicalAgainstSfdisk(t *testing.T) {
	data, parts := sfdiskDisk(t)
	m, err := Parse(data[:SectorSize], uint64(len(data)/SectorSize))
	if err != nil {
		t.Fatal(err)
	}
	if !IsExtended(m.Entries[1].Type) {
		t.Fatalf("entry 2 has type 0x%02x", m.Entries[1].Type)
	}
	logical, err := ReadLogical(bytes.NewReader(data), m.Entries[1])
	if err != nil {
		t.Fatal(err)
	}
	var want []sfdiskPart
	for _, p := range parts {
		if strings.HasSuffix(p.Node, "5") || strings.HasSuffix(p.Node, "6") || strings.HasSuffix(p.Node, "7") {
			want = append(want, p)
		}
	}
	if len(logical) != 3 || len(want) != 3 {
		t.Fatalf("%d logical partitions, sfdisk lists %d: %+v", len(logical), len(want), parts)
	}
	for i, l := range logical {
		if l.Start != want[i].Start || l.Sectors != want[i].Size || want[i].Type != fmt.Sprintf("%x", l.Type) {
			t.Errorf("logical %d: start %d size %d type 0x%02x; sfdisk %+v", i+5, l.Start, l.Sectors, l.Type, want[i])
		}
	}
}

// TestReadLogicalDamaged: a chain that loops, leaves the extended
// partition or lacks its signature is an error naming the sector.
func TestReadLogicalDamaged(t *testing.T) {
	data, _ := sfdiskDisk(t)
	m, err := Parse(data[:SectorSize], uint64(len(data)/SectorSize))
	if err != nil {
		t.Fatal(err)
	}
	ext := m.Entries[1]
	logical, err := ReadLogical(bytes.NewReader(data), ext)
	if err != nil {
		t.Fatal(err)
	}
	second := logical[1].EBR
	tests := []struct {
		name string
		mess func(d []byte)
		want string
	}{
		{"loop", func(d []byte) {
			// The second EBR links back to the first.
			link := d[int(second)*SectorSize+tableOffset+entrySize:]
			link[4] = TypeExtended
			binary.LittleEndian.PutUint32(link[8:], logical[0].EBR-ext.Start)
			binary.LittleEndian.PutUint32(link[12:], 1)
		}, "loops"},
		{"outside", func(d []byte) {
			binary.LittleEndian.PutUint32(d[int(second)*SectorSize+tableOffset+12:], 1<<30)
		}, "outside the extended partition"},
		{"no signature", func(d []byte) { d[int(second)*SectorSize+510] = 0 }, "55 AA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := append([]byte{}, data...)
			tt.mess(d)
			_, err := ReadLogical(bytes.NewReader(d), ext)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "sector") {
				t.Errorf("got %v, want an error with %q naming the sector", err, tt.want)
			}
		})
	}
}

// FuzzReadLogical: any bytes behind an extended partition give logical
// partitions inside it or an error, never a panic or a hang.
func FuzzReadLogical(f *testing.F) {
	ebr := make([]byte, 4*SectorSize)
	ebr[510], ebr[511] = 0x55, 0xAA
	ebr[tableOffset+4] = TypeNTFS
	binary.LittleEndian.PutUint32(ebr[tableOffset+8:], 1)
	binary.LittleEndian.PutUint32(ebr[tableOffset+12:], 1)
	ebr[tableOffset+entrySize+4] = TypeExtended
	binary.LittleEndian.PutUint32(ebr[tableOffset+entrySize+8:], 2)
	binary.LittleEndian.PutUint32(ebr[tableOffset+entrySize+12:], 2)
	copy(ebr[2*SectorSize:], ebr[:SectorSize])
	f.Add(ebr)
	f.Fuzz(func(t *testing.T, data []byte) {
		ext := Entry{Type: TypeExtLBA, Start: 0, Sectors: uint32(len(data) / SectorSize)}
		if ext.Sectors == 0 {
			return
		}
		list, _ := ReadLogical(bytes.NewReader(data), ext)
		for _, l := range list {
			if l.Start < ext.Start || l.End() > ext.End() {
				t.Fatalf("logical partition %+v outside %+v", l, ext)
			}
		}
	})
}
