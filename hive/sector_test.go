package hive

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSaveLogsSectors: the in-place save logs and writes changed 512-byte
// sectors, not whole pages, and the benchmark's bulk edit (about 1 MiB of
// sectors in a 10.8 MiB hive) is saved in place.
func TestSaveLogsSectors(t *testing.T) {
	tests := []struct {
		name    string
		src     func(t *testing.T) []byte
		edit    func(t *testing.T, path string) *Editor
		maxData int // most bytes of dirty sectors the log may hold
	}{
		{"one value", func(t *testing.T) []byte { return readCorpus(t, "regparser-NTUSER.DAT") },
			func(t *testing.T, path string) *Editor {
				e, err := Edit(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.SetValue(`Software`, "xpboot", DWORD, EncodeDWORD(7)); err != nil {
					t.Fatal(err)
				}
				return e
			}, 6 * logSector},
		{"bulk", func(t *testing.T) []byte { return genHive(t) }, func(t *testing.T, path string) *Editor { return benchEdit(t, path) }, 3 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src(t)
			path := filepath.Join(t.TempDir(), "h")
			if err := os.WriteFile(path, src, 0o644); err != nil {
				t.Fatal(err)
			}
			e := tt.edit(t, path)
			if err := e.Save(path); err != nil {
				t.Fatal(err)
			}
			log, err := os.ReadFile(path + ".LOG")
			if err != nil {
				t.Fatalf("no log: the save was not in place: %v", err)
			}
			length := int(le.Uint32(log[hdrLength:]))
			vec := log[logHeaderSize+4 : logHeaderSize+4+(length/logSector+7)/8]
			dirty := 0
			for _, b := range vec {
				for ; b != 0; b &= b - 1 {
					dirty++
				}
			}
			dataOff := (logHeaderSize + 4 + len(vec) + logSector - 1) / logSector * logSector
			if got := len(log) - dataOff; got != dirty*logSector || got > tt.maxData {
				t.Errorf("log holds %d bytes for %d dirty sectors (at most %d expected)", got, dirty, tt.maxData)
			}
			out, _ := os.ReadFile(path)
			mustCheck(t, out)
		})
	}
}
