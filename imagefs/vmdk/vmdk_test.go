package vmdk

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/internal/peertest"
)

// pattern writes random data at the start, an unaligned run across a grain
// table boundary (32 MiB), explicit zeros and the last sector into w, and
// returns the expected content.
func pattern(t *testing.T, w interface {
	WriteAt([]byte, int64) (int, error)
}, size int64, seed uint64) []byte {
	t.Helper()
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(seed, 2))
	put := func(off, n int64, zero bool) {
		if off >= size {
			return
		}
		n = min(n, size-off)
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
	put(0, 300<<10, false)
	put(700<<10+3, 100, false)
	put(32<<20-5000, 10000, false)
	put(2<<20, 1<<20, true)
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

type qemuInfo struct {
	VirtualSize    int64 `json:"virtual-size"`
	FormatSpecific struct {
		Data struct {
			CID        uint32 `json:"cid"`
			ParentCID  uint32 `json:"parent-cid"`
			CreateType string `json:"create-type"`
		} `json:"data"`
	} `json:"format-specific"`
}

func qinfo(t *testing.T, qemu, path string) qemuInfo {
	t.Helper()
	out := peertest.Run(t, time.Minute, qemu, "info", "--output=json", "-f", "vmdk", path)
	var qi qemuInfo
	if err := json.Unmarshal(out, &qi); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, out)
	}
	return qi
}

func writeRawFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCreateQemu writes monolithicSparse and monolithicFlat disks through the
// Device interface; qemu-img must see the size, pass check and compare equal.
func TestCreateQemu(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	for _, tc := range []struct {
		typ  string
		size int64
	}{
		{TypeMonolithicSparse, 40 << 20},
		{TypeMonolithicSparse, 40<<20 + 3*512}, // partial last grain
		{TypeMonolithicFlat, 40<<20 + 512},
	} {
		name := tc.typ + "-" + filepath.Base(strings.ReplaceAll(time.Duration(tc.size).String(), ".", ""))
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".vmdk")
			d, err := Create(path, tc.size, &CreateOptions{CreateType: tc.typ})
			if err != nil {
				t.Fatal(err)
			}
			want := pattern(t, d, tc.size, 5)
			if got := readAll(t, d); !bytes.Equal(got, want) {
				t.Fatal("read back differs")
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			qi := qinfo(t, qemu, path)
			if qi.VirtualSize != tc.size || qi.FormatSpecific.Data.CreateType != tc.typ {
				t.Errorf("qemu-img info: size %d type %q, want %d %q", qi.VirtualSize, qi.FormatSpecific.Data.CreateType, tc.size, tc.typ)
			}
			peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", path)
			rawPath := filepath.Join(dir, name+".raw")
			writeRawFile(t, rawPath, want)
			peertest.Run(t, time.Minute, qemu, "compare", "-f", "vmdk", "-F", "raw", path, rawPath)
			d2, err := Open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d2.Close()
			if got := readAll(t, d2); !bytes.Equal(got, want) {
				t.Fatal("reopened content differs")
			}
			if tc.typ == TypeMonolithicSparse {
				ext, _ := d2.Extents(0, d2.Size())
				var data int64
				for _, e := range ext {
					if e.State == blockdev.Data {
						data += e.Len
					}
				}
				// 300 KiB → 5 grains, 1 grain at 700 KiB, 2 grains
				// around 32 MiB, 16 zero grains, the last grain.
				last := tc.size - (tc.size-1)/(64<<10)*(64<<10)
				if want := 5*64<<10 + 64<<10 + 2*64<<10 + 16*64<<10 + last; data != want {
					t.Errorf("data extents %d bytes, want %d", data, want)
				}
			}
		})
	}
}

func makeSource(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return pattern(t, f, size, 9)
}

// TestReadQemu reads every VMDK subformat qemu-img writes.
func TestReadQemu(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(40<<20 + 512)
	src := filepath.Join(dir, "src.raw")
	want := makeSource(t, src, size)
	for _, sub := range []string{"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized"} {
		t.Run(sub, func(t *testing.T) {
			path := filepath.Join(dir, sub+".vmdk")
			peertest.Run(t, time.Minute, qemu, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, src, path)
			d, err := Open(path, false)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != size {
				t.Fatalf("size %d, want %d", d.Size(), size)
			}
			if got := readAll(t, d); !bytes.Equal(got, want) {
				t.Fatal("content differs from the source")
			}
			if d.Descriptor().CreateType != sub {
				t.Errorf("createType %q", d.Descriptor().CreateType)
			}
		})
	}
}

