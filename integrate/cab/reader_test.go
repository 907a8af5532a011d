package cab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// corpus is libmspack's cabinet test set, kept in the shared directory.
const corpus = "../../../shared/testdata/cab"

// extractAll opens a cabinet and reads every file, returning the contents
// by name and the first error.
func extractAll(path string) (map[string][]byte, error) {
	r, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[string][]byte{}
	var first error
	for _, f := range r.File {
		b, err := f.ReadAll()
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if len(b) != int(f.Size) {
			return nil, fmt.Errorf("%s: read %d bytes, want %d", f.Name, len(b), f.Size)
		}
		out[f.Name] = b
	}
	return out, first
}

// withDeadline runs fn and fails the test if it takes longer than d: a
// malformed cabinet must never make the reader loop.
func withDeadline(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("no result after %v: reader hangs", d)
	}
}

var validTests = []struct {
	file  string
	files []string         // expected names, in order
	comp  []string         // folder compressions
	skip  map[string]error // files expected to fail, and how
}{
	{file: "normal_2files_1folder.cab", files: []string{"hello.c", "welcome.c"}, comp: []string{"none"}},
	{file: "normal_2files_2folders.cab", files: []string{"mszip1.txt", "mszip2.txt", "lzx1.txt", "lzx2.txt"}, comp: []string{"MSZIP", "LZX:18"}},
	{file: "normal_255c_filename.cab", files: []string{strings.Repeat("Hello", 50) + "!.txt"}, comp: []string{"none"}},
	{file: "mszip_lzx_qtm.cab", files: []string{"mszip.txt", "lzx.txt", "qtm.txt"}, comp: []string{"MSZIP", "LZX:18", "Quantum"},
		skip: map[string]error{"qtm.txt": ErrUnsupported}},
	{file: "reserve_---.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_--D.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_-F-.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_-FD.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_H--.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_H-D.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_HF-.cab", files: []string{"test1.txt", "test2.txt"}},
	{file: "reserve_HFD.cab", files: []string{"test1.txt", "test2.txt"}},
}

// TestCorpusValid reads the valid cabinets of the corpus (stored, MSZIP,
// LZX, every combination of reserve fields) and compares every file with
// what cabextract extracts.
func TestCorpusValid(t *testing.T) {
	peertest.Need(t, "cabextract", "cabextract")
	for _, tt := range validTests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(corpus, tt.file)
			r, err := OpenReader(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var names, comps []string
			for _, f := range r.File {
				names = append(names, f.Name)
			}
			for _, f := range r.Folder {
				comps = append(comps, f.Compression.String())
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.files) {
				t.Errorf("files %q, want %q", names, tt.files)
			}
			if tt.comp != nil && fmt.Sprint(comps) != fmt.Sprint(tt.comp) {
				t.Errorf("folders %q, want %q", comps, tt.comp)
			}
			dir := t.TempDir()
			peertest.Try(t, 30*time.Second, "cabextract", "-q", "-d", dir, path)
			for _, f := range r.File {
				got, err := f.ReadAll()
				if want, ok := tt.skip[f.Name]; ok {
					if !errors.Is(err, want) {
						t.Errorf("%s: error %v, want %v", f.Name, err, want)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", f.Name, err)
					continue
				}
				want, err := os.ReadFile(filepath.Join(dir, f.Name))
				if err != nil {
					t.Fatalf("cabextract output: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes differ from cabextract's %d", f.Name, len(got), len(want))
				}
			}
		})
	}
}

// TestCorpusMalformed opens and extracts every malformed cabinet of the
// corpus (bad_*, partial_*, cve-*, and the other broken ones): each must
// give an error (ErrUnsupported for the spanning and Quantum ones), in
// bounded time, without panicking.
func TestCorpusMalformed(t *testing.T) {
	var files []string
	for _, pat := range []string{"bad_*.cab", "partial_*.cab", "cve-*.cab", "filename-read-violation-*.cab",
		"hidden-file-*.cab", "lzx-*.cab", "multi_basic_*.cab"} {
		m, _ := filepath.Glob(filepath.Join(corpus, pat))
		files = append(files, m...)
	}
	if len(files) < 40 {
		t.Fatalf("only %d malformed cabinets found in %s", len(files), corpus)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			var err error
			withDeadline(t, 10*time.Second, func() { _, err = extractAll(path) })
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Errorf("error %v matches neither ErrFormat nor ErrUnsupported", err)
			}
			if strings.HasPrefix(name, "multi_basic") && !errors.Is(err, ErrUnsupported) {
				t.Errorf("spanning cabinet: error %v, want ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "at 0x") {
				t.Errorf("error %q does not name the file and offset", err)
			}
		})
	}
}

