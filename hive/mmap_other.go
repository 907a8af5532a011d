//go:build !linux

package hive

import "os"

// mapHive is not available here: Edit reads the file instead.
func mapHive(fh *os.File, size, reserve int64) (b []byte, release func(), ok bool) {
	return nil, nil, false
}

// heapBytes returns n zero bytes (huge pages are a Linux hint).
func heapBytes(n int) []byte { return make([]byte, n) }
