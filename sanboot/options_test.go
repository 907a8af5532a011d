package sanboot

import (
	"bytes"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// ipxeRequest175 is option 175 as Debian's iPXE e1000 ROM sends it
// (research/netboot.md §2.1): bus-id, version and feature flags.
var ipxeRequest175 = []byte{
	0xb1, 0x05, 0x01, 0x80, 0x86, 0x10, 0x0e, // 177 bus-id PCI 8086:100e
	0xeb, 0x03, 0x01, 0x00, 0x00, // 235 version
	0x11, 0x01, 0x01, // 17 iSCSI
	0x12, 0x01, 0x01, // 18 AoE
	0x10, 0x01, 0x02, // 16 PXE_EXT = 2
}

func TestIPXESettings(t *testing.T) {
	tests := []struct {
		name  string
		s     IPXESettings
		wire  []byte
		str   string
		noStr []string
	}{
		{
			name: "chap as dnsmasq encodes it",
			s:    IPXESettings{Username: "xpbuser", Password: "xpbsecret1234"},
			// research §2.2: af 19 bf 0d "xpbsecret1234" be 07 "xpbuser"; we sort by code.
			wire:  append(append([]byte{0xbe, 7}, "xpbuser"...), append([]byte{0xbf, 13}, "xpbsecret1234"...)...),
			str:   `iPXE{username="xpbuser" password=<13 chars>}`,
			noStr: []string{"xpbsecret1234"},
		},
		{
			name: "mutual chap and switches",
			s: IPXESettings{KeepSAN: true, SkipSANBoot: true, NoPXEDHCP: true, Username: "u", Password: "p",
				ReverseUsername: "r", ReversePassword: "q"},
			wire: []byte{8, 1, 1, 9, 1, 1, 0xb0, 1, 1, 0xbe, 1, 'u', 0xbf, 1, 'p', 0xc0, 1, 'r', 0xc1, 1, 'q'},
			str:  `iPXE{keep-san=1 skip-san-boot=1 no-pxedhcp=1 username="u" password=<1 chars> reverse-username="r" reverse-password=<1 chars>}`,
		},
		{
			name: "priority and san-filename",
			s:    IPXESettings{Priority: -1, SANFilename: `\EFI\BOOT\BOOTX64.EFI`},
			wire: append([]byte{1, 1, 0xff, 0xbc, 21}, `\EFI\BOOT\BOOTX64.EFI`...),
			str:  `iPXE{priority=-1 san-filename="\\EFI\\BOOT\\BOOTX64.EFI"}`,
		},
		{
			name: "what iPXE sends",
			s: IPXESettings{ISCSI: true, BusID: []byte{1, 0x80, 0x86, 0x10, 0x0e}, Version: []byte{1, 0, 0},
				Other: Encapsulated{16: {2}, 18: {1}}},
			wire: []byte{0x10, 1, 2, 0x11, 1, 1, 0x12, 1, 1, 0xb1, 5, 1, 0x80, 0x86, 0x10, 0x0e, 0xeb, 3, 1, 0, 0},
			str:  `iPXE{feature-iscsi=1 bus-id=018086100e version=010000 16=02 18=01}`,
		},
		{name: "empty", s: IPXESettings{}, wire: nil, str: "iPXE{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.ToBytes(); !bytes.Equal(got, tt.wire) {
				t.Errorf("ToBytes() = % x, want % x", got, tt.wire)
			}
			if got := tt.s.String(); got != tt.str {
				t.Errorf("String() = %s, want %s", got, tt.str)
			}
			for _, n := range tt.noStr {
				if strings.Contains(tt.s.String(), n) {
					t.Errorf("String() leaks %q", n)
				}
			}
			var back IPXESettings
			if err := back.FromBytes(tt.wire); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.s) {
				t.Errorf("FromBytes(ToBytes()) = %+v, want %+v", back, tt.s)
			}
		})
	}
}

func TestIPXEFromRealRequest(t *testing.T) {
	var s IPXESettings
	if err := s.FromBytes(ipxeRequest175); err != nil {
		t.Fatal(err)
	}
	if !s.ISCSI || !bytes.Equal(s.BusID, []byte{1, 0x80, 0x86, 0x10, 0x0e}) || len(s.Other) != 2 {
		t.Errorf("decoded %s", s)
	}
}

