package integrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// tmOEM is a txtsetup.oem shaped like a real SCSI miniport's driver disk
// (LSI/Adaptec style): two disks (a subdirectory per Windows version), a
// default, two options, hardware IDs with the service name, and Config
// values, among them one for the service key itself and a REG_SZ.
var tmOEM = integratetest.CRLF(`; Example Ultra320 SCSI driver disk
[Disks]
d1 = "Example Ultra320 SCSI Driver Diskette",\vscsi.tag,\win2k
d2 = "Example Ultra320 SCSI Driver Diskette",\vscsi.tag,\winxp

[Defaults]
scsi = VSCSI_XP

[scsi]
VSCSI_XP = "Example Ultra320 SCSI Controller (Windows XP)"
VSCSI_2K = "Example Ultra320 SCSI Controller (Windows 2000)"

[Files.scsi.VSCSI_XP]
driver  = d2, vscsi.sys, vscsi
inf     = d2, vscsi.inf
catalog = d2, vscsi.cat
dll     = d2, vscsicoin.dll

[Files.scsi.VSCSI_2K]
driver  = d1, vscsi.sys, vscsi
inf     = d1, vscsi.inf

[HardwareIds.scsi.VSCSI_XP]
id = "PCI\VEN_1000&DEV_0030", "vscsi"
id = "PCI\VEN_1000&DEV_0032", "vscsi"

[HardwareIds.scsi.VSCSI_2K]
id = "PCI\VEN_1000&DEV_0030", "vscsi"

[Config.vscsi]
value = Parameters\PnpInterface, 5, REG_DWORD, 1
value = Parameters\Device, DriverParameter, REG_SZ, "DisableTaggedQueueing=0"
value = "", Tag, REG_DWORD, 20
`)

// tmPackage writes a text-mode driver disk with oem as its txtsetup.oem.
func tmPackage(t testing.TB, oem string, machine uint16) string {
	return makePackage(t,
		pkgFile{"txtsetup.oem", []byte(oem)},
		pkgFile{"vscsi.tag", []byte("\r\n")},
		pkgFile{"win2k/vscsi.sys", integratetest.FakePE(machine, "vscsi 2000")},
		pkgFile{"win2k/vscsi.inf", []byte(integratetest.CRLF(integratetest.SCSIINF))},
		pkgFile{"winxp/vscsi.sys", integratetest.FakePE(machine, "vscsi xp")},
		pkgFile{"winxp/vscsi.inf", []byte(integratetest.CRLF(integratetest.SCSIINF))},
		pkgFile{"winxp/vscsi.cat", []byte("catalog")},
		pkgFile{"winxp/vscsicoin.dll", integratetest.FakePE(machine, "coinstaller")})
}

// tmIntegrate plans the text-mode driver in dir, option id.
func tmIntegrate(t *testing.T, root, dir, id string) (*Plan, error) {
	t.Helper()
	pkg, err := drivers.OpenPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := planOn(t, DirFS(root), Options{})
	return p, p.AddTextModeDriver(dir, pkg.TxtSetup, id)
}

// tmHas reports whether section of x has the entry line ("key = value"
// or a line without key), compared by fields.
func tmHas(x *Text, section, l string) bool {
	want := &line{text: l}
	want.classify()
	for _, e := range x.Entries(section) {
		if strings.EqualFold(e.Key, want.key) && sameFields(e.Fields, want.fields) {
			return true
		}
	}
	return false
}

