package fat32

import (
	"bytes"
	"context"
	"encoding/binary"
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
	for name, n := range map[string]int{"/A.TXT": 3000, "/B.TXT": 1500, "/SUB/C.TXT": 700, "/SUB/DEEP/Long name.bin": 20000} {
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
		fs, err := Check(bytes.NewReader(clean), 0, int64(len(clean)))
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
			fs, err := Check(bytes.NewReader(v), 0, int64(len(v)))
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

// FuzzCheckFAT32 XORs the input into a formatted volume holding a small
// tree: its first 1 KiB into the boot sector and FSInfo, the next 8 KiB
// into the start of the FAT, the rest into the root directory. Check must
// neither panic nor run away on whatever results.
func FuzzCheckFAT32(f *testing.F) {
	const size = 40 << 20
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
	if err := fs.Flush(); err != nil {
		f.Fatal(err)
	}
	bs := fs.BootSector()
	root := bs.dataStart() + int64(bs.RootCluster-2)*bs.ClusterSize()
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xFF}, 1024+8192+512))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1024+8192+4096 {
			return
		}
		v := bytes.Clone(base[:root+4096])
		for i, b := range in {
			switch {
			case i < 1024:
				v[i] ^= b
			case i < 1024+8192:
				v[bs.fatStart(0)+int64(i-1024)] ^= b
			default:
				v[root+int64(i-1024-8192)] ^= b
			}
		}
		d := &sparseDev{meta: v, size: size}
		_, _ = Check(d, 0, size) // no panic, bounded time; findings are fine
	})
}

// memVol is an in-memory read-write volume.
type memVol struct{ b []byte }

func (m *memVol) ReadAt(p []byte, off int64) (int, error)  { return copy(p, m.b[off:]), nil }
func (m *memVol) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }
