// Package bootcode holds xpboot's own x86 boot code, written for xpboot and
// shipped as NASM sources with the binaries assembled from them: a master
// boot record that starts the active partition, and FAT32 and NTFS volume
// boot records that hand over to NTLDR as Windows XP's boot sectors do
// (NTLDR at 2000:0000, DL = boot drive, the BPB at 0:7C00). No Microsoft,
// syslinux, ms-sys or FreeDOS code is used.
//
// # MBR
//
// MBR returns the 440-byte code area of sector 0 and InstallMBR writes it
// into a sector, leaving the disk signature (bytes 440..443), the partition
// table and the 55 AA signature untouched. At boot the code moves itself from
// 0:7C00 to 0:0600, requires exactly one partition entry with boot flag 0x80
// (the others 0x00), reads the partition's first sector to 0:7C00 with INT
// 13h extensions (AH=41h probe, AH=42h read) or, without them, with AH=02h
// and the entry's CHS start, retrying after a disk reset, checks its 55 AA
// and jumps to 0:7C00 with DL = the BIOS boot drive and DS:SI (and DS:BP)
// pointing at the partition entry in the relocated copy (0:07BE + 16·i).
// Errors are printed through INT 10h before the code halts: "Invalid
// partition table" (two active entries or a flag other than 0x00/0x80), "No
// active partition", "Error loading operating system" (the read failed five
// times) and "Missing operating system" (no 55 AA).
//
// # FAT32 boot record
//
// InstallFAT32 writes the FAT32 boot code into an existing, formatted FAT32
// volume. The first stage occupies the boot sector (EB 58 90 at byte 0, code
// at 0x5A..0x1FD, 55 AA at 510); bytes 3..0x59, the BPB and extended BPB
// written by the formatter, are preserved. The second stage goes to reserved
// sector 12 of the volume, where Windows XP also keeps its second FAT32 boot
// sector, and is tagged "XPB2" at bytes 506..509 so stage 1 refuses a sector
// 12 that is not its own. The backup boot sector (BPB field at 0x32, normally
// 6) receives the same first stage and sector BackupBootSector+12 the same
// second stage, so the primary and backup boot sectors stay identical. The
// volume must have at least 13 reserved sectors and the backup copies must
// also lie in the reserved area without overlapping the boot sectors, FSInfo
// or their backups; mkfs.fat's and Windows' layout (32 reserved sectors,
// FSInfo at 1, backup at 6) qualifies.
//
// At boot the code reads the BPB at 0:7C00 (hidden sectors, reserved
// sectors, number and size of FATs, ExtFlags' active FAT, sectors per
// cluster, root cluster), stores the BIOS drive number DL in the BPB's drive
// field (0x40), walks the root directory's cluster chain for the 8.3 entry
// "NTLDR" that is a file (not a directory or volume label; deleted and long
// name entries never match), loads the file's whole cluster chain to
// 2000:0000 and jumps there with DL = the boot drive and the BPB left at
// 0:7C00. Sectors are read one at a time with INT 13h AH=42h, or with AH=02h
// and a CHS address computed from the BPB's sectors per track (0x18) and
// heads (0x1A) when the BIOS lacks the extensions. NTLDR must fit below
// 0x9F000 (at most 0x7F000 = 520,192 bytes). Errors: "Disk error", "Boot
// sector 12 damaged", "NTLDR is missing", "NTLDR is too big".
//
// The boot code finds its volume through the BPB's hidden sectors, so
// InstallFAT32 requires them to equal the volume's start sector. The CHS
// fallback is only right when the BPB's geometry is the one the BIOS
// translates with (INT 13h AH=08h): 255 heads and 63 sectors on large disks,
// but SeaBIOS, for one, reports 16 heads for a disk under 504 MiB.
//
// # NTFS boot record
//
// NTFS returns the 16-sector $Boot template (the BPB area 0x0B..0x53 zero,
// for the formatter to fill) and InstallNTFS writes the code into a
// formatted NTFS volume, keeping its BPB and updating the backup boot
// sector. At boot, stage 1 loads sectors 1..15, stage 2 reads $MFT's record
// 0 (update sequence fixups applied) and through its runlist the root
// directory, walks the $I30 B+tree ($INDEX_ROOT, INDX blocks, $BITMAP) for
// NTLDR comparing ASCII case-insensitively, and loads NTLDR's unnamed
// $DATA (resident, or any number of runs) to 2000:0000. Messages: "Disk
// error", "Boot code damaged", "NTFS not supported", "NTFS damaged", "NTLDR
// is missing", "NTLDR is compressed", "NTLDR is too big". The details, the
// hand-over and the limits (no $ATTRIBUTE_LIST, 512-byte sectors, records
// and index blocks up to 4 KiB, 2^32 sectors) are in docs/bootcode.md.
//
// The binaries are rebuilt with go generate (nasm 2.16); the package tests
// re-assemble the sources when nasm is installed and fail if the embedded
// binaries differ, and boot them in QEMU from disks laid out by sfdisk,
// mkfs.fat and mtools.
package bootcode
