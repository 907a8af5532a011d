package integrate

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// TestSetupRegNIC chooses the adapter for the TCP/IP options by
// hardware ID and pre-creates its Enum\PCI instance (--preconf).
func TestSetupRegNIC(t *testing.T) {
	const full = `PCI\VEN_8086&DEV_100F&SUBSYS_11001AF4&REV_03`
	for _, tt := range []struct {
		name    string
		opts    Options
		enum    string // the Enum\PCI key wanted, under ControlSet001\Enum\PCI
		wantErr string
	}{
		{"by-id", Options{NIC: `pci\ven_8086&dev_100f`, Address: netip.MustParsePrefix("10.0.0.5/8")}, "", ""},
		{"preconf", Options{NIC: full, Preconf: "0000:00:03.0", DHCP: true}, `VEN_8086&DEV_100F&SUBSYS_11001AF4&REV_03\3&267a616a&0&18`, ""},
		{"preconf-short-id", Options{NIC: `PCI\VEN_8086&DEV_100F`, Preconf: "00:1f.7"}, `VEN_8086&DEV_100F\3&267a616a&0&FF`, ""},
		{"unknown", Options{NIC: `PCI\VEN_10EC&DEV_8139`}, "", `NIC PCI\VEN_10EC&DEV_8139 matches no integrated network adapter`},
		{"bridge", Options{Preconf: "02:00.0"}, "", "behind a bridge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			before := integratetest.Snapshot(t, root)
			p, err := planWith(t, DirFS(root), tt.opts, nicPackage(t, integratetest.I386))
			planned := err == nil
			if planned {
				_, err = p.Files()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrOptions) {
					t.Fatalf("err %v, want ErrOptions naming %q", err, tt.wantErr)
				}
				// A plan AddDriver refused is dropped; one that only
				// fails at the end refuses to commit.
				if planned {
					if err := p.Commit(); err == nil {
						t.Error("Commit succeeded")
					}
				}
				integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			hv := filepath.Join(root, "I386", "SETUPREG.HIV")
			f := openHive(t, hv)
			g1, g2 := guids(t, hv)
			iface := `ControlSet001\Services\Tcpip\Parameters\Interfaces\`
			dhcp, _ := hiveValue(f, iface+g1, "EnableDHCP")
			if dhcp != uint32(1) {
				t.Errorf("first adapter EnableDHCP = %v, want 1 (not chosen)", dhcp)
			}
			ip, _ := hiveValue(f, iface+g2, "IPAddress")
			wantIP := []string{"0.0.0.0"}
			if tt.opts.Address.IsValid() {
				wantIP = []string{tt.opts.Address.Addr().String()}
				mask, _ := hiveValue(f, iface+g2, "SubnetMask")
				if !reflect.DeepEqual(mask, []string{"255.0.0.0"}) {
					t.Errorf("SubnetMask %v", mask)
				}
			}
			if !reflect.DeepEqual(ip, wantIP) {
				t.Errorf("chosen adapter IPAddress = %v, want %v", ip, wantIP)
			}
			if tt.enum == "" {
				if k, err := f.Key(`ControlSet001\Enum\PCI`); err == nil {
					t.Errorf("Enum\\PCI created without preconf: %v", k.Name())
				}
				return
			}
			key := `ControlSet001\Enum\PCI\` + tt.enum
			rows := map[string]any{
				"ClassGUID":   NetClassGUID,
				"Driver":      NetClassGUID + `\0002`,
				"Service":     "E1000",
				"ConfigFlags": uint32(0),
				"DeviceDesc":  "Intel(R) PRO/1000 MT Dual Port Network Connection",
				"Class":       "Net",
				"Mfg":         "Intel",
			}
			for name, want := range rows {
				if got, _ := hiveValue(f, key, name); !reflect.DeepEqual(got, want) {
					t.Errorf("%s\\%s = %#v, want %#v", key, name, got, want)
				}
			}
			if _, ok := hiveValue(f, key, "HardwareID"); ok {
				t.Errorf("%s has a HardwareID", key)
			}
			short := !strings.Contains(tt.enum, "SUBSYS")
			warned := false
			for _, w := range p.Warnings {
				warned = warned || strings.Contains(w, "less specific")
			}
			if warned != short {
				t.Errorf("warnings %q: want a less-specific warning: %v", p.Warnings, short)
			}
		})
	}
}

// TestSetupRegInstances allocates class instances around existing ones
// in both hives: gaps are filled, non-numeric subkeys skipped.
func TestSetupRegInstances(t *testing.T) {
	root := makeMedia(t)
	hv := filepath.Join(root, "I386", "SETUPREG.HIV")
	e, err := hive.Edit(hv)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`0002`, `Properties`} {
		if err := e.CreateKey(`ControlSet001\` + netKey + `\` + k); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Save(hv); err != nil {
		t.Fatal(err)
	}
	sys := filepath.Join(root, "I386", "HIVESYS.INF")
	b, _ := os.ReadFile(sys)
	writeFile(t, sys, append(b, []byte(`HKLM,"SYSTEM\CurrentControlSet\`+netKey+`\0001","DriverDesc",0x00000000,"Other"`+"\r\n")...))
	p, err := integrate(t, root, nicPackage(t, integratetest.I386))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range p.hives.nics {
		got = append(got, n.classKey[len(netKey)+1:])
	}
	if want := []string{"0003", "0004"}; !reflect.DeepEqual(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
}

func TestGroupOrder(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{[]string{"System Reserved", "Boot Bus Extender", "System Bus Extender", "SCSI miniport", "Base", "NDIS Wrapper", "PNP_TDI", "NDIS"},
			[]string{"System Reserved", "Boot Bus Extender", "System Bus Extender", "NDIS Wrapper", "NDIS", "Base", "PNP_TDI", "SCSI miniport"}},
		{[]string{"A", "ndis"}, []string{"A", "NDIS Wrapper", "NDIS", "Base", "PNP_TDI"}},
		{nil, []string{"NDIS Wrapper", "NDIS", "Base", "PNP_TDI"}},
	} {
		got := groupOrder(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("groupOrder(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := groupOrder(got); !reflect.DeepEqual(again, got) {
			t.Errorf("groupOrder not idempotent: %q → %q", got, again)
		}
	}
}

// regINF exercises the registry directives: HKLM lines under
// CurrentControlSet, NOCLOBBER, APPEND and OVERWRITEONLY, a root outside
// the SYSTEM hive, dependencies, an event-log install, DDInstall and
// DDInstall.HW AddReg.
const regINF = `[Version]
Signature = "$Windows NT$"
Class     = System
ClassGUID = {4d36e97d-e325-11ce-bfc1-08002be10318}
Provider  = %Prov%
DriverVer = 05/01/2014,1.2.0.0

[Manufacturer]
%Prov% = Prov

[Prov]
%Desc% = Reg.Install, ROOT\regtest

[Reg.Install]
CopyFiles = Reg.Files
AddReg    = Reg.Soft

[Reg.Install.HW]
AddReg = Reg.HW

[Reg.Install.Services]
AddService = regtest, 2, Reg.Service, Reg.EventLog

[Reg.Service]
ServiceType    = 1
StartType      = 3
ErrorControl   = 1
ServiceBinary  = %12%\regtest.sys
LoadOrderGroup = Base
Dependencies   = NDIS, +PNP_TDI
AddReg         = Reg.Service.reg

[Reg.Service.reg]
HKLM,"SYSTEM\CurrentControlSet\Services\KSecDD","ErrorControl",0x00010003,3
HKLM,"SYSTEM\CurrentControlSet\Services\NDIS","Extra",0x00010008,"A","B"
HKLM,"SYSTEM\CurrentControlSet\Services\NDIS","Missing",0x00010021,5
HKLM,"SOFTWARE\Vendor","X",0,"y"
HKR,Parameters,Mode,0x00010001,2

[Reg.EventLog]
AddReg = Reg.EventLog.reg

[Reg.EventLog.reg]
HKR,,TypesSupported,0x00010001,7

[Reg.Soft]
HKR,,Soft,0,"s"

[Reg.HW]
HKR,,UpperFilters,0x00010000,"regflt"

[Reg.Files]
regtest.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
Prov = "Example"
Desc = "Registry Test Device"
`

func TestSetupRegAddReg(t *testing.T) {
	root := makeMedia(t)
	pkg := makePackage(t, pkgFile{"regtest.inf", []byte(integratetest.CRLF(regINF))}, pkgFile{"regtest.sys", integratetest.FakePE(integratetest.I386, "reg")})
	p, err := integrate(t, root, pkg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	sysClass := `Control\Class\` + systemClassGUID + `\0000`
	checkRegistry(t, filepath.Join(root, "I386", "SETUPREG.HIV"), filepath.Join(root, "I386", "HIVESYS.INF"), []regRow{
		{`Services\KSecDD`, "ErrorControl", uint32(1), false}, // NOCLOBBER keeps setupreg.hiv's
		{`Services\NDIS`, "Extra", []string{"A", "B"}, true},
		{`Services\NDIS`, "Missing", nil, false},
		{`Services\regtest`, "DependOnService", []string{"NDIS"}, true},
		{`Services\regtest`, "DependOnGroup", []string{"PNP_TDI"}, true},
		{`Services\regtest\Parameters`, "Mode", uint32(2), true},
		{`Services\EventLog\System\regtest`, "TypesSupported", uint32(7), true},
		{sysClass, "Soft", "s", true},
		{`Enum\Root\SYSTEM\0000`, "UpperFilters", []string{"regflt"}, true},
		{`Enum\Root\SYSTEM\0000`, "HardwareID", []string{`ROOT\regtest`}, true},
	})
	sys, _ := os.ReadFile(filepath.Join(root, "I386", "HIVESYS.INF"))
	// hivesys.inf had no KSecDD value: NOCLOBBER writes it there.
	if !bytes.Contains(sys, []byte(`HKLM,"SYSTEM\CurrentControlSet\Services\KSecDD","ErrorControl",0x00010001,3`)) {
		t.Error("hivesys.inf lacks KSecDD ErrorControl")
	}
	if bytes.Contains(sys, []byte(`"Missing"`)) || bytes.Contains(sys, []byte(`SOFTWARE\Vendor`)) {
		t.Error("hivesys.inf has an OVERWRITEONLY value or a SOFTWARE key")
	}
	warned := false
	for _, w := range p.Warnings {
		warned = warned || strings.Contains(w, `HKLM\SOFTWARE\Vendor is outside the SYSTEM hive`)
	}
	if !warned {
		t.Errorf("no warning for the SOFTWARE key: %q", p.Warnings)
	}

	done := integratetest.Snapshot(t, root)
	p2, err := integrate(t, root, pkg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p2.Edits {
		if e.Changed {
			t.Errorf("second run: %s changed", e)
		}
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
}

// TestSetupRegTrees covers trees other than XP media: Windows 2000 (no
// IPSec), a hivesys.inf with its own ServiceGroupOrder, a hive whose
// Select\Current names ControlSet002.
func TestSetupRegTrees(t *testing.T) {
	ownList := []string{"System Reserved", "Boot Bus Extender", "System Bus Extender", "SCSI miniport", "Base", "NDIS Wrapper", "PNP_TDI", "NDIS"}
	for _, tt := range []struct {
		name string
		tree func(testing.TB) string
		pkg  func(testing.TB) string
		cs   string
		rows []regRow
	}{
		{"2000", win2000, nic2000Package, "ControlSet001", []regRow{
			{`Services\Tcpip`, "Start", uint32(0), true},
			{`Services\Tcpip`, "DependOnService", nil, false},
			{`Services\IPSec`, "Start", uint32(1), false},
		}},
		{"own-group-order", func(t testing.TB) string {
			root := makeMedia(t)
			sys := filepath.Join(root, "I386", "HIVESYS.INF")
			l, _ := regLine(ccs+`Control\ServiceGroupOrder`, "List", drivers.RegMultiSZ, drivers.MultiData(ownList))
			b, _ := os.ReadFile(sys)
			writeFile(t, sys, append(b, []byte(l+"\r\n")...))
			return root
		}, func(t testing.TB) string { return nicPackage(t, integratetest.I386) }, "ControlSet001", []regRow{
			{`Control\ServiceGroupOrder`, "List", groupOrder(integratetest.XPServiceGroupOrder), false},
		}},
		{"control-set-2", func(t testing.TB) string {
			root := makeMedia(t)
			hv := filepath.Join(root, "I386", "SETUPREG.HIV")
			e, err := hive.Edit(hv)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetValue("Select", "Current", hive.DWORD, hive.EncodeDWORD(2)); err != nil {
				t.Fatal(err)
			}
			if err := e.CreateKey(`ControlSet002\Services`); err != nil {
				t.Fatal(err)
			}
			if err := e.Save(hv); err != nil {
				t.Fatal(err)
			}
			return root
		}, rootPackage, "ControlSet002", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.tree(t)
			p, err := integrate(t, root, tt.pkg(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			hv := filepath.Join(root, "I386", "SETUPREG.HIV")
			checkRegistry(t, hv, filepath.Join(root, "I386", "HIVESYS.INF"), tt.rows)
			f := openHive(t, hv)
			svc := "E1000"
			if tt.cs == "ControlSet002" {
				svc = "sanbootconf"
				if _, ok := hiveValue(f, `ControlSet001\Services\sanbootconf`, "Start"); ok {
					t.Error("wrote to ControlSet001")
				}
			}
			if v, _ := hiveValue(f, tt.cs+`\Services\`+svc, "Start"); v != uint32(0) {
				t.Errorf("%s\\Services\\%s Start = %v", tt.cs, svc, v)
			}
			for _, e := range p.Edits {
				if e.File == SetupRegHIV && !strings.HasPrefix(e.Section, tt.cs+`\`) {
					t.Errorf("edit outside %s: %s", tt.cs, e)
				}
			}
			if tt.name == "own-group-order" {
				l, _ := regLine(ccs+`Control\ServiceGroupOrder`, "List", drivers.RegMultiSZ, drivers.MultiData(groupOrder(ownList)))
				if sys, _ := os.ReadFile(filepath.Join(root, "I386", "HIVESYS.INF")); !bytes.Contains(sys, []byte(l+"\r\n")) {
					t.Errorf("hivesys.inf lacks its own list reordered: %s", l)
				}
			}
		})
	}
}
