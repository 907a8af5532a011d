package cab

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

func makeCab(t testing.TB, comp Compression, files map[string][]byte) []byte {
	t.Helper()
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Compression = comp
	for _, n := range names {
		fw, err := w.CreateHeader(&FileHeader{Name: n, Modified: time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC), Attrs: AttrArchive})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWriterPeers writes single-file (like nettcpip.in_) and multi-file
// cabinets, MSZIP and stored, and extracts them with this reader,
// cabextract (which also verifies checksums with -t) and gcab: all
// byte-identical, with the stored date and attributes.
func TestWriterPeers(t *testing.T) {
	peertest.Need(t, "cabextract", "cabextract")
	peertest.Need(t, "gcab", "gcab")
	payloads := testPayloads()
	sets := []struct {
		name  string
		comp  Compression
		files map[string][]byte
	}{
		{"nettcpip.in_", MSZIP, map[string][]byte{"nettcpip.inf": payloads["nettcpip.inf"]}},
		{"stored.in_", None, map[string][]byte{"nettcpip.inf": payloads["nettcpip.inf"]}},
		{"multi-mszip.cab", MSZIP, payloads},
		{"multi-stored.cab", None, payloads},
	}
	for _, s := range sets {
		t.Run(s.name, func(t *testing.T) {
			data := makeCab(t, s.comp, s.files)
			dir := t.TempDir()
			path := filepath.Join(dir, s.name)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := extractAll(path)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := NewReader(bytes.NewReader(data), int64(len(data)))
			for _, f := range r.File {
				if !f.Modified.Equal(time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC)) || f.Attrs != AttrArchive {
					t.Errorf("%s: time %v attrs %#x", f.Name, f.Modified, f.Attrs)
				}
			}
			peertest.Run(t, 30*time.Second, "cabextract", "-t", "-q", path)
			cx := filepath.Join(dir, "cabextract")
			gc := filepath.Join(dir, "gcab")
			peertest.Run(t, 30*time.Second, "cabextract", "-q", "-d", cx, path)
			peertest.Run(t, 30*time.Second, "gcab", "-x", "-n", "-C", gc, path)
			for name, want := range s.files {
				if !bytes.Equal(got[name], want) {
					t.Errorf("own reader: %s differs", name)
				}
				for _, d := range []string{cx, gc} {
					b, err := os.ReadFile(filepath.Join(d, name))
					if err != nil {
						t.Errorf("%v", err)
					} else if !bytes.Equal(b, want) {
						t.Errorf("%s: %s differs (%d bytes, want %d)", filepath.Base(d), name, len(b), len(want))
					}
				}
			}
		})
	}
}

// TestWriterRefuses checks the writer's argument errors.
func TestWriterRefuses(t *testing.T) {
	w := NewWriter(new(bytes.Buffer))
	for _, n := range []string{"", string(make([]byte, 256)), "a\x00b"} {
		if _, err := w.CreateHeader(&FileHeader{Name: n}); err == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	if err := w.Close(); err == nil {
		t.Error("empty cabinet accepted")
	}
	w = NewWriter(new(bytes.Buffer))
	w.Compression = LZX | 16<<8
	w.Create("x")
	if err := w.Close(); err == nil {
		t.Error("LZX writing accepted")
	}
}

// TestMSZIPCompleteCodes shows why the writer checks its deflate output:
// compress/flate writes a one-code distance tree for a block that uses a
// single distance, which cabextract rejects; mszipBlock's output never has
// one.
func TestMSZIPCompleteCodes(t *testing.T) {
	chunk := testPayloads()["exact.bin"][:32767]
	var raw bytes.Buffer
	zw, _ := flate.NewWriter(&raw, flate.BestCompression)
	zw.Write(chunk)
	zw.Close()
	if deflateStrict(raw.Bytes()) {
		t.Log("compress/flate no longer writes a one-code distance tree here")
	}
	var zbuf bytes.Buffer
	b, err := mszipBlock(&zbuf, chunk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !deflateStrict(b[2:]) {
		t.Fatal("mszipBlock wrote an incomplete code")
	}
	out, err := inflateBlock(b, nil, len(chunk))
	if err != nil || !bytes.Equal(out, chunk) {
		t.Fatalf("round trip: %v", err)
	}
	if len(b) > 2000 {
		t.Errorf("block of 32767 repetitive bytes compressed to %d bytes", len(b))
	}
}

// TestMSZIPShortBlocks reads MSZIP blocks shorter than 32 KiB whose
// matches reach back across more than one earlier block: the history is
// the last 32 KiB of output, not the last block.
func TestMSZIPShortBlocks(t *testing.T) {
	data := testPayloads()["nettcpip.inf"][:60000]
	var blocks bytes.Buffer
	var hist []byte
	n := 0
	for off := 0; off < len(data); off += 5000 {
		chunk := data[off:min(off+5000, len(data))]
		var zb bytes.Buffer
		zb.WriteString("CK")
		zw, _ := flate.NewWriterDict(&zb, flate.DefaultCompression, hist)
		zw.Write(chunk)
		zw.Close()
		var h [8]byte
		binary.LittleEndian.PutUint16(h[4:], uint16(zb.Len()))
		binary.LittleEndian.PutUint16(h[6:], uint16(len(chunk)))
		blocks.Write(h[:])
		blocks.Write(zb.Bytes())
		hist = append(hist, chunk...)
		hist = hist[max(0, len(hist)-32768):]
		n++
	}
	// Reuse a written cabinet's header and patch folder and file.
	c := makeCab(t, MSZIP, map[string][]byte{"a.txt": data})
	coff := int(binary.LittleEndian.Uint32(c[36:]))
	c = append(c[:coff:coff], blocks.Bytes()...)
	binary.LittleEndian.PutUint16(c[40:], uint16(n))
	got, err := extractAllBytes(c)
	if err != nil || !bytes.Equal(got["a.txt"], data) {
		t.Fatalf("short blocks: %v", err)
	}
}
