package integrate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

func replaceIn(t testing.TB, name, old, new string) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	writeFile(t, name, []byte(strings.Replace(string(b), old, new, 1)))
}

// lowerMedia is media copied with lower-case names (an nLite folder on a
// case-sensitive filesystem).
func lowerMedia(t testing.TB) string {
	root := makeMedia(t)
	os.Rename(filepath.Join(root, "I386", "TXTSETUP.SIF"), filepath.Join(root, "I386", "txtsetup.sif"))
	os.Rename(filepath.Join(root, "I386"), filepath.Join(root, "i386"))
	return root
}

func x64Server(t testing.TB) string {
	root := makeMedia(t)
	d := filepath.Join(root, "I386")
	replaceIn(t, filepath.Join(d, "TXTSETUP.SIF"), "MinorVersion = 1", "MinorVersion = 2")
	replaceIn(t, filepath.Join(d, "HIVESYS.INF"), `"WinNT"`, `"ServerNT"`)
	replaceIn(t, filepath.Join(d, "HIVESYS.INF"), "0x200", "0x100")
	replaceIn(t, filepath.Join(d, "HIVESFT.INF"), "Windows XP", "Windows Server 2003")
	if err := os.Rename(d, filepath.Join(root, "AMD64")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "I386"), 0o755) // x64 media carry both
	return root
}

func win2000(t testing.TB) string {
	root := makeMedia(t)
	d := filepath.Join(root, "I386")
	replaceIn(t, filepath.Join(d, "TXTSETUP.SIF"), "MinorVersion = 1", "MinorVersion = 0")
	replaceIn(t, filepath.Join(d, "HIVESYS.INF"), "0x200", "0x400")
	replaceIn(t, filepath.Join(d, "HIVESFT.INF"), "Windows XP", "Windows 2000")
	return root
}

// noVersionInfo drops CSDVersion and ProductType: the service pack then
// comes from the WIN51IP.SP2 tag file, the product type from txtsetup.sif.
func noVersionInfo(t testing.TB) string {
	root := makeMedia(t)
	d := filepath.Join(root, "I386")
	replaceIn(t, filepath.Join(d, "HIVESYS.INF"), `HKLM,"SYSTEM\CurrentControlSet\Control\Windows","CSDVersion",0x00010001,0x200`, "")
	replaceIn(t, filepath.Join(d, "HIVESYS.INF"), `HKLM,"SYSTEM\CurrentControlSet\Control\ProductOptions","ProductType",0x00000000,"WinNT"`, "")
	return root
}

var detectTests = []struct {
	name     string
	source   func(testing.TB) string
	layout   Layout
	setupDir string
	os       string
	sp       int
	target   drivers.Target
	warnings int
}{
	{"media", makeMedia, Media, "I386", "XP", 2, drivers.WinXP, 0},
	{"lower-case", lowerMedia, Media, "i386", "XP", 2, drivers.WinXP, 0},
	{"local-source", makeLocalSource, LocalSource, "$WIN_NT$.~LS/I386", "XP", 2, drivers.WinXP, 0},
	{"2003-x64", x64Server, Media, "AMD64", "2003", 1, drivers.Win2003x64, 0},
	{"2000", win2000, Media, "I386", "2000", 4, drivers.Win2000, 0},
	{"tag-files", noVersionInfo, Media, "I386", "XP", 2, drivers.WinXP, 2},
}

func TestDetect(t *testing.T) {
	for _, tt := range detectTests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := Detect(DirFS(tt.source(t)))
			if err != nil {
				t.Fatal(err)
			}
			if tr.Layout != tt.layout || tr.SetupDir != tt.setupDir || tr.OS != tt.os || tr.ServicePack != tt.sp {
				t.Errorf("got layout %v, setup dir %q, OS %q, SP %d; want %v, %q, %q, %d",
					tr.Layout, tr.SetupDir, tr.OS, tr.ServicePack, tt.layout, tt.setupDir, tt.os, tt.sp)
			}
			if got := tr.Target(); !reflect.DeepEqual(got, tt.target) {
				t.Errorf("target %v, want %v", got, tt.target)
			}
			if len(tr.Warnings) != tt.warnings {
				t.Errorf("warnings %q, want %d", tr.Warnings, tt.warnings)
			}
			for _, f := range []string{tr.TxtSetup, tr.SetupReg, tr.HiveSys, tr.HiveSft} {
				if _, err := tr.FS.Stat(f); err != nil {
					t.Error(err)
				}
			}
			if (tr.DosNet != "") != (tt.layout == Media) {
				t.Errorf("DosNet %q with layout %v", tr.DosNet, tt.layout)
			}
		})
	}
}

