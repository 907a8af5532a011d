package imagefs

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestCleanPathRefusesEscapes(t *testing.T) {
	tests := []struct {
		in, want string
		escapes  bool
	}{
		{"/a/../b", "/b", false},
		{`\I386\x`, "/I386/x", false},
		{"a/./b/", "/a/b", false},
		{"/..", "/../", true},
		{"/../etc/passwd", "/../etc/passwd", true},
		{"/a/../../x", "/../x", true},
		{"../../x", "/../x", true},
	}
	for _, tt := range tests {
		got := cleanPath(tt.in)
		if !strings.HasPrefix(got, strings.TrimSuffix(tt.want, "/")) {
			t.Errorf("cleanPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		err := Location{Image: "d.img", Path: got}.Validate()
		if (err != nil) != tt.escapes || (err != nil && !errors.Is(err, ErrPathEscapes)) {
			t.Errorf("Validate(%q): %v, want escape=%v", tt.in, err, tt.escapes)
		}
	}
}

func TestSafeName(t *testing.T) {
	for name, want := range map[string]bool{
		"ntldr": true, "Long Name.TXT": true, "..x": true,
		"..": false, ".": false, "": false, "../../pwn": false, `a\b`: false, "nul\x00x": false,
	} {
		if got := SafeName(name); got != want {
			t.Errorf("SafeName(%q) = %v, want %v", name, got, want)
		}
	}
}

// memFS is an in-memory FS whose names may be anything a damaged or hostile
// image holds: each directory lists its children's names explicitly, so a
// name may contain "/" or be "..".
type memFS struct {
	files    map[string][]byte   // path -> content; directories have nil
	children map[string][]string // directory path -> child names
	// failOpen makes Open fail for this path, to test partial trees.
	failOpen string
}

func newMemFS() *memFS {
	return &memFS{files: map[string][]byte{"/": nil}, children: map[string][]string{}}
}

// add puts a file (data non-nil) or directory (data nil) named name into
// directory dir.
func (m *memFS) add(dir, name string, data []byte) {
	p := strings.TrimSuffix(dir, "/") + "/" + name
	m.files[p] = data
	m.children[dir] = append(m.children[dir], name)
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) ModTime() time.Time { return time.Time{} }

type memFile struct{ *bytes.Reader }

func (f memFile) Size() int64 { return f.Reader.Size() }

func (m *memFS) Type() string           { return "mem" }
func (m *memFS) FreeBytes() int64       { return -1 } // unknown: Put checks no space
func (m *memFS) Label() (string, error) { return "", nil }
func (m *memFS) Stat(p string) (FileInfo, error) {
	d, ok := m.files[p]
	if !ok {
		return nil, iofs.ErrNotExist
	}
	return memInfo{name: path.Base(p), size: int64(len(d)), dir: d == nil}, nil
}

func (m *memFS) ReadDir(p string) ([]FileInfo, error) {
	var out []FileInfo
	for _, name := range m.children[p] {
		d := m.files[strings.TrimSuffix(p, "/")+"/"+name]
		out = append(out, memInfo{name: name, size: int64(len(d)), dir: d == nil})
	}
	return out, nil
}

func (m *memFS) Open(p string) (File, error) {
	if p == m.failOpen {
		return nil, errors.New("injected read error")
	}
	d, ok := m.files[p]
	if !ok || d == nil {
		return nil, iofs.ErrNotExist
	}
	return memFile{bytes.NewReader(d)}, nil
}

func (m *memFS) WriteFile(p string, r io.Reader, _ int64, _ time.Time) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if _, ok := m.files[p]; !ok {
		m.children[path.Dir(p)] = append(m.children[path.Dir(p)], path.Base(p))
	}
	m.files[p] = append([]byte{}, b...)
	return nil
}
func (m *memFS) Mkdir(p string, _ time.Time) error {
	if _, ok := m.files[p]; !ok {
		m.add(path.Dir(p), path.Base(p), nil)
	}
	return nil
}
func (m *memFS) MkdirAll(p string, t time.Time) error {
	if p == "/" {
		return nil
	}
	m.MkdirAll(path.Dir(p), t)
	return m.Mkdir(p, t)
}
func (m *memFS) Remove(p string) error {
	if len(m.children[p]) > 0 {
		return errors.New("directory not empty")
	}
	delete(m.files, p)
	dir, name := path.Dir(p), path.Base(p)
	m.children[dir] = slices.DeleteFunc(m.children[dir], func(n string) bool { return n == name })
	return nil
}
func (m *memFS) Flush() error { return nil }

// TestGetHostileNames: names a damaged or hostile image holds never make
// Get write outside the destination.
func TestGetHostileNames(t *testing.T) {
	m := newMemFS()
	m.add("/", "d", nil)
	m.add("/d", "ok.txt", []byte("fine"))
	m.add("/d", "../../pwn.txt", []byte("escape"))
	m.add("/d", "..", []byte("dotdot"))
	m.add("/d", "sub", nil)
	m.add("/d/sub", "a", []byte("a"))
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	stats, err := Get(m, "/d", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Skipped) != 2 {
		t.Errorf("skipped %q, want 2 entries", stats.Skipped)
	}
	var got []string
	filepath.Walk(parent, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(parent, p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	want := []string{"out/ok.txt", "out/sub/a"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files written: %q, want %q", got, want)
	}
}

// TestGetNoPartialTree: a get that fails half-way leaves nothing behind.
func TestGetNoPartialTree(t *testing.T) {
	m := newMemFS()
	m.add("/", "d", nil)
	for _, n := range []string{"a", "b", "c"} {
		m.add("/d", n, []byte(n))
	}
	m.failOpen = "/d/b"
	parent := t.TempDir()
	if _, err := Get(m, "/d", filepath.Join(parent, "out"), nil); err == nil {
		t.Fatal("get with a failing read succeeded")
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("failed get left %v", left)
	}
}

func TestPutFromGetToRemoveAll(t *testing.T) {
	m := newMemFS()
	m.add("/", "x", nil)
	if err := PutFrom(m, strings.NewReader("from stdin"), "/x/y/z.txt", time.Now()); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := GetTo(m, "/X/../x/y/z.txt", &b); err != nil || b.String() != "from stdin" {
		t.Fatalf("GetTo: %q %v", b.String(), err)
	}
	if err := GetTo(m, "/x/y", &b); err == nil {
		t.Error("GetTo of a directory succeeded")
	}
	if err := PutFrom(m, strings.NewReader("x"), "/x", time.Now()); err == nil {
		t.Error("PutFrom onto a directory succeeded")
	}
	if err := RemoveAll(m, "/"); err == nil {
		t.Error("RemoveAll of the root succeeded")
	}
	if err := RemoveAll(m, "/x"); err != nil {
		t.Fatal(err)
	}
	if len(m.files) != 1 || len(m.children["/"]) != 0 {
		t.Errorf("left after rm -r: %v", m.files)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		"ntoskrnl.exe": true, "Long Name.txt": true, "CONFIG.SYS": true, "COM10": true, "LPT": true, "straße": true,
		"CON": false, "con.txt": false, "Nul": false, "COM1": false, "lpt9.log": false, "AUX .x": false,
		"a:b": false, "what?": false, "star*": false, `back\slash`: false, "trailing.": false, "trailing ": false, "tab\t": false, "..": false,
	} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	m := newMemFS()
	m.add("/", "existing:odd", nil) // names already there are not judged
	if err := CheckNewPath(m, "/existing:odd/new.txt"); err != nil {
		t.Errorf("existing component judged: %v", err)
	}
	if err := CheckNewPath(m, "/existing:odd/CON/x"); err == nil || !strings.Contains(err.Error(), "/existing:odd/CON") {
		t.Errorf("device name in a new path: %v", err)
	}
	if err := PutFrom(m, strings.NewReader("x"), "/PRN.txt", time.Now()); err == nil {
		t.Error("PutFrom to PRN.txt succeeded")
	}
}
