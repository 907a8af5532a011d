package cab

import (
	"errors"
	"fmt"
	"time"
)

// On-disk sizes and constants of [MS-CAB].
const (
	headerSize     = 36 // CFHEADER without the optional fields
	folderSize     = 8  // CFFOLDER without reserve
	fileEntrySize  = 16 // CFFILE without the name
	dataHeaderSize = 8  // CFDATA without reserve

	flagPrevCabinet    = 0x0001
	flagNextCabinet    = 0x0002
	flagReservePresent = 0x0004

	maxName       = 255   // CB_MAX_FILENAME (256) less the terminating NUL
	maxBlockData  = 32768 // largest uncompressed CFDATA payload
	maxBlockInput = 32768 + 6144
	maxFolderData = 0xffff // cCFData is a uint16

	ifoldContinuedFromPrev    = 0xfffd
	ifoldContinuedToNext      = 0xfffe
	ifoldContinuedPrevAndNext = 0xffff
)

// Compression is a CFFOLDER typeCompress value: the method in the low four
// bits, the LZX window size (log2) or Quantum parameters above.
type Compression uint16

// Compression methods.
const (
	None    Compression = 0
	MSZIP   Compression = 1
	Quantum Compression = 2
	LZX     Compression = 3
)

// Method returns the compression method alone (None, MSZIP, Quantum, LZX).
func (c Compression) Method() Compression { return c & 0x000f }

// LZXWindowBits returns log2 of the LZX window size (15..21).
func (c Compression) LZXWindowBits() int { return int(c>>8) & 0x1f }

// String names the method, with the LZX window bits (e.g. "LZX:21").
func (c Compression) String() string {
	switch c.Method() {
	case None:
		return "none"
	case MSZIP:
		return "MSZIP"
	case Quantum:
		return "Quantum"
	case LZX:
		return fmt.Sprintf("LZX:%d", c.LZXWindowBits())
	}
	return fmt.Sprintf("unknown(0x%04x)", uint16(c))
}

// File attributes (CFFILE attribs).
const (
	AttrReadOnly  = 0x01
	AttrHidden    = 0x02
	AttrSystem    = 0x04
	AttrArchive   = 0x20
	AttrExec      = 0x40
	AttrNameIsUTF = 0x80
)

// Sentinel errors for errors.Is.
var (
	// ErrFormat is matched by every *FormatError.
	ErrFormat = errors.New("cab: invalid format")
	// ErrChecksum is matched by a *FormatError about a CFDATA checksum.
	ErrChecksum = errors.New("cab: checksum mismatch")
	// ErrUnsupported reports a valid cabinet feature this package does not
	// implement: Quantum compression and cabinet sets (spanning).
	ErrUnsupported = errors.New("cab: unsupported")
	// ErrTooLarge is matched by the *FormatError of a file larger than
	// Reader.MaxFileSize.
	ErrTooLarge = errors.New("cab: file larger than the limit")
)

// DefaultMaxFileSize is the Reader.MaxFileSize NewReader sets: far above
// any Windows setup file, far below what a hostile cabinet of a few MB can
// claim (a folder of 65535 blocks expands to 2 GiB).
const DefaultMaxFileSize = 256 << 20

// A FormatError reports a violation of the cabinet format.
type FormatError struct {
	Name string // cabinet file name, if known
	Off  int64  // byte offset in the cabinet of the offending record
	Msg  string
	kind error
}

// Error formats the error with the file name and the offset.
func (e *FormatError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("cab: %s: at 0x%x: %s", e.Name, e.Off, e.Msg)
	}
	return fmt.Sprintf("cab: at 0x%x: %s", e.Off, e.Msg)
}

// Is makes errors.Is match ErrFormat, and ErrChecksum or ErrUnsupported
// for errors of that kind.
func (e *FormatError) Is(target error) bool {
	return target == ErrFormat && e.kind != ErrUnsupported || (e.kind != nil && target == e.kind)
}

// checksum is the CSUMCompute function of [MS-CAB] 2.5: the XOR of the
// little-endian 32-bit words, the trailing 1-3 bytes packed big-end first.
func checksum(b []byte, seed uint32) uint32 {
	c := seed
	n := len(b) / 4
	for i := 0; i < n; i++ {
		c ^= uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24
	}
	var ul uint32
	t := b[4*n:]
	switch len(t) {
	case 3:
		ul = uint32(t[0])<<16 | uint32(t[1])<<8 | uint32(t[2])
	case 2:
		ul = uint32(t[0])<<8 | uint32(t[1])
	case 1:
		ul = uint32(t[0])
	}
	return c ^ ul
}

// dosTime decodes a CFFILE date and time (local time, 2-second precision).
func dosTime(d, t uint16) time.Time {
	return time.Date(int(d>>9)+1980, time.Month(d>>5&0xf), int(d&0x1f),
		int(t>>11), int(t>>5&0x3f), int(t&0x1f)*2, 0, time.UTC)
}

// toDOSTime encodes t (its wall clock fields) for a CFFILE; years outside
// 1980..2107 are clamped.
func toDOSTime(t time.Time) (d, tm uint16) {
	y := t.Year()
	if y < 1980 {
		return 1<<5 | 1, 0
	}
	if y > 2107 {
		y = 2107
	}
	d = uint16((y-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return
}
