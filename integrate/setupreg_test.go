package integrate

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

func openHive(t testing.TB, name string) *hive.File {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if probs, err := hive.Check(bytes.NewReader(b), int64(len(b))); err != nil || len(probs) > 0 {
		t.Fatalf("%s: hive check: %v %v", name, err, probs)
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// regValue reads a value of f as Go data: string, uint32 or []string.
func hiveValue(f *hive.File, key, name string) (any, bool) {
	k, err := f.Key(key)
	if err != nil {
		return nil, false
	}
	v, err := k.Value(name)
	if err != nil {
		return nil, false
	}
	switch v.Type {
	case hive.SZ, hive.ExpandSZ:
		return hive.DecodeString(v.Data), true
	case hive.DWORD:
		return uint32(v.Data[0]) | uint32(v.Data[1])<<8 | uint32(v.Data[2])<<16 | uint32(v.Data[3])<<24, true
	case hive.MultiSZ:
		// Each string ends with a NUL, the list with another one: the
		// data of [""] is two NULs, which DecodeMultiString reads as [].
		u := utf16.Decode(unitsLE(v.Data))
		if n := len(u); n > 0 && u[n-1] == 0 {
			u = u[:n-1]
		}
		ss := []string{}
		start := 0
		for i, c := range u {
			if c == 0 {
				ss = append(ss, string(u[start:i]))
				start = i + 1
			}
		}
		return ss, true
	}
	return v.Data, true
}

func unitsLE(b []byte) []uint16 {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return u
}

// regRow is one value the integration must leave in setupreg.hiv; both
// rows must also be in hivesys.inf. A nil want means the value must be
// absent.
type regRow struct {
	key, name string // key under ControlSet001
	want      any    // string (REG_SZ), uint32, []string (REG_MULTI_SZ)
	both      bool
}

func regType(v any) uint32 {
	switch v.(type) {
	case uint32:
		return drivers.RegDWORD
	case []string:
		return drivers.RegMultiSZ
	}
	return drivers.RegSZ
}

// regData types a table's expected value for regLine.
func regData(v any) drivers.RegData {
	switch v := v.(type) {
	case uint32:
		return drivers.DWORDData(v)
	case []string:
		return drivers.MultiData(v)
	case string:
		return drivers.StringData(v)
	}
	return drivers.RegData{}
}

const (
	systemClassGUID = "{4D36E97D-E325-11CE-BFC1-08002BE10318}"
	netKey          = `Control\Class\` + NetClassGUID
)

// wantRegistry lists what integrating nicPackage, rootPackage and
// scsiPackage into an XP tree puts in the hives; g1 and g2 are the
// NetCfgInstanceIds of the two E1000 models.
func wantRegistry(g1, g2 string, opts Options) []regRow {
	ip, mask, gw, dhcp := "0.0.0.0", "0.0.0.0", "", uint32(0)
	if opts.Address.IsValid() {
		ip, mask = opts.Address.Addr().String(), "255.255.255.0"
	}
	if opts.Gateway.IsValid() {
		gw = opts.Gateway.String()
	}
	if opts.DHCP {
		dhcp = 1
	}
	rows := []regRow{
		// Services: boot start, no ImagePath (text mode loads <svc>.sys).
		{`Services\E1000`, "DisplayName", "Intel(R) PRO/1000 Adapter Driver", false},
		{`Services\E1000`, "ErrorControl", uint32(1), false},
		{`Services\E1000`, "Group", "NDIS", false},
		{`Services\E1000`, "Start", uint32(0), false},
		{`Services\E1000`, "Type", uint32(1), false},
		{`Services\E1000`, "ImagePath", nil, false},
		{`Services\sanbootconf`, "Group", "Base", false},
		{`Services\sanbootconf`, "Start", uint32(0), false},
		{`Services\sanbootconf\Parameters`, "BootText", uint32(1), true},
		{`Services\vscsi`, "Group", "SCSI miniport", false},
		{`Services\vscsi`, "Start", uint32(0), false},
		// Class instances: 0000 was there, the two models take 0001, 0002.
		{netKey + `\0000`, "DriverDesc", "AMD PCNET Family PCI Ethernet Adapter", false},
		{netKey + `\0001`, "MatchingDeviceId", `pci\ven_8086&dev_100e`, true},
		{netKey + `\0001`, "DriverDesc", "Intel(R) PRO/1000 MT Network Connection", true},
		{netKey + `\0001`, "DriverVersion", "8.10.3.0", true},
		{netKey + `\0001`, "ProviderName", "Intel", true},
		{netKey + `\0001`, "NetCfgInstanceId", g1, true},
		{netKey + `\0001`, "BusType", "5", true},
		{netKey + `\0001`, "Characteristics", uint32(0x84), true},
		{netKey + `\0001\Ndi`, "Service", "E1000", true},
		{netKey + `\0001\Linkage`, "Export", []string{`\Device\` + g1}, true},
		{netKey + `\0001\Linkage`, "RootDevice", []string{g1}, true},
		{netKey + `\0001\Linkage`, "UpperBind", []string{"Tcpip"}, true},
		{netKey + `\0002`, "MatchingDeviceId", `pci\ven_8086&dev_100f`, true},
		{netKey + `\0002`, "NetCfgInstanceId", g2, true},
		{`Control\Class\` + systemClassGUID + `\0000`, "MatchingDeviceId", `root\sanbootconf`, true},
		{`Control\Class\` + systemClassGUID + `\0000`, "DriverDesc", "SAN Boot Configuration Driver", true},
		{`Control\Class\` + SCSIAdapterClassGUID + `\0000`, "MatchingDeviceId", `pci\ven_1000&dev_0030`, true},
		// The root-enumerated device.
		{`Enum\Root\SYSTEM\0000`, "ClassGUID", systemClassGUID, true},
		{`Enum\Root\SYSTEM\0000`, "DeviceDesc", "SAN Boot Configuration Driver", true},
		{`Enum\Root\SYSTEM\0000`, "Driver", systemClassGUID + `\0000`, true},
		{`Enum\Root\SYSTEM\0000`, "Service", "sanbootconf", true},
		{`Enum\Root\SYSTEM\0000`, "ConfigFlags", uint32(0), true},
		{`Enum\Root\SYSTEM\0000`, "HardwareID", []string{`ROOT\sanbootconf`}, true},
		{`Enum\Root\SYSTEM\0000`, "Mfg", "iPXE", true},
		{`Enum\Root\SYSTEM\0000`, "Class", "System", true},
		// The TCP/IP boot-start set (research §7.2).
		{`Services\KSecDD`, "Start", uint32(0), false},
		{`Services\KSecDD`, "Group", "Base", false},
		{`Services\NDIS`, "Start", uint32(0), false},
		{`Services\NDIS`, "Group", "NDIS Wrapper", false},
		{`Services\IPSec`, "Start", uint32(0), true},
		{`Services\IPSec`, "Group", "PNP_TDI", true},
		{`Services\Tcpip`, "Start", uint32(0), true},
		{`Services\Tcpip`, "Type", uint32(1), true},
		{`Services\Tcpip`, "DependOnService", []string{"IPSec"}, true},
		{`Control\Session Manager\Memory Management`, "DisablePagingExecutive", uint32(1), true},
		{`Services\Tcpip\Parameters`, "DisableDHCPMediaSense", uint32(1), true},
		{`Control\ServiceGroupOrder`, "List", groupOrder(integratetest.XPServiceGroupOrder), true},
		// Per adapter (research §7.4); the first gets the options.
		{`Services\Tcpip\Parameters\Adapters\` + g1, "IpConfig", []string{`Tcpip\Parameters\Interfaces\` + g1}, true},
		{`Services\Tcpip\Parameters\Interfaces\` + g1, "IPAddress", []string{ip}, true},
		{`Services\Tcpip\Parameters\Interfaces\` + g1, "SubnetMask", []string{mask}, true},
		{`Services\Tcpip\Parameters\Interfaces\` + g1, "DefaultGateway", []string{gw}, true},
		{`Services\Tcpip\Parameters\Interfaces\` + g1, "EnableDHCP", dhcp, true},
		{`Services\Tcpip\Parameters\Interfaces\` + g2, "IPAddress", []string{"0.0.0.0"}, true},
		{`Services\Tcpip\Parameters\Interfaces\` + g2, "EnableDHCP", uint32(1), true},
		{`Services\Tcpip\Linkage`, "Bind", []string{`\DEVICE\` + g1, `\DEVICE\` + g2}, true},
		{`Services\Tcpip\Linkage`, "Export", []string{`\DEVICE\TCPIP_` + g1, `\DEVICE\TCPIP_` + g2}, true},
		{`Services\Tcpip\Linkage`, "Route", []string{`"` + g1 + `"`, `"` + g2 + `"`}, true},
	}
	return rows
}

// checkRegistry asserts rows against the setupreg.hiv at hivePath and
// the hivesys.inf at sysPath.
func checkRegistry(t *testing.T, hivePath, sysPath string, rows []regRow) {
	t.Helper()
	f := openHive(t, hivePath)
	sys, err := os.ReadFile(sysPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		key := `ControlSet001\` + r.key
		got, ok := hiveValue(f, key, r.name)
		switch {
		case r.want == nil && ok:
			t.Errorf("setupreg.hiv %s\\%s = %#v, want none", key, r.name, got)
		case r.want != nil && !ok:
			t.Errorf("setupreg.hiv %s\\%s missing, want %#v", key, r.name, r.want)
		case r.want != nil && !reflect.DeepEqual(got, r.want):
			t.Errorf("setupreg.hiv %s\\%s = %#v, want %#v", key, r.name, got, r.want)
		}
		if !r.both {
			continue
		}
		l, err := regLine(ccs+r.key, r.name, regType(r.want), regData(r.want))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(sys, []byte(l+"\r\n")) {
			t.Errorf("hivesys.inf lacks %s", l)
		}
	}
}

// guids returns the NetCfgInstanceIds of the two E1000 class instances.
func guids(t *testing.T, hivePath string) (string, string) {
	t.Helper()
	f := openHive(t, hivePath)
	g1, _ := hiveValue(f, `ControlSet001\`+netKey+`\0001`, "NetCfgInstanceId")
	g2, _ := hiveValue(f, `ControlSet001\`+netKey+`\0002`, "NetCfgInstanceId")
	s1, _ := g1.(string)
	s2, _ := g2.(string)
	if !isGUID(s1) || !isGUID(s2) || s1 == s2 || s1 != strings.ToUpper(s1) {
		t.Fatalf("NetCfgInstanceIds %q, %q: want two upper-case GUIDs", s1, s2)
	}
	return s1, s2
}

func TestSetupRegMedia(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"defaults", Options{}},
		{"static", Options{Address: netip.MustParsePrefix("192.168.1.50/24"), Gateway: netip.MustParseAddr("192.168.1.1")}},
		{"dhcp", Options{DHCP: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			pkgs := []string{nicPackage(t, integratetest.I386), rootPackage(t), scsiPackage(t)}
			p, err := planWith(t, DirFS(root), tt.opts, pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			hv := filepath.Join(root, "I386", "SETUPREG.HIV")
			g1, g2 := guids(t, hv)
			if len(p.hives.nics) != 2 || p.hives.nics[0].guid != g1 || p.hives.nics[1].guid != g2 ||
				p.hives.nics[0].classKey != netKey+`\0001` {
				t.Errorf("p.hives.nics = %+v", p.hives.nics)
			}
			checkRegistry(t, hv, filepath.Join(root, "I386", "HIVESYS.INF"), wantRegistry(g1, g2, tt.opts))
			if tt.name == "defaults" {
				hivexCheck(t, hv, g1)
			}

			// The setupreg.hiv edits are reported; those the placeholder
			// already had (NDIS's group …) as unchanged.
			n := 0
			for _, e := range p.Edits {
				if e.File == SetupRegHIV && e.Changed {
					n++
				}
				if e.File == SetupRegHIV && e.Section == `ControlSet001\Services\NDIS` && e.Key == "Group" && e.Changed {
					t.Errorf("first run: %s reported as a change", e)
				}
			}
			if n < 50 {
				t.Errorf("%d setupreg.hiv changes reported", n)
			}

			// The second run finds everything and writes nothing.
			done := integratetest.Snapshot(t, root)
			p2, err := planWith(t, DirFS(root), tt.opts, pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			fc, err := p2.Files()
			if err != nil {
				t.Fatal(err)
			}
			seen := false
			for _, f := range fc {
				if f.Changed {
					t.Errorf("second run changes %s", f.Path)
				}
				seen = seen || (f.Kind == KindHive && strings.EqualFold(f.Path, "I386/SETUPREG.HIV"))
			}
			if !seen {
				t.Errorf("second run: Files() lacks setupreg.hiv: %+v", fc)
			}
			for _, e := range p2.Edits {
				if e.Changed && (e.File == SetupRegHIV || e.File == HiveSysINF) {
					t.Errorf("second run: %s changed", e)
				}
			}
			if d, _ := p2.Diff(); d != "" {
				t.Errorf("second run diff:\n%s", d)
			}
			if err := p2.Commit(); err != nil {
				t.Fatal(err)
			}
			integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
			if h1, h2 := guids(t, hv); h1 != g1 || h2 != g2 {
				t.Errorf("second run NetCfgInstanceIds %s %s, want %s %s", h1, h2, g1, g2)
			}
		})
	}
}

// hivexCheck reads the integrated setupreg.hiv with hivex: hivexget for
// single values, a hivexsh script for a whole key.
func hivexCheck(t *testing.T, hv, g1 string) {
	t.Helper()
	get := peertest.Need(t, "hivexget", "libhivex-bin")
	sgo := strings.Join(groupOrder(integratetest.XPServiceGroupOrder), "\n")
	for _, q := range []struct{ key, name, want string }{
		{`ControlSet001\Services\E1000`, "Start", "0"},
		{`ControlSet001\Services\E1000`, "Group", "NDIS"},
		{`ControlSet001\Services\Tcpip`, "DependOnService", "IPSec"},
		{`ControlSet001\Services\KSecDD`, "Group", "Base"},
		{`ControlSet001\Control\Class\` + NetClassGUID + `\0001`, "NetCfgInstanceId", g1},
		{`ControlSet001\Control\Class\` + NetClassGUID + `\0001`, "Characteristics", "132"},
		{`ControlSet001\Control\Class\` + NetClassGUID + `\0001\Linkage`, "UpperBind", "Tcpip"},
		{`ControlSet001\Enum\Root\SYSTEM\0000`, "Driver", systemClassGUID + `\0000`},
		{`ControlSet001\Control\ServiceGroupOrder`, "List", sgo},
		{`ControlSet001\Services\Tcpip\Parameters\Interfaces\` + g1, "IPAddress", "0.0.0.0"},
	} {
		out := peertest.Run(t, time.Minute, get, hv, q.key, q.name)
		if got := strings.TrimRight(string(out), "\n"); got != q.want {
			t.Errorf("hivexget %s %s = %q, want %q", q.key, q.name, got, q.want)
		}
	}
	sh := peertest.Need(t, "hivexsh", "libhivex-bin")
	script := filepath.Join(t.TempDir(), "lsval")
	writeFile(t, script, []byte("cd ControlSet001\\Enum\\Root\\SYSTEM\\0000\nlsval\n"))
	out := string(peertest.Run(t, time.Minute, sh, "-f", script, hv))
	hex := func(b []byte) string {
		h := make([]string, len(b))
		for i, c := range b {
			h[i] = fmt.Sprintf("%02x", c)
		}
		return strings.Join(h, ",")
	}
	for _, want := range []string{
		`"ClassGUID"="` + systemClassGUID + `"`,
		`"Service"="sanbootconf"`,
		`"ConfigFlags"=dword:00000000`,
		`"HardwareID"=hex(7):` + hex(hive.EncodeMultiString([]string{`ROOT\sanbootconf`})),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("hivexsh lsval lacks %s:\n%s", want, out)
		}
	}
}

// TestSetupRegLocalSource checks the copy in $WIN_NT$.~BT: written with
// the setup directory's hive, created when missing, and left alone by a
// second run.
func TestSetupRegLocalSource(t *testing.T) {
	for _, tt := range []struct {
		name  string
		prep  func(t *testing.T, bt string)
		btNew bool
	}{
		{"both", func(*testing.T, string) {}, false},
		{"no-bt-copy", func(t *testing.T, bt string) { os.Remove(filepath.Join(bt, "SETUPREG.HIV")) }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeLocalSource(t)
			bt := filepath.Join(root, "$WIN_NT$.~BT")
			tt.prep(t, bt)
			pkgs := []string{nicPackage(t, integratetest.I386), rootPackage(t)}
			p, err := integrate(t, root, pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			fc, err := p.Files()
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, f := range fc {
				if f.Kind == KindHive {
					actions = append(actions, f.Path+" "+f.Action)
				}
			}
			wantBT := "edit"
			if tt.btNew {
				wantBT = "create"
			}
			if want := []string{"$WIN_NT$.~LS/I386/SETUPREG.HIV edit", "$WIN_NT$.~BT/SETUPREG.HIV " + wantBT}; !reflect.DeepEqual(actions, want) {
				t.Errorf("hive outputs %q, want %q", actions, want)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			ls := filepath.Join(root, "$WIN_NT$.~LS", "I386", "SETUPREG.HIV")
			a, _ := os.ReadFile(ls)
			b, _ := os.ReadFile(filepath.Join(bt, "SETUPREG.HIV"))
			if !bytes.Equal(a, b) {
				t.Error("~BT\\SETUPREG.HIV differs from the setup directory's")
			}
			f := openHive(t, filepath.Join(bt, "SETUPREG.HIV"))
			if v, _ := hiveValue(f, `ControlSet001\Services\E1000`, "Start"); v != uint32(0) {
				t.Errorf("~BT hive: E1000 Start = %v", v)
			}
			done := integratetest.Snapshot(t, root)
			p2, err := integrate(t, root, pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := p2.Diff(); d != "" {
				t.Errorf("second run diff:\n%s", d)
			}
			if err := p2.Commit(); err != nil {
				t.Fatal(err)
			}
			integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))

			// A ~BT copy that lacks the integration (replaced by an
			// older one) gets the setup directory's hive again.
			placeholderHive(t, filepath.Join(bt, "SETUPREG.HIV"))
			p3, err := integrate(t, root, pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			if err := p3.Commit(); err != nil {
				t.Fatal(err)
			}
			after := integratetest.Snapshot(t, root)
			if k := "$WIN_NT$.~LS/I386/SETUPREG.HIV"; after[k] != done[k] {
				t.Error("third run rewrote the setup directory's hive")
			}
			if b, _ := os.ReadFile(filepath.Join(bt, "SETUPREG.HIV")); !bytes.Equal(b, a) {
				t.Error("third run: ~BT copy not restored")
			}
		})
	}
}

// TestSetupRegRefused corrupts setupreg.hiv at known offsets: the
// integration fails naming the file, and nothing is written.
func TestSetupRegRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mess   func(b []byte) []byte
		format bool // the error matches hive.ErrFormat
		msg    string
	}{
		{"checksum", func(b []byte) []byte { b[0x1fc] ^= 0xff; return b }, true, "checksum"},
		{"dirty", func(b []byte) []byte { b[8]++; return b }, true, "sequence numbers differ"},
		{"hbin", func(b []byte) []byte { copy(b[0x1000:], "xxxx"); return b }, true, "hbin"},
		{"truncated", func(b []byte) []byte { return b[:0x1800] }, true, ""},
		{"not-a-hive", func(b []byte) []byte { return []byte("not a hive") }, true, ""},
		{"no-control-set", func([]byte) []byte {
			e, _ := hive.New(3)
			b, _ := e.Bytes()
			return b
		}, false, "has no ControlSet001 key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			hv := filepath.Join(root, "I386", "SETUPREG.HIV")
			b, err := os.ReadFile(hv)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, hv, tt.mess(b))
			before := integratetest.Snapshot(t, root)
			p, err := integrate(t, root, rootPackage(t), nicPackage(t, integratetest.I386))
			if err == nil {
				err = p.Commit()
			}
			if err == nil || !strings.Contains(err.Error(), "I386/SETUPREG.HIV") || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v, want one naming I386/SETUPREG.HIV and %q", err, tt.msg)
			}
			if tt.format && !errors.Is(err, hive.ErrFormat) {
				t.Errorf("err %v does not match hive.ErrFormat", err)
			}
			integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
		})
	}
}

// TestSetupRegDiff is --dry-run: a key/value diff of the hive, nothing
// written.
func TestSetupRegDiff(t *testing.T) {
	root := makeMedia(t)
	before := integratetest.Snapshot(t, root)
	p, err := integrate(t, root, nicPackage(t, integratetest.I386), rootPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Diff()
	if err != nil {
		t.Fatal(err)
	}
	g := p.hives.nics[0].guid
	for _, want := range []string{
		"--- a/I386/SETUPREG.HIV\n+++ b/I386/SETUPREG.HIV\n",
		"+ ControlSet001\\Services\\E1000\\\n",
		"+ ControlSet001\\Services\\E1000\\Start = dword:0\n",
		"+ ControlSet001\\Services\\E1000\\Group = sz:\"NDIS\"\n",
		"~ ControlSet001\\Services\\Tcpip\\Start = dword:0 (was dword:1)\n",
		"+ ControlSet001\\Services\\Tcpip\\DependOnService = multi_sz:\"IPSec\"\n",
		"+ ControlSet001\\Control\\Class\\" + NetClassGUID + "\\0001\\NetCfgInstanceId = sz:\"" + g + "\"\n",
		"+ ControlSet001\\Enum\\Root\\SYSTEM\\0000\\HardwareID = multi_sz:\"ROOT\\sanbootconf\"\n",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if strings.Contains(d, "NDIS Wrapper\" (was") {
		t.Error("diff shows an unchanged value")
	}
	integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
	var sg string
	for _, e := range p.Edits {
		if e.File == SetupRegHIV && e.Section == `ControlSet001\Services\E1000` && e.Key == "Start" {
			sg = e.String()
		}
	}
	if want := `setupreg.hiv [ControlSet001\Services\E1000] set Start = dword:0`; sg != want {
		t.Errorf("edit %q, want %q", sg, want)
	}
}
