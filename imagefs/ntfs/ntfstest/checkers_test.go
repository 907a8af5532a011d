package ntfstest

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// patchImage applies fn to the bytes of the volume of fx and writes them
// back (the fixtures are small enough to hold in memory).
func patchImage(t *testing.T, fx *Fixture, fn func(vol []byte, v Volume)) {
	t.Helper()
	v, err := OpenVolume(fx.Image, fx.Offset)
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(fx.Image)
	if err != nil {
		t.Fatal(err)
	}
	fn(img[fx.Offset:fx.Offset+v.Size], v)
	if err := os.WriteFile(fx.Image, img, 0o644); err != nil {
		t.Fatal(err)
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// renameInIndex changes the first character of name wherever it appears
// in an INDX block of vol: the $I30 entry and any stale copy left in the
// slack of split nodes, but not the $FILE_NAME in the MFT record.
func renameInIndex(t *testing.T, vol []byte, name string, to byte) {
	t.Helper()
	needle := utf16le(name)
	n := 0
	for blk := 0; blk+4096 <= len(vol); blk += 4096 {
		if string(vol[blk:blk+4]) != "INDX" {
			continue
		}
		for off := 0; ; {
			i := bytes.Index(vol[blk+off:blk+4096], needle)
			if i < 0 {
				break
			}
			vol[blk+off+i] = to
			off += i + len(needle)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s is in no INDX block", name)
	}
}

// TestCheckersFail proves that every checker can fail: each case damages a
// clean fixture (or expects the wrong tree) and names the checkers that
// must notice.
func TestCheckersFail(t *testing.T) {
	const (
		fix  = "ntfsfix -n"
		flg  = "ntfsinfo -m"
		ro   = "ntfs-3g read-only mount"
		rw   = "ntfs-3g read-write mount"
		tsk  = "sleuthkit fls/icat"
		fsnt = "libfsntfs fsntfsinfo"
		gont = "go-ntfs"
	)
	for _, tc := range []struct {
		name     string
		fixture  string
		damage   func(t *testing.T, fx *Fixture)
		mustFail []string
	}{
		{
			name: "byte flipped in $MFTMirr", fixture: FixtureBasic,
			damage: func(t *testing.T, fx *Fixture) {
				patchImage(t, fx, func(vol []byte, v Volume) {
					// Inside record 0's $STANDARD_INFORMATION, not a fixup.
					vol[v.MFTMirrLCN*int64(v.ClusterSize)+0x60] ^= 0xff
				})
			},
			mustFail: []string{fix},
		},
		{
			name: "dirty flag set", fixture: FixtureDirty,
			mustFail: []string{flg},
		},
		{
			name: "$LogFile not clean", fixture: FixtureUncleanLog,
			mustFail: []string{rw},
		},
		{
			name: "live hiberfil.sys", fixture: FixtureHibernated,
			mustFail: []string{rw},
		},
		{
			name: "index entry renamed in a multi-level $I30", fixture: FixtureBigDir,
			damage: func(t *testing.T, fx *Fixture) {
				patchImage(t, fx, func(vol []byte, v Volume) { renameInIndex(t, vol, "F00003.SYS", 'G') })
			},
			mustFail: []string{ro, tsk},
		},
		{
			name: "file data changed", fixture: FixtureBasic,
			damage: func(t *testing.T, fx *Fixture) {
				data := Content(fx.Name+"/"+"102400", 102400)
				patchImage(t, fx, func(vol []byte, v Volume) {
					i := bytes.Index(vol, data[:4096])
					if i < 0 {
						t.Fatal("sizes/size-102400.bin not found")
					}
					vol[i+1000] ^= 1
				})
			},
			mustFail: []string{ro, tsk, gont},
		},
		{
			name: "a file expected that the volume lacks", fixture: FixtureBasic,
			damage: func(t *testing.T, fx *Fixture) {
				fx.Want["names/not there.txt"] = Hash([]byte("x"))
			},
			mustFail: []string{ro, tsk, fsnt, gont},
		},
		{
			name: "a file present that was removed from the expected tree", fixture: FixtureXP,
			damage: func(t *testing.T, fx *Fixture) {
				delete(fx.Want, "WINDOWS/system32/drivers/drv0500.sys")
			},
			mustFail: []string{ro, tsk, fsnt, gont},
		},
		{
			name: "a directory expected as a file", fixture: FixtureBasic,
			damage: func(t *testing.T, fx *Fixture) {
				fx.Want["empty dir"] = Hash(nil)
			},
			mustFail: []string{ro, tsk, gont},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := Build(t, tc.fixture)
			if tc.damage != nil {
				tc.damage(t, fx)
			}
			tg, err := NewTarget(t, fx.Image, fx.Offset, fx.Want)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range Checkers() {
				err := c.Run(context.Background(), tg)
				if slices.Contains(tc.mustFail, c.Name) {
					if err == nil {
						t.Errorf("checker %s did not notice", c.Name)
					} else {
						t.Logf("checker %s: %s", c.Name, firstLine(err.Error()))
					}
				} else if err != nil {
					t.Logf("checker %s also noticed: %s", c.Name, firstLine(err.Error()))
				}
			}
		})
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func TestModel(t *testing.T) {
	tr := Tree{}
	steps := []struct {
		op      Op
		wantErr bool
	}{
		{Op{Kind: OpPut, Path: "a/b.txt", Data: []byte("x")}, true},
		{Op{Kind: OpMkdir, Path: "a"}, false},
		{Op{Kind: OpMkdir, Path: "a"}, true},
		{Op{Kind: OpPut, Path: "a/b.txt", Data: []byte("x")}, false},
		{Op{Kind: OpPut, Path: "a/b.txt", Data: []byte("yy")}, false},
		{Op{Kind: OpPut, Path: "a", Data: nil}, true},
		{Op{Kind: OpMkdir, Path: "a/c"}, false},
		{Op{Kind: OpRemove, Path: "a"}, true},
		{Op{Kind: OpRemove, Path: "a/nothing"}, true},
		{Op{Kind: OpPut, Path: "/abs", Data: nil}, true},
		{Op{Kind: OpRemoveAll, Path: "a"}, false},
		{Op{Kind: OpPut, Path: "top", Data: []byte("z")}, false},
	}
	for i, s := range steps {
		before := tr.Clone()
		err := tr.Apply(s.op)
		if (err != nil) != s.wantErr {
			t.Fatalf("step %d %v: err %v, want error %v", i, s.op, err, s.wantErr)
		}
		if err != nil && Diff(before, tr) != "" {
			t.Fatalf("step %d: a refused op changed the model", i)
		}
	}
	want := Tree{"top": Hash([]byte("z"))}
	if d := Diff(want, tr); d != "" {
		t.Fatalf("model:\n%s", d)
	}
	if d := Diff(Tree{"a": Dir, "b": "1"}, Tree{"a": "2", "c": Dir}); !strings.Contains(d, "is a file") ||
		!strings.Contains(d, "missing:         b") || !strings.Contains(d, "unexpected:      c/") {
		t.Errorf("diff:\n%s", d)
	}
}

// TestTwinMatchesModel applies operations through the reference writer and
// the model and compares: the twin helper and the model agree.
func TestTwinMatchesModel(t *testing.T) {
	fx := Build(t, FixtureBigDir)
	ops := []Op{
		{Kind: OpMkdir, Path: "big/new dir"},
		{Kind: OpPut, Path: "big/new dir/Ünïcödé.txt", Data: Content("u", 5000)},
		{Kind: OpPut, Path: "big/F00003.SYS", Data: Content("over", 70000)},
		{Kind: OpRemove, Path: "big/F00006.SYS"},
		{Kind: OpRemoveAll, Path: "big/Sub Directory 0007"},
	}
	for i := 0; i < 300; i++ {
		ops = append(ops, Op{Kind: OpPut, Path: "big/added " + strings.Repeat("x", i%40) + string(rune('a'+i%26)) + strconv.Itoa(i), Data: Content(strconv.Itoa(i), i*13)})
	}
	want := fx.Want.Clone()
	for _, op := range ops {
		if err := want.Apply(op); err != nil {
			t.Fatal(err)
		}
	}
	twin := Twin(t, fx.Image, fx.Offset, ops)
	Check(t, twin, fx.Offset, want)
	if got := Listing(t, twin, fx.Offset); len(got) != len(want) {
		t.Errorf("fls lists %d entries, want %d", len(got), len(want))
	}
}
