package integrate

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/integrate/cab"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// TestPackedDriverINFs: the staged INF goes boot start with a signature
// warning (sanbootconf, already boot start, is left alone), in-box model
// lines for the NIC are commented out in packed and plain INFs (a UTF-16
// plain INF keeps its encoding and line endings), sfcfiles.dll loses the
// driver file with a valid PE checksum, and a second run is a no-op.
func TestPackedDriverINFs(t *testing.T) {
	root := makeMedia(t)
	setup := filepath.Join(root, "I386")
	addPacked(t, setup)
	pkgs := []string{nicPackage(t, integratetest.I386), rootPackage(t)}
	p, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(p, "e1000325.inf", "[e1000.Service]", "e1000325.cat", "DriverSigningPolicy=Ignore") {
		t.Errorf("no signature warning for the staged INF: %q", p.Warnings)
	}
	if hasWarning(p, "sanbootconf.inf: StartType") {
		t.Errorf("sanbootconf (already boot start) edited: %q", p.Warnings)
	}
	if !hasWarning(p, "I386/NETE1000.IN_", `PCI\VEN_8086&DEV_100E`, "DriverSigningPolicy=Ignore") {
		t.Errorf("no in-box warning: %q", p.Warnings)
	}
	comments := 0
	for _, e := range p.Edits {
		if e.Op == OpComment {
			comments++
		}
	}
	if comments != 3 {
		t.Errorf("%d comment edits, want 3", comments)
	}
	ch := pkChanged(t, p)
	for _, f := range []string{"I386/NETE1000.IN_", "I386/OEMNET.INF", "I386/SFCFILES.DL_", "I386/scsidrv/e1000325/e1000325.inf"} {
		if _, ok := ch[f]; !ok {
			t.Errorf("%s not reported changed", f)
		}
	}
	if _, ok := ch["I386/NETMON.IN_"]; ok {
		t.Error("netmon.in_, which holds no INF, changed")
	}
	// The NIC's class instance (allocated by the setupreg.hiv step) is
	// deleted early in GUI mode by hal.inf.
	for _, n := range p.hives.nics {
		b, _, err := p.copies.current("I386/HAL.IN_")
		if err != nil {
			t.Fatal(err)
		}
		if _, d := pkUnpack(t, b); !strings.Contains(string(d), `HKLM,"SYSTEM\CurrentControlSet\`+n.classKey+`","NetCfgInstanceId"`) {
			t.Errorf("hal.inf lacks the DelReg of %s:\n%s", n.classKey, d)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}

	staged := string(mustRead(t, filepath.Join(setup, "scsidrv", "e1000325", "e1000325.inf")))
	if want := strings.Replace(integratetest.CRLF(integratetest.NICINF), "StartType      = 3", "StartType      = 0", 1); staged != want {
		t.Errorf("staged INF:\n%s", staged)
	}
	_, d := pkUnpack(t, mustRead(t, filepath.Join(setup, "NETE1000.IN_")))
	want := strings.NewReplacer(
		"\r\n%E100E.DeviceDesc% = E100E.ndi, PCI", "\r\n;%E100E.DeviceDesc% = E100E.ndi, PCI",
		"\r\n%E100E.DeviceDesc%  =", "\r\n;%E100E.DeviceDesc%  =").Replace(pkInBoxNIC)
	if string(d) != want {
		t.Errorf("in-box INF:\n%s", d)
	}
	if x := pkCabextract(t, filepath.Join(setup, "NETE1000.IN_"), "nete1000.inf"); string(x) != want {
		t.Errorf("cabextract: in-box INF:\n%s", x)
	}
	if got, want := mustRead(t, filepath.Join(setup, "OEMNET.INF")), utf16le(strings.Replace(pkInBoxPlain, "\n%D%", "\n;%D%", 1)); !bytes.Equal(got, want) {
		t.Errorf("plain UTF-16 INF:\n% x\nwant\n% x", got, want)
	}
	r, sfc := pkUnpack(t, mustRead(t, filepath.Join(setup, "SFCFILES.DL_")))
	if r.File[0].Name != "sfcfiles.dll" || r.File[0].Attrs != pkAttrs {
		t.Errorf("sfcfiles.dl_ header %q %#x", r.File[0].Name, r.File[0].Attrs)
	}
	orig := pkSfcFiles()
	for _, c := range []struct {
		at   int
		want string
	}{
		{0x210, `%systemroot%\system32\drivers\E1000325.SY0`},
		{0x280, `%systemroot%\system32\drivers\e1000325.sysx`},
		{0x300, `%systemroot%\system32\drivers\tcpip.sys`},
		{0x410, `%systemroot%\system32\drivers\e1000325.sy0`},
	} {
		if got := string(bytes.ReplaceAll(sfc[c.at:c.at+2*len(c.want)], []byte{0}, nil)); got != c.want {
			t.Errorf("sfcfiles.dll at %#x: %q, want %q", c.at, got, c.want)
		}
	}
	at := peChecksumOffset(sfc)
	if binary.LittleEndian.Uint32(sfc[at:]) != peChecksum(sfc) || bytes.Equal(sfc[at:at+4], orig[at:at+4]) {
		t.Error("sfcfiles.dll checksum not recomputed")
	}
	if n := 0; true {
		for i := range sfc {
			if sfc[i] != orig[i] {
				n++
			}
		}
		if n > 2+4 {
			t.Errorf("%d bytes of sfcfiles.dll changed, want the two characters and the checksum", n)
		}
	}
	if x := pkCabextract(t, filepath.Join(setup, "SFCFILES.DL_"), "sfcfiles.dll"); !bytes.Equal(x, sfc) {
		t.Error("cabextract reads another sfcfiles.dll")
	}

	done := integratetest.Snapshot(t, root)
	p2, err := integrate(t, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	if ch := pkChanged(t, p2); len(ch) != 0 {
		t.Errorf("second run changes %v", ch)
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
}

// TestPackedMissing: without any packed file, integration succeeds and
// says what it skipped.
func TestPackedMissing(t *testing.T) {
	root := makeMedia(t)
	p, err := integrate(t, root, nicPackage(t, integratetest.I386))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"nettcpip.in_ is not in I386", "netgpc.in_", "netpsa.in_", "sfcfiles.dl_ is not in I386"} {
		if !hasWarning(p, w) {
			t.Errorf("no warning %q: %q", w, p.Warnings)
		}
	}
}

// TestPackedHAL adds the NetCfgInstanceId DelReg to hal.inf on x86 XP and
// 2000 only, once per adapter, and says when hal.in_ cannot be used.
func TestPackedHAL(t *testing.T) {
	nics := []*nicInstance{
		{classKey: `Control\Class\` + NetClassGUID + `\0001`, guid: "{11111111-2222-3333-4444-555555555555}"},
		{classKey: `Control\Class\` + NetClassGUID + `\0002`, guid: "{66666666-2222-3333-4444-555555555555}"},
	}
	wantHal := strings.Replace(pkHal, "AddReg = ComputerClass.AddReg\r\n", "AddReg = ComputerClass.AddReg\r\nDelReg = NetCfgInstanceId.DelReg\r\n", 1) +
		integratetest.CRLF("\n[NetCfgInstanceId.DelReg]\n"+
			`HKLM,"SYSTEM\CurrentControlSet\Control\Class\{4D36E972-E325-11CE-BFC1-08002BE10318}\0001","NetCfgInstanceId"`+"\n"+
			`HKLM,"SYSTEM\CurrentControlSet\Control\Class\{4D36E972-E325-11CE-BFC1-08002BE10318}\0002","NetCfgInstanceId"`+"\n")
	for _, tt := range []struct {
		name  string
		tree  func(testing.TB) string
		setup string
		hal   string // "" to leave it out
		want  string // hal.inf after, "" for unchanged
		warn  string
	}{
		{"xp", makeMedia, "I386", pkHal, wantHal, ""},
		{"2000", win2000, "I386", pkHal, wantHal, ""},
		{"2003-x64", x64Server, "AMD64", pkHal, "", ""},
		{"missing", makeMedia, "I386", "", "", "hal.in_ is not in I386"},
		{"no-classinstall", makeMedia, "I386", strings.Replace(pkHal, "[ClassInstall32]", "[Other]", 1), "", "no [ClassInstall32]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.tree(t)
			setup := filepath.Join(root, tt.setup)
			if tt.hal != "" {
				writeFile(t, filepath.Join(setup, "HAL.IN_"), pkCab(t, "hal.inf", []byte(tt.hal), cab.MSZIP))
			}
			for round := range 2 {
				p := planOn(t, DirFS(root), Options{})
				p.hives.nics = nics
				if err := p.infs.packedHAL(); err != nil {
					t.Fatal(err)
				}
				if err := p.infs.packedHAL(); err != nil { // a second NIC driver of the same run
					t.Fatal(err)
				}
				if tt.warn != "" && !hasWarning(p, tt.warn) {
					t.Errorf("no warning %q: %q", tt.warn, p.Warnings)
				}
				if ch := pkChanged(t, p); (len(ch) != 0) != (round == 0 && tt.want != "") {
					t.Errorf("round %d changes %v", round, ch)
				}
				if err := p.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.hal == "" {
				return
			}
			_, d := pkUnpack(t, mustRead(t, filepath.Join(setup, "HAL.IN_")))
			want := tt.want
			if want == "" {
				want = tt.hal
			}
			if string(d) != want {
				t.Errorf("hal.inf:\n%s\nwant\n%s", d, want)
			}
		})
	}
}

// FuzzUnpack feeds arbitrary bytes to the packed-file reader. What it
// reads as an INF must round-trip through the text editor, commenting a
// model line must be stable (parse → write → parse), and a cabinet
// written back with the file's header must read the same.
func FuzzUnpack(f *testing.F) {
	f.Add(pkCab(f, "nettcpip.inf", []byte(pkNetTCPIP), cab.MSZIP))
	f.Add(pkLZX("hal.inf", []byte(pkHal)))
	f.Add([]byte(pkNetGPC))
	f.Add(utf16le(pkInBoxPlain))
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := unpack("x.in_", b, packedINF)
		if err != nil {
			return
		}
		x, _ := ParseText("x.inf", pf.data, nil)
		out, err := x.Bytes()
		if err != nil || !bytes.Equal(out, pf.data) {
			t.Fatalf("INF does not round-trip: %v", err)
		}
		for _, sec := range modelSections(x) {
			for _, i := range x.sectionLines(sec) {
				if x.lines[i].kind == kindEntry {
					if err := x.commentLine(i); err != nil {
						return // not encodable in the file's code page
					}
				}
			}
		}
		out, err = x.Bytes()
		if err != nil {
			return
		}
		y, _ := ParseText("x.inf", out, nil)
		again, _ := y.Bytes()
		if !bytes.Equal(again, out) {
			t.Fatal("commented INF does not round-trip")
		}
		if pf.isCab {
			var buf bytes.Buffer
			w := cab.NewWriter(&buf)
			fw, err := w.CreateHeader(&pf.hdr)
			if err != nil {
				return // a name the writer refuses
			}
			fw.Write(pf.data)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			back, err := unpack("x.in_", buf.Bytes(), packedINF)
			if err != nil || !bytes.Equal(back.data, pf.data) || back.hdr.Name != pf.hdr.Name {
				t.Fatalf("rewritten cabinet reads differently: %v", err)
			}
		}
	})
}
