package integrate

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/integrate/integratetest"
)

// continuedList writes a REG_MULTI_SZ AddReg line over several physical
// lines, the way XP's hivesys.inf writes ServiceGroupOrder List: the value
// head, then one string per line, each line but the last ending in a
// backslash.
func continuedList(key, name string, list []string, eol string) string {
	var b strings.Builder
	b.WriteString(`HKLM,` + quote(key) + `,` + quote(name) + `,0x00010000,\` + eol)
	for i, s := range list {
		b.WriteString("    " + quote(s))
		if i < len(list)-1 {
			b.WriteString(`,\`)
		}
		b.WriteString(eol)
	}
	return b.String()
}

// continuations are files with continued entries: what Entries reads and
// how many physical lines Lines shows.
var continuations = []struct {
	name    string
	data    []byte
	section string
	want    []Entry
	lines   int
}{
	{"crlf",
		[]byte("[AddReg]\r\nHKLM,\"K\",\"List\",0x00010000,\\\r\n    \"A\",\\\r\n    \"B\"\r\nHKLM,\"K\",\"X\",0x00010001,1\r\n"),
		"AddReg",
		[]Entry{
			{"", `HKLM,"K","List",0x00010000, "A", "B"`, []string{"HKLM", "K", "List", "0x00010000", "A", "B"}},
			{"", `HKLM,"K","X",0x00010001,1`, []string{"HKLM", "K", "X", "0x00010001", "1"}},
		}, 5},
	{"lf",
		[]byte("[AddReg]\nHKLM,\"K\",\"List\",0x00010000,\\\n\"A\",\\\n\"B\"\n"),
		"AddReg",
		[]Entry{{"", `HKLM,"K","List",0x00010000, "A", "B"`, []string{"HKLM", "K", "List", "0x00010000", "A", "B"}}}, 4},
	{"comments-after-backslash",
		[]byte("[AddReg]\r\nHKLM,\"K\",\"List\",0x00010000,\\ ; groups, in order\r\n\t\"A\", \\\t; first\r\n\t\"B\" ; last \\\r\nx\r\n"),
		"AddReg",
		[]Entry{
			{"", `HKLM,"K","List",0x00010000, "A", "B"`, []string{"HKLM", "K", "List", "0x00010000", "A", "B"}},
			{"", "x", []string{"x"}},
		}, 5},
	{"key-value",
		[]byte("[Strings]\r\nlong = \\\r\n  \"a, b\" ; c\r\nnext = 1\r\n"),
		"Strings",
		[]Entry{{"long", `"a, b"`, []string{"a, b"}}, {"next", "1", []string{"1"}}}, 4},
	{"comment-line-ends-entry",
		[]byte("[a]\r\nx,\\\r\n; comment\r\ny\r\n"),
		"a",
		[]Entry{{"", "x,", []string{"x", ""}}, {"", "y", []string{"y"}}}, 4},
	{"blank-line-ends-entry",
		[]byte("[a]\r\nx,\\\r\n\r\ny\r\n"),
		"a",
		[]Entry{{"", "x,", []string{"x", ""}}, {"", "y", []string{"y"}}}, 4},
	{"backslash-in-comment-or-quotes",
		[]byte("[WinntDirectories]\r\n1 = \"\\\"\r\n2 = system32 ; not \\\r\n3 = x\r\n"),
		"WinntDirectories",
		[]Entry{{"1", `"\"`, []string{`\`}}, {"2", "system32", []string{"system32"}}, {"3", "x", []string{"x"}}}, 4},
	{"backslash-in-open-quote",
		[]byte("[a]\r\nk = \"C:\\dir\\\r\nnext = 1\r\n"),
		"a",
		// The field reads as setupapi reads an unterminated quote: it runs
		// to the end of the line and the quote is dropped (inftext's
		// rule; the old integrate lexer kept the quote).
		[]Entry{{"k", `"C:\dir\`, []string{`C:\dir\`}}, {"next", "1", []string{"1"}}}, 3},
	{"eof",
		[]byte("[a]\r\nx,\\\r\n  y,\\"),
		"a",
		[]Entry{{"", "x, y,", []string{"x", "y", ""}}}, 3},
	{"eof-after-eol",
		[]byte("[a]\r\nx,\\\r\n"),
		"a",
		[]Entry{{"", "x,", []string{"x", ""}}}, 2},
	{"eof-mark-not-joined",
		[]byte("[a]\r\nx,\\\r\n\x1a\r\n"),
		"a",
		[]Entry{{"", "x,", []string{"x", ""}}}, 3},
	{"header-text-joined",
		[]byte("[a]\r\nx,\\\r\n[b]\r\ny\r\n"),
		"a",
		[]Entry{{"", "x, [b]", []string{"x", "[b]"}}, {"", "y", []string{"y"}}}, 4},
	{"utf16",
		utf16le("[AddReg]\r\nHKLM,\"K\",\"List\",0x00010000,\\\r\n    \"é\",\\\r\n    \"B\"\r\n"),
		"AddReg",
		[]Entry{{"", `HKLM,"K","List",0x00010000, "é", "B"`, []string{"HKLM", "K", "List", "0x00010000", "é", "B"}}}, 4},
}

func TestTextContinuations(t *testing.T) {
	for _, tt := range continuations {
		t.Run(tt.name, func(t *testing.T) {
			x, err := ParseText(tt.name, tt.data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := x.Bytes(); !bytes.Equal(got, tt.data) {
				t.Errorf("round trip:\n got %q\nwant %q", got, tt.data)
			}
			got := x.Entries(tt.section)
			if !slices.EqualFunc(got, tt.want, func(a, b Entry) bool {
				return a.Key == b.Key && a.Value == b.Value && slices.Equal(a.Fields, b.Fields)
			}) {
				t.Errorf("entries\n got %q\nwant %q", got, tt.want)
			}
			if n := len(x.Lines()); n != tt.lines {
				t.Errorf("%d physical lines, want %d: %q", n, tt.lines, x.Lines())
			}
		})
	}
}

// continuationEdits are edits of continued entries: the whole entry is
// replaced by one line, and applying them again changes nothing.
var continuationEdits = []struct {
	name  string
	in    []byte
	edits []Edit
	want  []byte
}{
	{"replace-crlf",
		[]byte("[AddReg]\r\nHKLM,\"SYSTEM\\X\",\"List\",0x00010000,\\\r\n    \"A\",\\ ; first\r\n    \"B\"\r\nHKLM,\"SYSTEM\\X\",\"Start\",0x00010001,1\r\n"),
		[]Edit{{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"system\x","list",0x00010000,"B","A"`}},
		[]byte("[AddReg]\r\nHKLM,\"SYSTEM\\X\",\"List\",0x00010000,\"B\",\"A\"\r\nHKLM,\"SYSTEM\\X\",\"Start\",0x00010001,1\r\n")},
	{"replace-lf",
		[]byte("[AddReg]\nHKLM,\"SYSTEM\\X\",\"List\",0x00010000,\\\n\"A\",\\\n\"B\"\n"),
		[]Edit{{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"SYSTEM\X","List",0x00010000,"B","A"`}},
		[]byte("[AddReg]\nHKLM,\"SYSTEM\\X\",\"List\",0x00010000,\"B\",\"A\"\n")},
	{"replace-same-fields-keeps-layout",
		[]byte("[AddReg]\r\nHKLM,\"SYSTEM\\X\",\"List\",0x00010000,\\\r\n    \"A\",\\\r\n    \"B\"\r\n"),
		[]Edit{{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"SYSTEM\X","List",0x00010000,"a","b"`}},
		[]byte("[AddReg]\r\nHKLM,\"SYSTEM\\X\",\"List\",0x00010000,\\\r\n    \"A\",\\\r\n    \"B\"\r\n")},
	{"replace-identifying-fields-continued",
		[]byte("[AddReg]\r\nHKLM,\\\r\n\"SYSTEM\\X\",\"Start\",0x00010001,1\r\n"),
		[]Edit{{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"SYSTEM\X","Start",0x00010001,0`}},
		[]byte("[AddReg]\r\nHKLM, \"SYSTEM\\X\",\"Start\",0x00010001,0\r\n")},
	{"set-key-value",
		[]byte("[SetupData]\r\nOsLoadOptions = \\\r\n  \"/noguiboot\" ; x\r\nOther = 1\r\n"),
		[]Edit{{Op: OpSet, Section: "SetupData", Key: "osloadoptions", Value: `"/fastdetect"`}},
		[]byte("[SetupData]\r\nOsLoadOptions = \"/fastdetect\"\r\nOther = 1\r\n")},
	{"set-match-field",
		[]byte("[SourceDisksFiles.x86]\r\ne.sys = 2001,,,,,,,\\\r\n 3001,0,0\r\n"),
		[]Edit{{Op: OpSet, Section: "SourceDisksFiles.x86", Key: "e.sys", Match: &FieldMatch{7, "3001"}, Value: "2002,,,,,,,3001,0,0"}},
		[]byte("[SourceDisksFiles.x86]\r\ne.sys = 2002,,,,,,,3001,0,0\r\n")},
	{"remove",
		[]byte("[a]\r\nx,\\\r\n  y\r\nz\r\n"),
		[]Edit{{Op: OpRemove, Section: "a", Value: "x, y"}},
		[]byte("[a]\r\nz\r\n")},
	{"add-after-continuation-at-eof",
		[]byte("[a]\r\nx,\\"),
		[]Edit{{Op: OpAdd, Section: "a", Value: "y"}},
		[]byte("[a]\r\nx,\\\r\n\r\ny\r\n")},
	{"add-before-eof-mark",
		[]byte("[a]\r\nx,\\\r\n\x1a"),
		[]Edit{{Op: OpAdd, Section: "a", Value: "y"}, {Op: OpSection, Section: "b"}},
		[]byte("[a]\r\nx,\\\r\n\r\ny\r\n\r\n[b]\r\n\x1a")},
	{"new-section-after-continuation-at-eof",
		[]byte("[a]\nx,\\\n"),
		[]Edit{{Op: OpSet, Section: "b", Key: "k", Value: "v"}},
		[]byte("[a]\nx,\\\n\n[b]\nk = v\n")},
	{"utf16-replace",
		utf16le("[AddReg]\r\nHKLM,\"K\",\"List\",0x00010000,\\\r\n    \"é\",\\\r\n    \"B\"\r\n"),
		[]Edit{{Op: OpReplace, Section: "AddReg", Fields: 3, Value: `HKLM,"K","List",0x00010000,"B","é"`}},
		utf16le("[AddReg]\r\nHKLM,\"K\",\"List\",0x00010000,\"B\",\"é\"\r\n")},
}

func TestTextContinuationEdits(t *testing.T) {
	for _, tt := range continuationEdits {
		t.Run(tt.name, func(t *testing.T) {
			x, _ := ParseText(tt.name, tt.in, nil)
			for _, e := range tt.edits {
				e.Apply(x)
			}
			got, err := x.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			y, _ := ParseText(tt.name, got, nil)
			for _, e := range tt.edits {
				if e.Op != OpRemove && e.Apply(y) {
					t.Errorf("second %s changed the file", e)
				}
			}
			if again, _ := y.Bytes(); !bytes.Equal(again, got) {
				t.Errorf("second run changed the file:\n%q", again)
			}
		})
	}
}

// TestHiveSysContinuedGroupOrder integrates a NIC into media whose
// hivesys.inf sets ServiceGroupOrder List over many lines, as XP's does:
// the List is read whole, written back reordered as one line, and a
// second run changes nothing.
func TestHiveSysContinuedGroupOrder(t *testing.T) {
	const sgo = ccs + `Control\ServiceGroupOrder`
	root := makeMedia(t)
	sys := filepath.Join(root, "I386", "HIVESYS.INF")
	b, err := os.ReadFile(sys)
	if err != nil {
		t.Fatal(err)
	}
	cont := continuedList(sgo, "List", integratetest.XPServiceGroupOrder, "\r\n")
	writeFile(t, sys, append(b, cont...))

	// regValue (detection) reads the data's first field past the
	// continuation, not a lone backslash.
	x, _ := ParseText(sys, append(b, cont...), nil)
	if v, ok := regValue(x, sgo, "List"); !ok || v != "System Reserved" {
		t.Fatalf("regValue of the continued List: %q %v", v, ok)
	}
	if got := regEntries(t, sys, sgo); len(got) != 1 || !slices.Equal(got[0][4:], integratetest.XPServiceGroupOrder) {
		t.Fatalf("hivesys.inf List read as %q", got)
	}

	pkg := nicPackage(t, integratetest.I386)
	p, err := integrate(t, root, pkg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Warnings {
		if strings.Contains(w, "ServiceGroupOrder") {
			t.Errorf("warning: %s", w)
		}
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	want := groupOrder(integratetest.XPServiceGroupOrder)
	l, err := regLine(sgo, "List", drivers.RegMultiSZ, drivers.MultiData(want))
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(sys)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(after, []byte(l+"\r\n")) {
		t.Errorf("hivesys.inf lacks the reordered List on one line:\n%s", after)
	}
	if bytes.Contains(after, []byte(`,\`)) {
		t.Errorf("hivesys.inf keeps continuation lines:\n%s", after)
	}
	if got := regEntries(t, sys, sgo); len(got) != 1 || !slices.Equal(got[0][4:], want) {
		t.Errorf("hivesys.inf List after integration: %q", got)
	}

	done := integratetest.Snapshot(t, root)
	p2, err := integrate(t, root, pkg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p2.Edits {
		if e.Changed && (e.File == HiveSysINF || e.File == SetupRegHIV) {
			t.Errorf("second run: %s changed", e)
		}
	}
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, done, integratetest.Snapshot(t, root))
}

// regEntries returns the fields of every [AddReg] line of the hive INF at
// path that sets key's List.
func regEntries(t *testing.T, path, key string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := ParseText(path, b, nil)
	var out [][]string
	for _, e := range x.Entries("AddReg") {
		if len(e.Fields) >= 5 && strings.EqualFold(e.Fields[1], key) && strings.EqualFold(e.Fields[2], "List") {
			out = append(out, e.Fields)
		}
	}
	return out
}

// TestCommentContinuedModelLine comments out a model line continued over
// two physical lines: both get a ';', so the continuation line does not
// come back as an entry of its own, and the bytes after each ';' are kept.
func TestCommentContinuedModelLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"crlf", []byte("[M]\r\n%D% = Inst, \\\r\n  PCI\\VEN_8086&DEV_100E\r\nx = y\r\n"),
			[]byte("[M]\r\n;%D% = Inst, \\\r\n;  PCI\\VEN_8086&DEV_100E\r\nx = y\r\n")},
		{"lf, last line", []byte("[M]\n%D% = Inst, \\\n  PCI\\VEN_8086&DEV_100E"),
			[]byte("[M]\n;%D% = Inst, \\\n;  PCI\\VEN_8086&DEV_100E")},
		{"utf-16le", utf16le("[M]\r\n%D% = Inst, \\\r\n  PCI\\VEN_8086&DEV_100E\r\n"),
			utf16le("[M]\r\n;%D% = Inst, \\\r\n;  PCI\\VEN_8086&DEV_100E\r\n")},
	} {
		x, err := ParseText(tc.name, tc.in, nil)
		if err != nil {
			t.Fatal(err)
		}
		idx := x.sectionLines("M")
		if len(idx) == 0 || len(x.Entries("M")) == 0 {
			t.Fatalf("%s: no entry parsed", tc.name)
		}
		if err := x.commentLine(idx[0]); err != nil {
			t.Fatal(err)
		}
		got, err := x.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		back, _ := ParseText(tc.name, got, nil)
		for _, e := range back.Entries("M") {
			if strings.Contains(e.Key+e.Value, "VEN_8086") {
				t.Errorf("%s: continuation came back as entry %+v", tc.name, e)
			}
		}
	}
}
