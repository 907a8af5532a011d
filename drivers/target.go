package drivers

import (
	"fmt"
	"strconv"
	"strings"
)

// A Target is the Windows installation a driver is resolved for.
type Target struct {
	Major, Minor int    // 5.0 = 2000, 5.1 = XP, 5.2 = XP x64 / Server 2003
	Arch         string // "x86" or "amd64"
	ProductType  int    // 1 workstation, 2 domain controller, 3 server
	SuiteMask    uint32 // VER_SUITE_* bits, 0 if unknown
}

// Common targets.
var (
	Win2000    = Target{Major: 5, Minor: 0, Arch: "x86", ProductType: 1}
	WinXP      = Target{Major: 5, Minor: 1, Arch: "x86", ProductType: 1}
	WinXPx64   = Target{Major: 5, Minor: 2, Arch: "amd64", ProductType: 1}
	Win2003    = Target{Major: 5, Minor: 2, Arch: "x86", ProductType: 3}
	Win2003x64 = Target{Major: 5, Minor: 2, Arch: "amd64", ProductType: 3}
)

// String renders the target as a TargetOSVersion, e.g. NTx86.5.1.1.
func (t Target) String() string {
	return fmt.Sprintf("NT%s.%d.%d.%d", t.Arch, t.Major, t.Minor, t.ProductType)
}

func (t Target) check() error {
	if t.Arch != "x86" && t.Arch != "amd64" {
		return fmt.Errorf("target architecture \"%s\" is not x86 or amd64", t.Arch)
	}
	if t.Major != 5 || t.Minor < 0 || t.Minor > 2 {
		return fmt.Errorf("target version %d.%d is not 5.0, 5.1 or 5.2", t.Major, t.Minor)
	}
	if t.Arch == "amd64" && t.Minor != 2 {
		return fmt.Errorf("no amd64 Windows %d.%d", t.Major, t.Minor)
	}
	if t.ProductType < 1 || t.ProductType > 3 {
		return fmt.Errorf("product type %d is not 1, 2 or 3", t.ProductType)
	}
	return nil
}

// decoration is a parsed TargetOSVersion:
// NT[Architecture][.[OSMajorVersion][.[OSMinorVersion][.[ProductType][.[SuiteMask]]]]]
type decoration struct {
	text                  string
	arch                  string // "" = any
	major, minor, product int    // -1 = unspecified
	suite                 uint32
	hasSuite              bool
}

func parseDecoration(s string) (decoration, bool) {
	d := decoration{text: s, major: -1, minor: -1, product: -1}
	parts := strings.Split(s, ".")
	p0 := strings.ToLower(parts[0])
	if !strings.HasPrefix(p0, "nt") {
		return d, false
	}
	d.arch = p0[2:]
	switch d.arch {
	case "", "x86", "amd64", "ia64", "arm", "arm64":
	default:
		return d, false
	}
	num := func(i int) (int, bool, bool) {
		if i >= len(parts) || parts[i] == "" {
			return -1, true, false
		}
		v, err := parseNumber(parts[i])
		return int(v), err == nil, true
	}
	var ok bool
	if d.major, ok, _ = num(1); !ok {
		return d, false
	}
	if d.minor, ok, _ = num(2); !ok {
		return d, false
	}
	if d.product, ok, _ = num(3); !ok {
		return d, false
	}
	var suite int
	var has bool
	if suite, ok, has = num(4); !ok {
		return d, false
	}
	if has {
		d.suite, d.hasSuite = uint32(suite), true
	}
	return d, len(parts) <= 6
}

// matches reports whether Windows t accepts the decoration: the
// architecture must be t's (on x86 a bare "NT" also matches: Server 2003
// SP1 and later demand an explicit architecture for 64-bit platforms),
// the version must not exceed t's, the product type must equal t's and
// t must have every suite bit.
func (d decoration) matches(t Target) bool {
	switch {
	case d.arch == "" && t.Arch != "x86":
		return false
	case d.arch != "" && d.arch != t.Arch:
		return false
	}
	if d.major >= 0 {
		min := max(d.minor, 0)
		if d.major > t.Major || d.major == t.Major && min > t.Minor {
			return false
		}
	}
	if d.product >= 0 && d.product != t.ProductType {
		return false
	}
	if d.hasSuite && t.SuiteMask&d.suite != d.suite {
		return false
	}
	return true
}

// better reports whether d is a closer match than e: the higher OS
// version first (Windows "selects the Models section that most closely
// matches the running OS"), then a product type, a suite mask and an
// architecture given rather than not.
func (d decoration) better(e decoration) bool {
	dv, ev := d.major*1000+max(d.minor, 0), e.major*1000+max(e.minor, 0)
	if dv != ev {
		return dv > ev
	}
	if (d.product >= 0) != (e.product >= 0) {
		return d.product >= 0
	}
	if d.hasSuite != e.hasSuite {
		return d.hasSuite
	}
	return d.arch != "" && e.arch == ""
}

// chooseDecoration picks among a Manufacturer entry's TargetOSVersions.
// Windows 2000 predates decorated models sections and always uses the
// undecorated one; XP and later pick the best match, and on x86 fall back
// to the undecorated section when none matches. It returns "" for the
// undecorated section and ok=false when no section applies.
func chooseDecoration(decos []string, t Target) (string, bool) {
	if t.Major == 5 && t.Minor == 0 {
		return "", true
	}
	var best decoration
	found := false
	for _, s := range decos {
		d, ok := parseDecoration(strings.TrimSpace(s))
		if !ok || !d.matches(t) {
			continue
		}
		if !found || d.better(best) {
			best, found = d, true
		}
	}
	if found {
		return best.text, true
	}
	return "", t.Arch == "x86"
}