func TestEncapsulatedErrors(t *testing.T) {
	for _, b := range [][]byte{{1}, {1, 2, 0}, {190, 10, 'a'}} {
		if err := (Encapsulated{}).FromBytes(b); !errors.Is(err, ErrOption) {
			t.Errorf("FromBytes(% x) = %v, want ErrOption", b, err)
		}
	}
	// Padding, end, repeated codes (RFC 3396 concatenation) and long values.
	e := Encapsulated{}
	if err := e.FromBytes([]byte{0, 190, 1, 'a', 0, 190, 1, 'b', 255, 190, 1, 'c'}); err != nil || string(e[190]) != "ab" {
		t.Errorf("got %v %q", err, e[190])
	}
	long := Encapsulated{190: bytes.Repeat([]byte{'x'}, 300)}
	b := long.ToBytes()
	if len(b) != 304 || b[1] != 255 || b[257] != 190 || b[258] != 45 {
		t.Errorf("long value split wrong: len %d", len(b))
	}
	back := Encapsulated{}
	if err := back.FromBytes(b); err != nil || !reflect.DeepEqual(back, long) {
		t.Errorf("long round trip: %v", err)
	}
}

func TestPXEVendor(t *testing.T) {
	tests := []struct {
		name string
		p    PXEVendor
		wire []byte
		str  string
	}{
		{"skip discovery", PXEVendor{DiscoveryControl: PXEDiscoverySkip}, []byte{6, 1, 8, 255}, "PXE{discovery-control=8 (use boot file)}"},
		{"menu prompt as dnsmasq sends it", PXEVendor{DiscoveryControl: 8, Other: Encapsulated{10: []byte{0, 'P', 'X', 'E'}}},
			[]byte{6, 1, 8, 10, 4, 0, 'P', 'X', 'E', 255}, "PXE{discovery-control=8 (use boot file) 10=00505845}"},
		{"empty", PXEVendor{}, []byte{255}, "PXE{discovery-control=0}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.ToBytes(); !bytes.Equal(got, tt.wire) {
				t.Errorf("ToBytes() = % x, want % x", got, tt.wire)
			}
			if got := tt.p.String(); got != tt.str {
				t.Errorf("String() = %s, want %s", got, tt.str)
			}
			var back PXEVendor
			if err := back.FromBytes(tt.wire); err != nil || !reflect.DeepEqual(back, tt.p) {
				t.Errorf("FromBytes = %+v, %v", back, err)
			}
		})
	}
}

func TestOptionsOnPacket(t *testing.T) {
	tgt := Target{Server: "10.0.0.1", IQN: "iqn.2026-01.org.xpboot:disk"}
	tests := []struct {
		name string
		opt  dhcpv4.Option
		code uint8
		wire string
		str  string
	}{
		{"17 root-path", OptRootPath(tgt), 17, "iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk", "Root Path: iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk"},
		{"203 initiator", OptInitiatorIQN("iqn.2026-01.org.xpboot:client-1"), 203, "iqn.2026-01.org.xpboot:client-1", "unknown (203): iqn.2026-01.org.xpboot:client-1"},
		{"60 PXEClient", OptPXEClient(), 60, "PXEClient", "Class Identifier: PXEClient"},
		{"43 PXE", OptPXEVendor(PXEVendor{DiscoveryControl: 8}), 43, "\x06\x01\x08\xff", "Vendor Specific Information: PXE{discovery-control=8 (use boot file)}"},
		{"175 iPXE", OptIPXE(IPXESettings{NoPXEDHCP: true}), 175, "\xb0\x01\x01", "unknown (175): iPXE{no-pxedhcp=1}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opt.Code.Code() != tt.code {
				t.Errorf("code %d", tt.opt.Code.Code())
			}
			if got := string(tt.opt.Value.ToBytes()); got != tt.wire {
				t.Errorf("bytes %q, want %q", got, tt.wire)
			}
			if got := tt.opt.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			// Through a whole packet and back.
			p, err := dhcpv4.New(dhcpv4.WithOption(tt.opt))
			if err != nil {
				t.Fatal(err)
			}
			q, err := dhcpv4.FromBytes(p.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if got := string(q.Options.Get(dhcpv4.GenericOptionCode(tt.code))); got != tt.wire {
				t.Errorf("after the wire: %q", got)
			}
		})
	}
	var rp RootPath
	if err := rp.FromBytes([]byte(tgt.RootPath())); err != nil || rp.Target != tgt {
		t.Errorf("RootPath.FromBytes = %+v, %v", rp, err)
	}
}

