package iscsitarget

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestPipelinedWrites sends a window of solicited writes at once, the way
// QEMU's libiscsi does at queue depth 32: R2Ts and responses are queued by
// the reader and sent together, small writes run on the reader, FUA writes
// on a worker. Every write must be answered once, in StatSN order, with the
// data on the device; a bad DataSN must still end the connection.
func TestPipelinedWrites(t *testing.T) {
	d, _ := newImage(t, 4<<20)
	_, addr := startServer(t, simpleConfig(d))
	ti := tcpInit(t, addr, 1)
	ti.loginNone(testIQN, "HeaderDigest=None", "DataDigest=None", "InitialR2T=Yes",
		"ImmediateData=No", "MaxRecvDataSegmentLength=262144", "MaxOutstandingR2T=1")

	const n = 32
	const size = 8192 // two 4 KiB Data-Out PDUs per write
	want := make([][]byte, n)
	var burst []byte
	itts := map[uint32]int{}
	for i := range n {
		want[i] = bytes.Repeat([]byte{byte(i + 1)}, size)
		cdb := write10(uint32(i*size/512), size/512)
		if i%8 == 7 {
			cdb[1] |= 0x08 // FUA: flushed, so run by a worker goroutine
		}
		ti.itt++
		p := &pdu{}
		p.bhs[0] = opSCSICmd
		p.bhs[1] = 0x80 | 0x20 | 0x01
		p.put32(16, ti.itt)
		p.put32(20, size)
		p.put32(24, ti.cmdSN)
		p.put32(28, ti.expStatSN)
		copy(p.bhs[32:], cdb)
		ti.cmdSN++
		itts[ti.itt] = i
		burst = appendPDU(burst, p, false, false)
	}
	if _, err := ti.c.Write(burst); err != nil {
		t.Fatal(err)
	}
	// All R2Ts first: no Data-Out has been sent yet.
	var data []byte
	for range n {
		p := ti.read()
		if p.opcode() != opR2T {
			t.Fatalf("opcode 0x%02x, want R2T", p.opcode())
		}
		i, ok := itts[p.itt()]
		if !ok || p.u32(40) != 0 || p.u32(44) != size {
			t.Fatalf("R2T ITT %x offset %d length %d", p.itt(), p.u32(40), p.u32(44))
		}
		for sn := range uint32(2) {
			d := &pdu{data: want[i][sn*4096 : (sn+1)*4096]}
			d.bhs[0] = opDataOut
			if sn == 1 {
				d.bhs[1] = 0x80
			}
			d.put32(16, p.itt())
			d.put32(20, p.u32(20))
			d.put32(36, sn)
			d.put32(40, sn*4096)
			data = appendPDU(data, d, false, false)
		}
	}
	if _, err := ti.c.Write(data); err != nil {
		t.Fatal(err)
	}
	statSN := uint32(0)
	for k := range n {
		p := ti.read()
		if p.opcode() != opSCSIResp || p.bhs[3] != statusGood {
			t.Fatalf("opcode 0x%02x status 0x%02x, want GOOD SCSI Response", p.opcode(), p.bhs[3])
		}
		if _, ok := itts[p.itt()]; !ok {
			t.Fatalf("response for unknown or repeated ITT %x", p.itt())
		}
		delete(itts, p.itt())
		if k > 0 && p.u32(24) != statSN+1 {
			t.Fatalf("StatSN %d after %d", p.u32(24), statSN)
		}
		statSN = p.u32(24)
		ti.expStatSN = statSN + 1
	}
	got := make([]byte, n*size)
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "device after pipelined writes", got, bytes.Join(want, nil))

	// DataSN 1 where 0 is due: a protocol error that ends the connection
	// (ErrorRecoveryLevel 0), even though the write would run inline.
	itt := ti.command(write10(0, 1), false, true, 512, nil)
	r2t := ti.read()
	if r2t.opcode() != opR2T || r2t.itt() != itt {
		t.Fatalf("opcode 0x%02x, want R2T", r2t.opcode())
	}
	bad := &pdu{data: make([]byte, 512)}
	bad.bhs[0] = opDataOut
	bad.bhs[1] = 0x80
	bad.put32(16, itt)
	bad.put32(20, r2t.u32(20))
	bad.put32(36, 1)
	ti.write(bad)
	var b [bhsLen]byte
	if _, err := ti.c.Read(b[:]); err == nil {
		t.Fatalf("target answered opcode 0x%02x ITT %x after a bad DataSN; want the connection closed", b[0]&0x3f, binary.BigEndian.Uint32(b[16:]))
	}
}
