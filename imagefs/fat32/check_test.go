package fat32

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// checkVolume makes a 64 MiB FAT32 volume with mkfs.fat and writes a small
// tree into it with xpboot's writer; it returns the volume's bytes.
func checkVolume(t *testing.T) []byte {
	t.Helper()
	mkfs := peertest.Need(t, "mkfs.fat", "dosfstools")
	p := filepath.Join(t.TempDir(), "vol")
	peertest.Run(t, time.Minute, mkfs, "-F", "32", "-s", "1", "-n", "CHECK", "-C", p, "65536")
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fs, err := Open(f, 0, st.Size(), false)
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, d := range []string{"/SUB", "/SUB/DEEP"} {
		if err := fs.Mkdir(d, mt); err != nil {
			t.Fatal(err)
		}
	}
	// In this order: the findings name the file walked second (B.TXT
	// cross-linked into A.TXT's chain), and a map's order varied per run.
	for _, f := range []struct {
		name string
		n    int
	}{{"/A.TXT", 3000}, {"/B.TXT", 1500}, {"/SUB/C.TXT", 700}, {"/SUB/DEEP/Long name.bin", 20000}} {
		name, n := f.name, f.n
		if err := fs.WriteFile(name, bytes.NewReader(bytes.Repeat([]byte{'x'}, n)), int64(n), mt); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entryOf returns the volume offset of the short directory entry name
// (11 bytes, 8.3 padded) in the data area.
func entryOf(t *testing.T, vol []byte, bs *BootSector, name string) int {
	t.Helper()
	i := bytes.Index(vol[bs.dataStart():], []byte(name))
	if i < 0 {
		t.Fatalf("no entry %q", name)
	}
	return int(bs.dataStart()) + i
}

func firstCluster(vol []byte, e int) uint32 {
	return uint32(binary.LittleEndian.Uint16(vol[e+20:]))<<16 | uint32(binary.LittleEndian.Uint16(vol[e+26:]))
}

func setCluster(vol []byte, e int, c uint32) {
	binary.LittleEndian.PutUint16(vol[e+20:], uint16(c>>16))
	binary.LittleEndian.PutUint16(vol[e+26:], uint16(c))
}

func setFAT(vol []byte, bs *BootSector, c, v uint32, copies ...int) {
	if copies == nil {
		copies = []int{0, 1}
	}
	for _, i := range copies {
		binary.LittleEndian.PutUint32(vol[bs.fatStart(i)+int64(c)*4:], v)
	}
}

func TestCheckFindings(t *testing.T) {
	clean := checkVolume(t)
	bs, err := ParseBootSector(clean, int64(len(clean)))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	fsinfo := int(bs.FSInfoSector) * 512
	tests := []struct {
		name      string
		corrupt   func(v []byte)
		structure string
		msg       string
		path      string
	}{
		{"fsinfo free count", func(v []byte) { le.PutUint32(v[fsinfo+488:], le.Uint32(v[fsinfo+488:])+5) }, "FSInfo", "free cluster count", ""},
		{"fsinfo next free", func(v []byte) { le.PutUint32(v[fsinfo+492:], 0x0FFFFFF0) }, "FSInfo", "next free cluster hint", ""},
		{"fsinfo signature", func(v []byte) { v[fsinfo] = 0 }, "FSInfo", "signatures", ""},
		{"backup boot sector", func(v []byte) { v[int(bs.BackupBootSector)*512+0x47] ^= 0x20 }, "boot sector", "backup boot sector", ""},
		{"FAT copies differ", func(v []byte) { setFAT(v, bs, 1000, 0x0FFFFFFF, 1) }, "FAT", "differs from copy 1", ""},
		{"lost cluster", func(v []byte) { setFAT(v, bs, bs.Clusters(), 0x0FFFFFFF) }, "lost clusters", "lost chain", ""},
		{"cross-linked", func(v []byte) {
			a := entryOf(t, v, bs, "A       TXT")
			setCluster(v, entryOf(t, v, bs, "B       TXT"), firstCluster(v, a))
		}, "cluster chain", "cross-linked", "/B.TXT"},
		{"chain shorter than size", func(v []byte) { le.PutUint32(v[entryOf(t, v, bs, "A       TXT")+28:], 100000) }, "cluster chain", "shorter", "/A.TXT"},
		{"chain longer than size", func(v []byte) { le.PutUint32(v[entryOf(t, v, bs, "A       TXT")+28:], 10) }, "cluster chain", "longer", "/A.TXT"},
		{"entry outside volume", func(v []byte) { setCluster(v, entryOf(t, v, bs, "B       TXT"), 0x0FFFFFF0) }, "directory entry", "outside the volume", "/B.TXT"},
		{"chain reaches free cluster", func(v []byte) {
			a := firstCluster(v, entryOf(t, v, bs, "A       TXT"))
			setFAT(v, bs, a+1, 0)
		}, "cluster chain", "which is free", "/A.TXT"},
		{"chain loops", func(v []byte) {
			a := firstCluster(v, entryOf(t, v, bs, "A       TXT"))
			setFAT(v, bs, a+2, a)
		}, "cluster chain", "loops", "/A.TXT"},
		{"bad dot entry", func(v []byte) {
			sub := firstCluster(v, entryOf(t, v, bs, "SUB        "))
			dot := int(bs.dataStart() + int64(sub-2)*bs.ClusterSize())
			setCluster(v, dot, sub+7)
		}, "directory entry", `"." entry points at cluster`, "/SUB/"},
		{"bad dotdot entry", func(v []byte) {
			deep := firstCluster(v, entryOf(t, v, bs, "DEEP       "))
			dot := int(bs.dataStart() + int64(deep-2)*bs.ClusterSize())
			setCluster(v, dot+32, 2)
		}, "directory entry", `".." entry points at cluster`, "/SUB/DEEP/"},
		{"missing dot entry", func(v []byte) {
			sub := firstCluster(v, entryOf(t, v, bs, "SUB        "))
			dot := int(bs.dataStart() + int64(sub-2)*bs.ClusterSize())
			copy(v[dot:], "X          ")
		}, "directory entry", "want the", "/SUB/"},
	}
	t.Run("clean", func(t *testing.T) {
		fs, err := Check(context.Background(), bytes.NewReader(clean), 0, int64(len(clean)))
		if err != nil || len(fs) != 0 {
			t.Fatalf("clean volume: %v %+v", err, fs)
		}
		// fsck.fat agrees that the volume is clean.
		fsck := peertest.Need(t, "fsck.fat", "dosfstools")
		p := filepath.Join(t.TempDir(), "clean")
		if err := os.WriteFile(p, clean, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, fsck, "-n", "-v", p).CombinedOutput(); err != nil {
			t.Fatalf("fsck.fat -n disagrees: %v\n%s", err, out)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := bytes.Clone(clean)
			tc.corrupt(v)
			fs, err := Check(context.Background(), bytes.NewReader(v), 0, int64(len(v)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.Structure == tc.structure && strings.Contains(f.Message, tc.msg) && (tc.path == "" || f.Path == tc.path) {
					if f.Offset <= 0 || f.Offset >= int64(len(v)) {
						t.Errorf("finding offset %d outside the volume", f.Offset)
					}
					return
				}
			}
			t.Fatalf("no %s finding %q (path %q); got %+v", tc.structure, tc.msg, tc.path, fs)
		})
	}
}

// FuzzCheckFAT32 damages a formatted volume holding a small tree and
// checks it. The input is a list of 3-byte patches: the top two bits of
// the first byte pick a 16 KiB window (0: the reserved sectors with the
// boot sector, FSInfo and backup; 1 and 2: the start of FAT copies 1 and
// 2; 3: the data area from the root directory on), the other 14 bits and
// the second byte an offset in it, and the third byte is XORed there.
// Inputs stay small, so every mutation lands on a structure, and the
// volume is shared, not copied, between runs: a 30 s run executes
// thousands of cases. Check must neither panic nor run away.
func FuzzCheckFAT32(f *testing.F) {
	const size = 34 << 20 // just above FAT32's 65,525-cluster minimum with 512-byte clusters
	base := make([]byte, size)
	dev := &memVol{b: base}
	if err := Format(dev, 0, size, FormatOptions{Label: "FUZZ"}); err != nil {
		f.Fatal(err)
	}
	fs, err := Open(dev, 0, size, false)
	if err != nil {
		f.Fatal(err)
	}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := fs.MkdirAll("/SUB/DEEP", mt); err != nil {
		f.Fatal(err)
	}
	if err := fs.WriteFile("/SUB/A long name.txt", bytes.NewReader(make([]byte, 5000)), 5000, mt); err != nil {
		f.Fatal(err)
	}
	if err := fs.WriteFile("/ROOT.TXT", bytes.NewReader(make([]byte, 700)), 700, mt); err != nil {
		f.Fatal(err)
	}
	if err := fs.Flush(); err != nil {
		f.Fatal(err)
	}
	bs := fs.BootSector()
	const window = 16 << 10
	root := bs.dataStart() + int64(bs.RootCluster-2)*bs.ClusterSize()
	windows := [4]int64{0, bs.fatStart(0), bs.fatStart(1), root}
	meta := base[:root+window] // the rest of the volume reads as zeros
	// Seeds: a clean run, then FSInfo's free count, a FAT entry of copy 1
	// only (a cross-link to the root), the first cluster of the root's
	// first entry, and a boot sector field.
	fsinfo := int64(bs.FSInfoSector) * 512
	rec := func(win int, off int64, x byte) []byte { return []byte{byte(win<<6) | byte(off>>8), byte(off), x} }
	f.Add([]byte{})
	f.Add(rec(0, fsinfo+488, 1))
	f.Add(append(rec(1, 4*int64(bs.RootCluster+1), 0x03), rec(2, 4*int64(bs.RootCluster+1), 0x03)...))
	f.Add(rec(3, 26, 0x40))
	f.Add(rec(0, 0x0D, 0x03))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 3*64 {
			return
		}
		d := &patchDev{meta: meta, size: size, xor: map[int64]byte{}}
		for i := 0; i+3 <= len(in); i += 3 {
			off := windows[in[i]>>6] + (int64(in[i]&0x3F)<<8 | int64(in[i+1]))
			d.xor[off] ^= in[i+2]
		}
		_, _ = Check(context.Background(), d, 0, size) // no panic, bounded time; findings are fine
	})
}

// patchDev is a read-only volume: meta, then zeros, with bytes XORed at
// the offsets of xor.
type patchDev struct {
	meta []byte
	size int64
	xor  map[int64]byte
}

func (m *patchDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.size {
		return 0, errors.New("out of range")
	}
	clear(p)
	if off < int64(len(m.meta)) {
		copy(p, m.meta[off:])
	}
	for k, x := range m.xor {
		if k >= off && k < off+int64(len(p)) {
			p[k-off] ^= x
		}
	}
	return len(p), nil
}

func (m *patchDev) WriteAt([]byte, int64) (int, error) { return 0, errors.New("read-only") }

// memVol is an in-memory read-write volume.
type memVol struct{ b []byte }

func (m *memVol) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m.b[off:]), nil }
func (m *memVol) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
