package integrate

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
)

func TestOptionsCheck(t *testing.T) {
	pfx := netip.MustParsePrefix
	addr := netip.MustParseAddr
	for _, tt := range []struct {
		name    string
		o       Options
		warn    string // substring of the only warning, "" for none
		err     string // substring of the error, "" for none
		preconf string
	}{
		{name: "empty", o: Options{}},
		{name: "static", o: Options{Address: pfx("192.168.1.50/24"), Gateway: addr("192.168.1.1")}},
		{name: "dhcp", o: Options{DHCP: true}},
		{name: "ip and dhcp", o: Options{Address: pfx("192.168.1.50/24"), DHCP: true}, err: "exclude each other"},
		{name: "gateway outside", o: Options{Address: pfx("192.168.1.50/24"), Gateway: addr("10.0.0.1")}, warn: "outside 192.168.1.0/24"},
		{name: "gateway alone", o: Options{Gateway: addr("10.0.0.1")}, err: "needs a static address"},
		{name: "gateway with dhcp", o: Options{DHCP: true, Gateway: addr("10.0.0.1")}, err: "needs a static address"},
		{name: "ipv6", o: Options{Address: pfx("fd00::5/64")}, err: "IPv4"},
		{name: "network address", o: Options{Address: pfx("192.168.1.0/24")}, warn: "network address"},
		{name: "preconf", o: Options{Preconf: "00:03.0"}, preconf: "00:03.0"},
		{name: "preconf domain", o: Options{Preconf: "0000:0A:1F.7"}, preconf: "0a:1f.7"},
		{name: "preconf bad fn", o: Options{Preconf: "00:03.8"}, err: "bus:device.function"},
		{name: "preconf bad dev", o: Options{Preconf: "00:20.0"}, err: "above 1f"},
		{name: "preconf word", o: Options{Preconf: "eth0"}, err: "bus:device.function"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			w, err := o.Check()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != "" && (err == nil || !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one naming %q", err, tt.err)
			}
			if tt.warn == "" && len(w) > 0 || tt.warn != "" && (len(w) != 1 || !strings.Contains(w[0], tt.warn)) {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
			if tt.preconf != "" && o.Preconf != tt.preconf {
				t.Errorf("preconf %q, want %q", o.Preconf, tt.preconf)
			}
		})
	}
}

func TestSelectDevices(t *testing.T) {
	nic := &drivers.Device{HardwareID: `PCI\VEN_8086&DEV_100E`, CompatibleIDs: []string{`PCI\VEN_8086&DEV_100E&SUBSYS_001E8086`}, Class: "Net"}
	nic2 := &drivers.Device{HardwareID: `PCI\VEN_8086&DEV_100F`, Class: "Net"}
	root := &drivers.Device{HardwareID: `ROOT\sanbootconf`, Class: "System"}
	devs := []*drivers.Device{nic, nic2, root}
	for _, tt := range []struct {
		ids  []string
		want []*drivers.Device
		used []bool
	}{
		{[]string{`pci\ven_8086&dev_100e`}, []*drivers.Device{nic}, []bool{true}},
		{[]string{`PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02`}, []*drivers.Device{nic}, []bool{true}},
		{[]string{`PCI\VEN_8086&DEV_100F&REV_01`}, []*drivers.Device{nic2}, []bool{true}},
		{[]string{`PCI\VEN_8086`}, nil, []bool{false}},
		{[]string{`PCI\VEN_8086&DEV_1234`, `ROOT\SANBOOTCONF`}, []*drivers.Device{root}, []bool{false, true}},
	} {
		sel, used := SelectDevices(devs, tt.ids)
		if len(sel) != len(tt.want) {
			t.Errorf("%q: selected %d devices, want %d", tt.ids, len(sel), len(tt.want))
			continue
		}
		for i := range sel {
			if sel[i] != tt.want[i] {
				t.Errorf("%q: device %d is %s", tt.ids, i, sel[i].HardwareID)
			}
		}
		for i := range used {
			if used[i] != tt.used[i] {
				t.Errorf("%q: used %v, want %v", tt.ids, used, tt.used)
			}
		}
	}

	o := Options{NIC: `PCI\VEN_8086&DEV_100F`}
	if _, err := o.CheckDevices(devs); err != nil {
		t.Error(err)
	}
	o.NIC = `ROOT\sanbootconf`
	if _, err := o.CheckDevices(devs); err == nil {
		t.Error("a root device accepted as the NIC")
	}
	o = Options{DHCP: true}
	if w, err := o.CheckDevices([]*drivers.Device{root}); err != nil || len(w) != 1 || !strings.Contains(w[0], "DHCP ignored") {
		t.Errorf("warnings %q, %v", w, err)
	}
}
