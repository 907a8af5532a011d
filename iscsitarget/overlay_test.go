package iscsitarget

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
)

// closeCounter counts Close calls of a per-initiator device.
type closeCounter struct {
	blockdev.Device
	closed *atomic.Int32
}

func (c closeCounter) Close() error { c.closed.Add(1); return c.Device.Close() }

// loginAs logs in as initiator name with the given ISID (iPXE's keys).
func (ti *testInit) loginAs(name string, isid byte) uint16 {
	ti.t.Helper()
	ti.isid[5] = isid
	r := ti.login(true, stageSecurity, stageOperational, textOf("InitiatorName="+name, "TargetName="+testIQN, "SessionType=Normal", "AuthMethod=None"))
	if s := loginStatus(r); s != 0 {
		return s
	}
	r = ti.login(true, stageOperational, stageFull, textOf(ipxeOpKeys...))
	if s := loginStatus(r); s != 0 {
		return s
	}
	ti.tsih = binary.BigEndian.Uint16(r.bhs[14:])
	ti.cmdSN = r.u32(28)
	return 0
}

func (ti *testInit) writeBlock(lba uint32, b []byte) {
	ti.t.Helper()
	if res := ti.await(ti.command(write10(lba, 1), false, true, 512, nil), b); res.status != 0 {
		ti.t.Fatalf("WRITE(10) status 0x%02x sense %x", res.status, res.sense)
	}
}

func (ti *testInit) readBlock(lba uint32) []byte {
	ti.t.Helper()
	res := ti.await(ti.command(read10(lba, 1), true, false, 512, nil), nil)
	if res.status != 0 {
		ti.t.Fatalf("READ(10) status 0x%02x sense %x", res.status, res.sense)
	}
	return res.data
}

