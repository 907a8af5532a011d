package fat32

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// Short names are stored in the OEM code page. Text-mode setup and DOS show
// them in code page 437, which is what XP's US media and mtools assume.
var oemCodePage = charmap.CodePage437

// shortName is an 8.3 name as stored: 8 bytes of base, 3 of extension, both
// space padded, in the OEM code page.
type shortName [11]byte

func (s shortName) String() string {
	base := strings.TrimRight(decodeOEM(s[:8]), " ")
	ext := strings.TrimRight(decodeOEM(s[8:]), " ")
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// display returns the name as Windows shows an entry without a long name,
// applying the NT lower-case flags.
func (s shortName) display(ntRes byte) string {
	base := strings.TrimRight(decodeOEM(s[:8]), " ")
	ext := strings.TrimRight(decodeOEM(s[8:]), " ")
	if ntRes&ntLowerBase != 0 {
		base = strings.ToLower(base)
	}
	if ntRes&ntLowerExt != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

func decodeOEM(b []byte) string {
	if b[0] == 0x05 { // a first byte 0xE5 is stored as 0x05 (0xE5 marks deletion)
		b = append([]byte{0xE5}, b[1:]...)
	}
	s, err := oemCodePage.NewDecoder().Bytes(b)
	if err != nil {
		return string(b)
	}
	return string(s)
}

// checksum is the LFN checksum of a short name.
func (s shortName) checksum() byte {
	var sum byte
	for _, c := range s {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// validLongName reports why name cannot be a FAT long file name, or "".
func validLongName(name string) string {
	if name == "" || name == "." || name == ".." {
		return "empty or dot name"
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return "Windows cannot use names ending in a dot or space"
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Sprintf("character %q is not allowed in FAT names", r)
		}
	}
	if n := len(utf16.Encode([]rune(name))); n > 255 {
		return fmt.Sprintf("%d UTF-16 code units exceed the FAT limit of 255", n)
	}
	return ""
}

// upperKey is the case-insensitive lookup key of a name, like the one
// Windows compares with.
func upperKey(name string) string { return strings.ToUpper(name) }

// shortChar maps a character of an upper-cased long name to an 8.3 byte, and
// reports whether the mapping lost information.
func shortChar(r rune) (byte, bool) {
	if strings.ContainsRune("+,;=[]", r) {
		return '_', true
	}
	if r < 0x80 {
		return byte(r), false
	}
	b, err := oemCodePage.NewEncoder().Bytes([]byte(string(r)))
	if err != nil || len(b) != 1 {
		return '_', true
	}
	return b[0], false
}

// shortCandidate describes how a long name maps onto 8.3.
type shortCandidate struct {
	base, ext []byte // OEM bytes, upper case, not padded
	lossy     bool   // characters were replaced, dropped or truncated
	ntRes     byte   // NT case flags when the long name is an 8.3 name in one case per part
	exact     bool   // the long name is representable as this 8.3 name (with ntRes)
}

// makeShortCandidate applies the Windows basis-name rules: upper case, OEM
// code page, spaces and leading or extra dots removed, base truncated to 8
// and extension (after the last dot) to 3 characters.
func makeShortCandidate(name string) shortCandidate {
	var c shortCandidate
	baseName, extName := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		baseName, extName = name[:i], name[i+1:]
	}
	conv := func(part string, limit int) ([]byte, bool) {
		var out []byte
		lossy := false
		for _, r := range part {
			if r == ' ' || r == '.' {
				lossy = true
				continue
			}
			b, l := shortChar(unicode.ToUpper(r))
			lossy = lossy || l
			if len(out) == limit {
				lossy = true
				continue
			}
			out = append(out, b)
		}
		return out, lossy
	}
	var l1, l2 bool
	c.base, l1 = conv(strings.TrimLeft(baseName, "."), 8)
	c.ext, l2 = conv(extName, 3)
	c.lossy = l1 || l2 || strings.HasPrefix(baseName, ".")
	if len(c.base) == 0 {
		c.base, c.lossy = []byte{'_'}, true
	}
	if !c.lossy {
		flag := func(part string, lowerFlag byte) (byte, bool) {
			switch {
			case part == strings.ToUpper(part):
				return 0, true
			case part == strings.ToLower(part):
				return lowerFlag, true
			}
			return 0, false
		}
		fb, okb := flag(baseName, ntLowerBase)
		fe, oke := flag(extName, ntLowerExt)
		c.exact = okb && oke
		c.ntRes = fb | fe
	}
	return c
}

func (c shortCandidate) withTail(n int) shortName {
	var s shortName
	for i := range s {
		s[i] = ' '
	}
	base := c.base
	if n > 0 {
		tail := fmt.Sprintf("~%d", n)
		keep := 8 - len(tail)
		if len(base) < keep {
			keep = len(base)
		}
		base = append(append([]byte{}, base[:keep]...), tail...)
	}
	copy(s[:8], base)
	copy(s[8:], c.ext)
	if s[0] == 0xE5 {
		s[0] = 0x05
	}
	return s
}

// encodeLFN returns the long-name slots for name, last slot first, as they
// precede the short entry on disk.
func encodeLFN(name string, sum byte) [][dirEntrySize]byte {
	units := utf16.Encode([]rune(name))
	n := (len(units) + 12) / 13
	if len(units)%13 != 0 {
		units = append(units, 0)
	}
	for len(units)%13 != 0 {
		units = append(units, 0xFFFF)
	}
	slots := make([][dirEntrySize]byte, n)
	for i := 0; i < n; i++ {
		var e [dirEntrySize]byte
		ord := byte(i + 1)
		if i == n-1 {
			ord |= lfnLast
		}
		e[0] = ord
		e[11] = attrLongName
		e[13] = sum
		chunk := units[i*13 : i*13+13]
		put := func(off int, u uint16) { e[off], e[off+1] = byte(u), byte(u>>8) }
		for j := 0; j < 5; j++ {
			put(1+2*j, chunk[j])
		}
		for j := 0; j < 6; j++ {
			put(14+2*j, chunk[5+j])
		}
		for j := 0; j < 2; j++ {
			put(28+2*j, chunk[11+j])
		}
		slots[n-1-i] = e
	}
	return slots
}

// lfnRun assembles a long name from the slots before a short entry, as
// Windows reads them: the slots in descending order from the one marked
// last, each with the short entry's checksum; a run broken anywhere is
// dropped. The directory reader and the checker both read names with it.
type lfnRun struct {
	units []uint16
	start int // slot of the run's first slot; -1 when no run is open
	next  int // ordinal the next slot must carry
	sum   byte
}

func newLFNRun() lfnRun { return lfnRun{start: -1} }

// reset drops the open run (a deleted, label or dot entry ends it).
func (r *lfnRun) reset() { r.start = -1 }

// add takes long-name slot e, slot number i of its directory.
func (r *lfnRun) add(e []byte, i int) {
	ord := int(e[0] & 0x1F)
	if e[0]&lfnLast != 0 {
		r.units, r.start, r.next, r.sum = make([]uint16, ord*13), i, ord, e[13]
	}
	if r.start < 0 || ord != r.next || ord == 0 || e[13] != r.sum {
		r.start = -1
		return
	}
	copy(r.units[(ord-1)*13:], lfnChars(e))
	r.next--
}

// name returns the long name the open run gives short entry s, up to its
// NUL (or the 0xFFFF padding of a run without one), and the slot the run
// starts at; ok is false when the run is absent, incomplete or belongs to
// another short name. The run is closed either way.
func (r *lfnRun) name(s shortName) (name string, start int, ok bool) {
	defer r.reset()
	if r.start < 0 || r.next != 0 || s.checksum() != r.sum {
		return "", 0, false
	}
	n := 0
	for n < len(r.units) && r.units[n] != 0 && r.units[n] != 0xFFFF {
		n++
	}
	return string(utf16.Decode(r.units[:n])), r.start, true
}

// lfnChars extracts the 13 UTF-16 units of one long-name slot.
func lfnChars(e []byte) []uint16 {
	u := make([]uint16, 0, 13)
	get := func(off int) uint16 { return uint16(e[off]) | uint16(e[off+1])<<8 }
	for j := 0; j < 5; j++ {
		u = append(u, get(1+2*j))
	}
	for j := 0; j < 6; j++ {
		u = append(u, get(14+2*j))
	}
	for j := 0; j < 2; j++ {
		u = append(u, get(28+2*j))
	}
	return u
}

// dosTime encodes t (in its own location) as FAT date and time words.
func dosTime(t time.Time) (date, tm uint16, tenths byte) {
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, t.Location())
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, t.Location())
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	tenths = byte(t.Second()%2*100 + t.Nanosecond()/10_000_000)
	return
}

// fromDOSTime decodes FAT date and time words as local time, like Windows.
func fromDOSTime(date, tm uint16) time.Time {
	if date == 0 {
		return time.Time{}
	}
	return time.Date(int(date>>9)+1980, time.Month(date>>5&0x0F), int(date&0x1F),
		int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2, 0, time.Local)
}

// timeValue is a FAT timestamp as stored.
type timeValue struct {
	date, time uint16
	tenths     byte
}

func newTimeValue(t time.Time) timeValue {
	d, tm, tenths := dosTime(t)
	return timeValue{d, tm, tenths}
}

// Time returns the timestamp as local time.
func (v timeValue) Time() time.Time { return fromDOSTime(v.date, v.time) }
