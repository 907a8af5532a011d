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
// An Editor (Edit, NewEditor, or New for an empty hive) changes a hive in
// place, the way Windows' configuration manager does: the bins stay where
// they are, new cells come from free cells (best fit, split, coalesced
// with free neighbours when freed) or from a bin appended at the end, and
// only the cells an edit touches are written. Edit reads the file into
// memory backed by huge pages where the kernel offers them (a handful of
// page faults for a 10 MB hive) and maps it copy-on-write otherwise.
// Save writes just the changed 512-byte sectors and the base block, with
// Windows' crash protocol: an old-format transaction log (HIVE.LOG)
// first, then the primary marked dirty, the sectors, and the primary marked
// clean, each step synced; a crash leaves the old hive or a dirty one that
// its log completes (Edit replays it, as Windows does at boot). An edit
// whose sectors, written twice, would exceed half the file, and a save to
// another path, write the whole file to a temporary file that is synced
// and renamed instead. A file changed by another program since it was read is not
// overwritten.
//
// Every written hive satisfies Check if the input did: equal sequence
// numbers bumped by one, a fresh timestamp, checksum with Windows'
// fix-ups (and a timestamp nudged so that hivex's raw checksum agrees),
// cells that tile their bins with free neighbours coalesced, subkey lists
// rewritten with the type the version calls for (lh for 1.5, lf or li for
// 1.3/1.4, ri above the leaf limits) sorted by upper-cased UTF-16 with
// exact hashes and hints, inline data up to 4 bytes, db big data above
// 16,344 bytes in 1.4+ hives, Latin-1 names wherever they fit, exact
// security reference counts in a circular sk list (an sk no key uses any
// more is unlinked and freed), and maximum-length fields at least the real
// maxima. Free space is reused, so repeated edits do not grow the file;
// Compact (xpboot hive compact) lays a hive out anew without free space,
// the way RegSaveKey does, and repairs lists of the wrong type or order.
// A dirty hive is refused (ErrDirty) unless its log replays
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