// TestStreamWriter writes a streamOptimized disk; qemu-img must accept it.
func TestStreamWriter(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(40<<20 + 1024)
	want := make([]byte, size)
	pattern(t, writerAtBytes(want), size, 13)
	path := filepath.Join(dir, "s.vmdk")
	f, _ := os.Create(path)
	sw, err := NewStreamWriter(f, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewGrainCompressor(flate.DefaultCompression)
	gb := int64(DefaultGrainSectors * sectorSize)
	for g := int64(0); g < sw.Grains(); g++ {
		grain := make([]byte, gb)
		copy(grain, want[g*gb:])
		if bytes.Count(grain, []byte{0}) == len(grain) {
			continue
		}
		z, err := c.Compress(grain)
		if err != nil {
			t.Fatal(err)
		}
		if err := sw.WriteGrain(g, z); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	qi := qinfo(t, qemu, path)
	if qi.VirtualSize != size || qi.FormatSpecific.Data.CreateType != TypeStreamOptimized {
		t.Errorf("qemu-img info: %+v", qi)
	}
	peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", path)
	rawPath := filepath.Join(dir, "s.raw")
	writeRawFile(t, rawPath, want)
	peertest.Run(t, time.Minute, qemu, "compare", "-f", "vmdk", "-F", "raw", path, rawPath)
	d, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d); !bytes.Equal(got, want) {
		t.Fatal("stream read back differs")
	}
	d.Close()
	if _, err := Open(path, true); !errors.Is(err, ErrUnsupported) {
		t.Errorf("writable open of streamOptimized: %v", err)
	}
}

type writerAtBytes []byte

func (w writerAtBytes) WriteAt(p []byte, off int64) (int, error) { return copy(w[off:], p), nil }

// TestDelta reads a delta disk made by qemu-img over an xpboot base, and
// checks the CID protections.
func TestDelta(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	qio := peertest.Need(t, "qemu-io", "qemu-utils")
	dir := t.TempDir()
	size := int64(40 << 20)
	base := filepath.Join(dir, "base.vmdk")
	d, err := Create(base, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(t, d, size, 21)
	d.Close()
	delta := filepath.Join(dir, "delta.vmdk")
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", delta)
	peertest.Run(t, time.Minute, qio, "-f", "vmdk", "-c", "write -P 0xab 1M 64k", "-c", "write -P 0xcd 100k 1k", delta)
	copy(want[1<<20:], bytes.Repeat([]byte{0xab}, 64<<10))
	copy(want[100<<10:], bytes.Repeat([]byte{0xcd}, 1<<10))

	c, err := Open(delta, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Parent() == nil {
		t.Fatal("no parent opened")
	}
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatal("delta content differs")
	}
	ext, _ := c.Extents(0, 192<<10)
	wantExt := []blockdev.Extent{{Off: 0, Len: 64 << 10, State: blockdev.Parent}, {Off: 64 << 10, Len: 64 << 10, State: blockdev.Data}, {Off: 128 << 10, Len: 64 << 10, State: blockdev.Parent}}
	if len(ext) != 3 || ext[0] != wantExt[0] || ext[1] != wantExt[1] || ext[2] != wantExt[2] {
		t.Errorf("Extents = %v, want %v", ext, wantExt)
	}
	c.Close()

	kids, err := Children(base)
	if err != nil || len(kids) != 1 || filepath.Base(kids[0]) != "delta.vmdk" {
		t.Fatalf("Children(base) = %v, %v", kids, err)
	}
	// Writing into the base changes its CID: the delta no longer opens.
	d, err = Open(base, true)
	if err != nil {
		t.Fatal(err)
	}
	d.WriteAt([]byte{1}, 0)
	d.Close()
	if _, err := Open(delta, false); !errors.Is(err, ErrParent) {
		t.Errorf("delta over a changed base: %v, want ErrParent", err)
	}
	if qi := qinfo(t, qemu, base); qi.FormatSpecific.Data.CID == 0 {
		t.Error("no CID")
	}
}

// TestWriteDelta writes into a delta (copy-on-write of partial grains).
func TestWriteDelta(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(8 << 20)
	base := filepath.Join(dir, "base.vmdk")
	d, err := Create(base, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(t, d, size, 23)
	d.Close()
	delta := filepath.Join(dir, "delta.vmdk")
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", delta)
	c, err := Open(delta, true)
	if err != nil {
		t.Fatal(err)
	}
	copy(want[1000:], "overlay")
	c.WriteAt([]byte("overlay"), 1000)
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatal("delta content differs after write")
	}
	c.Close()
	out := filepath.Join(dir, "flat.raw")
	peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", delta, out)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatal("qemu reads different delta content")
	}
}

// goodSparse returns a small monolithicSparse file with one grain of data.
func goodSparse(t testing.TB, size int64) []byte {
	path := filepath.Join(t.TempDir(), "g.vmdk")
	d, err := Create(path, size, &CreateOptions{CID: 0x1234})
	if err != nil {
		t.Fatal(err)
	}
	d.WriteAt(bytes.Repeat([]byte("xpboot"), 100), 4096)
	d.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadInput corrupts a good sparse file at known offsets.
func TestBadInput(t *testing.T) {
	good := goodSparse(t, 1<<20)
	n := int64(len(good))
	l := Layout(1 << 20)
	le32 := func(b []byte, off int64, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	le64 := func(b []byte, off int64, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	mess := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	gdEntry := l.GD * 512
	gt0 := int64(binary.LittleEndian.Uint32(good[gdEntry:])) * 512
	tests := []struct {
		name    string
		data    []byte
		wantOff int64
		wantErr error
	}{
		{"truncated header", good[:100], 100, ErrFormat},
		{"bad version", mess(func(b []byte) { le32(b, 4, 9) }), 4, ErrUnsupported},
		{"absurd capacity", mess(func(b []byte) { le64(b, 12, 1<<60) }), 12, ErrFormat},
		{"grain size", mess(func(b []byte) { le64(b, 20, 100) }), 20, ErrFormat},
		{"GD past end", mess(func(b []byte) { le64(b, 56, uint64(n/512)) }), 56, ErrFormat},
		{"GT past end", mess(func(b []byte) { le32(b, gdEntry, uint32(n/512)) }), gdEntry, ErrFormat},
		{"grain past end", mess(func(b []byte) { le32(b, gt0, uint32(n/512)) }), gt0, ErrFormat},
		{"descriptor past end", mess(func(b []byte) { le64(b, 28, uint64(n/512)) }), 28, ErrFormat},
		{"bad descriptor", mess(func(b []byte) { copy(b[512:], "garbage\n") }), 512, ErrFormat},
		{"newline bytes", mess(func(b []byte) { b[74] = '\n' }), 73, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.vmdk")
			writeRawFile(t, path, tt.data)
			d, err := Open(path, false)
			if err == nil {
				// Lazily loaded grain tables fail at first read.
				_, err = d.ReadAt(make([]byte, d.Size()), 0)
				d.Close()
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

// TestMissingExtent: a descriptor naming an absent file gives an error
// naming the descriptor and the line's offset.
func TestMissingExtent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.vmdk")
	text := "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"nope.img\" 0\n"
	writeRawFile(t, path, []byte(text))
	_, err := Open(path, false)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != path || fe.Off != int64(strings.Index(text, "RW")) || !strings.Contains(err.Error(), "nope.img") {
		t.Fatalf("error %v", err)
	}
	// A flat file that is too short.
	writeRawFile(t, filepath.Join(dir, "nope.img"), make([]byte, 4096))
	if _, err := Open(path, false); !errors.As(err, &fe) || !strings.Contains(err.Error(), "needs 1048576") {
		t.Fatalf("short extent: %v", err)
	}
}

func TestWriteFlatDescriptor(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	want := makeSource(t, filepath.Join(dir, "disk.img"), 4<<20)
	path := filepath.Join(dir, "disk.vmdk")
	if err := WriteFlatDescriptor(path, "disk.img", 4<<20, nil); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, qemu, "compare", "-f", "vmdk", "-F", "raw", path, filepath.Join(dir, "disk.img"))
	d, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := readAll(t, d); !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}
}

// TestConcurrentWrites writes interleaved sectors of the same grains from
// several goroutines, over a delta (copy-on-write) and a plain disk; run
// with -race.
func TestConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	size := int64(2 << 20)
	d, err := Create(filepath.Join(dir, "c.vmdk"), size, nil)
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
			for off := int64(w) * 512; off < size; off += writers * 512 * 3 {
				b := bytes.Repeat([]byte{byte(w + 1)}, 512)
				if _, e := d.WriteAt(b, off); e != nil && err == nil {
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
		for off := int64(w) * 512; off < size; off += writers * 512 * 3 {
			copy(want[off:off+512], bytes.Repeat([]byte{byte(w + 1)}, 512))
		}
	}
	if got := readAll(t, d); !bytes.Equal(got, want) {
		t.Fatal("concurrent writes lost data")
	}
}
