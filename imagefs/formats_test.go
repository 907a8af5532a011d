package imagefs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestDetect makes one image of every container with qemu-img and checks
// that Detect and OpenDevice recognise it by content, whatever its name.
func TestDetect(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("not an image, just a raw disk with some text"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(src, 4<<20); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want Format
	}{
		{[]string{"-O", "raw"}, FormatRaw},
		{[]string{"-O", "vmdk"}, FormatVMDKSparse},
		{[]string{"-O", "vmdk", "-o", "subformat=monolithicFlat"}, FormatVMDKFlat},
		{[]string{"-O", "vmdk", "-o", "subformat=streamOptimized"}, FormatVMDKStream},
		{[]string{"-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"}, FormatVMDKOther},
		{[]string{"-O", "vpc"}, FormatVHDDynamic},
		{[]string{"-O", "vpc", "-o", "subformat=fixed"}, FormatVHDFixed},
	}
	for i, tt := range tests {
		// Names say nothing about the format on purpose.
		path := filepath.Join(dir, "image"+string(rune('a'+i))+".bin")
		peertest.Run(t, time.Minute, qemu, append(append([]string{"convert", "-f", "raw"}, tt.args...), src, path)...)
		got, err := Detect(path)
		if err != nil || got != tt.want {
			t.Errorf("%v: Detect = %q, %v; want %q", tt.args, got, err, tt.want)
			continue
		}
		d, f, err := OpenDevice(path, false)
		if err != nil {
			t.Errorf("%v: OpenDevice: %v", tt.args, err)
			continue
		}
		b := make([]byte, 12)
		d.ReadAt(b, 0)
		d.Close()
		if f != tt.want || string(b) != "not an image" {
			t.Errorf("%v: OpenDevice format %q, content %q", tt.args, f, b)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range OutputFormats {
		if g, err := ParseFormat(string(f)); err != nil || g != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, g, err)
		}
	}
	if _, err := ParseFormat("qcow2"); err == nil {
		t.Error("qcow2 accepted")
	}
}

// TestCheckNoChildren finds a qemu-made delta disk of a base image.
func TestCheckNoChildren(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.vmdk")
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vmdk", base, "4M")
	if err := CheckNoChildren(base); err != nil {
		t.Fatalf("base without deltas: %v", err)
	}
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", filepath.Join(dir, "pc01.vmdk"))
	err := CheckNoChildren(base)
	if !errors.Is(err, ErrHasChildren) || !strings.Contains(err.Error(), "pc01.vmdk") {
		t.Errorf("base with a delta: %v", err)
	}
	if err := CheckNoChildren(filepath.Join(dir, "pc01.vmdk")); err != nil {
		t.Errorf("the delta itself: %v", err)
	}
}

