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
// what a killed one left.
//
// Writers that must create their outputs by path (the VHD and VMDK
// writers, a flat VMDK's descriptor and extent) use CreateNamed: a
// recognisable temporary name from TempName, and Named.Commit with the
// same steps as File.Commit (fsync of the file, the replaced file's mode,
// rename, fsync of the directory). Named.CommitNoSync leaves out the
// fsyncs for outputs whose user asked for speed (convert without --sync);
// Named.CommitNew links instead of renaming and so never replaces a name
// (VMDK delta disks). A set of files is committed one by one, data files
// first and the file that names them last.
//
// Every output file of xpboot goes through this package. What stays
// outside it on purpose: scratch files that are never outputs (spools in
// the temporary directory, unlinked at once or removed on return), and
// renames of whole directory trees (imagefs.Get, setup's staged tree),
// which are not files and cannot be linked or fsynced as one.
//
// The package holds no state; every function is safe for concurrent use
// on distinct files.
package atomicfile
