package integrate

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/hive"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// crlf turns a Go literal with \n into the CRLF text setup files use.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// xpTxtSetup is txtsetup.sif of XP Professional SP2, trimmed to a few
// lines per section but with the real section set and its EOF mark.
var xpTxtSetup = crlf(`[Version]
signature = "$Windows NT$"
LayoutFile = "layout.inf"

[SetupData]
ProductType = 0
MajorVersion = 5
MinorVersion = 1
Architecture = i386
DefaultPath = \WINDOWS
OsLoadOptions = "/noguiboot /fastdetect"
LoadIdentifier = %wks_id%
SetupSourceDevice = \device\harddisk0\partition1

[SourceDisksNames.x86]
1 = "%cdname%",%cdtagfilei%,,\i386
100 = "%spcdname%",%spcdtagfilei%,,\i386

[SourceDisksFiles]
acpi.sys = 100,,,,,,3_,4,1,,,1,4
pci.sys = 100,,,,,,3_,4,1,,,1,4

[SourceDisksFiles.x86]
ntoskrnl.exe = 100,,,,,,3_,2,0,0,,1,2
ndis.sys = 100,,,,,,3_,4,1,,,1,4
tcpip.sys = 100,,,,,,_x,4,1,,,1,4
e100b325.sys = 100,,,,,,,4,1,,,1,4

[WinntDirectories]
1 = "\"
2 = system32
4 = system32\drivers
45 = Temp

[FileFlags]
oembios.bin = 16

[HardwareIdsDatabase]
PCI\VEN_8086&DEV_1229 = "e100b"
PCI\VEN_8086&DEV_7111 = "pciide"

[BootBusExtenders.Load]
pci = pci.sys
acpi = acpi.sys

[BootBusExtenders]
pci = "PCI Bus Driver",files.pci,pci
acpi = "ACPI Plug & Play Bus Driver",files.acpi,acpi

[BusExtenders.Load]
pcmcia = pcmcia.sys

[BusExtenders]
pcmcia = "PCMCIA Support",files.pcmcia,pcmcia

[InputDevicesSupport.Load]
usbehci = usbehci.sys

[Keyboard.Load]
kbdclass = kbdclass.sys

[Keyboard]
STANDARD = "XT, AT, or Enhanced Keyboard (83-104 keys)",files.i8042,i8042prt

[SCSI.Load]
atapi = atapi.sys,4

[SCSI]
atapi = "Standard IDE/ESDI Hard Disk Controller"

[DiskDrivers.Load]
dmboot = dmboot.sys

[DiskDrivers]
dmboot = "Dynamic Volume Support (dmboot)"

[ScsiClass.Load]
cdrom = cdrom.sys

[FileSystems.Load]
fat = fastfat.sys
ntfs = ntfs.sys

[CdRomDrivers.Load]
cdfs = cdfs.sys

[CdRomDrivers]
cdfs = "CD-ROM File System"

[Strings]
cdname = "Windows XP Professional CD"
cdtagfilei = "\win51ip"
spcdname = "Windows XP Professional Service Pack 2 CD"
spcdtagfilei = "\win51ip.sp2"
wks_id = "Windows XP Professional"
`) + "\x1a"

var xpDosNet = crlf(`[Version]
signature="$Windows NT$"
DriverVer=07/01/2001,5.1.2600.2180

[Miscellaneous]
ProductType = 0
MinimumMemory = 50331648

[Directories]
d1 = \i386
d2 = \i386\lang

[Files]
d1,acpi.sys
d1,ndis.sy_

[FloppyFiles.0]
d1,ntdetect.com

[FloppyFiles.1]
d1,ntkrnlmp.ex_

[OptionalSrcDirs]
lang
`)

var xpHiveSys = crlf(`[Version]
Signature = "$Windows NT$"

[AddReg]
HKLM,"SYSTEM\CurrentControlSet\Control\ProductOptions","ProductType",0x00000000,"WinNT"
HKLM,"SYSTEM\CurrentControlSet\Control\Windows","CSDVersion",0x00010001,0x200
HKLM,"SYSTEM\CurrentControlSet\Services\Tcpip","Start",0x00010001,1
`)

