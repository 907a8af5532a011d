package hive

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// editHives are the bases for edit tests: 1.5 (hivex, XP-written) and 1.3
// (yarp, regparser's XP NTUSER.DAT), plus new hives of both versions.
var editHives = []string{"hivex-minimal", "hivex-special", "yarp-EmptyHive", "regparser-NTUSER.DAT", "new-1.3", "new-1.5"}

func loadEditor(t testing.TB, name string) *Editor {
	t.Helper()
	var e *Editor
	var err error
	switch name {
	case "new-1.3":
		e, err = New(3)
	case "new-1.5":
		e, err = New(5)
	default:
		e, err = NewEditor(openBytes(t, readCorpus(t, name)))
	}
	if err != nil {
		t.Fatal(err)
	}
	e.Now = fixedClock()
	return e
}

// pattern returns n deterministic bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

type setOp struct {
	key, name string
	typ       ValueType
	data      []byte
}

// driverValues are the values of a driver service key (test C of the
// research notes) plus one value of every type and awkward sizes.
func driverValues(minor uint32) []setOp {
	const k = `ControlSet001\Services\viostor`
	ops := []setOp{
		{k, "Type", DWORD, EncodeDWORD(1)},
		{k, "Start", DWORD, EncodeDWORD(0)},
		{k, "ErrorControl", DWORD, EncodeDWORD(1)},
		{k, "Group", SZ, EncodeString("SCSI miniport")},
		{k, "ImagePath", ExpandSZ, EncodeString(`system32\drivers\viostor.sys`)},
		{k, "DependOnGroup", MultiSZ, EncodeMultiString([]string{"A", "B"})},
		{k, "Blob", Binary, []byte{0xde, 0xad, 0xbe, 0xef, 0x01}},
		{k, "BE", DWORDBigEndian, []byte{0, 0, 1, 0}},
		{k, "Q", QWORD, EncodeQWORD(1 << 40)},
		{k, "None", None, nil},
		{k, "Link", Link, utf16le(toUnits(`\Registry\Machine\X`))},
		{k, "Odd", ValueType(0x1234), []byte{1, 2, 3}},
		{k, "", SZ, EncodeString("default")},
		{k, "Ünïcödé™", SZ, EncodeString("wert")},
		{`ControlSet001\Control\CriticalDeviceDatabase\PCI#VEN_1AF4&DEV_1001`, "Service", SZ, EncodeString("viostor")},
		{`ControlSet001\Control\CriticalDeviceDatabase\PCI#VEN_1AF4&DEV_1001`, "ClassGUID", SZ, EncodeString("{4D36E97B-E325-11CE-BFC1-08002BE10318}")},
	}
	for _, n := range []int{0, 1, 4, 5, 16344, 16345, 81725} {
		ops = append(ops, setOp{`Sizes`, fmt.Sprintf("s%d", n), Binary, pattern(n)})
	}
	if minor >= 4 {
		ops = append(ops, setOp{`Sizes`, "big", Binary, pattern(1<<20 - 64)})
	}
	return ops
}

func applyOps(t testing.TB, e *Editor, ops []setOp) {
	t.Helper()
	for _, op := range ops {
		if err := e.CreateKey(op.key); err != nil {
			t.Fatal(err)
		}
		if err := e.SetValue(op.key, op.name, op.typ, op.data); err != nil {
			t.Fatal(err)
		}
	}
}

func checkOps(t testing.TB, f *File, ops []setOp) {
	t.Helper()
	for _, op := range ops {
		k, err := f.Key(op.key)
		if err != nil {
			t.Fatal(err)
		}
		v, err := k.Value(op.name)
		if err != nil {
			t.Fatalf("%s %q: %v", op.key, op.name, err)
		}
		if v.Type != op.typ || !bytes.Equal(v.Data, op.data) || v.Name != op.name {
			t.Errorf("%s %q: got %q %v %d bytes, want %v %d bytes", op.key, op.name, v.Name, v.Type, len(v.Data), op.typ, len(op.data))
		}
	}
}

