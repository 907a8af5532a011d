package vmdk

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestCreateDelta makes a delta with CreateDelta over an xpboot base, writes
// through it and checks that qemu-img sees the backing file, passes check,
// reads base+writes, flattens it with convert and commit, and that the base
// file is byte-unchanged until the commit.
func TestCreateDelta(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(40<<20 + 3*512)
	base := filepath.Join(dir, "base.vmdk")
	d, err := Create(base, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(t, d, size, 31)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	baseBytes, _ := os.ReadFile(base)
	baseCID := qinfo(t, qemu, base).FormatSpecific.Data.CID

	if err := os.Mkdir(filepath.Join(dir, "ov"), 0o755); err != nil {
		t.Fatal(err)
	}
	delta := filepath.Join(dir, "ov", "client.vmdk")
	c, err := CreateDelta(delta, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if desc := c.Descriptor(); desc.ParentCID != baseCID || desc.ParentFileNameHint != "../base.vmdk" {
		t.Errorf("descriptor: parentCID %08x hint %q, want %08x ../base.vmdk", desc.ParentCID, desc.ParentFileNameHint, baseCID)
	}
	if c.Size() != size || c.Parent() == nil {
		t.Fatalf("size %d parent %v", c.Size(), c.Parent())
	}
	if _, err := CreateDelta(delta, base, nil); err == nil {
		t.Error("CreateDelta over an existing file succeeded")
	}
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatal("fresh delta does not read as its parent")
	}
	// Partial grains (copy-on-write from the parent), a run across a grain
	// table boundary, the partial last grain.
	for _, w := range []struct {
		off int64
		s   string
	}{{1000, "overlay"}, {32<<20 - 700, strings.Repeat("x", 200000)}, {size - 1024, "tail"}, {5 << 20, strings.Repeat("z", 64<<10)}} {
		if _, err := c.WriteAt([]byte(w.s), w.off); err != nil {
			t.Fatal(err)
		}
		copy(want[w.off:], w.s)
	}
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatal("delta content differs after writes")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Fatal("base file changed")
	}
	out := peertest.Run(t, time.Minute, qemu, "info", delta)
	if !strings.Contains(string(out), "backing file: ../base.vmdk") {
		t.Errorf("qemu-img info shows no backing file:\n%s", out)
	}
	peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", delta)
	raw := filepath.Join(dir, "flat.raw")
	peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", delta, raw)
	if got, _ := os.ReadFile(raw); !bytes.Equal(got, want) {
		t.Fatal("qemu-img convert of the delta differs from base+writes")
	}
	// Reopened by xpboot.
	c, err = Open(delta, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatal("reopened delta differs")
	}
	c.Close()
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Fatal("base file changed")
	}
	// Commit into the base: the base then holds base+writes.
	peertest.Run(t, time.Minute, qemu, "commit", "-f", "vmdk", delta)
	b, err := Open(base, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b); !bytes.Equal(got, want) {
		t.Fatal("committed base differs from base+writes")
	}
	b.Close()
}

// TestDeltaCrash writes into a delta, Flushes, and copies the file without
// closing it (what a kill -9 leaves behind): the copy must pass qemu-img
// check and hold every flushed write.
func TestDeltaCrash(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	size := int64(16 << 20)
	base := filepath.Join(dir, "base.vmdk")
	d, err := Create(base, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pattern(t, d, size, 37)
	d.Close()
	delta := filepath.Join(dir, "delta.vmdk")
	c, err := CreateDelta(delta, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for i := int64(0); i < 50; i++ {
		off := (i * 333331) % (size - 4096)
		b := bytes.Repeat([]byte{byte(i + 1)}, int(1+i*61%4096))
		if _, err := c.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], b)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(dir, "crashed.vmdk")
	writeRawFile(t, crashed, img)
	peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", crashed)
	raw := filepath.Join(dir, "crashed.raw")
	peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", crashed, raw)
	if got, _ := os.ReadFile(raw); !bytes.Equal(got, want) {
		t.Fatal("crash copy lost flushed writes")
	}
	r, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if desc := r.Descriptor(); !desc.HasParent() {
		t.Error("crash copy lost its parent")
	}
}
