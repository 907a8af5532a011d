package vhd

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// TestCapabilities: dynamic and fixed VHDs answer the Device capability
// methods: opened writable they are not read-only and refuse Discard as
// not supported (blocks are never deallocated); opened read-only they say
// so and refuse with ErrReadOnly.
func TestCapabilities(t *testing.T) {
	dir := t.TempDir()
	dyn := filepath.Join(dir, "dynamic.vhd")
	fixed := filepath.Join(dir, "fixed.vhd")
	for _, c := range []struct {
		path string
		typ  DiskType
	}{{dyn, TypeDynamic}, {fixed, TypeFixed}} {
		d, err := Create(c.path, 4<<20, &CreateOptions{Type: c.typ})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{dyn, fixed} {
		for _, writable := range []bool{true, false} {
			d, err := Open(path, writable)
			if err != nil {
				t.Fatal(err)
			}
			want := blockdev.ErrNotSupported
			if !writable {
				want = blockdev.ErrReadOnly
			}
			if d.ReadOnly() == writable || blockdev.CanDiscard(d) {
				t.Errorf("%s writable=%v: ReadOnly %v, CanDiscard %v", filepath.Base(path), writable, d.ReadOnly(), blockdev.CanDiscard(d))
			}
			if err := d.Discard(0, 512); !errors.Is(err, want) {
				t.Errorf("%s writable=%v: Discard = %v, want %v", filepath.Base(path), writable, err, want)
			}
			d.Close()
		}
	}
}
