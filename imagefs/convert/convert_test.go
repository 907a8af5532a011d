package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/peertest"
)

// makeSource writes a sparse raw image: random data at the start, an
// unaligned run, explicit zeros, a compressible run, and the last sector.
func makeSource(t *testing.T, path string, size int64) []byte {
	t.Helper()
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 3))
	fill := func(off, n int64) {
		for i := off; i < off+n && i < size; i++ {
			want[i] = byte(rng.Uint32())
		}
	}
	fill(0, 3<<20)
	fill(9<<20+77, 300_000)
	copy(want[12<<20:], bytes.Repeat([]byte("compressible "), 100_000))
	fill(size-512, 512)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(size)
	for _, r := range [][2]int64{{0, 3 << 20}, {4 << 20, 1 << 20} /* explicit zeros */, {9<<20 + 77, 300_000}, {12 << 20, 1_300_000}, {size - 512, 512}} {
		if _, err := f.WriteAt(want[r[0]:r[0]+r[1]], r[0]); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

var qemuFormat = map[imagefs.Format]string{
	imagefs.FormatRaw: "raw", imagefs.FormatVMDKSparse: "vmdk", imagefs.FormatVMDKFlat: "vmdk",
	imagefs.FormatVMDKStream: "vmdk", imagefs.FormatVHDDynamic: "vpc", imagefs.FormatVHDFixed: "vpc",
}

func readDevice(t *testing.T, path string) ([]byte, imagefs.Format) {
	t.Helper()
	d, f, err := imagefs.OpenDevice(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b, f
}

// TestConvertQemu converts a raw image to every output format; qemu-img
// must report at least the source size, check VMDKs clean and compare equal
// to the source, and xpboot must read back the same bytes.
func TestConvertQemu(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(20<<20 + 1536)
	src := filepath.Join(dir, "src.raw")
	want := makeSource(t, src, size)
	for _, to := range imagefs.OutputFormats {
		t.Run(string(to), func(t *testing.T) {
			out := filepath.Join(dir, "out-"+string(to)+".img")
			var calls int
			sum, err := Convert(context.Background(), src, out, Options{To: to, Progress: func(done, total int64) { calls++ }})
			if err != nil {
				t.Fatal(err)
			}
			if calls == 0 {
				t.Error("no progress reported")
			}
			if sum.OutputSize < size || (sum.OutputSize != size) != to.IsVHD() || (to.IsVHD() && len(sum.Notices) != 1) {
				t.Errorf("output size %d for %d, notices %q", sum.OutputSize, size, sum.Notices)
			}
			if sum.BytesRead > size || sum.BytesWritten+sum.BytesSkipped != size {
				t.Errorf("summary does not add up: %+v", sum)
			}
			if sum.BytesWritten >= size/2 {
				t.Errorf("zeros were stored: %+v", sum)
			}
			qf := qemuFormat[to]
			out2 := peertest.Run(t, time.Minute, qemu, "info", "--output=json", "-f", qf, out)
			var qi struct {
				VirtualSize int64 `json:"virtual-size"`
			}
			json.Unmarshal(out2, &qi)
			if qi.VirtualSize != sum.OutputSize {
				t.Errorf("qemu-img virtual-size %d, want %d", qi.VirtualSize, sum.OutputSize)
			}
			if qf == "vmdk" {
				peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", out)
			}
			peertest.Run(t, time.Minute, qemu, "compare", "-f", qf, "-F", "raw", out, src)
			got, f := readDevice(t, out)
			if f != to {
				t.Errorf("detected as %q", f)
			}
			if !bytes.Equal(got[:size], want) || !isZero(got[size:]) {
				t.Error("read back differs from the source")
			}
			if m, _ := filepath.Glob(filepath.Join(dir, ".*xpboot-tmp*")); len(m) != 0 {
				t.Errorf("temp files left: %v", m)
			}
		})
	}
}

// TestReadQemuOutputs converts every VMDK and VHD subformat qemu-img writes
// (and a VMDK delta) back to raw: byte-identical content.
func TestReadQemuOutputs(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	qio := peertest.Need(t, "qemu-io", "qemu-utils")
	dir := t.TempDir()
	size := int64(16 << 20)
	src := filepath.Join(dir, "src.raw")
	want := makeSource(t, src, size)
	cases := map[string][]string{}
	for _, sub := range []string{"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "streamOptimized"} {
		cases["vmdk-"+sub] = []string{"-O", "vmdk", "-o", "subformat=" + sub}
	}
	for _, sub := range []string{"dynamic", "fixed"} {
		cases["vpc-"+sub] = []string{"-O", "vpc", "-o", "subformat=" + sub}
		cases["vpc-"+sub+"-force"] = []string{"-O", "vpc", "-o", "subformat=" + sub + ",force_size=on"}
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join(dir, name+".img")
			peertest.Run(t, time.Minute, qemu, append(append([]string{"convert", "-f", "raw"}, args...), src, in)...)
			out := filepath.Join(dir, name+".raw")
			if _, err := Convert(context.Background(), in, out, Options{}); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(out)
			if len(got) < len(want) || !bytes.Equal(got[:size], want) || !isZero(got[size:]) {
				t.Fatal("content differs")
			}
		})
	}
	t.Run("delta", func(t *testing.T) {
		base := filepath.Join(dir, "vmdk-monolithicSparse.img")
		delta := filepath.Join(dir, "delta.vmdk")
		peertest.Run(t, time.Minute, qemu, "create", "-f", "vmdk", "-b", base, "-F", "vmdk", delta)
		peertest.Run(t, time.Minute, qio, "-f", "vmdk", "-c", "write -P 0x77 2M 100k", delta)
		w := bytes.Clone(want)
		copy(w[2<<20:], bytes.Repeat([]byte{0x77}, 100<<10))
		out := filepath.Join(dir, "flattened.raw")
		if _, err := Convert(context.Background(), delta, out, Options{}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, w) {
			t.Fatal("flattened delta differs")
		}
	})
}

