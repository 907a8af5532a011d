package integrate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/integrate/integratetest"
)

// loaderStub stands for setupldr's real-mode stub: code bytes with an
// "MZ" that starts no PE image, so the search must go on past it.
var loaderStub = append(append(bytes.Repeat([]byte{0xeb, 0xfe}, 0x10), "MZ\x90\x00"...), bytes.Repeat([]byte{0xfa}, 0x1dc)...)

// testLoader is a synthetic XP setupldr.bin: the stub, then a PE image
// naming the multiprocessor kernel twice in its first section and once
// in its second (which must stay as it is).
func testLoader() []byte {
	text := append(bytes.Repeat([]byte{0x90}, 0x80), `\ntkrnlmp.exe`+"\x00osloader\x00ntkrnlmp.exe\x00"...)
	img := buildPE(integratetest.I386, nil, testSection{".text", text}, testSection{".data", []byte("ntkrnlmp.exe\x00")})
	return append(bytes.Clone(loaderStub), img...)
}

func TestPatchLoader(t *testing.T) {
	xp := testLoader()
	xpDone, _, _ := patchLoader(xp, false)
	win2k := []byte("\xeb\xfe stub ntkrnlmp.exe\x00 data ntkrnlmp.exe\x00")
	for _, tt := range []struct {
		name    string
		in      []byte
		win2000 bool
		want    loaderResult
		wantErr string
	}{
		{"xp", xp, false, loaderPatched, ""},
		{"xp-second-run", xpDone, false, loaderAlreadyPatched, ""},
		{"win2000", win2k, true, loaderPatched, ""},
		{"win2000-second-run", bytes.ReplaceAll(win2k, kernelMP, kernelUP), true, loaderAlreadyPatched, ""},
		{"win2000-no-kernel", []byte("stub only"), true, 0, "neither"},
		{"no-image", bytes.Repeat([]byte("MZ"), 100), false, 0, "no PE image"},
		{"kernel-only-in-second-section", append(bytes.Clone(loaderStub),
			buildPE(integratetest.I386, nil, testSection{".text", []byte("code")}, testSection{".data", []byte("ntkrnlmp.exe")})...), false, 0, "first section"},
		{"truncated-image", xp[:len(loaderStub)+0x300], false, 0, "neither"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			orig := bytes.Clone(tt.in)
			out, res, err := patchLoader(tt.in, tt.win2000)
			if !bytes.Equal(orig, tt.in) {
				t.Error("input modified")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || res != tt.want {
				t.Fatalf("result %d, %v; want %d", res, err, tt.want)
			}
			if res == loaderAlreadyPatched && !bytes.Equal(out, tt.in) {
				t.Error("second run changed the loader")
			}
			if len(out) != len(tt.in) || bytes.Contains(out[:min(len(out), 0x700)], kernelMP) && !tt.win2000 {
				t.Errorf("kernel name left in the stub or first section")
			}
			if tt.win2000 {
				if bytes.Contains(out, kernelMP) || !bytes.Equal(out, bytes.ReplaceAll(tt.in, kernelMP, kernelUP)) {
					t.Error("Windows 2000 loader not byte-replaced")
				}
				return
			}
			if !bytes.Equal(out[:len(loaderStub)], loaderStub) {
				t.Error("stub changed")
			}
			img := out[len(loaderStub):]
			if !peChecksumValid(img) {
				t.Error("embedded image checksum not valid")
			}
			f, err := parsePE(img)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Count(f.raw(0), kernelUP); got != 2 {
				t.Errorf("first section names ntoskrnl.exe %d times, want 2", got)
			}
			if !bytes.Contains(f.raw(1), kernelMP) {
				t.Error("second section changed")
			}
		})
	}
}
