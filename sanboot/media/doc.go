// Package media writes boot media for PCs whose network card has no PXE
// ROM: a CD image (also a USB stick image) or a 1.44 MB floppy image that
// starts iPXE with an embedded SAN-boot script, so the PC logs into an
// iSCSI target and boots its disk as if it had a network boot ROM.
//
// # Contract
//
//   - [Write] builds the image from files already on the machine, never
//     downloaded: Debian's ipxe.lkrn (package ipxe; the symbolic link
//     /usr/lib/ipxe/ipxe.lkrn is followed), ISOLINUX's isolinux.bin and
//     isohdpfx.bin (package isolinux) and ldlinux.c32 (package
//     syslinux-common). They are copied into the image as files; no code of
//     theirs is linked into xpboot.
//   - The image is an ISO 9660 + Joliet CD made by package iso with an El
//     Torito no-emulation entry for isolinux.bin, patched with a boot
//     information table. isolinux.cfg boots ipxe.lkrn as a Linux kernel
//     with the script as its initrd; iPXE runs an initrd that starts with
//     "#!ipxe" as its script. Sector 0 holds the isohybrid MBR (isohdpfx.bin,
//     the 512-byte sector of isolinux.bin at byte 432, a disk signature and
//     one bootable partition covering the image, padded to whole 1 MiB
//     cylinders of 64 heads × 32 sectors), so the same bytes boot from a CD
//     drive and from a USB stick or hard disk. [ISO] and [USB] give the same
//     image.
//   - [Floppy] is a 1.44 MB FAT12 image (2 heads, 18 sectors per track,
//     [LoaderSectors] reserved sectors, two 9-sector FATs, 224 root
//     entries) holding IPXE.KRN and SANBOOT.IPX in consecutive clusters,
//     marked read-only and system. Its reserved sectors hold xpboot's own
//     loader (floppy.asm, assembled into floppy.bin and embedded; no
//     SYSLINUX): Write fills in the BPB and the loader's parameter block
//     ("XPBL", then the first sector and length of both files), and at
//     boot the loader reads them with INT 13h, copies them into place with
//     INT 15h AH=87h and starts the kernel by the Linux boot protocol with
//     the script as its initrd. Moving the files (defragmenting) would
//     break the floppy; rewriting it with Write is the way to change it.
//   - Every input is read and checked before the first byte is written
//     (the lkrn's Linux boot header, isolinux.bin's isohybrid signature,
//     the script's "#!ipxe" line, the floppy's capacity), and an error
//     names the file and offset.
//     The image goes to a temporary file beside the output, renamed into
//     place when complete: mode 0600 when [Config.Secret] says the script
//     carries credentials, else 0644. A failure leaves nothing behind.
//   - The same inputs give the same bytes: file times are fixed and the
//     MBR's disk signature and the floppy's volume serial number are
//     derived from the contents.
//   - [Result] reports what was written, including iPXE's version from the
//     kernel_version string of the lkrn's boot header. It never contains
//     the script, which may hold CHAP secrets.
//
// The package never prints, never imports network or command code, and
// holds no package-level mutable state.
package media
