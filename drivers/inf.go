package drivers

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/internal/inftext"
)

// An INF is a parsed setup information file.
type INF struct {
	// Name is the file name given to ParseINF, used in errors.
	Name string
	// Encoding is the encoding the file was read in ("utf-16le",
	// "windows-1252" …).
	Encoding string
	// LangID is the locale whose [Strings.LLLL] section was applied.
	LangID uint16
	// Sections in file order; a section repeated in the file is merged
	// into its first occurrence, as setupapi does.
	Sections []*Section
	// Strings maps lower-case string keys to their values: [Strings]
	// overlaid with the locale's section.
	Strings map[string]string
	// Version holds the [Version] section.
	Version Version
	// Warnings lists tolerated problems (unknown %strkey% tokens, lines
	// outside sections), each "file:line: text".
	Warnings []string

	index map[string]*Section
}

// Version is the [Version] section.
type Version struct {
	Signature   string
	Class       string
	ClassGUID   string
	Provider    string
	CatalogFile string // undecorated CatalogFile; see INF.CatalogFor
	DriverDate  string // first field of DriverVer, mm/dd/yyyy
	DriverVer   string // second field of DriverVer, w.x.y.z
	LayoutFile  string
}

// A Section is one [section] of an INF.
type Section struct {
	Name  string
	Line  int // line of the (first) header
	Lines []*Line
}

// A Line is one logical line (continuations joined) of a section.
type Line struct {
	Num    int    // line number of its first physical line
	Key    string // expanded key, when the line has key = …
	HasKey bool
	// Fields are the comma-separated values (after = when there is a
	// key), trimmed, unquoted and with %strkey% tokens substituted.
	Fields []string
	raw    string
}

// Field returns field i, or "" if absent.
func (l *Line) Field(i int) string {
	if i < len(l.Fields) {
		return l.Fields[i]
	}
	return ""
}

// Section returns the named section (case-insensitive) or nil.
func (f *INF) Section(name string) *Section {
	return f.index[strings.ToLower(strings.TrimSpace(name))]
}

// Values returns the lines of the section whose key is key
// (case-insensitive).
func (s *Section) Values(key string) []*Line {
	var out []*Line
	if s == nil {
		return nil
	}
	for _, l := range s.Lines {
		if l.HasKey && strings.EqualFold(l.Key, key) {
			out = append(out, l)
		}
	}
	return out
}

// Value returns the first field of the first line with that key, and
// whether there is one.
func (s *Section) Value(key string) (string, bool) {
	ls := s.Values(key)
	if len(ls) == 0 {
		return "", false
	}
	return ls[0].Field(0), true
}

// ParseOptions tunes ParseINFOptions.
type ParseOptions struct {
	// LangID selects [Strings.LLLL] (exact ID, then primary language)
	// over [Strings], and the ANSI code page of a file without a
	// byte-order mark. Zero means 0x0409 (English, windows-1252).
	LangID uint16
}

// ParseINF parses an INF with the default options.
func ParseINF(name string, data []byte) (*INF, error) {
	return ParseINFOptions(name, data, ParseOptions{})
}