func TestDetectLocalSourceCopies(t *testing.T) {
	tr, err := Detect(DirFS(makeLocalSource(t)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"$WIN_NT$.~BT/TXTSETUP.SIF", "TXTSETUP.SIF"}
	if tr.BootDir != "$WIN_NT$.~BT" || !reflect.DeepEqual(tr.TxtSetupCopies, want) {
		t.Errorf("boot dir %q, copies %q; want $WIN_NT$.~BT, %q", tr.BootDir, tr.TxtSetupCopies, want)
	}
	if tr.HiveSys != "$WIN_NT$.~LS/I386/hivesys.inf" {
		t.Errorf("HiveSys %q does not keep the on-disk case", tr.HiveSys)
	}
}

var detectErrorTests = []struct {
	name    string
	source  func(testing.TB) string
	wantErr error
	msg     []string // the error names these
}{
	{"empty", func(t testing.TB) string { return t.TempDir() }, ErrNotSetupTree, []string{"I386"}},
	{"not-setup", func(t testing.TB) string {
		d := t.TempDir()
		writeFile(t, filepath.Join(d, "WINDOWS", "system32", "ntoskrnl.exe"), []byte("MZ"))
		return d
	}, ErrNotSetupTree, nil},
	{"no-txtsetup", func(t testing.TB) string {
		r := makeMedia(t)
		os.Remove(filepath.Join(r, "I386", "TXTSETUP.SIF"))
		return r
	}, ErrMissingFiles, []string{"TXTSETUP.SIF"}},
	{"no-dosnet-hivesft", func(t testing.TB) string {
		r := makeMedia(t)
		os.Remove(filepath.Join(r, "I386", "DOSNET.INF"))
		os.Remove(filepath.Join(r, "I386", "HIVESFT.INF"))
		return r
	}, ErrMissingFiles, []string{"HIVESFT.INF", "DOSNET.INF"}},
	{"no-setupreg", func(t testing.TB) string {
		r := makeLocalSource(t)
		os.Remove(filepath.Join(r, "$WIN_NT$.~LS", "I386", "SETUPREG.HIV"))
		return r
	}, ErrMissingFiles, []string{"SETUPREG.HIV"}},
	{"ls-without-bt", func(t testing.TB) string {
		r := makeLocalSource(t)
		os.RemoveAll(filepath.Join(r, "$WIN_NT$.~BT"))
		return r
	}, ErrMissingFiles, []string{"$WIN_NT$.~BT"}},
	{"amd64-xp-version", func(t testing.TB) string {
		r := makeMedia(t)
		os.Rename(filepath.Join(r, "I386"), filepath.Join(r, "AMD64"))
		return r
	}, ErrUnsupported, []string{"5.1"}},
	{"name-version-conflict", func(t testing.TB) string {
		r := makeMedia(t)
		replaceIn(t, filepath.Join(r, "I386", "HIVESFT.INF"), "Windows XP", "Windows 2000")
		return r
	}, ErrUnsupported, []string{"Windows 2000", "5.1"}},
	{"ia64", func(t testing.TB) string {
		r := makeMedia(t)
		os.Rename(filepath.Join(r, "I386"), filepath.Join(r, "IA64"))
		return r
	}, ErrUnsupported, []string{"IA64"}},
}

func TestDetectErrors(t *testing.T) {
	for _, tt := range detectErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.source(t)
			before := integratetest.Snapshot(t, root)
			_, err := Detect(DirFS(root))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not name %s", err, m)
				}
			}
			integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
		})
	}
}

func TestDirFS(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "I386", "TXTSETUP.SIF"), []byte("a"))
	fsys := DirFS(root)
	if b, err := imagefs.ReadFile(fsys, "i386/txtsetup.sif"); err != nil || string(b) != "a" {
		t.Fatalf("case-insensitive read: %q, %v", b, err)
	}
	if err := imagefs.WriteBytes(fsys, "i386/txtsetup.sif", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := imagefs.WriteBytes(fsys, "i386/New.Inf", []byte("c")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "I386"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"New.Inf", "TXTSETUP.SIF"}) {
		t.Errorf("directory holds %q: the write must keep the existing name and leave no temp file", names)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "I386", "TXTSETUP.SIF")); string(b) != "b" {
		t.Errorf("content %q", b)
	}
	if _, err := imagefs.ReadFile(fsys, "../x"); err == nil {
		t.Error("reading ../x succeeded")
	}
	if _, err := fsys.Stat("i386/missing"); !isNotExist(err) {
		t.Errorf("Stat of a missing file: %v", err)
	}
}
