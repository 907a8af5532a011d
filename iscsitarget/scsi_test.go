package iscsitarget

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/xpboot/xpboot/imagefs/blockdev"
)

// memDev is an in-memory blockdev.Device that counts flushes.
type memDev struct {
	mu      sync.Mutex
	b       []byte
	flushes int
}

func (m *memDev) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("read", off, len(p), int64(len(m.b))); err != nil {
		return 0, err
	}
	return copy(p, m.b[off:]), nil
}
func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("write", off, len(p), int64(len(m.b))); err != nil {
		return 0, err
	}
	return copy(m.b[off:], p), nil
}
func (m *memDev) Size() int64 { return int64(len(m.b)) }
func (m *memDev) Flush() error {
	m.mu.Lock()
	m.flushes++
	m.mu.Unlock()
	return nil
}
func (m *memDev) Close() error { return nil }
func (m *memDev) Extents(off, n int64) ([]blockdev.Extent, error) {
	return []blockdev.Extent{{Off: off, Len: n, State: blockdev.Data}}, nil
}

func senseOf(r *scsiResult) (byte, uint16) {
	if len(r.sense) < 14 {
		return 0, 0
	}
	return r.sense[2] & 0x0f, uint16(r.sense[12])<<8 | uint16(r.sense[13])
}

func testLUs(t *testing.T) (*Server, *session, *memDev, *memDev) {
	rw, ro := &memDev{b: make([]byte, 1<<20)}, &memDev{b: make([]byte, 1<<20)}
	s, err := NewServer(Config{Logger: testLogger(t), Targets: []Target{{Name: testIQN, LUNs: []LUN{
		{Number: 0, Device: rw}, {Number: 1, Device: ro, ReadOnly: true}}}}})
	if err != nil {
		t.Fatal(err)
	}
	tgt := s.targets[testIQN]
	return s, &session{tgt: tgt, nexus: "iqn.2026-01.test:i,i,0x400000000001"}, rw, ro
}

