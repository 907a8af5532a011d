// Package installed moves an installed Windows 2000/XP/2003 (x86 or
// x64) onto iSCSI offline: it makes the network adapter, TCP/IP, the
// MS iSCSI initiator (iScsiPrt) and sanbootconf boot drivers of the
// system found in a tree, the way sanbootconf's installer, KB314082 and
// virt-v2v do it on a running or offline system (research
// setup-stage-installed.md part B, integratedrv.md §7, §10, §11).
//
// Detect finds the system (the WINDOWS or WINNT directory, version from
// SOFTWARE's CurrentVersion, architecture from ntoskrnl.exe, the control
// sets \Select names) through imagefs.FS: a directory, or a partition
// of a disk image (integrate.OpenVolume: FAT32, and NTFS through the NTFS
// writer). A Plan then collects, for driver packages resolved by package
// drivers, every edit: driver files into system32\drivers (cabinets
// expanded), and in every control set Select names the services (kernel
// drivers Start=0), class instances (an existing one of the same model is
// reused), CriticalDeviceDatabase entries, root-enumerated instances
// (ROOT\iScsiPrt, ROOT\sanbootconf), the network adapter's
// NetCfgInstanceId, Linkage, Tcpip and NetBT bindings and Tcpip
// interface, Start=0 carried through DependOnService and everything
// bound above the adapter, the ServiceGroupOrder moved as sanbootconf's
// installer does (the old list kept as List.pre-sanbootconf),
// DisableDhcpMediaSense, DisablePagingExecutive, crash dumps off, MSiSCSI
// automatic; optionally KB314082 (MergeIDE), DevicePath, and on XP
// SuppressNewHWUI; and for a disk image the boot sector's geometry.
//
// Nothing is written until Commit. Every check (hive health, files,
// space, write access) happens before the first write; Commit first
// writes an undo record under UndoDir at the tree's root, then the files,
// and puts back what it wrote if a write fails. A value already as
// planned is not an edit, so a second run changes nothing and writes
// nothing. Undo restores the files and sectors of the newest record byte
// for byte and removes what the integration created. Diff and Files
// describe a plan for --dry-run and --json.
package installed
