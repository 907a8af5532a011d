package fsid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/imagefs/fat32"
)

// Kind names a file system. The values are the names image info, check and
// resize print.
type Kind string

// The kinds Detect returns.
const (
	Unknown Kind = "unknown" // no file system Detect knows
	None    Kind = "none"    // the boot sector is all zeros: not formatted
	FAT12   Kind = "fat12"
	FAT16   Kind = "fat16"
	FAT32   Kind = "fat32"
	NTFS    Kind = "ntfs"
	ExFAT   Kind = "exfat"
)

// SectorSize is the number of bytes of the boot sector Detect reads.
const SectorSize = 512

// ErrUnsupported is wrapped when the volume holds no file system xpboot
// reads: FAT12/16, exFAT, an unknown one, or none.
var ErrUnsupported = errors.New("fsid: not a FAT32 or NTFS file system")

// ErrDamaged is wrapped when the boot sector says FAT32 but its BPB is not
// valid; the error also wraps fat32's, which names the field.
var ErrDamaged = errors.New("fsid: damaged boot sector")

// Error explains why Detect's answer is not a volume xpboot can open. Its
// text stands alone ("FAT16 file system (20000 clusters): xpboot reads FAT32
// and NTFS"); callers prefix the partition.
type Error struct {
	Kind  Kind
	Msg   string
	cause error // ErrUnsupported or ErrDamaged
	err   error // fat32's error, if any
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel and, for a damaged FAT32 boot sector,
// fat32's error.
func (e *Error) Unwrap() []error {
	if e.err != nil {
		return []error{e.cause, e.err}
	}
	return []error{e.cause}
}

const readsOnly = "xpboot reads FAT32 and NTFS"

// Detect names the file system whose boot sector is boot (at least its
// first SectorSize bytes). volumeSize is the size of the partition in
// bytes, which a FAT32 file system must fit in; 0 skips that check.
//
// The error is nil exactly when the kind is FAT32 or NTFS and xpboot can
// try to open it; otherwise it is an *Error wrapping ErrUnsupported or
// ErrDamaged. A damaged FAT32 boot sector is still named FAT32, so that a
// check reports its fault rather than skipping it.
func Detect(boot []byte, volumeSize int64) (Kind, error) {
	if len(boot) < SectorSize {
		return Unknown, &Error{Unknown, fmt.Sprintf("boot sector of %d bytes, shorter than %d", len(boot), SectorSize), ErrUnsupported, nil}
	}
	b := boot[:SectorSize]
	if isZero(b) {
		return None, &Error{None, "no file system (the boot sector is all zeros)", ErrUnsupported, nil}
	}
	switch string(b[3:11]) {
	case "NTFS    ":
		return NTFS, nil
	case "EXFAT   ":
		return ExFAT, &Error{ExFAT, "exFAT file system: " + readsOnly, ErrUnsupported, nil}
	}
	_, err := fat32.ParseBootSector(b, volumeSize)
	if err == nil {
		return FAT32, nil
	}
	// The type string is informational only in the FAT specification, but
	// every FAT32 formatter writes it: a BPB fat32 refuses under it is a
	// FAT32 volume gone wrong, not some other file system.
	if string(b[0x52:0x5A]) == "FAT32   " {
		return FAT32, &Error{FAT32, "damaged FAT32 boot sector: " + err.Error(), ErrDamaged, err}
	}
	if errors.Is(err, fat32.ErrNotFAT32) {
		kind, name := fatType(b)
		return kind, &Error{kind, name + ": " + readsOnly, ErrUnsupported, err}
	}
	return Unknown, &Error{Unknown, fmt.Sprintf("unknown file system (OEM id %s): %s", oemName(b), readsOnly), ErrUnsupported, nil}
}

// fatType names a FAT12/16 volume by its cluster count, as the FAT
// specification defines the type, and describes it. fat32.ParseBootSector
// has already checked the bytes per sector and sectors per cluster.
func fatType(b []byte) (Kind, string) {
	le := binary.LittleEndian
	bps := int64(le.Uint16(b[0x0B:]))
	spc := int64(b[0x0D])
	rootSectors := (int64(le.Uint16(b[0x11:]))*32 + bps - 1) / bps
	fatSize := int64(le.Uint16(b[0x16:]))
	if fatSize == 0 {
		fatSize = int64(le.Uint32(b[0x24:]))
	}
	total := int64(le.Uint16(b[0x13:]))
	if total == 0 {
		total = int64(le.Uint32(b[0x20:]))
	}
	data := total - int64(le.Uint16(b[0x0E:])) - int64(b[0x10])*fatSize - rootSectors
	if bps == 0 || spc == 0 || data <= 0 {
		return FAT16, fmt.Sprintf("FAT12/16 file system (root entries %d, 16-bit FAT size %d, no data area)", le.Uint16(b[0x11:]), le.Uint16(b[0x16:]))
	}
	clusters := data / spc
	switch {
	case clusters < 4085:
		return FAT12, fmt.Sprintf("FAT12 file system (%d clusters)", clusters)
	case clusters < 65525:
		return FAT16, fmt.Sprintf("FAT16 file system (%d clusters)", clusters)
	}
	// A FAT12/16 layout (a root directory region or a 16-bit FAT size)
	// with a FAT32 cluster count: no FAT driver reads it either way.
	return FAT16, fmt.Sprintf("FAT12/16 file system layout (root entries %d, 16-bit FAT size %d) with %d clusters", le.Uint16(b[0x11:]), le.Uint16(b[0x16:]), clusters)
}

// oemName quotes the OEM id at byte 3 for a message, trailing blanks and
// NULs dropped.
func oemName(b []byte) string {
	s := strings.TrimRight(string(b[3:11]), " \x00")
	return fmt.Sprintf("%q", s)
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
