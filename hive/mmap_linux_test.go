package hive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// TestLoadPaths checks both ways Edit loads a hive on Linux, the huge-page
// copy and the copy-on-write mapping: each holds the file's bytes, has the
// spare capacity asked for (zeroed), and keeps writes in the process.
func TestLoadPaths(t *testing.T) {
	want := make([]byte, 3*hugePage/2+4096)
	for i := range want {
		want[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "h")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	const reserve = 1 << 20
	size := int64(len(want))
	loads := []struct {
		name string
		load func(*os.File, int64, int64) ([]byte, func(), bool)
	}{
		{"huge", readHuge},
		{"private", mapPrivate},
	}
	for _, l := range loads {
		t.Run(l.name, func(t *testing.T) {
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			b, release, ok := l.load(fh, size, size+reserve)
			if !ok {
				if l.name == "huge" && !hugePagesOffered() {
					t.Skip("no transparent huge pages here")
				}
				t.Fatal("load refused")
			}
			defer release()
			if !bytes.Equal(b, want) {
				t.Fatal("loaded bytes differ from the file")
			}
			if l.name == "huge" && uintptr(unsafe.Pointer(&b[0]))%hugePage != 0 {
				t.Error("huge-page region is not 2 MiB aligned")
			}
			spare := b[:cap(b)]
			if int64(len(spare)) < size+reserve {
				t.Fatalf("capacity %d, want at least %d", len(spare), size+reserve)
			}
			if bytes.IndexFunc(spare[size:], func(r rune) bool { return r != 0 }) >= 0 {
				t.Error("spare capacity is not zero")
			}
			b[0], spare[size] = 0xAA, 0xBB
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Error("a write to the loaded hive reached the file")
			}
		})
	}
}

// TestHeapBytes: the memory Open reads a hive into has exactly the length
// asked for (capacity too, so no append runs into the slack), is zero, and
// where huge pages are offered starts on a 2 MiB boundary.
func TestHeapBytes(t *testing.T) {
	for _, n := range []int{0, 4096, hugePage - 1, hugePage, 3*hugePage + 12345} {
		b := heapBytes(n)
		if len(b) != n || cap(b) != n {
			t.Errorf("heapBytes(%d): len %d cap %d", n, len(b), cap(b))
		}
		if bytes.IndexFunc(b, func(r rune) bool { return r != 0 }) >= 0 {
			t.Errorf("heapBytes(%d) is not zero", n)
		}
		if n >= hugePage && hugePagesOffered() && uintptr(unsafe.Pointer(&b[0]))%hugePage != 0 {
			t.Errorf("heapBytes(%d) is not 2 MiB aligned", n)
		}
	}
}
