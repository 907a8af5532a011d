package integrate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// iscsiINF is shaped like the MS iSCSI initiator's: root device
// ROOT\iScsiPrt, service iScsiPrt whose image msiscsi.sys imports
// iscsiprt.sys, the text-mode name the image must take.
const iscsiINF = `[Version]
Signature = "$Windows NT$"
Class     = SCSIAdapter
ClassGUID = {4D36E97B-E325-11CE-BFC1-08002BE10318}
Provider  = %MSFT%
DriverVer = 04/18/2008,5.2.3790.1653

[Manufacturer]
%MSFT% = MSFT

[MSFT]
%Desc% = iScsiPrt_Inst, ROOT\iScsiPrt

[iScsiPrt_Inst]
CopyFiles = iScsiPrt.CopyFiles

[iScsiPrt_Inst.Services]
AddService = iScsiPrt, 2, iScsiPrt_Service

[iScsiPrt_Service]
DisplayName    = %Desc%
ServiceType    = 1
StartType      = 0
ErrorControl   = 1
ServiceBinary  = %12%\msiscsi.sys
LoadOrderGroup = SCSI miniport

[iScsiPrt.CopyFiles]
msiscsi.sys
iscsiprt.sys

[DestinationDirs]
DefaultDestDir = 12

[Strings]
MSFT = "Microsoft"
Desc = "Microsoft iSCSI Initiator"
`

var (
	msiscsiSys  = driverPE(integratetest.I386, "msiscsi", "iscsiprt.sys", "ntoskrnl.exe", "TDI.SYS")
	iscsiprtSys = driverPE(integratetest.I386, "iscsiprt", "ntoskrnl.exe", "HAL.dll")
)

func iscsiPackage(t testing.TB) string {
	return makePackage(t,
		pkgFile{"iscsi.inf", []byte(integratetest.CRLF(iscsiINF))},
		pkgFile{"msiscsi.sys", msiscsiSys},
		pkgFile{"iscsiprt.sys", iscsiprtSys})
}

// setupFiles are the in-box files of the setup directory the NIC case
// copies or patches; any bytes do but the loader's.
var setupFiles = []string{"tdi.sy_", "ndis.sy_", "ipsec.sy_", "tcpip.sy_", "ntoskrnl.ex_"}

// addSetupFiles completes a tree made by makeMedia or makeLocalSource
// with the setup loader, the TCP/IP drivers, the uniprocessor kernel and
// (local source) migrate.inf.
func addSetupFiles(t testing.TB, root string) {
	setup := filepath.Join(root, "I386")
	if _, err := os.Stat(filepath.Join(root, "$WIN_NT$.~LS")); err == nil {
		setup = filepath.Join(root, "$WIN_NT$.~LS", "I386")
		writeFile(t, filepath.Join(root, "$LDR$"), testLoader())
		writeFile(t, filepath.Join(root, "$WIN_NT$.~BT", "MIGRATE.INF"), []byte("[Version]\r\n"))
	} else {
		writeFile(t, filepath.Join(setup, "SETUPLDR.BIN"), testLoader())
	}
	for _, f := range setupFiles {
		writeFile(t, filepath.Join(setup, strings.ToUpper(f)), []byte("cabinet "+f))
	}
}