func mustPacket(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 1}
	p, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClassifyAndFirmware(t *testing.T) {
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		kind Kind
		fw   Firmware
		file string
	}{
		{"plain DHCP client", nil, KindOther, FirmwareBIOS, "undionly.kpxe"},
		{"BIOS PXE ROM", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC))}, KindPXE, FirmwareBIOS, "undionly.kpxe"},
		{"OVMF", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64))}, KindPXE, FirmwareEFI, "ipxe.efi"},
		{"EFI BC", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_BC))}, KindPXE, FirmwareEFI, "ipxe.efi"},
		{"arm64 has no binary", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64))}, KindPXE, FirmwareUnknown, ""},
		{"iPXE by 175", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
			dhcpv4.WithGeneric(OptionIPXEEncap, ipxeRequest175)}, KindIPXE, FirmwareBIOS, "undionly.kpxe"},
		{"iPXE by raw user class", []dhcpv4.Modifier{dhcpv4.WithUserClass("iPXE", false)}, KindIPXE, FirmwareBIOS, "undionly.kpxe"},
		{"iPXE by RFC 3004 user class", []dhcpv4.Modifier{dhcpv4.WithUserClass("iPXE", true)}, KindIPXE, FirmwareBIOS, "undionly.kpxe"},
		{"other user class", []dhcpv4.Modifier{dhcpv4.WithUserClass("gPXE", false)}, KindOther, FirmwareBIOS, "undionly.kpxe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPacket(t, tt.mods...)
			if k := Classify(p); k != tt.kind {
				t.Errorf("Classify = %s, want %s", k, tt.kind)
			}
			if fw := FirmwareOf(p); fw != tt.fw {
				t.Errorf("FirmwareOf = %s, want %s", fw, tt.fw)
			}
			if f := DefaultBootFiles.For(FirmwareOf(p)); f != tt.file {
				t.Errorf("boot file %q, want %q", f, tt.file)
			}
		})
	}
}

func FuzzEncapsulated(f *testing.F) {
	f.Add(ipxeRequest175)
	f.Add([]byte{6, 1, 8, 255})
	f.Add([]byte{0xbe, 7, 'x', 'p', 'b', 'u', 's', 'e', 'r'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := Encapsulated{}
		if err := e.FromBytes(b); err != nil {
			return
		}
		_ = e.String()
		// parse → write → parse is stable.
		w := e.ToBytes()
		e2 := Encapsulated{}
		if err := e2.FromBytes(w); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(e2.ToBytes(), w) {
			t.Fatalf("unstable: % x vs % x", e2.ToBytes(), w)
		}
	})
}

func FuzzIPXESettings(f *testing.F) {
	f.Add(ipxeRequest175)
	f.Add(IPXESettings{Username: "u", Password: "p", KeepSAN: true, Priority: 3}.ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		var s IPXESettings
		if err := s.FromBytes(b); err != nil {
			return
		}
		_ = s.String()
		w := s.ToBytes()
		var s2 IPXESettings
		if err := s2.FromBytes(w); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(s2.ToBytes(), w) {
			t.Fatalf("unstable: % x vs % x", s2.ToBytes(), w)
		}
	})
}

func FuzzPXEVendor(f *testing.F) {
	f.Add([]byte{6, 1, 8, 255})
	f.Add([]byte{6, 1, 8, 10, 4, 0, 'P', 'X', 'E', 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PXEVendor
		if err := p.FromBytes(b); err != nil {
			return
		}
		_ = p.String()
		w := p.ToBytes()
		var p2 PXEVendor
		if err := p2.FromBytes(w); err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !bytes.Equal(p2.ToBytes(), w) {
			t.Fatalf("unstable: % x vs % x", p2.ToBytes(), w)
		}
	})
}

func FuzzParseRootPath(f *testing.F) {
	f.Add("iscsi:10.0.0.1::::iqn.2026-01.org.xpboot:disk")
	f.Add("iscsi:10.77.0.1:6:3261:1a:iqn.x:d")
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseRootPath(s)
		if err != nil {
			return
		}
		rp := tg.RootPath()
		tg2, err := ParseRootPath(rp)
		if err != nil {
			t.Fatalf("re-parse %q: %v", rp, err)
		}
		if tg2 != tg || tg2.RootPath() != rp {
			t.Fatalf("unstable: %q → %q", rp, tg2.RootPath())
		}
	})
}
