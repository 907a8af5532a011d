package hive

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCheckCorpusValid(t *testing.T) {
	for _, name := range validHives {
		t.Run(name, func(t *testing.T) {
			b := readCorpus(t, name)
			probs, err := Check(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range probs {
				t.Errorf("%v", p)
			}
		})
	}
}

func TestCheckCorpusBroken(t *testing.T) {
	tests := []struct {
		name string
		want string // a substring of one finding
	}{
		{"yarp-WrongOrderHive", "out of order"},
		{"yarp-DuplicateSubkeysHive", "duplicate subkey"},
		{"yarp-BadListHive", "already used"},
		{"yarp-BadSubkeyHive", "already used"},
		{"yarp-TruncatedHive", "truncated"},
		{"yarp-GarbageHive", "checksum"},
		{"yarp-OldDirtyHive", "sequence numbers differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := readCorpus(t, tt.name)
			probs, err := Check(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range probs {
				t.Logf("%v", p)
				if strings.Contains(p.Msg, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("no finding containing %q", tt.want)
			}
		})
	}
}

// messWith corrupts a copy of a good hive at a known offset.
func messWith(b []byte, fix func(b []byte)) []byte {
	b = bytes.Clone(b)
	fix(b)
	return b
}

func resum(b []byte) {
	le.PutUint32(b[hdrChecksum:], checksum(b[:baseBlockSize]))
}

// TestCheckMutations corrupts hivex-special (XP-written, 1.5) one rule at
// a time and expects the checker to name the rule at the right offset.
func TestCheckMutations(t *testing.T) {
	good := readCorpus(t, "hivex-special")
	f := openBytes(t, good)
	root, _ := f.Root()
	rootOff := root.Offset()
	// The first free cell of at least 16 bytes, to split in two.
	var freeOff int64
	for o := uint32(binHeaderSize); o < uint32(len(f.data)); {
		sz := int32(le.Uint32(f.data[o:]))
		if sz >= 16 {
			freeOff = int64(o) + baseBlockSize
			break
		}
		o += uint32(max(sz, -sz))
	}
	if freeOff == 0 {
		t.Fatal("no free cell in hivex-special")
	}
	tests := []struct {
		name string
		fix  func(b []byte)
		off  int64
		want string
	}{
		{"checksum", func(b []byte) { b[hdrChecksum] ^= 1 }, hdrChecksum, "checksum"},
		{"seq", func(b []byte) { le.PutUint32(b[hdrSeq2:], 7); resum(b) }, hdrSeq2, "sequence numbers differ"},
		{"minor6", func(b []byte) { le.PutUint32(b[hdrMinor:], 6); resum(b) }, hdrMinor, "minor version"},
		{"cluster", func(b []byte) { le.PutUint32(b[hdrCluster:], 2); resum(b) }, hdrCluster, "clustering"},
		{"type", func(b []byte) { le.PutUint32(b[hdrType:], 1); resum(b) }, hdrType, "file type"},
		{"hbin size", func(b []byte) { le.PutUint32(b[baseBlockSize+binSize:], 4000) }, baseBlockSize, "hbin size"},
		{"hbin offset", func(b []byte) { le.PutUint32(b[baseBlockSize+binOffset:], 4096) }, baseBlockSize, "hbin offset"},
		{"subkey count", func(b []byte) {
			le.PutUint32(b[rootOff+4+nkNumSubkeys:], 4)
		}, rootOff, "subkey count 4"},
		{"max name", func(b []byte) {
			le.PutUint32(b[rootOff+4+nkMaxName:], 2)
		}, rootOff, "max subkey name length"},
		{"lh hash", func(b []byte) {
			l := int64(root.subList) + baseBlockSize
			b[l+4+8] ^= 0x55
		}, int64(root.subList) + baseBlockSize + 8, "lh hash"},
		{"order", func(b []byte) {
			l := int64(root.subList) + baseBlockSize + 8
			e0 := bytes.Clone(b[l : l+8])
			copy(b[l:l+8], b[l+8:l+16])
			copy(b[l+8:l+16], e0)
		}, int64(root.subList) + baseBlockSize + 16, "out of order"},
		{"uncoalesced free cells", func(b []byte) {
			n := le.Uint32(b[freeOff:])
			le.PutUint32(b[freeOff:], 8)
			le.PutUint32(b[freeOff+8:], n-8)
		}, freeOff + 8, "not coalesced"},
		{"inline too long", func(b []byte) {
			k, _ := f.Key("abcd_äöüß")
			offs, _ := f.valueOffsets(k)
			o := int64(offs[0]) + baseBlockSize + 4 + vkDataLen
			le.PutUint32(b[o:], dataInline|5)
		}, 0, "inline value data length 5"},
		{"sk refcount", func(b []byte) {
			o := int64(root.sk) + baseBlockSize + 4 + skRefs
			le.PutUint32(b[o:], le.Uint32(b[o:])+1)
		}, int64(root.sk) + baseBlockSize, "reference count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := messWith(good, tt.fix)
			probs, err := Check(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range probs {
				if strings.Contains(p.Msg, tt.want) && (p.Off == tt.off || tt.off == 0) {
					return
				}
			}
			t.Errorf("want a finding %q at 0x%x, got %v", tt.want, tt.off, probs)
		})
	}
}

func TestChecksumFixups(t *testing.T) {
	base := make([]byte, baseBlockSize)
	if got := checksum(base); got != 1 {
		t.Errorf("checksum of zeros = %#x, want 1", got)
	}
	le.PutUint32(base[0:], 0xFFFFFFFF)
	if got := checksum(base); got != 0xFFFFFFFE {
		t.Errorf("checksum of all-ones XOR = %#x, want 0xfffffffe", got)
	}
}

func TestOpenErrors(t *testing.T) {
	good := readCorpus(t, "hivex-special")
	tests := []struct {
		name string
		b    []byte
		is   error
	}{
		{"short", good[:100], ErrFormat},
		{"truncated", good[:baseBlockSize+100], ErrFormat},
		{"checksum", messWith(good, func(b []byte) { b[hdrChecksum]++ }), ErrChecksum},
		{"signature", messWith(good, func(b []byte) { b[0] = 'x' }), ErrFormat},
		{"root", messWith(good, func(b []byte) { le.PutUint32(b[hdrRoot:], 0x7ffffff0); resum(b) }), ErrFormat},
	}
	for _, tt := range tests {
		_, err := NewFile(bytes.NewReader(tt.b), int64(len(tt.b)))
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.is)
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %v is not a *FormatError", tt.name, err)
		}
	}
}
