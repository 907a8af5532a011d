// Package ntfstest is the independent proof around xpboot's NTFS writer: it
// builds NTFS disk images with the reference implementation (mkntfs and an
// ntfs-3g FUSE mount) and checks images written by xpboot with every other
// NTFS implementation Linux has. It is imported by _test files only and
// never by the binary; the peers are GPL programs run at arm's length.
//
// # Fixtures
//
// Build(t, name) returns a private copy of a named fixture (FixtureBasic,
// FixtureBigDir, FixtureXP, FixtureMFTFull, FixtureFull, FixtureDirty,
// FixtureHibernated, FixtureUncleanLog): a raw disk image with an MBR and one
// NTFS partition at LBA 63 (255 heads, 63 sectors per track), made by
// `mkntfs -F -f -p 63 -H 255 -S 63` and populated through ntfs-3g, plus the
// Tree it holds. A fixture is built once per test binary run when the test
// package's TestMain calls Main (the cache is the one piece of package-level
// state: a test binary is one process and rebuilding a 1,500-file tree for
// every test would cost minutes); without Main each call builds its own.
// BuildVolume returns the same content as a bare volume (offset 0).
//
// # Checkers
//
// Check(t, image, offset, want) runs every checker on the NTFS volume that
// starts at byte offset of image and fails the test with a readable diff
// for each checker that disagrees with want:
//
//   - ntfsfix -n: $MFT/$MFTMirr, boot sector and its backup, $UpCase.
//   - ntfsinfo -m: the $Volume flags are 0 (not dirty).
//   - ntfs-3g read-only mount: lists exactly want, with the same bytes.
//   - ntfs-3g read-write mount with norecover: mounts, so $LogFile is clean
//     and no live hiberfil.sys exists; unmounts cleanly (on a copy).
//   - Sleuth Kit: fls -r -p -u lists the same paths and kinds, tsk_recover
//     -a extracts every file with the same bytes, and icat returns the same
//     bytes for a sample spread over the tree (XPBOOT_NTFS_ICAT_MAX files,
//     default 8: icat parses the whole volume anew for every file, about
//     0.4 s on a 2,000-entry volume).
//   - libfsntfs: fsntfsinfo parses the volume, -H lists the same paths and
//     -E all parses every MFT entry.
//   - go-ntfs (www.velocidex.com/golang/go-ntfs) walks the tree and reads
//     every file.
//
// Checkers returns them one by one, so a test can prove that each fails on
// a deliberately corrupted image.
//
// A Tree maps a "/"-separated path relative to the root (exact case) to Dir
// or to the hex SHA-256 of the file's bytes. NTFS metadata files ($MFT …,
// $Extend) are not part of a Tree. Snapshot reads a Tree from an ntfs-3g
// mount; Twin applies the same operations through an ntfs-3g mount to a copy
// of an image, so a test can compare xpboot's result with the reference
// writer's; Tree.Apply is the in-memory model of the same operations.
//
// # Mounts
//
// Every ntfs-3g mount runs in a private mount namespace of its own process
// (unshare --mount --propagation private, with a parent-death signal), and
// the tests reach it through /proc/PID/root. No mount is ever visible on the
// host, and one cannot outlive the test binary even when a test times out
// and t.Cleanup never runs. Mount.Unmount stops ntfs-3g with SIGTERM and
// waits until it has closed the volume. Temporary images live under t.TempDir
// or the cache directory that Main removes.
//
// Everything needs root (FUSE and unshare) and the Debian packages ntfs-3g,
// fuse3, sleuthkit, libfsntfs-utils and util-linux; a missing one skips the
// test, or fails it when CI=true (internal/peertest).
//
// This package imports neither imagefs nor imagefs/ntfs, so the writer's
// own tests may import it without an import cycle.
package ntfstest
