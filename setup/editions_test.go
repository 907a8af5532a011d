package setup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/integrate/integratetest"
)

// edit replaces old by new in the media file name (relative path).
func edit(t *testing.T, root, name, old, new string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s lacks %q", name, old)
	}
	if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEditions: the edition, architecture and the answer key name come
// from the media's files; the directory names nothing.
func TestEditions(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(t *testing.T, root string)
		os      string
		arch    string
		edition string
		title   string
		ls      []string // staged local-source directories
		keyName string
	}{
		{"XP Professional", func(*testing.T, string) {}, "XP", "x86", "Professional", "Microsoft Windows XP Professional Setup", []string{"I386"}, "ProductKey"},
		{"XP Home", func(t *testing.T, r string) { edit(t, r, "I386/TXTSETUP.SIF", "ProductType = 0", "ProductType = 4") },
			"XP", "x86", "Home Edition", "Microsoft Windows XP Home Edition Setup", []string{"I386"}, "ProductKey"},
		{"Windows 2000 Professional", func(t *testing.T, r string) {
			edit(t, r, "I386/TXTSETUP.SIF", "MinorVersion = 1", "MinorVersion = 0")
			edit(t, r, "I386/HIVESFT.INF", "Windows XP", "Windows 2000")
		}, "2000", "x86", "Professional", "Microsoft Windows 2000 Professional Setup", []string{"I386"}, "ProductID"},
		{"XP x64", func(t *testing.T, r string) {
			for _, f := range []string{"TXTSETUP.SIF", "DOSNET.INF", "HIVESYS.INF", "HIVESFT.INF", "SETUPREG.HIV"} {
				b, err := os.ReadFile(filepath.Join(r, "I386", f))
				if err != nil {
					t.Fatal(err)
				}
				integratetest.WriteFile(t, r, "AMD64/"+f, b)
			}
			edit(t, r, "AMD64/TXTSETUP.SIF", "MinorVersion = 1", "MinorVersion = 2")
			edit(t, r, "AMD64/TXTSETUP.SIF", "Architecture = i386", "Architecture = amd64")
			integratetest.WriteFile(t, r, "AMD64/NTOSKRNL.EX_", []byte("x64 kernel"))
		}, "XP", "amd64", "Professional", "Microsoft Windows XP Professional x64 Setup", []string{"I386", "AMD64"}, "ProductKey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			media := writeMedia(t, nil)
			tc.mutate(t, media)
			// The media's directory is named to mislead.
			odd := filepath.Join(filepath.Dir(media), "win2003_server_x64_sp9")
			if err := os.Rename(media, odd); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			res, err := Stage(odd, dir, Options{Answers: Answers{ProductKey: "KEY"}})
			if err != nil {
				t.Fatal(err)
			}
			m := res.Plan.Media
			if m.OS != tc.os || m.Arch != tc.arch || m.Edition != tc.edition || m.Title != tc.title {
				t.Errorf("media %+v", m)
			}
			for _, d := range tc.ls {
				if _, err := os.Stat(filepath.Join(dir, LocalDir, d, "TXTSETUP.SIF")); err != nil && d == tc.ls[len(tc.ls)-1] {
					t.Errorf("~LS/%s: %v", d, err)
				}
				if _, err := os.Stat(filepath.Join(dir, LocalDir, d)); err != nil {
					t.Errorf("~LS lacks %s", d)
				}
			}
			// The loaders come from I386 also on x64 media.
			if b, _ := os.ReadFile(filepath.Join(dir, "$LDR$")); string(b) != "stand-in SETUPLDR" {
				t.Errorf("$LDR$ = %q", b)
			}
			sif, _ := os.ReadFile(filepath.Join(dir, BootDir, "WINNT.SIF"))
			if !strings.Contains(string(sif), tc.keyName+` = "KEY"`) && !strings.Contains(string(sif), tc.keyName+`="KEY"`) {
				t.Errorf("WINNT.SIF lacks %s:\n%s", tc.keyName, sif)
			}
			ini, _ := os.ReadFile(filepath.Join(dir, "BOOT.INI"))
			if !strings.Contains(string(ini), `="`+tc.title+`"`) {
				t.Errorf("BOOT.INI:\n%s", ini)
			}
		})
	}
}
