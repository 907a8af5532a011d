package iscsitarget

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"
)

// testInit is a minimal scripted initiator for state-machine tests. It
// speaks over net.Pipe (or TCP) and checks what the target sends.
type testInit struct {
	t         testing.TB
	c         net.Conn
	rd        pduReader
	isid      [6]byte
	tsih      uint16
	itt       uint32
	cmdSN     uint32
	expStatSN uint32
	hd, dd    bool
	mrdsl     int // what we told the target (its Data-In limit)
}

// pipeServer connects a testInit to srv over net.Pipe.
func pipeServer(t testing.TB, srv *Server) *testInit {
	t.Helper()
	a, b := net.Pipe()
	c := newConn(srv, pipeConn{b})
	srv.mu.Lock()
	srv.conns[c] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	go func() {
		defer srv.wg.Done()
		c.serve(t.Context())
	}()
	t.Cleanup(func() { a.Close() })
	ti := &testInit{t: t, c: a, isid: [6]byte{0x40, 0, 0x27, 0x23, 0, 1}, mrdsl: 8192, cmdSN: 1}
	ti.rd = pduReader{r: a, maxData: 1 << 24}
	_ = a.SetDeadline(time.Now().Add(20 * time.Second))
	return ti
}

// pipeConn gives net.Pipe TCP-like addresses for logs and rate limiting.
type pipeConn struct{ net.Conn }

func (pipeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (pipeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3260} }

func textOf(pairs ...string) []byte {
	var b []byte
	for _, p := range pairs {
		b = append(b, p...)
		b = append(b, 0)
	}
	return b
}

func keysOf(t testing.TB, b []byte) map[string]string {
	t.Helper()
	kvs, err := parseText(b)
	if err != nil {
		t.Fatalf("target sent bad text: %v", err)
	}
	m := map[string]string{}
	for _, k := range kvs {
		m[k.key] = k.value
	}
	return m
}

func (ti *testInit) write(p *pdu) {
	ti.t.Helper()
	if _, err := ti.c.Write(appendPDU(nil, p, ti.hd, ti.dd)); err != nil {
		ti.t.Fatalf("write: %v", err)
	}
}

func (ti *testInit) read() *pdu {
	ti.t.Helper()
	ti.rd.headerDigest, ti.rd.dataDigest = ti.hd, ti.dd
	p, err := ti.rd.read()
	if err != nil {
		ti.t.Fatalf("read: %v", err)
	}
	return p
}

// login sends one login request and returns the response.
func (ti *testInit) login(transit bool, csg, nsg stage, text []byte) *pdu {
	ti.t.Helper()
	p := &pdu{data: text}
	p.bhs[0] = 0x40 | opLoginReq
	f := byte(csg) << 2
	if transit {
		f |= 0x80 | byte(nsg)
	}
	p.bhs[1] = f
	copy(p.bhs[8:14], ti.isid[:])
	binary.BigEndian.PutUint16(p.bhs[14:], ti.tsih)
	p.put32(16, 0x18ae0000)
	p.put32(24, ti.cmdSN)
	p.put32(28, ti.expStatSN)
	ti.write(p)
	r := ti.read()
	if r.opcode() != opLoginResp {
		ti.t.Fatalf("got opcode 0x%02x, want Login Response", r.opcode())
	}
	ti.expStatSN = r.u32(24) + 1
	return r
}

func loginStatus(p *pdu) uint16 { return uint16(p.bhs[36])<<8 | uint16(p.bhs[37]) }

// opKeys are iPXE's operational keys (research §4.3) plus extras.
var ipxeOpKeys = []string{
	"HeaderDigest=None", "DataDigest=None", "MaxConnections=1", "InitialR2T=Yes",
	"ImmediateData=No", "MaxRecvDataSegmentLength=8192", "MaxBurstLength=262144",
	"FirstBurstLength=65536", "DefaultTime2Wait=0", "DefaultTime2Retain=0",
	"MaxOutstandingR2T=1", "DataPDUInOrder=Yes", "DataSequenceInOrder=Yes",
	"ErrorRecoveryLevel=0",
}

// loginNone does a security-less login in two stages.
func (ti *testInit) loginNone(target string, opKeys ...string) map[string]string {
	ti.t.Helper()
	r := ti.login(true, stageSecurity, stageOperational, textOf("InitiatorName=iqn.2010-04.org.ipxe:test", "TargetName="+target, "SessionType=Normal", "AuthMethod=None"))
	if s := loginStatus(r); s != 0 {
		ti.t.Fatalf("security stage: status 0x%04x", s)
	}
	if r.flags()&0x80 == 0 {
		ti.t.Fatalf("target did not transit from the security stage")
	}
	if len(opKeys) == 0 {
		opKeys = ipxeOpKeys
	}
	r = ti.login(true, stageOperational, stageFull, textOf(opKeys...))
	if s := loginStatus(r); s != 0 {
		ti.t.Fatalf("operational stage: status 0x%04x", s)
	}
	if r.flags()&0x83 != 0x83 {
		ti.t.Fatalf("final login response flags 0x%02x, want T=1 NSG=3", r.flags())
	}
	ti.tsih = binary.BigEndian.Uint16(r.bhs[14:])
	if ti.tsih == 0 {
		ti.t.Fatalf("TSIH 0 in the final login response")
	}
	ti.cmdSN = r.u32(28)
	m := keysOf(ti.t, r.data)
	if m["HeaderDigest"] == "CRC32C" {
		ti.hd = true
	}
	if m["DataDigest"] == "CRC32C" {
		ti.dd = true
	}
	return m
}

