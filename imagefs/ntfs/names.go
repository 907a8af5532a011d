package ntfs

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf16"
)

// Characters Windows accepts in 8.3 names besides letters and digits.
const dosExtra = "!#$%&'()-@^_`{}~"

func dosChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(dosExtra, r)
}

// validDOSName reports whether name is a valid 8.3 name (letters in any
// case: NTFS compares names case-insensitively, and Windows records a
// lower-case 8.3 name as one WIN32_AND_DOS name).
func validDOSName(name string) bool {
	base, ext, dot := strings.Cut(name, ".")
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || (dot && len(ext) == 0) || strings.Contains(ext, ".") {
		return false
	}
	for _, r := range base + ext {
		if !dosChar(r) {
			return false
		}
	}
	return true
}

// validName checks a Win32 file name.
func validName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid name %q", name)
	}
	if n := len(utf16.Encode([]rune(name))); n > 255 {
		return fmt.Errorf("name %q is %d UTF-16 units long; NTFS allows 255", name, n)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("name %q contains %q, which Windows does not allow", name, r)
		}
	}
	if strings.HasSuffix(name, " ") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("name %q ends with a space or dot, which Windows does not allow", name)
	}
	return nil
}

// dosStem cleans part of a long name for a generated short name: upper
// case, characters outside the 8.3 set dropped (others than space and dot
// become '_', as Windows does).
func dosStem(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if b.Len() >= n {
			break
		}
		switch {
		case r == ' ' || r == '.':
		case r < 0x80 && dosChar(r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// shortNames yields candidate generated DOS names for a long name the
// way Windows makes them: BASE~1.EXT to BASE~4.EXT from the first six
// usable characters, then the first two characters, four hex digits of a
// hash of the long name and ~1 to ~9 (so that a directory with many names
// sharing a prefix needs a few tries, not one per sibling), then longer
// tails as a last resort.
func shortNames(long string) func(yield func(string) bool) {
	base, ext := long, ""
	if i := strings.LastIndex(long, "."); i > 0 {
		base, ext = long[:i], long[i+1:]
	}
	b := dosStem(base, 8)
	if b == "" {
		b = "_"
	}
	e := dosStem(ext, 3)
	h := fnv.New32a()
	h.Write([]byte(long))
	sum := h.Sum32()
	name := func(stem string, n int) string {
		tail := fmt.Sprintf("~%d", n)
		if len(stem)+len(tail) > 8 {
			stem = stem[:8-len(tail)]
		}
		if e != "" {
			return stem + tail + "." + e
		}
		return stem + tail
	}
	return func(yield func(string) bool) {
		for n := 1; n <= 4; n++ {
			if !yield(name(b, n)) {
				return
			}
		}
		hashed := b[:min(2, len(b))] + fmt.Sprintf("%04X", sum&0xFFFF)
		for n := 1; n <= 9; n++ {
			if !yield(name(hashed, n)) {
				return
			}
		}
		for n := 5; n < 1000000; n++ {
			if !yield(name(b, n)) {
				return
			}
		}
	}
}
