package integrate

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/integrate/cab"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// The packed INFs below are shaped like XP SP2's: the real section names
// IntegrateDrv edits, AddService lines naming them, inline comments.

var pkNetTCPIP = integratetest.CRLF(`; NETTCPIP.INF -- Internet Protocol (TCP/IP)
[Version]
Signature   = "$Windows NT$"
Class       = NetTrans
ClassGUID   = {4d36e975-e325-11ce-bfc1-08002be10318}
Provider    = %Msft%
LayoutFile  = layout.inf
DriverVer   = 07/01/2001,5.1.2600.2180

[Manufacturer]
%Msft% = MSFT

[MSFT]
%MS_TCPIP.DisplayName% = MS_TCPIP.PrimaryInstall, MS_TCPIP

[MS_TCPIP.PrimaryInstall.Services]
AddService = Tcpip,, Install.AddService.TCPIP, Install.AddEventLog.TCPIP
AddService = IPSec,, Install.AddService.IPSEC

[Install.AddService.TCPIP]
DisplayName     = %MS_TCPIP.DisplayName%
ServiceType     = 1 ;SERVICE_KERNEL_DRIVER
StartType       = 1 ;SERVICE_SYSTEM_START
ErrorControl    = 1 ;SERVICE_ERROR_NORMAL
ServiceBinary   = %12%\tcpip.sys
LoadOrderGroup  = "PNP_TDI"
Dependencies    = IPSec

[Install.AddService.IPSEC]
DisplayName = %IPSEC.DisplayName%
ServiceType = 1
StartType = 3
ErrorControl = 1
ServiceBinary = %12%\ipsec.sys
LoadOrderGroup = "PNP_TDI"

[Strings]
Msft = "Microsoft"
MS_TCPIP.DisplayName = "Internet Protocol (TCP/IP)"
IPSEC.DisplayName = "IPSEC driver"
`)

var pkNetGPC = integratetest.CRLF(`[Version]
Signature = "$Windows NT$"
Class     = NetService

[MS_GPC.Install.Services]
AddService = Gpc,, GPC.AddService

[GPC.AddService]
DisplayName   = %GPC.DisplayName%
ServiceType   = 1
StartType     = 3 ;SERVICE_DEMAND_START
ErrorControl  = 1
ServiceBinary = %12%\msgpc.sys

[Strings]
GPC.DisplayName = "Generic Packet Classifier"
`)

var pkNetPSA = integratetest.CRLF(`[Version]
Signature = "$Windows NT$"
Class     = Net

[PSchedMP.ndi.Services]
AddService = PSched, 2, PSchedMP.AddService

[PSchedMP.AddService]
DisplayName   = %PSched.DisplayName%
ServiceType   = 1
StartType     = 3
ErrorControl  = 1
ServiceBinary = %12%\psched.sys

[Strings]
PSched.DisplayName = "QoS Packet Scheduler"
`)

var pkHal = integratetest.CRLF(`[Version]
Signature  = "$Windows NT$"
Class      = Computer
ClassGUID  = {4D36E966-E325-11CE-BFC1-08002BE10318}
Provider   = %MS%
LayoutFile = layout.inf

[ClassInstall32]
AddReg = ComputerClass.AddReg

[ComputerClass.AddReg]
HKR,,,,%ComputerClassName%
HKR,,Icon,,"-27"

[Manufacturer]
%GENDEV_MFG% = GENDEV_SYS

[GENDEV_SYS]
%acpipic_up.DeviceDesc% = ACPIPIC_UP_HAL, acpipic_up

[Strings]
MS = "Microsoft"
ComputerClassName = "Computer"
GENDEV_MFG = "(Standard computers)"
acpipic_up.DeviceDesc = "ACPI Uniprocessor PC"
`)