// messWith returns a copy of data with fn applied (zip's test idiom).
func messWith(data []byte, fn func(b []byte)) []byte {
	b := bytes.Clone(data)
	fn(b)
	return b
}

// TestChecksumMismatch flips one payload byte of a checksummed MSZIP
// cabinet written by Writer: the read fails with ErrChecksum naming the
// block's offset.
func TestChecksumMismatch(t *testing.T) {
	good := makeCab(t, MSZIP, map[string][]byte{"a.txt": bytes.Repeat([]byte("checksum "), 1000)})
	// File table: header 36 + folder 8 + entry 16 + "a.txt\0" = 66: first
	// CFDATA at 66, payload at 74.
	bad := messWith(good, func(b []byte) { b[80] ^= 0x40 })
	r, err := NewNamedReader(bytes.NewReader(bad), int64(len(bad)), "bad.cab")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.File[0].ReadAll()
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrFormat) {
		t.Fatalf("error %v, want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), "bad.cab: at 0x42") {
		t.Errorf("error %q does not name file and block offset 0x42", err)
	}
	// A zero checksum means "not computed" and is accepted.
	unsummed := messWith(good, func(b []byte) { copy(b[66:70], []byte{0, 0, 0, 0}) })
	if _, err := extractAllBytes(unsummed); err != nil {
		t.Errorf("zero checksum: %v", err)
	}
}

