// Package installedtest builds installed-Windows-XP-shaped trees for the
// tests of packages installed and bootcheck and of the xpboot command.
//
// The tree is shaped like XP Professional SP2 (x86) after setup: a
// WINDOWS directory with ntoskrnl.exe, the boot drivers' images in
// system32\drivers, a Driver Cache cabinet, and SYSTEM and SOFTWARE
// hives made with package hive. SYSTEM has two control sets (Select
// Current=1, LastKnownGood=2), XP's ServiceGroupOrder, GroupOrderList
// tags, the boot services of a stock installation, TCP/IP bound to an
// existing Intel PRO/1000 instance (Enum\PCI and its Net class instance
// with a NetCfgInstanceId), PSched bound above it (depending on Gpc), and
// the MS iSCSI initiator's user-mode service MSiSCSI (demand start).
package installedtest

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/integrate/cab"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// NICGUID is the NetCfgInstanceId of the tree's Intel adapter.
const NICGUID = "{6F1B2C3D-1A2B-4C5D-8E9F-0123456789AB}"

// NICID is the full hardware ID of the tree's Intel adapter.
const NICID = `PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02`

// NetClass is the Net class GUID.
const NetClass = "{4D36E972-E325-11CE-BFC1-08002BE10318}"

// IDEFiles are KB314082's driver files; the tree lacks intelide.sys,
// pciide.sys and pciidex.sys in system32\drivers, and holds all four in
// Driver Cache\i386\driver.cab.
var IDEFiles = []string{"atapi.sys", "intelide.sys", "pciide.sys", "pciidex.sys"}

type val struct {
	key, name string
	typ       hive.ValueType
	data      []byte
}

func dw(v uint32) []byte    { return hive.EncodeDWORD(v) }
func sz(s string) []byte    { return hive.EncodeString(s) }
func ms(s ...string) []byte { return hive.EncodeMultiString(s) }

func groupOrderList(tags ...uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(tags)))
	for _, t := range tags {
		b = binary.LittleEndian.AppendUint32(b, t)
	}
	return b
}

