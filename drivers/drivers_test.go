package drivers

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// shared is the shared test-data directory (real INFs, never copied).
const shared = "../../shared/testdata/inf"

// golden compares got with testdata/name.golden, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			g, w := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s", path, i+1, g, w)
			}
		}
	}
}

type planDump struct {
	Target   string
	Devices  []*Device
	Warnings []string `json:",omitempty"`
}

func dump(t *testing.T, tg Target, devs []*Device, warn []string) []byte {
	return jsonDump(t, planDump{tg.String(), devs, warn})
}

// jsonDump renders v as indented JSON, & and < left as they are.
func jsonDump(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sanbootPackage builds a temporary package directory around the real
// sanbootconf.inf (linked, not copied) with stand-in driver binaries.
func sanbootPackage(t *testing.T) string {
	dir := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(shared, "sanbootconf.inf"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("shared INF: %v", err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "sanbootconf.inf")); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"i386", "amd64"} {
		os.Mkdir(filepath.Join(dir, a), 0o755)
		os.WriteFile(filepath.Join(dir, a, "sanbootconf.sys"), []byte("MZ"), 0o644)
	}
	return dir
}

var resolveTests = []struct {
	name   string
	dir    string // package directory; "sanboot" builds one around the shared INF
	target Target
	count  int // devices expected
}{
	{"sanbootconf-xp", "sanboot", WinXP, 1},
	{"sanbootconf-2000", "sanboot", Win2000, 1},
	{"sanbootconf-2003x64", "sanboot", Win2003x64, 1},
	{"e1000-xp", "testdata/e1000", WinXP, 8},
	{"e1000-2000", "testdata/e1000", Win2000, 2},
	{"e1000-2003", "testdata/e1000", Win2003, 4},
	{"e1000-xpx64", "testdata/e1000", WinXPx64, 3},
	{"iscsi-xp", "testdata/iscsi", WinXP, 1},
	{"iscsi-2003x64", "testdata/iscsi", Win2003x64, 1},
	{"iscsi-2000", "testdata/iscsi", Win2000, 0},
	{"vbus-xp", "testdata/vbus", WinXP, 1},
	{"vbus-2003", "testdata/vbus", Win2003, 1},
	{"vbus-xpx64", "testdata/vbus", WinXPx64, 1},
	{"edge-xp", "testdata/edge", WinXP, 2},
	{"edge-xpx64", "testdata/edge", WinXPx64, 1},
}

// TestResolveGolden resolves real and synthetic packages for several
// targets and compares the whole plan (devices, IDs, files, services,
// registry operations) with golden files.
func TestResolveGolden(t *testing.T) {
	for _, tt := range resolveTests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if dir == "sanboot" {
				dir = sanbootPackage(t)
			}
			p, err := OpenPackage(dir)
			if err != nil {
				t.Fatal(err)
			}
			devs, err := p.Resolve(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if len(devs) != tt.count {
				t.Errorf("%d devices, want %d", len(devs), tt.count)
			}
			var warn []string
			for _, f := range p.INFs {
				warn = append(warn, f.Warnings...)
			}
			golden(t, "resolve-"+tt.name, dump(t, tt.target, devs, warn))
		})
	}
}