// ParseINFOptions parses an INF.
func ParseINFOptions(name string, data []byte, opt ParseOptions) (*INF, error) {
	if opt.LangID == 0 {
		opt.LangID = 0x0409
	}
	text, enc, err := inftext.Decode(data, opt.LangID)
	if err != nil {
		return nil, errorf(name, 0, "decoding %s: %v", enc, err)
	}
	f := &INF{Name: name, Encoding: enc, LangID: opt.LangID, index: map[string]*Section{}}
	if err := f.parseRaw(text, true); err != nil {
		return nil, err
	}
	f.buildStrings()
	for _, s := range f.Sections {
		str := strings.HasPrefix(strings.ToLower(s.Name), "strings")
		for _, l := range s.Lines {
			f.tokenize(l, str)
		}
	}
	if err := f.parseVersion(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseRaw splits text into sections of logical lines by the rules of
// package inftext. continuations joins a line ending in a backslash with
// the next, as setupapi does for INFs; txtsetup.oem has no continuations
// (its [Disks] lines commonly end in `\`, the disk's root directory).
func (f *INF) parseRaw(text string, continuations bool) error {
	lines := inftext.SplitLines(text)
	var cur *Section
	for i := 0; i < len(lines); {
		num := i + 1
		if name, closed, ok := inftext.Header(lines[i]); ok {
			i++
			if !closed {
				return errorf(f.Name, num, "section header \"%s\" lacks ]", strings.TrimSpace(lines[num-1]))
			}
			if name == "" {
				return errorf(f.Name, num, "empty section name")
			}
			key := strings.ToLower(name)
			if old := f.index[key]; old != nil {
				cur = old // repeated sections merge (setupapi behaviour)
			} else {
				cur = &Section{Name: name, Line: num}
				f.index[key] = cur
				f.Sections = append(f.Sections, cur)
			}
			continue
		}
		s, n := inftext.StripComment(lines[i]), 1
		if continuations {
			s, n = inftext.Logical(lines[i:])
		}
		i += n
		if s == "" {
			continue
		}
		if cur == nil {
			// setupapi ignores text before the first section header.
			f.Warnings = append(f.Warnings, fmt.Sprintf("%s:%d: line outside any section ignored", f.Name, num))
			continue
		}
		cur.Lines = append(cur.Lines, &Line{Num: num, raw: s})
	}
	return nil
}

// buildStrings fills Strings from [Strings] then the locale's section.
// A string's value is the whole text after =, unquoted: commas in it do
// not split it.
func (f *INF) buildStrings() {
	f.Strings = map[string]string{}
	add := func(s *Section) {
		if s == nil {
			return
		}
		for _, l := range s.Lines {
			k, v, ok := inftext.SplitKey(l.raw)
			if !ok {
				continue
			}
			f.Strings[strings.ToLower(inftext.Unquote(k))] = inftext.Unquote(v)
		}
	}
	add(f.Section("Strings"))
	if s := f.Section(fmt.Sprintf("Strings.%04x", f.LangID&0x3ff)); s != nil && f.LangID&0x3ff != f.LangID {
		add(s)
	}
	add(f.Section(fmt.Sprintf("Strings.%04x", f.LangID)))
}

// expand substitutes %strkey% tokens (case-insensitive) in a raw field
// and removes its quotes (inftext.Expand); an unknown non-numeric token
// is kept and warned about.
func (f *INF) expand(raw string, line int) string {
	return inftext.Expand(raw, func(name string) (string, bool) {
		v, ok := f.Strings[strings.ToLower(name)]
		return v, ok
	}, func(name string) {
		f.Warnings = append(f.Warnings, fmt.Sprintf("%s:%d: string %%%s%% is not defined", f.Name, line, name))
	})
}

func (f *INF) tokenize(l *Line, stringsSection bool) {
	key, rest, hasKey := inftext.SplitKey(l.raw)
	if hasKey {
		l.HasKey = true
		l.Key = f.expand(key, l.Num)
	}
	if stringsSection {
		l.Fields = []string{inftext.Unquote(rest)}
		return
	}
	for _, p := range inftext.Split(rest) {
		l.Fields = append(l.Fields, f.expand(p, l.Num))
	}
	// "key =" has one empty field; a bare empty value list is no fields.
	if len(l.Fields) == 1 && l.Fields[0] == "" && !l.HasKey {
		l.Fields = nil
	}
}

func (f *INF) parseVersion() error {
	s := f.Section("Version")
	if s == nil {
		return errorf(f.Name, 0, "no [Version] section")
	}
	v := &f.Version
	v.Signature, _ = s.Value("Signature")
	switch strings.ToLower(v.Signature) {
	case "$windows nt$", "$chicago$", "$windows 95$":
	default:
		return errorf(f.Name, s.Line, "[Version] Signature \"%s\" is not $Windows NT$ or $Chicago$", v.Signature)
	}
	v.Class, _ = s.Value("Class")
	v.ClassGUID, _ = s.Value("ClassGUID")
	v.Provider, _ = s.Value("Provider")
	v.CatalogFile, _ = s.Value("CatalogFile")
	v.LayoutFile, _ = s.Value("LayoutFile")
	if ls := s.Values("DriverVer"); len(ls) > 0 {
		v.DriverDate = ls[0].Field(0)
		v.DriverVer = ls[0].Field(1)
	}
	if v.ClassGUID != "" && !isGUID(v.ClassGUID) {
		return errorf(f.Name, s.Values("ClassGUID")[0].Num, "ClassGUID \"%s\" is not a {GUID}", v.ClassGUID)
	}
	return nil
}

// CatalogFor returns the catalog file for an architecture:
// CatalogFile.NTx86 / .NTamd64, then CatalogFile.NT, then CatalogFile.
func (f *INF) CatalogFor(arch string) string {
	s := f.Section("Version")
	for _, k := range []string{"CatalogFile.NT" + arch, "CatalogFile.NT", "CatalogFile"} {
		if v, ok := s.Value(k); ok {
			return v
		}
	}
	return ""
}

func isGUID(s string) bool {
	if len(s) != 38 || s[0] != '{' || s[37] != '}' {
		return false
	}
	for i := 1; i < 37; i++ {
		c := s[i]
		switch i {
		case 9, 14, 19, 24:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// parseNumber reads an INF number: 0x… hexadecimal, else decimal; a
// leading minus is two's complement. Quotes around numbers are tolerated
// (Intel's E1000 8.10.3.0 INF quotes DWORDs, per IntegrateDrv's notes).
func parseNumber(s string) (uint32, error) {
	s = strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"`))
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var v uint64
	var err error
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err = strconv.ParseUint(s[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(s, 10, 32)
	}
	if err != nil {
		return 0, fmt.Errorf("\"%s\" is not a number", s)
	}
	if neg {
		return uint32(-int64(v)), nil
	}
	return uint32(v), nil
}
