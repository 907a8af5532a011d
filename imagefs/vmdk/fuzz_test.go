package vmdk

import (
	"bytes"
	"compress/flate"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// seedImages returns small single-file VMDKs for the fuzz corpus: a
// monolithicSparse disk and a streamOptimized one, with a little data.
func seedImages(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	// A tiny hand-made sparse extent (4 KiB grains) keeps the seed small:
	// header, descriptor, GD, one GT, one grain.
	h := Header{Version: 1, Flags: FlagNewlineTest, Capacity: 64, GrainSize: 8, DescriptorOffset: 1, DescriptorSize: 1,
		NumGTEsPerGT: GTEsPerGT, GDOffset: 2, Overhead: 7}
	b := make([]byte, 15*sectorSize)
	copy(b, h.Marshal())
	copy(b[sectorSize:], "# Disk DescriptorFile\nversion=1\nCID=feed\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\nRW 64 SPARSE \"s.vmdk\"\n")
	b[2*sectorSize] = 3     // GD[0] = GT at sector 3
	b[3*sectorSize+4*2] = 7 // GT[2] = grain at sector 7
	copy(b[7*sectorSize:], bytes.Repeat([]byte("xpboot"), 50))
	out["sparse"] = b
	var buf bytes.Buffer
	sw, err := NewStreamWriter(&buf, 128<<10, &CreateOptions{CID: 0xbeef})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewGrainCompressor(flate.BestSpeed)
	z, _ := c.Compress(bytes.Repeat([]byte("stream"), 64<<10/6+1)[:64<<10])
	sw.WriteGrain(1, z)
	sw.Close()
	out["stream"] = buf.Bytes()
	return out
}

// TestFuzzSeeds rewrites testdata/fuzz/Fuzz* with -update.
func TestFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the seed corpus")
	}
	write := func(fuzz, name string, b []byte) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		os.MkdirAll(dir, 0o755)
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range seedImages(t) {
		write("FuzzNewReader", name, b)
	}
	for name, text := range seedDescriptors() {
		write("FuzzParseDescriptor", name, []byte(text))
	}
}

func seedDescriptors() map[string]string {
	return map[string]string{
		"flat":  "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 2048 FLAT \"a b-flat.vmdk\" 0\n\n#DDB\nddb.adapterType = \"ide\"\nddb.geometry.heads = \"16\"\n",
		"delta": "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=abcdef01\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW 4096 SPARSE \"delta.vmdk\"\n",
		"split": "version=1\r\nencoding=\"UTF-8\"\r\nCID=1\r\nparentCID=ffffffff\r\ncreateType=\"twoGbMaxExtentSparse\"\r\nRW 4192256 SPARSE \"d-s001.vmdk\"\r\nRW 100 SPARSE \"d-s002.vmdk\"\r\nRDONLY 8 ZERO\r\n",
	}
}

// FuzzNewReader parses arbitrary bytes as a single-file VMDK: no panic,
// reads and extents stay in range, and the header survives
// parse → marshal → parse.
func FuzzNewReader(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseHeader(b); err == nil {
			h2, err := ParseHeader(h.Marshal())
			if err != nil || *h2 != *h {
				t.Fatalf("header round trip: %v\n%+v\n%+v", err, h, h2)
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
		d.Extents(0, min(size, 64<<20))
	})
}

// FuzzParseDescriptor parses arbitrary descriptor text: no panic, and what
// parses survives marshal → parse with the same extents and ids.
func FuzzParseDescriptor(f *testing.F) {
	for _, s := range seedDescriptors() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			return
		}
		d2, err := ParseDescriptor(d.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, d.Marshal())
		}
		if d2.CID != d.CID || d2.ParentCID != d.ParentCID || len(d2.Extents) != len(d.Extents) {
			t.Fatalf("round trip changed ids or extents:\n%+v\n%+v", d, d2)
		}
		for i := range d.Extents {
			a, b := d.Extents[i], d2.Extents[i]
			a.Pos, b.Pos = 0, 0
			if a != b {
				t.Fatalf("extent %d: %+v != %+v", i, a, b)
			}
		}
	})
}

// TestSeedImages checks that the fuzz seeds are valid images with the
// expected content, so the fuzzer starts from the interesting paths.
func TestSeedImages(t *testing.T) {
	for name, b := range seedImages(t) {
		d, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := make([]byte, d.Size())
		if _, err := d.ReadAt(got, 0); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := map[string]string{"sparse": "xpbootxpboot", "stream": "streamstream"}[name]
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("%s: content missing", name)
		}
	}
}
