package hive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// RegFormat selects the .reg file dialect.
type RegFormat int

const (
	// RegEdit5 is "Windows Registry Editor Version 5.00": UTF-16LE with a
	// byte order mark and CRLF line ends, as regedit writes it since
	// Windows 2000. Strings in hex(2) and hex(7) data are UTF-16LE.
	RegEdit5 RegFormat = iota
	// RegEdit4 is "REGEDIT4": ANSI (Windows-1252) text; hex(2) and hex(7)
	// data hold ANSI bytes, which the importer converts to UTF-16.
	RegEdit4
)

const (
	regHeader5 = "Windows Registry Editor Version 5.00"
	regHeader4 = "REGEDIT4"
)

// RegOptions control .reg import and export.
type RegOptions struct {
	// Prefix is the registry path the hive's root is mapped to, such as
	// `HKEY_LOCAL_MACHINE\SYSTEM`.
	Prefix string
	// Format is the dialect ExportReg writes; ImportReg detects it from
	// the file's header.
	Format RegFormat
}

// ExportReg writes the key at path (the root for "") and its subtree as a
// .reg file, keys in hive order, values in their stored order. DWORDs are
// written as dword:, well-formed strings of type REG_SZ as "…", binary data
// as hex:, and every other value as hex(N):, so that an import recreates
// each value byte for byte. Class names and security descriptors are not
// part of the .reg format.
func ExportReg(w io.Writer, f *File, path string, opt RegOptions) error {
	k, real, err := f.realPath(path)
	if err != nil {
		return err
	}
	var sb strings.Builder
	if opt.Format == RegEdit4 {
		sb.WriteString(regHeader4 + "\n")
	} else {
		sb.WriteString(regHeader5 + "\n")
	}
	budget := len(f.data) // see NewEditor: more data than the file means shared cells
	err = f.WalkFrom(real, k, func(p string, k *Key) error {
		full := joinPath(opt.Prefix, p)
		if strings.ContainsAny(full, "\r\n") {
			return fmt.Errorf("%w: key %q: a line break in a key name cannot be written to a .reg file", ErrInvalid, p)
		}
		fmt.Fprintf(&sb, "\n[%s]\n", full)
		vals, err := k.Values()
		if err != nil {
			return err
		}
		for _, v := range vals {
			if budget -= len(v.Data); budget < 0 {
				return cellErr(k.off, "value data shared between keys (more data than the file holds)")
			}
			if err := writeRegValue(&sb, v, opt.Format); err != nil {
				return fmt.Errorf("key %q: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	sb.WriteString("\n")
	text := strings.ReplaceAll(sb.String(), "\n", "\r\n")
	var out []byte
	if opt.Format == RegEdit4 {
		out, err = charmap.Windows1252.NewEncoder().Bytes([]byte(text))
		if err != nil {
			return fmt.Errorf("%w: the hive has names or strings that Windows-1252 cannot hold; export as version 5: %v", ErrInvalid, err)
		}
	} else {
		out = append([]byte{0xFF, 0xFE}, utf16le(utf16.Encode([]rune(text)))...)
	}
	_, err = w.Write(out)
	return err
}

func joinPath(prefix, p string) string {
	switch {
	case prefix == "":
		return p
	case p == "":
		return prefix
	}
	return prefix + `\` + p
}

// realPath returns the key at path and its path with the names as stored.
func (f *File) realPath(path string) (*Key, string, error) {
	k, err := f.Root()
	if err != nil {
		return nil, "", err
	}
	var parts []string
	for _, p := range splitPath(path) {
		if k, err = k.Subkey(p); err != nil {
			return nil, "", fmt.Errorf("key %q: %w", path, err)
		}
		parts = append(parts, k.Name())
	}
	return k, strings.Join(parts, `\`), nil
}

func regQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func writeRegValue(sb *strings.Builder, v *Value, format RegFormat) error {
	if strings.ContainsAny(v.Name, "\r\n") {
		return fmt.Errorf("%w: value %q: a line break in a value name cannot be written to a .reg file", ErrInvalid, v.Name)
	}
	name := "@"
	if v.Name != "" {
		name = regQuote(v.Name)
	}
	d := v.Data
	switch {
	case v.Type == DWORD && len(d) == 4:
		fmt.Fprintf(sb, "%s=dword:%08x\n", name, binary.LittleEndian.Uint32(d))
		return nil
	case v.Type == SZ:
		if s, ok := plainString(d, format); ok {
			fmt.Fprintf(sb, "%s=%s\n", name, regQuote(s))
			return nil
		}
	}
	prefix := name + "=hex:"
	if v.Type != Binary {
		prefix = fmt.Sprintf("%s=hex(%x):", name, uint32(v.Type))
	}
	if format == RegEdit4 && (v.Type == ExpandSZ || v.Type == MultiSZ) {
		a, ok := toANSI(d)
		if !ok {
			return fmt.Errorf("%w: value %q (%v) cannot be written as REGEDIT4 ANSI bytes; export as version 5", ErrInvalid, v.Name, v.Type)
		}
		d = a
	}
	writeHex(sb, prefix, d)
	return nil
}

// plainString reports whether SZ data is exactly one NUL-terminated
// string with no other NUL and no line break, which "…" round-trips.
func plainString(d []byte, format RegFormat) (string, bool) {
	if len(d) < 2 || len(d)%2 != 0 {
		return "", false
	}
	u := decodeName(d, false)
	if u[len(u)-1] != 0 {
		return "", false
	}
	u = u[:len(u)-1]
	for _, c := range u {
		if c == 0 || c == '\r' || c == '\n' || (c >= 0xD800 && c < 0xE000) {
			return "", false
		}
	}
	s := unitsString(u)
	if format == RegEdit4 {
		if _, err := charmap.Windows1252.NewEncoder().String(s); err != nil {
			return "", false
		}
	}
	return s, true
}

// toANSI converts UTF-16LE data to Windows-1252 bytes, if it maps back
// exactly.
func toANSI(d []byte) ([]byte, bool) {
	if len(d)%2 != 0 {
		return nil, false
	}
	u := decodeName(d, false)
	for _, c := range u {
		if c >= 0xD800 && c < 0xE000 {
			return nil, false
		}
	}
	a, err := charmap.Windows1252.NewEncoder().Bytes([]byte(unitsString(u)))
	if err != nil {
		return nil, false
	}
	back, err := fromANSI(a)
	if err != nil || !bytes.Equal(back, d) {
		return nil, false
	}
	return a, true
}

func fromANSI(a []byte) ([]byte, error) {
	s, err := charmap.Windows1252.NewDecoder().Bytes(a)
	if err != nil {
		return nil, err
	}
	return utf16le(utf16.Encode([]rune(string(s)))), nil
}

// writeHex writes comma-separated hex bytes wrapped like regedit: lines of
// at most 80 columns continued with a backslash and two spaces.
func writeHex(sb *strings.Builder, prefix string, d []byte) {
	const digits = "0123456789abcdef"
	line := make([]byte, 0, 84)
	line = append(line, prefix...)
	for i, b := range d {
		line = append(line, digits[b>>4], digits[b&15])
		if i < len(d)-1 {
			line = append(line, ',')
			if len(line) > 76 {
				sb.Write(line)
				sb.WriteString("\\\n")
				line = append(line[:0], "  "...)
			}
		}
	}
	sb.Write(line)
	sb.WriteByte('\n')
}

// decodeReg turns a .reg file into text: UTF-16LE with BOM, UTF-8 (with or
// without BOM), or ANSI (Windows-1252) when the header is REGEDIT4.
func decodeReg(b []byte) (string, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		b = b[2:]
		if len(b)%2 != 0 {
			return "", fmt.Errorf("%w: UTF-16 .reg file of odd length", ErrInvalid)
		}
		return unitsString(decodeName(b, false)), nil
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return string(b[3:]), nil
	case bytes.HasPrefix(b, []byte(regHeader4)):
		s, err := charmap.Windows1252.NewDecoder().Bytes(b)
		return string(s), err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: .reg file is neither UTF-16 with BOM, UTF-8 nor REGEDIT4 ANSI", ErrInvalid)
	}
	return string(b), nil
}

// ImportReg applies a .reg file to e: `[key]` creates the key and its
// missing parents, `[-key]` deletes a key and its subtree, `"v"=-` deletes
// a value, and "…", dword:, hex: and hex(N): set values. Key paths must
// start with opt.Prefix, which stands for the hive's root. The dialect is
// taken from the header line. Nothing is saved: on error, discard e.
// MaxRegSize caps the .reg text ImportReg reads (UTF-16 counts twice):
// far more than a whole SYSTEM hive exports to, and a bound on the memory a
// stream that never ends (or a hostile file) can take.
const MaxRegSize = 512 << 20

func ImportReg(e *Editor, r io.Reader, opt RegOptions) error {
	raw, err := readReg(r)
	if err != nil {
		return err
	}
	if len(raw) > MaxRegSize {
		return fmt.Errorf("%w: .reg input larger than %d bytes", ErrInvalid, MaxRegSize)
	}
	text, err := decodeReg(raw)
	if err != nil {
		return err
	}
	p := &regParser{e: e, prefix: opt.Prefix, text: text}
	return p.run()
}

// readReg reads a .reg stream up to MaxRegSize+1 bytes, into a buffer of
// the file's size when r is a file.
func readReg(r io.Reader) ([]byte, error) {
	size := int64(512)
	if st, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() {
			size = min(fi.Size(), MaxRegSize) + 1 // +1: EOF without growing
		}
	}
	var buf bytes.Buffer
	buf.Grow(int(size))
	_, err := buf.ReadFrom(io.LimitReader(r, MaxRegSize+1))
	return buf.Bytes(), err
}

type regParser struct {
	e      *Editor
	prefix string
	text   string // the text after the last line read
	n      int    // number of the last line read (1-based)
	ansi   bool
	key    string
	inKey  bool   // values apply to key (false after [-key] or before any key)
	buf    []byte // scratch: a value's data, which SetValue copies
}

func (p *regParser) errf(line int, format string, args ...any) error {
	return fmt.Errorf("%w: .reg line %d: %s", ErrInvalid, line, fmt.Sprintf(format, args...))
}

// nextLine returns the next line without its line ending ("\n" or
// "\r\n"), as a slice of the text.
func (p *regParser) nextLine() (string, bool) {
	if p.text == "" {
		return "", false
	}
	line, rest, _ := strings.Cut(p.text, "\n")
	p.text = rest
	p.n++
	return strings.TrimSuffix(line, "\r"), true
}

func (p *regParser) run() error {
	header := false
	for {
		raw, ok := p.nextLine()
		if !ok {
			break
		}
		ln := p.n
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		if !header {
			switch line {
			case regHeader5:
			case regHeader4:
				p.ansi = true
			default:
				return p.errf(ln, "header %q is neither %q nor %q", line, regHeader5, regHeader4)
			}
			header = true
			continue
		}
		if strings.HasPrefix(line, "[") {
			if err := p.keyLine(ln, line); err != nil {
				return err
			}
			continue
		}
		if err := p.valueLine(ln, line); err != nil {
			return err
		}
	}
	if !header {
		return p.errf(1, "empty .reg file")
	}
	return nil
}

func (p *regParser) keyLine(ln int, line string) error {
	end := strings.LastIndex(line, "]")
	if end < 0 {
		return p.errf(ln, "key line without ]")
	}
	path := line[1:end]
	del := strings.HasPrefix(path, "-")
	if del {
		path = path[1:]
	}
	rel, ok := p.strip(path)
	if !ok {
		return p.errf(ln, "key %q is not under the prefix %q", path, p.prefix)
	}
	if del {
		p.inKey = false
		if rel == "" {
			return p.errf(ln, "cannot delete the hive's root key")
		}
		if err := p.e.DeleteKey(rel); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf(".reg line %d: %w", ln, err)
		}
		return nil
	}
	if err := p.e.CreateKey(rel); err != nil {
		return fmt.Errorf(".reg line %d: %w", ln, err)
	}
	p.key, p.inKey = rel, true
	return nil
}

// strip maps a full registry path to a path in the hive.
func (p *regParser) strip(path string) (string, bool) {
	path = strings.TrimSuffix(path, `\`)
	if p.prefix == "" {
		return path, true
	}
	pre := strings.TrimSuffix(p.prefix, `\`)
	if len(path) < len(pre) || !EqualNames(path[:len(pre)], pre) {
		return "", false
	}
	rest := path[len(pre):]
	if rest == "" {
		return "", true
	}
	if rest[0] != '\\' {
		return "", false
	}
	return rest[1:], true
}

// parseQuoted parses a "…" string with \\ and \" escapes at the start of
// s and returns it and the rest of s.
func parseQuoted(s string) (string, string, bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	// Most strings have no escapes: they are a slice of s.
	if i := strings.IndexAny(s[1:], `"\`); i >= 0 && s[1+i] == '"' {
		return s[1 : 1+i], s[2+i:], true
	}
	var sb strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '\\' || s[i+1] == '"') {
				sb.WriteByte(s[i+1])
				i++
				continue
			}
			sb.WriteByte(c)
		case '"':
			return sb.String(), s[i+1:], true
		default:
			sb.WriteByte(c)
		}
	}
	return "", s, false
}

func (p *regParser) valueLine(ln int, line string) error {
	var name, rest string
	if strings.HasPrefix(line, "@") {
		rest = line[1:]
	} else {
		var ok bool
		if name, rest, ok = parseQuoted(line); !ok {
			return p.errf(ln, "expected a key, a quoted value name or @: %q", line)
		}
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "=") {
		return p.errf(ln, "expected = after the value name")
	}
	rest = strings.TrimSpace(rest[1:])
	if !p.inKey {
		if p.key == "" {
			return p.errf(ln, "value outside a key")
		}
		return nil // values of a deleted key section are ignored, as regedit does
	}
	if rest == "-" {
		if err := p.e.DeleteValue(p.key, name); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf(".reg line %d: %w", ln, err)
		}
		return nil
	}
	t, data, err := p.data(ln, rest)
	if err != nil {
		return err
	}
	if err := p.e.SetValue(p.key, name, t, data); err != nil {
		return fmt.Errorf(".reg line %d: %w", ln, err)
	}
	return nil
}