// pkInBoxNIC is an in-box network INF listing the integrated E1000 with
// subsystem and revision suffixes, and another adapter.
var pkInBoxNIC = integratetest.CRLF(`[Version]
Signature = "$Windows NT$"
Class     = Net
ClassGUID = {4d36e972-e325-11ce-bfc1-08002be10318}
Provider  = %Msft%

[Manufacturer]
%Intel% = Intel, NTx86.5.1

[Intel]
%E100E.DeviceDesc% = E100E.ndi, PCI\VEN_8086&DEV_100E&SUBSYS_001E8086
%E1004.DeviceDesc% = E1004.ndi, PCI\VEN_8086&DEV_1004

[Intel.NTx86.5.1]
%E100E.DeviceDesc%  =  E100E.ndi,  PCI\VEN_8086&DEV_100E&SUBSYS_002E8086&REV_02 ; the same chip

[Strings]
Msft = "Microsoft"
Intel = "Intel"
E100E.DeviceDesc = "Intel(R) PRO/1000 MT Network Connection"
E1004.DeviceDesc = "Intel(R) PRO/1000 T Server Adapter"
`)

// pkInBoxPlain is an uncompressed UTF-16LE in-box INF with LF endings
// naming the E100F device.
var pkInBoxPlain = "[Version]\nSignature = \"$Windows NT$\"\nClass = Net\n\n[Manufacturer]\n%V% = V\n\n[V]\n%D% = D.ndi, PCI\\VEN_8086&DEV_100F\n%O% = O.ndi, PCI\\VEN_10EC&DEV_8139\n\n[Strings]\nV = \"Vendor ü\"\nD = \"Dual port\"\nO = \"Other\"\n"

var pkTime = time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC)

const pkAttrs = cab.AttrArchive | cab.AttrReadOnly

// pkCab packs one file with our writer.
func pkCab(t testing.TB, inner string, data []byte, comp cab.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cab.NewWriter(&buf)
	w.Compression = comp
	fw, err := w.CreateHeader(&cab.FileHeader{Name: inner, Modified: pkTime, Attrs: pkAttrs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pkGcab packs one file with gcab (MSZIP).
func pkGcab(t testing.TB, inner string, data []byte) []byte {
	t.Helper()
	peertest.Need(t, "gcab", "gcab")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, inner), data)
	out := filepath.Join(t.TempDir(), "g.cab")
	peertest.Run(t, 30*time.Second, "sh", "-c", "cd '"+dir+"' && gcab -c -n -z '"+out+"' '"+inner+"'")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkLZX builds a single-file cabinet whose folder is LZX (window 2^16)
// holding one uncompressed LZX block, which is how LZX stores data that
// does not compress; gcab cannot write LZX. data must be under 32 KiB (one
// frame).
func pkLZX(inner string, data []byte) []byte {
	le := binary.LittleEndian
	// Bits, most significant first in 16-bit little-endian words: no E8
	// translation (1), block type 3 (3), block length (24), then
	// padding to the word; R0–R2, the bytes, a pad byte if odd.
	v := uint32(3)<<24 | uint32(len(data))
	w := v << 4
	stream := []byte{byte(w >> 16), byte(w >> 24), byte(w), byte(w >> 8)}
	for range 3 {
		stream = le.AppendUint32(stream, 1)
	}
	stream = append(stream, data...)
	if len(data)%2 == 1 {
		stream = append(stream, 0)
	}
	nameLen := len(inner) + 1
	coffFiles := 36 + 8
	coffData := coffFiles + 16 + nameLen
	total := coffData + 8 + len(stream)
	b := make([]byte, 0, total)
	b = append(b, "MSCF"...)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, uint32(total))
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, uint32(coffFiles))
	b = le.AppendUint32(b, 0)
	b = append(b, 3, 1)
	b = le.AppendUint16(b, 1) // folders
	b = le.AppendUint16(b, 1) // files
	b = le.AppendUint16(b, 0) // flags
	b = le.AppendUint16(b, 0x1234)
	b = le.AppendUint16(b, 0)
	// CFFOLDER
	b = le.AppendUint32(b, uint32(coffData))
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, uint16(cab.LZX)|16<<8)
	// CFFILE
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, uint16((pkTime.Year()-1980)<<9|int(pkTime.Month())<<5|pkTime.Day()))
	b = le.AppendUint16(b, uint16(pkTime.Hour()<<11))
	b = le.AppendUint16(b, pkAttrs)
	b = append(b, inner...)
	b = append(b, 0)
	// CFDATA, checksum 0 (none)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, uint16(len(stream)))
	b = le.AppendUint16(b, uint16(len(data)))
	return append(b, stream...)
}

