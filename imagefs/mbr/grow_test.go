package mbr

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// memDisk is an in-memory disk for Apply.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error)  { return bytes.NewReader(m).ReadAt(p, off) }
func (m memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m[off:], p), nil }

func TestPlanGrowPrimary(t *testing.T) {
	const disk = 4 << 30 / SectorSize
	cyl := uint64(XPGeometry.CylinderSectors())
	aligned, _ := Layout(1<<30/SectorSize, 63, XPGeometry, TypeNTFS)
	unaligned := Entry{Type: TypeNTFS, Start: 2048, Sectors: 100000, StartCHS: XPGeometry.CHSOf(2048), EndCHS: XPGeometry.CHSOf(2048 + 100000 - 1)}
	tests := []struct {
		name    string
		e       Entry
		sectors uint64
		want    uint32 // new sectors; 0: error expected
	}{
		{"to a cylinder boundary", aligned, 0, uint32(disk/cyl*cyl - 63)},
		{"to the end of the disk", unaligned, 0, disk - 2048},
		{"exact size", unaligned, 200000, 200000},
		{"same size", unaligned, 100000, 100000},
		{"shrink", unaligned, 50000, 0},
		{"past the disk", unaligned, disk, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &MBR{Signature: 0x12345678, Entries: [4]Entry{tt.e}}
			img := make(memDisk, SectorSize)
			copy(img, m.Bytes())
			g, err := PlanGrow(img, m, disk, tt.sectors)
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("planned %+v, want an error", g)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.NewSectors != tt.want || g.Index != 1 || g.Extended != 0 {
				t.Fatalf("grows partition %d to %d sectors, want 1 to %d", g.Index, g.NewSectors, tt.want)
			}
			if err := g.Apply(img); err != nil {
				t.Fatal(err)
			}
			got, err := Parse(img, disk)
			if err != nil {
				t.Fatal(err)
			}
			e := got.Entries[0]
			if e.Sectors != tt.want || e.Start != tt.e.Start || e.Type != tt.e.Type || got.Signature != m.Signature {
				t.Errorf("entry after grow %+v", e)
			}
			if e.EndCHS != XPGeometry.CHSOf(uint32(e.End()-1)) {
				t.Errorf("end CHS %v, want %v", e.EndCHS, XPGeometry.CHSOf(uint32(e.End()-1)))
			}
		})
	}
}

// TestPlanGrowLogical grows the last of three logical partitions sfdisk
// made, on a disk twice as large, and has sfdisk read the result: the
// extended partition and the last logical one end at the new end, the
// others are unchanged.
func TestPlanGrowLogical(t *testing.T) {
	data, before := sfdiskDisk(t)
	disk := make(memDisk, 2*len(data))
	copy(disk, data)
	m, err := Parse(disk[:SectorSize], uint64(len(disk)/SectorSize))
	if err != nil {
		t.Fatal(err)
	}
	g, err := PlanGrow(disk, m, uint64(len(disk)/SectorSize), 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Index != 7 || g.Extended != 2 {
		t.Fatalf("grows partition %d (extended %d), want 7 (2)", g.Index, g.Extended)
	}
	if err := g.Apply(disk); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	sfdisk := peertest.Need(t, "sfdisk", "fdisk")
	out := peertest.Run(t, time.Minute, sfdisk, "--json", img)
	var dump struct {
		PartitionTable struct {
			Partitions []sfdiskPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	after := dump.PartitionTable.Partitions
	if len(after) != len(before) {
		t.Fatalf("sfdisk lists %d partitions, before %d", len(after), len(before))
	}
	end := uint32(len(disk) / SectorSize)
	for i, p := range after {
		b := before[i]
		p.Node, b.Node = filepath.Base(p.Node), filepath.Base(b.Node)
		switch {
		case strings.HasSuffix(p.Node, "2"), strings.HasSuffix(p.Node, "7"):
			if p.Start != b.Start || p.Start+p.Size != end {
				t.Errorf("%s: %d+%d, want to end at %d", p.Node, p.Start, p.Size, end)
			}
		default:
			if p != b {
				t.Errorf("%s changed: %+v, was %+v", p.Node, p, b)
			}
		}
	}
	// The EBR of partition 6 links to partition 7's EBR with a length that
	// now reaches the new end.
	ext := m.Entries[1]
	logical, err := ReadLogical(disk, Entry{Type: ext.Type, Start: ext.Start, Sectors: end - ext.Start})
	if err != nil {
		t.Fatal(err)
	}
	link := parseEntry(disk[int64(logical[1].EBR)*SectorSize+tableOffset+entrySize:])
	if got := ext.Start + link.Start + link.Sectors; got != end {
		t.Errorf("link to the last EBR ends at %d, want %d", got, end)
	}
}

func TestLastEnd(t *testing.T) {
	data, parts := sfdiskDisk(t)
	m, err := Parse(data[:SectorSize], uint64(len(data)/SectorSize))
	if err != nil {
		t.Fatal(err)
	}
	end, err := LastEnd(bytes.NewReader(data), m)
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, p := range parts {
		want = max(want, uint64(p.Start)+uint64(p.Size))
	}
	if end != want {
		t.Errorf("LastEnd %d, want %d", end, want)
	}
}

// FuzzPlanGrow feeds arbitrary sector 0 and EBRs to PlanGrow and Apply: no
// panic, and an applied plan leaves a table that parses.
func FuzzPlanGrow(f *testing.F) {
	e, _ := Layout(1<<30/SectorSize, 63, XPGeometry, TypeNTFS)
	seed := make([]byte, 8*SectorSize)
	copy(seed, (&MBR{Signature: 1, Entries: [4]Entry{e}}).Bytes())
	f.Add(seed, uint64(4<<30/SectorSize), uint64(0))
	ext := make([]byte, 8*SectorSize)
	m := &MBR{Signature: 2, Entries: [4]Entry{{Type: TypeExtLBA, Start: 2, Sectors: 6}}}
	copy(ext, m.Bytes())
	ebr := ext[2*SectorSize:]
	ebr[510], ebr[511] = 0x55, 0xAA
	ebr[tableOffset+4] = TypeNTFS
	binary.LittleEndian.PutUint32(ebr[tableOffset+8:], 1)
	binary.LittleEndian.PutUint32(ebr[tableOffset+12:], 2)
	ebr[tableOffset+entrySize+4] = TypeExtended
	binary.LittleEndian.PutUint32(ebr[tableOffset+entrySize+8:], 3)
	binary.LittleEndian.PutUint32(ebr[tableOffset+entrySize+12:], 3)
	ebr2 := ext[5*SectorSize:]
	copy(ebr2, ebr[:SectorSize])
	clear(ebr2[tableOffset+entrySize : tableOffset+2*entrySize])
	f.Add(ext, uint64(64), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, disk, sectors uint64) {
		if len(data) < SectorSize || len(data) > 1<<16 {
			return
		}
		disk = max(disk%(1<<33), uint64(len(data)/SectorSize))
		m, err := Parse(data, disk)
		if err != nil {
			return
		}
		g, err := PlanGrow(bytes.NewReader(data), m, disk, sectors%(1<<33))
		if err != nil {
			return
		}
		img := make(memDisk, len(data))
		copy(img, data)
		for _, w := range g.writes {
			if int64(w.lba)*SectorSize >= int64(len(img)) {
				return
			}
		}
		if err := g.Apply(img); err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(img, disk); err != nil {
			t.Fatalf("table after Apply does not parse: %v", err)
		}
	})
}
