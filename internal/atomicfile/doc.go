// Package atomicfile writes output files that appear under their final
// name complete or not at all, and that leave nothing behind when the
// process dies before they are done.
//
// Create opens an unnamed file in the destination's directory (Linux
// O_TMPFILE): a crash, even kill -9, leaves no name to clean up, and Commit
// gives it its name with linkat(2) and rename(2), after fsync of the file and
// then of the directory. Where the file system has no O_TMPFILE (some
// network and FUSE file systems), the file gets a hidden temporary name,
// ".NAME.xpboot-tmp-PID.START-RANDOM", which records the owner process and
// its start time; Clean (which Create runs on the directory) removes such
// names whose owner is gone, so a later xpboot run in that directory clears
// what a killed one left. Writers that must create their outputs by path
// (VMDK descriptor plus extent, for instance) use TempName for the same
// recognisable names.
//
// The package holds no state; every function is safe for concurrent use
// on distinct files.
package atomicfile
