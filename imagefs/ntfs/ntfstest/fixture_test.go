package ntfstest

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestCleanFixtures builds every fixture meant to be written to and proves
// that all checkers accept it as made by mkntfs and ntfs-3g: the fixtures
// and the checkers agree before xpboot writes a byte.
func TestCleanFixtures(t *testing.T) {
	for _, name := range []string{FixtureBasic, FixtureBigDir, FixtureXP, FixtureMFTFull, FixtureFull} {
		t.Run(name, func(t *testing.T) {
			fx := Build(t, name)
			if fx.Offset != 63*512 {
				t.Errorf("volume at byte %d, want LBA 63", fx.Offset)
			}
			Check(t, fx.Image, fx.Offset, fx.Want)
			if d := Diff(fx.Want, Snapshot(t, fx.Image, fx.Offset)); d != "" {
				t.Errorf("snapshot differs from the populated tree:\n%s", d)
			}
			switch name {
			case FixtureBasic:
				if fx.Fragments < 8 {
					t.Errorf("fragmented.bin has %d runs", fx.Fragments)
				}
			case FixtureBigDir:
				n := 0
				for p := range fx.Want {
					if strings.HasPrefix(p, "big/") {
						n++
					}
				}
				if n != 2000 {
					t.Errorf("big/ has %d entries, want 2000", n)
				}
			case FixtureMFTFull:
				if fx.FreeMFTRecords > MaxFreeMFTRecordsTotal {
					t.Errorf("%d free MFT records, want at most %d", fx.FreeMFTRecords, MaxFreeMFTRecordsTotal)
				}
				if _, ok := fx.Want["fill/f00000"]; !ok {
					t.Error("fill/ holds no files")
				}
			case FixtureFull:
				if fx.FreeBytes < 0 || fx.FreeBytes > 512<<10 {
					t.Errorf("%d bytes free, want at most 512 KiB", fx.FreeBytes)
				}
			}
		})
	}
}

// TestBareVolume checks the bare-volume variant (offset 0).
func TestBareVolume(t *testing.T) {
	fx := BuildVolume(t, FixtureBasic)
	if fx.Offset != 0 {
		t.Fatalf("offset %d", fx.Offset)
	}
	Check(t, fx.Image, 0, fx.Want)
}

// TestRefusalFixtures proves that the refusal fixtures are what they claim
// to be, by the peers' own verdicts.
func TestRefusalFixtures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, failing string
		log           string // in the failing checker's message
	}{
		{FixtureDirty, "ntfsinfo -m", "0x0001"},
		{FixtureHibernated, "ntfs-3g read-write mount", "hiberna"},
		{FixtureUncleanLog, "ntfs-3g read-write mount", "unclean"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := Build(t, tc.name)
			tg, err := NewTarget(t, fx.Image, fx.Offset, fx.Want)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range Checkers() {
				err := c.Run(ctx, tg)
				switch {
				case c.Name == tc.failing && err == nil:
					t.Errorf("checker %s accepts the %s fixture", c.Name, tc.name)
				case c.Name == tc.failing && !strings.Contains(strings.ToLower(err.Error()), tc.log):
					t.Errorf("checker %s fails for another reason than %q: %v", c.Name, tc.log, err)
				case c.Name != tc.failing && err != nil:
					t.Errorf("checker %s: %v", c.Name, err)
				}
			}
		})
	}
}

func TestSpecs(t *testing.T) {
	for _, name := range Fixtures() {
		if _, err := specOf(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := specOf("nonsense"); err == nil || !strings.Contains(err.Error(), FixtureBasic) {
		t.Errorf("unknown fixture: %v", err)
	}
}

// TestRestartPage checks the multi-sector protection of the crafted
// $LogFile restart page: every sector ends in the update sequence number
// and the array keeps what was there.
func TestRestartPage(t *testing.T) {
	p := restartPage(4 << 20)
	if string(p[:4]) != "RSTR" || len(p) != 4096 {
		t.Fatalf("page starts %q, %d bytes", p[:4], len(p))
	}
	usn := p[0x1e : 0x1e+2]
	for i := 1; i <= 8; i++ {
		if end := p[i*512-2 : i*512]; string(end) != string(usn) {
			t.Errorf("sector %d ends in %x, want the USN %x", i, end, usn)
		}
		if saved := p[0x1e+2*i : 0x1e+2*i+2]; saved[0] != 0 || saved[1] != 0 {
			t.Errorf("sector %d: saved bytes %x, want the zeros that were there", i, saved)
		}
	}
	// seq_number_bits = 67 - bits in the file size (ntfs-3g checks it).
	if got := p[0x30+0x10]; got != 67-23 {
		t.Errorf("seq_number_bits %d, want %d", got, 67-23)
	}
}
