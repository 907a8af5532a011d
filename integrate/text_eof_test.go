package integrate

import (
	"bytes"
	"testing"

	"golang.org/x/text/encoding/unicode"
)

// TestTextEOFMidLine: a Ctrl-Z after text on the same line ends the file
// there (setupapi stops at the mark wherever it is; the old lexer only
// saw one at the start of a line): the text before it is read, nothing
// after it is, the file round-trips, and a new line goes between the
// text and the mark.
func TestTextEOFMidLine(t *testing.T) {
	utf16 := func(s string) []byte {
		b, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"ansi", []byte("[a]\r\nk = 1\x1a[b]\r\nz = 2\r\n"), []byte("[a]\r\nk = 1\r\nn = 3\r\n\x1a[b]\r\nz = 2\r\n")},
		{"utf-16", utf16("[a]\r\nk = 1\x1a[b]\r\n"), utf16("[a]\r\nk = 1\r\nn = 3\r\n\x1a[b]\r\n")},
	}
	for _, tt := range tests {
		x, err := ParseText(tt.name, tt.in, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out, _ := x.Bytes(); !bytes.Equal(out, tt.in) {
			t.Errorf("%s: round trip %q", tt.name, out)
		}
		if v, ok := x.Value("a", "k"); !ok || v != "1" {
			t.Errorf("%s: k = %q %v", tt.name, v, ok)
		}
		if x.HasSection("b") {
			t.Errorf("%s: section after the EOF mark read", tt.name)
		}
		x.Set("a", "n", "3")
		if out, _ := x.Bytes(); !bytes.Equal(out, tt.want) {
			t.Errorf("%s: after Set\n got %q\nwant %q", tt.name, out, tt.want)
		}
	}
}
