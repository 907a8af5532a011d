package integrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
)

// nicINF is shaped like Intel's PRO/1000 package: service E1000 with
// image e1000325.sys (text mode must load it as E1000.sys), a
// co-installer DLL in a subdirectory, two model lines, a catalog.
const nicINF = `[Version]
Signature   = "$Windows NT$"
Class       = Net
ClassGUID   = {4d36e972-e325-11ce-bfc1-08002be10318}
Provider    = %Intel%
CatalogFile = e1000325.cat
DriverVer   = 06/14/2006,8.10.3.0

[Manufacturer]
%Intel% = Intel, NTx86.5.1

[Intel.NTx86.5.1]
%E100E.Desc% = E100E.ndi, PCI\VEN_8086&DEV_100E, PCI\VEN_8086&DEV_100E&SUBSYS_001E8086
%E100F.Desc% = E100E.ndi, PCI\VEN_8086&DEV_100F

[E100E.ndi.NTx86]
Characteristics = 0x84
BusType         = 5
AddReg          = e1000.reg
CopyFiles       = e1000.CopyFiles, CoInst.CopyFiles

[E100E.ndi.NTx86.Services]
AddService = E1000, 2, e1000.Service

[e1000.Service]
DisplayName    = %E1000.Service%
ServiceType    = 1
StartType      = 3
ErrorControl   = 1
ServiceBinary  = %12%\e1000325.sys
LoadOrderGroup = NDIS

[e1000.reg]
HKR, Ndi, Service, 0, "E1000"

[e1000.CopyFiles]
e1000325.sys,,,2

[CoInst.CopyFiles]
NicCo.dll

[DestinationDirs]
DefaultDestDir   = 12
CoInst.CopyFiles = 11

[SourceDisksNames]
1 = %Disk%,,,\x86

[SourceDisksFiles]
e1000325.sys = 1
NicCo.dll    = 1,coinst

[Strings]
Intel         = "Intel"
E100E.Desc    = "Intel(R) PRO/1000 MT Network Connection"
E100F.Desc    = "Intel(R) PRO/1000 MT Dual Port Network Connection"
E1000.Service = "Intel(R) PRO/1000 Adapter Driver"
Disk          = "Intel PRO/1000 Driver Disk"
`

// rootINF is shaped like sanbootconf: a root-enumerated System device,
// service group Base, a name longer than 8.3.
const rootINF = `[Version]
Signature = "$Windows NT$"
Class     = System
ClassGUID = {4d36e97d-e325-11ce-bfc1-08002be10318}
Provider  = %Prov%
DriverVer = 05/01/2014,1.2.0.0

[Manufacturer]
%Prov% = Prov

[Prov]
%Desc% = Sbc.Install, ROOT\sanbootconf

[Sbc.Install]
CopyFiles = Sbc.Files

[Sbc.Install.Services]
AddService = sanbootconf, 2, Sbc.Service

[Sbc.Service]
ServiceType    = 1
StartType      = 0
ErrorControl   = 1
ServiceBinary  = %12%\sanbootconf.sys
LoadOrderGroup = Base
AddReg         = Sbc.Service.reg

[Sbc.Service.reg]
HKR,Parameters,BootText,0x00010003,1
HKR,Parameters\Targets,,0x00000010

[Sbc.Files]
sanbootconf.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
Prov = "iPXE"
Desc = "SAN Boot Configuration Driver"
`

// scsiINF is a storage miniport: text mode loads it through SCSI.Load.
const scsiINF = `[Version]
Signature = "$Windows NT$"
Class     = SCSIAdapter
ClassGUID = {4D36E97B-E325-11CE-BFC1-08002BE10318}
Provider  = %Prov%
DriverVer = 01/01/2008,1.0.0.0

[Manufacturer]
%Prov% = Prov

[Prov]
%Desc% = vscsi_Inst, PCI\VEN_1000&DEV_0030

[vscsi_Inst]
CopyFiles = vscsi.Files

[vscsi_Inst.Services]
AddService = vscsi, 2, vscsi_Service

[vscsi_Service]
DisplayName    = %Desc%
ServiceType    = 1
StartType      = 0
ErrorControl   = 1
ServiceBinary  = %12%\vscsi.sys
LoadOrderGroup = SCSI miniport

[vscsi.Files]
vscsi.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
Prov = "Example"
Desc = "Example Ultra320 SCSI Controller"
`

