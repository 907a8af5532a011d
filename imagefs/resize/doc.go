// Package resize changes the size of a disk image and, on request, grows
// its last partition and the FAT32 or NTFS file system in it, like
// `qemu-img resize` followed by a partition editor and ntfsresize or
// fatresize, in one checked step.
//
// Contract:
//
//   - Containers keep their format: raw files are truncated or extended;
//     monolithicSparse VMDKs grow in place when their grain directory has
//     room for the new grain tables, else they are copied into a new file
//     that replaces the old one (temporary name + rename); monolithicFlat
//     VMDKs get a longer extent file and a new descriptor; dynamic VHDs
//     grow in place when their block allocation table can grow (else they
//     are rewritten), fixed VHDs move their footer. streamOptimized VMDKs,
//     delta and differencing disks, split VMDKs and images other disks
//     depend on are refused, as are sizes a format cannot hold (VHD over
//     2040 GiB, VMDK over 64 TiB). VHD sizes are rounded up to a CHS size
//     unless Exact is set.
//   - With GrowPartition, the partition that ends last (a primary one, or
//     the last logical one, whose extended container and linking EBR grow
//     with it) grows to the end of the disk (to a cylinder boundary when it
//     ended on one) or to PartitionSize, and its file system with it:
//     NTFS through its boot sector, $Bitmap (new clusters for it come from
//     the old free space), $BadClus and the backup boot sector; FAT32 only
//     when its FATs already hold entries for the new clusters, otherwise a
//     refusal that names the FAT size needed. An unformatted (all-zero)
//     partition grows alone; any other file system is refused.
//   - Shrinking is refused unless Shrink is set and every partition lies
//     below the new size; then only the container shrinks.
//   - Everything is checked and planned, reading only, before the first
//     write; DryRun stops there and reports the plan. The writes then go
//     container first, partition table second, file system last, each
//     step flushed before the next: every prefix leaves a consistent disk
//     whose volume is the old one or the grown one.
//   - The package never prints; errors name the file, structure and
//     offset.
package resize
