package iscsitarget

import (
	"bytes"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
)

// discardDev is a memDev that can deallocate, as any backend may: the
// target must offer thin provisioning from its Discard method alone.
type discardDev struct {
	memDev
	discarded [][2]int64
}

func (d *discardDev) Discard(off, n int64) error {
	if n > 0 {
		d.discarded = append(d.discarded, [2]int64{off, n})
		clear(d.b[off : off+n])
	}
	return nil
}

// roDev is a memDev whose ReadOnly says so.
type roDev struct{ memDev }

func (*roDev) ReadOnly() bool { return true }

// TestCapabilitiesFromDevice: the logical unit takes write protection and
// thin provisioning from the device's methods, never from its type: a
// device that can Discard gets VPD B2 (LBPU, LBPWS), LBPME and UNMAP, which
// reaches Discard; one that cannot, or a read-only LUN, gets none; a
// read-only device is write-protected whatever the LUN says.
func TestCapabilitiesFromDevice(t *testing.T) {
	thin := &discardDev{memDev: memDev{b: bytes.Repeat([]byte{0xee}, 1<<20)}}
	thinRO := &discardDev{memDev: memDev{b: make([]byte, 1<<20)}}
	plain := &memDev{b: make([]byte, 1<<20)}
	ro := &roDev{memDev{b: make([]byte, 1<<20)}}
	s, err := NewServer(Config{Logger: testLogger(t), Targets: []Target{{Name: testIQN, LUNs: []LUN{
		{Number: 0, Device: thin}, {Number: 1, Device: thinRO, ReadOnly: true}, {Number: 2, Device: plain}, {Number: 3, Device: ro}}}}})
	if err != nil {
		t.Fatal(err)
	}
	tgt := s.targets[testIQN]
	sess := &session{tgt: tgt, nexus: "iqn.2026-01.test:i,i,0x400000000001"}
	cdb := func(b ...byte) []byte { c := make([]byte, 16); copy(c, b); return c }
	for n, want := range []bool{true, false, false, false} {
		l := tgt.lus[uint16(n)]
		r := execSCSI(l, sess, cdb(0x12, 1, 0xb2, 0, 64), nil, 64)
		if got := r.status == statusGood; got != want {
			t.Errorf("LUN %d: VPD B2 status %#x, want thin %v", n, r.status, want)
		} else if want && r.data[5]&0xc0 != 0xc0 {
			t.Errorf("LUN %d: VPD B2 %x lacks LBPU/LBPWS", n, r.data)
		}
		rc := execSCSI(l, sess, cdb(0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32), nil, 32)
		if got := rc.status == statusGood && rc.data[14]&0x80 != 0; got != want {
			t.Errorf("LUN %d: READ CAPACITY(16) LBPME %v, want %v", n, got, want)
		}
	}
	if !tgt.lus[3].writeProtected() || tgt.lus[2].writeProtected() {
		t.Errorf("write protection: read-only device %v, writable device %v", tgt.lus[3].writeProtected(), tgt.lus[2].writeProtected())
	}
	if r := execSCSI(tgt.lus[3], sess, cdb(write10(0, 1)...), make([]byte, 512), 512); r.status != statusCheckCondition {
		t.Error("write to a read-only device accepted")
	} else if key, _ := senseOf(r); key != senseDataProtect {
		t.Errorf("write to a read-only device: sense key %#x, want DATA PROTECT", key)
	}

	// UNMAP of blocks 8..15 on the thin LUN reaches Discard.
	param := make([]byte, 24)
	param[1], param[3] = 22, 16
	param[8+7] = 8  // LBA 8
	param[8+11] = 8 // 8 blocks
	if r := execSCSI(tgt.lus[0], sess, cdb(cmdUnmap, 0, 0, 0, 0, 0, 0, 0, 24, 0), param, 24); r.status != statusGood {
		t.Fatalf("UNMAP: status %#x sense %x", r.status, r.sense)
	}
	if len(thin.discarded) != 1 || thin.discarded[0] != [2]int64{8 * 512, 8 * 512} {
		t.Errorf("Discard calls %v, want one of 4096 bytes at 4096", thin.discarded)
	}
	if len(thinRO.discarded) != 0 {
		t.Errorf("a read-only LUN's device was discarded: %v", thinRO.discarded)
	}
	var _ blockdev.Device = thin
}
