package iso

import (
	"errors"
	"fmt"
	"time"
)

// Sizes and locations fixed by ECMA-119 and El Torito.
const (
	// SectorSize is the logical block size; the only one CDs use and the
	// only one this package reads or writes.
	SectorSize = 2048
	// firstDescriptor is the sector of the first volume descriptor; the
	// 16 sectors before it are the system area.
	firstDescriptor = 16
	// maxDescriptors bounds the descriptor set walk.
	maxDescriptors = 64
	// maxDepth bounds directory nesting while reading (ECMA-119 allows 8,
	// mkisofs -D any; 255 is beyond any real CD).
	maxDepth = 255
	// maxEntries bounds the entries read from one image.
	maxEntries = 1 << 22
	// maxJolietName is the longest Joliet name mkisofs -joliet-long writes,
	// in UCS-2 characters (103, so that a record fits 255 bytes).
	maxJolietName = 103
	// BootSectorSize is the unit of El Torito's sector count: a virtual
	// 512-byte sector.
	BootSectorSize = 512
)

// Volume descriptor types.
const (
	vdBoot          = 0
	vdPrimary       = 1
	vdSupplementary = 2
	vdPartition     = 3
	vdTerminator    = 255
)

// Directory record flags.
const (
	flagHidden     = 0x01
	flagDir        = 0x02
	flagMultiExtnt = 0x80
)

const elToritoID = "EL TORITO SPECIFICATION"

// El Torito media types of a boot entry (low nibble of byte 1).
const (
	// MediaNoEmulation loads SectorCount virtual sectors to LoadSegment and
	// runs them; it is what Windows CDs use.
	MediaNoEmulation = 0
	Media12Floppy    = 1
	Media144Floppy   = 2
	Media288Floppy   = 3
	MediaHardDisk    = 4
)

// Errors wrapped by FormatError, for errors.Is.
var (
	// ErrFormat is any structural error in an image.
	ErrFormat = errors.New("iso: malformed image")
	// ErrNotISO says the image has no ISO 9660 volume descriptor at all.
	ErrNotISO = errors.New("iso: not an ISO 9660 image (no CD001 volume descriptor at sector 16)")
	// ErrNotExist is returned for a path the image does not hold.
	ErrNotExist = errors.New("no such file or directory in the image")
)

// FormatError is a structural error at a byte offset of the image.
type FormatError struct {
	File string // image name, when known
	Off  int64  // byte offset of the offending structure
	Msg  string
}

// Error formats as "iso: FILE: at byte 0xOFF: MSG".
func (e *FormatError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("iso: %s: at byte 0x%x: %s", e.File, e.Off, e.Msg)
	}
	return fmt.Sprintf("iso: at byte 0x%x: %s", e.Off, e.Msg)
}

// Unwrap lets errors.Is match ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

// decodeRecTime decodes the 7-byte directory record time (ECMA-119 9.1.5).
// Fields out of range give the zero time: it is informational only.
func decodeRecTime(b []byte) time.Time {
	if len(b) < 7 || (b[0] == 0 && b[1] == 0 && b[2] == 0) {
		return time.Time{}
	}
	if b[1] < 1 || b[1] > 12 || b[2] < 1 || b[2] > 31 || b[3] > 23 || b[4] > 59 || b[5] > 59 {
		return time.Time{}
	}
	off := int(int8(b[6])) * 15 * 60
	loc := time.FixedZone("", off)
	return time.Date(1900+int(b[0]), time.Month(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5]), 0, loc)
}

// encodeRecTime encodes t in UTC as the 7-byte record time.
func encodeRecTime(b []byte, t time.Time) {
	t = t.UTC()
	y := t.Year() - 1900
	if y < 0 {
		y = 0
	}
	if y > 255 {
		y = 255
	}
	b[0], b[1], b[2] = byte(y), byte(t.Month()), byte(t.Day())
	b[3], b[4], b[5], b[6] = byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0
}

// decodeVolTime decodes the 17-byte volume descriptor time (8.4.26.1);
// an unset or unparsable one gives the zero time.
func decodeVolTime(b []byte) time.Time {
	if len(b) < 17 {
		return time.Time{}
	}
	n := func(s []byte) (int, bool) {
		v := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	var f [7]int
	for i, r := range [][2]int{{0, 4}, {4, 6}, {6, 8}, {8, 10}, {10, 12}, {12, 14}, {14, 16}} {
		v, ok := n(b[r[0]:r[1]])
		if !ok {
			return time.Time{}
		}
		f[i] = v
	}
	if f[0] == 0 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 {
		return time.Time{}
	}
	loc := time.FixedZone("", int(int8(b[16]))*15*60)
	return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], f[6]*10_000_000, loc)
}

// encodeVolTime encodes t in UTC; the zero time is "not specified".
func encodeVolTime(b []byte, t time.Time) {
	if t.IsZero() {
		copy(b, "0000000000000000")
		b[16] = 0
		return
	}
	t = t.UTC()
	copy(b, fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/10_000_000))
	b[16] = 0
}
