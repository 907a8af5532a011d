package hive

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the reader, the checker, the editor
// and the .reg exporter: none may panic or loop, and a hive the editor
// accepts must be written back as a clean hive holding the same keys and
// values (parse → write → parse is stable). The corpus is seeded from
// ../shared/testdata/hives and testdata/fuzz/FuzzParse. The fuzzer is slow
// on large inputs, so hives above 64 KiB are seeded in their compact
// rewritten form (the same keys and values, laid out by the Editor) and
// as their first 64 KiB; run with -fuzzminimizetime 5x, as minimizing
// inputs of that size otherwise stalls the workers for minutes:
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 150s -fuzzminimizetime 5x ./hive/
func FuzzParse(f *testing.F) {
	const maxSeed = 64 << 10
	paths, _ := filepath.Glob(filepath.Join(corpus, "*"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if len(b) <= maxSeed {
			f.Add(b)
			continue
		}
		f.Add(b[:maxSeed])
		if hf, err := NewFile(bytes.NewReader(b), int64(len(b))); err == nil {
			if out, err := Compact(hf); err == nil && len(out) <= maxSeed {
				f.Add(out)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Check(bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("Check returned an error on in-memory data: %v", err)
		}
		hf, err := NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		_ = hf.Walk(func(p string, k *Key) error {
			k.Class()
			k.SecurityDescriptor()
			_, err := k.Values()
			return err
		})
		ExportReg(&bytes.Buffer{}, hf, "", RegOptions{Prefix: sysPrefix})
		probs, _ := Check(bytes.NewReader(b), int64(len(b)))
		fuzzEdit(t, hf, len(probs) == 0)
		out, err := Compact(hf)
		if err != nil {
			return
		}
		mustCheck(t, out)
		// Compact sorts and re-encodes; a second round must be stable.
		out2, err := Compact(openBytes(t, out))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := dump(t, openBytes(t, out)), dump(t, openBytes(t, out2)); a != b {
			t.Fatalf("parse → write → parse is not stable:\n%s", firstDiff(a, b))
		}
	})
}

// fuzzEdit edits hf in place (new keys and values, a replaced value, a
// deleted subtree): whatever the input, no panic; on a hive that checks
// clean, the result checks clean.
func fuzzEdit(t *testing.T, hf *File, clean bool) {
	e, err := NewEditor(hf)
	if err != nil {
		return
	}
	root, err := hf.Root()
	if err != nil {
		return
	}
	subs, _ := root.Subkeys()
	var first string
	if len(subs) > 0 {
		first = subs[0].Name()
	}
	ok := true
	step := func(err error) {
		if err != nil {
			if clean && !errors.Is(err, ErrNotFound) {
				t.Fatalf("edit of a clean hive failed: %v", err)
			}
			ok = false
		}
	}
	step(e.CreateKey(`fuzz\a`))
	step(e.SetValue(`fuzz\a`, "v", Binary, pattern(300)))
	step(e.SetValue(`fuzz\a`, "v", DWORD, EncodeDWORD(1)))
	step(e.SetValue("", "fuzz", SZ, EncodeString("x")))
	if first != "" {
		step(e.SetValue(first, "fuzz", Binary, pattern(40)))
		step(e.DeleteKey(first))
	}
	out, err := e.Bytes()
	if err != nil || !ok || !clean {
		return
	}
	mustCheck(t, out)
}

// FuzzImportReg feeds arbitrary text to the .reg importer over a new
// hive: no panic or loop, and whatever it accepts leaves a hive that
// checks clean. Seeds: the export golden file and the dialects and
// constructs of reg_test.go (continuation lines, escapes, deletions,
// REGEDIT4 ANSI, UTF-16 with BOM).
//
//	go test -run '^$' -fuzz FuzzImportReg -fuzztime 60s ./hive/
func FuzzImportReg(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "export.golden")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		regHeader5 + "\n\n[" + sysPrefix + `\a\b]` + "\n\"s\"=\"x \\\"q\\\" \\\\\"\n@=dword:0000002a\n\"h\"=hex(7):61,00,00,00,\\\n  00,00\n",
		regHeader5 + "\r\n[" + sysPrefix + `\a]` + "\r\n\"v\"=-\r\n[-" + sysPrefix + `\a]` + "\r\n\"w\"=\"ignored\"\r\n",
		regHeader4 + "\n[" + sysPrefix + `\k]` + "\n\"e\"=hex(2):25,41,25,00\n\"b\"=hex:\n",
		regHeader5 + "\n[" + sysPrefix + `\k]` + "\n\"x\"=hex:01,\\\n",
	} {
		f.Add([]byte(s))
	}
	f.Add(utf16File(regHeader5 + "\r\n[" + sysPrefix + `\u]` + "\r\n\"n\"=\"é\"\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := New(5)
		if err != nil {
			t.Fatal(err)
		}
		if err := ImportReg(e, bytes.NewReader(b), RegOptions{Prefix: sysPrefix}); err != nil {
			return
		}
		out, err := e.Bytes()
		if err != nil {
			t.Fatalf("import accepted the input but the hive does not write: %v", err)
		}
		mustCheck(t, out)
	})
}
