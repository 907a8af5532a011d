package integrate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// testSection is a section of a PE image built by buildPE.
type testSection struct {
	name string
	data []byte
}

// buildPE returns a small but complete PE image for machine (PE32, or
// PE32+ for amd64): headers, the given sections, and when imports is not
// empty an .idata section importing one function from each module. File
// alignment 0x200, section alignment 0x1000; the checksum is set.
func buildPE(machine uint16, imports []string, secs ...testSection) []byte {
	le := binary.LittleEndian
	const (
		fileAlign = 0x200
		secAlign  = 0x1000
		hdrSize   = 0x400
	)
	plus := machine == integratetest.AMD64
	optSize := 224
	if plus {
		optSize = 240
	}
	if len(imports) > 0 {
		// Descriptors, then per module a lookup table, an address table,
		// a hint/name entry and the module name.
		n := len(imports)
		thunk := 4
		if plus {
			thunk = 8
		}
		va := uint32(secAlign * (len(secs) + 1))
		descs := 20 * (n + 1)
		b := make([]byte, descs)
		for i, m := range imports {
			ilt := len(b)
			b = append(b, make([]byte, 2*thunk)...)
			iat := len(b)
			b = append(b, make([]byte, 2*thunk)...)
			hint := len(b)
			b = append(b, 0, 0)
			b = append(b, "Func\x00\x00"...)
			name := len(b)
			b = append(b, m...)
			b = append(b, 0, 0)
			if plus {
				le.PutUint64(b[ilt:], uint64(va)+uint64(hint))
				le.PutUint64(b[iat:], uint64(va)+uint64(hint))
			} else {
				le.PutUint32(b[ilt:], va+uint32(hint))
				le.PutUint32(b[iat:], va+uint32(hint))
			}
			d := b[20*i:]
			le.PutUint32(d[0:], va+uint32(ilt))
			le.PutUint32(d[12:], va+uint32(name))
			le.PutUint32(d[16:], va+uint32(iat))
		}
		secs = append(secs, testSection{".idata", b})
	}
	out := make([]byte, hdrSize) // headers; the sections follow in body
	var body []byte
	copy(out, "MZ")
	le.PutUint32(out[0x3c:], 0x40)
	copy(out[0x40:], "PE\x00\x00")
	coff := out[0x44:]
	le.PutUint16(coff[0:], machine)
	le.PutUint16(coff[2:], uint16(len(secs)))
	le.PutUint32(coff[4:], 0x3b7d8410) // a fixed link time
	le.PutUint16(coff[16:], uint16(optSize))
	le.PutUint16(coff[18:], 0x0102) // executable, 32-bit machine
	opt := out[0x58:]
	dd := 96
	if plus {
		le.PutUint16(opt[0:], 0x20b)
		le.PutUint64(opt[24:], 0x10000)
		dd = 112
	} else {
		le.PutUint16(opt[0:], 0x10b)
		le.PutUint32(opt[28:], 0x10000)
	}
	le.PutUint32(opt[16:], secAlign) // entry point: the first section
	le.PutUint32(opt[32:], secAlign)
	le.PutUint32(opt[36:], fileAlign)
	le.PutUint16(opt[40:], 5) // OS 5.0
	le.PutUint16(opt[48:], 5)
	le.PutUint32(opt[60:], hdrSize)
	le.PutUint16(opt[68:], 1) // native: a driver
	le.PutUint32(opt[dd-4:], 16)
	sh := out[0x58+optSize:]
	va := uint32(secAlign)
	for i, s := range secs {
		h := sh[40*i:]
		copy(h, s.name)
		raw := (len(s.data) + fileAlign - 1) / fileAlign * fileAlign
		le.PutUint32(h[8:], uint32(len(s.data)))
		le.PutUint32(h[12:], va)
		le.PutUint32(h[16:], uint32(raw))
		le.PutUint32(h[20:], uint32(hdrSize+len(body)))
		le.PutUint32(h[36:], 0x60000020)
		if s.name == ".idata" {
			le.PutUint32(opt[dd+8:], va)
			le.PutUint32(opt[dd+12:], uint32(20*(len(imports)+1)))
		}
		body = append(body, s.data...)
		body = append(body, make([]byte, raw-len(s.data))...)
		va += uint32((len(s.data) + secAlign - 1) / secAlign * secAlign)
	}
	le.PutUint32(opt[56:], va) // SizeOfImage
	out = append(out, body...)
	setPEChecksum(out)
	return out
}

