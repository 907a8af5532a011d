package integrate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/xpboot/xpboot/integrate/integratetest"
)

func utf16le(s string) []byte {
	b, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(err)
	}
	return b
}

// roundTrips are inputs a parse followed by Bytes must return unchanged.
var roundTrips = []struct {
	name string
	data []byte
}{
	{"empty", nil},
	{"crlf", []byte("[a]\r\nk = v\r\n")},
	{"lf", []byte("[a]\nk = v\n")},
	{"mixed", []byte("[a]\r\nk = v\nx\r\r\n; c\r\n")},
	{"no-final-eol", []byte("[a]\r\nk = v")},
	{"eof-mark", []byte("[a]\r\nk=v\r\n\x1a")},
	{"eof-mark-2000", []byte("[a]\r\nk=v\r\n\x1a\r\n")},
	{"cp1252", []byte("[Strings]\r\nname = \"Caf\xe9 \x81\x8d\x90\"\r\n")},
	{"utf8-bom", []byte("\xef\xbb\xbf[a]\r\nk = \xc3\xa9\r\n")},
	{"utf16", utf16le("[a]\r\nk = é\r\n")},
	{"utf16-odd", append(utf16le("[a]\r\nk"), 'x')},
	{"duplicate-sections", []byte("[a]\r\nx=1\r\n[b]\r\n[A]\r\ny=2\r\n")},
	{"garbage", []byte("\x00\xff[\r]=\"\r\n=,,\"\n")},
}

func TestTextRoundTrip(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			x, err := ParseText(tt.name, tt.data, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := x.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("round trip:\n got %q\nwant %q", got, tt.data)
			}
		})
	}
}

func TestTextEncodingDetection(t *testing.T) {
	for _, tt := range []struct {
		data []byte
		enc  Encoding
		eol  string
	}{
		{[]byte("a\r\n"), ANSI, "\r\n"},
		{[]byte("a\nb\nc\r\n"), ANSI, "\n"},
		{nil, ANSI, "\r\n"},
		{[]byte("\xef\xbb\xbfa\n"), UTF8BOM, "\n"},
		{utf16le("a\r\n"), UTF16LE, "\r\n"},
	} {
		x, _ := ParseText("t", tt.data, nil)
		if x.Encoding != tt.enc || x.EOL != tt.eol {
			t.Errorf("%q: encoding %v eol %q; want %v %q", tt.data, x.Encoding, x.EOL, tt.enc, tt.eol)
		}
	}
}

// textEdits apply edits to a file and compare with the expected file.
var textEdits = []struct {
	name  string
	in    string
	edits []Edit
	want  string
}{
	{"set-replace-keeps-case-and-spacing",
		"[SetupData]\r\nOsLoadOptions  =  \"/noguiboot /fastdetect\" ; x\r\nOther=1\r\n",
		[]Edit{{Op: OpSet, Section: "setupdata", Key: "osloadoptions", Value: `"/fastdetect"`}},
		"[SetupData]\r\nOsLoadOptions  =  \"/fastdetect\"\r\nOther=1\r\n"},
	{"set-append-before-blank-lines",
		"[a]\r\nx = 1\r\n\r\n\r\n[b]\r\ny = 2\r\n",
		[]Edit{{Op: OpSet, Section: "A", Key: "z", Value: "3"}},
		"[a]\r\nx = 1\r\nz = 3\r\n\r\n\r\n[b]\r\ny = 2\r\n"},
	{"set-new-section-before-eof-mark",
		"[a]\r\nx = 1\r\n\x1a",
		[]Edit{{Op: OpSet, Section: "New", Key: "k", Value: "v"}},
		"[a]\r\nx = 1\r\n\r\n[New]\r\nk = v\r\n\x1a"},
	{"lf-file-gets-lf",
		"[a]\nx = 1",
		[]Edit{{Op: OpAdd, Section: "a", Value: "d1,x.sys"}},
		"[a]\nx = 1\nd1,x.sys\n"},
	{"add-is-idempotent",
		"[Files]\r\nd1,ACPI.SYS\r\n",
		[]Edit{{Op: OpAdd, Section: "files", Value: "d1, acpi.sys"}, {Op: OpAdd, Section: "files", Value: "d1,new.sys"}},
		"[Files]\r\nd1,ACPI.SYS\r\nd1,new.sys\r\n"},
	{"append-to-last-occurrence",
		"[a]\r\nx=1\r\n[b]\r\n[a]\r\ny=2\r\n; trailing comment\r\n[c]\r\n",
		[]Edit{{Op: OpSet, Section: "a", Key: "x", Value: "9"}, {Op: OpAdd, Section: "a", Value: "z"}},
		"[a]\r\nx=9\r\n[b]\r\n[a]\r\ny=2\r\nz\r\n; trailing comment\r\n[c]\r\n"},
	{"set-match-field",
		"[SourceDisksFiles.x86]\r\ne.sys = 2001,,,,,,,3001,0,0\r\n",
		[]Edit{
			{Op: OpSet, Section: "SourceDisksFiles.x86", Key: "E.SYS", Match: &FieldMatch{7, "4"}, Value: "1,,,,,,4_,4,0,0,,1,4"},
			{Op: OpSet, Section: "SourceDisksFiles.x86", Key: "e.sys", Match: &FieldMatch{7, "3001"}, Value: "2002,,,,,,,3001,0,0"},
		},
		"[SourceDisksFiles.x86]\r\ne.sys = 2002,,,,,,,3001,0,0\r\nE.SYS = 1,,,,,,4_,4,0,0,,1,4\r\n"},
	{"replace-reg-line",
		"[AddReg]\r\nHKLM,\"SYSTEM\\X\",\"Start\",0x00010001,1\r\nHKLM,\"SYSTEM\\X\",\"Type\",0x00010001,1\r\n",
		[]Edit{
			{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"system\x","start",0x00010001,0`},
			{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"SYSTEM\X","Group",0x00000000,"Base"`},
		},
		"[AddReg]\r\nHKLM,\"SYSTEM\\X\",\"Start\",0x00010001,0\r\nHKLM,\"SYSTEM\\X\",\"Type\",0x00010001,1\r\nHKLM,\"SYSTEM\\X\",\"Group\",0x00000000,\"Base\"\r\n"},
	{"remove",
		"[a]\r\nx\r\ny\r\nX\r\n",
		[]Edit{{Op: OpRemove, Section: "a", Value: "x"}},
		"[a]\r\ny\r\n"},
	{"section-only",
		"[a]",
		[]Edit{{Op: OpSection, Section: "b"}, {Op: OpSection, Section: "A"}},
		"[a]\r\n\r\n[b]\r\n"},
}

