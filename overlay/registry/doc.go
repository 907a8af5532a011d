// Package registry is the part of package overlay that package imagefs
// needs to refuse writes into a base with overlays: the registry file
// beside a base that lists its overlay directories (Dirs, Register), and
// the scan that finds the VMDK deltas depending on a base (Deltas). It
// imports no other xpboot package but imagefs/vmdk and internal/atomicfile,
// so that imagefs can use it while package overlay builds on imagefs.
package registry
