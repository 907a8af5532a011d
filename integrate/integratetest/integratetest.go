// Package integratetest builds synthetic Windows setup trees and driver
// packages for the tests of package integrate and of the xpboot command.
//
// The trees are shaped like XP Professional SP2 (x86) media and
// winnt32 /makelocalsource trees: a txtsetup.sif with the real section
// set and its EOF mark, dosnet.inf, hivesys.inf, hivesft.inf, a
// setupreg.hiv made with package hive, compressed nettcpip.in_ and the
// TCP/IP driver cabinets. The driver packages are shaped like Intel's
// PRO/1000 (a NIC), sanbootconf (a root-enumerated device) and a SCSI
// miniport, with headers-only PE files, plus a txtsetup.oem driver disk.
package integratetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/cab"
	"github.com/xpboot/xpboot/internal/peertest"
)

// Machine types of PE images.
const (
	I386  = 0x14c
	AMD64 = 0x8664
)

// CRLF turns a Go literal with \n into the CRLF text setup files use.
func CRLF(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// FakePE returns a minimal PE image (headers only) for machine, followed
// by tag so that files differ.
func FakePE(machine uint16, tag string) []byte {
	b := make([]byte, 0x40+4+20)
	copy(b, "MZ")
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	binary.LittleEndian.PutUint16(b[0x44:], machine)
	return append(b, tag...)
}

// WriteFile writes name (slash path under root), creating directories.
func WriteFile(t testing.TB, root, name string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Cabinet returns a single-file MSZIP cabinet holding data as name, the
// way setup's *.in_, *.sy_ and *.dl_ files are packed.
func Cabinet(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cab.NewWriter(&buf)
	f, err := w.CreateHeader(&cab.FileHeader{Name: name, Modified: time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC), Attrs: cab.AttrArchive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// SetupRegHive returns a setupreg.hiv shaped like XP's: ControlSet001 with
// Control and Services keys and \Select pointing at it.
func SetupRegHive(t testing.TB) []byte {
	t.Helper()
	e, err := hive.New(3)
	if err != nil {
		t.Fatal(err)
	}
	dw := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	for _, k := range []string{`ControlSet001\Control\Class`, `ControlSet001\Control\ServiceGroupOrder`, `ControlSet001\Enum\Root`, `ControlSet001\Services\KSecDD`, `Select`} {
		if err := e.CreateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []struct {
		key, name string
		typ       hive.ValueType
		data      []byte
	}{
		{`Select`, "Current", hive.DWORD, dw(1)},
		{`Select`, "Default", hive.DWORD, dw(1)},
		{`Select`, "LastKnownGood", hive.DWORD, dw(1)},
		{`ControlSet001\Services\KSecDD`, "Start", hive.DWORD, dw(1)},
		{`ControlSet001\Services\KSecDD`, "Type", hive.DWORD, dw(1)},
	} {
		if err := e.SetValue(v.key, v.name, v.typ, v.data); err != nil {
			t.Fatal(err)
		}
	}
	groups, err := hive.ParseData(hive.MultiSZ, XPServiceGroupOrder)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetValue(`ControlSet001\Control\ServiceGroupOrder`, "List", hive.MultiSZ, groups); err != nil {
		t.Fatal(err)
	}
	b, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// XPServiceGroupOrder is ServiceGroupOrder\List of XP SP2's setupreg.hiv.
var XPServiceGroupOrder = []string{
	"System Reserved", "Boot Bus Extender", "System Bus Extender", "SCSI miniport", "Port",
	"Primary Disk", "SCSI Class", "SCSI CDROM Class", "FSFilter Infrastructure", "FSFilter System",
	"FSFilter Bottom", "FSFilter Copy Protection", "FSFilter Security Enhancer", "FSFilter Open File",
	"FSFilter Physical Quota Management", "FSFilter Encryption", "FSFilter Compression", "FSFilter HSM",
	"FSFilter Cluster File System", "FSFilter System Recovery", "FSFilter Quota Management",
	"FSFilter Content Screener", "FSFilter Continuous Backup", "FSFilter Replication",
	"FSFilter Anti-Virus", "FSFilter Undelete", "FSFilter Activity Monitor", "FSFilter Top",
	"Filter", "Boot File System", "Base", "Pointer Port", "Keyboard Port", "Pointer Class",
	"Keyboard Class", "Video Init", "Video", "Video Save", "File System", "Event Log", "Streams Drivers",
	"NDIS Wrapper", "COM Infrastructure", "UIGroup", "LocalValidation", "PlugPlay", "PNP_TDI", "NDIS",
	"TDI", "NetBIOSGroup", "ShellSvcGroup", "SchedulerGroup", "SpoolerGroup", "AudioGroup",
	"SmartCardGroup", "NetworkProvider", "RemoteValidation", "NetDDEGroup", "Parallel arbitrator",
	"Extended Base", "PCI Configuration", "MS Transactions",
}

// writeSetupDir fills the setup directory dir (slash path under root)
// with what integration reads; dosnet adds dosnet.inf (media).
func writeSetupDir(t testing.TB, root, dir string, dosnet bool) {
	WriteFile(t, root, dir+"/TXTSETUP.SIF", []byte(XPTxtSetup))
	if dosnet {
		WriteFile(t, root, dir+"/DOSNET.INF", []byte(XPDosNet))
	}
	WriteFile(t, root, dir+"/HIVESYS.INF", []byte(XPHiveSys))
	WriteFile(t, root, dir+"/HIVESFT.INF", []byte(XPHiveSft))
	WriteFile(t, root, dir+"/SETUPREG.HIV", SetupRegHive(t))
	WriteFile(t, root, dir+"/NETTCPIP.IN_", Cabinet(t, "nettcpip.inf", []byte(XPNetTCPIP)))
	for _, f := range []string{"tdi", "ndis", "ipsec", "tcpip"} {
		WriteFile(t, root, dir+"/"+strings.ToUpper(f)+".SY_", Cabinet(t, f+".sys", FakePE(I386, f)))
	}
}

// WriteXPMedia writes XP Professional SP2 installation media (upper-case
// names, as on the CD) under root.
func WriteXPMedia(t testing.TB, root string) {
	t.Helper()
	writeSetupDir(t, root, "I386", true)
	WriteFile(t, root, "WIN51IP.SP2", []byte("\r\n"))
	WriteFile(t, root, "WIN51IP", []byte("\r\n"))
}

// WriteXPLocalSource writes a winnt32 /makelocalsource /syspart tree of
// XP SP2 under root.
func WriteXPLocalSource(t testing.TB, root string) {
	t.Helper()
	writeSetupDir(t, root, "$WIN_NT$.~LS/I386", false)
	WriteFile(t, root, "$WIN_NT$.~BT/TXTSETUP.SIF", []byte(XPTxtSetup))
	WriteFile(t, root, "$WIN_NT$.~BT/SETUPREG.HIV", SetupRegHive(t))
	WriteFile(t, root, "$WIN_NT$.~BT/MIGRATE.INF", []byte(CRLF("[Version]\nSignature = \"$Windows NT$\"\n\n[AddReg]\n")))
	WriteFile(t, root, "TXTSETUP.SIF", []byte(XPTxtSetup))
}

// NICPackage writes a PRO/1000-like NIC driver package for machine under
// dir: service E1000 with image e1000325.sys, a co-installer DLL in a
// subdirectory, two model lines (PCI\VEN_8086&DEV_100E and …&DEV_100F), a
// catalog.
func NICPackage(t testing.TB, dir string, machine uint16) {
	t.Helper()
	WriteFile(t, dir, "e1000325.inf", []byte(CRLF(NICINF)))
	WriteFile(t, dir, "e1000325.cat", []byte("catalog"))
	WriteFile(t, dir, "x86/e1000325.sys", FakePE(machine, "e1000"))
	WriteFile(t, dir, "x86/coinst/NicCo.dll", FakePE(machine, "co"))
}

// RootPackage writes a sanbootconf-like package (ROOT\sanbootconf) under dir.
func RootPackage(t testing.TB, dir string) {
	t.Helper()
	WriteFile(t, dir, "sanbootconf.inf", []byte(CRLF(RootINF)))
	WriteFile(t, dir, "sanbootconf.sys", FakePE(I386, "sbc"))
}

// SCSIPackage writes a SCSI miniport package (PCI\VEN_1000&DEV_0030) under dir.
func SCSIPackage(t testing.TB, dir string) {
	t.Helper()
	WriteFile(t, dir, "vscsi.inf", []byte(CRLF(SCSIINF)))
	WriteFile(t, dir, "vscsi.sys", FakePE(I386, "vscsi"))
}

// TextModePackage writes a txtsetup.oem driver disk under dir: component
// scsi, option ID "vmscsi" (the default), driver vmscsi.sys.
func TextModePackage(t testing.TB, dir string) {
	t.Helper()
	WriteFile(t, dir, "txtsetup.oem", []byte(CRLF(TextModeOEM)))
	WriteFile(t, dir, "disk1", []byte("\r\n"))
	WriteFile(t, dir, "vmscsi.sys", FakePE(I386, "vmscsi"))
	WriteFile(t, dir, "vmscsi.inf", []byte(CRLF(TextModeINF)))
	WriteFile(t, dir, "vmscsi.cat", []byte("catalog"))
}

// Snapshot returns every file and directory under root: files with their
// contents (files over 1 MiB, such as images, by size and modification
// time), directories as "<dir>".
func Snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			m[filepath.ToSlash(rel)] = "<dir>"
			return nil
		}
		if fi.Size() > 1<<20 {
			// Any write changes the modification time.
			m[filepath.ToSlash(rel)] = fmt.Sprintf("%d bytes, modified %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
			return nil
		}
		b, err := os.ReadFile(p)
		m[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// SnapshotFS is Snapshot of a directory inside a file system of an image.
func SnapshotFS(t testing.TB, fsys imagefs.FS, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		list, err := fsys.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range list {
			if fi.Name() == "." || fi.Name() == ".." {
				continue
			}
			p, r := strings.TrimSuffix(dir, "/")+"/"+fi.Name(), strings.TrimPrefix(rel+"/"+fi.Name(), "/")
			if fi.IsDir() {
				m[r] = "<dir>"
				walk(p, r)
				continue
			}
			f, err := fsys.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, f.Size())
			if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			m[r] = string(b)
		}
	}
	m["."] = "<dir>"
	walk(root, "")
	return m
}

// SameSnapshot reports every difference between two snapshots.
func SameSnapshot(t testing.TB, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diffs = append(diffs, "removed "+k)
		} else if w != v {
			diffs = append(diffs, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "added "+k)
		}
	}
	sort.Strings(diffs)
	for _, d := range diffs {
		t.Error(d)
	}
}

// FsckImage runs fsck.fat -n on the first partition of the image at path
// (copied to a file of its own: fsck.fat has no offset option) and fails
// the test on any complaint. It skips (fails under CI) without dosfstools.
func FsckImage(t testing.TB, path string) {
	t.Helper()
	peertest.Need(t, "fsck.fat", "dosfstools")
	img, err := imagefs.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	parts := img.Partitions()
	if len(parts) == 0 {
		t.Fatalf("%s: no partition", path)
	}
	p := parts[0]
	out := filepath.Join(t.TempDir(), "part1.img")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(img.Dev, p.Offset, p.Size)); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := peertest.Try(t, 2*time.Minute, "fsck.fat", "-n", "-v", out)
	if err != nil || bytes.Contains(res, []byte("Free cluster summary wrong")) {
		t.Fatalf("fsck.fat -n %s: %v\n%s", path, err, res)
	}
}

// MustEqual fails when got and want differ, naming what.
func MustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes differ from the expected %d bytes", what, len(got), len(want))
	}
}

// HiveText returns the hive data as .reg text (no timestamps), for
// comparing hives written at different times.
func HiveText(t testing.TB, data []byte) string {
	t.Helper()
	f, err := hive.NewFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := hive.ExportReg(&sb, f, "", hive.RegOptions{Prefix: `HKEY_LOCAL_MACHINE\SYSTEM`}); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// NormalizeHives replaces the content of every *.hiv file of a snapshot
// (and its backup) by HiveText, in place, and returns the snapshot.
func NormalizeHives(t testing.TB, snap map[string]string) map[string]string {
	t.Helper()
	for k, v := range snap {
		l := strings.ToLower(k)
		if strings.HasSuffix(l, ".hiv") || strings.HasSuffix(l, ".hiv.xpboot-orig") {
			snap[k] = HiveText(t, []byte(v))
		}
	}
	return snap
}