// installSectionName finds the install (DDInstall) section for base:
// base.NTx86 / base.NTamd64, then base.NT, then base. (Unlike models
// sections, an undecorated install section also serves 64-bit Windows:
// the real sanbootconf.inf installs on x64 from [sanbootconf].)
func (f *INF) installSectionName(base string, t Target) (string, bool) {
	cands := []string{base + ".NT" + t.Arch, base + ".NT", base}
	for _, c := range cands {
		if s := f.Section(c); s != nil {
			return s.Name, true
		}
	}
	return "", false
}

// DirIDPath returns the directory of a DIRID relative to %SystemRoot%
// (setupapi's table for a system whose Windows directory is a drive's top
// directory, as setup creates it; ".." is that drive's root).
func DirIDPath(id int, arch string) (string, error) { return dirIDPath(id, arch) }

// ExpandDirIDs replaces every %NN% DIRID token in s (an AddReg string,
// for example) with the directory under systemRoot (e.g. C:\WINDOWS),
// as setupapi does when it writes the value. Unknown DIRIDs stay.
func ExpandDirIDs(s, systemRoot, arch string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		tok := s[i+1 : i+1+j]
		id, err := strconv.Atoi(tok)
		var dir string
		if err == nil {
			dir, err = dirIDPath(id, arch)
		}
		b.WriteString(s[:i])
		if err != nil {
			b.WriteString(s[i : i+j+2])
		} else {
			b.WriteString(joinWin(systemRoot, dir))
		}
		s = s[i+j+2:]
	}
}

func dirIDPath(id int, arch string) (string, error) {
	switch id {
	case 10, 25, 16420:
		return "", nil
	case 11, 16421:
		return `system32`, nil
	case 12:
		return `system32\DRIVERS`, nil
	case 17:
		return `inf`, nil
	case 18:
		return `help`, nil
	case 20, 16404:
		return `fonts`, nil
	case 21:
		return `system32\viewers`, nil
	case 23, 66003:
		return `system32\spool\drivers\color`, nil
	case 24, 30, 54:
		return `..`, nil
	case 50:
		return `system`, nil
	case 51:
		return `system32\spool`, nil
	case 52:
		return `system32\spool\drivers`, nil
	case 55:
		return `system32\spool\prtprocs`, nil
	case 16422:
		return `..\Program Files`, nil
	case 16427:
		return `..\Program Files\Common Files`, nil
	case 16425:
		if arch == "amd64" {
			return `SysWOW64`, nil
		}
		return `system32`, nil
	case 16426:
		if arch == "amd64" {
			return `..\Program Files (x86)`, nil
		}
		return `..\Program Files`, nil
	case 66000:
		if arch == "amd64" {
			return `system32\spool\drivers\x64`, nil
		}
		return `system32\spool\drivers\w32x86`, nil
	case 66001:
		if arch == "amd64" {
			return `system32\spool\prtprocs\x64`, nil
		}
		return `system32\spool\prtprocs\w32x86`, nil
	case 66002:
		return `system32`, nil
	}
	return "", fmt.Errorf("DIRID %d is not supported as a destination", id)
}

// expandDirIDPath turns "%12%\foo.sys" (or "12"-relative parts) into a
// path relative to %SystemRoot%.
func expandDirIDPath(s, arch string) (string, error) {
	if !strings.HasPrefix(s, "%") {
		return "", fmt.Errorf("path \"%s\" does not start with a %%DIRID%%", s)
	}
	end := strings.IndexByte(s[1:], '%')
	if end < 0 {
		return "", fmt.Errorf("path \"%s\": unterminated %%DIRID%%", s)
	}
	id, err := strconv.Atoi(s[1 : 1+end])
	if err != nil {
		return "", fmt.Errorf("path \"%s\": %%%s%% is not a DIRID", s, s[1:1+end])
	}
	base, err := dirIDPath(id, arch)
	if err != nil {
		return "", err
	}
	rest := strings.TrimLeft(s[end+2:], `\/`)
	if err := checkRelPath(rest); err != nil {
		return "", err
	}
	return joinWin(base, rest), nil
}

// checkRelPath refuses absolute paths, drive letters and .. components in
// names taken from a driver package.
func checkRelPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, `\`) || strings.HasPrefix(p, "/") || (len(p) >= 2 && p[1] == ':') {
		return fmt.Errorf("path \"%s\" is absolute", p)
	}
	for _, c := range strings.FieldsFunc(p, func(r rune) bool { return r == '\\' || r == '/' }) {
		if strings.TrimSpace(c) == ".." {
			return fmt.Errorf("path \"%s\" leaves its directory (..)", p)
		}
	}
	return nil
}

// checkName refuses a file name with a directory part.
func checkName(n string) error {
	if n == "" {
		return fmt.Errorf("empty file name")
	}
	if strings.ContainsAny(n, `\/:`) || n == "." || n == ".." {
		return fmt.Errorf("file name \"%s\" is a path", n)
	}
	return nil
}

// joinWin joins backslash path parts, dropping empty ones.
func joinWin(parts ...string) string {
	var out []string
	for _, p := range parts {
		for _, c := range strings.FieldsFunc(p, func(r rune) bool { return r == '\\' || r == '/' }) {
			switch {
			case c == ".":
			case c == ".." && len(out) > 0 && out[len(out)-1] != ".." && !strings.HasSuffix(out[len(out)-1], ":"):
				out = out[:len(out)-1]
			default:
				out = append(out, c)
			}
		}
	}
	return strings.Join(out, `\`)
}
