package hive

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf16"
)

// upcase is the per-UTF-16-unit simple uppercase mapping Windows uses to
// order and hash key names (RtlUpcaseUnicodeChar): characters whose
// uppercase is not a single BMP unit (ß) and surrogates stay unchanged.
func upcase(c uint16) uint16 {
	if c < 'a' {
		return c
	}
	if c <= 'z' {
		return c - 'a' + 'A'
	}
	if c < 0x80 || (c >= 0xD800 && c < 0xE000) {
		return c
	}
	r := unicode.ToUpper(rune(c))
	if r > 0xFFFF {
		return c
	}
	return uint16(r)
}

// upcaseUnits upper-cases a name's UTF-16 units into a new slice.
func upcaseUnits(u []uint16) []uint16 {
	out := make([]uint16, len(u))
	for i, c := range u {
		out[i] = upcase(c)
	}
	return out
}

// lhHash is the hash of an lh leaf entry (CmpComputeHashKey).
func lhHash(u []uint16) uint32 {
	var h uint32
	for _, c := range u {
		h = 37*h + uint32(upcase(c))
	}
	return h
}

// lfHint is the 4-byte name hint of an lf leaf entry: the first four
// characters as stored (not upper-cased), zero-padded; unusable (first byte
// 0) when one of them does not fit in a byte.
func lfHint(u []uint16) [4]byte {
	var h [4]byte
	for i := 0; i < 4 && i < len(u); i++ {
		if u[i] > 0xFF {
			return [4]byte{}
		}
		h[i] = byte(u[i])
	}
	return h
}

// compareNames orders names as Windows does: by upper-cased UTF-16 code units.
func compareNames(a, b []uint16) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := upcase(a[i]), upcase(b[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

// storedName is a key name as its nk cell stores it: Latin-1 bytes when
// comp, else UTF-16LE. The editor compares and hashes subkey names in
// place rather than decoding a copy of every name of every list it loads.
type storedName struct {
	raw  []byte
	comp bool
}

func (n storedName) len() int { return rawLen(n.raw, n.comp) }

func (n storedName) unit(i int) uint16 { return unitAt(n.raw, n.comp, i) }

// compare is compareNames(n, u).
func (n storedName) compare(u []uint16) int { return compareRawUnits(n.raw, n.comp, u) }

// compareStored is compareNames(n, o).
func (n storedName) compareStored(o storedName) int {
	return compareRaw(n.raw, n.comp, o.raw, o.comp)
}

// lhHash is lhHash of the decoded name.
func (n storedName) lhHash() uint32 {
	var h uint32
	for i := range n.len() {
		h = 37*h + uint32(upcase(n.unit(i)))
	}
	return h
}

// lfHint is lfHint of the decoded name.
func (n storedName) lfHint() [4]byte {
	var h [4]byte
	for i := 0; i < 4 && i < n.len(); i++ {
		c := n.unit(i)
		if c > 0xFF {
			return [4]byte{}
		}
		h[i] = byte(c)
	}
	return h
}

func (n storedName) units() []uint16 { return decodeName(n.raw, n.comp) }

// decodeName decodes a stored key or value name.
func decodeName(raw []byte, comp bool) []uint16 {
	n := len(raw)
	if !comp {
		n /= 2
	}
	return appendName(make([]uint16, 0, n), raw, comp)
}

// appendName appends the units of a stored name to u.
func appendName(u []uint16, raw []byte, comp bool) []uint16 {
	if comp {
		for _, b := range raw {
			u = append(u, uint16(b))
		}
		return u
	}
	for i := 0; i+1 < len(raw); i += 2 {
		u = append(u, uint16(raw[i])|uint16(raw[i+1])<<8)
	}
	return u
}

// encodeName stores a name compressed (Latin-1) when every unit fits in a
// byte, as Windows does (CmpNameSize), and as UTF-16LE otherwise.
func encodeName(u []uint16) (raw []byte, comp bool) {
	n, comp := storedSize(u)
	raw = make([]byte, n)
	putStoredName(raw, u, comp)
	return raw, comp
}

// storedSize returns the bytes encodeName stores u in, and whether
// compressed: the editor allocates the cell first and writes the name
// straight into it.
func storedSize(u []uint16) (n int, comp bool) {
	for _, c := range u {
		if c > 0xFF {
			return 2 * len(u), false
		}
	}
	return len(u), true
}

// putStoredName writes u into dst as encodeName stores it.
func putStoredName(dst []byte, u []uint16, comp bool) {
	for i, c := range u {
		if comp {
			dst[i] = byte(c)
		} else {
			dst[2*i], dst[2*i+1] = byte(c), byte(c>>8)
		}
	}
}

func utf16le(u []uint16) []byte {
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i] = byte(c)
		b[2*i+1] = byte(c >> 8)
	}
	return b
}

// toUnits converts a Go string to UTF-16 units (invalid UTF-8 becomes
// U+FFFD, as utf16.Encode([]rune(s)) has it), in one allocation: names and
// strings are converted once per edit call, and on a large import the
// garbage of a rune slice per call was a measurable share of its time.
func toUnits(s string) []uint16 {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return appendUnits(make([]uint16, 0, n), s)
}

// appendUnits appends the UTF-16 units of s to u.
func appendUnits(u []uint16, s string) []uint16 {
	for _, r := range s {
		u = utf16.AppendRune(u, r)
	}
	return u
}

// unitsString converts UTF-16 units to a Go string.
func unitsString(u []uint16) string { return string(utf16.Decode(u)) }

// EqualNames reports whether two key or value names are equal the way
// Windows compares them (case-insensitively, by upper-cased UTF-16 units).
func EqualNames(a, b string) bool {
	return compareNames(toUnits(a), toUnits(b)) == 0
}

// splitPath splits a backslash-separated key path, ignoring leading,
// trailing and doubled separators. The root is the empty path.
func splitPath(p string) []string {
	parts := strings.Split(p, `\`)
	return slices.DeleteFunc(parts, func(s string) bool { return s == "" })
}

// unitAt returns the i-th UTF-16 unit of a stored name.
func unitAt(raw []byte, comp bool, i int) uint16 {
	if comp {
		return uint16(raw[i])
	}
	return uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
}

func rawLen(raw []byte, comp bool) int {
	if comp {
		return len(raw)
	}
	return len(raw) / 2
}

// compareRawUnits is compareNames between a stored name and units.
func compareRawUnits(raw []byte, comp bool, u []uint16) int {
	n := rawLen(raw, comp)
	for i := 0; i < n && i < len(u); i++ {
		x, y := upcase(unitAt(raw, comp, i)), upcase(u[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return n - len(u)
}

// compareRaw is compareNames between two stored names.
func compareRaw(a []byte, ac bool, b []byte, bc bool) int {
	an, bn := rawLen(a, ac), rawLen(b, bc)
	for i := 0; i < an && i < bn; i++ {
		x, y := upcase(unitAt(a, ac, i)), upcase(unitAt(b, bc, i))
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return an - bn
}

// canonicalName reports whether a stored name is encoded as Windows
// encodes it: Latin-1 when every unit fits in a byte, UTF-16 otherwise.
func canonicalName(raw []byte, comp bool) bool {
	if comp {
		return true
	}
	for i := 0; i+1 < len(raw); i += 2 {
		if raw[i+1] != 0 {
			return true
		}
	}
	return len(raw) == 0
}
