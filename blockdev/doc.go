// Package blockdev defines the one block-device abstraction that every part of
// xpboot works on: image conversion, file access inside images and the iSCSI
// target all read and write a Device, whatever container (raw, VMDK, VHD) is
// behind it.
//
// A Device is a fixed-size virtual disk addressed in bytes. Backends report
// which ranges hold data so that copies can skip holes; Flush makes every
// completed write durable. This package holds the interface and the raw-file
// backend; container formats live in sibling packages and implement the same
// interface.
package blockdev
