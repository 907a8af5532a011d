package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedHives is the shared corpus of real hives, never copied into the repo.
const sharedHives = "../../../shared/testdata/hives"

func sharedHive(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(sharedHives, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test hive %s not available: %v", name, err)
	}
	return p
}

func mustRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := xpboot(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("xpboot %q: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// TestHiveEditCycle creates a hive, edits it with every command, checks it
// and moves its contents to another hive through export and import.
func TestHiveEditCycle(t *testing.T) {
	dir := t.TempDir()
	const svc = `ControlSet001\Services\viostor`
	mustRun(t, dir, "hive", "new", "s.hiv")
	if r := xpboot(t, dir, "hive", "new", "s.hiv"); r.code == 0 {
		t.Error("hive new replaced an existing file without --force")
	}
	mustRun(t, dir, "hive", "set", "-t", "dword", "s.hiv", `Select`, "Current", "1")
	mustRun(t, dir, "hive", "set", "-t", "dword", "--ccs", "s.hiv", `CurrentControlSet\Services\viostor`, "Start", "0")
	mustRun(t, dir, "hive", "set", "-t", "expand_sz", "s.hiv", svc, "ImagePath", `system32\drivers\viostor.sys`)
	mustRun(t, dir, "hive", "set", "-t", "multi_sz", "s.hiv", svc, "DependOnGroup", "A", "B")
	mustRun(t, dir, "hive", "set", "-t", "binary", "s.hiv", svc, "Blob", "de,ad,be,ef,01")
	mustRun(t, dir, "hive", "set", "-t", "qword", "s.hiv", svc, "Q", "0x10000000000")
	mustRun(t, dir, "hive", "set", "s.hiv", svc, "@", "default")
	mustRun(t, dir, "hive", "set", "s.hiv", svc, "Gone", "x")
	mustRun(t, dir, "hive", "rm", "s.hiv", svc, "Gone")
	mustRun(t, dir, "hive", "set", "s.hiv", `Old\Sub`, "v", "x")
	mustRun(t, dir, "hive", "rm", "s.hiv", `Old`)

	r := mustRun(t, dir, "hive", "get", "s.hiv", svc, "Start")
	if strings.TrimSpace(r.stdout) != "0x00000000 (0)" {
		t.Errorf("get Start: %q", r.stdout)
	}
	r = mustRun(t, dir, "hive", "get", "s.hiv", svc, "DependOnGroup")
	if r.stdout != "A\nB\n" {
		t.Errorf("get DependOnGroup: %q", r.stdout)
	}
	r = mustRun(t, dir, "hive", "ls", "--json", "--ccs", "s.hiv", `currentcontrolset\services\VIOSTOR`)
	var ls struct {
		Key    string
		Values []struct{ Name, Type, Hex string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Key != `ControlSet001\services\VIOSTOR` || len(ls.Values) != 6 || ls.Values[0].Name != "Start" || ls.Values[3].Hex != "deadbeef01" {
		t.Errorf("ls --json: %+v", ls)
	}
	r = mustRun(t, dir, "hive", "ls", "s.hiv")
	if r.stdout != "ControlSet001\\\nSelect\\\n" {
		t.Errorf("ls root: %q", r.stdout)
	}
	if r := xpboot(t, dir, "hive", "get", "s.hiv", `Old`); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("get deleted key: %+v", r)
	}
	mustRun(t, dir, "hive", "check", "s.hiv")

	// Export, import into another hive (1.5) and export again: identical.
	mustRun(t, dir, "hive", "export", "-o", "s.reg", "s.hiv")
	mustRun(t, dir, "hive", "new", "--minor", "5", "t.hiv")
	mustRun(t, dir, "hive", "import", "t.hiv", "s.reg")
	mustRun(t, dir, "hive", "check", "t.hiv")
	a := mustRun(t, dir, "hive", "export", "s.hiv").stdout
	b := mustRun(t, dir, "hive", "export", "t.hiv").stdout
	if a != b || !strings.HasPrefix(a, "Windows Registry Editor Version 5.00\n") {
		t.Errorf("export after import differs (%d vs %d bytes)", len(a), len(b))
	}
	if u := mustRun(t, dir, "hive", "export", "--encoding", "utf16", "s.hiv").stdout; !strings.HasPrefix(u, "\xff\xfe") {
		t.Errorf("--encoding utf16 to standard output: %.8q", u)
	}
	// REGEDIT4 with another prefix, one key.
	r = mustRun(t, dir, "hive", "export", "--regedit4", "--prefix", `HKEY_LOCAL_MACHINE\SOFTWARE`, "s.hiv", svc)
	if !strings.HasPrefix(r.stdout, "REGEDIT4\r\n") || !strings.Contains(r.stdout, "[HKEY_LOCAL_MACHINE\\SOFTWARE\\ControlSet001\\Services\\viostor]\r\n\"Start\"=dword:00000000") {
		t.Errorf("REGEDIT4 export:\n%s", r.stdout)
	}
}

func TestHiveCheck(t *testing.T) {
	r := mustRun(t, "", "hive", "check", "--json", sharedHive(t, "hivex-special"))
	if !strings.Contains(r.stdout, `"clean": true`) {
		t.Errorf("check --json of a clean hive: %s", r.stdout)
	}
	for _, name := range []string{"yarp-WrongOrderHive", "yarp-OldDirtyHive", "yarp-TruncatedHive"} {
		r := xpboot(t, "", "hive", "check", sharedHive(t, name))
		if r.code != 1 || !strings.HasPrefix(r.stdout, "0x") {
			t.Errorf("check %s: %+v", name, r)
		}
	}
	// Could not read it at all: exit status 3, not 1 (findings).
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notahive"), []byte("plain text, not regf"), 0o644)
	for _, arg := range []string{"missing.hiv", "notahive", "missing.img:/x"} {
		if r := xpboot(t, dir, "hive", "check", arg); r.code != 3 {
			t.Errorf("check %s: exit %d, want 3: %+v", arg, r.code, r)
		}
	}
}

func TestHiveDirtyRefused(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(sharedHive(t, "yarp-OldDirtyHive"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "d.hiv"), b, 0o644)
	r := xpboot(t, dir, "hive", "set", "d.hiv", "x", "v", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "dirty") {
		t.Errorf("editing a dirty hive: %+v", r)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "d.hiv"))
	if string(after) != string(b) {
		t.Error("refused edit changed the file")
	}
	// With its log replayed the edit goes through.
	mustRun(t, dir, "hive", "set", "--log", sharedHive(t, "yarp-OldDirtyHive.LOG1"), "d.hiv", "x", "v", "1")
	mustRun(t, dir, "hive", "check", "d.hiv")
	if r := mustRun(t, dir, "hive", "get", "d.hiv", "x", "v"); r.stdout != "1\n" {
		t.Errorf("get after recovery: %q", r.stdout)
	}
}

func TestHiveUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "hive", "new", "s.hiv")
	for _, args := range [][]string{
		{"hive", "get", "s.hiv"},
		{"hive", "set", "-t", "dword", "s.hiv", "k", "v", "notanumber"},
		{"hive", "set", "-t", "nosuchtype", "s.hiv", "k", "v", "1"},
		{"hive", "rm", "s.hiv"},
		{"hive", "check"},
	} {
		if r := xpboot(t, dir, args...); r.code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}

// TestHiveCompact: hive compact gives back the space a deleted subtree
// left, keeps every value, and the result checks clean; set saves in
// place and leaves the hive's transaction log beside it.
func TestHiveCompact(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "hive", "new", "--minor", "5", "s.hiv")
	mustRun(t, dir, "hive", "set", "-t", "dword", "s.hiv", `Keep`, "v", "7")
	for i := 0; i < 30; i++ {
		mustRun(t, dir, "hive", "set", "-t", "binary", "s.hiv", `Big\k`+strings.Repeat("x", i+1), "blob", strings.Repeat("ab", 3000))
	}
	if _, err := os.Stat(filepath.Join(dir, "s.hiv.LOG")); err != nil {
		t.Errorf("no transaction log after in-place saves: %v", err)
	}
	mustRun(t, dir, "hive", "rm", "s.hiv", `Big`)
	before, _ := os.Stat(filepath.Join(dir, "s.hiv"))
	r := mustRun(t, dir, "hive", "compact", "--json", "-o", "c.hiv", "s.hiv")
	var out struct {
		Before int64 `json:"bytes_before"`
		After  int64 `json:"bytes_after"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("compact --json: %v\n%s", err, r.stdout)
	}
	after, _ := os.Stat(filepath.Join(dir, "c.hiv"))
	if out.Before != before.Size() || out.After != after.Size() || after.Size() >= before.Size()-100000 {
		t.Errorf("compact: %+v, files %d → %d bytes", out, before.Size(), after.Size())
	}
	mustRun(t, dir, "hive", "check", "c.hiv")
	if r := mustRun(t, dir, "hive", "get", "c.hiv", "Keep", "v"); strings.TrimSpace(r.stdout) != "0x00000007 (7)" {
		t.Errorf("get after compact: %q", r.stdout)
	}
	mustRun(t, dir, "hive", "compact", "s.hiv") // in place
	mustRun(t, dir, "hive", "check", "s.hiv")
	if st, _ := os.Stat(filepath.Join(dir, "s.hiv")); st.Size() != after.Size() {
		t.Errorf("compact in place: %d bytes, -o gave %d", st.Size(), after.Size())
	}
}
