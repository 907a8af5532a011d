package bootcode

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestNTFSSetupLoaderBinaryMatchesSource re-assembles ntfsldr.asm (which
// includes ntfs.asm) and checks the embedded binary, that its sectors
// 1..15 are ntfs.bin's (the variant changes the first stage only), and
// that the routines the second stage calls kept their addresses: the two
// first stages are equal up to the jump to the renaming code.
func TestNTFSSetupLoaderBinaryMatchesSource(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	for _, tc := range []struct {
		src      string
		embedded []byte
	}{
		{"ntfs.asm", ntfsCode},
		{"ntfsldr.asm", ntfsLdrCode},
	} {
		if got := assemble(t, nasm, tc.src); !bytes.Equal(got, tc.embedded) {
			t.Fatalf("%s assembles to %d bytes that differ from the embedded %d-byte binary; run go generate", tc.src, len(got), len(tc.embedded))
		}
	}
	if len(ntfsLdrCode) != NTFSBootSize {
		t.Fatalf("ntfsldr.bin is %d bytes, want %d", len(ntfsLdrCode), NTFSBootSize)
	}
	if !bytes.Equal(ntfsLdrCode[SectorSize:], ntfsCode[SectorSize:]) {
		t.Fatal("ntfsldr.bin's sectors 1..15 differ from ntfs.bin's")
	}
	if ntfsLdrCode[510] != 0x55 || ntfsLdrCode[511] != 0xAA {
		t.Fatal("ntfsldr.bin's boot sector lacks 55 AA")
	}
	if !bytes.Contains(ntfsLdrCode[:SectorSize], utf16le("$LDR$")) {
		t.Fatal("ntfsldr.bin's boot sector lacks the name $LDR$")
	}
	if !bytes.Contains(ntfsCode[SectorSize:], utf16le("NTLDR")) {
		t.Fatal("ntfs.bin's second stage lacks the name NTLDR")
	}
	// Everything before the first difference must be shared, and the
	// difference must come after the routines stage 2 calls (read_sector,
	// fail), which sit right behind the jump that differs.
	i := 0
	for i < SectorSize && ntfsCode[i] == ntfsLdrCode[i] {
		i++
	}
	j := SectorSize - 1
	for j > i && ntfsCode[j] == ntfsLdrCode[j] {
		j--
	}
	if msg := bytes.Index(ntfsCode[:SectorSize], []byte("Boot code damaged\x00")); msg < 0 || !(i < msg && ntfsCode[i-1] == 0xE9) {
		t.Fatalf("the first stages differ from byte 0x%x (the near jump's displacement expected, before the messages)", i)
	}
	// Between the jump's displacement and the end of ntfs.asm's stage 1
	// nothing may move.
	end := bytes.Index(ntfsCode[:SectorSize], []byte("Boot code damaged\x00")) + len("Boot code damaged\x00")
	if !bytes.Equal(ntfsCode[i+2:end], ntfsLdrCode[i+2:end]) {
		t.Fatal("the variant moved code the second stage calls")
	}
	t.Logf("stage 1 differs in bytes 0x%x..0x%x; variant stage 1 %d bytes", i, j, len(bytes.TrimRight(ntfsLdrCode[NTFSCodeOffset:510], "\x00")))
}

func utf16le(s string) []byte {
	var b []byte
	for _, c := range []byte(s) {
		b = append(b, c, 0)
	}
	return b
}

// FuzzNTFSSetupLoaderSector feeds boot sectors (the BPB and code of sector
// 0; sectors 1..15 are this build's or, with stale set, changed) to
// NTFSBootArea and NTFSSetupLoaderSector: no panic, and whatever is
// accepted gives one sector with the input's BPB and the variant's code.
func FuzzNTFSSetupLoaderSector(f *testing.F) {
	d, part := ntfsVolume()
	good := append([]byte(nil), d.b[part:part+SectorSize]...)
	binary.LittleEndian.PutUint32(good[0x1C:], 63)
	f.Add(good, false)
	f.Add(good, true)
	for _, off := range []int{0x03, 0x0B, 0x0D, 0x1C, 0x28, 0x30, 0x40, 0x100} {
		b := append([]byte(nil), good...)
		b[off] ^= 0x81
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, sector0 []byte, stale bool) {
		boot := append(make([]byte, 0, NTFSBootSize), ntfsCode...)
		copy(boot, sector0)
		if stale {
			boot[SectorSize+0x10] ^= 0xFF
		}
		area, err := NTFSBootArea(boot, 63*SectorSize)
		if err != nil {
			if _, err2 := NTFSSetupLoaderSector(boot, 63*SectorSize); err2 == nil {
				t.Fatalf("NTFSBootArea refused (%v) what NTFSSetupLoaderSector took", err)
			}
			return
		}
		if !HasNTFSCode(area) || !bytes.Equal(area[3:NTFSCodeOffset], boot[3:NTFSCodeOffset]) {
			t.Fatal("NTFSBootArea lost the BPB or the code")
		}
		dat, err := NTFSSetupLoaderSector(area, 63*SectorSize)
		if err != nil {
			t.Fatalf("refused NTFSBootArea's output: %v", err)
		}
		if len(dat) != SectorSize || !bytes.Equal(dat[3:NTFSCodeOffset], boot[3:NTFSCodeOffset]) ||
			!bytes.Equal(dat[NTFSCodeOffset:], ntfsLdrCode[NTFSCodeOffset:SectorSize]) {
			t.Fatal("BOOTSECT.DAT is not the BPB with the variant's code")
		}
		_, direct := NTFSSetupLoaderSector(boot, 63*SectorSize)
		if (direct == nil) != HasNTFSCode(boot) {
			t.Fatalf("NTFSSetupLoaderSector on the raw area: %v, HasNTFSCode %v", direct, HasNTFSCode(boot))
		}
	})
}
