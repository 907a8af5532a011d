package installed_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/bootcheck"
	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
	"github.com/xpboot/xpboot/integrate/installed/installedtest"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// packages writes the NIC and sanbootconf packages and returns their
// directories with the iSCSI initiator's test package.
func packages(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	nic, sbc := filepath.Join(dir, "nic"), filepath.Join(dir, "sbc")
	integratetest.NICPackage(t, nic, integratetest.I386)
	integratetest.RootPackage(t, sbc)
	return []string{nic, "../../drivers/testdata/iscsi", sbc}
}

// integrateTree runs one integration of the three packages into fsys and
// returns the plan (committed unless dryRun).
func integrateTree(t *testing.T, fsys imagefs.FS, opts installed.Options, dryRun bool) *installed.Plan {
	t.Helper()
	sys, err := installed.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := installed.NewPlan(fsys, sys, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range packages(t) {
		pkg, err := drivers.OpenPackage(d)
		if err != nil {
			t.Fatal(err)
		}
		devs, err := pkg.Resolve(sys.Target())
		if err != nil {
			t.Fatal(err)
		}
		if sel, _ := integrate.SelectDevices(devs, []string{installedtest.NICID}); len(sel) > 0 {
			devs = sel
		}
		if err := p.AddDriver(pkg, devs); err != nil {
			t.Fatal(err)
		}
	}
	if !dryRun {
		if err := p.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			m[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameSnapshot(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	for k, v := range a {
		if w, ok := b[k]; !ok {
			t.Errorf("%s: %s is gone", what, k)
		} else if w != v {
			t.Errorf("%s: %s differs (%d bytes, was %d)", what, k, len(w), len(v))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s: %s is new", what, k)
		}
	}
}

func openHive(t *testing.T, p string) *hive.File {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if probs, err := hive.Check(bytes.NewReader(b), int64(len(b))); err != nil || len(probs) > 0 {
		t.Fatalf("%s fails the hive check: %v %v", p, err, probs)
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func value(t *testing.T, f *hive.File, key, name string) *hive.Value {
	t.Helper()
	k, err := f.Key(key)
	if err != nil {
		t.Fatalf("key %s: %v", key, err)
	}
	v, err := k.Value(name)
	if err != nil {
		t.Fatalf("%s\\%s: %v", key, name, err)
	}
	return v
}

func wantDWORD(t *testing.T, f *hive.File, key, name string, want uint32) {
	t.Helper()
	v := value(t, f, key, name)
	if v.Type != hive.DWORD || binary.LittleEndian.Uint32(v.Data) != want {
		t.Errorf("%s\\%s = %s, want dword:%d", key, name, integrate.RenderValue(v.Type, v.Data), want)
	}
}

func wantSZ(t *testing.T, f *hive.File, key, name, want string) {
	t.Helper()
	v := value(t, f, key, name)
	if (v.Type != hive.SZ && v.Type != hive.ExpandSZ) || !strings.EqualFold(hive.DecodeString(v.Data), want) {
		t.Errorf("%s\\%s = %s, want %q", key, name, integrate.RenderValue(v.Type, v.Data), want)
	}
}

func wantMulti(t *testing.T, f *hive.File, key, name string, want ...string) {
	t.Helper()
	v := value(t, f, key, name)
	got := hive.DecodeMultiString(v.Data)
	if v.Type != hive.MultiSZ || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s\\%s = %q, want %q", key, name, got, want)
	}
}

func wantMultiHas(t *testing.T, f *hive.File, key, name string, want ...string) {
	t.Helper()
	v := value(t, f, key, name)
	got := hive.DecodeMultiString(v.Data)
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.EqualFold(g, w)
		}
		if !found {
			t.Errorf("%s\\%s = %q lacks %q", key, name, got, w)
		}
	}
}

func TestDetect(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	sys, err := installed.Detect(integrate.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	if sys.Root != "WINDOWS" || sys.OS != "Windows XP" || sys.Arch != "x86" || sys.ProductType != 1 ||
		sys.Current != "ControlSet001" || strings.Join(sys.ControlSets, ",") != "ControlSet001,ControlSet002" || sys.ServicePack != "Service Pack 2" {
		t.Errorf("Detect = %+v", sys)
	}
	for _, c := range []struct {
		version string
		machine uint16
		os      string
	}{
		{"5.0", integratetest.I386, "Windows 2000"},
		{"5.2", integratetest.AMD64, "Windows XP x64"},
		{"5.2", integratetest.I386, "Windows Server 2003"},
	} {
		root := t.TempDir()
		installedtest.WriteXP(t, root)
		os.WriteFile(filepath.Join(root, "WINDOWS/system32/config/SOFTWARE"), installedtest.SoftwareHive(t, c.version), 0o644)
		os.WriteFile(filepath.Join(root, "WINDOWS/system32/ntoskrnl.exe"), integratetest.FakePE(c.machine, "k"), 0o644)
		if c.os == "Windows Server 2003" {
			editHive(t, filepath.Join(root, "WINDOWS/system32/config/SYSTEM"), `ControlSet001\Control\ProductOptions`, "ProductType", hive.SZ, hive.EncodeString("ServerNT"))
		}
		sys, err := installed.Detect(integrate.DirFS(root))
		if err != nil {
			t.Fatal(err)
		}
		if sys.OS != c.os || sys.Target().String() == "" {
			t.Errorf("%s on %#x: %+v", c.version, c.machine, sys)
		}
	}
	for _, c := range []struct {
		name   string
		mutate func(root string)
		want   string
	}{
		{"no windows", func(r string) { os.RemoveAll(filepath.Join(r, "WINDOWS")) }, "no WINDOWS or WINNT"},
		{"no kernel", func(r string) { os.Remove(filepath.Join(r, "WINDOWS/system32/ntoskrnl.exe")) }, "ntoskrnl.exe"},
		{"vista", func(r string) {
			os.WriteFile(filepath.Join(r, "WINDOWS/system32/config/SOFTWARE"), installedtest.SoftwareHive(t, "6.0"), 0o644)
		}, `CurrentVersion is "6.0"`},
		{"ia64 kernel", func(r string) {
			os.WriteFile(filepath.Join(r, "WINDOWS/system32/ntoskrnl.exe"), integratetest.FakePE(0x200, "k"), 0o644)
		}, "machine type 0x0200"},
		{"garbage hive", func(r string) {
			os.WriteFile(filepath.Join(r, "WINDOWS/system32/config/SOFTWARE"), []byte("regf but not really"), 0o644)
		}, "SOFTWARE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			installedtest.WriteXP(t, root)
			c.mutate(root)
			_, err := installed.Detect(integrate.DirFS(root))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Detect error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestIntegrateInstalled integrates the NIC, iSCSI initiator and
// sanbootconf into the XP tree and checks the result key by key and file
// by file, that check boot fails before and passes after, that a second
// run changes nothing, and that undo restores every byte.
func TestIntegrateInstalled(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	fsys := integrate.DirFS(root)
	before := snapshot(t, root)

	rep, err := bootcheck.Check(fsys, bootcheck.Options{Devices: []string{installedtest.NICID}})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, f := range rep.Findings {
		codes[f.Code] = true
	}
	for _, c := range []string{"not-boot", "no-iscsiprt", "no-sanbootconf", "no-boot-nic"} {
		if !codes[c] {
			t.Errorf("check boot before integration: no %s finding in %+v", c, rep.Findings)
		}
	}

	opts := installed.Options{MergeIDE: true, DevicePath: []string{`%SystemDrive%\drivers`}}
	p := integrateTree(t, fsys, opts, false)
	for _, w := range p.Warnings {
		t.Logf("warning: %s", w)
	}

	rep, err = bootcheck.Check(fsys, bootcheck.Options{Devices: []string{installedtest.NICID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) > 0 {
		t.Errorf("check boot after integration: %+v", rep.Findings)
	}
	var order []string
	for _, d := range rep.Drivers {
		order = append(order, d.Service)
	}
	idx := func(s string) int {
		for i, o := range order {
			if strings.EqualFold(o, s) {
				return i
			}
		}
		t.Errorf("%s is not among the boot drivers %v", s, order)
		return -1
	}
	if !(idx("NDIS") < idx("E1000") && idx("E1000") < idx("sanbootconf") && idx("sanbootconf") < idx("Tcpip") && idx("Tcpip") < idx("iScsiPrt")) {
		t.Errorf("boot driver order %v: want NDIS, E1000, sanbootconf, Tcpip, iScsiPrt in that order", order)
	}

	// Files.
	for _, f := range []string{"msiscsi.sys", "iscsiprt.sys", "sanbootconf.sys", "e1000325.sys", "intelide.sys", "pciide.sys", "pciidex.sys"} {
		if _, err := os.Stat(filepath.Join(root, "WINDOWS/system32/drivers", f)); err != nil {
			t.Errorf("driver file: %v", err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(root, "WINDOWS/system32/drivers/e1000325.sys"))
	if !bytes.Equal(b, integratetest.FakePE(integratetest.I386, "e1000")) {
		t.Error("e1000325.sys is not the package's")
	}
	b, _ = os.ReadFile(filepath.Join(root, "WINDOWS/system32/drivers/pciidex.sys"))
	if !bytes.Equal(b, integratetest.FakePE(integratetest.I386, "cab:pciidex.sys")) {
		t.Error("pciidex.sys is not the one of driver.cab")
	}
	if _, err := os.Stat(filepath.Join(root, "WINDOWS/system32/iscsilog.dll")); err != nil {
		t.Errorf("iscsilog.dll: %v", err)
	}

	// Registry, in both control sets.
	sys := openHive(t, filepath.Join(root, "WINDOWS/system32/config/SYSTEM"))
	g := installedtest.NICGUID
	for _, cs := range []string{"ControlSet001", "ControlSet002"} {
		s := cs + `\Services\`
		c := cs + `\Control\`
		for _, n := range []string{"E1000", "NDIS", "Tcpip", "IPSec", "iScsiPrt", "sanbootconf", "PSched", "Gpc", "atapi", "IntelIde", "PCIIde"} {
			wantDWORD(t, sys, s+n, "Start", 0)
		}
		wantSZ(t, sys, s+"E1000", "Group", "NDIS")
		wantSZ(t, sys, s+"E1000", "ImagePath", `system32\DRIVERS\e1000325.sys`)
		wantDWORD(t, sys, s+"E1000", "Type", 1)
		wantDWORD(t, sys, s+"E1000", "ErrorControl", 1)
		wantSZ(t, sys, s+"iScsiPrt", "Group", "SCSI miniport")
		wantSZ(t, sys, s+"iScsiPrt", "ImagePath", `system32\DRIVERS\msiscsi.sys`)
		wantMulti(t, sys, s+"iScsiPrt", "DependOnService", "Tcpip")
		wantDWORD(t, sys, s+`iScsiPrt\Parameters`, "BusType", 9)
		wantSZ(t, sys, s+"sanbootconf", "Group", "Base")
		wantDWORD(t, sys, s+`sanbootconf\Parameters`, "BootText", 1)
		wantSZ(t, sys, s+"PSched", "Group", "NDIS")
		wantSZ(t, sys, s+"Tcpip", "Group", "PNP_TDI")
		wantDWORD(t, sys, s+"MSiSCSI", "Start", 2)
		wantDWORD(t, sys, s+`Tcpip\Parameters`, "DisableDhcpMediaSense", 1)
		wantDWORD(t, sys, c+`Session Manager\Memory Management`, "DisablePagingExecutive", 1)
		wantDWORD(t, sys, c+`CrashControl`, "CrashDumpEnabled", 0)
		list := append([]string{}, integratetest.XPServiceGroupOrder...)
		wantMulti(t, sys, c+`ServiceGroupOrder`, installed.SGOBackup, list...)
		got := hive.DecodeMultiString(value(t, sys, c+`ServiceGroupOrder`, "List").Data)
		if strings.Join(got[:8], "|") != "System Reserved|Boot Bus Extender|System Bus Extender|NDIS Wrapper|NDIS|Base|PNP_TDI|SCSI miniport" || len(got) != len(list) {
			t.Errorf("%s ServiceGroupOrder List = %q", cs, got)
		}
		// The existing PRO/1000 instance 0001 is reused, not duplicated.
		k := c + `Class\` + installedtest.NetClass + `\0001`
		wantSZ(t, sys, k, "NetCfgInstanceId", g)
		wantSZ(t, sys, k, "MatchingDeviceId", `pci\ven_8086&dev_100e&subsys_001e8086`)
		wantDWORD(t, sys, k, "Characteristics", 0x84)
		wantSZ(t, sys, k, "BusType", "5")
		wantMulti(t, sys, k+`\Linkage`, "UpperBind", "Tcpip", "PSched")
		wantSZ(t, sys, k, "DriverVersion", "8.10.3.0")
		if ks, _ := sys.Key(c + `Class\` + installedtest.NetClass); ks.NumSubkeys() != 2 {
			t.Errorf("%s: %d Net class instances, want the 2 there were", cs, ks.NumSubkeys())
		}
		for _, id := range []string{`pci#ven_8086&dev_100e`, `pci#ven_8086&dev_100e&subsys_001e8086`} {
			wantSZ(t, sys, c+`CriticalDeviceDatabase\`+id, "Service", "E1000")
			wantSZ(t, sys, c+`CriticalDeviceDatabase\`+id, "ClassGUID", installedtest.NetClass)
		}
		wantSZ(t, sys, c+`CriticalDeviceDatabase\pci#ven_8086&dev_7010`, "Service", "intelide")
		wantSZ(t, sys, c+`CriticalDeviceDatabase\gendisk`, "Service", "disk")
		wantDWORD(t, sys, s+"atapi", "Tag", 0x19)
		iface := s + `Tcpip\Parameters\Interfaces\` + g
		wantDWORD(t, sys, iface, "EnableDHCP", 1)
		wantMultiHas(t, sys, s+`Tcpip\Linkage`, "Bind", `\Device\`+g)
		wantMultiHas(t, sys, s+`NetBT\Linkage`, "Bind", `\Device\Tcpip_`+g)
		// iScsiPrt's and sanbootconf's root-enumerated instances.
		wantSZ(t, sys, cs+`\Enum\Root\SCSIADAPTER\0000`, "Service", "iScsiPrt")
		wantSZ(t, sys, cs+`\Enum\Root\SCSIADAPTER\0000`, "Driver", `{4D36E97B-E325-11CE-BFC1-08002BE10318}\0000`)
		wantMulti(t, sys, cs+`\Enum\Root\SCSIADAPTER\0000`, "HardwareID", `ROOT\iScsiPrt`)
		wantSZ(t, sys, cs+`\Enum\Root\SYSTEM\0001`, "Service", "sanbootconf")
		wantSZ(t, sys, cs+`\Enum\Root\SYSTEM\0001`, "Driver", `{4D36E97D-E325-11CE-BFC1-08002BE10318}\0001`)
		wantSZ(t, sys, c+`Class\{4D36E97B-E325-11CE-BFC1-08002BE10318}\0000`, "MatchingDeviceId", `root\iscsiprt`)
		wantSZ(t, sys, c+`Class\{4D36E97D-E325-11CE-BFC1-08002BE10318}\0001`, "MatchingDeviceId", `root\sanbootconf`)
	}
	sw := openHive(t, filepath.Join(root, "WINDOWS/system32/config/SOFTWARE"))
	wantSZ(t, sw, `Microsoft\Windows\CurrentVersion`, "DevicePath", `%SystemRoot%\inf;%SystemDrive%\drivers`)
	wantDWORD(t, sw, `Policies\Microsoft\Windows\DeviceInstall\Settings`, "SuppressNewHWUI", 1)

	// A second run changes nothing.
	after := snapshot(t, root)
	p2 := integrateTree(t, fsys, opts, false)
	if e := p2.Edits(); len(e) > 0 {
		t.Errorf("second run: %d edits, first %+v", len(e), e[0])
	}
	sameSnapshot(t, "second run", after, snapshot(t, root))

	// Undo restores the tree byte for byte.
	res, err := installed.Undo(fsys, nil, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Restored) != 3 || len(res.Removed) < 6 {
		t.Errorf("undo: %+v", res)
	}
	sameSnapshot(t, "undo", before, snapshot(t, root))
	if _, err := installed.Undo(fsys, nil, false, false); err != installed.ErrNoUndo {
		t.Errorf("second undo: %v, want ErrNoUndo", err)
	}
}

// TestIntegrateStatic gives the adapter a static address and gateway,
// which check boot then reports (the initiator's route bug).
func TestIntegrateStatic(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	fsys := integrate.DirFS(root)
	var o installed.Options
	var err error
	if o.Address, err = parsePrefix("192.168.7.50/24"); err != nil {
		t.Fatal(err)
	}
	o.Gateway = o.Address.Addr().Next()
	integrateTree(t, fsys, o, false)
	sys := openHive(t, filepath.Join(root, "WINDOWS/system32/config/SYSTEM"))
	iface := `ControlSet001\Services\Tcpip\Parameters\Interfaces\` + installedtest.NICGUID
	wantDWORD(t, sys, iface, "EnableDHCP", 0)
	wantMulti(t, sys, iface, "IPAddress", "192.168.7.50")
	wantMulti(t, sys, iface, "SubnetMask", "255.255.255.0")
	wantMulti(t, sys, iface, "DefaultGateway", "192.168.7.51")
	rep, err := bootcheck.Check(fsys, bootcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Code != "gateway" || !strings.Contains(rep.Findings[0].Where, installedtest.NICGUID) {
		t.Errorf("findings %+v, want one gateway finding", rep.Findings)
	}
}

// TestDryRun prints the file list and the hive diff and writes nothing.
func TestDryRun(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	before := snapshot(t, root)
	p := integrateTree(t, integrate.DirFS(root), installed.Options{}, true)
	d, err := p.Diff()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"create WINDOWS/system32/DRIVERS/msiscsi.sys",
		"edit   WINDOWS/system32/DRIVERS/e1000325.sys",
		"--- a/WINDOWS/system32/config/SYSTEM",
		`~ ControlSet002\Services\E1000\Start = dword:0 (was dword:3)`,
		`+ ControlSet001\Services\sanbootconf\`,
		"--- a/WINDOWS/system32/config/SOFTWARE",
		`+ Policies\Microsoft\Windows\DeviceInstall\Settings\SuppressNewHWUI = dword:1`,
	} {
		if !strings.Contains(d, want) {
			t.Errorf("dry-run diff lacks %q", want)
		}
	}
	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Errorf("Files: %+v", files)
	}
	sameSnapshot(t, "dry run", before, snapshot(t, root))
}

// TestBackup keeps NAME.xpboot-orig of each replaced file; undo removes
// them again.
func TestBackup(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	before := snapshot(t, root)
	integrateTree(t, integrate.DirFS(root), installed.Options{Options: integrate.Options{Backup: true}}, false)
	for _, f := range []string{"WINDOWS/system32/config/SYSTEM", "WINDOWS/system32/config/SOFTWARE", "WINDOWS/system32/drivers/e1000325.sys"} {
		b, err := os.ReadFile(filepath.Join(root, f+integrate.BackupSuffix))
		if err != nil || string(b) != before[filepath.FromSlash(f)] {
			t.Errorf("backup of %s: %v", f, err)
		}
	}
	if _, err := installed.Undo(integrate.DirFS(root), nil, false, false); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "undo", before, snapshot(t, root))
}

// TestUndoRefusesChangedFile: a file changed after the integration stops
// undo before anything is written; --force restores anyway.
func TestUndoRefusesChangedFile(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	before := snapshot(t, root)
	fsys := integrate.DirFS(root)
	integrateTree(t, fsys, installed.Options{}, false)
	sys := filepath.Join(root, "WINDOWS/system32/config/SYSTEM")
	b, _ := os.ReadFile(sys)
	b[len(b)-1] ^= 1
	os.WriteFile(sys, b, 0o644)
	mid := snapshot(t, root)
	if _, err := installed.Undo(fsys, nil, false, false); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("undo of a changed tree: %v", err)
	}
	sameSnapshot(t, "refused undo", mid, snapshot(t, root))
	if _, err := installed.Undo(fsys, nil, true, false); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "forced undo", before, snapshot(t, root))
}

// TestRefusesDamagedHive: a hive that fails the check is not edited and
// nothing is written.
func TestRefusesDamagedHive(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	p := filepath.Join(root, "WINDOWS/system32/config/SYSTEM")
	b, _ := os.ReadFile(p)
	binary.LittleEndian.PutUint32(b[8:], 7) // sequence numbers differ: dirty
	os.WriteFile(p, b, 0o644)
	before := snapshot(t, root)
	fsys := integrate.DirFS(root)
	sys, err := installed.Detect(fsys)
	if err == nil {
		_, err = installed.NewPlan(fsys, sys, installed.Options{})
	}
	if err == nil || !strings.Contains(err.Error(), "config/SYSTEM") {
		t.Errorf("integrating with a damaged SYSTEM: %v", err)
	}
	sameSnapshot(t, "refused", before, snapshot(t, root))
}

// TestHivex reads the integrated hives back with hivex.
func TestHivex(t *testing.T) {
	hivexget := peertest.Need(t, "hivexget", "libhivex-bin")
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	integrateTree(t, integrate.DirFS(root), installed.Options{}, false)
	sys := filepath.Join(root, "WINDOWS/system32/config/SYSTEM")
	for _, c := range []struct{ key, name, want string }{
		{`ControlSet001\Services\iScsiPrt`, "Start", "0"},
		{`ControlSet002\Services\E1000`, "Start", "0"},
		{`ControlSet001\Services\sanbootconf`, "Group", "Base"},
		{`ControlSet001\Control\Class\` + installedtest.NetClass + `\0001`, "NetCfgInstanceId", installedtest.NICGUID},
		{`ControlSet001\Enum\Root\SCSIADAPTER\0000`, "Service", "iScsiPrt"},
	} {
		out := peertest.Run(t, 30*time.Second, hivexget, sys, c.key, c.name)
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("hivexget %s %s = %q, want %q", c.key, c.name, got, c.want)
		}
	}
	out := peertest.Run(t, 30*time.Second, hivexget, filepath.Join(root, "WINDOWS/system32/config/SOFTWARE"),
		`Policies\Microsoft\Windows\DeviceInstall\Settings`, "SuppressNewHWUI")
	if strings.TrimSpace(string(out)) != "1" {
		t.Errorf("hivexget SuppressNewHWUI = %q", out)
	}
}

// editHive sets one value of a hive file.
func editHive(t *testing.T, p, key, name string, typ hive.ValueType, data []byte) {
	t.Helper()
	e, err := hive.Edit(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetValue(key, name, typ, data); err != nil {
		t.Fatal(err)
	}
	if err := e.Save(p); err != nil {
		t.Fatal(err)
	}
}

// fakeBoot is a partition of sectors in memory.
type fakeBoot struct {
	sectors map[int64][]byte
	heads   uint32
	start   uint32
}

func (f *fakeBoot) ReadSector(n int64) ([]byte, error) {
	if b, ok := f.sectors[n]; ok {
		return bytes.Clone(b), nil
	}
	return make([]byte, 512), nil
}
func (f *fakeBoot) WriteSector(n int64, b []byte) error { f.sectors[n] = bytes.Clone(b); return nil }
func (f *fakeBoot) DiskGeometry() (uint32, uint32)      { return f.heads, 63 }
func (f *fakeBoot) Partition() imagefs.Partition {
	return imagefs.Partition{Index: 1, Entry: mbr.Entry{Start: f.start}}
}

// TestBootSector: an NTFS boot sector with 240 heads and its agreeing
// backup get iPXE's 255 heads, with the reason; undo puts both back.
func TestBootSector(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	b0 := make([]byte, 512)
	copy(b0[3:], "NTFS    ")
	binary.LittleEndian.PutUint16(b0[0x18:], 63)
	binary.LittleEndian.PutUint16(b0[0x1a:], 240)
	binary.LittleEndian.PutUint32(b0[0x1c:], 63)
	binary.LittleEndian.PutUint64(b0[0x28:], 1000)
	b0[510], b0[511] = 0x55, 0xaa
	fb := &fakeBoot{sectors: map[int64][]byte{0: bytes.Clone(b0), 1000: bytes.Clone(b0)}, heads: 255, start: 63}
	fsys := integrate.DirFS(root)
	sys, err := installed.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := installed.NewPlan(fsys, sys, installed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Boot = fb
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if r := p.BootChanges(); len(r) != 2 || r[0] != "heads 240 → 255" || !strings.Contains(r[1], "iPXE") {
		t.Errorf("BootChanges = %q", r)
	}
	for _, n := range []int64{0, 1000} {
		if h := binary.LittleEndian.Uint16(fb.sectors[n][0x1a:]); h != 255 {
			t.Errorf("sector %d heads %d", n, h)
		}
	}
	if _, err := installed.Undo(fsys, fb, false, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, 1000} {
		if !bytes.Equal(fb.sectors[n], b0) {
			t.Errorf("sector %d not restored", n)
		}
	}
	// A sector without the 55 AA signature is refused before any write.
	fb.sectors[0][511] = 0
	p, err = installed.NewPlan(fsys, sys, installed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Boot = fb
	if err := p.Commit(); err == nil || !strings.Contains(err.Error(), "55 AA") {
		t.Errorf("commit with a bad boot sector: %v", err)
	}
}

// TestIntegrateX64: on XP x64 (5.2, amd64 kernel) the amd64 files of the
// initiator are copied, and the new-hardware UI is suppressed through
// PlugPlay's SuppressUI in every control set instead of SuppressNewHWUI.
func TestIntegrateX64(t *testing.T) {
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	os.WriteFile(filepath.Join(root, "WINDOWS/system32/config/SOFTWARE"), installedtest.SoftwareHive(t, "5.2"), 0o644)
	os.WriteFile(filepath.Join(root, "WINDOWS/system32/ntoskrnl.exe"), integratetest.FakePE(integratetest.AMD64, "k"), 0o644)
	fsys := integrate.DirFS(root)
	sys, err := installed.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if sys.OS != "Windows XP x64" || sys.Target().String() != "NTamd64.5.2.1" {
		t.Fatalf("Detect = %+v", sys)
	}
	p, err := installed.NewPlan(fsys, sys, installed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sbc := t.TempDir()
	integratetest.RootPackage(t, sbc)
	for _, d := range []string{"../../drivers/testdata/iscsi", sbc} {
		pkg, err := drivers.OpenPackage(d)
		if err != nil {
			t.Fatal(err)
		}
		devs, err := pkg.Resolve(sys.Target())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AddDriver(pkg, devs); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("../../drivers/testdata/iscsi/amd64/msiscsi.sys")
	if got, _ := os.ReadFile(filepath.Join(root, "WINDOWS/system32/drivers/msiscsi.sys")); !bytes.Equal(got, want) {
		t.Error("msiscsi.sys is not the amd64 one")
	}
	h := openHive(t, filepath.Join(root, "WINDOWS/system32/config/SYSTEM"))
	for _, cs := range []string{"ControlSet001", "ControlSet002"} {
		wantDWORD(t, h, cs+`\Services\PlugPlay\Parameters`, "SuppressUI", 1)
		wantDWORD(t, h, cs+`\Services\iScsiPrt`, "Start", 0)
	}
	sw := openHive(t, filepath.Join(root, "WINDOWS/system32/config/SOFTWARE"))
	if _, err := sw.Key(`Policies\Microsoft\Windows\DeviceInstall\Settings`); err == nil {
		t.Error("SuppressNewHWUI written on 5.2")
	}
}