func TestConvertRefusals(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	makeSource(t, src, 16<<20+100)
	out := filepath.Join(dir, "out.vhd")
	ctx := context.Background()

	if _, err := Convert(ctx, src, out, Options{To: imagefs.FormatVHDDynamic, Exact: true}); !errors.Is(err, ErrSize) {
		t.Errorf("--exact VHD: %v, want ErrSize", err)
	}
	if _, err := Convert(ctx, src, out, Options{To: imagefs.FormatVMDKSparse, Exact: true}); !errors.Is(err, ErrSize) {
		t.Errorf("--exact VMDK of a non-sector size: %v, want ErrSize", err)
	}
	sum, err := Convert(ctx, src, filepath.Join(dir, "odd.vmdk"), Options{To: imagefs.FormatVMDKSparse})
	if err != nil || sum.OutputSize != 16<<20+512 || len(sum.Notices) != 1 {
		t.Errorf("VMDK of a non-sector size: %+v, %v", sum, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("refused conversion left %s", out)
	}
	if _, err := Convert(ctx, src, out, Options{To: imagefs.FormatVHDDynamic}); err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(ctx, src, out, Options{To: imagefs.FormatVHDDynamic}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("existing output: %v", err)
	}
	// A served image (exclusively locked) cannot be replaced, even forced.
	d, _, err := imagefs.OpenDevice(out, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(ctx, src, out, Options{To: imagefs.FormatVHDDynamic, Force: true}); !errors.Is(err, blockdev.ErrLocked) {
		t.Errorf("locked output: %v, want ErrLocked", err)
	}
	d.Close()
	if _, err := Convert(ctx, src, out, Options{To: imagefs.FormatVHDDynamic, Force: true}); err != nil {
		t.Errorf("forced: %v", err)
	}
	// A cancelled conversion leaves nothing behind.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Convert(cctx, src, filepath.Join(dir, "c.vmdk"), Options{To: imagefs.FormatVMDKStream}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*c.vmdk*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
	if _, err := Convert(ctx, src, src, Options{Force: true}); err == nil {
		t.Error("converting a file onto itself")
	}
}

// TestBaseWithChildren refuses to replace a VMDK that a delta references
// and names the delta.
func TestBaseWithChildren(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	makeSource(t, src, 16<<20)
	base := filepath.Join(dir, "base.vmdk")
	if _, err := Convert(context.Background(), src, base, Options{To: imagefs.FormatVMDKSparse}); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", filepath.Join(dir, "client1.vmdk"))
	_, err := Convert(context.Background(), src, base, Options{To: imagefs.FormatVMDKSparse})
	if err == nil || !strings.Contains(err.Error(), "client1.vmdk") {
		t.Fatalf("replacing a base: %v", err)
	}
	sum, err := Convert(context.Background(), src, base, Options{To: imagefs.FormatVMDKSparse, Force: true})
	if err != nil || len(sum.Notices) != 1 || !strings.Contains(sum.Notices[0], "client1.vmdk") {
		t.Fatalf("forced: %+v %v", sum, err)
	}
}

func TestCreateDevice(t *testing.T) {
	dir := t.TempDir()
	for _, f := range imagefs.OutputFormats {
		size, _, err := OutputSize(f, 10<<20, false)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "c-"+string(f))
		d, err := CreateDevice(path, f, size, nil)
		if f == imagefs.FormatVMDKStream {
			if !errors.Is(err, ErrStreamOnly) {
				t.Errorf("stream: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.WriteAt([]byte("hello"), size-5); err != nil {
			t.Fatal(err)
		}
		d.Close()
		got, gf := readDevice(t, path)
		if gf != f || int64(len(got)) != size || string(got[size-5:]) != "hello" {
			t.Errorf("%s: format %s size %d", f, gf, len(got))
		}
	}
	if _, err := CreateDevice(filepath.Join(dir, "x.vhd"), imagefs.FormatVHDDynamic, 10<<20, nil); !errors.Is(err, ErrSize) {
		t.Errorf("non-CHS VHD: %v", err)
	}
}

// TestProgressCountsData: progress is reported in bytes of data, so a
// mostly sparse input ends at 100 % and moves with the data, not the holes.
func TestProgressCountsData(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.raw")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	data := bytes.Repeat([]byte{0xA5}, 3<<20)
	f.WriteAt(data, 40<<20) // 3 MiB of data in 64 MiB
	f.Close()
	for _, to := range []imagefs.Format{imagefs.FormatVMDKSparse, imagefs.FormatVMDKStream, imagefs.FormatRaw} {
		var calls [][2]int64
		_, err := Convert(context.Background(), in, filepath.Join(dir, "out-"+string(to)), Options{To: to,
			Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) == 0 {
			t.Fatalf("%s: no progress", to)
		}
		last := calls[len(calls)-1]
		if last[0] != last[1] || last[1] < int64(len(data)) || last[1] > 8<<20 {
			t.Errorf("%s: last progress %d/%d, want all of the ~3 MiB of data", to, last[0], last[1])
		}
		for i := 1; i < len(calls); i++ {
			if calls[i][0] < calls[i-1][0] || calls[i][0] > calls[i][1] {
				t.Errorf("%s: progress %v after %v", to, calls[i], calls[i-1])
			}
		}
	}
}