// TestSanbootconf checks the real sanbootconf.inf field by field: the
// boot-start service in group Base and its NOCLOBBER DWORD.
func TestSanbootconf(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(shared, "sanbootconf.inf"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseINF("sanbootconf.inf", data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version.ClassGUID != "{4d36e97d-e325-11ce-bfc1-08002be10318}" || f.Version.Provider != "Fen Systems Ltd." ||
		f.Version.DriverVer != "1.2.0" || f.Version.CatalogFile != "sanbootconf.cat" {
		t.Errorf("version %+v", f.Version)
	}
	devs, err := f.Resolve(Win2003x64)
	if err != nil {
		t.Fatal(err)
	}
	d := devs[0]
	if d.ModelsSection != "FenSystems.ntamd64" || d.HardwareID != `ROOT\sanbootconf` {
		t.Errorf("models %s id %s", d.ModelsSection, d.HardwareID)
	}
	want := FileCopy{Source: "amd64/sanbootconf.sys", Dest: `system32\DRIVERS\sanbootconf.sys`, DirID: 12,
		Section: "Files.Driver", INF: "sanbootconf.inf", Line: 34}
	if len(d.Files) != 1 || d.Files[0] != want {
		t.Errorf("files %+v", d.Files)
	}
	s := d.Services[0]
	if s.Name != "sanbootconf" || s.StartType != 0 || s.LoadOrderGroup != "Base" || s.ServiceType != 1 ||
		s.ErrorControl != 1 || s.ImagePath != `system32\DRIVERS\sanbootconf.sys` || s.Flags != 2 {
		t.Errorf("service %+v", s)
	}
	op := s.Registry[0]
	if op.Root != "HKR" || op.Key != "Parameters" || op.Value != "BootText" || op.Type != RegDWORD ||
		op.Data.Kind != KindDWORD || op.Data.DWord != 1 || !op.NoClobber() {
		t.Errorf("reg %+v", op)
	}
}

// regValue returns the data of the value name set for d as the Go value
// of its kind, for comparison with literals.
func regValue(d *Device, name string) any {
	for _, op := range d.Registry {
		if op.Value == name && op.Op == OpSet {
			switch op.Data.Kind {
			case KindString:
				return op.Data.Str
			case KindMulti:
				return op.Data.Multi
			case KindDWORD:
				return op.Data.DWord
			case KindBinary:
				return op.Data.Bin
			}
		}
	}
	return nil
}

// TestParseEdge checks quoting, %strings%, %% escapes, continuations,
// merged sections, the windows-1252 code page, Ctrl-Z and the locale's
// [Strings.0407].
func TestParseEdge(t *testing.T) {
	data, err := os.ReadFile("testdata/edge/edge.inf")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseINF("edge.inf", data)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := f.Resolve(WinXP)
	if err != nil {
		t.Fatal(err)
	}
	d := devs[0]
	checks := map[string]any{
		"Mid": "preSpost", "Quoted": "in S quotes", "Percent": "100% sure", "Double": `say "hi", then go`,
		"Semi": "a;b", "Comma": "x,y", "Unknown": "%NoSuchString%", "DirID": `%11%\edge.dll`,
		"Locale": "English", "Spaces": "  padded  ", "Ansi": "café ®", "Empty": "",
		"Cont": []string{"one", "two", "three"}, "Second": uint32(0x20), "Merged": uint32(42),
	}
	for k, want := range checks {
		if got := regValue(d, k); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	if d.HardwareID != `ROOT\EDGE` || !reflect.DeepEqual(d.CompatibleIDs, []string{"*EDGE0001"}) {
		t.Errorf("ids %s %q", d.HardwareID, d.CompatibleIDs)
	}
	if d.Description != "Edge device, unquoted, with commas" || d.Provider != `Edge "Quoted" Corp` {
		t.Errorf("desc %q provider %q", d.Description, d.Provider)
	}
	if f.Version.DriverVer != "3.4.5.6" || f.Encoding != "windows-1252" {
		t.Errorf("driverver %q encoding %s", f.Version.DriverVer, f.Encoding)
	}
	if f.Section("Garbage") != nil {
		t.Error("section after Ctrl-Z parsed")
	}
	if len(f.Warnings) != 2 || !strings.Contains(f.Warnings[0], "edge.inf:2:") || !strings.Contains(f.Warnings[1], "NoSuchString") {
		t.Errorf("warnings %q", f.Warnings)
	}
	if s := d.Services[0]; s.ImagePath != `%SystemRoot%\system32\edge.exe` || s.StartName != "LocalSystem" {
		t.Errorf("service %+v", s)
	}
	de, err := ParseINFOptions("edge.inf", data, ParseOptions{LangID: 0x0407})
	if err != nil {
		t.Fatal(err)
	}
	devs, _ = de.Resolve(WinXP)
	if got := regValue(devs[0], "Locale"); got != "Deutsch" || devs[0].Description != "Edge-Gerät" {
		t.Errorf("German: Locale %v, desc %q", got, devs[0].Description)
	}
}

// TestUTF16 reads the UTF-16LE INF.
func TestUTF16(t *testing.T) {
	data, _ := os.ReadFile("testdata/edge/utf16.inf")
	f, err := ParseINF("utf16.inf", data)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := f.Resolve(WinXP)
	if err != nil {
		t.Fatal(err)
	}
	if f.Encoding != "utf-16le" || devs[0].Description != "Réseau 8139 — Ethernet" || regValue(devs[0], "Motto") != "Ünïcødé — 日本語 ✓" {
		t.Errorf("encoding %s desc %q motto %v", f.Encoding, devs[0].Description, regValue(devs[0], "Motto"))
	}
}

// TestDecorations checks the choice among TargetOSVersion decorations.
func TestDecorations(t *testing.T) {
	tests := []struct {
		decos  string
		target Target
		want   string // "-" = none applies
	}{
		{"NTx86.5.1,NTamd64", WinXP, "NTx86.5.1"},
		{"NTx86.5.1,NTamd64", Win2000, ""},
		{"NTx86.5.1,NTamd64", Win2003, "NTx86.5.1"},
		{"NTx86.5.1,NTamd64", WinXPx64, "NTamd64"},
		{"NTx86.5.1,NTx86.5.2", Win2003, "NTx86.5.2"},
		{"NTx86.5.2", WinXP, ""},
		{"NTx86.5.2", WinXPx64, "-"},
		{"NT,NTx86", WinXP, "NTx86"},
		{"NT", WinXPx64, "-"},
		{"NT.5.1", WinXP, "NT.5.1"},
		{"NTx86,NTx86.5.2.3", Win2003, "NTx86.5.2.3"},
		{"NTx86,NTx86.5.2.3", WinXP, "NTx86"},
		{"ntX86.5.1", WinXP, "ntX86.5.1"},
		{"NTx86.5.2.1", Win2003, ""},
		{"NTamd64.5.2.3", Win2003x64, "NTamd64.5.2.3"},
		{"NTamd64.5.2.3", WinXPx64, "-"},
		{"NTx86.5.1.1.0x10", WinXP, ""},
		{"NTx86.5.1.1.0x10", Target{5, 1, "x86", 1, 0x110}, "NTx86.5.1.1.0x10"},
		{"NTia64,bogus", WinXP, ""},
	}
	for _, tt := range tests {
		got, ok := chooseDecoration(strings.Split(tt.decos, ","), tt.target)
		if !ok {
			got = "-"
		}
		if got != tt.want {
			t.Errorf("%s on %v: %q, want %q", tt.decos, tt.target, got, tt.want)
		}
	}
}

const okHead = "[Version]\nSignature=\"$Windows NT$\"\nClass=System\nClassGUID={4D36E97D-E325-11CE-BFC1-08002BE10318}\n" +
	"[Manufacturer]\nM=Models\n[Models]\nDev=Inst,ROOT\\X\n[DestinationDirs]\nDefaultDestDir=12\n" +
	"[SourceDisksNames]\n1=Disk,,,\\bin\n[SourceDisksFiles]\nx.sys=1\n"

// TestErrors: every bad input gives an *Error naming file and line.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, inf, want string
	}{
		{"no version", "[Foo]\na=b\n", "bad.inf: no [Version] section"},
		{"signature", "[Version]\nSignature=\"$Linux$\"\n", "bad.inf:1: [Version] Signature"},
		{"header", "[Version\n", "bad.inf:1: section header"},
		{"guid", "[Version]\nSignature=$Chicago$\nClassGUID={nope}\n", "bad.inf:3: ClassGUID"},
		{"needs", okHead + "[Inst]\nNeeds=Foo\n", "bad.inf:16: section [Foo] referenced by Needs is missing"},
		{"include", okHead + "[Inst]\nInclude=machine.inf\nNeeds=PCI_DRV\n", "bad.inf:16: included INF machine.inf is not in the package"},
		{"install", okHead, "bad.inf:8: install section [Inst] for ROOT\\X is missing"},
		{"models", strings.Replace(okHead, "[Models]", "[Other]", 1), "bad.inf:6: models section [Models] is missing"},
		{"copyfiles", okHead + "[Inst]\nCopyFiles=Nope\n", "bad.inf:16: section [Nope] referenced by CopyFiles is missing"},
		{"dotdot", okHead + "[Inst]\nCopyFiles=F\n[F]\n..\\x.sys\n", `bad.inf:18: [F]: file name "..\x.sys" is a path`},
		{"abs", okHead + "[Inst]\nCopyFiles=F\n[F]\nx.sys,C:\\x.sys\n", `bad.inf:18: [F]: file name "C:\x.sys" is a path`},
		{"direct", okHead + "[Inst]\nCopyFiles=@sub\\x.sys\n", `bad.inf:16: CopyFiles: file name "sub\x.sys" is a path`},
		{"diskpath", strings.Replace(okHead, `\bin`, `\..\..\etc`, 1) + "[Inst]\nCopyFiles=@x.sys\n", `bad.inf:12: source path: path "..\..\etc" leaves its directory`},
		{"subdir", okHead + "[Inst]\nCopyFiles=@y.sys\n[SourceDisksFiles.x86]\ny.sys=1,..\\up\n", "bad.inf:12: source path"},
		{"unlisted", okHead + "[Inst]\nCopyFiles=@z.sys\n", "bad.inf:16: file z.sys is not listed in [SourceDisksFiles]"},
		{"disk", okHead + "[Inst]\nCopyFiles=@q.sys\n[SourceDisksFiles.x86]\nq.sys=7\n", "bad.inf:18: disk 7 of q.sys"},
		{"destdir", okHead + "[Inst]\nCopyFiles=F\n[F]\nx.sys\n[DestinationDirs]\nF=-1,C:\\abs\n", "DIRID -1 is not supported"},
		{"destsub", okHead + "[Inst]\nCopyFiles=F\n[F]\nx.sys\n[DestinationDirs]\nF=12,..\\..\\x\n", "bad.inf:20: DestinationDirs: path"},
		{"root", okHead + "[Inst]\nAddReg=R\n[R]\nHKXX,Key,V,0,1\n", "bad.inf:18: [R]: unknown registry root"},
		{"dword", okHead + "[Inst]\nAddReg=R\n[R]\nHKR,,V,0x10001,abc\n", "bad.inf:18: [R]: DWORD"},
		{"binary", okHead + "[Inst]\nAddReg=R\n[R]\nHKR,,V,1,zz\n", "bad.inf:18: [R]: binary byte"},
		{"service section", okHead + "[Inst]\n[Inst.Services]\nAddService=x,2,Missing\n", "bad.inf:17: section [Missing] is missing"},
		{"service fields", okHead + "[Inst]\n[Inst.Services]\nAddService=x,2,S\n[S]\nServiceType=1\n", "bad.inf:17: service-install section [S] of x lacks starttype"},
		{"binary dirid", okHead + "[Inst]\n[Inst.Services]\nAddService=x,2,S\n[S]\nServiceType=1\nStartType=0\nErrorControl=1\nServiceBinary=C:\\x.sys\n", `bad.inf:22: path "C:\x.sys" does not start with a %DIRID%`},
		{"binary dotdot", okHead + "[Inst]\n[Inst.Services]\nAddService=x,2,S\n[S]\nServiceType=1\nStartType=0\nErrorControl=1\nServiceBinary=%12%\\..\\..\\x.sys\n", "leaves its directory"},
		{"service name", okHead + "[Inst]\n[Inst.Services]\nAddService=a\\b,2,S\n", "bad.inf:17: AddService: file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseINF("bad.inf", []byte(tt.inf))
			if err == nil {
				_, err = f.Resolve(WinXP)
			}
			var e *Error
			if err == nil || !errors.As(err, &e) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPackageMissingFile: a file the INF copies but the package lacks is
// refused, naming the INF line.
func TestPackageMissingFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "X.INF"), []byte(okHead+"[Inst]\nCopyFiles=@x.sys\n"), 0o644)
	p, err := OpenPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Resolve(WinXP)
	if err == nil || !strings.Contains(err.Error(), "X.INF:16: file x.sys (bin/x.sys) is not in the package") {
		t.Fatalf("error %v", err)
	}
	os.Mkdir(filepath.Join(dir, "BIN"), 0o755)
	os.WriteFile(filepath.Join(dir, "BIN", "X.SYS"), nil, 0o644)
	p, _ = OpenPackage(dir)
	devs, err := p.Resolve(WinXP)
	if err != nil || devs[0].Files[0].Source != "BIN/X.SYS" {
		t.Fatalf("case-insensitive lookup: %v %+v", err, devs)
	}
	if _, err := OpenPackage(t.TempDir()); err == nil {
		t.Error("empty directory accepted")
	}
	if _, err := p.Resolve(Target{5, 1, "arm", 1, 0}); err == nil {
		t.Error("arm target accepted")
	}
}

// TestTxtSetupOEM resolves the synthetic text-mode disk against golden
// output, and checks its errors.
func TestTxtSetupOEM(t *testing.T) {
	p, err := OpenPackage("testdata/textmode")
	if err != nil {
		t.Fatal(err)
	}
	if p.TxtSetup == nil || len(p.INFs) != 0 {
		t.Fatalf("txtsetup %v, %d INFs", p.TxtSetup, len(p.INFs))
	}
	golden(t, "txtsetup-textmode", jsonDump(t, p.TxtSetup))
	head := "[Disks]\nd1 = \"Disk\",\\tag,\\drv\n[scsi]\nX = \"X\"\n"
	bad := []struct{ oem, want string }{
		{"[scsi]\n", "t.oem: no [Disks] section"},
		{head, "t.oem:4: section [Files.scsi.X] is missing"},
		{head + "[Files.scsi.X]\ndriver = d9, x.sys, X\n", "t.oem:6: [Files.scsi.X]: disk \"d9\""},
		{head + "[Files.scsi.X]\ndriver = d1, ..\\x.sys, X\n", "is a path"},
		{"[Disks]\nd1 = \"Disk\",\\tag,\\..\\up\n", "t.oem:2: [Disks] d1: path"},
		{head + "[Files.scsi.X]\ndriver = d1, x.sys, X\n[Config.X]\nvalue = \"\", Tag, REG_DWORD, zz\n", "t.oem:8: [Config.X]: REG_DWORD"},
		{head + "[Files.scsi.X]\ndriver = d1, x.sys, X\n[Config.X]\nvalue = \"\", Tag, REG_FOO, 1\n", "unknown value type"},
		{head + "[Files.scsi.X]\ndriver = d1, x.sys, X\n[HardwareIds.scsi.X]\nid = \"PCI\\VEN_1\"\n", "t.oem:8: [HardwareIds.scsi.X]: id line needs"},
		{head + "[Files.scsi.X]\n[Defaults]\nscsi = Y\n", "[Defaults] scsi = Y"},
	}
	for _, tt := range bad {
		_, err := ParseTxtSetupOEM("t.oem", []byte(tt.oem))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.oem, err, tt.want)
		}
	}
	// Driver disks put their files in the root: "\\" ends the [Disks] line
	// and must not join the next one, as an INF continuation would.
	root, err := ParseTxtSetupOEM("t.oem", []byte("[Disks]\nd1 = \"Disk\",\\tag,\\\nd2 = \"Disk 2\",\\tag2,\\sub\n"))
	if err != nil {
		t.Fatalf("root-directory disk: %v", err)
	}
	if len(root.Disks) != 2 || root.Disks[0].Directory != "" || root.Disks[1].Directory != "sub" {
		t.Errorf("root-directory disk: %+v", root.Disks)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "txtsetup.oem"), []byte(head+"[Files.scsi.X]\ndriver = d1, x.sys, X\n"), 0o644)
	if _, err := OpenPackage(dir); err == nil || !strings.Contains(err.Error(), "txtsetup.oem:6: file x.sys (drv/x.sys) is not in the package") {
		t.Errorf("missing driver: %v", err)
	}
}

