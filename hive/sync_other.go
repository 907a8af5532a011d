//go:build !linux

package hive

import "os"

// datasync flushes f to stable storage.
func datasync(f *os.File) error { return f.Sync() }

// allocate extends f to off+n bytes.
func allocate(f *os.File, off, n int64) error { return f.Truncate(off + n) }
