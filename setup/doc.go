// Package setup prepares a disk for Windows 2000/XP/Server 2003 text-mode
// setup from the installation media, as
// `winnt32 /syspart:C /tempdrive:C /makelocalsource /noreboot` does on
// Windows, from any operating system.
//
// OpenSource reads the media: an ISO 9660 image (through package iso, with
// Joliet names), a directory holding a copy of the CD, or a CD image inside
// a disk image (IMG:/path/to/cd.iso). DetectMedia identifies the system and
// architecture from the media's own files (txtsetup.sif, hivesft.inf,
// hivesys.inf, setupp.ini), never from a file name.
//
// Stage lays out on the target what winnt32 leaves:
//
//	\NTLDR, \NTDETECT.COM            the new system's loader and detector (I386)
//	\$LDR$                           I386\SETUPLDR.BIN, byte for byte
//	\BOOT.INI                        Default=C:\$WIN_NT$.~BT\BOOTSECT.DAT and a setup entry
//	\TXTSETUP.SIF                    the setup directory's txtsetup.sif
//	\$WIN_NT$.~BT\                   dosnet.inf [FloppyFiles.*] (through [Directories]),
//	                                 the loader's text-mode files named by txtsetup.sif,
//	                                 WINNT.SIF, BOOTSECT.DAT, SETUPREG.HIV, TXTSETUP.SIF
//	\$WIN_NT$.~LS\I386 (and \AMD64)  the whole source, compressed files kept compressed
//	\$WIN_NT$.~LS\$OEM$              Options.OEMDir, when given
//
// The target is a FAT32 or NTFS partition of a disk image (raw, VMDK, VHD,
// through package imagefs) or a plain directory. For an image,
// BOOTSECT.DAT is xpboot's FAT32 or NTFS boot sector for that volume (its
// BPB) loading $LDR$ (package imagefs/bootcode), the partition is made the
// active one, and xpboot's MBR and FAT32 or NTFS boot code are installed
// when the disk has other code.
//
// Every check happens before the first write: the media's required files,
// an existing stage (refused unless Options.Force), the unattended answers,
// and the room (the staged files, cluster-rounded, an MFT record each on
// NTFS, plus txtsetup.sif's [DiskSpaceRequirements]). A FAT32 target is
// written through imagefs/fat32, which puts file data into free clusters
// and writes the FAT and directories only when the stage has succeeded; a
// failed stage closes the image without that flush, so its file system is
// as it was. An NTFS target is written through imagefs/ntfs, whose writer
// may write metadata during the stage; every 4 KiB block in use when the
// stage began is saved before its first write and put back when the stage
// fails (undoDevice), so the volume is as it was there too. A directory
// target is built in a temporary directory beside the staged entries and
// moved into place at the end.
//
// Options.Integrate runs driver integration (package integrate) on the
// staged tree in the same run, with the same result as running
// `xpboot integrate` on it afterwards.
package setup
