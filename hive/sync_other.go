//go:build !linux

package hive

import "os"

// datasync flushes f to stable storage.
func datasync(f *os.File) error { return f.Sync() }

// allocate extends f to off+n bytes.
func allocate(f *os.File, off, n int64) error { return f.Truncate(off + n) }

// writeParts writes parts one after another at off.
func writeParts(f *os.File, off int64, parts [][]byte) error {
	for _, p := range parts {
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}
