package integrate

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/xpboot/xpboot/internal/inftext"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// Encoding is how a text file is stored.
type Encoding int

// Encodings of INI-shaped setup files.
const (
	ANSI    Encoding = iota // a single-byte code page (Windows-1252 unless told)
	UTF8BOM                 // UTF-8 with a byte-order mark
	UTF16LE                 // UTF-16 little-endian with a byte-order mark
)

// String names the encoding.
func (e Encoding) String() string {
	switch e {
	case UTF8BOM:
		return "UTF-8"
	case UTF16LE:
		return "UTF-16LE"
	}
	return "ANSI"
}

// TextOptions configures ParseText.
type TextOptions struct {
	// CodePage decodes and encodes ANSI files; nil means Windows-1252.
	CodePage encoding.Encoding
}

// A Text is an INI-shaped file (txtsetup.sif, dosnet.inf, hivesys.inf, an
// INF) held as its original lines. Lines nobody edits are written back
// byte for byte, so a parse followed by Bytes returns the input exactly.
// Section and key names match case-insensitively and keep their case.
type Text struct {
	Name     string
	Encoding Encoding
	// EOL is the line ending given to new lines: the file's own (CRLF
	// when it has any, else LF; CRLF for an empty file).
	EOL   string
	cp    encoding.Encoding
	bom   []byte
	lines []*line
}

type lineKind uint8

const (
	kindBlank lineKind = iota
	kindComment
	kindHeader
	kindEntry
	kindTrailer // at or after an end-of-file mark (0x1A)
)

// A line is one logical line: a single physical line, or an entry
// continued over several (see joinContinued).
type line struct {
	raw []byte // original bytes, EOLs included; nil once changed or new
	// text is the decoded content without the final EOL; the physical
	// lines of a continued entry are kept in it, each followed by its
	// own decoded EOL.
	text   string
	eol    string // decoded final EOL ("\r\n", "\n", "\r\r\n", "")
	kind   lineKind
	name   string // section name of a header
	key    string // key of an entry with '=', else ""
	value  string // value of an entry (after '=', comment removed)
	fields []string
}

// ParseText splits data into lines and sections. It never fails on
// content: anything that is not a header, blank or comment is an entry.
func ParseText(name string, data []byte, opt *TextOptions) (*Text, error) {
	t := &Text{Name: name, cp: charmap.Windows1252}
	if opt != nil && opt.CodePage != nil {
		t.cp = opt.CodePage
	}
	unit := 1
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		t.Encoding, t.bom, unit = UTF16LE, data[:2], 2
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		t.Encoding, t.bom = UTF8BOM, data[:3]
	}
	rest := data[len(t.bom):]
	crlf, lf := 0, 0
	trailer := false
	for len(rest) > 0 {
		end := len(rest)
		for i := 0; i+unit <= len(rest); i += unit {
			if rest[i] == '\n' && (unit == 1 || rest[i+1] == 0) {
				end = i + unit
				break
			}
		}
		raw := rest[:end:end]
		rest = rest[end:]
		content := raw
		eolLen := 0
		// isUnit: the code unit ending n bytes before the end is c. A
		// UTF-16 line cut at an odd byte has no ending.
		isUnit := func(n int, c byte) bool {
			at := len(content) - n
			return at >= 0 && content[at] == c && (unit == 1 || (content[at+1] == 0 && len(content)%2 == 0))
		}
		if isUnit(unit, '\n') {
			eolLen = unit
			for isUnit(eolLen+unit, '\r') {
				eolLen += unit
			}
		}
		body := content[:len(content)-eolLen]
		if !trailer {
			// Setup stops at a Ctrl-Z wherever it is (inftext.EOF): text
			// before it on the same line is a line of its own, without
			// an ending, so new lines can go between it and the mark.
			if k := eofAt(body, unit); k > 0 {
				t.lines = append(t.lines, &line{raw: raw[:k:k], text: t.decode(body[:k])})
				t.lines[len(t.lines)-1].classify()
				raw, body = raw[k:], body[k:]
			}
		}
		l := &line{raw: raw, text: t.decode(body), eol: t.decode(content[len(content)-eolLen:])}
		switch l.eol {
		case "":
		case "\n":
			lf++
		default:
			crlf++
		}
		// txtsetup.sif ends with an EOF mark (0x1A, then CRLF on 2000);
		// setup ignores what follows it, so new lines go before it
		// (IntegrateDrv's INIFile.cs does the same).
		if strings.HasPrefix(l.text, string(rune(inftext.EOF))) {
			trailer = true
		}
		if trailer {
			l.kind = kindTrailer
		} else {
			l.classify()
		}
		t.lines = append(t.lines, l)
	}
	t.joinContinued()
	t.EOL = "\r\n"
	if lf > crlf {
		t.EOL = "\n"
	}
	return t, nil
}

