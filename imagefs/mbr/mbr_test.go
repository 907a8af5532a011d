package mbr

import (
	"bytes"
	"errors"
	"testing"
)

func TestLayoutXP(t *testing.T) {
	tests := []struct {
		name        string
		diskSectors uint64
		align       uint32
		wantStart   uint32
		wantSectors uint32
		wantStart3  CHS
		wantEnd3    CHS
	}{
		// 4 GiB: 522 whole cylinders of 16065 sectors.
		{"4GiB", 4 << 30 / 512, 63, 63, 522*16065 - 63, CHS{1, 1, 0}, CHS{254, 63 | 0x80, 9}},
		// 64 MiB: 8 cylinders.
		{"64MiB", 64 << 20 / 512, 63, 63, 8*16065 - 63, CHS{1, 1, 0}, CHS{254, 63, 7}},
		// 40 GiB: end beyond cylinder 1023 is stored as 1023/254/63.
		{"40GiB", 40 << 30 / 512, 63, 63, 5221*16065 - 63, CHS{1, 1, 0}, CHS{254, 0xFF, 0xFF}},
		// 1 MiB alignment still ends on a cylinder boundary.
		{"align2048", 100 << 20 / 512, 2048, 2048, 12*16065 - 2048, CHS{32, 33, 0}, CHS{254, 63, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Layout(tt.diskSectors, tt.align, XPGeometry, TypeFAT32LBA)
			if err != nil {
				t.Fatal(err)
			}
			if e.Start != tt.wantStart || e.Sectors != tt.wantSectors {
				t.Errorf("start %d sectors %d, want %d %d", e.Start, e.Sectors, tt.wantStart, tt.wantSectors)
			}
			if e.StartCHS != tt.wantStart3 || e.EndCHS != tt.wantEnd3 {
				t.Errorf("CHS %v..%v (% x..% x), want %v..%v", e.StartCHS, e.EndCHS, e.StartCHS, e.EndCHS, tt.wantStart3, tt.wantEnd3)
			}
			if !e.Active {
				t.Error("partition not active")
			}
		})
	}
}

func TestLayoutErrors(t *testing.T) {
	if _, err := Layout(16000, 63, XPGeometry, TypeFAT32LBA); err == nil {
		t.Error("one-cylinder disk: want error")
	}
	if _, err := Layout(1<<32, 63, XPGeometry, TypeFAT32LBA); err == nil {
		t.Error("2 TiB+ disk: want error")
	}
}

func TestRoundTrip(t *testing.T) {
	e, _ := Layout(4<<30/512, 63, XPGeometry, TypeFAT32LBA)
	m := &MBR{Signature: 0xDEADBEEF}
	m.Entries[0] = e
	copy(m.Code[:], "code")
	b := m.Bytes()
	if b[510] != 0x55 || b[511] != 0xAA || b[446] != 0x80 || b[450] != 0x0C {
		t.Fatalf("bad encoding: % x", b[440:])
	}
	got, err := Parse(b, 4<<30/512)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *m {
		t.Fatalf("round trip: got %+v want %+v", got, m)
	}
	if !bytes.Equal(got.Bytes(), b) {
		t.Fatal("re-encoding differs")
	}
	if g, ok := got.GuessGeometry(); !ok || g != XPGeometry {
		t.Errorf("GuessGeometry = %v %v", g, ok)
	}
	if i, err := got.Active(); i != 0 || err != nil {
		t.Errorf("Active = %d %v", i, err)
	}
}

func TestParseErrors(t *testing.T) {
	e, _ := Layout(4<<30/512, 63, XPGeometry, TypeFAT32LBA)
	good := (&MBR{Entries: [4]Entry{e}}).Bytes()
	mess := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		disk uint64
		off  int
	}{
		{"boot indicator", mess(func(b []byte) { b[446] = 0x12 }), 0, 446},
		{"past end", good, 1000, 454},
		{"overlap", mess(func(b []byte) { copy(b[462:478], b[446:462]); b[462] = 0 }), 0, 470},
		{"empty with size", mess(func(b []byte) { b[462+12] = 1 }), 0, 462},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.b, tt.disk)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Off != tt.off {
				t.Fatalf("err = %v, want FormatError at %d", err, tt.off)
			}
		})
	}
	if _, err := Parse(make([]byte, 512), 0); !errors.Is(err, ErrNoTable) {
		t.Errorf("zero sector: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	e, _ := Layout(4<<30/512, 63, XPGeometry, TypeFAT32LBA)
	f.Add((&MBR{Signature: 1, Entries: [4]Entry{e}}).Bytes(), uint64(4<<30/512))
	f.Fuzz(func(t *testing.T, b []byte, disk uint64) {
		m, err := Parse(b, disk)
		if err != nil {
			return
		}
		again, err := Parse(m.Bytes(), disk)
		if err != nil || *again != *m {
			t.Fatalf("re-parse: %v", err)
		}
		m.Active()
		m.GuessGeometry()
	})
}
