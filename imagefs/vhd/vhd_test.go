package vhd

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/internal/peertest"
)

// pattern writes a recognisable layout into w (size bytes): random data at
// the start, an unaligned run straddling a block boundary, explicit zeros,
// and the last sector. It returns the expected full content.
func pattern(t *testing.T, w interface {
	WriteAt([]byte, int64) (int, error)
}, size int64, seed uint64) []byte {
	t.Helper()
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 1))
	put := func(off, n int64, zero bool) {
		if off+n > size {
			n = size - off
		}
		b := want[off : off+n]
		if !zero {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		if _, err := w.WriteAt(b, off); err != nil {
			t.Fatalf("WriteAt(%d, %d): %v", off, n, err)
		}
	}
	put(0, 1<<20, false)
	put(2<<20-1000, 5000, false)
	put(5<<20, 2<<20, true)
	put(size-512, 512, false)
	return want
}

func readAll(t *testing.T, d blockdev.Device) []byte {
	t.Helper()
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatalf("ReadAt: %v", err)
	}
	return got
}

func writeRaw(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type qemuInfo struct {
	VirtualSize int64  `json:"virtual-size"`
	Format      string `json:"format"`
}

func qinfo(t *testing.T, qemu, path, format string) qemuInfo {
	t.Helper()
	out := peertest.Run(t, time.Minute, qemu, "info", "--output=json", "-f", format, path)
	var qi qemuInfo
	if err := json.Unmarshal(out, &qi); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return qi
}

func TestRoundSize(t *testing.T) {
	tests := []struct {
		size, want int64
		exact      bool
	}{
		{1 << 30, 1073995776, false}, // qemu-img create -f vpc 1G
		{2 << 30, 2147991552, false}, // qemu-img create -f vpc 2G
		{1073995776, 1073995776, true},
		{MaxCHSSectors*512 + 512, MaxCHSSectors*512 + 512, true},
		{1000, 17 * 4 * 512, false}, // rounds to a sector, then CHS
	}
	for _, tt := range tests {
		got, exact := RoundSize(tt.size)
		if got != tt.want || exact != tt.exact {
			t.Errorf("RoundSize(%d) = %d, %v; want %d, %v", tt.size, got, exact, tt.want, tt.exact)
		}
	}
}

// TestCreateQemu writes fixed and dynamic disks through the Device interface
// and checks that qemu-img sees the exact size and the same content.
func TestCreateQemu(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	chs, _ := RoundSize(20 << 20)
	for _, tc := range []struct {
		name string
		typ  DiskType
		size int64
	}{
		{"fixed", TypeFixed, chs},
		{"dynamic", TypeDynamic, chs},
		{"dynamic-not-chs", TypeDynamic, 20 << 20}, // "win " creator: qemu uses the current size
		{"fixed-not-chs", TypeFixed, 20<<20 + 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".vhd")
			d, err := Create(path, tc.size, &CreateOptions{Type: tc.typ})
			if err != nil {
				t.Fatal(err)
			}
			want := pattern(t, d, tc.size, 7)
			if got := readAll(t, d); !bytes.Equal(got, want) {
				t.Fatal("read back differs from what was written")
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if qi := qinfo(t, qemu, path, "vpc"); qi.VirtualSize != tc.size {
				t.Errorf("qemu-img virtual-size %d, want %d", qi.VirtualSize, tc.size)
			}
			rawPath := filepath.Join(dir, tc.name+".raw")
			writeRaw(t, rawPath, want)
			peertest.Run(t, time.Minute, qemu, "compare", "-f", "vpc", "-F", "raw", path, rawPath)
			d2, err := Open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d2.Close()
			if got := readAll(t, d2); !bytes.Equal(got, want) {
				t.Fatal("reopened content differs")
			}
			if tc.typ == TypeDynamic {
				ext, err := d2.Extents(0, d2.Size())
				if err != nil {
					t.Fatal(err)
				}
				// Blocks 0, 1, (2, 3 explicit zeros) and the last are data.
				var data int64
				for _, e := range ext {
					if e.State == blockdev.Data {
						data += e.Len
					}
				}
				last := (tc.size - 1) / DefaultBlockSize * DefaultBlockSize
				if want := 4*DefaultBlockSize + tc.size - last; data != want {
					t.Errorf("data extents cover %d bytes, want %d: %v", data, want, ext)
				}
			}
		})
	}
}

