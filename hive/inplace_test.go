package hive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestThousandSaves saves 1,000 small edits, each through a fresh Edit
// of the file (values growing and shrinking, keys created and deleted,
// big data on 1.5): free cells are reused and coalesced, so the hive
// grows by at most one bin, the larger hive is saved in place, and the
// result checks clean and reads the same in hivex.
func TestThousandSaves(t *testing.T) {
	for _, base := range []string{"hivex-special", "regparser-NTUSER.DAT"} {
		t.Run(base, func(t *testing.T) {
			orig := readCorpus(t, base)
			path := filepath.Join(t.TempDir(), "h")
			if err := os.WriteFile(path, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 1000; i++ {
				e, err := Edit(path)
				if err != nil {
					t.Fatalf("save %d: %v", i, err)
				}
				must := func(err error) {
					t.Helper()
					if err != nil {
						t.Fatalf("edit %d: %v", i, err)
					}
				}
				must(e.SetValue("", "grow", Binary, pattern(5+(i*37)%900)))
				k := fmt.Sprintf(`xp\k%d`, i%7)
				switch i % 4 {
				case 0:
					must(e.CreateKey(k))
					must(e.SetValue(k, "v", SZ, EncodeString(strings.Repeat("x", i%50))))
				case 1:
					if e.HasKey(k) {
						must(e.DeleteKey(k))
					}
				case 2:
					if i%40 == 2 {
						must(e.SetValue("", "gone", Binary, pattern(600)))
					} else if i%40 == 22 {
						must(e.DeleteValue("", "gone"))
					}
				case 3:
					must(e.SetClass("", fmt.Sprintf("class%d", i%5)))
				}
				if err := e.Save(path); err != nil {
					t.Fatalf("save %d: %v", i, err)
				}
			}
			out, _ := os.ReadFile(path)
			mustCheck(t, out)
			if len(out) > len(orig)+binAlign {
				t.Errorf("1,000 saves grew the hive from %d to %d bytes", len(orig), len(out))
			}
			if f := openBytes(t, out); f.Seq1 != openBytes(t, orig).Seq1+1000 {
				t.Errorf("sequence %d after 1,000 saves", f.Seq1)
			}
			// A hive of a few pages is rewritten whole (cheaper than three
			// syncs); a larger one is saved in place.
			if lb, err := os.ReadFile(path + ".LOG"); len(orig) > 64*binAlign && (err != nil || len(lb) == 0) {
				t.Errorf("no transaction log after in-place saves: %v", err)
			}
			peerAgrees(t, path)
		})
	}
}

// TestBigDataReused replaces a db big-data value 200 times with sizes
// between 16 and 100 KB, saving each time: its segment cells are freed and
// reused, so the file stays within one bin of its size after the largest
// value was first stored.
func TestBigDataReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h")
	os.WriteFile(path, readCorpus(t, "hivex-special"), 0o644)
	var after int64
	for i := 0; i < 200; i++ {
		e, err := Edit(path)
		if err != nil {
			t.Fatal(err)
		}
		size := 16345 + (i*7919)%84000
		if i == 0 {
			size = 100345
		}
		if err := e.SetValue("", "big", Binary, pattern(size)); err != nil {
			t.Fatal(err)
		}
		if err := e.Save(path); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			st, _ := os.Stat(path)
			after = st.Size()
		}
	}
	out, _ := os.ReadFile(path)
	mustCheck(t, out)
	if int64(len(out)) > after+binAlign {
		t.Errorf("200 big-data saves grew the hive from %d to %d bytes", after, len(out))
	}
	peerAgrees(t, path)
}

