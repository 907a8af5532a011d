package bootcode

import "testing"

// The NTFS boot tests live in package bootcode_test because they fill
// volumes with imagefs/ntfs, which imports this package for the formatter;
// these wrappers give them the QEMU and nasm helpers of the internal tests.

// DebugExitOK is QEMU's exit status after the stand-in NTLDR reports.
const DebugExitOK = debugExitOK

// BootQEMU boots disk in QEMU (see boot) and returns the serial output and
// QEMU's exit status (-1 when the run was stopped because until appeared).
func BootQEMU(t *testing.T, disk, optionROM, until string) (serial string, exit int) {
	t.Helper()
	r := boot(t, qemuRun{disk: disk, optionROM: optionROM, until: until})
	return r.serial, r.exit
}

// Assemble runs nasm on src, relative to the package directory.
func Assemble(t *testing.T, nasm, src string) []byte {
	t.Helper()
	return assemble(t, nasm, src)
}

// NoExtROM returns the path of the option ROM that hides INT 13h
// extensions from the boot code.
func NoExtROM(t *testing.T) string {
	t.Helper()
	return noExtROM(t)
}