// leafTypes returns the signatures of all subkey lists in the hive.
func leafTypes(t testing.TB, f *File) map[string]int {
	t.Helper()
	m := map[string]int{}
	err := f.Walk(func(p string, k *Key) error {
		if k.subList == nilOff {
			return nil
		}
		b, err := f.cell(k.subList)
		if err != nil {
			return err
		}
		m[string(b[:2])]++
		if string(b[:2]) == "ri" {
			for i := 0; i < int(le.Uint16(b[2:])); i++ {
				lb, _ := f.cell(le.Uint32(b[4+4*i:]))
				m["ri/"+string(lb[:2])]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEditValues(t *testing.T) {
	for _, name := range editHives {
		t.Run(name, func(t *testing.T) {
			e := loadEditor(t, name)
			ops := driverValues(e.Minor())
			applyOps(t, e, ops)
			if err := e.SetClass(`ControlSet001\Services\viostor`, "DriverClass"); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "hive")
			if err := e.Save(path); err != nil {
				t.Fatal(err)
			}
			out, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			f := openBytes(t, out)
			checkOps(t, f, ops)
			k, _ := f.Key(`controlset001\SERVICES\viostor`)
			if cls, _ := k.Class(); cls != "DriverClass" {
				t.Errorf("class %q", cls)
			}
			lt := leafTypes(t, f)
			switch {
			case f.Minor >= 5 && (lt["lf"] > 0 || lt["li"] > 0):
				t.Errorf("1.5 hive has lf/li lists: %v", lt)
			case f.Minor < 5 && lt["lh"] > 0:
				t.Errorf("1.3 hive has lh lists: %v", lt)
			}
			// Big values: db cells in 1.4+, one cell before.
			v, _ := f.Key("Sizes")
			rv := findRawValue(t, f, v, "s16345")
			db, _ := f.cell(rv.dataOff)
			if isDB := string(db[:2]) == "db"; isDB != (f.Minor >= 4) {
				t.Errorf("16345-byte value: db=%v in a 1.%d hive", isDB, f.Minor)
			}
			// Editing the saved hive again keeps it clean.
			e2, err := Edit(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range ops {
				if err := e2.DeleteValue(op.key, op.name); err != nil {
					t.Fatal(err)
				}
			}
			if err := e2.DeleteKey(`ControlSet001`); err != nil {
				t.Fatal(err)
			}
			if err := e2.DeleteKey(`Sizes`); err != nil {
				t.Fatal(err)
			}
			out2, err := e2.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out2)
			if name != "new-1.3" && name != "new-1.5" {
				if a, b := dump(t, openBytes(t, readCorpus(t, name))), dump(t, openBytes(t, out2)); a != b {
					t.Errorf("set then delete did not restore the hive:\n%s", firstDiff(a, b))
				}
			}
		})
	}
}

func findRawValue(t testing.TB, f *File, k *Key, name string) *rawValue {
	t.Helper()
	offs, err := f.valueOffsets(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		rv, err := f.vk(o)
		if err != nil {
			t.Fatal(err)
		}
		if unitsString(rv.name) == name {
			return rv
		}
	}
	t.Fatalf("value %q not found", name)
	return nil
}

func TestTooLargeFor13(t *testing.T) {
	e := loadEditor(t, "new-1.3")
	err := e.SetValue("", "x", Binary, make([]byte, 1<<20))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("1 MiB value in a 1.3 hive: %v, want ErrTooLarge", err)
	}
}

// TestOrderAndHashes inserts names that sort differently when lower-cased
// (hivex bug RHBZ#1648520) and non-ASCII names (hivex hashes UTF-8 bytes)
// and checks order, lh hashes and lf hints through Check, and lookups by
// any case.
func TestOrderAndHashes(t *testing.T) {
	names := []string{"b_x", "bZ", "b[", "Ba", "viostor", "äöü", "weird™", "ZERO", "abcd_äöüß", "zero\x00key"}
	for _, base := range []string{"new-1.3", "new-1.5", "hivex-special"} {
		t.Run(base, func(t *testing.T) {
			e := loadEditor(t, base)
			for _, n := range names {
				if err := e.CreateKey(`P\` + n); err != nil {
					t.Fatal(err)
				}
			}
			out, err := e.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			f := openBytes(t, out)
			for _, n := range names {
				for _, v := range []string{n, strings.ToUpper(n), strings.ToLower(n)} {
					if _, err := f.Key(`p\` + v); err != nil {
						t.Errorf("lookup %q: %v", v, err)
					}
				}
			}
			k, _ := f.Key("P")
			subs, _ := k.Subkeys()
			var got []string
			for _, s := range subs {
				got = append(got, s.Name())
			}
			// Upper-cased order puts letters before [ and _ (0x5B, 0x5F).
			want := []string{"abcd_äöüß", "Ba", "bZ", "b[", "b_x", "viostor", "weird™", "ZERO", "zero\x00key", "äöü"}
			if !slices.Equal(got, want) {
				t.Errorf("order %q, want %q", got, want)
			}
		})
	}
}

// TestGoldenHashes checks the lh hashes Windows XP wrote in hivex-special.
func TestGoldenHashes(t *testing.T) {
	for name, want := range map[string]uint32{"abcd_äöüß": 0xCD87D55E, "weird™": 0x6F86A4D5, "zero\x00key": 0xDA24F2BD, "äöü": 0x437EE} {
		if got := lhHash(toUnits(name)); got != want {
			t.Errorf("hash(%q) = %#x, want %#x", name, got, want)
		}
	}
}

// TestLargeLists adds 1,100 subkeys (above every leaf limit) and checks
// the ri/leaf structure by version, then deletes half of them.
func TestLargeLists(t *testing.T) {
	for _, base := range []string{"new-1.3", "new-1.5", "yarp-ManySubkeysHive"} {
		t.Run(base, func(t *testing.T) {
			e := loadEditor(t, base)
			for i := 0; i < 1100; i++ {
				if err := e.CreateKey(fmt.Sprintf(`Many\k%04d`, i)); err != nil {
					t.Fatal(err)
				}
			}
			out, err := e.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			f := openBytes(t, out)
			k, err := f.Key("Many")
			if err != nil {
				t.Fatal(err)
			}
			subs, err := k.Subkeys()
			if err != nil || len(subs) != 1100 {
				t.Fatalf("%d subkeys, %v", len(subs), err)
			}
			lt := leafTypes(t, f)
			if lt["ri"] == 0 {
				t.Errorf("no ri list: %v", lt)
			}
			for i := 0; i < 1100; i += 2 {
				if err := e.DeleteKey(fmt.Sprintf(`Many\K%04d`, i)); err != nil {
					t.Fatal(err)
				}
			}
			out, err = e.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			k, _ = openBytes(t, out).Key("Many")
			if k.NumSubkeys() != 550 {
				t.Errorf("%d subkeys after deleting 550", k.NumSubkeys())
			}
		})
	}
}

// TestDeleteInManySubkeys deletes and adds keys under ManySubkeysHive's
// ri→li lists, where hivex fails ("could not find parent to child link").
func TestDeleteInManySubkeys(t *testing.T) {
	e := loadEditor(t, "yarp-ManySubkeysHive")
	f := openBytes(t, readCorpus(t, "yarp-ManySubkeysHive"))
	root, _ := f.Root()
	subs, _ := root.Subkeys()
	var parent string
	for _, s := range subs {
		if s.NumSubkeys() > 1000 {
			parent = s.Name()
		}
	}
	if parent == "" {
		t.Fatal("no key with many subkeys")
	}
	k, _ := f.Key(parent)
	kids, _ := k.Subkeys()
	for _, c := range kids[:10] {
		if err := e.DeleteKey(parent + `\` + c.Name()); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, out)
	k2, _ := openBytes(t, out).Key(parent)
	if k2.NumSubkeys() != len(kids)-10 {
		t.Errorf("%d subkeys, want %d", k2.NumSubkeys(), len(kids)-10)
	}
}

// TestGrowthBounded applies 100 value edits of varying sizes to a hive
// with free space and checks the file grows by at most one bin.
func TestGrowthBounded(t *testing.T) {
	for _, base := range []string{"regparser-NTUSER.DAT", "hivex-special"} {
		t.Run(base, func(t *testing.T) {
			orig := readCorpus(t, base)
			path := filepath.Join(t.TempDir(), "h")
			if err := os.WriteFile(path, orig, 0o644); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				e, err := Edit(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.SetValue("", "grow", Binary, pattern(100+(i*37)%900)); err != nil {
					t.Fatal(err)
				}
				if err := e.Save(path); err != nil {
					t.Fatal(err)
				}
			}
			out, _ := os.ReadFile(path)
			mustCheck(t, out)
			if len(out) > len(orig)+binAlign {
				t.Errorf("100 edits grew the hive from %d to %d bytes", len(orig), len(out))
			}
			f := openBytes(t, out)
			if f.Seq1 != openBytes(t, orig).Seq1+100 {
				t.Errorf("sequence %d after 100 saves", f.Seq1)
			}
		})
	}
}

func TestDirtyRefused(t *testing.T) {
	_, err := Edit(corpusPath(t, "yarp-OldDirtyHive"))
	if !errors.Is(err, ErrDirty) {
		t.Fatalf("editing a dirty hive: %v, want ErrDirty", err)
	}
	if !strings.Contains(err.Error(), "LOG") {
		t.Errorf("message %q does not mention the log", err)
	}
}

// TestSaveAtomic checks that a failed save leaves the original untouched
// and no temporary file behind.
func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	e := loadEditor(t, "hivex-special")
	if err := e.CreateKey("x"); err != nil {
		t.Fatal(err)
	}
	// Saving over a directory fails before anything is written.
	sub := filepath.Join(dir, "d")
	os.Mkdir(sub, 0o755)
	if err := e.Save(sub); err == nil {
		t.Error("saving over a directory succeeded")
	}
	// Saving into a missing directory fails.
	if err := e.Save(filepath.Join(dir, "missing", "h")); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after failed saves", len(ents))
	}
	// A successful save replaces the file and keeps its mode.
	p := filepath.Join(dir, "h")
	os.WriteFile(p, []byte("old"), 0o600)
	if err := e.Save(p); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestSecurityShared(t *testing.T) {
	e := loadEditor(t, "hivex-minimal")
	for _, k := range []string{`A\B\C`, `A\D`, `E`} {
		if err := e.CreateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := e.Bytes()
	mustCheck(t, out) // exact reference counts, circular list
	f := openBytes(t, out)
	root, _ := f.Root()
	want, _ := root.SecurityDescriptor()
	k, _ := f.Key(`A\B\C`)
	if got, _ := k.SecurityDescriptor(); !bytes.Equal(got, want) {
		t.Error("new key does not share its parent's security descriptor")
	}
}

func TestEditErrors(t *testing.T) {
	e := loadEditor(t, "new-1.5")
	if err := e.SetValue("missing", "v", SZ, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("set in missing key: %v", err)
	}
	if err := e.DeleteKey(""); !errors.Is(err, ErrInvalid) {
		t.Errorf("delete root: %v", err)
	}
	if err := e.DeleteValue("", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete missing value: %v", err)
	}
	if err := e.CreateKey(strings.Repeat("x", 256)); !errors.Is(err, ErrInvalid) {
		t.Errorf("256-char key name: %v", err)
	}
}

func TestCurrentControlSet(t *testing.T) {
	e := loadEditor(t, "new-1.5")
	if _, err := e.ResolveCurrentControlSet(`CurrentControlSet\Services`); !errors.Is(err, ErrNotFound) {
		t.Errorf("without Select: %v", err)
	}
	if err := e.CreateKey("Select"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetValue("Select", "Current", DWORD, EncodeDWORD(2)); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		`CurrentControlSet\Services\x`: `ControlSet002\Services\x`,
		`\currentcontrolset`:           `ControlSet002`,
		`Software\x`:                   `Software\x`,
	} {
		got, err := e.ResolveCurrentControlSet(in)
		if err != nil || got != want {
			t.Errorf("editor: %q → %q, %v; want %q", in, got, err, want)
		}
		f, _ := e.File()
		got, err = f.ResolveCurrentControlSet(in)
		if err != nil || got != want {
			t.Errorf("file: %q → %q, %v; want %q", in, got, err, want)
		}
	}
}
