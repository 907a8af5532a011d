package vmdk

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// TestCapabilities: every kind of VMDK answers the Device capability
// methods: writable sparse, flat and delta disks are not read-only and
// refuse Discard as not supported (grains are never deallocated); disks
// opened read-only say so and refuse with ErrReadOnly.
func TestCapabilities(t *testing.T) {
	dir := t.TempDir()
	sparse := filepath.Join(dir, "sparse.vmdk")
	flat := filepath.Join(dir, "flat.vmdk")
	delta := filepath.Join(dir, "delta.vmdk")
	mk := func(d *Disk, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mk(Create(sparse, 4<<20, nil))
	mk(Create(flat, 4<<20, &CreateOptions{CreateType: TypeMonolithicFlat}))
	mk(CreateDelta(delta, sparse, nil))
	for _, path := range []string{sparse, flat, delta} {
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
