package peertest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a test would end.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestMissingPeerPolicy(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			NeedFile(r, "/nonexistent/pxe-e1000.rom", "ipxe-qemu")
			Need(r, "no-such-program-xpboot", "nothing")
			if ci == "true" {
				if r.failed == "" || r.skipped != "" {
					t.Errorf("under CI a missing peer must fail: failed %q, skipped %q", r.failed, r.skipped)
				}
			} else if r.skipped == "" || r.failed != "" {
				t.Errorf("without CI a missing peer must skip: failed %q, skipped %q", r.failed, r.skipped)
			}
			if msg := r.failed + r.skipped; msg == "" || !strings.Contains(msg, "Debian package") {
				t.Errorf("message %q does not name the Debian package", msg)
			}
			r = &recorder{TB: t}
			if p := NeedFile(r, "peertest.go", "x"); p != "peertest.go" || r.failed+r.skipped != "" {
				t.Errorf("present file: %q %q %q", p, r.failed, r.skipped)
			}
		})
	}
}