func (p *regParser) data(ln int, s string) (ValueType, []byte, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		str, tail, ok := parseQuoted(s)
		if !ok || strings.TrimSpace(tail) != "" && !strings.HasPrefix(strings.TrimSpace(tail), ";") {
			return 0, nil, p.errf(ln, "bad string %s", s)
		}
		p.buf = appendString(p.buf[:0], str)
		return SZ, p.buf, nil
	case hasPrefixFold(s, "dword:"):
		h := strings.TrimSpace(s[6:])
		v, err := strconv.ParseUint(h, 16, 32)
		if err != nil || len(h) > 8 {
			return 0, nil, p.errf(ln, "bad dword %q", h)
		}
		p.buf = binary.LittleEndian.AppendUint32(p.buf[:0], uint32(v))
		return DWORD, p.buf, nil
	case hasPrefixFold(s, "hex"):
		t := Binary
		s = s[3:]
		if strings.HasPrefix(s, "(") {
			end := strings.Index(s, ")")
			if end < 0 {
				return 0, nil, p.errf(ln, "bad hex(N) type")
			}
			n, err := strconv.ParseUint(s[1:end], 16, 32)
			if err != nil {
				return 0, nil, p.errf(ln, "bad hex(N) type %q", s[1:end])
			}
			t = ValueType(n)
			s = s[end+1:]
		}
		if !strings.HasPrefix(s, ":") {
			return 0, nil, p.errf(ln, "expected : after hex")
		}
		s = strings.TrimSpace(s[1:])
		// Continuation lines: a trailing backslash joins the next line.
		if strings.HasSuffix(s, `\`) {
			var sb strings.Builder
			for strings.HasSuffix(s, `\`) {
				next, ok := p.nextLine()
				if !ok {
					break
				}
				sb.WriteString(strings.TrimSpace(s[:len(s)-1]))
				s = strings.TrimSpace(next)
			}
			sb.WriteString(s)
			s = sb.String()
		}
		data, err := parseHexBytes(s)
		if err != nil {
			return 0, nil, p.errf(ln, "%v", err)
		}
		if p.ansi && (t == ExpandSZ || t == MultiSZ) {
			if data, err = fromANSI(data); err != nil {
				return 0, nil, p.errf(ln, "%v", err)
			}
		}
		return t, data, nil
	}
	return 0, nil, p.errf(ln, "unknown value data %q", s)
}

func hasPrefixFold(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }

func parseHexBytes(s string) ([]byte, error) {
	if i := strings.Index(s, ";"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return []byte{}, nil
	}
	parts := strings.Split(strings.TrimSuffix(s, ","), ",")
	out := make([]byte, 0, len(parts))
	for _, h := range parts {
		h = strings.TrimSpace(h)
		v, err := strconv.ParseUint(h, 16, 8)
		if err != nil || len(h) == 0 || len(h) > 2 {
			return nil, fmt.Errorf("bad hex byte %q", h)
		}
		out = append(out, byte(v))
	}
	return out, nil
}
