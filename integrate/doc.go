// Package integrate makes drivers load in Windows 2000/XP/2003 setup, as
// IntegrateDrv does, from any operating system.
//
// Detect identifies a setup tree (installation media or an nLite folder,
// or a winnt32 /makelocalsource /syspart tree) through imagefs.FS, the
// one file-system interface of xpboot: a host directory (DirFS), a
// directory of a FAT32 or NTFS partition of a disk image (OpenImage,
// OpenVolume; ImageFS adds the image's lifecycle and boot sector), or any
// other backend such as setup's read-only ISO view. Names are matched
// case-insensitively; whole small files are read and written with
// imagefs.ReadFile and imagefs.WriteBytes.
//
// A Plan then collects, for each driver package resolved by package
// drivers (AddDriver) or txtsetup.oem disk (AddTextModeDriver), every
// edit of research §9. The work is split among four planners, each
// owning one kind of output and the methods that plan it, while Plan only
// orders their steps and writes the result:
//
//   - the text planner (textplan.go): txtsetup.sif, dosnet.inf and the
//     hive INFs through a byte-preserving text editor (Text, which reads
//     lines by the rules of internal/inftext, as package drivers does):
//     GUI-mode staging entries, text-mode loading, critical devices;
//   - the hive planner (setupreg.go, setupreg_device.go,
//     setupreg_finish.go, hivesys.go): the registry setup starts with,
//     setupreg.hiv through a hive.Editor that the plan also reads back (no
//     copy of its own edits), and the same values as hivesys.inf AddReg
//     lines: services, class instances, Enum keys, network adapters and
//     TCP/IP;
//   - the copy planner (outputs.go, textfiles.go, copies.go, loader.go):
//     every whole file the plan writes, driver files under their text-mode
//     names, the staging tree, the PE patches (import rename, setup
//     loader kernel name, checksums);
//   - the INF planner (packed.go, packed_infs.go, packed_inbox.go): the
//     setup directory's own INFs, packed through integrate/cab or plain.
//
// txtsetup.oem drivers (textmode.go) take one step of each planner.
//
// Nothing is written until Plan.Commit (commit.go); every check (layout,
// required files, architecture, hive health, options, imagefs.CheckWritable,
// free space) happens before, and Commit rolls back what it wrote if a
// write fails. Applying the same integration twice changes nothing the
// second time; Diff and Files describe a plan for --dry-run and --json.
package integrate
