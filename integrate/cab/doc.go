// Package cab reads and writes Microsoft cabinet (MS-CAB) files, the format
// of Windows setup's compressed files (*.in_, *.sy_, *.dl_, *.ex_: a
// cabinet holding one file with the full name, e.g. nettcpip.inf inside
// nettcpip.in_).
//
// Reading: [NewReader] takes an [io.ReaderAt] and its size, parses the
// CFHEADER, CFFOLDER and CFFILE records (reserve fields included) and checks
// every count and offset against the real size before allocating or looping.
// [File.Open] decompresses the file's folder: no compression, MSZIP (deflate
// blocks behind a "CK" signature, 32 KiB history carried across CFDATA
// blocks) or LZX (window 2^15..2^21, verbatim, aligned and uncompressed
// blocks, E8 call translation). CFDATA checksums are verified. Quantum
// folders and cabinets that span several files are refused with an error
// matching [ErrUnsupported]. Format violations are *[FormatError] values
// naming the file (when known) and the byte offset; they match [ErrFormat]
// (and [ErrChecksum] for checksum mismatches). A malformed cabinet gives an
// error, never a panic or an unbounded loop.
//
// Writing: [Writer] builds a single-cabinet, single-folder cabinet of one or
// more files, MSZIP-compressed (compress/flate raw deflate per block of at
// most 32 KiB, history from the previous block of the same folder, as
// Microsoft's FCI does) or stored, with checksums, DOS date/time and
// attributes. Everything is buffered in memory until Close: setup's files
// are small.
//
// Format reference: [MS-CAB] "Cabinet File Format" and the LZX description
// in [MS-PATCH] (LZX DELTA) restricted to the cabinet subset.
package cab
