package integrate

import (
	"strings"
	"testing"

	"github.com/xpboot/xpboot/integrate/integratetest"
)

// TestPEArch: the one PE header reader answers the installed-system
// detection's question (which architecture is ntoskrnl.exe) and refuses
// what is not an x86 or amd64 image with the offset.
func TestPEArch(t *testing.T) {
	x86 := driverPE(integratetest.I386, "k", "hal.dll")
	tests := []struct {
		name string
		b    []byte
		want string // arch, or "!" + error text
	}{
		{"x86", x86, "x86"},
		{"amd64", driverPE(integratetest.AMD64, "k", "hal.dll"), "amd64"},
		{"no MZ", []byte("ZM" + strings.Repeat("\x00", 0x40)), "!no MZ header at byte 0x0"},
		{"short", x86[:0x3c], "!no MZ header"},
		{"bad lfanew", mess(x86, func(b []byte) { b[0x3c] = 0xff; b[0x3d] = 0xff }), "!no PE signature where e_lfanew points at byte 0x3c"},
		{"arm", mess(x86, func(b []byte) { off := int(b[0x3c]) | int(b[0x3d])<<8; b[off+4], b[off+5] = 0xc4, 0x01 }), "!machine type 0x01c4 is not x86 or amd64"},
	}
	for _, tt := range tests {
		got, err := PEArch(tt.b)
		if err != nil {
			got = "!" + err.Error()
		}
		if !strings.HasPrefix(tt.want, "!") && got != tt.want || strings.HasPrefix(tt.want, "!") && !strings.Contains(got, tt.want[1:]) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