var fuzzTargets = []Target{Win2000, WinXP, Win2003, WinXPx64}

// FuzzParseINF parses arbitrary INFs and resolves them for every target:
// no panic, errors are *Error, and parsing is deterministic.
func FuzzParseINF(f *testing.F) {
	for _, p := range []string{filepath.Join(shared, "sanbootconf.inf"), "testdata/e1000/e1000325.inf",
		"testdata/iscsi/iscsi.inf", "testdata/vbus/vbusnic.inf", "testdata/edge/edge.inf", "testdata/edge/utf16.inf"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inf, err := ParseINF("fuzz.inf", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			return
		}
		again, err := ParseINF("fuzz.inf", data)
		if err != nil || !reflect.DeepEqual(inf.Sections, again.Sections) || !reflect.DeepEqual(inf.Strings, again.Strings) {
			t.Fatalf("second parse differs: %v", err)
		}
		for _, tg := range fuzzTargets {
			devs, err := inf.Resolve(tg)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("resolve error %T %v is not *Error", err, err)
				}
				continue
			}
			for _, d := range devs {
				for _, fc := range d.Files {
					if strings.Contains(fc.Source, "..") && checkRelPath(fc.Source) != nil || strings.HasPrefix(fc.Source, "/") {
						t.Fatalf("unsafe source %q", fc.Source)
					}
				}
			}
		}
	})
}

