// Package ntfs reads and writes NTFS 3.1 volumes inside disk images.
//
// Reading (Stat, ReadDir, OpenFile) goes through
// www.velocidex.com/golang/go-ntfs; go-ntfs is forensics code that may panic
// on damaged volumes, so every call into it is guarded and a bad image
// gives an error, never a crash.
//
// Writing (WriteFile, Mkdir, MkdirAll, Remove on a volume opened with
// OpenWritable) is this package's own code, which reads the structures it
// changes itself: the boot sector, MFT records with their multi-sector
// fixups, attributes and mapping pairs, $Bitmap, $MFT's $BITMAP, the $I30
// B+tree (INDEX_ROOT, INDX blocks and their $BITMAP) in the order of the
// volume's own $UpCase. The contract:
//
//   - Guard rails first: a volume that is not NTFS 3.1, is marked dirty,
//     has an unclean $LogFile, a live hiberfil.sys, or a $MFTMirr that
//     differs from $MFT is refused (ErrRefused) before anything is written;
//     reading it still works.
//   - All or nothing: an operation plans and allocates in memory (a
//     transaction) and writes only when everything succeeded; a refused
//     or failed operation leaves the image byte-identical. Writes go data
//     first, then index blocks, bitmaps, MFT records and the $MFTMirr copy
//     of records 0-3. The metadata of operations that only allocate is
//     queued and written at Flush (or when the queue is long, or before
//     an operation that frees space returns): call Flush before anything
//     else reads the device.
//   - $LogFile is never written; since it was clean before the write it
//     stays clean, and no log records describe xpboot's changes (the same
//     approach as ntfs-3g).
//   - Files with an $ATTRIBUTE_LIST (and directories whose $I30 attributes
//     sit in extension records), and compressed, encrypted, sparse or
//     reparse-point files, are refused for writing with their name; such
//     directories are listed, read and checked through their list
//     (attrlist.go).
//   - Every offset and length read from the volume is range-checked; damage
//     gives a *FormatError naming the MFT record and byte offset.
//
// See docs/ntfs.md for the design, the invariants and how it is verified.
package ntfs
