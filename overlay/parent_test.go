package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/overlay/registry"
)

// TestParentRaw (moved from imagefs with Parent): overlays of a raw base kept in another directory
// name a flat descriptor there as parent; qemu-img follows and flattens the
// chain, and once the directory is registered beside the base, Children
// finds the overlay, so writers into the base refuse.
func TestParentRaw(t *testing.T) {
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
	parent, err := Parent(raw, ovDir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(parent) != ovDir {
		t.Errorf("parent %s not in the overlay directory", parent)
	}
	first, _ := os.ReadFile(parent)
	if again, err := Parent(raw, ovDir); err != nil || again != parent {
		t.Fatalf("second Parent: %s, %v", again, err)
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
	if err := imagefs.CheckNoChildren(raw); err != nil {
		t.Fatalf("before registering: %v", err)
	}
	for range 2 { // idempotent
		if err := registry.Register(raw, ovDir); err != nil {
			t.Fatal(err)
		}
	}
	if dirs, err := registry.Dirs(raw); err != nil || len(dirs) != 1 || dirs[0] != ovDir {
		t.Errorf("registry.Dirs = %q, %v", dirs, err)
	}
	err = imagefs.CheckNoChildren(raw)
	if !errors.Is(err, imagefs.ErrHasChildren) || !strings.Contains(err.Error(), ov) {
		t.Errorf("registered overlay of a raw base: %v", err)
	}
	if _, err := imagefs.Open(raw, true); !errors.Is(err, imagefs.ErrHasChildren) {
		t.Errorf("writable Open of the base: %v", err)
	}
	// Deleting the overlay (resetting the client) frees the base again.
	os.Remove(ov)
	if err := imagefs.CheckNoChildren(raw); err != nil {
		t.Errorf("after deleting the overlay: %v", err)
	}

	// Another raw base of the same name cannot take over the directory.
	other := filepath.Join(top, "xp.img")
	if err := os.WriteFile(other, data[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Parent(other, ovDir); err == nil || !strings.Contains(err.Error(), "another raw base") {
		t.Errorf("Parent of another base: %v", err)
	}
	// VHD bases are refused.
	vd := filepath.Join(top, "xp.vhd")
	peertest.Run(t, time.Minute, qemu, "create", "-f", "vpc", vd, "4M")
	if _, err := Parent(vd, ovDir); err == nil || !strings.Contains(err.Error(), "raw or VMDK") {
		t.Errorf("Parent of a VHD: %v", err)
	}
}

// TestRegistryVMDKBase (moved from imagefs with the registry): a VMDK base with an overlay in a registered
// directory elsewhere has a child; the base's own directory is never
// registered.
func TestRegistryVMDKBase(t *testing.T) {
	top := t.TempDir()
	base := filepath.Join(top, "xp.vmdk")
	d, err := vmdk.Create(base, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := registry.Register(base, top); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(base + registry.Suffix); err == nil {
		t.Error("the base's own directory was registered")
	}
	ovDir := filepath.Join(top, "sub", "overlays")
	if err := os.MkdirAll(ovDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := Parent(base, ovDir); err != nil || p != base {
		t.Fatalf("Parent of a VMDK = %s, %v", p, err)
	}
	ov := filepath.Join(ovDir, "iqn.2026-01.org.xpboot_pc.vmdk")
	od, err := vmdk.CreateDelta(ov, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	od.Close()
	if err := imagefs.CheckNoChildren(base); err != nil {
		t.Fatalf("unregistered: %v", err)
	}
	if err := registry.Register(base, ovDir); err != nil {
		t.Fatal(err)
	}
	if kids, err := imagefs.Children(base); err != nil || len(kids) != 1 || kids[0] != ov {
		t.Errorf("Children = %q, %v", kids, err)
	}
	// A registered directory that is gone is no error.
	os.RemoveAll(filepath.Join(top, "sub"))
	if err := imagefs.CheckNoChildren(base); err != nil {
		t.Errorf("overlay directory deleted: %v", err)
	}
}
