// Package mbr reads and writes the master boot record of a PC disk: boot
// code, the disk signature Windows keys its drive letters on, and the four
// primary partition entries with their CHS and LBA fields.
//
// Layout computes the partition XP setup and NTLDR expect: one active primary
// partition starting at LBA 63 (or 2048) on a 255-head, 63-sector geometry and
// ending on a cylinder boundary, with CHS fields that match its LBA fields.
package mbr