var xpHiveSft = crlf(`[Version]
Signature = "$Windows NT$"

[AddReg]
HKLM,"SOFTWARE\Microsoft\Windows NT\CurrentVersion","ProductName",0x00000000,"Microsoft Windows XP"
HKLM,"SOFTWARE\Microsoft\Windows NT\CurrentVersion","CSDVersion",0x00000000,"Service Pack 2"
HKLM,"SOFTWARE\Microsoft\Windows\CurrentVersion","DevicePath",0x00020000,"%SystemRoot%\inf"
HKLM,"SOFTWARE\Microsoft\Windows\CurrentVersion","ProgramFilesDir",0x00000000,"C:\Program Files"
`)

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// placeholderHive writes a setupreg.hiv shaped like XP's, made with
// package hive: Select, the ServiceGroupOrder, a network adapter already
// in Control\Class (instance 0000), the services the TCP/IP boot set
// edits with their demand-start values, and an empty Enum\Root.
func placeholderHive(t testing.TB, name string) {
	t.Helper()
	e, err := hive.New(3)
	if err != nil {
		t.Fatal(err)
	}
	const cs = `ControlSet001\`
	set := func(key, value string, typ hive.ValueType, data []byte) {
		t.Helper()
		if err := e.CreateKey(key); err != nil {
			t.Fatal(err)
		}
		if err := e.SetValue(key, value, typ, data); err != nil {
			t.Fatal(err)
		}
	}
	sz := func(key, value, s string) { set(key, value, hive.SZ, hive.EncodeString(s)) }
	dword := func(key, value string, v uint32) { set(key, value, hive.DWORD, hive.EncodeDWORD(v)) }
	for _, v := range []string{"Current", "Default", "LastKnownGood"} {
		dword("Select", v, 1)
	}
	dword("Select", "Failed", 0)
	set(cs+`Control\ServiceGroupOrder`, "List", hive.MultiSZ, hive.EncodeMultiString(xpServiceGroupOrder))
	dword(cs+`Control\Session Manager\Memory Management`, "DisablePagingExecutive", 0)
	net := cs + `Control\Class\` + NetClassGUID
	sz(net, "", "Network adapters")
	sz(net, "Class", "Net")
	sz(net+`\0000`, "DriverDesc", "AMD PCNET Family PCI Ethernet Adapter")
	sz(net+`\0000`, "MatchingDeviceId", `pci\ven_1022&dev_2000`)
	sz(net+`\0000`, "NetCfgInstanceId", "{4DB30059-1A2B-4C3D-8E9F-0A1B2C3D4E5F}")
	for _, s := range []struct {
		name, group string
		start       uint32
	}{
		{"KSecDD", "", 1},
		{"NDIS", "NDIS Wrapper", 1},
		{"Tcpip", "PNP_TDI", 1},
		{"IPSec", "PNP_TDI", 1},
	} {
		k := cs + `Services\` + s.name
		dword(k, "ErrorControl", 1)
		if s.group != "" {
			sz(k, "Group", s.group)
		}
		dword(k, "Start", s.start)
		dword(k, "Type", 1)
	}
	if err := e.CreateKey(cs + `Enum\Root`); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.Save(name); err != nil {
		t.Fatal(err)
	}
}

// makeMedia builds an XP SP2 installation-media tree (upper-case names,
// as on the CD) and returns its root.
func makeMedia(t testing.TB) string {
	root := t.TempDir()
	d := filepath.Join(root, "I386")
	writeFile(t, filepath.Join(d, "TXTSETUP.SIF"), []byte(xpTxtSetup))
	writeFile(t, filepath.Join(d, "DOSNET.INF"), []byte(xpDosNet))
	writeFile(t, filepath.Join(d, "HIVESYS.INF"), []byte(xpHiveSys))
	writeFile(t, filepath.Join(d, "HIVESFT.INF"), []byte(xpHiveSft))
	placeholderHive(t, filepath.Join(d, "SETUPREG.HIV"))
	writeFile(t, filepath.Join(root, "WIN51IP.SP2"), []byte("\r\n"))
	return root
}

// makeLocalSource builds a winnt32 /makelocalsource /syspart tree.
func makeLocalSource(t testing.TB) string {
	root := t.TempDir()
	bt := filepath.Join(root, "$WIN_NT$.~BT")
	d := filepath.Join(root, "$WIN_NT$.~LS", "I386")
	writeFile(t, filepath.Join(d, "TXTSETUP.SIF"), []byte(xpTxtSetup))
	writeFile(t, filepath.Join(d, "hivesys.inf"), []byte(xpHiveSys))
	writeFile(t, filepath.Join(d, "HIVESFT.INF"), []byte(xpHiveSft))
	placeholderHive(t, filepath.Join(d, "SETUPREG.HIV"))
	writeFile(t, filepath.Join(bt, "TXTSETUP.SIF"), []byte(xpTxtSetup))
	placeholderHive(t, filepath.Join(bt, "SETUPREG.HIV"))
	writeFile(t, filepath.Join(root, "TXTSETUP.SIF"), []byte(xpTxtSetup))
	return root
}

// fakePE returns a minimal PE image (headers only) for machine.
func fakePE(machine uint16, tag string) []byte {
	b := make([]byte, 0x40+4+20)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], machine)
	return append(b, tag...)
}

const (
	i386  = 0x14c
	amd64 = 0x8664
)

// snapshot returns every file under root with its contents.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		m[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(t testing.TB, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("file count changed: %d → %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}
}

// golden compares got with testdata/name, as a diff; -update rewrites.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		writeFile(t, p, got)
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		a, _ := ParseText(p, want, nil)
		b, _ := ParseText("got", got, nil)
		t.Errorf("%s differs from golden:\n%s", name, Diff(p, "got", a.Lines(), b.Lines()))
	}
}