// pkUnpack reads a single-file cabinet with our reader.
func pkUnpack(t testing.TB, b []byte) (*cab.Reader, []byte) {
	t.Helper()
	r, err := cab.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.File) != 1 {
		t.Fatalf("%d files in cabinet", len(r.File))
	}
	d, err := r.File[0].ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return r, d
}

// pkCabextract extracts the cabinet at path with cabextract (after
// testing it) and returns the file inner.
func pkCabextract(t testing.TB, path, inner string) []byte {
	t.Helper()
	peertest.Need(t, "cabextract", "cabextract")
	peertest.Run(t, 30*time.Second, "cabextract", "-t", "-q", path)
	dir := t.TempDir()
	peertest.Run(t, 30*time.Second, "cabextract", "-q", "-d", dir, path)
	b, err := os.ReadFile(filepath.Join(dir, inner))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkSfcFiles returns a PE32 image shaped like sfcfiles.dll: the protected
// file list as UTF-16 strings in .text (XP) and .data (2000), among them
// E1000325.SYS in upper case, and a longer name that must stay.
func pkSfcFiles() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0x600)
	copy(b, "MZ")
	le.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	coff := b[0x44:]
	le.PutUint16(coff[0:], 0x14c)
	le.PutUint16(coff[2:], 2)
	le.PutUint16(coff[16:], 224)
	le.PutUint16(coff[18:], 0x2102)
	opt := b[0x58:]
	le.PutUint16(opt[0:], 0x10b)
	le.PutUint32(opt[32:], 0x1000) // SectionAlignment
	le.PutUint32(opt[36:], 0x200)  // FileAlignment
	le.PutUint32(opt[56:], 0x3000) // SizeOfImage
	le.PutUint32(opt[60:], 0x200)  // SizeOfHeaders
	le.PutUint32(opt[92:], 16)
	sec := b[0x58+224:]
	for i, s := range []struct {
		name     string
		off, rva uint32
	}{{".text", 0x200, 0x1000}, {".data", 0x400, 0x2000}} {
		h := sec[i*40:]
		copy(h, s.name)
		le.PutUint32(h[8:], 0x200)
		le.PutUint32(h[12:], s.rva)
		le.PutUint32(h[16:], 0x200)
		le.PutUint32(h[20:], s.off)
	}
	put := func(at int, s string) {
		for i := 0; i < len(s); i++ {
			b[at+2*i] = s[i]
		}
	}
	put(0x210, `%systemroot%\system32\drivers\E1000325.SYS`)
	put(0x280, `%systemroot%\system32\drivers\e1000325.sysx`)
	put(0x300, `%systemroot%\system32\drivers\tcpip.sys`)
	put(0x410, `%systemroot%\system32\drivers\e1000325.sys`)
	setPEChecksum(b)
	return b
}