// joinContinued merges each entry with the physical lines that continue
// it: a backslash ending a line, once its comment and trailing blanks are
// removed, joins the next line (whatever that holds: a comment-only or
// blank line joins as nothing and ends the entry), as setupapi reads INFs
// and package drivers' parseRaw reads them. Hive INFs write long AddReg
// values (XP's ServiceGroupOrder List) over many lines that way.
//
// The rule applies to every file Text parses, not only the hive INFs:
// txtsetup.sif, dosnet.inf and device INFs are INF syntax too, ReactOS's
// loader and text-mode setup (freeldr's inffile.c and usetup's inflib,
// which follow Wine's setupapi parser.c) join lines in txtsetup.sif, and
// these files quote a lone backslash meant as a value (the root directory
// is "\" in txtsetup.sif's [WinntDirectories]). One rule for all keeps
// what Text reads equal to what setup reads whichever file a line is in.
// txtsetup.oem, whose [Disks] lines end in the disk's root directory `\`,
// has no continuations; Text never parses it (package drivers does,
// without them). Nothing is joined across the EOF mark: setup stops
// reading there.
func (t *Text) joinContinued() {
	out := t.lines[:0]
	for i := 0; i < len(t.lines); i++ {
		l := t.lines[i]
		k := i
		for l.kind == kindEntry && k+1 < len(t.lines) && t.lines[k+1].kind != kindTrailer && continued(t.lines[k].text) {
			k++
		}
		if k > i {
			var text strings.Builder
			var raw []byte
			for j := i; j <= k; j++ {
				p := t.lines[j]
				raw = append(raw, p.raw...)
				text.WriteString(p.text)
				if j < k {
					text.WriteString(p.eol)
				}
			}
			l.text, l.raw, l.eol = text.String(), raw, t.lines[k].eol
			l.classify()
			i = k
		}
		out = append(out, l)
	}
	clear(t.lines[len(out):])
	t.lines = out
}

// eofAt returns the byte offset of the first Ctrl-Z code unit in b, or -1.
func eofAt(b []byte, unit int) int {
	for i := 0; i+unit <= len(b); i += unit {
		if b[i] == inftext.EOF && (unit == 1 || b[i+1] == 0) {
			return i
		}
	}
	return -1
}

// continued reports whether a physical line ends in a continuation
// backslash (inftext.Continued).
func continued(s string) bool { return inftext.Continued(s) }