// read returns a tree file, names matched case-insensitively; "" if absent.
func read(t testing.TB, root, name string) string {
	b, err := imagefs.ReadFile(DirFS(root), name)
	if err != nil && !isNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// secondRunNoop integrates again and checks that nothing changes.
func secondRunNoop(t *testing.T, root string, pkgs ...string) {
	t.Helper()
	done := integratetest.Snapshot(t, root)
	p, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fc {
		if f.Changed {
			t.Errorf("second run changes %s (%s)", f.Path, f.Why)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
}

func TestCopiesMedia(t *testing.T) {
	root := makeMedia(t)
	addSetupFiles(t, root)
	pkgs := []string{nicPackage(t, integratetest.I386), rootPackage(t), scsiPackage(t)}
	p, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	nicSys := string(integratetest.FakePE(integratetest.I386, "e1000"))
	for name, want := range map[string]string{
		"I386/E1000.sys":                             nicSys,
		"I386/NicCo.dll":                             string(integratetest.FakePE(integratetest.I386, "co")),
		"I386/sanbootconf.sys":                       string(integratetest.FakePE(integratetest.I386, "sbc")),
		"I386/vscsi.sys":                             string(integratetest.FakePE(integratetest.I386, "vscsi")),
		"I386/scsidrv/e1000325/x86/e1000325.sys":     nicSys,
		"I386/scsidrv/e1000325/x86/coinst/nicco.dll": string(integratetest.FakePE(integratetest.I386, "co")),
		"I386/scsidrv/e1000325/e1000325.cat":         "catalog",
		"I386/scsidrv/sanbootconf/sanbootconf.sys":   string(integratetest.FakePE(integratetest.I386, "sbc")),
		"I386/scsidrv/vscsi/vscsi.inf":               integratetest.CRLF(integratetest.SCSIINF),
		"I386/scsidrv/sanbootconf/sanbootconf.inf":   integratetest.CRLF(integratetest.RootINF),
		"I386/scsidrv/e1000325/e1000325.inf":         "",
		"I386/e1000325.sys":                          "", // not under its own name: E1000.sys is renamed on copy
		"$WIN_NT$.~BT/E1000.sys":                     "", // media: winnt32 copies, [FloppyFiles.1]
		"I386/tdi.sy_":                               "cabinet tdi.sy_",
		"I386/ntoskrnl.ex_":                          "cabinet ntoskrnl.ex_",
		"I386/scsidrv/e1000325/x86/coinst/NicCo.dll": string(integratetest.FakePE(integratetest.I386, "co")),
		"i386/SCSIDRV/E1000325/X86/COINST/NICCO.DLL": string(integratetest.FakePE(integratetest.I386, "co")),
	} {
		got := read(t, root, name)
		if name == "I386/scsidrv/e1000325/e1000325.inf" {
			if !strings.Contains(got, "E100E.ndi") {
				t.Errorf("%s not staged", name)
			}
			continue
		}
		if got != want {
			t.Errorf("%s: %d bytes, want %d", name, len(got), len(want))
		}
	}
	ldr := []byte(read(t, root, "I386/setupldr.bin"))
	if bytes.Contains(ldr, []byte("ntkrnlmp.exe\x00osloader")) || !peChecksumValid(ldr[len(loaderStub):]) {
		t.Error("setupldr.bin not patched with a valid checksum")
	}
	if !slices.ContainsFunc(p.texts.text(DosNetINF).Entries("FloppyFiles.1"), func(e Entry) bool { return e.Value == "d1,ntoskrnl.ex_" }) {
		t.Error("dosnet.inf [FloppyFiles.1] lacks d1,ntoskrnl.ex_")
	}
	// --json lists every file with why.
	for _, want := range []string{"I386/E1000.sys", "I386/setupldr.bin", "I386/scsidrv/e1000325/x86/coinst/nicco.dll"} {
		i := slices.IndexFunc(files, func(f FileChange) bool { return f.Path == want })
		if i < 0 {
			t.Errorf("Files() lacks %s", want)
			continue
		}
		if f := files[i]; !f.Changed || f.Action != "create" && f.Action != "edit" || f.Why == "" {
			t.Errorf("Files() %s: %+v", want, f)
		}
	}
	for _, w := range p.Warnings {
		if strings.Contains(w, "setupldr") || strings.Contains(w, "missing") {
			t.Errorf("warning: %s", w)
		}
	}
	secondRunNoop(t, root, pkgs...)
}

func TestCopiesLocalSource(t *testing.T) {
	for _, loader := range []string{"$LDR$", "NTLDR"} {
		t.Run(loader, func(t *testing.T) {
			root := makeLocalSource(t)
			addSetupFiles(t, root)
			if loader == "NTLDR" {
				// winnt32 /syspart /tempdrive: setupldr is NTLDR.
				os.Rename(filepath.Join(root, "$LDR$"), filepath.Join(root, "NTLDR"))
			}
			pkgs := []string{nicPackage(t, integratetest.I386), iscsiPackage(t)}
			p, err := integrate(t, root, pkgs...)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			ls, bt := "$WIN_NT$.~LS/I386/", "$WIN_NT$.~BT/"
			nicSys := string(integratetest.FakePE(integratetest.I386, "e1000"))
			for name, want := range map[string]string{
				ls + "E1000.sys":                  nicSys,
				bt + "E1000.sys":                  nicSys,
				ls + "NicCo.dll":                  string(integratetest.FakePE(integratetest.I386, "co")),
				bt + "NicCo.dll":                  "", // DLLs are not loaded in text mode
				ls + "msiscsi.sys":                string(msiscsiSys),
				bt + "msiscsi.sys":                "", // the installed system's copy comes from ~LS
				ls + "iScsiP_o.sys":               string(iscsiprtSys),
				bt + "iScsiP_o.sys":               string(iscsiprtSys),
				bt + "tdi.sy_":                    "cabinet tdi.sy_",
				bt + "ndis.sy_":                   "cabinet ndis.sy_",
				bt + "ipsec.sy_":                  "cabinet ipsec.sy_",
				bt + "tcpip.sy_":                  "cabinet tcpip.sy_",
				bt + "ntoskrnl.ex_":               "cabinet ntoskrnl.ex_",
				bt + "migrate.inf":                "",
				ls + "scsidrv/iscsi/iscsiprt.sys": string(iscsiprtSys),
			} {
				if got := read(t, root, name); got != want {
					t.Errorf("%s: %d bytes, want %d", name, len(got), len(want))
				}
			}
			for _, d := range []string{ls, bt} {
				img := []byte(read(t, root, d+"iScsiPrt.sys"))
				if imps, err := peImports(img); err != nil || !slices.Equal(imps, []string{"iScsiP_o.sys", "ntoskrnl.exe", "TDI.SYS"}) {
					t.Errorf("%siScsiPrt.sys imports %q, %v", d, imps, err)
				}
			}
			ldr := []byte(read(t, root, loader))
			if bytes.Contains(ldr, []byte("ntkrnlmp.exe\x00osloader")) || !peChecksumValid(ldr[len(loaderStub):]) {
				t.Errorf("%s not patched with a valid checksum", loader)
			}
			if len(p.Warnings) > 0 {
				for _, w := range p.Warnings {
					if strings.Contains(w, "missing") || strings.Contains(w, "patched") {
						t.Errorf("warning: %s", w)
					}
				}
			}
			secondRunNoop(t, root, pkgs...)
		})
	}
}

// TestISCSIRename checks the rename-and-patch of research §6.5 on media:
// the files and the txtsetup.sif and dosnet.inf lines.
func TestISCSIRename(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tree  func(testing.TB) string
		lines map[string][]string
	}{
		{"xp", makeMedia, map[string][]string{
			"SourceDisksFiles.x86": {
				"iScsiPrt.sys = 1,,,,,,4_,4,3,3,,1,4",
				"msiscsi.sys = 1,,,,,,4_,4,0,0,,1,4",
				"iScsiP_o.sys = 1,,,,,,4_,4,0,0,iscsiprt.sys,1,4",
			},
			"Keyboard.Load": {"iScsiPrt = iScsiPrt.sys"},
		}},
		{"2000", win2000, map[string][]string{
			"SourceDisksFiles.x86": {
				"iScsiPrt.sys = 1,,,,,,4_,4,3,3",
				"msiscsi.sys = 1,,,,,,4_,4,0,0",
				"iScsiP_o.sys = 1,,,,,,4_,4,0,0,iscsiprt.sys,1,4",
			},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.tree(t)
			pkg := iscsiPackage(t)
			p, err := integrate(t, root, pkg)
			if err != nil {
				t.Fatal(err)
			}
			sif := p.texts.text(TxtSetupSIF)
			for section, lines := range tt.lines {
				for _, l := range lines {
					if !slices.ContainsFunc(sif.Entries(section), func(e Entry) bool { return e.Key+" = "+e.Value == l }) {
						t.Errorf("[%s] lacks %s", section, l)
					}
				}
			}
			if _, ok := sif.Value("SCSI.Load", "iScsiPrt"); ok {
				t.Error("the patched image is in [SCSI.Load], which would copy it over iscsiprt.sys")
			}
			if _, ok := sif.Value("FileFlags", "iScsiPrt.sys"); ok {
				t.Error("[FileFlags] names the patched image")
			}
			dn := p.texts.text(DosNetINF)
			for section, want := range map[string][]string{
				"Files":         {"d1,iScsiPrt.sys", "d1,msiscsi.sys", "d1,iScsiP_o.sys"},
				"FloppyFiles.1": {"d1,iScsiPrt.sys", "d1,iScsiP_o.sys"},
			} {
				for _, w := range want {
					if !slices.ContainsFunc(dn.Entries(section), func(e Entry) bool { return e.Value == w }) {
						t.Errorf("dosnet.inf [%s] lacks %s", section, w)
					}
				}
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			img := []byte(read(t, root, "I386/iScsiPrt.sys"))
			if imps, _ := peImports(img); !slices.Equal(imps, []string{"iScsiP_o.sys", "ntoskrnl.exe", "TDI.SYS"}) {
				t.Errorf("patched imports %q", imps)
			}
			if !peChecksumValid(img) {
				t.Error("patched image checksum not valid")
			}
			if read(t, root, "I386/msiscsi.sys") != string(msiscsiSys) || read(t, root, "I386/iScsiP_o.sys") != string(iscsiprtSys) {
				t.Error("original or renamed dependency wrong")
			}
			secondRunNoop(t, root, pkg)
		})
	}
}

func TestCopiesWarnings(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tree  func(testing.TB) string
		prep  func(t testing.TB, root string)
		warn  []string
		check func(t *testing.T, root string)
	}{
		{"tcpip-missing", makeLocalSource, func(t testing.TB, root string) {
			os.Remove(filepath.Join(root, "$WIN_NT$.~LS", "I386", "TCPIP.SY_"))
		}, []string{"tcpip.sy_ is missing"}, func(t *testing.T, root string) {
			if read(t, root, "$WIN_NT$.~BT/tdi.sy_") == "" {
				t.Error("tdi.sy_ not copied")
			}
		}},
		{"uncompressed-tcpip", makeLocalSource, func(t testing.TB, root string) {
			d := filepath.Join(root, "$WIN_NT$.~LS", "I386")
			os.Rename(filepath.Join(d, "TCPIP.SY_"), filepath.Join(d, "tcpip.sys"))
		}, nil, func(t *testing.T, root string) {
			if read(t, root, "$WIN_NT$.~BT/tcpip.sys") != "cabinet tcpip.sy_" {
				t.Error("uncompressed tcpip.sys not copied")
			}
		}},
		{"no-loader", makeLocalSource, func(t testing.TB, root string) {
			os.Remove(filepath.Join(root, "$LDR$"))
		}, []string{"neither $LDR$ nor NTLDR"}, func(t *testing.T, root string) {
			if read(t, root, "$WIN_NT$.~BT/ntoskrnl.ex_") != "" {
				t.Error("kernel copied for an unpatched loader")
			}
		}},
		{"loader-without-kernel-name", makeMedia, func(t testing.TB, root string) {
			writeFile(t, filepath.Join(root, "I386", "SETUPLDR.BIN"), append(bytes.Clone(loaderStub), driverPE(integratetest.I386, "other")...))
		}, []string{"not patched", "neither ntkrnlmp.exe nor ntoskrnl.exe"}, nil},
		{"loader-not-pe", makeMedia, func(t testing.TB, root string) {
			writeFile(t, filepath.Join(root, "I386", "SETUPLDR.BIN"), []byte("not a loader"))
		}, []string{"no PE image"}, nil},
		{"amd64-no-loader-patch", x64Server, func(t testing.TB, root string) {
			replaceIn(t, filepath.Join(root, "AMD64", "TXTSETUP.SIF"), "[SourceDisksNames.x86]", "[SourceDisksNames.amd64]")
			writeFile(t, filepath.Join(root, "AMD64", "SETUPLDR.BIN"), testLoader())
		}, nil, func(t *testing.T, root string) {
			if read(t, root, "AMD64/SETUPLDR.BIN") != string(testLoader()) {
				t.Error("amd64 loader patched")
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.tree(t)
			addSetupFiles(t, root)
			tt.prep(t, root)
			machine := uint16(integratetest.I386)
			if tt.name == "amd64-no-loader-patch" {
				machine = integratetest.AMD64
			}
			nic := nicPackage(t, machine)
			if machine == integratetest.AMD64 {
				nic = makePackage(t, pkgFile{"e1000325.inf", []byte(amd64OnlyINF)},
					pkgFile{"e1000325.cat", []byte("catalog")},
					pkgFile{"x86/e1000325.sys", integratetest.FakePE(integratetest.AMD64, "e1000")}, pkgFile{"x86/coinst/NicCo.dll", integratetest.FakePE(integratetest.AMD64, "co")})
			}
			before := integratetest.Snapshot(t, root)
			p, err := integrate(t, root, nic)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(p.Warnings, "\n")
			for _, w := range tt.warn {
				if !strings.Contains(all, w) {
					t.Errorf("warnings lack %q:\n%s", w, all)
				}
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			for path, data := range before {
				if strings.Contains(strings.ToUpper(path), "SETUPLDR") && integratetest.Snapshot(t, root)[path] != data && len(tt.warn) > 0 {
					t.Error("loader changed despite the warning")
				}
			}
			if tt.check != nil {
				tt.check(t, root)
			}
			secondRunNoop(t, root, nic)
		})
	}
}

// planDevices plans one package whose resolved devices mess changes
// (paths a package could not produce, files gone after Resolve).
func planDevices(t *testing.T, root, dir string, mess func(pkg *drivers.Package, devs []*drivers.Device)) error {
	t.Helper()
	p := planOn(t, DirFS(root), Options{})
	pkg, err := drivers.OpenPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := pkg.Resolve(p.Tree.Target())
	if err != nil {
		t.Fatal(err)
	}
	mess(pkg, devs)
	err = p.AddDriver(pkg, devs)
	if err == nil {
		t.Fatal("no error")
	}
	if len(p.Edits) != 0 {
		t.Errorf("%d edits planned before the error, e.g. %s", len(p.Edits), p.Edits[0])
	}
	return err
}

func TestCopiesRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		pkg  func(testing.TB) string
		mess func(pkg *drivers.Package, devs []*drivers.Device)
		msg  string
	}{
		{"file-gone", nicPackage386, func(pkg *drivers.Package, devs []*drivers.Device) {
			os.Remove(filepath.Join(pkg.Dir, "x86", "coinst", "NicCo.dll"))
		}, "NicCo.dll"},
		{"staged-file-gone", nicPackage386, func(pkg *drivers.Package, devs []*drivers.Device) {
			os.Remove(filepath.Join(pkg.Dir, "e1000325.inf"))
		}, "e1000325.inf"},
		{"source-leaves-package", nicPackage386, func(pkg *drivers.Package, devs []*drivers.Device) {
			devs[0].Files[0].Source = "../../etc/passwd"
		}, "leaves the package"},
		{"source-absolute", nicPackage386, func(pkg *drivers.Package, devs []*drivers.Device) {
			devs[0].Files[0].Source = "/etc/passwd"
		}, "not a clean path"},
		{"dest-name-with-drive", nicPackage386, func(pkg *drivers.Package, devs []*drivers.Device) {
			devs[0].Files[0].Dest = `system32\drivers\c:e1000325.sys`
		}, "not a plain file name"},
		{"import-of-renamed-in-dependency", func(t testing.TB) string {
			return makePackage(t,
				pkgFile{"iscsi.inf", []byte(integratetest.CRLF(strings.Replace(iscsiINF, "iscsiprt.sys\n", "iscsiprt.sys\nhelper.sys\n", 1)))},
				pkgFile{"msiscsi.sys", msiscsiSys}, pkgFile{"iscsiprt.sys", iscsiprtSys},
				pkgFile{"helper.sys", driverPE(integratetest.I386, "helper", "iscsiprt.sys")})
		}, nil, "helper.sys imports iscsiprt.sys"},
		{"image-not-pe", func(t testing.TB) string {
			return makePackage(t, pkgFile{"iscsi.inf", []byte(integratetest.CRLF(iscsiINF))},
				pkgFile{"msiscsi.sys", integratetest.FakePE(integratetest.I386, "no imports")}, pkgFile{"iscsiprt.sys", iscsiprtSys})
		}, nil, "reading the imports of msiscsi.sys"},
		{"renamed-name-taken", func(t testing.TB) string {
			return makePackage(t,
				pkgFile{"iscsi.inf", []byte(integratetest.CRLF(strings.Replace(iscsiINF, "iscsiprt.sys\n", "iscsiprt.sys\niScsiP_o.sys\n", 1)))},
				pkgFile{"msiscsi.sys", msiscsiSys}, pkgFile{"iscsiprt.sys", iscsiprtSys},
				pkgFile{"iScsiP_o.sys", driverPE(integratetest.I386, "o")})
		}, nil, "iScsiP_o.sys"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			addSetupFiles(t, root)
			before := integratetest.Snapshot(t, root)
			mess := tt.mess
			if mess == nil {
				mess = func(*drivers.Package, []*drivers.Device) {}
			}
			err := planDevices(t, root, tt.pkg(t), mess)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err %v, want it naming %q", err, tt.msg)
			}
			integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
		})
	}
}

