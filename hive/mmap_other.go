//go:build !linux

package hive

import "os"

// mapHive is not available here: Edit reads the file instead.
func mapHive(fh *os.File, size, reserve int64) (b []byte, release func(), ok bool) {
	return nil, nil, false
}