// lastLine returns the last physical line of a line's text.
func lastLine(s string) string {
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// logical returns an entry's content as setup reads it
// (inftext.Logical over its physical lines).
func logical(text string) string {
	l, _ := inftext.Logical(strings.Split(text, "\n"))
	return l
}

// editText is what an edit of entry l starts from: its text when it is
// one physical line (indentation and spacing kept), else its logical
// content, so that an edited continued entry is written as one line.
func (l *line) editText() string {
	if !strings.Contains(l.text, "\n") {
		return l.text
	}
	return logical(l.text)
}

func (t *Text) decode(b []byte) string {
	switch t.Encoding {
	case UTF16LE:
		s, err := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewDecoder().Bytes(b)
		if err == nil {
			return string(s)
		}
		return string(b)
	case UTF8BOM:
		return string(b)
	}
	if s, err := t.cp.NewDecoder().Bytes(b); err == nil {
		return string(s)
	}
	return string(b)
}

func (t *Text) encode(s string) ([]byte, error) {
	switch t.Encoding {
	case UTF16LE:
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder().Bytes([]byte(s))
	case UTF8BOM:
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("integrate: %s: invalid UTF-8 in new line %q", t.Name, s)
		}
		return []byte(s), nil
	}
	b, err := t.cp.NewEncoder().Bytes([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("integrate: %s: %q cannot be written in the file's code page", t.Name, s)
	}
	return b, nil
}

// classify parses a line's content by the rules of package inftext. A
// header without its closing ']' still opens a section here: an editor
// keeps what it cannot read rather than refuse the file.
func (l *line) classify() {
	first, _, _ := strings.Cut(l.text, "\n")
	l.kind, l.name, l.key, l.value, l.fields = kindEntry, "", "", "", nil
	if strings.TrimSpace(first) == "" {
		l.kind = kindBlank
		return
	}
	if inftext.IsComment(first) {
		l.kind = kindComment
		return
	}
	if name, _, ok := inftext.Header(first); ok {
		l.kind, l.name = kindHeader, name
		return
	}
	key, value, hasKey := inftext.SplitKey(logical(l.text))
	if hasKey {
		l.key = inftext.Unquote(key)
	}
	l.value = value
	l.fields = inftext.Fields(value)
}

// Bytes returns the file: original bytes for untouched lines, new or
// changed lines encoded in the file's encoding.
func (t *Text) Bytes() ([]byte, error) {
	var b bytes.Buffer
	b.Write(t.bom)
	for _, l := range t.lines {
		if l.raw != nil {
			b.Write(l.raw)
			continue
		}
		e, err := t.encode(l.text + l.eol)
		if err != nil {
			return nil, err
		}
		b.Write(e)
	}
	return b.Bytes(), nil
}

// Lines returns the decoded physical lines without their endings, for
// diffs.
func (t *Text) Lines() []string {
	out := make([]string, 0, len(t.lines))
	for _, l := range t.lines {
		parts := strings.Split(l.text, "\n")
		for i, p := range parts {
			if i < len(parts)-1 {
				p = strings.TrimRight(p, "\r")
			}
			out = append(out, p)
		}
	}
	return out
}

// Entry is one logical line of a section: an entry continued over
// several physical lines (a backslash ending each but the last) is one
// Entry with their fields joined.
type Entry struct {
	Key    string   // as written, unquoted; "" for a line without '='
	Value  string   // after '=', comments and continuation backslashes removed
	Fields []string // Value split on unquoted commas, trimmed and unquoted
}

// HasSection reports whether a section exists.
func (t *Text) HasSection(name string) bool { return t.lastHeader(name) >= 0 }

// Sections returns the section names in file order, duplicates kept.
func (t *Text) Sections() []string {
	var out []string
	for _, l := range t.lines {
		if l.kind == kindHeader {
			out = append(out, l.name)
		}
	}
	return out
}

// Entries returns the entries of every occurrence of a section, in order.
func (t *Text) Entries(section string) []Entry {
	var out []Entry
	for _, i := range t.sectionLines(section) {
		l := t.lines[i]
		if l.kind == kindEntry {
			out = append(out, Entry{l.key, l.value, l.fields})
		}
	}
	return out
}

// Value returns the value of the first entry with key in section.
func (t *Text) Value(section, key string) (string, bool) {
	for _, e := range t.Entries(section) {
		if e.Key != "" && strings.EqualFold(e.Key, key) {
			return e.Value, true
		}
	}
	return "", false
}

// sectionLines returns the indices of the lines of every occurrence of
// section (headers excluded). Sections may repeat; setup reads them as one.
func (t *Text) sectionLines(section string) []int {
	var out []int
	in := false
	for i, l := range t.lines {
		switch l.kind {
		case kindHeader:
			in = strings.EqualFold(l.name, section)
		case kindTrailer:
			return out
		default:
			if in {
				out = append(out, i)
			}
		}
	}
	return out
}

func (t *Text) lastHeader(section string) int {
	h := -1
	for i, l := range t.lines {
		if l.kind == kindHeader && strings.EqualFold(l.name, section) {
			h = i
		}
	}
	return h
}

// trailerStart returns the index of the first trailer line or len(lines).
func (t *Text) trailerStart() int {
	for i, l := range t.lines {
		if l.kind == kindTrailer {
			return i
		}
	}
	return len(t.lines)
}

// insert puts a new line at index i, giving the line before it an
// ending if it had none (the last line of a file without a final EOL).
func (t *Text) insert(i int, text string) {
	l := &line{text: text, eol: t.EOL}
	l.classify()
	if i > 0 {
		p := t.lines[i-1]
		if p.eol == "" {
			t.setEOL(p)
		}
		if p.kind == kindEntry && (l.kind == kindEntry || l.kind == kindHeader) && continued(lastLine(p.text)) {
			// An entry ending in a backslash with nothing after it (at
			// the end of the file or before the EOF mark) would swallow
			// the new line: an empty physical line ends it first. A new
			// blank or comment line ends it by itself.
			t.appendEmpty(p)
		}
	}
	t.lines = append(t.lines, nil)
	copy(t.lines[i+1:], t.lines[i:])
	t.lines[i] = l
}

// appendEmpty adds an empty physical line to l, which ends with an EOL.
func (t *Text) appendEmpty(l *line) {
	if l.raw != nil {
		e, _ := t.encode(t.EOL)
		l.raw = append(l.raw[:len(l.raw):len(l.raw)], e...)
	}
	l.text += l.eol
	l.eol = t.EOL
}

func (t *Text) setEOL(l *line) {
	if l.raw != nil && t.Encoding == UTF16LE && len(l.raw)%2 == 1 {
		// A UTF-16 file cut mid-unit: re-encode the line whole.
		l.raw = nil
	}
	if l.raw != nil {
		// Keep the original bytes, append the encoded ending.
		e, _ := t.encode(t.EOL)
		l.raw = append(l.raw[:len(l.raw):len(l.raw)], e...)
	}
	l.eol = t.EOL
}

// EnsureSection adds "[name]" at the end of the file (before an EOF
// mark) when no such section exists. It reports whether it changed t.
func (t *Text) EnsureSection(name string) bool {
	if t.HasSection(name) {
		return false
	}
	i := t.trailerStart()
	if i > 0 && t.lines[i-1].kind != kindBlank {
		t.insert(i, "")
		i++
	}
	t.insert(i, "["+name+"]")
	return true
}

// appendAt returns where a new line of section goes: after the last
// line of its last occurrence that is neither blank nor a comment.
func (t *Text) appendAt(section string) int {
	h := t.lastHeader(section)
	pos := h + 1
	for i := h + 1; i < len(t.lines); i++ {
		k := t.lines[i].kind
		if k == kindHeader || k == kindTrailer {
			break
		}
		if k == kindEntry {
			pos = i + 1
		}
	}
	return pos
}

// Set makes section contain "key = value": the first entry with key
// (case-insensitive) gets the new value, keeping its key and spacing, or
// the line is added at the end of the section, which is created if
// needed. It reports whether it changed t.
func (t *Text) Set(section, key, value string) bool {
	return t.SetMatch(section, key, -1, "", value)
}

// SetMatch is Set for sections where a key may repeat (SourceDisksFiles
// lists a file once per destination): only an entry whose field index
// field equals fieldValue (case-insensitive) is replaced. field < 0
// matches any entry with key.
func (t *Text) SetMatch(section, key string, field int, fieldValue, value string) bool {
	t.EnsureSection(section)
	for _, i := range t.sectionLines(section) {
		l := t.lines[i]
		if l.kind != kindEntry || l.key == "" || !strings.EqualFold(l.key, key) {
			continue
		}
		if field >= 0 && (field >= len(l.fields) || !strings.EqualFold(l.fields[field], fieldValue)) {
			continue
		}
		if sameFields(l.fields, inftext.Fields(value)) {
			return false
		}
		src := l.editText()
		eq := inftext.IndexUnquoted(src, '=')
		j := eq + 1
		for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
			j++
		}
		l.text = src[:j] + value
		l.raw = nil
		l.classify()
		return true
	}
	t.insert(t.appendAt(section), key+" = "+value)
	return true
}

func sameFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sameLine compares a line with text the way setup reads them: key and
// fields, ignoring spacing, quotes and case.
func sameLine(l *line, text string) bool {
	n := &line{text: text}
	n.classify()
	if l.kind != n.kind {
		return false
	}
	if l.kind != kindEntry {
		return strings.EqualFold(strings.TrimSpace(l.text), strings.TrimSpace(text))
	}
	return strings.EqualFold(l.key, n.key) && sameFields(l.fields, n.fields)
}

// AddLine appends text to section unless an equal line is already there
// (see Set for where it goes). It reports whether it changed t.
func (t *Text) AddLine(section, text string) bool {
	t.EnsureSection(section)
	for _, i := range t.sectionLines(section) {
		if sameLine(t.lines[i], text) {
			return false
		}
	}
	t.insert(t.appendAt(section), text)
	return true
}

// RemoveLine deletes every line of section equal to text (all the
// physical lines of a continued entry). It reports whether it changed t.
func (t *Text) RemoveLine(section, text string) bool {
	idx := t.sectionLines(section)
	changed := false
	for k := len(idx) - 1; k >= 0; k-- {
		i := idx[k]
		if sameLine(t.lines[i], text) {
			t.lines = append(t.lines[:i], t.lines[i+1:]...)
			changed = true
		}
	}
	return changed
}
