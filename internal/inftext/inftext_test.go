package inftext

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitLines(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"crlf", "a\r\nb\r\n", []string{"a", "b", ""}},
		{"lf", "a\nb", []string{"a", "b"}},
		{"lone cr is not an end", "a\rb\nc", []string{"a\rb", "c"}},
		{"ctrl-z mid-line", "a\nb\x1ac\nd", []string{"a", "b"}},
		{"ctrl-z first", "\x1a[x]", []string{""}},
	}
	for _, tt := range tests {
		if got := SplitLines(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLogical(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
		n     int
	}{
		{"one", []string{"a = b ; c", "x"}, "a = b", 1},
		{"continued", []string{`a = b, \`, `  c, \ ; note`, "  d", "e"}, "a = b, c, d", 3},
		{"quoted backslash", []string{`a = "x\`, `y"`}, `a = "x\`, 1},
		{"quoted root", []string{`root = "\"`, "b"}, `root = "\"`, 1},
		{"blank ends", []string{`a \`, "", "b"}, "a", 2},
		{"comment ends", []string{`a \`, "; c", "b"}, "a", 2},
		{"last line", []string{`a \`}, "a", 1},
		{"none", nil, "", 0},
	}
	for _, tt := range tests {
		got, n := Logical(tt.lines)
		if got != tt.want || n != tt.n {
			t.Errorf("%s: %q %d, want %q %d", tt.name, got, n, tt.want, tt.n)
		}
	}
}

func TestHeader(t *testing.T) {
	tests := []struct {
		in, name   string
		closed, ok bool
	}{
		{"[Version]", "Version", true, true},
		{"  [ a b ] ; c", "a b", true, true},
		{"[a;b]", "a;b", true, true},
		{"[open", "open", false, true},
		{"x=[y]", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		name, closed, ok := Header(tt.in)
		if name != tt.name || closed != tt.closed || ok != tt.ok {
			t.Errorf("%q: %q %v %v, want %q %v %v", tt.in, name, closed, ok, tt.name, tt.closed, tt.ok)
		}
	}
}

func TestFields(t *testing.T) {
	tests := []struct {
		in   string
		key  string
		has  bool
		want []string
	}{
		{`k = a, "b, c", d`, "k", true, []string{"a", "b, c", "d"}},
		{`"k=1" = v`, `"k=1"`, true, []string{"v"}},
		{`HKR,,"say ""hi""",0,"  pad  "`, "", false, []string{"HKR", "", `say "hi"`, "0", "  pad  "}},
		{`a"b"c, "x" y`, "", false, []string{"abc", "x y"}},
		{`k =`, "k", true, []string{""}},
		{`"open, x`, "", false, []string{"open, x"}},
		{`""`, "", false, []string{""}},
	}
	for _, tt := range tests {
		key, v, has := SplitKey(tt.in)
		if key != tt.key || has != tt.has {
			t.Errorf("%q: key %q %v, want %q %v", tt.in, key, has, tt.key, tt.has)
		}
		if got := Fields(v); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: fields %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	strs := map[string]string{"short": "S", "p": "50%"}
	lookup := func(n string) (string, bool) { v, ok := strs[strings.ToLower(n)]; return v, ok }
	tests := []struct{ in, want, unknown string }{
		{"pre%Short%post", "preSpost", ""},
		{`"in %short% quotes"`, "in S quotes", ""},
		{`"100%% sure"`, "100% sure", ""},
		{`%11%\x.dll`, `%11%\x.dll`, ""},
		{`%-1%`, `%-1%`, ""},
		{`%Nope%`, `%Nope%`, "Nope"},
		{`50 %`, `50 %`, ""},
		{`%p%%p%`, `50%50%`, ""},
	}
	for _, tt := range tests {
		var unk []string
		got := Expand(tt.in, lookup, func(n string) { unk = append(unk, n) })
		if got != tt.want || strings.Join(unk, ",") != tt.unknown {
			t.Errorf("%q: %q (unknown %q), want %q (%q)", tt.in, got, unk, tt.want, tt.unknown)
		}
	}
	if got := Unquote(`"100%% sure"`); got != "100%% sure" {
		t.Errorf("Unquote touched %%%%: %q", got)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		lang uint16
		text string
		enc  string
		bad  bool
	}{
		{"ansi", []byte("caf\xe9"), 0x409, "café", "windows-1252", false},
		{"cyrillic", []byte("\xcf"), 0x419, "П", "windows-1251", false},
		{"utf8 bom", []byte("\xef\xbb\xbfé"), 0x409, "é", "utf-8", false},
		{"utf8 bom invalid", []byte("\xef\xbb\xbf\xff"), 0x409, "", "utf-8", true},
		{"utf16le bom", []byte("\xff\xfea\x00b\x00"), 0x409, "ab", "utf-16le", false},
		{"utf16be bom", []byte("\xfe\xff\x00a\x00b"), 0x409, "ab", "utf-16be", false},
		{"utf16le no bom", []byte("[\x00a\x00]\x00"), 0x409, "[a]", "utf-16le", false},
	}
	for _, tt := range tests {
		text, enc, err := Decode(tt.in, tt.lang)
		if (err != nil) != tt.bad || enc != tt.enc || (!tt.bad && text != tt.text) {
			t.Errorf("%s: %q %s %v", tt.name, text, enc, err)
		}
	}
}

// FuzzTokenize checks the rules against each other on any line: quoting
// round-trips, fields written with Quote split back to themselves, and
// nothing panics.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{`k = a, "b, c" ; x`, `HKR,,"say ""hi""",0,\`, `[Sec] ;c`, `"open`, `%a%%%b%`, "\x1a", `a"b"c`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := SplitLines(s)
		for i := range lines {
			Logical(lines[i:])
			Header(lines[i])
			IsComment(lines[i])
		}
		if q := Quote(s); Unquote(q) != s {
			t.Fatalf("Unquote(Quote(%q)) = %q", s, Unquote(q))
		}
		parts := strings.Split(s, ",")
		quoted := make([]string, len(parts))
		for i, p := range parts {
			quoted[i] = Quote(p)
		}
		if got := Fields(strings.Join(quoted, ",")); !reflect.DeepEqual(got, parts) {
			t.Fatalf("fields of quoted %q: %q", parts, got)
		}
		key, v, has := SplitKey(s)
		if has && IndexUnquoted(key, '=') >= 0 {
			t.Fatalf("key %q holds an unquoted =", key)
		}
		for _, fl := range Split(v) {
			if IndexUnquoted(fl, ',') >= 0 {
				t.Fatalf("field %q holds an unquoted comma", fl)
			}
		}
		Expand(s, func(n string) (string, bool) { return n, len(n)%2 == 0 }, func(string) {})
	})
}
