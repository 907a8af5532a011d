// Package fat32 reads and writes FAT32 file systems inside disk images.
//
// Format lays a new file system out as Windows does (Microsoft's cluster-size
// table and FAT-size formula, 32 reserved sectors, backup boot sector and
// FSInfo), with the BPB geometry and hidden sectors of a partitioned XP disk,
// for any volume from MinSize up to MaxSize (2 TiB, the MBR limit).
//
// File access does not go through go-diskfs: its writer rewrites both FATs
// and the whole parent directory on every write, which makes populating a
// setup tree quadratic, and it produces wrong ".." entries and duplicate 8.3
// names. FS instead keeps the FAT and the directories it touches in memory,
// allocates clusters contiguously, writes file data straight to the device
// and writes metadata once, in Flush: FAT copies first, then directories, then
// FSInfo, so that an interrupted run leaves at worst lost clusters, never a
// directory entry pointing at a free cluster.
//
// FS is not safe for concurrent use.
package fat32
