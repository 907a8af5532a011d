package ntfs

import "testing"

func TestValidDOSName(t *testing.T) {
	for name, want := range map[string]bool{
		"NTLDR": true, "boot.ini": true, "E1000.SYS": true, "a~1.b": true,
		"Long Name.txt": false, "file.html": false, "a.b.c": false, "toolongname.x": false,
		".hidden": false, "x.": false, "ÄÖÜ.TXT": false, "a+b.txt": false,
	} {
		if got := validDOSName(name); got != want {
			t.Errorf("validDOSName(%q) = %v", name, got)
		}
	}
}

func TestShortNames(t *testing.T) {
	var got []string
	for n := range shortNames("Long File Name.html") {
		got = append(got, n)
		if len(got) == 6 {
			break
		}
	}
	if got[0] != "LONGFI~1.HTM" || got[3] != "LONGFI~4.HTM" || len(got[4]) != 12 || got[4][:2] != "LO" || got[4][6:] != "~1.HTM" {
		t.Errorf("candidates %q", got)
	}
	for n := range shortNames("ÄÖ") {
		if n != "__~1" {
			t.Errorf("non-ASCII stem: %q", n)
		}
		break
	}
}