// addPacked writes the packed files of an XP setup directory.
func addPacked(t testing.TB, setup string) {
	t.Helper()
	writeFile(t, filepath.Join(setup, "NETTCPIP.IN_"), pkCab(t, "nettcpip.inf", []byte(pkNetTCPIP), cab.MSZIP))
	writeFile(t, filepath.Join(setup, "NETGPC.IN_"), pkCab(t, "netgpc.inf", []byte(pkNetGPC), cab.MSZIP))
	writeFile(t, filepath.Join(setup, "NETPSA.IN_"), pkCab(t, "netpsa.inf", []byte(pkNetPSA), cab.MSZIP))
	writeFile(t, filepath.Join(setup, "HAL.IN_"), pkCab(t, "hal.inf", []byte(pkHal), cab.MSZIP))
	writeFile(t, filepath.Join(setup, "NETE1000.IN_"), pkCab(t, "nete1000.inf", []byte(pkInBoxNIC), cab.MSZIP))
	writeFile(t, filepath.Join(setup, "NETMON.IN_"), pkCab(t, "netmon.ini", []byte("PCI\\VEN_8086&DEV_100E\r\n"), cab.MSZIP))
	writeFile(t, filepath.Join(setup, "OEMNET.INF"), utf16le(pkInBoxPlain))
	writeFile(t, filepath.Join(setup, "SFCFILES.DL_"), pkCab(t, "sfcfiles.dll", pkSfcFiles(), cab.MSZIP))
}

func pkChanged(t *testing.T, p *Plan) map[string]FileChange {
	t.Helper()
	fc, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]FileChange{}
	for _, f := range fc {
		if f.Changed {
			m[f.Path] = f
		}
	}
	return m
}

