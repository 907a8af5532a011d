package inftext

import (
	"bytes"
	"errors"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
)

// CodePage returns the ANSI code page Windows uses for a language ID
// (primary language, low 10 bits), with its name.
func CodePage(lang uint16) (string, encoding.Encoding) {
	switch lang & 0x3ff {
	case 0x05, 0x0e, 0x15, 0x18, 0x1a, 0x1b, 0x24, 0x1c: // cs hu pl ro hr sk sl sq
		return "windows-1250", charmap.Windows1250
	case 0x19, 0x22, 0x02, 0x23, 0x2f: // ru uk bg be mk
		return "windows-1251", charmap.Windows1251
	case 0x08:
		return "windows-1253", charmap.Windows1253
	case 0x1f:
		return "windows-1254", charmap.Windows1254
	case 0x0d:
		return "windows-1255", charmap.Windows1255
	case 0x01:
		return "windows-1256", charmap.Windows1256
	case 0x25, 0x26, 0x27: // et lv lt
		return "windows-1257", charmap.Windows1257
	case 0x1e:
		return "windows-874", charmap.Windows874
	case 0x11:
		return "shift_jis", japanese.ShiftJIS
	case 0x12:
		return "euc-kr", korean.EUCKR
	case 0x04:
		if lang == 0x0404 || lang == 0x0c04 || lang == 0x1404 {
			return "big5", traditionalchinese.Big5
		}
		return "gbk", simplifiedchinese.GBK
	}
	return "windows-1252", charmap.Windows1252
}

// Decode turns a file's bytes into text: UTF-16LE/BE or UTF-8 when a
// byte-order mark says so, else the ANSI code page of lang. It returns
// the name of the encoding it used.
func Decode(data []byte, lang uint16) (text, enc string, err error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xff, 0xfe}):
		s, err := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(data)
		return string(s), "utf-16le", err
	case bytes.HasPrefix(data, []byte{0xfe, 0xff}):
		s, err := unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder().Bytes(data)
		return string(s), "utf-16be", err
	case bytes.HasPrefix(data, []byte{0xef, 0xbb, 0xbf}):
		if !utf8.Valid(data[3:]) {
			return "", "utf-8", errors.New("invalid UTF-8 after a UTF-8 byte-order mark")
		}
		return string(data[3:]), "utf-8", nil
	}
	// UTF-16LE without a byte-order mark: not documented for setupapi,
	// accepted because read as ANSI such a file (every other byte NUL)
	// could only give garbage; an ANSI INF has no NUL bytes.
	if len(data) >= 4 && len(data)%2 == 0 && data[1] == 0 && data[3] == 0 && data[0] != 0 {
		s, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder().Bytes(data)
		return string(s), "utf-16le", err
	}
	name, cp := CodePage(lang)
	s, err := cp.NewDecoder().Bytes(data)
	return string(s), name, err
}
