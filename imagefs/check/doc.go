// Package check checks disk images and compares them, for
// `xpboot image check` and `xpboot image compare`.
//
// Image checks one image from the outside in and never writes: the
// container's structure (vmdk.Check, vhd.Check, or a raw file's size),
// the MBR partition table and the chain of extended boot records
// (mbr.CheckTable), then the file system of every partition xpboot reads
// (fat32.Check, ntfs.Check). Every problem is a Finding naming the
// structure, the byte offset (in the container file for container
// findings, on the virtual disk for everything else), the file's path
// inside the volume where one is known, and a message; Report.Findings
// is empty for a clean image. Image returns an error only when the image
// cannot be read at all (missing, unreadable, not a disk image); damage,
// even damage that stops a later stage, is a finding.
//
// Compare compares the contents of two virtual disks whatever their
// containers, as qemu-img compare does: ranges that both containers
// store as unallocated are skipped without reading, a range one side
// leaves unallocated is compared against zeros, and the first differing
// byte offset is reported. Without Strict, disks of different sizes are
// equal when the extra part of the larger one reads as zeros.
// CompareFiles compares the file trees of a partition of each image.
package check
