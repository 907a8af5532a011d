package hive

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

const sysPrefix = `HKEY_LOCAL_MACHINE\SYSTEM`

func exportString(t testing.TB, f *File, key string, opt RegOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ExportReg(&buf, f, key, opt); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRegRoundTripCorpus exports each real hive, imports the .reg into a
// new hive and checks that its export is identical.
func TestRegRoundTripCorpus(t *testing.T) {
	for _, name := range validHives {
		for _, format := range []RegFormat{RegEdit5, RegEdit4} {
			t.Run(name, func(t *testing.T) {
				f := openBytes(t, readCorpus(t, name))
				opt := RegOptions{Prefix: sysPrefix, Format: format}
				var buf bytes.Buffer
				err := ExportReg(&buf, f, "", opt)
				if format == RegEdit4 && errors.Is(err, ErrInvalid) {
					t.Skipf("not representable in REGEDIT4: %v", err)
				}
				if err != nil {
					t.Fatal(err)
				}
				first := buf.Bytes()
				e, err := New(f.Minor)
				if err != nil {
					t.Fatal(err)
				}
				if err := ImportReg(e, bytes.NewReader(first), opt); err != nil {
					t.Fatal(err)
				}
				g, err := e.File()
				if err != nil {
					t.Fatal(err)
				}
				second := exportString(t, g, "", opt)
				if !bytes.Equal(first, second) {
					a, _ := decodeReg(first)
					b, _ := decodeReg(second)
					t.Errorf("re-export differs:\n%s", firstDiff(a, b))
				}
			})
		}
	}
}

const sampleReg = `Windows Registry Editor Version 5.00

; a comment
[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\viostor]
"Type"=dword:00000001
"Start"=dword:0
@="default \"quoted\" \\ back"
"ImagePath"=hex(2):73,00,79,00,73,00,74,00,65,00,6d,00,33,00,32,00,5c,00,64,00,\
  72,00,69,00,76,00,65,00,72,00,73,00,5c,00,76,00,69,00,6f,00,73,00,74,00,6f,\
  00,72,00,2e,00,73,00,79,00,73,00,00,00
"DependOnGroup"=hex(7):41,00,00,00,42,00,00,00,00,00
"Blob"=hex:de,ad,be,ef,01
"Empty"=hex:
"Q"=hex(b):01,00,00,00,00,00,00,00
"Gone"="x"
"Gone"=-

[HKEY_LOCAL_MACHINE\SYSTEM\Old\Sub]
"v"="x"

[-HKEY_LOCAL_MACHINE\SYSTEM\Old]

[HKEY_LOCAL_MACHINE\SYSTEM\]
"RootValue"="r"
`

func utf16File(s string) []byte {
	s = strings.ReplaceAll(s, "\n", "\r\n")
	return append([]byte{0xFF, 0xFE}, utf16le(utf16.Encode([]rune(s)))...)
}

func TestRegImportForms(t *testing.T) {
	regedit4 := strings.Replace(sampleReg, regHeader5, regHeader4, 1)
	// In REGEDIT4, hex(2)/hex(7) hold ANSI bytes.
	regedit4 = strings.Replace(regedit4, `hex(7):41,00,00,00,42,00,00,00,00,00`, `hex(7):41,00,42,00,00`, 1)
	regedit4 = strings.Replace(regedit4, `"Blob"`, `"Blöb"`, 1)
	imagePath := EncodeString(`system32\drivers\viostor.sys`)
	i := strings.Index(regedit4, `"ImagePath"`)
	j := strings.Index(regedit4, `"DependOnGroup"`)
	var ansiHex strings.Builder
	writeHex(&ansiHex, `"ImagePath"=hex(2):`, append([]byte(`system32\drivers\viostor.sys`), 0))
	regedit4 = regedit4[:i] + ansiHex.String() + regedit4[j:]
	ansi, err := charmap.Windows1252.NewEncoder().String(regedit4)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file []byte
		blob string
	}{
		{"utf16", utf16File(sampleReg), "Blob"},
		{"utf8", []byte(sampleReg), "Blob"},
		{"regedit4", []byte(ansi), "Blöb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loadEditor(t, "hivex-minimal")
			if err := e.CreateKey(`Old\Sub\Deeper`); err != nil {
				t.Fatal(err)
			}
			if err := ImportReg(e, bytes.NewReader(tt.file), RegOptions{Prefix: sysPrefix}); err != nil {
				t.Fatal(err)
			}
			out, err := e.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			mustCheck(t, out)
			f := openBytes(t, out)
			const k = `ControlSet001\Services\viostor`
			checkOps(t, f, []setOp{
				{k, "Type", DWORD, EncodeDWORD(1)},
				{k, "Start", DWORD, EncodeDWORD(0)},
				{k, "", SZ, EncodeString(`default "quoted" \ back`)},
				{k, "ImagePath", ExpandSZ, imagePath},
				{k, "DependOnGroup", MultiSZ, EncodeMultiString([]string{"A", "B"})},
				{k, tt.blob, Binary, []byte{0xde, 0xad, 0xbe, 0xef, 0x01}},
				{k, "Empty", Binary, []byte{}},
				{k, "Q", QWORD, EncodeQWORD(1)},
				{"", "RootValue", SZ, EncodeString("r")},
			})
			kk, _ := f.Key(k)
			if _, err := kk.Value("Gone"); !errors.Is(err, ErrNotFound) {
				t.Errorf(`"Gone"=- did not delete the value: %v`, err)
			}
			if _, err := f.Key("Old"); !errors.Is(err, ErrNotFound) {
				t.Errorf("[-Old] did not delete the key: %v", err)
			}
		})
	}
}

