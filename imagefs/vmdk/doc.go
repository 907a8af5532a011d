// Package vmdk reads and writes VMware virtual disks (VMDK).
//
// Contract:
//
//   - Open returns a *Disk, which implements blockdev.Device, for a
//     monolithicSparse or streamOptimized file, or a text descriptor with
//     its extents (monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat,
//     vmfs; FLAT, SPARSE, VMFS, VMFSSPARSE and ZERO extents). Format is
//     recognised by content: the "KDMV" magic or a descriptor whose first
//     entry is version=.
//   - Sparse and flat disks are read-write. A write to an unallocated grain
//     appends the grain at the end of the file and then updates the grain
//     table and the redundant grain table; a partly written grain of a delta
//     disk is first filled from the parent (copy-on-write). The first write
//     of every open session gives the disk a new CID, as VMware and qemu do.
//     streamOptimized (compressed) disks are read-only as devices; they are
//     written sequentially by StreamWriter, with compression left to the
//     caller (GrainCompressor) so that it can run on all cores.
//   - A delta disk (parentCID, parentFileNameHint) opens its parent
//     read-only and refuses it when the parent's CID is not the delta's
//     parentCID; unallocated grains read from the parent and Extents reports
//     them as Parent. Children lists the deltas that depend on a disk.
//   - Create writes the layout qemu and VMware hosted products use for
//     monolithicSparse (version 1, redundant grain directory, preallocated
//     grain tables, 64 KiB grains) and a descriptor with geometry and
//     ddb.adapterType "ide" by default.
//   - NewReader parses a single-file VMDK from any io.ReaderAt; it is what
//     the fuzz target exercises.
//   - Every size, count and offset read from a file is checked against the
//     real file size before it is used to allocate or loop; grain tables are
//     loaded lazily and checked when loaded. Malformed files give a
//     *FormatError naming the file and byte offset, wrapping ErrFormat or
//     ErrUnsupported; the package never panics on bad input.
//   - Writable opens take exclusive advisory locks (blockdev.Lock) on every
//     file written, read-only opens shared ones.
//
// Specification: VMware "Virtual Disk Format 5.0" technote; all integers
// little-endian. Reference implementations: qemu block/vmdk.c, VMware
// open-vmdk.
package vmdk