// FuzzTxtSetupOEM parses arbitrary txtsetup.oem files: no panic, and no
// file source escaping the package.
func FuzzTxtSetupOEM(f *testing.F) {
	if b, err := os.ReadFile("testdata/textmode/TXTSETUP.OEM"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseTxtSetupOEM("fuzz.oem", data)
		if err != nil {
			return
		}
		for _, opt := range o.Options {
			for _, fl := range opt.Files {
				if checkRelPath(fl.Source) != nil {
					t.Fatalf("unsafe source %q", fl.Source)
				}
			}
		}
	})
}

// TestExpandDirIDs expands DIRIDs in registry strings against a Windows
// directory.
func TestExpandDirIDs(t *testing.T) {
	tests := []struct{ in, arch, want string }{
		{`%11%\edge.dll`, "x86", `C:\WINDOWS\system32\edge.dll`},
		{`"%12%\x.sys" /a %10%`, "x86", `"C:\WINDOWS\system32\DRIVERS\x.sys" /a C:\WINDOWS`},
		{`%16422%\Vendor`, "x86", `C:\Program Files\Vendor`},
		{`%16426%\V`, "amd64", `C:\Program Files (x86)\V`},
		{`%24%`, "x86", `C:`},
		{`%9999%\a %x% 100%`, "x86", `%9999%\a %x% 100%`},
	}
	for _, tt := range tests {
		if got := ExpandDirIDs(tt.in, `C:\WINDOWS`, tt.arch); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestSystemInclude: Include= may name an INF of the target system given
// in Package.System; without it the package is refused.
func TestSystemInclude(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.inf"), []byte(okHead+"[Inst]\nInclude=machine.inf\nNeeds=PCI_DRV\n"), 0o644)
	p, err := OpenPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Resolve(WinXP); err == nil || !strings.Contains(err.Error(), "x.inf:16: included INF machine.inf") {
		t.Fatalf("error %v", err)
	}
	m, err := ParseINF(`I386\machine.inf`, []byte("[Version]\nSignature=$Windows NT$\n[PCI_DRV]\nAddReg=PCI_Reg\n[PCI_Reg]\nHKR,,FromMachine,0x10001,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	p.System = []*INF{m}
	devs, err := p.Resolve(WinXP)
	if err != nil {
		t.Fatal(err)
	}
	if op := devs[0].Registry[0]; op.Value != "FromMachine" || op.INF != `I386\machine.inf` || op.Line != 6 {
		t.Errorf("reg %+v", op)
	}
}

// TestCodePage: an ANSI INF is read in the code page of the locale asked
// for (windows-1251 for Russian), and [Strings.0419] applies.
func TestCodePage(t *testing.T) {
	src := "[Version]\r\nSignature=\"$Windows NT$\"\r\n[Strings]\r\nName=\"Network\"\r\n[Strings.0419]\r\nName=\"\xd1\xe5\xf2\xfc\"\r\n"
	f, err := ParseINFOptions("ru.inf", []byte(src), ParseOptions{LangID: 0x0419})
	if err != nil {
		t.Fatal(err)
	}
	if f.Encoding != "windows-1251" || f.Strings["name"] != "Сеть" {
		t.Errorf("encoding %s name %q", f.Encoding, f.Strings["name"])
	}
	f, _ = ParseINF("ru.inf", []byte(src))
	if f.Encoding != "windows-1252" || f.Strings["name"] != "Network" {
		t.Errorf("default: encoding %s name %q", f.Encoding, f.Strings["name"])
	}
}