type pkgFile struct {
	name string
	data []byte
}

func makePackage(t testing.TB, files ...pkgFile) string {
	dir := t.TempDir()
	for _, f := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(f.name)), f.data)
	}
	return dir
}

func nicPackage(t testing.TB, machine uint16) string {
	return makePackage(t,
		pkgFile{"e1000325.inf", []byte(crlf(nicINF))},
		pkgFile{"e1000325.cat", []byte("catalog")},
		pkgFile{"x86/e1000325.sys", fakePE(machine, "e1000")},
		pkgFile{"x86/coinst/NicCo.dll", fakePE(machine, "co")})
}

func rootPackage(t testing.TB) string {
	return makePackage(t,
		pkgFile{"sanbootconf.inf", []byte(crlf(rootINF))},
		pkgFile{"sanbootconf.sys", fakePE(i386, "sbc")})
}

func scsiPackage(t testing.TB) string {
	return makePackage(t,
		pkgFile{"vscsi.inf", []byte(crlf(scsiINF))},
		pkgFile{"vscsi.sys", fakePE(i386, "vscsi")})
}

// integrate runs detection and plans every driver dir; it does not commit.
func integrate(t *testing.T, root string, dirs ...string) (*Plan, error) {
	t.Helper()
	tr, err := Detect(DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		pkg, err := drivers.OpenPackage(d)
		if err != nil {
			t.Fatal(err)
		}
		devs, err := pkg.Resolve(tr.Target())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AddDriver(pkg, devs); err != nil {
			return p, err
		}
	}
	return p, nil
}

func TestIntegrateMedia(t *testing.T) {
	root := makeMedia(t)
	pkgs := []string{nicPackage(t, i386), rootPackage(t), scsiPackage(t)}
	p, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	report, _ := json.MarshalIndent(struct {
		Edits    []Edit
		Warnings []string
	}{p.Edits, p.Warnings}, "", "  ")
	golden(t, "xpsp2-media-edits.json.golden", append(report, '\n'))
	diff, err := p.Diff()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "xpsp2-media.diff.golden", []byte(diff))

	before := snapshot(t, root)
	sameSnapshot(t, before, snapshot(t, root)) // planning wrote nothing
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"TXTSETUP.SIF", "DOSNET.INF", "HIVESYS.INF", "HIVESFT.INF"} {
		b, err := os.ReadFile(filepath.Join(root, "I386", f))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "xpsp2-media-"+strings.ToLower(f)+".golden", b)
	}
	for _, f := range []string{"SETUPREG.HIV"} {
		if after := snapshot(t, root)[filepath.Join(root, "I386", f)]; after == before[filepath.Join(root, "I386", f)] {
			t.Errorf("%s not written", f)
		}
	}

	// The second run finds everything in place and writes nothing.
	done := snapshot(t, root)
	p2, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p2.Edits {
		if e.Changed {
			t.Errorf("second run: %s changed the file", e)
		}
	}
	if d, _ := p2.Diff(); d != "" {
		t.Errorf("second run diff:\n%s", d)
	}
	fc, _ := p2.Files()
	for _, f := range fc {
		if f.Changed {
			t.Errorf("second run changes %s", f.Path)
		}
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, done, snapshot(t, root))
	// Every edit of the first run is reported again, as a no-op (DevicePath
	// grows per driver in the first run, so only its last form recurs).
	seen := map[string]bool{}
	for _, e := range p2.Edits {
		seen[e.String()] = true
	}
	for _, e := range p.Edits {
		if !seen[e.String()] && e.File != HiveSftINF {
			t.Errorf("second run lacks %s", e)
		}
	}
}