// TestHeaderCorruption corrupts counts and offsets of a good cabinet at
// known places: each gives a FormatError, never a panic.
func TestHeaderCorruption(t *testing.T) {
	good := makeCab(t, MSZIP, map[string][]byte{"a.txt": []byte("hello")})
	tests := []struct {
		name string
		fn   func(b []byte)
		want string
	}{
		{"signature", func(b []byte) { b[0] = 'X' }, "bad signature"},
		{"files offset", func(b []byte) { b[16] = 0xff }, "file table offset"},
		{"folders", func(b []byte) { b[26], b[27] = 0xff, 0xff }, "folders of 8 bytes"},
		{"files", func(b []byte) { b[28], b[29] = 0xff, 0xff }, "files extend beyond"},
		{"data offset", func(b []byte) { b[39] = 0x7f }, "data offset"},
		{"data count", func(b []byte) { b[40], b[41] = 0xff, 0xff }, "data blocks extend"},
		{"compression", func(b []byte) { b[42] = 9 }, "unknown compression"},
		{"lzx window", func(b []byte) { b[42], b[43] = 3, 22 }, "LZX window"},
		{"file size", func(b []byte) { b[47] = 0x7f }, "exceed what folder"},
		{"folder index", func(b []byte) { b[52] = 3 }, "folder index 3 out of range"},
		{"block size", func(b []byte) { b[70], b[71] = 0xff, 0xff }, "exceeds"},
		{"uncomp size", func(b []byte) { b[72], b[73] = 0x01, 0x90 }, "more than 32768"},
		{"spanning", func(b []byte) { b[30] = flagNextCabinet }, "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extractAllBytes(messWith(good, tt.fn))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func extractAllBytes(b []byte) (map[string][]byte, error) {
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range r.File {
		d, err := f.ReadAll()
		if err != nil {
			return nil, err
		}
		out[f.Name] = d
	}
	return out, nil
}

// testPayloads are file contents that exercise block boundaries: empty,
// tiny, text spanning several 32 KiB blocks with long-range repeats, and
// incompressible bytes.
func testPayloads() map[string][]byte {
	var text bytes.Buffer
	for i := 0; text.Len() < 200_000; i++ {
		fmt.Fprintf(&text, "HKLM,\"SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\",\"Value%d\",0x00010001,%d\r\n", i%97, i)
	}
	noise := make([]byte, 70_000)
	x := uint32(1)
	for i := range noise {
		x = x*1664525 + 1013904223
		noise[i] = byte(x >> 24)
	}
	return map[string][]byte{
		"nettcpip.inf": text.Bytes(),
		"noise.bin":    noise,
		"tiny.txt":     []byte("x"),
		"exact.bin":    bytes.Repeat([]byte{0xe8, 1, 2, 3, 4}, 32768/5*2+1),
	}
}

// TestGcabMSZIP reads MSZIP cabinets made by gcab -c -z: byte-identical.
func TestGcabMSZIP(t *testing.T) {
	peertest.Need(t, "gcab", "gcab")
	dir := t.TempDir()
	payloads := testPayloads()
	var names []string
	for name, b := range payloads {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	for _, set := range [][]string{{"nettcpip.inf"}, names} {
		out := filepath.Join(t.TempDir(), "g.cab")
		args := append([]string{"-c", "-n", "-z", out}, set...)
		peertest.Run(t, 30*time.Second, "sh", "-c", "cd "+dir+" && gcab "+strings.Join(args, " "))
		got, err := extractAll(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range set {
			if !bytes.Equal(got[name], payloads[name]) {
				t.Errorf("%v: %s differs (%d bytes, want %d)", set, name, len(got[name]), len(payloads[name]))
			}
		}
	}
}

// FuzzReader opens arbitrary bytes as a cabinet and reads every file: no
// panic, no hang; a cabinet that reads is written back and must read the
// same.
func FuzzReader(f *testing.F) {
	m, _ := filepath.Glob(filepath.Join(corpus, "*.cab"))
	for _, p := range m {
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		files := map[string][]byte{}
		for _, f := range r.File {
			d, err := f.ReadAll()
			if err != nil {
				return
			}
			if len(d) != int(f.Size) {
				t.Fatalf("%s: %d bytes, want %d", f.Name, len(d), f.Size)
			}
			if _, dup := files[f.Name]; dup {
				return
			}
			files[f.Name] = d
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for _, f := range r.File {
			fw, err := w.CreateHeader(&FileHeader{Name: f.Name, Modified: f.Modified, Attrs: f.Attrs})
			if err != nil {
				return // e.g. a name Writer refuses
			}
			fw.Write(files[f.Name])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := extractAllBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		for name, d := range files {
			if !bytes.Equal(again[name], d) {
				t.Fatalf("%s changed after write", name)
			}
		}
	})
}

// TestMaxFileSize: a file larger than Reader.MaxFileSize is refused by
// Open and ReadAll before anything is decompressed, with an error naming
// the cabinet, the file and its CFFILE offset; the default is
// DefaultMaxFileSize, and raising the limit serves the file.
func TestMaxFileSize(t *testing.T) {
	payload := bytes.Repeat([]byte("xpboot cab "), 10000) // 110,000 bytes, 4 blocks
	b := makeCab(t, MSZIP, map[string][]byte{"big.inf": payload})
	r, err := NewNamedReader(bytes.NewReader(b), int64(len(b)), "big.in_")
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxFileSize != DefaultMaxFileSize {
		t.Fatalf("MaxFileSize %d, want DefaultMaxFileSize", r.MaxFileSize)
	}
	r.MaxFileSize = 65536
	for name, fn := range map[string]func() error{
		"Open":    func() error { _, err := r.File[0].Open(); return err },
		"ReadAll": func() error { _, err := r.File[0].ReadAll(); return err },
	} {
		err := fn()
		var fe *FormatError
		if !errors.Is(err, ErrTooLarge) || !errors.As(err, &fe) || fe.Off == 0 ||
			!strings.Contains(err.Error(), "big.in_") || !strings.Contains(err.Error(), `"big.inf"`) {
			t.Errorf("%s: %v, want ErrTooLarge naming big.in_, big.inf and the offset", name, err)
		}
	}
	r.MaxFileSize = int64(len(payload))
	got, err := r.File[0].ReadAll()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("at the limit: %v, %d bytes", err, len(got))
	}
}

// TestBlockCaps: the MSZIP and LZX block decoders refuse an output size
// outside 1..32768 whoever asks.
func TestBlockCaps(t *testing.T) {
	for _, n := range []int{0, -1, maxBlockData + 1, 1 << 30} {
		if _, err := inflateBlock([]byte("CK\x03\x00"), nil, n); err == nil {
			t.Errorf("inflateBlock(n=%d) accepted", n)
		}
		d := newLZXDecoder(15, &lzxInput{fr: &folderReader{}})
		if _, err := d.decodeFrame(n); err == nil {
			t.Errorf("decodeFrame(n=%d) accepted", n)
		}
	}
}