// TestTextModeDriver integrates the default option into media and a
// local source: txtsetup.sif, dosnet.inf, hive INFs and files, then a
// second run changes nothing.
func TestTextModeDriver(t *testing.T) {
	for _, tt := range []struct {
		name  string
		tree  func(testing.TB) string
		setup string
		boot  string // boot directory getting the driver, "" for media
	}{
		{"media", makeMedia, "I386", ""},
		{"localsource", makeLocalSource, "$WIN_NT$.~LS/I386", "$WIN_NT$.~BT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.tree(t)
			dir := tmPackage(t, tmOEM, integratetest.I386)
			p, err := tmIntegrate(t, root, dir, "")
			if err != nil {
				t.Fatal(err)
			}
			sif := p.texts.text(TxtSetupSIF)
			for _, c := range []struct{ section, line string }{
				{"SourceDisksNames.x86", `2001 = "%cdname%",%cdtagfilei%,,\i386\scsidrv\vscsi_xp`},
				{"WinntDirectories", `3001 = TEMP\SCSIDRV\vscsi_xp`},
				{"SourceDisksFiles.x86", "vscsi.sys = 1,,,,,,4_,4,3,3,,1,4"},
				{"SourceDisksFiles.x86", "vscsi.sys = 2001,,,,,,,3001,0,0"},
				{"SourceDisksFiles.x86", "vscsi.inf = 2001,,,,,,,3001,0,0"},
				{"SourceDisksFiles.x86", "vscsi.cat = 2001,,,,,,,3001,0,0"},
				{"SourceDisksFiles.x86", "vscsicoin.dll = 2001,,,,,,,3001,0,0"},
				{"FileFlags", "vscsi.sys = 16"},
				{"SCSI.Load", "vscsi = vscsi.sys,4"},
				{"SCSI", `vscsi = "Example Ultra320 SCSI Controller (Windows XP)"`},
				{"HardwareIdsDatabase", `PCI\VEN_1000&DEV_0030 = "vscsi"`},
				{"HardwareIdsDatabase", `PCI\VEN_1000&DEV_0032 = "vscsi"`},
			} {
				if !tmHas(sif, c.section, c.line) {
					t.Errorf("txtsetup.sif [%s] lacks %s", c.section, c.line)
				}
			}
			if dn := p.texts.text(DosNetINF); tt.boot == "" {
				for _, c := range []struct{ section, line string }{
					{"Directories", `d11 = \i386\scsidrv\vscsi_xp`},
					{"OptionalSrcDirs", `scsidrv\vscsi_xp`},
					{"Files", "d11,vscsi.sys"},
					{"Files", "d11,vscsi.inf"},
					{"Files", "d1,vscsi.sys"},
					{"FloppyFiles.1", "d1,vscsi.sys"},
				} {
					if !tmHas(dn, c.section, c.line) {
						t.Errorf("dosnet.inf [%s] lacks %s", c.section, c.line)
					}
				}
			} else if dn != nil {
				t.Error("dosnet.inf in a local source")
			}
			hs := p.texts.text(HiveSysINF)
			for _, l := range []string{
				`HKLM,"SYSTEM\CurrentControlSet\Services\vscsi\Parameters\PnpInterface","5",0x00010001,1`,
				`HKLM,"SYSTEM\CurrentControlSet\Services\vscsi\Parameters\Device","DriverParameter",0x00000000,"DisableTaggedQueueing=0"`,
				`HKLM,"SYSTEM\CurrentControlSet\Services\vscsi","Tag",0x00010001,32`,
			} {
				if !tmHas(hs, "AddReg", l) {
					t.Errorf("hivesys.inf lacks %s", l)
				}
			}
			for _, want := range []string{
				`SetupRegHIV [ControlSet001\Services\vscsi\Parameters\PnpInterface] set 5 = dword:1`,
				`SetupRegHIV [ControlSet001\Services\vscsi] set Tag = dword:32`,
			} {
				found := false
				for _, e := range p.Edits {
					found = found || strings.EqualFold(e.String(), strings.Replace(want, "SetupRegHIV", SetupRegHIV, 1))
				}
				if !found {
					t.Errorf("no edit %s", want)
				}
			}
			if v, _ := regValue(p.texts.text(HiveSftINF), `SOFTWARE\Microsoft\Windows\CurrentVersion`, "DevicePath"); !strings.HasPrefix(v, `%SystemRoot%\TEMP\SCSIDRV\vscsi_xp;`) {
				t.Errorf("DevicePath %q", v)
			}
			if !hasWarning(p, "vscsicoin.dll is not an 8.3 name") {
				t.Errorf("no 8.3 warning: %q", p.Warnings)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			xp := string(integratetest.FakePE(integratetest.I386, "vscsi xp"))
			files := map[string]string{
				tt.setup + "/vscsi.sys":                      xp,
				tt.setup + "/scsidrv/vscsi_xp/vscsi.sys":     xp,
				tt.setup + "/scsidrv/vscsi_xp/vscsi.inf":     integratetest.CRLF(integratetest.SCSIINF),
				tt.setup + "/scsidrv/vscsi_xp/vscsi.cat":     "catalog",
				tt.setup + "/scsidrv/vscsi_xp/vscsicoin.dll": string(integratetest.FakePE(integratetest.I386, "coinstaller")),
			}
			if tt.boot != "" {
				files[tt.boot+"/vscsi.sys"] = xp
			}
			for f, want := range files {
				if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f))); err != nil || string(b) != want {
					t.Errorf("%s: %q, %v", f, b, err)
				}
			}

			done := integratetest.Snapshot(t, root)
			p2, err := tmIntegrate(t, root, dir, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p2.Edits {
				if e.Changed {
					t.Errorf("second run: %s", e)
				}
			}
			if ch := pkChanged(t, p2); len(ch) != 0 {
				t.Errorf("second run changes %v", ch)
			}
			if err := p2.Commit(); err != nil {
				t.Fatal(err)
			}
			integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
		})
	}
}