// driverPE is a driver image importing imports, with some code-like bytes.
func driverPE(machine uint16, tag string, imports ...string) []byte {
	code := bytes.Repeat([]byte{0x55, 0x8b, 0xec, 0xc3}, 64)
	return buildPE(machine, imports, testSection{".text", append(code, tag...)}, testSection{".data", []byte("data of " + tag)})
}

// TestPEChecksumVector checks peChecksum against a value computed by an
// independent implementation: pefile 2023.2.7's generate_checksum() on
// the image below (testdata/checksum-vector.pe, written by this test
// with -update).
func TestPEChecksumVector(t *testing.T) {
	b := driverPE(integratetest.I386, "vector", "ntoskrnl.exe", "HAL.dll")
	p := filepath.Join("testdata", "checksum-vector.pe")
	if *update {
		writeFile(t, p, b)
	}
	if want, err := os.ReadFile(p); err != nil || !bytes.Equal(want, b) {
		t.Fatalf("buildPE output differs from %s (%v): rerun with -update and recompute the vector with pefile", p, err)
	}
	const want = 0x00004e43
	if got := peChecksum(b); got != want {
		t.Errorf("peChecksum = %#08x, pefile says %#08x", got, want)
	}
	if !peChecksumValid(b) {
		t.Error("setPEChecksum wrote a checksum peChecksumValid rejects")
	}
	b[0x500] ^= 0xff
	if peChecksumValid(b) {
		t.Error("a changed byte went unnoticed")
	}
}

// TestPEChecksumOsslsigncode has osslsigncode, an independent PE
// implementation, recompute the checksum of images built and patched
// here.
func TestPEChecksumOsslsigncode(t *testing.T) {
	tool := peertest.Need(t, "osslsigncode", "osslsigncode")
	patched, _, err := peRenameImport(driverPE(integratetest.I386, "x", "iscsiprt.sys"), "iscsiprt.sys", "iScsiP_o.sys")
	if err != nil {
		t.Fatal(err)
	}
	ldr, _, err := patchLoader(testLoader(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"driver-x86", driverPE(integratetest.I386, "x86", "ntoskrnl.exe")},
		{"driver-amd64", driverPE(integratetest.AMD64, "amd64", "ntoskrnl.exe", "HAL.dll")},
		{"renamed-import", patched},
		{"loader-image", ldr[len(loaderStub):]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tt.name+".sys")
			writeFile(t, p, tt.b)
			out, _ := peertest.Try(t, 30*time.Second, tool, "verify", "-in", p)
			m := regexp.MustCompile(`(?m)^(?:Calculated )?PE checksum\s*:\s*([0-9A-Fa-f]{8})`).FindAllSubmatch(out, -1)
			if m == nil {
				t.Fatalf("no checksum in osslsigncode's output:\n%s", out)
			}
			want, _ := strconv.ParseUint(string(m[len(m)-1][1]), 16, 32)
			if got := peChecksum(tt.b); uint64(got) != want {
				t.Errorf("peChecksum = %#08x, osslsigncode calculates %#08x:\n%s", got, want, out)
			}
			if !peChecksumValid(tt.b) {
				t.Error("stored checksum is not valid")
			}
		})
	}
}

func TestPEImports(t *testing.T) {
	for _, machine := range []uint16{integratetest.I386, integratetest.AMD64} {
		b := driverPE(machine, "imp", "ntoskrnl.exe", "iscsiprt.sys", "HAL.dll")
		got, err := peImports(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"ntoskrnl.exe", "iscsiprt.sys", "HAL.dll"}; !slices.Equal(got, want) {
			t.Errorf("machine %#x: imports %q, want %q", machine, got, want)
		}
		out, n, err := peRenameImport(b, "ISCSIPRT.SYS", "iScsiP_o.sys")
		if err != nil || n != 1 {
			t.Fatalf("rename: %d, %v", n, err)
		}
		got, _ = peImports(out)
		if want := []string{"ntoskrnl.exe", "iScsiP_o.sys", "HAL.dll"}; !slices.Equal(got, want) {
			t.Errorf("after rename: %q, want %q", got, want)
		}
		if !peChecksumValid(out) {
			t.Error("checksum not recomputed")
		}
		// Only the name and the checksum changed.
		at := peChecksumOffset(b)
		var diff []int
		for i := range b {
			if b[i] != out[i] && (i < at || i >= at+4) {
				diff = append(diff, i)
			}
		}
		want := 0
		for i := range "iscsiprt.sys" {
			if "iscsiprt.sys"[i] != "iScsiP_o.sys"[i] {
				want++
			}
		}
		if len(diff) != want {
			t.Errorf("%d bytes changed besides the checksum, want the %d that differ in the name", len(diff), want)
		}
		if _, n, _ := peRenameImport(b, "absent.sys", "absent.sy0"); n != 0 {
			t.Error("renamed an import that is not there")
		}
		if _, _, err := peRenameImport(b, "iscsiprt.sys", "longer_name.sys"); err == nil {
			t.Error("accepted a name of another length")
		}
	}
	if imps, err := peImports(driverPE(integratetest.I386, "none")); err != nil || len(imps) != 0 {
		t.Errorf("no import section: %q, %v", imps, err)
	}
}

