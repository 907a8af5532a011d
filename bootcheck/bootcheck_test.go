package bootcheck_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/bootcheck"
	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed"
	"github.com/xpboot/xpboot/integrate/installed/installedtest"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// integratedXP returns an installed-XP tree into which the NIC, the
// iSCSI initiator and sanbootconf were integrated.
func integratedXP(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	installedtest.WriteXP(t, root)
	pk := t.TempDir()
	integratetest.NICPackage(t, filepath.Join(pk, "nic"), integratetest.I386)
	integratetest.RootPackage(t, filepath.Join(pk, "sbc"))
	fsys := integrate.DirFS(root)
	sys, err := installed.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := installed.NewPlan(fsys, sys, installed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(pk, "nic"), "../drivers/testdata/iscsi", filepath.Join(pk, "sbc")} {
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
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	return root
}

// editSystem applies fn to the tree's SYSTEM hive.
func editSystem(t *testing.T, root string, fn func(e *hive.Editor) error) {
	t.Helper()
	p := filepath.Join(root, "WINDOWS/system32/config/SYSTEM")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := hive.NewEditor(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := fn(e); err != nil {
		t.Fatal(err)
	}
	if b, err = e.Bytes(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func setDWORD(key, name string, v uint32) func(e *hive.Editor) error {
	return func(e *hive.Editor) error { return e.SetValue(key, name, hive.DWORD, hive.EncodeDWORD(v)) }
}

func setSZ(key, name, v string) func(e *hive.Editor) error {
	return func(e *hive.Editor) error { return e.SetValue(key, name, hive.SZ, hive.EncodeString(v)) }
}

const cs = `ControlSet001\`

// TestFindings breaks an integrated system one way at a time; each must
// give its finding, naming the key or file.
func TestFindings(t *testing.T) {
	g := installedtest.NICGUID
	for _, c := range []struct {
		name    string
		mutate  func(t *testing.T, root string)
		devices []string
		code    string
		where   string
	}{
		{"clean", func(*testing.T, string) {}, []string{installedtest.NICID}, "", ""},
		{"missing image", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "WINDOWS/system32/drivers/sanbootconf.sys"))
		}, nil, "missing-image", "WINDOWS/system32/DRIVERS/sanbootconf.sys"},
		{"dependency", func(t *testing.T, root string) {
			editSystem(t, root, setDWORD(cs+`Services\Gpc`, "Start", 3))
		}, nil, "dependency", cs + `Services\PSched\DependOnService`},
		{"filter", func(t *testing.T, root string) {
			editSystem(t, root, setDWORD(cs+`Services\PSched`, "Start", 3))
		}, nil, "filter-not-boot", cs + `Services\PSched\Start`},
		{"ndis late", func(t *testing.T, root string) {
			editSystem(t, root, setSZ(cs+`Services\NDIS`, "Group", "SCSI Class"))
		}, nil, "order", cs + `Control\ServiceGroupOrder\List`},
		{"nic late", func(t *testing.T, root string) {
			editSystem(t, root, setSZ(cs+`Services\E1000`, "Group", "SCSI Class"))
		}, nil, "order", cs + `Services\E1000\Group`},
		{"no interface", func(t *testing.T, root string) {
			editSystem(t, root, func(e *hive.Editor) error { return e.DeleteKey(cs + `Services\Tcpip\Parameters\Interfaces\` + g) })
		}, nil, "no-interface", cs + `Services\Tcpip\Parameters\Interfaces\` + g},
		{"gateway", func(t *testing.T, root string) {
			editSystem(t, root, func(e *hive.Editor) error {
				k := cs + `Services\Tcpip\Parameters\Interfaces\` + g
				if err := e.SetValue(k, "EnableDHCP", hive.DWORD, hive.EncodeDWORD(0)); err != nil {
					return err
				}
				return e.SetValue(k, "DefaultGateway", hive.MultiSZ, hive.EncodeMultiString([]string{"10.0.0.1"}))
			})
		}, nil, "gateway", cs + `Services\Tcpip\Parameters\Interfaces\` + g + `\DefaultGateway`},
		{"ungrouped", func(t *testing.T, root string) {
			editSystem(t, root, setSZ(cs+`Services\PSched`, "Group", "No Such Group"))
		}, nil, "ungrouped", cs + `Services\PSched`},
		{"no sanbootconf instance", func(t *testing.T, root string) {
			editSystem(t, root, func(e *hive.Editor) error { return e.DeleteKey(cs + `Enum\Root\SYSTEM\0001`) })
		}, nil, "no-sanbootconf", cs + `Enum\Root\SYSTEM`},
		{"iscsiprt demand", func(t *testing.T, root string) {
			editSystem(t, root, setDWORD(cs+`Services\iScsiPrt`, "Start", 3))
		}, nil, "no-iscsiprt", cs + `Services\iScsiPrt\Start`},
		{"other nic", func(*testing.T, string) {}, []string{`PCI\VEN_10EC&DEV_8139`}, "no-boot-nic", cs + `Control\Class\` + installedtest.NetClass},
		{"current set", func(t *testing.T, root string) {
			// The loader reads the set Select\Current names: the
			// integrated ControlSet002 with PSched demand start.
			editSystem(t, root, func(e *hive.Editor) error {
				if err := e.SetValue("Select", "Current", hive.DWORD, hive.EncodeDWORD(2)); err != nil {
					return err
				}
				return e.SetValue(`ControlSet002\Services\PSched`, "Start", hive.DWORD, hive.EncodeDWORD(3))
			})
		}, nil, "filter-not-boot", `ControlSet002\Services\PSched\Start`},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := integratedXP(t)
			c.mutate(t, root)
			rep, err := bootcheck.Check(integrate.DirFS(root), bootcheck.Options{Devices: c.devices})
			if err != nil {
				t.Fatal(err)
			}
			if c.code == "" {
				if len(rep.Findings) > 0 {
					t.Errorf("findings on the integrated system: %+v", rep.Findings)
				}
				return
			}
			for _, f := range rep.Findings {
				if f.Code == c.code && strings.EqualFold(f.Where, c.where) {
					return
				}
			}
			t.Errorf("no %s finding at %s among %+v", c.code, c.where, rep.Findings)
		})
	}
}

// TestLoadOrder: GroupOrderList tags come first in their group, then the
// untagged drivers; groups in ServiceGroupOrder's order.
func TestLoadOrder(t *testing.T) {
	root := integratedXP(t)
	editSystem(t, root, setDWORD(cs+`Services\iScsiPrt`, "Tag", 0x1a))
	rep, err := bootcheck.Check(integrate.DirFS(root), bootcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Drivers {
		got = append(got, d.Service)
	}
	want := "ACPI PCI PartMgr NDIS E1000 PSched KSecDD sanbootconf Gpc IPSec Tcpip atapi iScsiPrt Disk"
	if strings.Join(got, " ") != want {
		t.Errorf("load order\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	// Tags: atapi 0x19 then iScsiPrt 0x1a; swapping the list swaps them.
	editSystem(t, root, func(e *hive.Editor) error {
		return e.SetValue(cs+`Control\GroupOrderList`, "SCSI miniport", hive.Binary, []byte{2, 0, 0, 0, 0x1a, 0, 0, 0, 0x19, 0, 0, 0})
	})
	rep, err = bootcheck.Check(integrate.DirFS(root), bootcheck.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, d := range rep.Drivers {
		got = append(got, d.Service)
	}
	if !strings.Contains(strings.Join(got, " "), "iScsiPrt atapi") {
		t.Errorf("tag order not followed: %v", got)
	}
}

func TestUnreadable(t *testing.T) {
	root := t.TempDir()
	if _, err := bootcheck.Check(integrate.DirFS(root), bootcheck.Options{}); !errors.Is(err, bootcheck.ErrNoSystem) {
		t.Errorf("empty tree: %v", err)
	}
	installedtest.WriteXP(t, root)
	editSystem(t, root, setDWORD("Select", "Current", 7))
	if _, err := bootcheck.Check(integrate.DirFS(root), bootcheck.Options{}); err == nil || !strings.Contains(err.Error(), "ControlSet007") {
		t.Errorf("Select\\Current naming a missing set: %v", err)
	}
	os.WriteFile(filepath.Join(root, "WINDOWS/system32/config/SYSTEM"), []byte("regf"), 0o644)
	if _, err := bootcheck.Check(integrate.DirFS(root), bootcheck.Options{}); err == nil || !strings.Contains(err.Error(), "config/SYSTEM") {
		t.Errorf("garbage hive: %v", err)
	}
}

// TestSetupTree checks a winnt32 local-source tree before and after
// setup-tree integration of the NIC and sanbootconf: after it, only the
// missing initiator remains.
func TestSetupTree(t *testing.T) {
	root := t.TempDir()
	integratetest.WriteXPLocalSource(t, root)
	// The in-box drivers txtsetup.sif loads, which the synthetic tree
	// does not carry.
	for _, f := range []string{"pci", "pcmcia", "atapi", "dmboot", "ntfs", "cdrom", "acpi", "usbehci", "kbdclass", "fastfat", "cdfs"} {
		integratetest.WriteFile(t, root, "$WIN_NT$.~BT/"+f+".sys", integratetest.FakePE(integratetest.I386, f))
	}
	fsys := integrate.DirFS(root)
	rep, err := bootcheck.Check(fsys, bootcheck.Options{Devices: []string{installedtest.NICID}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != bootcheck.KindSetup || len(rep.Findings) < 4 {
		t.Errorf("untouched setup tree: %+v", rep)
	}
	tree, err := integrate.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	p, err := integrate.NewPlan(tree)
	if err != nil {
		t.Fatal(err)
	}
	pk := t.TempDir()
	integratetest.NICPackage(t, filepath.Join(pk, "nic"), integratetest.I386)
	integratetest.RootPackage(t, filepath.Join(pk, "sbc"))
	for _, d := range []string{"nic", "sbc"} {
		pkg, err := drivers.OpenPackage(filepath.Join(pk, d))
		if err != nil {
			t.Fatal(err)
		}
		devs, err := pkg.Resolve(tree.Target())
		if err != nil {
			t.Fatal(err)
		}
		if sel, _ := integrate.SelectDevices(devs, []string{`PCI\VEN_8086&DEV_100E`}); len(sel) > 0 {
			devs = sel
		}
		if err := p.AddDriver(pkg, devs); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	rep, err = bootcheck.Check(fsys, bootcheck.Options{Devices: []string{installedtest.NICID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Code != "no-iscsiprt" {
		t.Errorf("integrated setup tree: %+v", rep.Findings)
	}
	if len(rep.NICs) != 1 || rep.NICs[0].Service != "E1000" {
		t.Errorf("boot adapters: %+v", rep.NICs)
	}
}
