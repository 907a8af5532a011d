package hive

import (
	"bytes"
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
			if e, err := NewEditor(hf); err == nil {
				if out, err := e.Bytes(); err == nil && len(out) <= maxSeed {
					f.Add(out)
				}
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
		e, err := NewEditor(hf)
		if err != nil {
			return
		}
		out, err := e.Bytes()
		if err != nil {
			return
		}
		mustCheck(t, out)
		// The editor sorts and re-encodes; a second round must be stable.
		e2, err := NewEditor(openBytes(t, out))
		if err != nil {
			t.Fatal(err)
		}
		out2, err := e2.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if a, b := dump(t, openBytes(t, out)), dump(t, openBytes(t, out2)); a != b {
			t.Fatalf("parse → write → parse is not stable:\n%s", firstDiff(a, b))
		}
	})
}