// TestPerInitiatorDevice gives LUN 0 a per-initiator device (LUN.Open) and
// LUN 1 a shared static one: two initiators writing the same LBA of LUN 0
// each read their own data, a second session of the same initiator shares
// its device (Open called once), both see the shared LUN 1, the device is
// closed when the initiator's last session ends, and a failing Open fails
// the login with Target Error.
func TestPerInitiatorDevice(t *testing.T) {
	shared, _ := newImage(t, 1<<20)
	var mu sync.Mutex
	opened := map[string]int{}
	var closed atomic.Int32
	cfg := Config{Targets: []Target{{Name: testIQN, LUNs: []LUN{
		{Number: 0, Open: func(meta ConnMeta) (blockdev.Device, error) {
			if strings.HasSuffix(meta.InitiatorName, ":bad") {
				return nil, errors.New("no overlay for you")
			}
			if strings.HasSuffix(meta.InitiatorName, ":ro") {
				return roDevice{shared}, nil
			}
			if meta.TargetName != testIQN || meta.SessionType != "Normal" {
				t.Errorf("Open meta %+v", meta)
			}
			mu.Lock()
			opened[meta.InitiatorName]++
			mu.Unlock()
			d, _ := newImage(t, 2<<20)
			return closeCounter{d, &closed}, nil
		}},
		{Number: 1, Device: shared},
	}}}}
	cfg.Logger = testLogger(t)
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := pipeServer(t, srv)
	b := pipeServer(t, srv)
	a2 := pipeServer(t, srv)
	if s := a.loginAs("iqn.2026-01.org.xpboot:pc-a", 1); s != 0 {
		t.Fatalf("login a: 0x%04x", s)
	}
	if s := b.loginAs("iqn.2026-01.org.xpboot:pc-b", 1); s != 0 {
		t.Fatalf("login b: 0x%04x", s)
	}
	if s := a2.loginAs("iqn.2026-01.org.xpboot:PC-A", 2); s != 0 {
		t.Fatalf("login a2: 0x%04x", s)
	}
	da := bytes.Repeat([]byte{0xaa}, 512)
	db := bytes.Repeat([]byte{0xbb}, 512)
	a.writeBlock(7, da)
	b.writeBlock(7, db)
	equalBytes(t, "a reads LBA 7", a.readBlock(7), da)
	equalBytes(t, "b reads LBA 7", b.readBlock(7), db)
	equalBytes(t, "a's second session reads LBA 7", a2.readBlock(7), da)
	// READ CAPACITY(10) reports the per-initiator device's size.
	res := a.await(a.command([]byte{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, true, false, 8, nil), nil)
	if res.status != 0 || binary.BigEndian.Uint32(res.data) != 2<<20/512-1 {
		t.Fatalf("READ CAPACITY: status %d data %x", res.status, res.data)
	}
	// Shared LUN 1: both see the one static device.
	d1 := bytes.Repeat([]byte{0x11}, 512)
	if _, err := shared.WriteAt(d1, 3*512); err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "a reads shared LUN 1", a.readLUN(1, 3), d1)
	equalBytes(t, "b reads shared LUN 1", b.readLUN(1, 3), d1)
	mu.Lock()
	if len(opened) != 2 || opened["iqn.2026-01.org.xpboot:pc-a"] != 1 || opened["iqn.2026-01.org.xpboot:pc-b"] != 1 {
		t.Errorf("Open calls %v, want one per initiator", opened)
	}
	mu.Unlock()

	// a's first session ends: the device stays open for a2.
	a.c.Close()
	time.Sleep(200 * time.Millisecond)
	if n := closed.Load(); n != 0 {
		t.Fatalf("%d devices closed while sessions remain", n)
	}
	equalBytes(t, "a2 after a ended", a2.readBlock(7), da)
	a2.c.Close()
	b.c.Close()
	for deadline := time.Now().Add(5 * time.Second); closed.Load() != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d devices closed after all sessions ended, want 2", closed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A device that says ReadOnly() is served write-protected, and its
	// Close is the device's business (roDevice ignores it).
	ro := pipeServer(t, srv)
	if s := ro.loginAs("iqn.2026-01.org.xpboot:ro", 1); s != 0 {
		t.Fatalf("login ro: 0x%04x", s)
	}
	res = ro.await(ro.command(write10(1, 1), false, true, 512, nil), da)
	if res.status != 2 || len(res.sense) < 3 || res.sense[2]&0x0f != 7 {
		t.Errorf("WRITE to a read-only per-initiator device: status %d sense %x, want CHECK CONDITION / DATA PROTECT", res.status, res.sense)
	}
	equalBytes(t, "ro reads LBA 3", ro.readBlock(3), d1)
	// A failing Open fails the login.
	bad := pipeServer(t, srv)
	if s := bad.loginAs("iqn.2026-01.org.xpboot:bad", 1); s != statusTargetError {
		t.Errorf("login with a failing Open: status 0x%04x, want 0x%04x", s, statusTargetError)
	}
}

type roDevice struct{ blockdev.Device }

func (roDevice) ReadOnly() bool { return true }
func (roDevice) Close() error   { return nil }

// readLUN reads one block of LUN lun.
func (ti *testInit) readLUN(lun uint16, lba uint32) []byte {
	ti.t.Helper()
	ti.itt++
	p := &pdu{}
	p.bhs[0] = opSCSICmd
	p.bhs[1] = 0x80 | 0x40 | 0x01
	f := encodeLUN(lun)
	copy(p.bhs[8:16], f[:])
	p.put32(16, ti.itt)
	p.put32(20, 512)
	p.put32(24, ti.cmdSN)
	p.put32(28, ti.expStatSN)
	copy(p.bhs[32:], read10(lba, 1))
	ti.cmdSN++
	ti.write(p)
	res := ti.await(ti.itt, nil)
	if res.status != 0 {
		ti.t.Fatalf("READ(10) LUN %d status 0x%02x sense %x", lun, res.status, res.sense)
	}
	return res.data
}
