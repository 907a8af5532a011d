package inftext

import "strings"

// EOF is the DOS end-of-file mark (Ctrl-Z). Setup stops reading a file at
// the first one, wherever it is.
const EOF = 0x1a

// SplitLines splits decoded text into physical lines without their
// endings. Only LF ends a line; a CR right before it is dropped with it.
// Text from the first Ctrl-Z on is not returned.
func SplitLines(s string) []string {
	if i := strings.IndexByte(s, EOF); i >= 0 {
		s = s[:i]
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// IndexUnquoted returns the index of the first c outside double quotes
// in s, or -1.
func IndexUnquoted(s string, c byte) int {
	q := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			q = !q
		case s[i] == c && !q:
			return i
		}
	}
	return -1
}

// StripComment returns a physical line's code: the line without a ;
// comment outside quotes, trimmed.
func StripComment(s string) string {
	if i := IndexUnquoted(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// Continued reports whether a physical line continues on the next one: its
// code ends in a backslash outside quotes. Inside an unterminated quote a
// backslash is a character, so no quote spans the lines of an entry.
func Continued(line string) bool {
	code := StripComment(line)
	return strings.HasSuffix(code, `\`) && strings.Count(code, `"`)%2 == 0
}

// Logical returns the logical line that starts at lines[0] and how many
// physical lines it takes: each line's code, those ending in a
// continuation backslash joined to the next by one space, the backslash
// dropped. A continued line followed by a blank or comment-only line ends
// there (that line joins as nothing); a backslash on the last line joins
// nothing and is dropped. It returns "", 0 for no lines.
func Logical(lines []string) (string, int) {
	var parts []string
	n := 0
	for _, p := range lines {
		n++
		more := Continued(p)
		p = StripComment(p)
		if more {
			p = strings.TrimSpace(p[:len(p)-1])
		}
		if p != "" {
			parts = append(parts, p)
		}
		if !more {
			break
		}
	}
	return strings.Join(parts, " "), n
}

// Header reports whether a physical line is a section header and returns
// its name: the trimmed text between [ and the first ], the rest of the
// line ignored. closed is false when the line has no ], which setupapi
// refuses and an editor may keep.
func Header(line string) (name string, closed, ok bool) {
	s := strings.TrimSpace(line)
	if s == "" || s[0] != '[' {
		return "", false, false
	}
	s = s[1:]
	if i := strings.IndexByte(s, ']'); i >= 0 {
		return strings.TrimSpace(s[:i]), true, true
	}
	return strings.TrimSpace(s), false, true
}

// IsComment reports whether a physical line holds only a comment.
func IsComment(line string) bool {
	s := strings.TrimSpace(line)
	return s != "" && s[0] == ';'
}

// SplitKey splits a logical line at its first = outside quotes: the key
// and value, trimmed and still quoted. hasKey is false for a line without
// =, whose value is then the whole line.
func SplitKey(s string) (key, value string, hasKey bool) {
	i := IndexUnquoted(s, '=')
	if i < 0 {
		return "", strings.TrimSpace(s), false
	}
	return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:]), true
}

// Split splits a value at commas outside quotes into raw fields, each
// trimmed and still quoted. An empty value is one empty field.
func Split(v string) []string {
	var out []string
	for {
		i := IndexUnquoted(v, ',')
		if i < 0 {
			return append(out, strings.TrimSpace(v))
		}
		out = append(out, strings.TrimSpace(v[:i]))
		v = v[i+1:]
	}
}

// Fields splits a value into unquoted fields ([Split] then [Unquote]).
func Fields(v string) []string {
	out := Split(v)
	for i, f := range out {
		out[i] = Unquote(f)
	}
	return out
}

// Unquote returns a field's text: blanks around it trimmed, quotes
// removed, "" inside quotes read as one quote, quoted and unquoted pieces
// concatenated ("a"b is ab), blanks inside quotes kept. An unterminated
// quote runs to the end of the field.
func Unquote(s string) string {
	return Expand(s, nil, nil)
}

// Quote returns s as one quoted field that [Unquote] reads back as s.
func Quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Expand is [Unquote] that also substitutes %strkey% tokens, quoted or
// not: lookup gets the name between the percent signs and returns its
// value. %% is a percent sign. A token lookup does not know (numeric
// DIRIDs such as %11% among them) stays as written and, unless numeric, is
// passed to unknown when that is not nil. A lone percent sign stays. A nil
// lookup substitutes nothing and leaves %% as written.
func Expand(s string, lookup func(name string) (string, bool), unknown func(name string)) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, `"`) && (lookup == nil || !strings.Contains(s, "%")) {
		return s
	}
	var b strings.Builder
	inq := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			if inq && i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			inq = !inq
		case c == '%' && lookup != nil:
			if i+1 < len(s) && s[i+1] == '%' {
				b.WriteByte('%')
				i++
				continue
			}
			j := strings.IndexByte(s[i+1:], '%')
			if j < 0 {
				b.WriteByte('%')
				continue
			}
			name := s[i+1 : i+1+j]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				if unknown != nil && !isNumber(name) {
					unknown(name)
				}
				b.WriteString(s[i : i+j+2])
			}
			i += j + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
