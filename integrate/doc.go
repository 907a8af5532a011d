// Package integrate makes drivers load in Windows 2000/XP/2003 setup, as
// IntegrateDrv does, from any operating system.
//
// Detect identifies a setup tree (installation media or an nLite folder,
// or a winnt32 /makelocalsource /syspart tree) through the small
// case-insensitive filesystem interface FS, backed by a directory (DirFS)
// or a FAT32 file system inside a disk image (OpenImage). A Plan then
// collects, for each driver package resolved by package drivers
// (AddDriver) or txtsetup.oem disk (AddTextModeDriver), every edit of
// research §9: txtsetup.sif, dosnet.inf and the hive INFs through a
// byte-preserving text editor (Text, which reads lines by the rules of
// internal/inftext, as package drivers does), setupreg.hiv through a
// hive.Editor that the plan also reads back (no copy of its own edits),
// packed INFs through integrate/cab, driver files under their text-mode
// names, the staging tree, and the PE patches (import rename, setup
// loader kernel name, checksums).
//
// Nothing is written until Plan.Commit; every check (layout, required
// files, architecture, hive health, options) happens before, and Commit
// rolls back what it wrote if a write fails. Applying the same
// integration twice changes nothing the second time; Diff and Files
// describe a plan for --dry-run and --json.
package integrate