func TestRegImportErrors(t *testing.T) {
	for name, text := range map[string]string{
		"header":     "REGEDIT9\n",
		"prefix":     regHeader5 + "\n[HKEY_CURRENT_USER\\X]\n",
		"dword":      regHeader5 + "\n[HKEY_LOCAL_MACHINE\\SYSTEM\\X]\n\"a\"=dword:123456789\n",
		"hex":        regHeader5 + "\n[HKEY_LOCAL_MACHINE\\SYSTEM\\X]\n\"a\"=hex:zz\n",
		"novalkey":   regHeader5 + "\n\"a\"=\"b\"\n",
		"unknown":    regHeader5 + "\n[HKEY_LOCAL_MACHINE\\SYSTEM\\X]\n\"a\"=foo\n",
		"unclosed":   regHeader5 + "\n[HKEY_LOCAL_MACHINE\\SYSTEM\\X]\n\"a=\"b\"\n",
		"deleteroot": regHeader5 + "\n[-HKEY_LOCAL_MACHINE\\SYSTEM]\n",
	} {
		e := loadEditor(t, "new-1.5")
		err := ImportReg(e, strings.NewReader(text), RegOptions{Prefix: sysPrefix})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "line") {
			t.Errorf("%s: %v, want an ErrInvalid naming the line", name, err)
		}
	}
}

// TestRegExportSubkey exports one key with a different prefix and imports
// it into another hive.
func TestRegExportSubkey(t *testing.T) {
	e := loadEditor(t, "new-1.3")
	applyOps(t, e, driverValues(3))
	f, err := e.File()
	if err != nil {
		t.Fatal(err)
	}
	opt := RegOptions{Prefix: `HKEY_LOCAL_MACHINE\SOFTWARE`}
	reg := exportString(t, f, `controlset001\services`, opt)
	text, _ := decodeReg(reg)
	if !strings.Contains(text, `[HKEY_LOCAL_MACHINE\SOFTWARE\ControlSet001\Services\viostor]`) {
		t.Errorf("export lacks the key with stored case:\n%s", text)
	}
	if !strings.Contains(text, "\"Start\"=dword:00000000\r\n") || !strings.Contains(text, "\"Group\"=\"SCSI miniport\"\r\n") {
		t.Errorf("export lacks dword/string forms:\n%s", text)
	}
	e2 := loadEditor(t, "hivex-special")
	if err := ImportReg(e2, bytes.NewReader(reg), opt); err != nil {
		t.Fatal(err)
	}
	g, _ := e2.File()
	checkOps(t, g, driverValues(3)[:14])
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestExportGolden pins the exact .reg text of a driver integration on
// XP-written hivex-special (testdata/export.golden, decoded from UTF-16;
// go test -update rewrites it).
func TestExportGolden(t *testing.T) {
	e := loadEditor(t, "hivex-special")
	applyOps(t, e, driverValues(5)[:16])
	if err := e.SetValue(`ControlSet001\Services\viostor`, "Long", Binary, pattern(100)); err != nil {
		t.Fatal(err)
	}
	f, err := e.File()
	if err != nil {
		t.Fatal(err)
	}
	raw := exportString(t, f, "", RegOptions{Prefix: sysPrefix})
	if !bytes.HasPrefix(raw, []byte{0xFF, 0xFE}) {
		t.Error("export lacks the UTF-16LE byte order mark")
	}
	text, err := decodeReg(raw)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(text, "\n") != strings.Count(text, "\r\n") {
		t.Error("export has bare LF line ends")
	}
	got := []byte(strings.ReplaceAll(text, "\r\n", "\n"))
	const golden = "testdata/export.golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("export differs from %s (go test -update rewrites it):\n%s", golden, firstDiff(string(want), string(got)))
	}
}

// TestImportRegCap: an endless .reg stream is refused at MaxRegSize, not
// read into memory without bound.
func TestImportRegCap(t *testing.T) {
	ed, err := New(5)
	if err != nil {
		t.Fatal(err)
	}
	endless := io.MultiReader(strings.NewReader("Windows Registry Editor Version 5.00\r\n\r\n"), zeroReader{})
	if err := ImportReg(ed, endless, RegOptions{}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("endless input: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ';'
	}
	return len(p), nil
}