// TestOverlayParentRaw: overlays of a raw base kept in another directory
// name a flat descriptor there as parent; qemu-img follows and flattens the
// chain, and once the directory is registered beside the base, Children
// finds the overlay, so writers into the base refuse.
func TestOverlayParentRaw(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	top := t.TempDir()
	baseDir, ovDir := filepath.Join(top, "images"), filepath.Join(top, "overlays")
	for _, d := range []string{baseDir, ovDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const size = 4 << 20
	raw := filepath.Join(baseDir, "xp.img")
	data := make([]byte, size)
	for i := range data[:1<<20] {
		data[i] = byte(i*13 + i>>9)
	}
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	parent, err := OverlayParent(raw, ovDir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(parent) != ovDir {
		t.Errorf("parent %s not in the overlay directory", parent)
	}
	first, _ := os.ReadFile(parent)
	if again, err := OverlayParent(raw, ovDir); err != nil || again != parent {
		t.Fatalf("second OverlayParent: %s, %v", again, err)
	}
	if b, _ := os.ReadFile(parent); string(b) != string(first) {
		t.Error("the descriptor was rewritten (its CID must stay)")
	}
	ov := filepath.Join(ovDir, "pc01.vmdk")
	d, err := vmdk.CreateDelta(ov, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	patch := []byte("written by pc01 into its overlay")
	if _, err := d.WriteAt(patch, 3<<20+100); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), data...)
	copy(want[3<<20+100:], patch)

	chain := peertest.Run(t, time.Minute, qemu, "info", "--backing-chain", ov)
	if !strings.Contains(string(chain), "@base-xp.img.vmdk") || !strings.Contains(string(chain), "file format: vmdk") {
		t.Errorf("qemu-img info --backing-chain:\n%s", chain)
	}
	peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", ov)
	flat := filepath.Join(top, "flat.raw")
	peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", ov, flat)
	if b, _ := os.ReadFile(flat); string(b) != string(want) {
		t.Error("qemu-img convert of the overlay is not the raw base plus its write")
	}

	// Unregistered, the overlay is invisible from the base's directory.
	if err := CheckNoChildren(raw); err != nil {
		t.Fatalf("before registering: %v", err)
	}
	for range 2 { // idempotent
		if err := RegisterOverlayDir(raw, ovDir); err != nil {
			t.Fatal(err)
		}
	}
	if dirs, err := OverlayDirs(raw); err != nil || len(dirs) != 1 || dirs[0] != ovDir {
		t.Errorf("OverlayDirs = %q, %v", dirs, err)
	}
	err = CheckNoChildren(raw)
	if !errors.Is(err, ErrHasChildren) || !strings.Contains(err.Error(), ov) {
		t.Errorf("registered overlay of a raw base: %v", err)
	}
	if _, err := Open(raw, true); !errors.Is(err, ErrHasChildren) {
		t.Errorf("writable Open of the base: %v", err)
	}
	// Deleting the overlay (resetting the client) frees the base again.
	os.Remove(ov)
	if err := CheckNoChildren(raw); err != nil {
		t.Errorf("after deleting the overlay: %v", err)
	}

	// Another raw base of the same name cannot take over the directory.
	other := filepath.Join(top, "xp.img")
	if err := os.WriteFile(other, data[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OverlayParent(other, ovDir); err == nil || !strings.Contains(err.Error(), "another raw base") {
		t.Errorf("OverlayParent of another base: %v", err)
	}
	// VHD bases are refused.
	vd := filepath.Join(top, "xp.vhd")
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vpc", vd, "4M")
	if _, err := OverlayParent(vd, ovDir); err == nil || !strings.Contains(err.Error(), "raw or VMDK") {
		t.Errorf("OverlayParent of a VHD: %v", err)
	}
}

// TestOverlayDirVMDKBase: a VMDK base with an overlay in a registered
// directory elsewhere has a child; the base's own directory is never
// registered.
func TestOverlayDirVMDKBase(t *testing.T) {
	top := t.TempDir()
	base := filepath.Join(top, "xp.vmdk")
	d, err := vmdk.Create(base, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := RegisterOverlayDir(base, top); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base + OverlaySuffix); err == nil {
		t.Error("the base's own directory was registered")
	}
	ovDir := filepath.Join(top, "sub", "overlays")
	if err := os.MkdirAll(ovDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := OverlayParent(base, ovDir); err != nil || p != base {
		t.Fatalf("OverlayParent of a VMDK = %s, %v", p, err)
	}
	ov := filepath.Join(ovDir, "iqn.2026-01.org.xpboot_pc.vmdk")
	od, err := vmdk.CreateDelta(ov, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	od.Close()
	if err := CheckNoChildren(base); err != nil {
		t.Fatalf("unregistered: %v", err)
	}
	if err := RegisterOverlayDir(base, ovDir); err != nil {
		t.Fatal(err)
	}
	if kids, err := Children(base); err != nil || len(kids) != 1 || kids[0] != ov {
		t.Errorf("Children = %q, %v", kids, err)
	}
	// A registered directory that is gone is no error.
	os.RemoveAll(filepath.Join(top, "sub"))
	if err := CheckNoChildren(base); err != nil {
		t.Errorf("overlay directory deleted: %v", err)
	}
}
