package ntfs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// checkImage is the mkntfs-made small volume with a few files written by
// xpboot's writer: two non-resident files and a subdirectory in the root.
func checkImage(t *testing.T) []byte {
	t.Helper()
	img := smallVolume(t)
	fs, err := OpenWritable(&memDev{b: img}, 0, int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"/alpha.bin": 9000, "/beta.bin": 7000, "/gamma.txt": 40} {
		if err := fs.WriteFile(name, bytes.NewReader(bytes.Repeat([]byte{'n'}, n)), int64(n), testTime); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.Mkdir("/sub", testTime); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile("/sub/inner.bin", bytes.NewReader(make([]byte, 6000)), 6000, testTime); err != nil {
		t.Fatal(err)
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCheckFindings(t *testing.T) {
	clean := checkImage(t)
	v, err := loadVol(&memDev{b: clean}, 0, int64(len(clean)))
	if err != nil {
		t.Fatal(err)
	}
	alpha := recordOf(t, clean, "alpha.bin")
	beta := recordOf(t, clean, "beta.bin")
	volOf := func(rec uint64) int64 {
		off, _ := v.locate(v.mftRuns, int64(rec)*int64(v.recSize), int64(v.recSize), int64(rec))
		return off
	}
	runsOf := func(img []byte, rec uint64) []run {
		vv, _ := loadVol(&memDev{b: img}, 0, int64(len(img)))
		r, err := vv.record(rec)
		if err != nil {
			t.Fatal(err)
		}
		runs, err := vv.runs(r, attrOf(t, r, atData))
		if err != nil {
			t.Fatal(err)
		}
		return runs
	}
	setBit := func(img []byte, runs []run, i int64, on bool) {
		off, err := v.locate(runs, i/8, 1, -1)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			img[off] |= 1 << (i & 7)
		} else {
			img[off] &^= 1 << (i & 7)
		}
	}
	// keyAt finds the $I30 key of name in an INDX block (outside $MFT)
	// and returns its volume offset (the key starts 0x42 bytes before the
	// name).
	keyAt := func(img []byte, name string) int {
		u := utf16.Encode([]rune(name))
		b := make([]byte, 2*len(u))
		for i, c := range u {
			put16(b, 2*i, c)
		}
		for from := 0; ; {
			i := bytes.Index(img[from:], b)
			if i < 0 {
				t.Fatalf("%s: no index key outside $MFT", name)
			}
			pos := int64(from + i)
			from += i + 1
			inMFT := false
			for _, r := range v.mftRuns {
				if pos >= r.lcn*v.csize && pos < (r.lcn+r.n)*v.csize {
					inMFT = true
				}
			}
			safe := func(o int64) bool { return o%512 < 510 }
			if !inMFT && safe(pos) && safe(pos-0x4c) && safe(pos-0x42) && safe(pos-0x3a) {
				return int(pos) - 0x42
			}
		}
	}
	tests := []struct {
		name, structure, msg, path string
		corrupt                    func(img []byte)
	}{
		{"mirror differs", "$MFTMirr", "differs from $MFT", "", func(img []byte) {
			img[v.mirrLCN*v.csize+int64(v.recSize)+0x30] ^= 0xFF
		}},
		{"dirty flag", "$Volume", "marked dirty", "", func(img []byte) {
			corruptRecord(t, img, recVolume, func(r *record) {
				a := attrOf(t, r, atVolumeInformation)
				r.b[a.valOff+10] |= volDirty
			})
		}},
		{"torn record", "MFT record", "fixups do not match", "", func(img []byte) {
			img[volOf(alpha)+1022] ^= 0x55
		}},
		{"MFT bitmap clear for a record in use", "$MFT $BITMAP", "bit is clear", "", func(img []byte) {
			setBit(img, v.mbmRuns, int64(alpha), false)
		}},
		{"MFT bitmap set for a free record", "$MFT $BITMAP", "not in use but", "", func(img []byte) {
			corruptRecord(t, img, beta, func(r *record) { put16(r.b, 0x16, u16(r.b, 0x16)&^recInUse) })
		}},
		{"index entry to a free record", "$I30 index", "not in use", "/beta.bin", func(img []byte) {
			corruptRecord(t, img, beta, func(r *record) { put16(r.b, 0x16, u16(r.b, 0x16)&^recInUse) })
		}},
		{"leaked clusters", "$Bitmap", "belong to no file", "", func(img []byte) {
			for c := v.clusters - 1; c > 0; c-- {
				if !bit(v.bitmap, c) {
					setBit(img, v.bmRuns, c, true)
					return
				}
			}
		}},
		{"clusters in use marked free", "$Bitmap", "marked free", "", func(img []byte) {
			setBit(img, v.bmRuns, runsOf(img, alpha)[0].lcn, false)
		}},
		// The finding names both files; its path is the one whose run
		// starts later (by cluster, then record).
		{"doubly allocated clusters", "$Bitmap", "allocated twice", "", func(img []byte) {
			target := runsOf(img, alpha)[0]
			corruptRecord(t, img, beta, func(r *record) {
				a := attrOf(t, r, atData)
				n := runClusters(runsOf(img, beta))
				enc := encodeRuns([]run{{lcn: target.lcn, n: n}})
				copy(r.b[a.runsOff:a.off+a.length], make([]byte, a.off+a.length-a.runsOff))
				copy(r.b[a.runsOff:], enc)
			})
		}},
		{"index out of order", "$I30 index", "collation order", "", func(img []byte) {
			k := keyAt(img, "alpha.bin")
			put16(img, k+0x42, 'z') // "zlpha.bin" now sorts after beta.bin
		}},
		{"stale sequence number", "$I30 index", "sequence", "/beta.bin", func(img []byte) {
			e := keyAt(img, "beta.bin") - 0x10
			put16(img, e+6, u16(img, e+6)+1)
		}},
		{"wrong parent in key", "$I30 index", "names parent record", "/beta.bin", func(img []byte) {
			k := keyAt(img, "beta.bin")
			put64(img, k, mftRef(alpha, 1))
		}},
	}
	t.Run("clean", func(t *testing.T) {
		fs, err := Check(bytes.NewReader(clean), 0, int64(len(clean)))
		if err != nil || len(fs) != 0 {
			t.Fatalf("clean volume: %v %+v", err, fs)
		}
		ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
		p := filepath.Join(t.TempDir(), "clean.ntfs")
		if err := os.WriteFile(p, clean, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, ntfsfix, "-n", p).CombinedOutput(); err != nil {
			t.Fatalf("ntfsfix -n disagrees: %v\n%s", err, out)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(clean)
			tc.corrupt(img)
			fs, err := Check(bytes.NewReader(img), 0, int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.Structure == tc.structure && strings.Contains(f.Message, tc.msg) && (tc.path == "" || f.Path == tc.path) {
					if f.Offset < 0 || f.Offset >= int64(len(img)) {
						t.Errorf("finding offset %d outside the volume", f.Offset)
					}
					return
				}
			}
			t.Fatalf("no %s finding %q (path %q); got %+v", tc.structure, tc.msg, tc.path, fs)
		})
	}
}

// TestCheckFixtures: the volumes mkntfs and ntfs-3g make are clean, and
// the dirty fixture gives exactly the dirty-flag warning.
func TestCheckFixtures(t *testing.T) {
	for _, name := range []string{ntfstest.FixtureBasic, ntfstest.FixtureDirty} {
		t.Run(name, func(t *testing.T) {
			fx := ntfstest.Build(t, name)
			f, err := os.Open(fx.Image)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			fs, err := Check(f, fx.Offset, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Structure+": "+f.Message)
			}
			switch {
			case name == ntfstest.FixtureDirty && (len(fs) == 0 || fs[0].Structure != "$Volume"):
				t.Fatalf("dirty fixture: %q", got)
			case name != ntfstest.FixtureDirty && len(fs) != 0:
				t.Fatalf("clean fixture: %q", got)
			}
		})
	}
}

// FuzzCheckNTFS patches the small volume at an offset and checks it: no
// panic, bounded time, whatever it reports.
func FuzzCheckNTFS(f *testing.F) {
	base := smallVolume(f)
	f.Add(uint32(0), []byte{})
	f.Add(uint32(0x4000), []byte{0xFF, 0xFF})
	f.Add(uint32(0x4018), []byte{0x00, 0x10})
	f.Fuzz(func(t *testing.T, at uint32, patch []byte) {
		img := bytes.Clone(base)
		if int(at) < len(img) {
			copy(img[at:], patch)
		}
		_, _ = Check(bytes.NewReader(img), 0, int64(len(img)))
	})
}