func TestTextEdits(t *testing.T) {
	for _, tt := range textEdits {
		t.Run(tt.name, func(t *testing.T) {
			x, _ := ParseText(tt.name, []byte(tt.in), nil)
			for _, e := range tt.edits {
				e.Apply(x)
			}
			got, err := x.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			// A second application to the result changes nothing.
			y, _ := ParseText(tt.name, got, nil)
			for _, e := range tt.edits {
				if e.Op != OpRemove && e.Apply(y) {
					t.Errorf("second %s changed the file", e)
				}
			}
			again, _ := y.Bytes()
			if !bytes.Equal(again, got) {
				t.Errorf("second run changed the file:\n%q", again)
			}
		})
	}
}

func TestTextEncodingsKept(t *testing.T) {
	// UTF-16LE: new lines are written as UTF-16LE, old ones unchanged.
	in := utf16le("[Strings]\r\nname = \"é\"\r\n")
	x, _ := ParseText("u", in, nil)
	x.Set("Strings", "other", `"ü"`)
	got, _ := x.Bytes()
	if want := utf16le("[Strings]\r\nname = \"é\"\r\nother = \"ü\"\r\n"); !bytes.Equal(got, want) {
		t.Errorf("UTF-16LE:\n got %q\nwant %q", got, want)
	}
	// ANSI with a code page: new text is encoded in it.
	in = []byte("[Strings]\r\nname = \"\xe9\"\r\n")
	x, _ = ParseText("a", in, &TextOptions{CodePage: charmap.CodePage850})
	if v, _ := x.Value("strings", "NAME"); v != `"Ú"` {
		t.Errorf("CP850 decode: %q", v)
	}
	x.Set("Strings", "other", `"é"`)
	got, _ = x.Bytes()
	if want := "[Strings]\r\nname = \"\xe9\"\r\nother = \"\x82\"\r\n"; string(got) != want {
		t.Errorf("CP850:\n got %q\nwant %q", got, want)
	}
	// A character the code page lacks is an error, not a '?'.
	x.Set("Strings", "bad", "€")
	if _, err := x.Bytes(); err == nil {
		t.Error("€ in CP850 did not fail")
	}
}

func TestTextQueries(t *testing.T) {
	x, _ := ParseText("q", []byte("[a]\r\nk = \"v, w\", x ; c\r\nbare,line\r\n[A]\r\nk2=2\r\n"), nil)
	es := x.Entries("a")
	if len(es) != 3 || es[0].Key != "k" || len(es[0].Fields) != 2 || es[0].Fields[0] != "v, w" || es[1].Key != "" || es[2].Key != "k2" {
		t.Errorf("entries %+v", es)
	}
	if v, ok := x.Value("A", "K2"); !ok || v != "2" {
		t.Errorf("Value: %q %v", v, ok)
	}
	if got := strings.Join(x.Sections(), ","); got != "a,A" {
		t.Errorf("sections %s", got)
	}
}

// FuzzParseText checks that any input survives parse → write byte for
// byte, and that edits are idempotent on whatever the parser accepts.
func FuzzParseText(f *testing.F) {
	for _, tt := range roundTrips {
		f.Add(tt.data)
	}
	f.Add([]byte(integratetest.XPTxtSetup))
	f.Add([]byte(integratetest.XPDosNet))
	ents, _ := os.ReadDir(filepath.Join("testdata"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".golden") && !strings.HasSuffix(e.Name(), ".json.golden") {
			b, _ := os.ReadFile(filepath.Join("testdata", e.Name()))
			f.Add(b)
		}
	}
	edits := []Edit{
		{Op: OpSet, Section: "HardwareIdsDatabase", Key: `PCI\VEN_1&DEV_2`, Value: `"svc"`},
		{Op: OpAdd, Section: "Files", Value: "d1,x.sys"},
		{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"SYSTEM\X","Start",0x00010001,0`},
		{Op: OpSet, Section: "SourceDisksFiles.x86", Key: "x.sys", Match: &FieldMatch{7, "4"}, Value: "1,,,,,,4_,4,0,0,,1,4"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := ParseText("fuzz", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := x.Bytes()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("round trip: %v\n got %q\nwant %q", err, out, data)
		}
		x.Lines()
		for _, e := range edits {
			e.Apply(x)
		}
		once, err := x.Bytes()
		if err != nil {
			return // the input's code page cannot hold the new text (UTF-8 BOM + invalid)
		}
		y, _ := ParseText("fuzz", once, nil)
		for _, e := range edits {
			if e.Apply(y) {
				t.Fatalf("second %s changed %q", e, once)
			}
		}
		if twice, _ := y.Bytes(); !bytes.Equal(twice, once) {
			t.Fatalf("second run changed the file")
		}
	})
}
