package ntfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormatGolden describes fresh volumes (fixed serial and time) field by
// field and compares the text with testdata/format/*.golden, so that any
// change of the layout shows up as a readable diff. UPDATE_GOLDEN=1
// rewrites the files (this package's -update flag is left to others).
func TestFormatGolden(t *testing.T) {
	for _, tt := range []struct {
		name    string
		size    int64
		cluster int
	}{
		{"64M-512", 64 << 20, 0},
		{"1G-4K", 1 << 30, 4096},
		{"8G-64K", 8 << 30, 64 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vol := formatVolume(t, tt.size, FormatOptions{ClusterSize: tt.cluster, Label: "GOLDEN", Serial: 0x1122334455667788,
				HiddenSectors: 63, Time: testTime})
			got := describeVolume(t, vol, tt.size)
			golden := filepath.Join("testdata", "format", tt.name+".golden")
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs:\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

func describeVolume(t *testing.T, p string, size int64) string {
	o := openForCompare(t, p, size)
	var b strings.Builder
	// Bytes 0-2 and from 0x54 are package bootcode's, not the formatter's.
	fmt.Fprintf(&b, "boot sector 0x03-0x53: %x\n", o.boot[3:0x54])
	fmt.Fprintf(&b, "cluster %d, clusters %d, $MFT LCN %d, $MFTMirr LCN %d, MFT zone to %d, records %d, mirrored %d\n",
		o.csize, o.clusters, o.mftLCN, o.mirrLCN, o.zoneEnd, o.mftRecs, o.mirrN)
	fmt.Fprintf(&b, "$MFT bitmap %x\n", o.mftBitmap[:8])
	for n := uint64(0); n < uint64(o.mftRecs); n++ {
		r, err := o.record(n)
		if err != nil {
			t.Fatal(err)
		}
		as, err := r.attrs()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "record %d: %s\n", n, o.layout(t, n))
		for _, a := range as {
			nm := string(utf16Decode(a.name))
			if a.nonRes {
				runs, err := o.runs(r, &a)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "  0x%x%s: runs %v allocated %d size %d initialized %d", a.typ, nm, runs, a.alloc, a.size, a.init)
				if a.init > 0 && a.init <= 128<<20 && n != 7 { // $Boot is the boot code's
					data, _, err := o.attrData(r, &a)
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&b, " sha256 %.16x", sha256.Sum256(data))
				}
				b.WriteString("\n")
				continue
			}
			v := r.value(&a)
			if a.typ == atStandardInformation || a.typ == atFileName {
				// Time stamps are fixed by FormatOptions.Time; keep the
				// lines short.
				fmt.Fprintf(&b, "  0x%x%s: %d bytes sha256 %.16x\n", a.typ, nm, len(v), sha256.Sum256(v))
				continue
			}
			fmt.Fprintf(&b, "  0x%x%s: %x\n", a.typ, nm, v)
		}
	}
	used := int64(0)
	for c := int64(0); c < o.clusters; c++ {
		if bit(o.bitmap, c) {
			used++
		}
	}
	fmt.Fprintf(&b, "clusters in use %d\n", used)
	fmt.Fprintf(&b, "root index:%s\n", indexNames(t, o, recRoot))
	return b.String()
}

// lineDiff lists the lines that differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out bytes.Buffer
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			fmt.Fprintf(&out, "line %d:\n- %s\n+ %s\n", i+1, a, b)
		}
	}
	return out.String()
}
