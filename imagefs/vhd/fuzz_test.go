package vhd

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// seedImages returns small VHDs (4 KiB blocks) for the fuzz corpus.
func seedImages(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	dir := t.TempDir()
	for _, typ := range []DiskType{TypeDynamic, TypeFixed} {
		path := filepath.Join(dir, typ.String()+".vhd")
		d, err := Create(path, 16<<10, &CreateOptions{Type: typ, BlockSize: 4096, Time: time.Unix(vhdEpochUnix, 0), UniqueID: [16]byte{9}})
		if err != nil {
			t.Fatal(err)
		}
		d.WriteAt(bytes.Repeat([]byte("xpboot"), 300), 5000)
		d.Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out[typ.String()] = b
	}
	return out
}

// TestFuzzSeeds rewrites testdata/fuzz/FuzzNewReader with -update.
func TestFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzNewReader")
	os.MkdirAll(dir, 0o755)
	for name, b := range seedImages(t) {
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzNewReader parses arbitrary bytes as a VHD: no panic, reads and extents
// stay in range, and footer and header survive parse → marshal → parse.
func FuzzNewReader(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= FooterSize {
			if ft, err := ParseFooter(b[len(b)-FooterSize:]); err == nil {
				ft2, err := ParseFooter(ft.Marshal())
				if err != nil || *ft2 != *ft {
					t.Fatalf("footer round trip: %v %+v %+v", err, ft, ft2)
				}
			}
		}
		if len(b) >= FooterSize+HeaderSize {
			if h, err := ParseHeader(b[FooterSize:]); err == nil {
				h2, err := ParseHeader(h.Marshal())
				if err != nil || h2.TableOffset != h.TableOffset || h2.BlockSize != h.BlockSize || h2.Locators != h.Locators {
					t.Fatalf("header round trip: %v", err)
				}
			}
		}
		d, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		size := d.Size()
		n := min(size, 1<<20)
		buf := make([]byte, n)
		d.ReadAt(buf, 0)
		d.ReadAt(buf[:min(n, 512)], size-min(n, 512))
		if _, err := d.Extents(0, min(size, 64<<20)); err != nil {
			t.Fatal(err)
		}
	})
}