// TestTextModeDriver2000 picks the 2000 option by name: SourceDisksFiles
// without fields 10–12, the driver from its own subdirectory.
func TestTextModeDriver2000(t *testing.T) {
	root := win2000(t)
	p, err := tmIntegrate(t, root, tmPackage(t, tmOEM, integratetest.I386), "vscsi_2k")
	if err != nil {
		t.Fatal(err)
	}
	sif := p.texts.text(TxtSetupSIF)
	if !tmHas(sif, "SourceDisksFiles.x86", "vscsi.sys = 1,,,,,,4_,4,3,3") {
		t.Errorf("2000 SourceDisksFiles line missing: %q", sif.Entries("SourceDisksFiles.x86"))
	}
	if tmHas(sif, "HardwareIdsDatabase", `PCI\VEN_1000&DEV_0032 = "vscsi"`) {
		t.Error("the XP option's IDs used")
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "I386", "vscsi.sys")); string(b) != string(integratetest.FakePE(integratetest.I386, "vscsi 2000")) {
		t.Errorf("I386/vscsi.sys is %q", b)
	}
}

// TestTextModeDriverRefused: an unknown or ambiguous option, a binary of
// the other architecture: an error naming the file, nothing planned.
func TestTextModeDriverRefused(t *testing.T) {
	noDefaults := strings.Replace(tmOEM, "scsi = VSCSI_XP\r\n", "", 1)
	for _, tt := range []struct {
		name    string
		oem     string
		machine uint16
		id      string
		wantErr error
		msg     string
	}{
		{"unknown", tmOEM, integratetest.I386, "nope", nil, "no [scsi] option nope (available: VSCSI_2K, VSCSI_XP)"},
		{"ambiguous", noDefaults, integratetest.I386, "", nil, "name one (available: VSCSI_2K, VSCSI_XP)"},
		{"arch", tmOEM, integratetest.AMD64, "", ErrArch, "vscsi.sys is for machine 0x8664, the setup tree is x86"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			before := integratetest.Snapshot(t, root)
			p, err := tmIntegrate(t, root, tmPackage(t, tt.oem, tt.machine), tt.id)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.msg)
			}
			if !strings.Contains(err.Error(), "txtsetup.oem") && tt.wantErr == nil {
				t.Errorf("error %q does not name txtsetup.oem", err)
			}
			if len(p.Edits) != 0 {
				t.Errorf("edits planned: %v", p.Edits)
			}
			if ch := pkChanged(t, p); len(ch) != 0 {
				t.Errorf("files planned: %v", ch)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
		})
	}
}

func TestIs83(t *testing.T) {
	for name, want := range map[string]bool{
		"vscsi.sys": true, "VSCSI.SYS": true, "e1000325.sys": true, "noext": true, "a_b-c~1.x": true,
		"sanbootconf.sys": false, "vscsi.sys2": false, "a.b.c": false, ".sys": false, "a b.sys": false, "ü.sys": false,
	} {
		if got := is83(name); got != want {
			t.Errorf("is83(%q) = %v", name, got)
		}
	}
}
