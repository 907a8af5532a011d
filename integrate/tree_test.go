package integrate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// writeFile writes the file name (a path on the host), creating its
// directory.
func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	integratetest.WriteFile(t, filepath.Dir(name), filepath.Base(name), data)
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
	set(cs+`Control\ServiceGroupOrder`, "List", hive.MultiSZ, hive.EncodeMultiString(integratetest.XPServiceGroupOrder))
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
	integratetest.WriteFile(t, root, "I386/TXTSETUP.SIF", []byte(integratetest.XPTxtSetup))
	integratetest.WriteFile(t, root, "I386/DOSNET.INF", []byte(integratetest.XPDosNet))
	integratetest.WriteFile(t, root, "I386/HIVESYS.INF", []byte(integratetest.XPHiveSys))
	integratetest.WriteFile(t, root, "I386/HIVESFT.INF", []byte(integratetest.XPHiveSft))
	placeholderHive(t, filepath.Join(root, "I386", "SETUPREG.HIV"))
	integratetest.WriteFile(t, root, "WIN51IP.SP2", []byte("\r\n"))
	return root
}

// makeLocalSource builds a winnt32 /makelocalsource /syspart tree.
func makeLocalSource(t testing.TB) string {
	root := t.TempDir()
	integratetest.WriteFile(t, root, "$WIN_NT$.~LS/I386/TXTSETUP.SIF", []byte(integratetest.XPTxtSetup))
	integratetest.WriteFile(t, root, "$WIN_NT$.~LS/I386/hivesys.inf", []byte(integratetest.XPHiveSys))
	integratetest.WriteFile(t, root, "$WIN_NT$.~LS/I386/HIVESFT.INF", []byte(integratetest.XPHiveSft))
	placeholderHive(t, filepath.Join(root, "$WIN_NT$.~LS", "I386", "SETUPREG.HIV"))
	integratetest.WriteFile(t, root, "$WIN_NT$.~BT/TXTSETUP.SIF", []byte(integratetest.XPTxtSetup))
	placeholderHive(t, filepath.Join(root, "$WIN_NT$.~BT", "SETUPREG.HIV"))
	integratetest.WriteFile(t, root, "TXTSETUP.SIF", []byte(integratetest.XPTxtSetup))
	return root
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
