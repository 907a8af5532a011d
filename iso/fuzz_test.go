package iso

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// systemArea is the 16 sectors before the first volume descriptor; the
// reader never looks at them, so the corpus leaves them out and the
// target puts them back.
const systemArea = firstDescriptor * SectorSize

// FuzzReader feeds arbitrary images (without their system area) to the
// reader: it must return an error or a tree, never panic or hang, and a
// tree it reads must rebuild and read back to the same files.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzReader/*")
	if len(seeds) == 0 {
		f.Add([]byte("not an image"))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b := append(make([]byte, systemArea, systemArea+len(in)), in...)
		x, err := NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if x.Boot != nil {
			for _, e := range x.Boot.Entries {
				x.BootImage(e)
			}
		}
		files := map[string][]byte{}
		err = x.Walk(func(p string, fi FileInfo) error {
			if fi.IsDir() {
				return nil
			}
			fl, err := x.Open(p)
			if err != nil {
				return err
			}
			c, err := io.ReadAll(fl.Reader())
			files[p] = c
			return err
		})
		if err != nil {
			return
		}
		tree, err := x.Tree()
		if err != nil {
			t.Fatalf("Walk succeeded but Tree failed: %v", err)
		}
		out, err := WriteToBytes(tree, Options{Time: fixedTime})
		if err != nil {
			return // names this writer refuses (e.g. too long for Joliet)
		}
		y, err := NewReader(bytes.NewReader(out), int64(len(out)))
		if err != nil {
			t.Fatalf("re-read of a rebuilt image: %v", err)
		}
		for p, c := range files {
			fl, err := y.Open(p)
			if err != nil {
				t.Fatalf("rebuilt image lacks %s: %v", p, err)
			}
			d, _ := io.ReadAll(fl.Reader())
			if !bytes.Equal(c, d) {
				t.Fatalf("%s changed in the rebuild", p)
			}
		}
	})
}

// TestWriteFuzzSeeds rewrites the seed corpus with UPDATE_TESTDATA=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("UPDATE_TESTDATA") != "1" {
		t.Skip("UPDATE_TESTDATA=1 rewrites testdata/fuzz/FuzzReader")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := func(name, s string) *Node {
		return &Node{Name: name, Size: int64(len(s)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte(s))), nil }}
	}
	trees := map[string]*Node{
		"flat":   {Dir: true, Children: []*Node{file("A.TXT", "hello"), file("long name.txt", "x")}},
		"nested": {Dir: true, Children: []*Node{{Name: "I386", Dir: true, Children: []*Node{file("TXTSETUP.SIF", "[Version]\r\n"), {Name: "SYSTEM32", Dir: true}}}}},
		"boot":   {Dir: true, Children: []*Node{file("B", "b")}},
	}
	for name, tree := range trees {
		opts := Options{Time: fixedTime}
		if name == "boot" {
			opts.Boot = &Boot{Image: bytes.Repeat([]byte{0xF4}, 2048)}
		}
		b, err := WriteToBytes(tree, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n[]byte("+quote(b[systemArea:])+")\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func quote(b []byte) string {
	var s bytes.Buffer
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			s.WriteString("\\x")
			s.WriteByte("0123456789abcdef"[c>>4])
			s.WriteByte("0123456789abcdef"[c&15])
		}
	}
	s.WriteByte('"')
	return s.String()
}
