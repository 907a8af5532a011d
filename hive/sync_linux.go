package hive

import (
	"errors"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// datasync flushes f's data and the metadata needed to read it back
// (fdatasync): a hive's modification time need not reach the disk before
// the next step of a save.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// allocate reserves n bytes of f from off, so that writing them cannot
// fail for lack of space. File systems without fallocate get a plain
// extension.
func allocate(f *os.File, off, n int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return f.Truncate(off + n)
	}
	return err
}

// writeParts writes parts one after another at off, in as few system
// calls as the kernel takes (pwritev, up to 1024 parts a call).
func writeParts(f *os.File, off int64, parts [][]byte) error {
	const iovMax = 1024
	iov := make([]syscall.Iovec, 0, min(len(parts), iovMax))
	for len(parts) > 0 {
		iov = iov[:0]
		for _, p := range parts[:min(len(parts), iovMax)] {
			if len(p) > 0 {
				iov = append(iov, syscall.Iovec{Base: &p[0], Len: uint64(len(p))})
			}
		}
		if len(iov) == 0 {
			return nil
		}
		n, _, errno := syscall.Syscall6(syscall.SYS_PWRITEV, f.Fd(), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), uintptr(off), uintptr(off>>32), 0)
		runtime.KeepAlive(parts)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return &os.PathError{Op: "pwritev", Path: f.Name(), Err: errno}
		}
		if n == 0 {
			return &os.PathError{Op: "pwritev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		// Drop what was written; a short write resumes mid-part.
		off += int64(n)
		for n > 0 {
			if int(n) < len(parts[0]) {
				parts[0] = parts[0][n:]
				n = 0
			} else {
				n -= uintptr(len(parts[0]))
				parts = parts[1:]
			}
		}
		for len(parts) > 0 && len(parts[0]) == 0 {
			parts = parts[1:]
		}
	}
	return nil
}
