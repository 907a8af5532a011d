// Package integrate makes drivers load in Windows 2000/XP/2003 setup, as
// IntegrateDrv does, from any operating system.
//
// This first slice covers:
//
//   - finding and identifying a setup tree (Detect): a winnt32
//     /makelocalsource /syspart tree, installation media or an nLite work
//     folder, through the small case-insensitive filesystem interface FS
//     (DirFS is the directory backend);
//   - a byte-preserving editor for INI-shaped text files (Text: sif, INF,
//     dosnet.inf) that keeps encoding, line endings, comments and case,
//     and a line diff (Diff) for dry runs;
//   - the txtsetup.sif and dosnet.inf edits that make one PnP driver load
//     in text-mode setup (Plan, Edit), computed from the install plan of
//     package drivers.
//
// Nothing is written until Plan.Commit; every check (layout, required
// files, architecture) happens before. Applying the same plan twice
// changes nothing the second time.
package integrate