// TestIntegrateLocalSource edits all three txtsetup.sif copies alike and
// has no dosnet.inf to edit.
func TestIntegrateLocalSource(t *testing.T) {
	root := makeLocalSource(t)
	pkgs := []string{nicPackage(t, i386)}
	p, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Edits {
		if e.File == DosNetINF {
			t.Errorf("edit of %s in a local-source tree", e.File)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(root, "$WIN_NT$.~LS", "I386", "TXTSETUP.SIF"))
	golden(t, "xpsp2-localsource-txtsetup.sif.golden", want)
	for _, c := range []string{filepath.Join(root, "$WIN_NT$.~BT", "TXTSETUP.SIF"), filepath.Join(root, "TXTSETUP.SIF")} {
		if b, _ := os.ReadFile(c); !bytes.Equal(b, want) {
			t.Errorf("%s differs from the setup directory's copy", c)
		}
	}
	done := snapshot(t, root)
	p2, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, done, snapshot(t, root))
}

// amd64OnlyINF has no model section an x86 system can use.
var amd64OnlyINF = strings.Replace(strings.Replace(nicINF, "NTx86.5.1", "NTamd64", -1), "E100E.ndi.NTx86", "E100E.ndi.NTamd64", -1)

func TestIntegrateRefused(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pkg     func(testing.TB) string
		wantErr error
		msg     string
	}{
		{"amd64-binary", func(t testing.TB) string { return nicPackage(t, amd64) }, ErrArch, "is amd64, the setup tree is x86"},
		{"amd64-only-inf", func(t testing.TB) string {
			return makePackage(t, pkgFile{"e1000325.inf", []byte(amd64OnlyINF)},
				pkgFile{"x86/e1000325.sys", fakePE(amd64, "")}, pkgFile{"x86/coinst/NicCo.dll", fakePE(amd64, "")})
		}, ErrArch, "no device for NTx86.5.1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			before := snapshot(t, root)
			// A good driver first: the refusal must still leave the tree alone.
			p, err := integrate(t, root, rootPackage(t), tt.pkg(t))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v, want %v naming %q", err, tt.wantErr, tt.msg)
			}
			_ = p
			sameSnapshot(t, before, snapshot(t, root))
		})
	}
}

// TestIntegrate2000 checks the Windows 2000 forms: SourceDisksFiles
// without fields 10–12 unless the file is renamed, and no IPSec.
func TestIntegrate2000(t *testing.T) {
	root := win2000(t)
	nic := makePackage(t,
		pkgFile{"e1000325.inf", []byte(strings.Replace(nicINF, "%Intel% = Intel, NTx86.5.1", "%Intel% = Intel", 1) +
			"[Intel]\r\n%E100E.Desc% = E100E.ndi, PCI\\VEN_8086&DEV_100E\r\n")},
		pkgFile{"e1000325.cat", nil},
		pkgFile{"x86/e1000325.sys", fakePE(i386, "")},
		pkgFile{"x86/coinst/NicCo.dll", fakePE(i386, "")})
	p, err := integrate(t, root, nic, rootPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	sif := p.text(TxtSetupSIF)
	has := func(section, line string) bool {
		for _, e := range sif.Entries(section) {
			if strings.EqualFold(e.Key+" = "+e.Value, line) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ section, line string }{
		{"SourceDisksFiles.x86", "E1000.sys = 1,,,,,,4_,4,0,0,e1000325.sys,1,4"},
		{"SourceDisksFiles.x86", "sanbootconf.sys = 1,,,,,,4_,4,0,0"},
		{"DiskDrivers.Load", "tcpip = tcpip.sys"},
	} {
		if !has(c.section, c.line) {
			t.Errorf("[%s] lacks %s", c.section, c.line)
		}
	}
	if _, ok := sif.Value("DiskDrivers.Load", "ipsec"); ok {
		t.Error("IPSec loaded on Windows 2000")
	}
	dn := p.text(DosNetINF)
	for _, e := range dn.Entries("FloppyFiles.1") {
		if strings.EqualFold(e.Value, "d1,ipsec.sy_") {
			t.Error("ipsec.sy_ in FloppyFiles.1 on Windows 2000")
		}
	}
}