// mess returns a copy of b with fn applied (zip's messWith).
func mess(b []byte, fn func(b []byte)) []byte {
	b = bytes.Clone(b)
	fn(b)
	return b
}

func TestPEMalformed(t *testing.T) {
	good := driverPE(integratetest.I386, "m", "ntoskrnl.exe")
	le := binary.LittleEndian
	const opt, sh = 0x58, 0x58 + 224
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"not-mz", mess(good, func(b []byte) { b[0] = 'X' })},
		{"lfanew-past-end", mess(good, func(b []byte) { le.PutUint32(b[0x3c:], 0x7fffffff) })},
		{"lfanew-negative", mess(good, func(b []byte) { le.PutUint32(b[0x3c:], 0xfffffff0) })},
		{"no-pe-signature", mess(good, func(b []byte) { b[0x41] = 'X' })},
		{"bad-magic", mess(good, func(b []byte) { le.PutUint16(b[opt:], 0x107) })},
		{"tiny-optional-header", mess(good, func(b []byte) { le.PutUint16(b[0x54:], 8) })},
		{"huge-optional-header", mess(good, func(b []byte) { le.PutUint16(b[0x54:], 0xffff) })},
		{"too-many-sections", mess(good, func(b []byte) { le.PutUint16(b[0x46:], 0xffff) })},
		{"import-section-past-end", mess(good, func(b []byte) { le.PutUint32(b[sh+80+20:], 0xfffff000) })},
		{"import-rva-outside", mess(good, func(b []byte) { le.PutUint32(b[opt+104:], 0x7ffff000) })},
		{"import-name-outside", mess(good, func(b []byte) {
			// The .idata section is the third; its descriptor's Name.
			le.PutUint32(b[le.Uint32(b[sh+80+20:])+12:], 0x7ffff000)
		})},
		{"unterminated-name", mess(good, func(b []byte) {
			raw := le.Uint32(b[sh+80+20:])
			size := le.Uint32(b[sh+80+16:])
			for i := raw + 20*2; i < raw+size; i++ {
				if b[i] == 0 {
					b[i] = 'A'
				}
			}
		})},
		{"truncated", good[:0x300]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := peImports(tt.b)
			if err == nil {
				t.Fatal("no error")
			}
			var fe *peFormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *peFormatError", err)
			}
			if _, _, err := peRenameImport(tt.b, "ntoskrnl.exe", "ntoskrnl.ex0"); err == nil {
				t.Error("rename: no error")
			}
		})
	}
}

// FuzzPEImports checks that reading and renaming imports never panics and
// that a rename reads back as intended.
func FuzzPEImports(f *testing.F) {
	f.Add(driverPE(integratetest.I386, "f", "ntoskrnl.exe", "iscsiprt.sys"))
	f.Add(driverPE(integratetest.AMD64, "f", "iscsiprt.sys"))
	f.Add(testLoader())
	f.Fuzz(func(t *testing.T, b []byte) {
		imps, err := peImports(b)
		if err != nil {
			return
		}
		for i, im := range imps {
			alt := string(bytes.Repeat([]byte{'x'}, len(im)))
			out, n, err := peRenameImport(b, im, alt)
			if err != nil {
				continue // a name overlapping the headers or another name
			}
			if n == 0 || len(out) != len(b) {
				t.Fatalf("rename of %q: %d descriptors, %d bytes", im, n, len(out))
			}
			after, err := peImports(out)
			if err != nil || len(after) != len(imps) || after[i] != alt {
				t.Fatalf("after renaming %q: %q, %v", im, after, err)
			}
		}
		patchLoader(b, false)
		patchLoader(b, true)
	})
}
