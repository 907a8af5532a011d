// Package blockdev defines the one block-device abstraction that every part of
// xpboot works on: image conversion, file access inside images, per-client
// overlays and the iSCSI target all read and write a Device, whatever
// container (raw, VMDK, VHD) is behind it.
//
// A Device is a fixed-size virtual disk addressed in bytes. Its capabilities
// are methods every backend implements, never optional interfaces found by
// type assertion: Extents says which ranges hold data (so copies skip
// holes), ReadOnly whether writes are refused, and Discard deallocates a
// range so that it reads as zeros (ErrNotSupported where the backend
// cannot; CanDiscard asks without changing anything). Flush makes every
// completed write durable. This package holds the interface and the
// raw-file backend, which punches holes for Discard; container formats live
// in sibling packages and implement the same interface.
package blockdev