// command sends a SCSI command (with optional immediate data).
func (ti *testInit) command(cdb []byte, read, write bool, edtl int, imm []byte) uint32 {
	ti.t.Helper()
	ti.itt++
	p := &pdu{data: imm}
	p.bhs[0] = opSCSICmd
	f := byte(0x80 | 0x01)
	if read {
		f |= 0x40
	}
	if write {
		f |= 0x20
	}
	p.bhs[1] = f
	p.put32(16, ti.itt)
	p.put32(20, uint32(edtl))
	p.put32(24, ti.cmdSN)
	p.put32(28, ti.expStatSN)
	copy(p.bhs[32:], cdb)
	ti.cmdSN++
	ti.write(p)
	return ti.itt
}

// result collects Data-In and the status of one command, answering R2Ts
// with 512-byte Data-Out PDUs the way iPXE does.
type result struct {
	status   byte
	data     []byte
	sense    []byte
	residual uint32
	flags    byte
	dataIns  int
	maxSeg   int
}

func (ti *testInit) await(itt uint32, out []byte) result {
	ti.t.Helper()
	var res result
	for i := 0; i < 100000; i++ {
		p := ti.read()
		// iPXE trusts these fields in every PDU.
		if exp, max := p.u32(28), p.u32(32); serialLess(max+1, exp) {
			ti.t.Fatalf("MaxCmdSN %d < ExpCmdSN-1 %d in opcode 0x%02x", max, exp, p.opcode())
		}
		switch p.opcode() {
		case opR2T:
			if p.itt() != itt {
				ti.t.Fatalf("R2T for ITT %x", p.itt())
			}
			ttt, off, n := p.u32(20), int(p.u32(40)), int(p.u32(44))
			for sn, o := uint32(0), off; o < off+n; sn, o = sn+1, o+512 {
				d := &pdu{data: out[o:min(o+512, off+n)]}
				d.bhs[0] = opDataOut
				if o+512 >= off+n {
					d.bhs[1] = 0x80
				}
				d.put32(16, itt)
				d.put32(20, ttt)
				d.put32(28, ti.expStatSN)
				d.put32(36, sn)
				d.put32(40, uint32(o))
				ti.write(d)
			}
		case opDataIn:
			off := int(p.u32(40))
			if off != len(res.data) {
				ti.t.Fatalf("Data-In offset %d, have %d bytes", off, len(res.data))
			}
			if p.u32(36) != uint32(res.dataIns) {
				ti.t.Fatalf("DataSN %d, want %d", p.u32(36), res.dataIns)
			}
			res.dataIns++
			res.maxSeg = max(res.maxSeg, len(p.data))
			res.data = append(res.data, p.data...)
			if p.flags()&0x01 != 0 {
				res.status = p.bhs[3]
				res.flags = p.flags()
				res.residual = p.u32(44)
				ti.expStatSN = p.u32(24) + 1
				return res
			}
		case opSCSIResp:
			res.status = p.bhs[3]
			res.flags = p.flags()
			res.residual = p.u32(44)
			if len(p.data) >= 2 {
				res.sense = p.data[2:]
			}
			ti.expStatSN = p.u32(24) + 1
			return res
		case opNOPIn:
			if p.itt() != reservedTag || p.u32(20) == reservedTag {
				ti.t.Fatalf("NOP-In itt %x ttt %x waiting for ITT %x", p.itt(), p.u32(20), itt)
			}
			// A target ping (idle connections): answer it as initiators do.
			r := &pdu{}
			r.bhs[0] = 0x40 | opNOPOut
			r.bhs[1] = 0x80
			r.put32(16, reservedTag)
			r.put32(20, p.u32(20))
			r.put32(24, ti.cmdSN)
			ti.write(r)
		default:
			ti.t.Fatalf("unexpected opcode 0x%02x waiting for ITT %x", p.opcode(), itt)
		}
	}
	ti.t.Fatal("no response")
	return res
}

func read10(lba uint32, n uint16) []byte {
	c := make([]byte, 10)
	c[0] = 0x28
	binary.BigEndian.PutUint32(c[2:], lba)
	binary.BigEndian.PutUint16(c[7:], n)
	return c
}

func write10(lba uint32, n uint16) []byte {
	c := read10(lba, n)
	c[0] = 0x2a
	return c
}

// fixedRand returns the same bytes forever: deterministic CHAP challenges.
type fixedRand byte

func (f fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f) + byte(i)
	}
	return len(p), nil
}

func hexArg(b []byte) string { return "0x" + hex.EncodeToString(b) }

func mustContain(t testing.TB, m map[string]string, key, want string) {
	t.Helper()
	if got, ok := m[key]; !ok || !strings.EqualFold(got, want) {
		t.Errorf("%s=%q, want %q (all: %v)", key, got, want, m)
	}
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d expected", what, len(got), len(want))
	}
}