func nicPackage386(t testing.TB) string { return nicPackage(t, integratetest.I386) }

// TestCopiesTwoDrivers refuses a second package that would overwrite the
// first one's files: one service name, different images.
func TestCopiesTwoDrivers(t *testing.T) {
	root := makeMedia(t)
	addSetupFiles(t, root)
	before := integratetest.Snapshot(t, root)
	other := makePackage(t,
		pkgFile{"e1000325.inf", []byte(integratetest.CRLF(integratetest.NICINF))},
		pkgFile{"e1000325.cat", []byte("catalog")},
		pkgFile{"x86/e1000325.sys", integratetest.FakePE(integratetest.I386, "another build")},
		pkgFile{"x86/coinst/NicCo.dll", integratetest.FakePE(integratetest.I386, "co")})
	_, err := integrate(t, root, nicPackage(t, integratetest.I386), other)
	if err == nil || !strings.Contains(err.Error(), "already planned with other contents") {
		t.Fatalf("err %v", err)
	}
	integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
	// The same package twice is no conflict.
	nic := nicPackage(t, integratetest.I386)
	if _, err := integrate(t, root, nic, nic); err != nil {
		t.Fatal(err)
	}
}

// TestPackagePathsRefused checks that the driver-package reader already
// refuses names that would leave the package or the destination.
func TestPackagePathsRefused(t *testing.T) {
	for _, tt := range []struct{ name, old, new string }{
		{"copyfiles-dotdot", "e1000325.sys,,,2", `..\e1000325.sys,,,2`},
		{"copyfiles-absolute", "e1000325.sys,,,2", `\windows\e1000325.sys,,,2`},
		{"disk-path-dotdot", `1 = %Disk%,,,\x86`, `1 = %Disk%,,,..\..\x86`},
		{"subdir-dotdot", "NicCo.dll    = 1,coinst", `NicCo.dll    = 1,..\..\coinst`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inf := strings.Replace(integratetest.NICINF, tt.old, tt.new, 1)
			if inf == integratetest.NICINF {
				t.Fatal("test INF unchanged")
			}
			dir := makePackage(t, pkgFile{"e1000325.inf", []byte(integratetest.CRLF(inf))},
				pkgFile{"x86/e1000325.sys", integratetest.FakePE(integratetest.I386, "")}, pkgFile{"x86/coinst/NicCo.dll", integratetest.FakePE(integratetest.I386, "")})
			pkg, err := drivers.OpenPackage(dir)
			if err == nil {
				_, err = pkg.Resolve(drivers.Target{Major: 5, Minor: 1, Arch: "x86", ProductType: 1})
			}
			var de *drivers.Error
			if err == nil || !errors.As(err, &de) {
				t.Fatalf("err %v, want a *drivers.Error", err)
			}
		})
	}
}