// TestReadQemu reads VHDs that qemu-img wrote, all subformats.
func TestReadQemu(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(24 << 20)
	rawPath := filepath.Join(dir, "src.raw")
	f, err := os.Create(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	want := pattern(t, f, size, 3)
	f.Close()
	for _, opts := range []string{"subformat=fixed", "subformat=dynamic", "subformat=dynamic,force_size=on", "subformat=fixed,force_size=on"} {
		t.Run(opts, func(t *testing.T) {
			path := filepath.Join(dir, strings.NewReplacer("=", "-", ",", "-").Replace(opts)+".vhd")
			peertest.Run(t, time.Minute, qemu, "convert", "-f", "raw", "-O", "vpc", "-o", opts, rawPath, path)
			d, err := Open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() < size {
				t.Fatalf("size %d < source %d", d.Size(), size)
			}
			got := readAll(t, d)
			if !bytes.Equal(got[:size], want) || bytes.ContainsFunc(got[size:], func(r rune) bool { return r != 0 }) {
				t.Fatal("content differs from the raw source")
			}
		})
	}
}

// makeDiff builds a differencing disk over parent by hand (qemu cannot make
// one): a dynamic disk re-typed, with a W2ru locator, where the sectors
// listed in present are stored in the child with content fill.
func makeDiff(t *testing.T, path string, parent *Disk, parentRel string, present []int64, fill byte) {
	t.Helper()
	size := parent.Size()
	d, err := Create(path, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Allocate the blocks with the present sectors, then fix bitmaps.
	for _, s := range present {
		if _, err := d.WriteAt(bytes.Repeat([]byte{fill}, 512), s*512); err != nil {
			t.Fatal(err)
		}
	}
	f := d.f
	for bi, e := range d.bat {
		if e == unusedBAT {
			continue
		}
		bm := make([]byte, d.bmSize)
		for _, s := range present {
			if s*512/d.blockSize == int64(bi) {
				r := (s * 512 % d.blockSize) / 512
				bm[r/8] |= 0x80 >> (r % 8)
			}
		}
		f.WriteAt(bm, int64(e)*512)
	}
	// Locator data after the last block, footer moved behind it.
	name := utf16.Encode([]rune(parentRel))
	loc := make([]byte, 512)
	for i, v := range name {
		binary.LittleEndian.PutUint16(loc[2*i:], v)
	}
	locOff := d.next
	f.WriteAt(loc, locOff)
	d.footer.DiskType = TypeDifferencing
	fb := d.footer.Marshal()
	f.WriteAt(fb, 0)
	f.WriteAt(fb, locOff+512)
	h := *d.header
	h.ParentUUID = parent.footer.UniqueID
	h.ParentName = filepath.Base(parentRel)
	h.Locators[0] = Locator{Code: [4]byte{'W', '2', 'r', 'u'}, DataSpace: 1, DataLength: uint32(2 * len(name)), DataOffset: uint64(locOff)}
	f.WriteAt(h.Marshal(), FooterSize)
	d.Close()
}

func TestDifferencing(t *testing.T) {
	dir := t.TempDir()
	size, _ := RoundSize(8 << 20)
	pp := filepath.Join(dir, "base.vhd")
	p, err := Create(pp, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(t, p, size, 11)
	present := []int64{0, 1, 7, 4100, 4101, size/512 - 1}
	for _, s := range present {
		copy(want[s*512:(s+1)*512], bytes.Repeat([]byte{0xc5}, 512))
	}
	makeDiff(t, filepath.Join(dir, "child.vhd"), p, "base.vhd", present, 0xc5)
	p.Close()

	if _, err := Open(filepath.Join(dir, "child.vhd"), true); !errors.Is(err, ErrUnsupported) {
		t.Errorf("writable open of a differencing disk: %v, want ErrUnsupported", err)
	}
	c, err := Open(filepath.Join(dir, "child.vhd"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Type() != TypeDifferencing || c.Parent() == nil {
		t.Fatalf("type %v parent %v", c.Type(), c.Parent())
	}
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatal("differencing read differs")
	}
	ext, err := c.Extents(0, 4*512)
	if err != nil {
		t.Fatal(err)
	}
	wantExt := []blockdev.Extent{{Off: 0, Len: 1024, State: blockdev.Data}, {Off: 1024, Len: 1024, State: blockdev.Parent}}
	if len(ext) != 2 || ext[0] != wantExt[0] || ext[1] != wantExt[1] {
		t.Errorf("Extents = %v, want %v", ext, wantExt)
	}

	if kids, err := Children(pp); err != nil || len(kids) != 1 || filepath.Base(kids[0]) != "child.vhd" {
		t.Errorf("Children(base) = %v, %v", kids, err)
	}
	// A parent with another unique id is refused.
	os.Rename(pp, pp+".old")
	q, _ := Create(pp, size, nil)
	q.Close()
	if _, err := Open(filepath.Join(dir, "child.vhd"), false); err == nil || !strings.Contains(err.Error(), "unique id") {
		t.Errorf("open with a foreign parent: %v", err)
	}
}

// goodDynamic returns the bytes of a small dynamic VHD with data in the
// first block.
func goodDynamic(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "g.vhd")
	size, _ := RoundSize(6 << 20)
	d, err := Create(path, size, &CreateOptions{Time: time.Unix(vhdEpochUnix, 0), UniqueID: [16]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	d.WriteAt(bytes.Repeat([]byte{0x5a}, 4096), 0)
	d.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadInput corrupts a good image at known offsets: each must give a
// *FormatError naming the offset, never a panic.
func TestBadInput(t *testing.T) {
	good := goodDynamic(t)
	n := int64(len(good))
	fo := n - FooterSize
	mess := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	be32 := func(b []byte, off int64, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	be64 := func(b []byte, off int64, v uint64) { binary.BigEndian.PutUint64(b[off:], v) }
	fixFooter := func(b []byte, off int64) {
		be32(b, off+64, 0)
		be32(b, off+64, checksum(b[off:off+FooterSize], 64))
	}
	fixHeader := func(b []byte) {
		be32(b, 512+36, 0)
		be32(b, 512+36, checksum(b[512:512+HeaderSize], 36))
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		wantOff int64
	}{
		{"truncated", good[:100], ErrFormat, 0},
		{"footer checksum", mess(func(b []byte) []byte { b[fo+40]++; b[40]++; return b }), ErrChecksum, fo + 64},
		{"absurd size", mess(func(b []byte) []byte {
			be64(b, fo+48, 1<<60)
			fixFooter(b, fo)
			copy(b, b[fo:])
			return b
		}), ErrFormat, fo + 48},
		{"header offset past end", mess(func(b []byte) []byte {
			be64(b, fo+16, uint64(n)*4)
			fixFooter(b, fo)
			copy(b, b[fo:])
			return b
		}), ErrFormat, fo + 16},
		{"header checksum", mess(func(b []byte) []byte { b[512+100]++; return b }), ErrChecksum, 512 + 36},
		{"BAT entry past end", mess(func(b []byte) []byte { be32(b, 1536, uint32(n/512)); return b }), ErrFormat, 1536},
		{"BAT past end", mess(func(b []byte) []byte {
			be64(b, 512+16, uint64(n-8))
			fixHeader(b)
			return b
		}), ErrFormat, 512 + 16},
		{"block size", mess(func(b []byte) []byte {
			be32(b, 512+32, 3000)
			fixHeader(b)
			return b
		}), ErrFormat, 512 + 32},
		{"too few entries", mess(func(b []byte) []byte {
			be32(b, 512+28, 1)
			fixHeader(b)
			return b
		}), ErrFormat, 512 + 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.vhd")
			writeRaw(t, path, tt.data)
			d, err := Open(path, false)
			if err == nil {
				d.Close()
				t.Fatal("no error")
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v (%T), want *FormatError wrapping %v", err, err, tt.wantErr)
			}
			if fe.Off != tt.wantOff || fe.File != path {
				t.Errorf("error at %s:0x%x, want %s:0x%x: %v", fe.File, fe.Off, path, tt.wantOff, err)
			}
		})
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.vhd")
	d, err := Create(path, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := Open(path, false); !errors.Is(err, blockdev.ErrLocked) {
		t.Errorf("open while locked for writing: %v, want ErrLocked", err)
	}
}

// TestConcurrentWrites writes interleaved sectors of the same blocks from
// several goroutines; run with -race.
func TestConcurrentWrites(t *testing.T) {
	size, _ := RoundSize(6 << 20)
	d, err := Create(filepath.Join(t.TempDir(), "c.vhd"), size, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want := make([]byte, size)
	const writers = 8
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			var err error
			for off := int64(w) * 512; off+512 <= size; off += writers * 512 * 5 {
				if _, e := d.WriteAt(bytes.Repeat([]byte{byte(w + 1)}, 512), off); e != nil && err == nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		for off := int64(w) * 512; off+512 <= size; off += writers * 512 * 5 {
			copy(want[off:off+512], bytes.Repeat([]byte{byte(w + 1)}, 512))
		}
	}
	if got := readAll(t, d); !bytes.Equal(got, want) {
		t.Fatal("concurrent writes lost data")
	}
}
