package hive

import (
	"errors"
	"fmt"
)

// Sentinel errors, for errors.Is. A *FormatError matches ErrFormat, and
// ErrChecksum or ErrDirty when it is about the checksum or the sequence
// numbers.
var (
	// ErrFormat is matched by every *FormatError: the file is not a valid hive.
	ErrFormat = errors.New("hive: invalid format")
	// ErrChecksum reports a base block whose checksum does not match.
	ErrChecksum = errors.New("hive: bad base block checksum")
	// ErrDirty reports a hive whose sequence numbers differ: Windows did not
	// finish writing it and its .LOG must be replayed before it is edited.
	ErrDirty = errors.New("hive: dirty hive (sequence numbers differ)")
	// ErrNotFound reports a key or value that does not exist.
	ErrNotFound = errors.New("hive: not found")
	// ErrInvalid reports an invalid argument: a bad name, path or value.
	ErrInvalid = errors.New("hive: invalid argument")
	// ErrTooLarge reports data that the hive version cannot store.
	ErrTooLarge = errors.New("hive: value too large for this hive version")
)

// A FormatError reports a violation of the regf format at a file offset
// (counted from the start of the file, base block included).
type FormatError struct {
	Off  int64  // file offset of the offending structure
	Msg  string // what is wrong
	kind error  // ErrChecksum, ErrDirty or nil
}

// Error renders the error as "hive: at 0xOFFSET: message".
func (e *FormatError) Error() string {
	return fmt.Sprintf("hive: at 0x%x: %s", e.Off, e.Msg)
}

// Is makes errors.Is(err, ErrFormat) true for every FormatError, and
// ErrChecksum or ErrDirty for the errors of that kind.
func (e *FormatError) Is(target error) bool {
	return target == ErrFormat || (e.kind != nil && target == e.kind)
}

// cellErr builds a FormatError for a cell at a hive-bins offset.
func cellErr(off uint32, format string, args ...any) *FormatError {
	return &FormatError{Off: int64(off) + baseBlockSize, Msg: fmt.Sprintf(format, args...)}
}

func fileErr(off int64, format string, args ...any) *FormatError {
	return &FormatError{Off: off, Msg: fmt.Sprintf(format, args...)}
}

func errorsAs(err error, target **FormatError) bool { return errors.As(err, target) }