// controlSet returns the values of one XP SP2 control set.
func controlSet(cs string) []val {
	c := cs + `\Control\`
	s := cs + `\Services\`
	svc := func(name, group string, start, tag uint32, image string) []val {
		v := []val{
			{s + name, "Type", hive.DWORD, dw(1)},
			{s + name, "Start", hive.DWORD, dw(start)},
			{s + name, "ErrorControl", hive.DWORD, dw(1)},
		}
		if group != "" {
			v = append(v, val{s + name, "Group", hive.SZ, sz(group)})
		}
		if tag != 0 {
			v = append(v, val{s + name, "Tag", hive.DWORD, dw(tag)})
		}
		if image != "" {
			v = append(v, val{s + name, "ImagePath", hive.ExpandSZ, sz(image)})
		}
		return v
	}
	g := NICGUID
	vals := []val{
		{c + `ServiceGroupOrder`, "List", hive.MultiSZ, ms(integratetest.XPServiceGroupOrder...)},
		{c + `GroupOrderList`, "SCSI miniport", hive.Binary, groupOrderList(0x19, 0x1a)},
		{c + `GroupOrderList`, "Boot Bus Extender", hive.Binary, groupOrderList(1, 2, 3)},
		{c + `ProductOptions`, "ProductType", hive.SZ, sz("WinNT")},
		{c + `Session Manager\Memory Management`, "DisablePagingExecutive", hive.DWORD, dw(0)},
		{c + `CrashControl`, "CrashDumpEnabled", hive.DWORD, dw(3)},
		{c + `Class\` + NetClass, "", hive.SZ, sz("Network adapters")},
		{c + `Class\` + NetClass, "Class", hive.SZ, sz("Net")},
		{c + `Class\` + NetClass + `\0000`, "MatchingDeviceId", hive.SZ, sz("ms_l2tpminiport")},
		{c + `Class\` + NetClass + `\0000`, "NetCfgInstanceId", hive.SZ, sz("{0D5D1C8A-0000-4000-8000-000000000001}")},
		{c + `Class\` + NetClass + `\0001`, "MatchingDeviceId", hive.SZ, sz(`pci\ven_8086&dev_100e&subsys_001e8086`)},
		{c + `Class\` + NetClass + `\0001`, "DriverDesc", hive.SZ, sz("Intel(R) PRO/1000 MT Network Connection")},
		{c + `Class\` + NetClass + `\0001`, "NetCfgInstanceId", hive.SZ, sz(g)},
		{c + `Class\` + NetClass + `\0001`, "Characteristics", hive.DWORD, dw(0x84)},
		{c + `Class\` + NetClass + `\0001`, "BusType", hive.SZ, sz("5")},
		{c + `Class\` + NetClass + `\0001\Linkage`, "Export", hive.MultiSZ, ms(`\Device\` + g)},
		{c + `Class\` + NetClass + `\0001\Linkage`, "RootDevice", hive.MultiSZ, ms(g)},
		{c + `Class\` + NetClass + `\0001\Linkage`, "UpperBind", hive.MultiSZ, ms("Tcpip", "PSched")},
		{c + `Class\{4D36E97D-E325-11CE-BFC1-08002BE10318}`, "Class", hive.SZ, sz("System")},
		{c + `Class\{4D36E97D-E325-11CE-BFC1-08002BE10318}\0000`, "MatchingDeviceId", hive.SZ, sz(`acpi\pnp0c0c`)},
		{c + `Class\{4D36E96A-E325-11CE-BFC1-08002BE10318}`, "Class", hive.SZ, sz("hdc")},
		{c + `CriticalDeviceDatabase\primary_ide_channel`, "Service", hive.SZ, sz("atapi")},
		{c + `CriticalDeviceDatabase\primary_ide_channel`, "ClassGUID", hive.SZ, sz("{4D36E96A-E325-11CE-BFC1-08002BE10318}")},
		{cs + `\Enum\PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02\3&267a616a&0&18`, "Service", hive.SZ, sz("E1000")},
		{cs + `\Enum\PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02\3&267a616a&0&18`, "Driver", hive.SZ, sz(NetClass + `\0001`)},
		{cs + `\Enum\PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02\3&267a616a&0&18`, "ClassGUID", hive.SZ, sz(NetClass)},
		{cs + `\Enum\PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02\3&267a616a&0&18`, "HardwareID", hive.MultiSZ, ms(NICID, `PCI\VEN_8086&DEV_100E&SUBSYS_001E8086`, `PCI\VEN_8086&DEV_100E`)},
		{cs + `\Enum\Root\SYSTEM\0000`, "HardwareID", hive.MultiSZ, ms(`ROOT\UPDATE`)},
		{cs + `\Enum\Root\SYSTEM\0000`, "Service", hive.SZ, sz("Update")},
		{s + `Tcpip\Linkage`, "Bind", hive.MultiSZ, ms(`\Device\NdisWanIp`, `\Device\`+g)},
		{s + `Tcpip\Linkage`, "Export", hive.MultiSZ, ms(`\Device\Tcpip_NdisWanIp`, `\Device\Tcpip_`+g)},
		{s + `Tcpip\Linkage`, "Route", hive.MultiSZ, ms(`"NdisWanIp"`, `"`+g+`"`)},
		{s + `Tcpip\Parameters`, "Hostname", hive.SZ, sz("xp-pc")},
		{s + `Tcpip\Parameters\Adapters\` + g, "IpConfig", hive.MultiSZ, ms(`Tcpip\Parameters\Interfaces\` + g)},
		{s + `Tcpip\Parameters\Interfaces\` + g, "EnableDHCP", hive.DWORD, dw(1)},
		{s + `Tcpip\Parameters\Interfaces\` + g, "IPAddress", hive.MultiSZ, ms("0.0.0.0")},
		{s + `Tcpip\Parameters\Interfaces\` + g, "SubnetMask", hive.MultiSZ, ms("0.0.0.0")},
		{s + `Tcpip\Parameters\Interfaces\` + g, "DefaultGateway", hive.MultiSZ, ms()},
		{s + `Tcpip`, "DependOnService", hive.MultiSZ, ms("IPSec")},
		{s + `NetBT\Linkage`, "Bind", hive.MultiSZ, ms(`\Device\Tcpip_` + g)},
		{s + `PSched\Linkage`, "Bind", hive.MultiSZ, ms(`\Device\` + g)},
		{s + `PSched`, "DependOnService", hive.MultiSZ, ms("Gpc")},
		{s + `MSiSCSI`, "Type", hive.DWORD, dw(0x10)},
		{s + `MSiSCSI`, "Start", hive.DWORD, dw(3)},
		{s + `MSiSCSI`, "ImagePath", hive.ExpandSZ, sz(`%SystemRoot%\system32\iscsiexe.exe`)},
	}
	for _, sv := range [][]val{
		svc("ACPI", "Boot Bus Extender", 0, 1, `system32\DRIVERS\ACPI.sys`),
		svc("PCI", "Boot Bus Extender", 0, 3, `system32\DRIVERS\pci.sys`),
		svc("PartMgr", "System Bus Extender", 0, 0, `system32\DRIVERS\partmgr.sys`),
		svc("atapi", "SCSI miniport", 0, 0x19, `system32\DRIVERS\atapi.sys`),
		svc("Disk", "SCSI Class", 0, 0, `system32\DRIVERS\disk.sys`),
		svc("KSecDD", "Base", 0, 0, ""),
		svc("NDIS", "NDIS Wrapper", 0, 0, `system32\drivers\ndis.sys`),
		svc("Tcpip", "PNP_TDI", 1, 0, `system32\DRIVERS\tcpip.sys`),
		svc("IPSec", "PNP_TDI", 1, 0, `system32\DRIVERS\ipsec.sys`),
		svc("NetBT", "PNP_TDI", 1, 0, `system32\DRIVERS\netbt.sys`),
		svc("Gpc", "PNP_TDI", 3, 0, `system32\DRIVERS\msgpc.sys`),
		svc("PSched", "PSched", 3, 0, `system32\DRIVERS\psched.sys`),
		svc("E1000", "NDIS", 3, 0, `system32\DRIVERS\e1000325.sys`),
		svc("Update", "", 1, 0, `system32\DRIVERS\update.sys`),
	} {
		vals = append(vals, sv...)
	}
	return vals
}

func build(t testing.TB, vals []val) []byte {
	t.Helper()
	e, err := hive.New(3)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		if err := e.CreateKey(v.key); err != nil {
			t.Fatal(err)
		}
		if err := e.SetValue(v.key, v.name, v.typ, v.data); err != nil {
			t.Fatalf("%s\\%s: %v", v.key, v.name, err)
		}
	}
	b, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SystemHive returns the SYSTEM hive.
func SystemHive(t testing.TB) []byte {
	t.Helper()
	vals := []val{
		{"Select", "Current", hive.DWORD, dw(1)},
		{"Select", "Default", hive.DWORD, dw(1)},
		{"Select", "LastKnownGood", hive.DWORD, dw(2)},
		{"Select", "Failed", hive.DWORD, dw(0)},
	}
	vals = append(vals, controlSet("ControlSet001")...)
	vals = append(vals, controlSet("ControlSet002")...)
	return build(t, vals)
}

// SoftwareHive returns the SOFTWARE hive of XP SP2 (version 5.1).
func SoftwareHive(t testing.TB, version string) []byte {
	t.Helper()
	const cv = `Microsoft\Windows NT\CurrentVersion`
	return build(t, []val{
		{cv, "CurrentVersion", hive.SZ, sz(version)},
		{cv, "CSDVersion", hive.SZ, sz("Service Pack 2")},
		{cv, "CurrentBuildNumber", hive.SZ, sz("2600")},
		{cv, "ProductName", hive.SZ, sz("Microsoft Windows XP")},
		{`Microsoft\Windows\CurrentVersion`, "DevicePath", hive.ExpandSZ, sz(`%SystemRoot%\inf`)},
	})
}

// DriverCab returns a cabinet holding KB314082's four IDE drivers, like
// Driver Cache\i386\driver.cab.
func DriverCab(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cab.NewWriter(&buf)
	for _, f := range append([]string{"cdrom.sys"}, IDEFiles...) {
		fw, err := w.CreateHeader(&cab.FileHeader{Name: f, Modified: time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC), Attrs: cab.AttrArchive})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(integratetest.FakePE(integratetest.I386, "cab:"+f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Files returns every file of the tree by slash path.
func Files(t testing.TB) map[string][]byte {
	t.Helper()
	m := map[string][]byte{
		"WINDOWS/system32/ntoskrnl.exe":         integratetest.FakePE(integratetest.I386, "ntoskrnl"),
		"WINDOWS/system32/config/SYSTEM":        SystemHive(t),
		"WINDOWS/system32/config/SOFTWARE":      SoftwareHive(t, "5.1"),
		"WINDOWS/Driver Cache/i386/driver.cab":  DriverCab(t),
		"WINDOWS/system32/iscsiexe.exe":         integratetest.FakePE(integratetest.I386, "iscsiexe"),
		"WINDOWS/system32/drivers/e1000325.sys": integratetest.FakePE(integratetest.I386, "e1000 old"),
		"boot.ini":                              []byte("[boot loader]\r\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n"),
	}
	for _, f := range []string{"acpi", "pci", "partmgr", "atapi", "disk", "classpnp", "ksecdd", "ndis", "tcpip", "ipsec", "netbt", "msgpc", "psched", "update"} {
		m["WINDOWS/system32/drivers/"+f+".sys"] = integratetest.FakePE(integratetest.I386, f)
	}
	return m
}

// WriteXP writes the tree under the directory root.
func WriteXP(t testing.TB, root string) {
	t.Helper()
	for name, data := range Files(t) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Dirs lists the tree's directories, parents first.
func Dirs(files map[string][]byte) []string {
	seen := map[string]bool{}
	var out []string
	for name := range files {
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if strings.Count(out[j], "/") < strings.Count(out[i], "/") || (strings.Count(out[j], "/") == strings.Count(out[i], "/") && out[j] < out[i]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
