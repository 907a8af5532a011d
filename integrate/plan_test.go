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
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

type pkgFile struct {
	name string
	data []byte
}

// makePackage writes files (slash paths) to a new directory and returns it.
func makePackage(t testing.TB, files ...pkgFile) string {
	dir := t.TempDir()
	for _, f := range files {
		integratetest.WriteFile(t, dir, f.name, f.data)
	}
	return dir
}

// nicPackage returns a directory holding integratetest.NICPackage.
func nicPackage(t testing.TB, machine uint16) string {
	dir := t.TempDir()
	integratetest.NICPackage(t, dir, machine)
	return dir
}

// rootPackage returns a directory holding integratetest.RootPackage.
func rootPackage(t testing.TB) string {
	dir := t.TempDir()
	integratetest.RootPackage(t, dir)
	return dir
}

// scsiPackage returns a directory holding integratetest.SCSIPackage.
func scsiPackage(t testing.TB) string {
	dir := t.TempDir()
	integratetest.SCSIPackage(t, dir)
	return dir
}

// planWith detects the tree of fsys and plans every driver dir, with opts
// set before the first; it does not commit.
func planWith(t *testing.T, fsys imagefs.FS, opts Options, dirs ...string) (*Plan, error) {
	t.Helper()
	tr, err := Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(tr)
	if err != nil {
		t.Fatal(err)
	}
	p.Options = opts
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

// integrate runs detection and plans every driver dir; it does not commit.
func integrate(t *testing.T, root string, dirs ...string) (*Plan, error) {
	t.Helper()
	return planWith(t, DirFS(root), Options{}, dirs...)
}

func TestIntegrateMedia(t *testing.T) {
	root := makeMedia(t)
	pkgs := []string{nicPackage(t, integratetest.I386), rootPackage(t), scsiPackage(t)}
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

	before := integratetest.Snapshot(t, root)
	integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root)) // planning wrote nothing
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
		if after := integratetest.Snapshot(t, root)["I386/"+f]; after == before["I386/"+f] {
			t.Errorf("%s not written", f)
		}
	}

	// The second run finds everything in place and writes nothing.
	done := integratetest.Snapshot(t, root)
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
	integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
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
	pkgs := []string{nicPackage(t, integratetest.I386)}
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
	done := integratetest.Snapshot(t, root)
	p2, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
}

// amd64OnlyINF has no model section an x86 system can use.
var amd64OnlyINF = strings.Replace(strings.Replace(integratetest.NICINF, "NTx86.5.1", "NTamd64", -1), "E100E.ndi.NTx86", "E100E.ndi.NTamd64", -1)

func TestIntegrateRefused(t *testing.T) {
	for _, tt := range []struct {
		name    string
		pkg     func(testing.TB) string
		wantErr error
		msg     string
	}{
		{"amd64-binary", func(t testing.TB) string { return nicPackage(t, integratetest.AMD64) }, ErrArch, "is amd64, the setup tree is x86"},
		{"amd64-only-inf", func(t testing.TB) string {
			return makePackage(t, pkgFile{"e1000325.inf", []byte(amd64OnlyINF)},
				pkgFile{"x86/e1000325.sys", integratetest.FakePE(integratetest.AMD64, "")}, pkgFile{"x86/coinst/NicCo.dll", integratetest.FakePE(integratetest.AMD64, "")})
		}, ErrArch, "no device for NTx86.5.1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			before := integratetest.Snapshot(t, root)
			// A good driver first: the refusal must still leave the tree alone.
			p, err := integrate(t, root, rootPackage(t), tt.pkg(t))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v, want %v naming %q", err, tt.wantErr, tt.msg)
			}
			_ = p
			integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
		})
	}
}

// nic2000Package returns a PRO/1000-like package whose [Manufacturer]
// names only the undecorated models section [Intel], the form Windows
// 2000 reads, with one model (PCI\VEN_8086&DEV_100E).
func nic2000Package(t testing.TB) string {
	return makePackage(t,
		pkgFile{"e1000325.inf", []byte(strings.Replace(integratetest.NICINF, "%Intel% = Intel, NTx86.5.1", "%Intel% = Intel", 1) +
			"[Intel]\r\n%E100E.Desc% = E100E.ndi, PCI\\VEN_8086&DEV_100E\r\n")},
		pkgFile{"e1000325.cat", nil},
		pkgFile{"x86/e1000325.sys", integratetest.FakePE(integratetest.I386, "")},
		pkgFile{"x86/coinst/NicCo.dll", integratetest.FakePE(integratetest.I386, "")})
}

// TestIntegrate2000 checks the Windows 2000 forms: SourceDisksFiles
// without fields 10–12 unless the file is renamed, and no IPSec.
func TestIntegrate2000(t *testing.T) {
	root := win2000(t)
	p, err := integrate(t, root, nic2000Package(t), rootPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	sif := p.texts.text(TxtSetupSIF)
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
	dn := p.texts.text(DosNetINF)
	for _, e := range dn.Entries("FloppyFiles.1") {
		if strings.EqualFold(e.Value, "d1,ipsec.sy_") {
			t.Error("ipsec.sy_ in FloppyFiles.1 on Windows 2000")
		}
	}
}
