package imagefs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
