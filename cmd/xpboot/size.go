package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseSize reads a size like qemu-img does: plain bytes, or a number with a
// K, M, G or T suffix (optionally followed by "iB" or "B") meaning powers of 1024.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size (examples: 4G, 512M, 1073741824)", s)
	}
	if v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(v * float64(mult)), nil
}

// humanSize renders a byte count with a binary unit (1.5 KiB, 4.0 GiB):
// the one byte formatter of the CLI; convertBytes is a name for it.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// nowLocal is the timestamp for directories created on the command line:
// FAT stores local time.
func nowLocal() time.Time { return time.Now() }