// TestSaveCrash stops an in-place save after each of its steps (log
// synced; primary marked dirty; half the pages written; all pages
// written) and reopens the file the way a later run would: the result is
// always the old hive or the new one, never a mix, and it checks clean.
func TestSaveCrash(t *testing.T) {
	orig := readCorpus(t, "regparser-NTUSER.DAT")
	edit := func(e *Editor) {
		for i := 0; i < 10; i++ {
			k := fmt.Sprintf(`Software\crash%02d`, i)
			if err := e.CreateKey(k); err != nil {
				t.Fatal(err)
			}
			if err := e.SetValue(k, "v", Binary, pattern(100+i*30)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.DeleteKey(`Software\crash05`); err != nil {
			t.Fatal(err)
		}
		if err := e.SetValue(`Software\crash07`, "v", Binary, pattern(20)); err != nil {
			t.Fatal(err)
		}
		if err := e.CreateKey(`Software\after`); err != nil {
			t.Fatal(err)
		}
	}
	oldDump := dump(t, openBytes(t, orig))
	ref := filepath.Join(t.TempDir(), "ref")
	os.WriteFile(ref, orig, 0o644)
	e, err := Edit(ref)
	if err != nil {
		t.Fatal(err)
	}
	edit(e)
	if err := e.Save(ref); err != nil {
		t.Fatal(err)
	}
	newBytes, _ := os.ReadFile(ref)
	newDump := dump(t, openBytes(t, newBytes))
	for step, want := range []string{1: "old", 2: "new", 3: "new", 4: "new"} {
		if step == 0 {
			continue
		}
		t.Run(fmt.Sprint("step", step), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "h")
			os.WriteFile(path, orig, 0o644)
			e, err := Edit(path)
			if err != nil {
				t.Fatal(err)
			}
			edit(e)
			e.crashAt = step
			if err := e.Save(path); err != errCrash {
				t.Fatalf("save: %v, want the simulated crash", err)
			}
			r, err := Edit(path) // replays path.LOG if the hive is dirty
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, b)
			got := dump(t, openBytes(t, b))
			switch {
			case want == "old" && got != oldDump:
				t.Errorf("crash after step %d: not the old hive:\n%s", step, firstDiff(oldDump, got))
			case want == "new" && got != newDump:
				t.Errorf("crash after step %d: not the new hive:\n%s", step, firstDiff(newDump, got))
			}
			// Saving the recovered hive writes it whole and clean.
			if err := r.Save(path); err != nil {
				t.Fatal(err)
			}
			b, _ = os.ReadFile(path)
			mustCheck(t, b)
		})
	}
}

// TestSaveRefusesChangedFile: a hive changed on disk after Edit read it is
// not overwritten with pages of the old state.
func TestSaveRefusesChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h")
	orig := readCorpus(t, "hivex-special")
	os.WriteFile(path, orig, 0o644)
	e, err := Edit(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetValue("", "x", DWORD, EncodeDWORD(1)); err != nil {
		t.Fatal(err)
	}
	other, err := Edit(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.CreateKey("other"); err != nil {
		t.Fatal(err)
	}
	if err := other.Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if err := e.Save(path); err == nil || !strings.Contains(err.Error(), "changed on disk") {
		t.Fatalf("save over a changed file: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the refused save changed the file")
	}
}

// TestCompact: compacting an edited hive keeps every key and value, checks
// clean and gives back the free space deletions left.
func TestCompact(t *testing.T) {
	e := loadEditor(t, "regparser-NTUSER.DAT")
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf(`big\k%03d`, i)
		if err := e.CreateKey(k); err != nil {
			t.Fatal(err)
		}
		if err := e.SetValue(k, "v", Binary, pattern(2000)); err != nil {
			t.Fatal(err)
		}
	}
	grown, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteKey("big"); err != nil {
		t.Fatal(err)
	}
	edited, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, edited)
	if len(edited) != len(grown) {
		t.Errorf("deleting shrank the file in place (%d → %d)", len(grown), len(edited))
	}
	out, err := Compact(openBytes(t, edited))
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, out)
	if a, b := dump(t, openBytes(t, edited)), dump(t, openBytes(t, out)); a != b {
		t.Errorf("compact changed the hive:\n%s", firstDiff(a, b))
	}
	if len(out) >= len(edited)-200*2000 {
		t.Errorf("compact gave %d bytes back, want more than 400,000", len(edited)-len(out))
	}
}

// TestBulkEdit runs the benchmark edit (1,000 keys, 10,000 values) on the
// generated 10 MB hive: its cells gather in few pages (new bins rather than
// the small leftovers at the end of most bins), and the result checks
// clean with every key and value readable.
func TestBulkEdit(t *testing.T) {
	src := genHive(t)
	path := filepath.Join(t.TempDir(), "h")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	e := benchEdit(t, path)
	if err := e.flush(); err != nil {
		t.Fatal(err)
	}
	dirty, pages := e.dirtyPages(), len(e.f.binOf)
	if 3*dirty > pages {
		t.Errorf("the edit changed %d of %d pages: its cells are scattered", dirty, pages)
	}
	if err := e.Save(path); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(path)
	mustCheck(t, out)
	f := openBytes(t, out)
	for _, i := range []int{0, 499, 999} {
		p, n := benchKey(i)
		k, err := f.Key(p + `\` + n)
		if err != nil || k.NumValues() != 10 {
			t.Fatalf("key %d: %v", i, err)
		}
		if v, err := k.Value("V8"); err != nil || DecodeString(v.Data) != fmt.Sprintf("value 8 of key %d", i) {
			t.Errorf("key %d V8: %v %v", i, v, err)
		}
	}
	t.Logf("%d of %d pages written, file %d → %d bytes", dirty, pages, len(src), len(out))
}
