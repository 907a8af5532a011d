package hive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// corpus is the shared directory of real hives (never copied into the repo).
const corpus = "../../shared/testdata/hives"

// validHives are Windows-written (or hivex/yarp-provided) hives that must
// pass Check with no finding.
var validHives = []string{
	"hivex-minimal", "hivex-special", "hivex-rlenvalue_test_hive",
	"regparser-NTUSER.DAT", "yarp-BigDataHive", "yarp-ManySubkeysHive",
	"yarp-UnicodeHive", "yarp-UpcaseHive", "yarp-ExtendedASCIIHive",
	"yarp-MultiSzHive", "yarp-StringValuesHive", "yarp-EmptyHive",
	"yarp-OldDirtyHive-RecoveredHive_Windows7",
}

func corpusPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(corpus, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test hive %s not available: %v", name, err)
	}
	return p
}

func readCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(corpusPath(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openBytes(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// dump renders every key (with class and security descriptor) and value
// of a hive, in a canonical order, for comparisons.
func dump(t testing.TB, f *File) string {
	t.Helper()
	var sb strings.Builder
	err := f.Walk(func(p string, k *Key) error {
		cls, err := k.Class()
		if err != nil {
			return err
		}
		sd, err := k.SecurityDescriptor()
		if err != nil {
			return err
		}
		fmt.Fprintf(&sb, "[%s] class=%q sd=%x\n", p, cls, sd)
		vals, err := k.Values()
		if err != nil {
			return err
		}
		slices.SortFunc(vals, func(a, b *Value) int { return strings.Compare(a.Name, b.Name) })
		for _, v := range vals {
			fmt.Fprintf(&sb, "  %q %v %x\n", v.Name, v.Type, v.Data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// mustCheck fails the test if Check finds anything in b, or if b holds
// allocated cells that nothing references.
func mustCheck(t testing.TB, b []byte) {
	t.Helper()
	c := &checker{}
	if err := c.run(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	for i, p := range c.probs {
		if i < 10 {
			t.Errorf("check: %v", p)
		}
	}
	if c.leaked != 0 {
		t.Errorf("check: %d allocated cells are not referenced", c.leaked)
	}
}

func fixedClock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { return t }
}

func TestRoundTripCorpus(t *testing.T) {
	for _, name := range validHives {
		t.Run(name, func(t *testing.T) {
			orig := readCorpus(t, name)
			f := openBytes(t, orig)
			e, err := NewEditor(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			g := openBytes(t, out)
			if g.Seq1 != f.Seq1+1 || g.Seq2 != g.Seq1 || g.Minor != f.Minor {
				t.Errorf("header: seq %d/%d minor %d, want %d and minor %d", g.Seq1, g.Seq2, g.Minor, f.Seq1+1, f.Minor)
			}
			if a, b := dump(t, f), dump(t, g); a != b {
				t.Errorf("round trip changed the hive:\n%s", firstDiff(a, b))
			}
			if len(out) > len(orig)+binAlign {
				t.Errorf("round trip grew the file from %d to %d bytes", len(orig), len(out))
			}
		})
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			j := 0
			for j < len(al[i]) && j < len(bl[i]) && al[i][j] == bl[i][j] {
				j++
			}
			from := max(0, j-40)
			return fmt.Sprintf("line %d, column %d of %d/%d:\n- %s\n+ %s", i+1, j, len(al[i]), len(bl[i]), clip(al[i][from:]), clip(bl[i][from:]))
		}
	}
	return fmt.Sprintf("lengths differ: %d vs %d lines", len(al), len(bl))
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