func hasWarning(p *Plan, parts ...string) bool {
	for _, w := range p.Warnings {
		ok := true
		for _, s := range parts {
			ok = ok && strings.Contains(w, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// TestPackedTCPIP rewrites nettcpip/netgpc/netpsa however they are
// stored: cabinets from our writer, gcab, an LZX cabinet, a stored one,
// and a plain nettcpip.inf; the INF read back (by our reader and
// cabextract) is the original with only the StartType lines changed, the
// cabinet keeps its file name, time and attributes, and a second run
// writes nothing.
func TestPackedTCPIP(t *testing.T) {
	want := strings.Replace(strings.Replace(pkNetTCPIP,
		"StartType       = 1 ;SERVICE_SYSTEM_START", "StartType       = 0", 1),
		"StartType = 3", "StartType = 0", 1)
	for _, tt := range []struct {
		name  string
		file  string
		pack  func(t testing.TB) []byte
		comp  cab.Compression // after the rewrite; 0xffff: plain
		peers bool
	}{
		{"writer-mszip", "NETTCPIP.IN_", func(t testing.TB) []byte { return pkCab(t, "nettcpip.inf", []byte(pkNetTCPIP), cab.MSZIP) }, cab.MSZIP, false},
		{"writer-stored", "NETTCPIP.IN_", func(t testing.TB) []byte { return pkCab(t, "nettcpip.inf", []byte(pkNetTCPIP), cab.None) }, cab.None, false},
		{"gcab-mszip", "NETTCPIP.IN_", func(t testing.TB) []byte { return pkGcab(t, "nettcpip.inf", []byte(pkNetTCPIP)) }, cab.MSZIP, true},
		{"lzx", "NETTCPIP.IN_", func(t testing.TB) []byte { return pkLZX("nettcpip.inf", []byte(pkNetTCPIP)) }, cab.MSZIP, false},
		{"lzx-odd", "NETTCPIP.IN_", func(t testing.TB) []byte { return pkLZX("nettcpip.inf", []byte(pkNetTCPIP+";")) }, cab.MSZIP, false},
		{"plain", "NETTCPIP.INF", func(t testing.TB) []byte { return []byte(pkNetTCPIP) }, 0xffff, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			setup := filepath.Join(root, "I386")
			addPacked(t, setup)
			os.Remove(filepath.Join(setup, "NETTCPIP.IN_"))
			orig := tt.pack(t)
			writeFile(t, filepath.Join(setup, tt.file), orig)
			wantHere, origINF := want, pkNetTCPIP
			if tt.name == "lzx-odd" {
				wantHere, origINF = want+";", pkNetTCPIP+";"
			}
			var origHdr *cab.File
			if tt.comp != 0xffff {
				r, d := pkUnpack(t, orig)
				if string(d) != origINF {
					t.Fatalf("test cabinet does not read back")
				}
				origHdr = r.File[0]
				if strings.HasPrefix(tt.name, "lzx") {
					// The hand-made LZX stream is valid for cabextract too.
					if x := pkCabextract(t, filepath.Join(setup, tt.file), "nettcpip.inf"); string(x) != origINF {
						t.Fatalf("cabextract reads the LZX test cabinet as\n%s", x)
					}
				}
			}

			p, err := integrate(t, root, nicPackage(t, integratetest.I386))
			if err != nil {
				t.Fatal(err)
			}
			ch := pkChanged(t, p)
			for _, f := range []string{"I386/" + tt.file, "I386/NETGPC.IN_", "I386/NETPSA.IN_"} {
				if _, ok := ch[f]; !ok {
					t.Errorf("%s not reported changed (changed: %v)", f, ch)
				}
			}
			diff, err := p.Diff()
			if err != nil {
				t.Fatal(err)
			}
			label := "I386/" + tt.file
			if tt.comp != 0xffff {
				label += ":nettcpip.inf"
			}
			for _, s := range []string{"--- a/" + label, "-StartType       = 1 ;SERVICE_SYSTEM_START", "+StartType       = 0", "+StartType = 0"} {
				if !strings.Contains(diff, s) {
					t.Errorf("diff lacks %q:\n%s", s, diff)
				}
			}
			if !hasWarning(p, tt.file, "DriverSigningPolicy=Ignore") {
				t.Errorf("no signature warning for %s: %q", tt.file, p.Warnings)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(setup, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.comp == 0xffff {
				if string(got) != wantHere {
					t.Errorf("plain nettcpip.inf:\n%s", got)
				}
			} else {
				r, d := pkUnpack(t, got)
				f := r.File[0]
				if string(d) != wantHere {
					t.Errorf("own reader: nettcpip.inf is\n%s", d)
				}
				if f.Name != "nettcpip.inf" || f.Attrs != origHdr.Attrs || !f.Modified.Equal(origHdr.Modified) {
					t.Errorf("file header %q %#x %v, want kept", f.Name, f.Attrs, f.Modified)
				}
				if m := r.Folder[0].Compression.Method(); m != tt.comp {
					t.Errorf("compression %v, want %v", m, tt.comp)
				}
				if x := pkCabextract(t, filepath.Join(setup, tt.file), "nettcpip.inf"); string(x) != wantHere {
					t.Errorf("cabextract: nettcpip.inf is\n%s", x)
				}
			}
			_, d := pkUnpack(t, mustRead(t, filepath.Join(setup, "NETPSA.IN_")))
			if !strings.Contains(string(d), "[PSchedMP.AddService]\r\nDisplayName   = %PSched.DisplayName%\r\nServiceType   = 1\r\nStartType     = 0\r\n") {
				t.Errorf("netpsa.inf:\n%s", d)
			}
			_, d = pkUnpack(t, mustRead(t, filepath.Join(setup, "NETGPC.IN_")))
			if !strings.Contains(string(d), "StartType     = 0\r\nErrorControl") {
				t.Errorf("netgpc.inf:\n%s", d)
			}

			done := integratetest.Snapshot(t, root)
			p2, err := integrate(t, root, nicPackage(t, integratetest.I386))
			if err != nil {
				t.Fatal(err)
			}
			if ch := pkChanged(t, p2); len(ch) != 0 {
				t.Errorf("second run changes %v", ch)
			}
			for _, e := range p2.Edits {
				if e.Changed {
					t.Errorf("second run: %s", e)
				}
			}
			if err := p2.Commit(); err != nil {
				t.Fatal(err)
			}
			integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
		})
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackedTCPIPVersions: Windows 2000 leaves IPSec, GPC and PSched
// alone, 2003 x64 GPC and PSched; a missing netgpc.in_ is a warning.
func TestPackedTCPIPVersions(t *testing.T) {
	for _, tt := range []struct {
		name      string
		tree      func(testing.TB) string
		setup     string
		ipsec     bool
		scheduler bool
	}{
		{"xp", makeMedia, "I386", true, true},
		{"2000", win2000, "I386", false, false},
		{"2003-x64", x64Server, "AMD64", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.tree(t)
			setup := filepath.Join(root, tt.setup)
			addPacked(t, setup)
			p := planOn(t, DirFS(root), Options{})
			if err := p.infs.packedTCPIP(); err != nil {
				t.Fatal(err)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			_, d := pkUnpack(t, mustRead(t, filepath.Join(setup, "NETTCPIP.IN_")))
			if !strings.Contains(string(d), "StartType       = 0\r\n") {
				t.Error("TCP/IP not boot start")
			}
			if got := strings.Contains(string(d), "StartType = 0\r\n"); got != tt.ipsec {
				t.Errorf("IPSec boot start: %v, want %v", got, tt.ipsec)
			}
			for _, f := range []string{"NETGPC.IN_", "NETPSA.IN_"} {
				_, d := pkUnpack(t, mustRead(t, filepath.Join(setup, f)))
				if got := strings.Contains(string(d), "StartType     = 0"); got != tt.scheduler {
					t.Errorf("%s boot start: %v, want %v", f, got, tt.scheduler)
				}
			}
		})
	}
	root := makeMedia(t)
	addPacked(t, filepath.Join(root, "I386"))
	os.Remove(filepath.Join(root, "I386", "NETGPC.IN_"))
	p := planOn(t, DirFS(root), Options{})
	if err := p.infs.packedTCPIP(); err != nil {
		t.Fatal(err)
	}
	if !hasWarning(p, "netgpc.in_ is not in I386", "Gpc") {
		t.Errorf("warnings %q", p.Warnings)
	}
}

// TestPackedBad: a nettcpip.in_ that is no cabinet, a damaged or
// unsupported one, or an INF without the section is a warning naming the
// file, the file is left alone and the rest is done.
func TestPackedBad(t *testing.T) {
	good := pkCab(t, "nettcpip.inf", []byte(pkNetTCPIP), cab.MSZIP)
	twoFiles := func() []byte {
		var buf bytes.Buffer
		w := cab.NewWriter(&buf)
		for _, n := range []string{"nettcpip.inf", "other.inf"} {
			fw, _ := w.Create(n)
			fw.Write([]byte(pkNetTCPIP))
		}
		w.Close()
		return buf.Bytes()
	}()
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-5] ^= 0xff
	for _, tt := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"garbage", []byte("\x00\x01garbage\x00\xff\xfe"), "neither a cabinet nor a plain INF"},
		{"mscf-garbage", append([]byte("MSCF"), bytes.Repeat([]byte{0xff}, 40)...), "cab:"},
		{"truncated", good[:len(good)/2], "cab:"},
		{"checksum", corrupt, "checksum"},
		{"two-files", twoFiles, "holds 2 files"},
		{"no-section", pkCab(t, "nettcpip.inf", []byte("[Version]\r\nSignature = \"$Windows NT$\"\r\n"), cab.MSZIP), "no [Install.AddService.TCPIP]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeMedia(t)
			setup := filepath.Join(root, "I386")
			addPacked(t, setup)
			writeFile(t, filepath.Join(setup, "NETTCPIP.IN_"), tt.data)
			p, err := integrate(t, root, nicPackage(t, integratetest.I386))
			if err != nil {
				t.Fatal(err)
			}
			if !hasWarning(p, "I386/NETTCPIP.IN_", tt.msg) {
				t.Errorf("no warning naming I386/NETTCPIP.IN_ and %q: %q", tt.msg, p.Warnings)
			}
			if err := p.Commit(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mustRead(t, filepath.Join(setup, "NETTCPIP.IN_")), tt.data) {
				t.Error("NETTCPIP.IN_ changed")
			}
			_, d := pkUnpack(t, mustRead(t, filepath.Join(setup, "NETPSA.IN_")))
			if !strings.Contains(string(d), "StartType     = 0") {
				t.Error("netpsa.inf not edited")
			}
		})
	}
}
