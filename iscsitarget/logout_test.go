package iscsitarget

import (
	"testing"
	"time"
)

// TestLogoutWithDataOutPending: a Logout while a WRITE still waits for
// its Data-Out is answered at once. The reader that would take the data
// is the one handling the Logout, so the WRITE can never complete: it is
// ended, not waited for (it held the connection for 30 s, and a server
// shutdown for its whole deadline).
func TestLogoutWithDataOutPending(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	_, addr := startServer(t, simpleConfig(d))
	ti, err := dialFrom(t, addr, "127.0.0.1", libiscsiISID(1))
	if err != nil {
		t.Fatal(err)
	}
	if st := ti.loginAs("iqn.2026-01.test:logout", 1); st != 0 {
		t.Fatalf("login: 0x%04x", st)
	}
	ti.command(write10(0, 8), false, true, 4096, nil) // its R2T is never answered
	if r := ti.read(); r.opcode() != opR2T {
		t.Fatalf("opcode 0x%02x, want an R2T", r.opcode())
	}
	lo := &pdu{}
	lo.bhs[0] = 0x40 | opLogoutReq
	lo.bhs[1] = 0x80
	lo.put32(16, 999)
	lo.put32(24, ti.cmdSN)
	start := time.Now()
	ti.write(lo)
	if r := ti.read(); r.opcode() != opLogoutResp || r.bhs[2] != 0 {
		t.Fatalf("logout: opcode 0x%02x response %d", r.opcode(), r.bhs[2])
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("logout answered after %v", took)
	}
}
