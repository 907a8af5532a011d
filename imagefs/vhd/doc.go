// Package vhd reads and writes Microsoft Virtual Hard Disk (VHD) images:
// fixed, dynamic and (read-only) differencing disks.
//
// Contract:
//
//   - Open and Create return a *Disk, which implements blockdev.Device.
//     Fixed and dynamic disks are read-write; a differencing disk is
//     read-only and reads every sector its bitmap does not mark as present
//     from its parent, which Open locates through the parent locators
//     ("W2ru", "W2ku") or the parent name and checks by unique id.
//   - NewReader parses an image held in any io.ReaderAt without touching the
//     file system; it is what the fuzz target exercises. A differencing disk
//     opened that way has no parent, and reads of its parent ranges fail.
//   - Every size, count and offset read from the file is checked against the
//     real file size before it is used to allocate or loop. Malformed files
//     give a *FormatError naming the file and byte offset, wrapping ErrFormat
//     or ErrChecksum; the package never panics on bad input.
//   - Dynamic disks use 2 MiB blocks by default, a full (0xFF) sector bitmap
//     on allocation like qemu and Virtual PC, and keep the footer copy at
//     offset 0 identical to the trailing footer.
//   - Sizes: the disk size is the footer's current size. Create writes the
//     creator application "win ", for which qemu (every version) and Hyper-V
//     use the current size, and a CHS geometry computed by the algorithm of
//     the specification's appendix. Virtual PC and qemu before 10.0 use C×H×S
//     for other creators; RoundSize gives the smallest size at or above a
//     wanted one on which all of them agree. Sizes above the largest CHS
//     geometry (about 127 GiB) get the maximum geometry 65535/16/255, for
//     which qemu uses the current size.
//   - Writable opens take an exclusive advisory lock (blockdev.Lock),
//     read-only opens a shared one, so a served image cannot be rewritten.
//
// Specification: Microsoft "Virtual Hard Disk Image Format Specification"
// v1.0 (October 2006). All fields are big-endian.
package vhd
