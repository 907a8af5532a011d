package setup

import (
	"strings"
	"testing"

	"github.com/xpboot/xpboot/integrate"
)

// FuzzBootINI merges the setup entry into arbitrary BOOT.INI files: no
// panic, and whatever is accepted has the setup entry as default.
func FuzzBootINI(f *testing.F) {
	f.Add([]byte("[boot loader]\r\ntimeout=30\r\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n[operating systems]\r\nmulti(0)disk(0)rdisk(0)partition(1)\\WINDOWS=\"Microsoft Windows XP Professional\" /fastdetect\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := bootINI(b, "Microsoft Windows XP Professional Setup")
		if err != nil {
			return
		}
		x, err := integrate.ParseText("BOOT.INI", out, nil)
		if err != nil {
			t.Fatalf("merged BOOT.INI does not parse: %v", err)
		}
		if v, ok := x.Value("boot loader", "default"); !ok || !strings.EqualFold(strings.TrimSpace(v), bootEntry) {
			t.Fatalf("default = %q, %v\n%q", v, ok, out)
		}
	})
}

// FuzzAnswerFile merges the stage's answers into arbitrary answer files:
// no panic, and an accepted WINNT.SIF carries MsDosInitiated and
// floppyless.
func FuzzAnswerFile(f *testing.F) {
	f.Add([]byte("[Unattended]\r\nUnattendMode=FullUnattended\r\n[UserData]\r\nFullName=\"A\"\r\nComputerName=B\r\nProductKey=\"C\"\r\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, unattended bool) {
		m := &Media{OS: "XP"}
		out, err := winntSIF(m, &Options{AnswerFile: b, Unattended: unattended, Answers: Answers{ComputerName: "PC"}})
		if err != nil {
			return
		}
		x, err := integrate.ParseText("WINNT.SIF", out, nil)
		if err != nil {
			t.Fatalf("WINNT.SIF does not parse: %v", err)
		}
		for _, k := range []string{"MsDosInitiated", "floppyless"} {
			if v, _ := x.Value("Data", k); v != `"1"` {
				t.Fatalf("[Data] %s = %q\n%q", k, v, out)
			}
		}
	})
}

// TestBootINIMerge: an existing BOOT.INI keeps its entries and settings,
// gets the setup entry as default, and a second merge changes nothing.
func TestBootINIMerge(t *testing.T) {
	old := "[boot loader]\r\ntimeout=30\r\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n[operating systems]\r\n" +
		"multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS=\"Microsoft Windows XP Professional\" /fastdetect\r\n"
	out, err := bootINI([]byte(old), "Microsoft Windows XP Professional Setup")
	if err != nil {
		t.Fatal(err)
	}
	want := "[boot loader]\r\ntimeout=30\r\ndefault=C:\\$WIN_NT$.~BT\\BOOTSECT.DAT\r\n[operating systems]\r\n" +
		"multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS=\"Microsoft Windows XP Professional\" /fastdetect\r\n" +
		"C:\\$WIN_NT$.~BT\\BOOTSECT.DAT=\"Microsoft Windows XP Professional Setup\"\r\n"
	if string(out) != want {
		t.Fatalf("merged:\n%q\nwant\n%q", out, want)
	}
	again, err := bootINI(out, "Microsoft Windows XP Professional Setup")
	if err != nil || string(again) != string(out) {
		t.Fatalf("second merge changed it: %v\n%q", err, again)
	}
}