func TestSCSICommands(t *testing.T) {
	s, sess, rw, _ := testLUs(t)
	tgt := s.targets[testIQN]
	l0, l1 := tgt.lus[0], tgt.lus[1]
	cdb16 := func(b ...byte) []byte { c := make([]byte, 16); copy(c, b); return c }
	cases := []struct {
		name  string
		lu    *lu
		cdb   []byte
		out   []byte
		key   byte
		asc   uint16
		check func(t *testing.T, r *scsiResult)
	}{
		{"unknown opcode", l0, cdb16(0xc0), nil, senseIllegalRequest, ascInvalidOpcode, nil},
		{"read past the end", l0, cdb16(read10(2047, 2)...), nil, senseIllegalRequest, ascLBAOutOfRange, nil},
		{"read-only write", l1, cdb16(write10(0, 1)...), make([]byte, 512), senseDataProtect, ascWriteProtected, nil},
		{"absent LUN", nil, cdb16(0x00), nil, senseIllegalRequest, ascLUNotSupported, nil},
		{"absent LUN INQUIRY", nil, cdb16(0x12, 0, 0, 0, 96), nil, 0, 0, func(t *testing.T, r *scsiResult) {
			if r.data[0] != 0x7f {
				t.Errorf("peripheral byte 0x%02x, want 0x7f", r.data[0])
			}
		}},
		{"MODE SENSE WP on read-only", l1, cdb16(0x1a, 0, 0x3f, 0, 255), nil, 0, 0, func(t *testing.T, r *scsiResult) {
			if r.data[2]&0x80 == 0 {
				t.Errorf("WP not set: % x", r.data[:4])
			}
		}},
		{"MODE SENSE caching page", l0, cdb16(0x1a, 0x08, 0x08, 0, 255), nil, 0, 0, func(t *testing.T, r *scsiResult) {
			if r.data[2]&0x80 != 0 || len(r.data) != 4+20 || r.data[4] != 0x08 || r.data[6]&0x04 == 0 {
				t.Errorf("caching page: % x", r.data)
			}
		}},
		{"READ CAPACITY(16)", l0, cdb16(0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32), nil, 0, 0, func(t *testing.T, r *scsiResult) {
			if binary.BigEndian.Uint64(r.data) != 2047 || binary.BigEndian.Uint32(r.data[8:]) != 512 {
				t.Errorf("READ CAPACITY(16): % x", r.data)
			}
		}},
		{"REPORT LUNS", l0, cdb16(0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0), nil, 0, 0, func(t *testing.T, r *scsiResult) {
			if !bytes.Equal(r.data, []byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}) {
				t.Errorf("REPORT LUNS: % x", r.data)
			}
		}},
		{"VPD 0x83 NAA", l0, cdb16(0x12, 1, 0x83, 0, 255), nil, 0, 0, func(t *testing.T, r *scsiResult) {
			if r.data[4] != 0x01 || r.data[5] != 0x03 || r.data[8]>>4 != 3 {
				t.Errorf("first designator is not NAA: % x", r.data[:16])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := execSCSI(tc.lu, sess, tc.cdb, tc.out, len(tc.out))
			defer r.release()
			key, asc := senseOf(r)
			if tc.key != 0 {
				if r.status != statusCheckCondition || key != tc.key || asc != tc.asc {
					t.Fatalf("status %d sense %x/%04x, want CHECK CONDITION %x/%04x", r.status, key, asc, tc.key, tc.asc)
				}
				return
			}
			if r.status != statusGood {
				t.Fatalf("status %d sense %x/%04x", r.status, key, asc)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	// NAA designators differ between LUs.
	a := execSCSI(l0, sess, cdb16(0x12, 1, 0x83, 0, 255), nil, 255)
	b := execSCSI(l1, sess, cdb16(0x12, 1, 0x83, 0, 255), nil, 255)
	if bytes.Equal(a.data[8:16], b.data[8:16]) {
		t.Error("two LUs share an NAA identifier")
	}
	// SYNCHRONIZE CACHE and FUA writes reach Flush before the status.
	before := rw.flushes
	execSCSI(l0, sess, cdb16(0x35), nil, 0)
	w := cdb16(write10(0, 1)...)
	w[1] |= 0x08 // FUA
	execSCSI(l0, sess, w, make([]byte, 512), 512)
	execSCSI(l0, sess, cdb16(write10(0, 1)...), make([]byte, 512), 512) // no FUA
	if got := rw.flushes - before; got != 2 {
		t.Errorf("%d flushes for SYNCHRONIZE CACHE + FUA write + plain write, want 2", got)
	}
}

// TestReservations: SPC-2 RESERVE blocks another nexus; persistent
// reservations follow their type.
func TestReservations(t *testing.T) {
	s, a, _, _ := testLUs(t)
	l := s.targets[testIQN].lus[0]
	b := &session{tgt: a.tgt, nexus: "iqn.2026-01.test:other,i,0x400000000002"}
	cdb := func(x ...byte) []byte { c := make([]byte, 16); copy(c, x); return c }
	if r := execSCSI(l, a, cdb(0x16), nil, 0); r.status != statusGood {
		t.Fatalf("RESERVE(6): %d", r.status)
	}
	if r := execSCSI(l, b, cdb(read10(0, 1)...), nil, 512); r.status != statusReservationConflict {
		t.Fatalf("READ by another nexus under RESERVE: status %d", r.status)
	}
	if r := execSCSI(l, b, cdb(0x12, 0, 0, 0, 36), nil, 36); r.status != statusGood {
		t.Fatalf("INQUIRY must pass a reservation: status %d", r.status)
	}
	execSCSI(l, a, cdb(0x17), nil, 0)
	param := func(key, sakey uint64) []byte {
		p := make([]byte, 24)
		binary.BigEndian.PutUint64(p, key)
		binary.BigEndian.PutUint64(p[8:], sakey)
		return p
	}
	prOut := func(sess *session, sa, typ byte, key, sakey uint64) byte {
		c := cdb(0x5f, sa, typ, 0, 0, 0, 0, 0, 24)
		return execSCSI(l, sess, c, param(key, sakey), 24).status
	}
	if st := prOut(a, 0, 0, 0, 0xa); st != statusGood {
		t.Fatalf("REGISTER: %d", st)
	}
	if st := prOut(a, 1, prWE, 0xa, 0); st != statusGood {
		t.Fatalf("RESERVE WE: %d", st)
	}
	if r := execSCSI(l, b, cdb(write10(0, 1)...), make([]byte, 512), 512); r.status != statusReservationConflict {
		t.Fatalf("WRITE by a non-holder under WE: %d", r.status)
	}
	if r := execSCSI(l, b, cdb(read10(0, 1)...), nil, 512); r.status != statusGood {
		t.Fatalf("READ by a non-holder under WE: %d", r.status)
	}
	if st := prOut(b, 0, 0, 0, 0xb); st != statusGood {
		t.Fatalf("REGISTER b: %d", st)
	}
	if st := prOut(b, 4, prEA, 0xb, 0xa); st != statusGood {
		t.Fatalf("PREEMPT: %d", st)
	}
	if r := execSCSI(l, a, cdb(read10(0, 1)...), nil, 512); r.status != statusReservationConflict {
		t.Fatalf("READ by the preempted nexus under EA: %d", r.status)
	}
	keys := execSCSI(l, a, cdb(0x5e, 0, 0, 0, 0, 0, 0, 1, 0), nil, 256)
	if n := binary.BigEndian.Uint32(keys.data[4:]); n != 8 {
		t.Fatalf("READ KEYS lists %d bytes of keys, want one key", n)
	}
}
