package ntfs

// On-disk constants of NTFS 3.1 used by the writer. The layouts follow the
// Linux-NTFS project's documentation (Russon, "NTFS Documentation") and the
// public ntfs-3g headers (include/ntfs-3g/layout.h); nothing here is copied
// from either.

import (
	"encoding/binary"
	"fmt"
)

// Attribute types.
const (
	atStandardInformation = 0x10
	atAttributeList       = 0x20
	atFileName            = 0x30
	atObjectID            = 0x40
	atSecurityDescriptor  = 0x50
	atVolumeName          = 0x60
	atVolumeInformation   = 0x70
	atData                = 0x80
	atIndexRoot           = 0x90
	atIndexAllocation     = 0xA0
	atBitmap              = 0xB0
	atReparsePoint        = 0xC0
	atEnd                 = 0xFFFFFFFF
)

// Attribute record flags.
const (
	attrCompressed = 0x0001
	attrEncrypted  = 0x4000
	attrSparse     = 0x8000
)

// MFT record flags.
const (
	recInUse     = 0x0001
	recDirectory = 0x0002
)

// System record numbers.
const (
	recMFT     = 0
	recMFTMirr = 1
	recLogFile = 2
	recVolume  = 3
	recRoot    = 5
	recBitmap  = 6
	recUpCase  = 10
	// firstUserRecord is where new files start: 16..23 are reserved by
	// Windows for $MFT extension records.
	firstUserRecord = 24
)

// File attribute flags (in $STANDARD_INFORMATION and $FILE_NAME).
const (
	faReadOnly      = 0x0001
	faHidden        = 0x0002
	faSystem        = 0x0004
	faDirectory     = 0x0010
	faArchive       = 0x0020
	faSparse        = 0x0200
	faReparse       = 0x0400
	faCompressed    = 0x0800
	faEncrypted     = 0x4000
	faIndexPresent  = 0x10000000 // FILE_ATTR_DUP_FILE_NAME_INDEX_PRESENT
	faViewIndexPres = 0x20000000
)

// $FILE_NAME namespaces.
const (
	nsPOSIX       = 0
	nsWin32       = 1
	nsDOS         = 2
	nsWin32AndDOS = 3
)

// Index entry and header flags.
const (
	ieSubnode = 0x01
	ieEnd     = 0x02
	ihLarge   = 0x01 // INDEX_ROOT: an $INDEX_ALLOCATION exists; INDX: node
)

// $VOLUME_INFORMATION flags.
const volDirty = 0x0001

// collationFileName is COLLATION_FILE_NAME of $INDEX_ROOT.
const collationFileName = 1

// blockSize is the multi-sector transfer stride: fixups protect the last two
// bytes of every 512-byte block, whatever the sector size.
const blockSize = 512

// ntfsEpochDelta is the number of 100 ns intervals between 1601-01-01 and
// 1970-01-01.
const ntfsEpochDelta = 116444736000000000

// FormatError reports malformed NTFS structures with the record (or -1
// when not inside a record) and the byte offset in the volume or record.
type FormatError struct {
	Record int64 // MFT record number, or -1
	Off    int64 // byte offset: in the record when Record >= 0, else in the volume
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Record >= 0 {
		return fmt.Sprintf("ntfs: MFT record %d at byte 0x%x: %s", e.Record, e.Off, e.Msg)
	}
	return fmt.Sprintf("ntfs: volume byte 0x%x: %s", e.Off, e.Msg)
}

func recErr(rec int64, off int, format string, a ...any) error {
	return &FormatError{Record: rec, Off: int64(off), Msg: fmt.Sprintf(format, a...)}
}

var le = binary.LittleEndian

func u16(b []byte, o int) uint16      { return le.Uint16(b[o:]) }
func u32(b []byte, o int) uint32      { return le.Uint32(b[o:]) }
func u64(b []byte, o int) uint64      { return le.Uint64(b[o:]) }
func put16(b []byte, o int, v uint16) { le.PutUint16(b[o:], v) }
func put32(b []byte, o int, v uint32) { le.PutUint32(b[o:], v) }
func put64(b []byte, o int, v uint64) { le.PutUint64(b[o:], v) }

func align8(n int) int { return (n + 7) &^ 7 }

// mftRef packs a record number and sequence into a file reference.
func mftRef(rec uint64, seq uint16) uint64 { return rec&0xFFFFFFFFFFFF | uint64(seq)<<48 }
func refRecord(ref uint64) uint64          { return ref & 0xFFFFFFFFFFFF }
