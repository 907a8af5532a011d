// Package iso reads and writes ISO 9660 CD images with Joliet names and El
// Torito boot catalogs, the format of Windows 2000/XP/2003 installation CDs.
//
// Reading: NewReader(r, size) (or Open(path)) parses the volume descriptors
// from sector 16 on: the primary volume descriptor, a Joliet supplementary
// descriptor (UCS-2 levels 1–3) and the El Torito boot record. File names
// come from the Joliet tree when there is one (that is what Windows reads),
// else from the primary tree without ";1" version suffixes. Every extent,
// length and record read from the image is checked against the image size
// and the directory it lives in before it is used; a bad one is a
// *FormatError naming the byte offset. Directory walks are bounded in depth
// and in entries, so a looping or absurd image ends in an error, never a
// hang. Files are io.SectionReaders: concurrent readers share no offset.
//
// Writing: Build lays out an image the way
// `mkisofs -N -D -J -joliet-long -relaxed-filenames -no-emul-boot
// -boot-load-size 4` does: primary names in 8.3 upper case without version
// suffixes (unique within each directory), directories nested as deep as the
// source (no relocation), Joliet names up to 103 UCS-2 characters, and an
// optional El Torito no-emulation boot entry, patched on request with a
// boot information table (mkisofs -boot-info-table, which ISOLINUX needs).
// The same input gives the same bytes: entries are sorted, times come from
// the source (or a fixed time the caller gives), and nothing depends on
// the host. Build writes a
// temporary file beside the output and renames it into place only when the
// whole image is written, so a failed build leaves no partial image.
//
// Formats: ECMA-119 (ISO 9660), the Joliet specification (Microsoft, 1995)
// and the "El Torito" Bootable CD-ROM Format Specification 1.0 (Phoenix/IBM,
// 1995).
package iso
