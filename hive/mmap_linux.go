package hive

import (
	"os"
	"syscall"
	"unsafe"
)

// mapHive maps the size bytes of fh copy-on-write (MAP_PRIVATE): pages
// are read from the page cache only when touched, and changes stay in
// this process until Save writes them. The mapping is reserve bytes
// longer than the file, as anonymous zero pages, so that bins can be
// appended without copying the hive. release unmaps it; the slice must
// not be used after that. A file that another program truncates while it
// is mapped makes reads past its new end fault, so Edit's callers must not
// share a hive they edit with a program that shrinks it.
func mapHive(fh *os.File, size, reserve int64) (b []byte, release func(), ok bool) {
	total := size + reserve
	if size <= 0 || total > 1<<40 {
		return nil, nil, false
	}
	region, err := syscall.Mmap(-1, 0, int(total), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, nil, false
	}
	addr := uintptr(unsafe.Pointer(&region[0]))
	// Mapped read-only and populated in one go (page tables filled from
	// the page cache, instead of one fault per bin header touched), then
	// made writable: a write still copies just its page.
	_, _, errno := syscall.Syscall6(syscall.SYS_MMAP, addr, uintptr(size), syscall.PROT_READ,
		syscall.MAP_PRIVATE|syscall.MAP_FIXED|syscall.MAP_POPULATE, fh.Fd(), 0)
	if errno == 0 {
		errno = mprotect(region[:size], syscall.PROT_READ|syscall.PROT_WRITE)
	}
	if errno != 0 {
		syscall.Munmap(region)
		return nil, nil, false
	}
	return region[:size], func() { syscall.Munmap(region) }, true
}

func mprotect(b []byte, prot int) syscall.Errno {
	if err := syscall.Mprotect(b, prot); err != nil {
		return err.(syscall.Errno)
	}
	return 0
}
