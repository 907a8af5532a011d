package sanboot

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	testServer = net.IPv4(10, 77, 0, 1).To4()
	testMAC    = net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 1}
	testTarget = Target{Server: "10.77.0.1", IQN: "iqn.2026-01.org.xpboot:disk", LUN: 1}
)

func biosPXE() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, make([]byte, 16)...))}
}

func efiPXE() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64))}
}

func ipxeClient() []dhcpv4.Modifier {
	return append(biosPXE(), dhcpv4.WithGeneric(OptionIPXEEncap, ipxeRequest175), dhcpv4.WithUserClass("iPXE", false))
}

func TestModifiers(t *testing.T) {
	chap := testTarget
	chap.CHAPUser, chap.CHAPSecret = "xpbuser", "xpbsecret1234"
	chap.MutualUser, chap.MutualSecret = "xpbtarget", "targetsecret12"
	client := Client{MAC: testMAC, InitiatorIQN: "iqn.2026-01.org.xpboot:client-52-54-00-77-00-01", Target: chap, KeepSAN: true}
	network := Network{ServerIP: testServer, Netmask: net.CIDRMask(24, 32), Router: net.IPv4(10, 77, 0, 254), DNS: []net.IP{net.IPv4(10, 77, 0, 53)}}
	type check func(t *testing.T, d *dhcpv4.DHCPv4)
	has := func(code uint8, want string) check {
		return func(t *testing.T, d *dhcpv4.DHCPv4) {
			t.Helper()
			if got := string(d.Options.Get(dhcpv4.GenericOptionCode(code))); got != want {
				t.Errorf("option %d = %q, want %q", code, got, want)
			}
		}
	}
	lacks := func(code uint8) check {
		return func(t *testing.T, d *dhcpv4.DHCPv4) {
			t.Helper()
			if d.Options.Has(dhcpv4.GenericOptionCode(code)) {
				t.Errorf("option %d present: %q", code, d.Options.Get(dhcpv4.GenericOptionCode(code)))
			}
		}
	}
	file := func(want string, siaddr net.IP) check {
		return func(t *testing.T, d *dhcpv4.DHCPv4) {
			t.Helper()
			if d.BootFileName != want || !d.ServerIPAddr.Equal(siaddr) {
				t.Errorf("file %q siaddr %v, want %q %v", d.BootFileName, d.ServerIPAddr, want, siaddr)
			}
		}
	}
	yiaddr := func(want net.IP) check {
		return func(t *testing.T, d *dhcpv4.DHCPv4) {
			t.Helper()
			if !d.YourIPAddr.Equal(want) {
				t.Errorf("yiaddr %v, want %v", d.YourIPAddr, want)
			}
		}
	}
	ip4 := func(ip net.IP) string { return string(ip.To4()) }
	tests := []struct {
		name   string
		req    []dhcpv4.Modifier
		pre    []dhcpv4.Modifier // applied before mod, e.g. a lease
		mod    func(req *dhcpv4.DHCPv4) dhcpv4.Modifier
		checks []check
	}{
		{"WithSANBoot", ipxeClient(), nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithSANBoot(client, true) }, []check{
			has(17, "iscsi:10.77.0.1:::1:iqn.2026-01.org.xpboot:disk"),
			has(203, "iqn.2026-01.org.xpboot:client-52-54-00-77-00-01"),
			has(175, string(IPXESettings{KeepSAN: true, NoPXEDHCP: true, Username: "xpbuser", Password: "xpbsecret1234",
				ReverseUsername: "xpbtarget", ReversePassword: "targetsecret12"}.ToBytes())),
			file("", net.IPv4zero),
		}},
		{"WithSANBoot without credentials has no 175", ipxeClient(), nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier {
			return WithSANBoot(Client{Target: testTarget}, false)
		}, []check{has(17, "iscsi:10.77.0.1:::1:iqn.2026-01.org.xpboot:disk"), lacks(175), lacks(203)}},
		{"WithInitiatorIQN", ipxeClient(), nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithInitiatorIQN("iqn.x:c1") }, []check{has(203, "iqn.x:c1")}},
		{"WithInitiatorIQN empty removes", ipxeClient(), []dhcpv4.Modifier{WithInitiatorIQN("iqn.x:old")},
			func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithInitiatorIQN("") }, []check{lacks(203)}},
		{"WithScript", ipxeClient(), nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithScript(testServer, testMAC, "iqn.x:c1") },
			[]check{file("xpboot-52-54-00-77-00-01.ipxe", testServer), has(203, "iqn.x:c1"), lacks(17)}},
		{"WithChainload BIOS", biosPXE(), nil, func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithChainload(r, DefaultBootFiles, testServer) },
			[]check{file("undionly.kpxe", testServer)}},
		{"WithChainload UEFI", efiPXE(), nil, func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithChainload(r, DefaultBootFiles, testServer) },
			[]check{file("ipxe.efi", testServer)}},
		{"WithChainload arm64: nothing", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64))}, nil,
			func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithChainload(r, DefaultBootFiles, testServer) }, []check{file("", net.IPv4zero)}},
		{"WithPXEClass", biosPXE(), nil, func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithPXEClass(r) },
			[]check{has(60, "PXEClient"), has(43, "\x06\x01\x08\xff"), has(97, string(make([]byte, 17)))}},
		{"WithProxyOffer BIOS", biosPXE(), []dhcpv4.Modifier{dhcpv4.WithYourIP(net.IPv4(10, 77, 0, 9)), WithBootFile(testServer, "undionly.kpxe")},
			func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithProxyOffer(r, testServer, false) },
			[]check{yiaddr(net.IPv4zero), has(54, ip4(testServer)), has(60, "PXEClient"), has(43, "\x06\x01\x08\xff"), file("undionly.kpxe", testServer)}},
		{"WithProxyOffer UEFI on 67: no 43, no file", efiPXE(), []dhcpv4.Modifier{WithBootFile(testServer, "ipxe.efi")},
			func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithProxyOffer(r, testServer, false) },
			[]check{has(60, "PXEClient"), lacks(43), file("", testServer), has(54, ip4(testServer))}},
		{"WithProxyOffer UEFI on 4011", efiPXE(), []dhcpv4.Modifier{WithBootFile(testServer, "ipxe.efi")},
			func(r *dhcpv4.DHCPv4) dhcpv4.Modifier { return WithProxyOffer(r, testServer, true) },
			[]check{has(60, "PXEClient"), has(43, "\x06\x01\x08\xff"), file("ipxe.efi", testServer)}},
		{"WithLease", nil, nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithLease(net.IPv4(10, 77, 0, 100), network, time.Hour) },
			[]check{yiaddr(net.IPv4(10, 77, 0, 100)), has(1, "\xff\xff\xff\x00"), has(3, "\x0a\x4d\x00\xfe"), has(6, "\x0a\x4d\x00\x35"),
				has(51, "\x00\x00\x0e\x10"), has(58, "\x00\x00\x07\x08"), has(59, "\x00\x00\x0c\x4e"), has(54, ip4(testServer))}},
		{"WithLease for INFORM", nil, nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithLease(nil, network, 0) },
			[]check{yiaddr(net.IPv4zero), lacks(51), has(1, "\xff\xff\xff\x00")}},
		{"WithoutGateway", nil, []dhcpv4.Modifier{WithLease(net.IPv4(10, 77, 0, 100), network, time.Hour)},
			func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithoutGateway() }, []check{lacks(3), has(6, "\x0a\x4d\x00\x35")}},
		{"WithHostName", nil, nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithHostName("pc01") }, []check{has(12, "pc01")}},
		{"WithHostName empty", nil, nil, func(*dhcpv4.DHCPv4) dhcpv4.Modifier { return WithHostName("") }, []check{lacks(12)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustPacket(t, tt.req...)
			mods := append(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer)}, tt.pre...), tt.mod(req))
			d, err := dhcpv4.NewReplyFromRequest(req, mods...)
			if err != nil {
				t.Fatal(err)
			}
			// Every check holds after the wire too.
			d, err = dhcpv4.FromBytes(d.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.checks {
				c(t, d)
			}
		})
	}
}

func TestScriptName(t *testing.T) {
	n := ScriptName(testMAC)
	if n != "xpboot-52-54-00-77-00-01.ipxe" {
		t.Errorf("ScriptName = %q", n)
	}
	if mac, ok := ParseScriptName(n); !ok || mac.String() != testMAC.String() {
		t.Errorf("ParseScriptName = %v %v", mac, ok)
	}
	for _, bad := range []string{"xpboot-.ipxe", "boot.ipxe", "xpboot-52-54-00-77-00-01.ipxe.x", "xpboot-52-54-00-77-00-01-02-03.ipxe", "xpboot-zz-54-00-77-00-01.ipxe"} {
		if _, ok := ParseScriptName(bad); ok {
			t.Errorf("ParseScriptName(%q) accepted", bad)
		}
	}
}
