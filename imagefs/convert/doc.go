// Package convert copies a disk image from one container format into
// another (raw, VMDK monolithicSparse / monolithicFlat / streamOptimized,
// VHD dynamic / fixed) and creates empty images of those formats.
//
// Contract:
//
//   - Convert reads any format imagefs.OpenDevice detects (delta and
//     differencing disks are flattened through their parents) and writes
//     the output under a temporary name in the output's directory, renaming
//     it into place only when complete: a failed or cancelled conversion
//     leaves no partial output. An existing output is replaced only with
//     Options.Force, never while another process (xpboot serve) holds its
//     lock, and a warning names the delta disks that replacing it
//     invalidates.
//   - Conversion streams with bounded memory (a few 4 MiB buffers, 2 MiB
//     for raw, flat and fixed outputs, plus the compression queue): the
//     source's extent map is walked once, 1 GiB per Extents call; holes it
//     reports are neither read nor written, and runs of zeros are not
//     written: per 4 KiB for raw, flat and
//     fixed outputs (which stay sparse files), per 64 KiB grain for VMDK
//     sparse and streamOptimized, per 2 MiB block for dynamic VHD.
//   - streamOptimized grains are deflated on all cores (Options.Workers)
//     at qemu's level (zlib default, 6) and written in order.
//   - The virtual size is never silently changed. A size that is not a
//     multiple of 512 is rounded up to one for VMDK and VHD, and a VHD size
//     is rounded up to the next CHS product so that every reader agrees on
//     it; each rounding is reported as a notice (Summary.Notices and the
//     logger), or refused with Options.Exact. Data in the last sector is
//     always kept.
//   - With Options.SkipFree (image capture) only what the file systems
//     use is read: FAT32 through its FAT, NTFS through $Bitmap; free
//     clusters read as zeros and are stored as holes. The MBR, extended
//     boot records, space outside partitions and every partition that is
//     not FAT32 or NTFS, is damaged, or is an NTFS volume not cleanly
//     unmounted are copied whole, each named in Summary.Partitions with
//     the reason. A block device in use is refused (ErrInUse), and a
//     source whose allocation, size or modification time changed during
//     the copy gives ErrSourceChanged and no output, unless
//     Options.ForceShare.
//   - Progress is reported through Options.Progress; the package never
//     prints.
package convert
