package convert

import (
	"bytes"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// memDevice is an in-memory source whose extent map is given.
type memDevice struct {
	b   []byte
	ext []blockdev.Extent // covers the device; nil: all Data
}

func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("read", off, len(p), int64(len(m.b))); err != nil {
		return 0, err
	}
	return copy(p, m.b[off:]), nil
}
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) { return 0, blockdev.ErrReadOnly }
func (m *memDevice) Size() int64                              { return int64(len(m.b)) }
func (m *memDevice) Flush() error                             { return nil }
func (m *memDevice) Close() error                             { return nil }
func (m *memDevice) ReadOnly() bool                           { return true }
func (m *memDevice) Discard(int64, int64) error               { return blockdev.ErrReadOnly }
func (m *memDevice) Extents(off, n int64) ([]blockdev.Extent, error) {
	end := min(off+n, m.Size())
	if m.ext == nil {
		return []blockdev.Extent{{Off: off, Len: end - off, State: blockdev.Data}}, nil
	}
	var out []blockdev.Extent
	for _, e := range m.ext {
		lo, hi := max(e.Off, off), min(e.Off+e.Len, end)
		if lo < hi {
			out = append(out, blockdev.Extent{Off: lo, Len: hi - lo, State: e.State})
		}
	}
	return out, nil
}

// TestMasked checks the masked view against a byte-by-byte model: reads
// give the source inside kept spans and zeros outside; extents are Zero
// outside kept spans and in source holes, the source's state elsewhere.
func TestMasked(t *testing.T) {
	const size = 4096
	src := &memDevice{b: bytes.Repeat([]byte{0xAB}, size), ext: []blockdev.Extent{
		{Off: 0, Len: 1000, State: blockdev.Data}, {Off: 1000, Len: 500, State: blockdev.Zero}, {Off: 1500, Len: 1000, State: blockdev.Parent}, {Off: 2500, Len: 1596, State: blockdev.Data},
	}}
	for i := 1000; i < 1500; i++ {
		src.b[i] = 0
	}
	for _, tc := range []struct {
		name string
		keep []span
	}{
		{"nothing", nil},
		{"everything", []span{{0, size}}},
		{"pieces", []span{{0, 10}, {900, 1100}, {1400, 1600}, {2499, 2501}, {4000, 4096}}},
		{"inside-hole", []span{{1100, 1200}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &masked{Device: src, keep: tc.keep}
			kept := make([]bool, size)
			for _, s := range tc.keep {
				for i := s.off; i < s.end; i++ {
					kept[i] = true
				}
			}
			state := func(i int64) blockdev.State {
				for _, e := range src.ext {
					if i >= e.Off && i < e.Off+e.Len {
						if !kept[i] {
							return blockdev.Zero
						}
						return e.State
					}
				}
				t.Fatalf("byte %d outside the map", i)
				return 0
			}
			for _, r := range [][2]int64{{0, size}, {5, 1000}, {1450, 1100}, {4095, 1}} {
				buf := bytes.Repeat([]byte{0x55}, int(r[1]))
				if _, err := m.ReadAt(buf, r[0]); err != nil {
					t.Fatal(err)
				}
				for i := range buf {
					want := byte(0)
					if kept[r[0]+int64(i)] {
						want = src.b[r[0]+int64(i)]
					}
					if buf[i] != want {
						t.Fatalf("read [%d,+%d): byte %d is %#x, want %#x", r[0], r[1], r[0]+int64(i), buf[i], want)
					}
				}
				ext, err := m.Extents(r[0], r[1])
				if err != nil {
					t.Fatal(err)
				}
				pos := r[0]
				for j, e := range ext {
					if e.Off != pos || e.Len <= 0 {
						t.Fatalf("extent %d %+v at %d: not contiguous", j, e, pos)
					}
					if j > 0 && ext[j-1].State == e.State {
						t.Errorf("extents %d and %d not merged: %v", j-1, j, ext)
					}
					for i := e.Off; i < e.Off+e.Len; i++ {
						if s := state(i); s != e.State {
							t.Fatalf("byte %d in %+v, want state %v", i, e, s)
						}
					}
					pos += e.Len
				}
				if pos != r[0]+r[1] {
					t.Fatalf("extents end at %d, want %d", pos, r[0]+r[1])
				}
			}
			if _, err := m.WriteAt([]byte{1}, 0); err == nil {
				t.Error("masked device accepted a write")
			}
		})
	}
}

// BenchmarkSkipFreeExtentWalk walks the extent map of a 4 GiB source
// through a capture plan as fragmented as a used disk's (a kept span of
// 64 KiB every 256 KiB: 16,384 spans), the way a capture does (1 GiB per
// Extents call, then 4 MiB chunks).
func BenchmarkSkipFreeExtentWalk(b *testing.B) {
	const size = 4 << 30
	src := &fakeSized{size: size}
	var keep []span
	for off := int64(0); off < size; off += 256 << 10 {
		keep = append(keep, span{off, off + 64<<10})
	}
	b.ResetTimer()
	for range b.N {
		m := newExtentMap(&masked{Device: src, keep: keep})
		for off := int64(0); off < size; off += chunkSize {
			if _, _, err := m.next(off, chunkSize); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// fakeSized is a device of any size, all Data, that is never read.
type fakeSized struct {
	memDevice
	size int64
}

func (f *fakeSized) Size() int64 { return f.size }
func (f *fakeSized) Extents(off, n int64) ([]blockdev.Extent, error) {
	return []blockdev.Extent{{Off: off, Len: min(n, f.size-off), State: blockdev.Data}}, nil
}
