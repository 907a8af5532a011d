package convert

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/imagefs"
)

// sparseRaw writes a sparse raw image of size bytes holding runs (offset,
// length) of random data and returns them.
func sparseRaw(t testing.TB, path string, size int64, runs [][2]int64) [][]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	var data [][]byte
	for _, r := range runs {
		b := make([]byte, r[1])
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(b, r[0]); err != nil {
			t.Fatal(err)
		}
		data = append(data, b)
	}
	return data
}

// TestConvertRawWindows converts a sparse 3 GiB raw image whose data
// straddles the boundaries of the extent-map windows and of the chunks:
// the content is kept, the holes are neither read nor allocated.
func TestConvertRawWindows(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.raw"), filepath.Join(dir, "out.raw")
	size := int64(3<<30 + 4096 + 123)
	runs := [][2]int64{{0, 4096}, {mapWindow - 300_000, 700_000}, {2*mapWindow - 5000, 10_000}, {size - 123, 123}}
	data := sparseRaw(t, src, size, runs)
	var last, lastTotal int64
	sum, err := Convert(context.Background(), src, out, Options{To: imagefs.FormatRaw, Progress: func(done, total int64) { last, lastTotal = done, total }})
	if err != nil {
		t.Fatal(err)
	}
	// Progress counts the input's data, not the virtual size.
	if last != lastTotal || lastTotal < 714_219 || lastTotal > 1<<20 {
		t.Errorf("last progress %d/%d, want all of the input's ~0.7 MB of data", last, lastTotal)
	}
	if sum.BytesRead > 8<<20 || sum.BytesWritten+sum.BytesSkipped != size {
		t.Errorf("summary: %+v", sum)
	}
	if sum.FileBytes > 4<<20 {
		t.Errorf("output occupies %d bytes: holes were written", sum.FileBytes)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Size() != size {
		t.Fatalf("output size %d, want %d", st.Size(), size)
	}
	for i, r := range runs {
		got := make([]byte, r[1]+8192)
		lo := max(0, r[0]-4096)
		n, _ := f.ReadAt(got, lo)
		got = got[:n]
		pre := r[0] - lo
		if !isZero(got[:pre]) || !bytes.Equal(got[pre:pre+r[1]], data[i]) || !isZero(got[pre+r[1]:]) {
			t.Errorf("run %d at 0x%x differs", i, r[0])
		}
	}
}

// TestConvertCancel checks that a cancelled conversion fails and leaves
// nothing behind.
func TestConvertCancel(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.raw"), filepath.Join(dir, "out.raw")
	sparseRaw(t, src, 64<<20, [][2]int64{{0, 32 << 20}})
	for _, to := range []imagefs.Format{imagefs.FormatRaw, imagefs.FormatVMDKStream} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Convert(ctx, src, out, Options{To: to, Progress: func(done, total int64) { cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err %v, want context.Canceled", to, err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*out*")); len(m) != 0 {
			t.Errorf("%s: left behind: %v", to, m)
		}
	}
}

// BenchmarkConvertRaw converts a 1 GiB sparse raw image holding 128 MiB of
// random data and 128 MiB of written zeros to raw (page cache warm), the
// shape of bench/convert/run.sh at an eighth of the size.
func BenchmarkConvertRaw(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.raw")
	sparseRaw(b, src, 1<<30, [][2]int64{{128 << 20, 128 << 20}})
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	f.WriteAt(make([]byte, 128<<20), 512<<20)
	f.Close()
	b.SetBytes(1 << 30)
	for b.Loop() {
		out := filepath.Join(dir, "out.raw")
		if _, err := Convert(context.Background(), src, out, Options{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
}
