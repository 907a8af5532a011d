package bootcode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"testing"
)

// testVolume is just enough of a FAT32 reader to check that a test disk has
// the layout a test claims to exercise.
type testVolume struct {
	f                   *os.File
	spc                 int64
	fatStart, dataStart int64 // byte offsets on the disk
	root                uint32
}

func openTestVolume(t *testing.T, img string) *testVolume {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	bs := make([]byte, SectorSize)
	if _, err := f.ReadAt(bs, partStart*SectorSize); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	reserved := int64(le.Uint16(bs[0x0E:]))
	fatSize := int64(le.Uint32(bs[0x24:]))
	return &testVolume{
		f:         f,
		spc:       int64(bs[0x0D]),
		fatStart:  (partStart + reserved) * SectorSize,
		dataStart: (partStart + reserved + int64(bs[0x10])*fatSize) * SectorSize,
		root:      le.Uint32(bs[0x2C:]),
	}
}

// chain returns the cluster chain starting at c.
func (v *testVolume) chain(t *testing.T, c uint32) []uint32 {
	t.Helper()
	var out []uint32
	e := make([]byte, 4)
	for c >= 2 && c < 0x0FFFFFF7 {
		if len(out) > 1<<20 {
			t.Fatalf("cluster chain loops")
		}
		out = append(out, c)
		if _, err := v.f.ReadAt(e, v.fatStart+int64(c)*4); err != nil {
			t.Fatal(err)
		}
		c = binary.LittleEndian.Uint32(e) & 0x0FFFFFFF
	}
	return out
}

func (v *testVolume) cluster(t *testing.T, c uint32) []byte {
	t.Helper()
	b := make([]byte, v.spc*SectorSize)
	if _, err := v.f.ReadAt(b, v.dataStart+int64(c-2)*v.spc*SectorSize); err != nil {
		t.Fatal(err)
	}
	return b
}

// fragments counts the contiguous runs of a chain.
func fragments(chain []uint32) int {
	n := 0
	for i, c := range chain {
		if i == 0 || c != chain[i-1]+1 {
			n++
		}
	}
	return n
}

// checkTrickyLayout verifies what populateTricky promises: the root
// directory is fragmented; NTLDR's entry is past the root's first cluster,
// after a volume label, long name and deleted entries; NTLDR's chain is
// fragmented and holds the file.
func checkTrickyLayout(t *testing.T, img string, ntldr []byte) {
	t.Helper()
	v := openTestVolume(t, img)
	root := v.chain(t, v.root)
	if fragments(root) < 2 {
		t.Fatalf("root directory chain %v is contiguous; the test needs it fragmented", root)
	}
	seen := map[string]int{}
	for ci, c := range root {
		d := v.cluster(t, c)
		for off := 0; off < len(d); off += 32 {
			e := d[off : off+32]
			switch {
			case e[0] == 0:
				t.Fatalf("end of root directory before NTLDR; seen %v", seen)
			case e[0] == 0xE5:
				seen["deleted"]++
				continue
			case e[11] == 0x0F:
				seen["long name"]++
				continue
			case e[11]&0x08 != 0:
				seen["volume label"]++
				continue
			}
			if !bytes.Equal(e[:11], []byte("NTLDR      ")) {
				continue
			}
			if ci == 0 || seen["deleted"] == 0 || seen["long name"] == 0 || seen["volume label"] == 0 {
				t.Fatalf("NTLDR entry in root cluster %d of %d after %v; the test needs it later", ci, len(root), seen)
			}
			le := binary.LittleEndian
			first := uint32(le.Uint16(e[0x14:]))<<16 | uint32(le.Uint16(e[0x1A:]))
			chain := v.chain(t, first)
			if fragments(chain) < 3 {
				t.Fatalf("NTLDR chain has %d fragments; the test needs several", fragments(chain))
			}
			var got []byte
			for _, c := range chain {
				got = append(got, v.cluster(t, c)...)
			}
			if le.Uint32(e[0x1C:]) != uint32(len(ntldr)) || !bytes.Equal(got[:len(ntldr)], ntldr) {
				t.Fatalf("NTLDR on the volume differs from the test file")
			}
			t.Logf("root: %d clusters in %d fragments; NTLDR entry in root cluster %d after %v; NTLDR: %d clusters in %d fragments",
				len(root), fragments(root), ci, seen, len(chain), fragments(chain))
			return
		}
	}
	t.Fatalf("no NTLDR entry in the root directory")
}

// rootEntries calls fn with the disk offset and bytes of every root
// directory entry up to the end marker.
func (v *testVolume) rootEntries(t *testing.T, fn func(off int64, e []byte)) {
	t.Helper()
	for _, c := range v.chain(t, v.root) {
		d := v.cluster(t, c)
		for i := 0; i < len(d); i += 32 {
			if d[i] == 0 {
				return
			}
			fn(v.dataStart+int64(c-2)*v.spc*SectorSize+int64(i), d[i:i+32])
		}
	}
}

// checkMissingLayout verifies that the root directory holds "NTLDR" only as
// the volume label, a deleted entry and a directory.
func checkMissingLayout(t *testing.T, img string) {
	t.Helper()
	v := openTestVolume(t, img)
	var got []string
	v.rootEntries(t, func(_ int64, e []byte) {
		switch {
		case string(e[1:11]) != "TLDR      ":
		case e[0] == 0xE5:
			got = append(got, "deleted")
		case e[0] == 'N' && e[11] == 0x08:
			got = append(got, "label")
		case e[0] == 'N' && e[11]&0x10 != 0:
			got = append(got, "directory")
		case e[0] == 'N':
			got = append(got, fmt.Sprintf("attributes 0x%02x", e[11]))
		}
	})
	if want := "[label directory deleted]"; fmt.Sprint(got) != want {
		t.Fatalf("NTLDR entries in the root directory: %v, want %s", got, want)
	}
}

// setNTLDRSize overwrites the size field of NTLDR's directory entry.
func setNTLDRSize(t *testing.T, img string, size uint32) {
	t.Helper()
	v := openTestVolume(t, img)
	at := int64(-1)
	v.rootEntries(t, func(off int64, e []byte) {
		if string(e[:11]) == "NTLDR      " && e[11]&0x18 == 0 {
			at = off
		}
	})
	if at < 0 {
		t.Fatal("no NTLDR entry")
	}
	b := binary.LittleEndian.AppendUint32(nil, size)
	patch(t, img, at+0x1C, b)
}
