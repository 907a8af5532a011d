// Package imagefs creates disk images and reads and writes the files inside
// them.
//
// An image is opened as a blockdev.Device whatever its container (raw, VMDK,
// VHD); its MBR partition table is parsed by package mbr and each partition's
// file system is reached through the FS interface: FAT32 read-write (package
// fat32), NTFS 3.1 read-write (package ntfs). Create lays out a disk the way
// Windows XP setup and NTLDR expect it: one active primary partition at LBA 63
// on a 255-head, 63-sector geometry, ending on a cylinder boundary, with
// xpboot's own MBR and FAT32 boot code.
package imagefs
