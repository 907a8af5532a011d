// Package hive reads, checks and edits Windows registry hive files (the
// regf format, versions 1.3 and 1.5 that Windows XP and Server 2003 write)
// and converts them to and from .reg files.
//
// # Reading
//
// NewFile reads a hive from an io.ReaderAt of known size; Open wraps it
// for a path. Both are read-only and check the base block (signature,
// version, checksum) and every hbin header before returning; keys, values
// and lists are checked as they are read. Every size and count taken from
// the file is checked against the file before it is used to allocate or
// loop, walks detect cycles, and a malformed hive yields a *FormatError
// naming the file offset, never a panic. A File's methods may be called
// concurrently.
//
// # Checking
//
// Check reports every violation of the rules Windows XP relies on (listed
// in ../shared/research/hive.md and on Check), each with its offset. It
// reports nothing on hives Windows wrote; a dirty hive (sequence numbers
// differ) is a finding.
//
// # Editing
//
// An Editor (Edit, NewEditor, or New for an empty hive) holds the whole
// hive in memory, applies key and value changes, and writes the hive with
// Save: a temporary file in the same directory, fsync, rename, so that on
// any error the original is untouched. Each write lays the hive out anew
// and compactly, the way RegSaveKey compacts a hive: cells are packed
// into bins in tree order, the only free space is the tail of each bin,
// so free space never accumulates and repeated edits do not grow the
// file. Every written hive satisfies Check: equal sequence numbers bumped
// by one, a fresh timestamp, checksum with Windows' fix-ups (and a
// timestamp nudged so that hivex's raw checksum agrees), contiguous 4 KiB
// bins, 8-aligned cells that never span bins, subkey lists of the type the
// version calls for (lh for 1.5, lf or li for 1.3/1.4, ri above the leaf
// limits) sorted by upper-cased UTF-16 with exact hashes and hints,
// inline data up to 4 bytes, db big data above 16,344 bytes in 1.4+ hives,
// Latin-1 names wherever they fit, exact security reference counts in a
// circular sk list, and maximum-length fields at least the real maxima.
// A dirty hive is refused (ErrDirty) until its log is replayed
// (RecoverOldLog).
//
// Names, flags, timestamps, class names, security descriptors, value order
// and types (unknown types as raw bytes) are kept as found. Key and value
// paths are backslash-separated from the root and compared the way
// Windows compares them (EqualNames).
//
// # .reg files
//
// ExportReg and ImportReg convert between hives and .reg files in the
// "Windows Registry Editor Version 5.00" (UTF-16LE with BOM) and REGEDIT4
// (Windows-1252) dialects, with the hive's root mapped to a prefix such as
// HKEY_LOCAL_MACHINE\SYSTEM.
//
// The package does no network or terminal I/O and never prints.
package hive
