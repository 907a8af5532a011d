// Package fsid names the file system of a volume from its boot sector.
//
// It is the one place where xpboot decides whether a partition holds FAT32,
// NTFS or something it does not read: imagefs (Image.Detect and Image.FS),
// convert's capture planner, resize, check and integrate/installed all ask
// Detect. The rules:
//
//   - a sector of zeros is None (not formatted);
//   - the OEM id "NTFS    " at byte 3 is NTFS, and "EXFAT   " exFAT (the
//     exFAT specification fixes that name; the NTFS boot code and every
//     NTFS driver look at the same field);
//   - a BPB that fat32.ParseBootSector accepts is FAT32; a sector whose
//     file-system type at 0x52 says "FAT32   " but whose BPB fat32 refuses
//     is a damaged FAT32 volume (Kind FAT32 with an error wrapping
//     ErrDamaged and fat32's FormatError, which names the field);
//   - any other FAT BPB is FAT12 or FAT16 by its cluster count (the FAT
//     specification decides the FAT type by that count alone, and Windows
//     reads a volume with fewer than 65,525 clusters as FAT12/16);
//   - anything else is Unknown, named by its OEM id in the error.
//
// Detect reads only the bytes it is given and never fails on content: the
// error says why xpboot cannot open the volume as a FAT32 or NTFS file
// system, and is nil exactly when it can try. Validating the rest of an
// NTFS boot sector is left to package ntfs, which opens the volume next.
//
// The package depends only on imagefs/fat32 (for the one FAT32 BPB
// validation) and the standard library, so every package that needs the
// answer, including imagefs itself, imports it without a cycle.
package fsid
