// Package bootcheck tells offline, from a system's registry and files,
// whether Windows 2000/XP/2003 will load its iSCSI boot stack: the boot
// network adapter's miniport, NDIS, TCP/IP, the MS iSCSI initiator
// (iScsiPrt) and sanbootconf, and in which order.
//
// Check reads a tree through imagefs.FS (a directory or a partition of
// a disk image). For an installed system it reads the SYSTEM hive and
// lists the boot drivers the way NTLDR does (research
// setup-stage-installed.md B.1, after ReactOS's freeldr WinLdrScanRegistry):
// the control set \Select\Current names; per group of
// ServiceGroupOrder\List, the Start=0 services of the group in the order
// of the group's GroupOrderList tags, then its untagged ones; last the
// boot drivers whose group is absent from the list. For a staged or
// integrated setup tree it reads txtsetup.sif (the drivers setupldr
// loads: its *.Load sections), setupreg.hiv (their group order) and the
// files of the boot directory.
//
// The Report lists that order and its Findings, each naming the key or
// file at fault: a boot driver whose image is missing, a Start=0 service
// depending on one that is not, a demand-start service bound above a
// boot adapter, no boot adapter for a given hardware ID, TCP/IP or
// iScsiPrt ordered before NDIS or the adapter, no Tcpip interface key for
// the adapter, iScsiPrt or sanbootconf missing, a boot driver in a group
// absent from the list, a static gateway on the boot adapter (the MS
// initiator's route bug, KB960104). An error from Check means the system
// could not be read at all (exit status 3 of xpboot check boot);
// findings are not errors.
package bootcheck
