package iscsitarget

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// Opcodes of RFC 7143 §11. Initiator opcodes first, then target opcodes.
const (
	opNOPOut     = 0x00
	opSCSICmd    = 0x01
	opTaskMgmt   = 0x02
	opLoginReq   = 0x03
	opTextReq    = 0x04
	opDataOut    = 0x05
	opLogoutReq  = 0x06
	opSNACK      = 0x10
	opNOPIn      = 0x20
	opSCSIResp   = 0x21
	opTaskResp   = 0x22
	opLoginResp  = 0x23
	opTextResp   = 0x24
	opDataIn     = 0x25
	opLogoutResp = 0x26
	opR2T        = 0x31
	opAsync      = 0x32
	opReject     = 0x3f
)

// bhsLen is the size of the Basic Header Segment.
const bhsLen = 48

// maxAHSLen caps the additional header segments (TotalAHSLength is one byte
// counting 4-byte words, so 1020 is the protocol maximum anyway).
const maxAHSLen = 1020

// reservedTag is the all-ones ITT/TTT value ("no task").
const reservedTag = 0xffffffff

// Reject reasons (RFC 7143 §11.17.1).
const (
	rejectDigestError    = 0x02
	rejectSNACK          = 0x03
	rejectProtocolError  = 0x04
	rejectNotSupported   = 0x05
	rejectImmCmdRejected = 0x06
	rejectTaskInProgress = 0x07
	rejectInvalidDataAck = 0x08
	rejectInvalidField   = 0x09
	rejectLongOp         = 0x0a
	rejectWaitingLogout  = 0x0c
)

// castagnoli returns the CRC32C table of the digests. It is built on
// first use: building it (the SSE4.2 tables) costs about a million
// instructions, which every xpboot command paid at start-up when this was
// a package variable, though only sessions with digests need it.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// ErrDigest reports a header or data digest mismatch.
var ErrDigest = errors.New("iscsitarget: digest mismatch")

// ErrDataTooLong reports a data segment longer than this side declared in
// MaxRecvDataSegmentLength.
var ErrDataTooLong = errors.New("iscsitarget: data segment exceeds MaxRecvDataSegmentLength")

// PDUError describes a malformed or unexpected PDU; it names the opcode and
// the initiator task tag so that the log points at the offending exchange.
type PDUError struct {
	Opcode uint8
	ITT    uint32
	Msg    string
	Err    error
}

func (e *PDUError) Error() string {
	s := fmt.Sprintf("iscsitarget: %s (opcode 0x%02x) ITT 0x%08x: %s", opName(e.Opcode), e.Opcode, e.ITT, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *PDUError) Unwrap() error { return e.Err }

func opName(op uint8) string {
	switch op {
	case opNOPOut:
		return "NOP-Out"
	case opSCSICmd:
		return "SCSI Command"
	case opTaskMgmt:
		return "Task Management Request"
	case opLoginReq:
		return "Login Request"
	case opTextReq:
		return "Text Request"
	case opDataOut:
		return "SCSI Data-Out"
	case opLogoutReq:
		return "Logout Request"
	case opSNACK:
		return "SNACK Request"
	case opNOPIn:
		return "NOP-In"
	case opSCSIResp:
		return "SCSI Response"
	case opTaskResp:
		return "Task Management Response"
	case opLoginResp:
		return "Login Response"
	case opTextResp:
		return "Text Response"
	case opDataIn:
		return "SCSI Data-In"
	case opLogoutResp:
		return "Logout Response"
	case opR2T:
		return "R2T"
	case opAsync:
		return "Asynchronous Message"
	case opReject:
		return "Reject"
	}
	return "unknown PDU"
}

// pdu is one iSCSI PDU: the 48-byte BHS, optional AHS and data segment.
// Field accessors name the RFC 7143 fields at their fixed offsets.
type pdu struct {
	bhs  [bhsLen]byte
	ahs  []byte
	data []byte
}

func (p *pdu) opcode() uint8           { return p.bhs[0] & 0x3f }
func (p *pdu) immediate() bool         { return p.bhs[0]&0x40 != 0 }
func (p *pdu) flags() uint8            { return p.bhs[1] }
func (p *pdu) final() bool             { return p.bhs[1]&0x80 != 0 }
func (p *pdu) itt() uint32             { return binary.BigEndian.Uint32(p.bhs[16:]) }
func (p *pdu) u32(off int) uint32      { return binary.BigEndian.Uint32(p.bhs[off:]) }
func (p *pdu) put32(off int, v uint32) { binary.BigEndian.PutUint32(p.bhs[off:], v) }
func (p *pdu) lun() [8]byte {
	var l [8]byte
	copy(l[:], p.bhs[8:16])
	return l
}
func (p *pdu) dataLen() int {
	return int(p.bhs[5])<<16 | int(p.bhs[6])<<8 | int(p.bhs[7])
}

// setDataLen stores the DataSegmentLength field.
func (p *pdu) setDataLen(n int) {
	p.bhs[5], p.bhs[6], p.bhs[7] = byte(n>>16), byte(n>>8), byte(n)
}

func (p *pdu) errorf(format string, args ...any) *PDUError {
	return &PDUError{Opcode: p.opcode(), ITT: p.itt(), Msg: fmt.Sprintf(format, args...)}
}

// pad4 returns the number of padding bytes after n data bytes.
func pad4(n int) int { return (4 - n&3) & 3 }

// pduReader reads PDUs from a connection. Digests switch on after login.
type pduReader struct {
	r            io.Reader
	headerDigest bool
	dataDigest   bool
	maxData      int // our MaxRecvDataSegmentLength
	scratch      [4]byte
	// reuseDataOut makes every Data-Out PDU's data segment share one
	// buffer, valid until the next read: the connection copies Data-Out
	// data into its command's buffer at once and never keeps the PDU.
	// At 4 KiB per write this spares the garbage collector most of its
	// work.
	reuseDataOut bool
	dataOutBuf   []byte
}

// read reads one PDU. It checks the segment lengths against the declared
// limit before allocating anything, and verifies digests when enabled.
func (pr *pduReader) read() (*pdu, error) {
	p := &pdu{}
	if _, err := io.ReadFull(pr.r, p.bhs[:]); err != nil {
		return nil, err
	}
	ahsLen := int(p.bhs[4]) * 4
	dlen := p.dataLen()
	if dlen > pr.maxData {
		return nil, &PDUError{Opcode: p.opcode(), ITT: p.itt(), Msg: fmt.Sprintf("data segment of %d bytes, limit %d", dlen, pr.maxData), Err: ErrDataTooLong}
	}
	if ahsLen > 0 {
		p.ahs = make([]byte, ahsLen)
		if _, err := io.ReadFull(pr.r, p.ahs); err != nil {
			return nil, err
		}
	}
	if pr.headerDigest {
		if _, err := io.ReadFull(pr.r, pr.scratch[:]); err != nil {
			return nil, err
		}
		crc := crc32.Update(crc32.Checksum(p.bhs[:], castagnoli()), castagnoli(), p.ahs)
		if binary.LittleEndian.Uint32(pr.scratch[:]) != crc {
			return nil, &PDUError{Opcode: p.opcode(), ITT: p.itt(), Msg: "header digest", Err: ErrDigest}
		}
	}
	if dlen > 0 {
		var buf []byte
		if pr.reuseDataOut && p.opcode() == opDataOut {
			if cap(pr.dataOutBuf) < dlen+pad4(dlen) {
				pr.dataOutBuf = make([]byte, dlen+pad4(dlen))
			}
			buf = pr.dataOutBuf[:dlen+pad4(dlen)]
		} else {
			buf = make([]byte, dlen+pad4(dlen))
		}
		if _, err := io.ReadFull(pr.r, buf); err != nil {
			return nil, err
		}
		if pr.dataDigest {
			if _, err := io.ReadFull(pr.r, pr.scratch[:]); err != nil {
				return nil, err
			}
			if binary.LittleEndian.Uint32(pr.scratch[:]) != crc32.Checksum(buf, castagnoli()) {
				return nil, &PDUError{Opcode: p.opcode(), ITT: p.itt(), Msg: "data digest", Err: ErrDigest}
			}
		}
		p.data = buf[:dlen]
	}
	return p, nil
}

// appendPDU serialises p (setting DataSegmentLength and TotalAHSLength) onto
// b, with digests when enabled.
func appendPDU(b []byte, p *pdu, headerDigest, dataDigest bool) []byte {
	p.setDataLen(len(p.data))
	p.bhs[4] = byte(len(p.ahs) / 4)
	start := len(b)
	b = append(b, p.bhs[:]...)
	b = append(b, p.ahs...)
	if headerDigest {
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli()))
	}
	if len(p.data) > 0 {
		ds := len(b)
		b = append(b, p.data...)
		for i := pad4(len(p.data)); i > 0; i-- {
			b = append(b, 0)
		}
		if dataDigest {
			b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[ds:], castagnoli()))
		}
	}
	return b
}

// parsePDU decodes one PDU from b without digests; it is the in-memory form
// of pduReader.read used by the fuzzer and tests. It returns the bytes used.
func parsePDU(b []byte, maxData int) (*pdu, int, error) {
	r := &sliceReader{b: b}
	pr := pduReader{r: r, maxData: maxData}
	p, err := pr.read()
	if err != nil {
		return nil, 0, err
	}
	return p, r.off, nil
}

type sliceReader struct {
	b   []byte
	off int
}

func (s *sliceReader) Read(p []byte) (int, error) {
	if s.off >= len(s.b) {
		return 0, io.EOF
	}
	n := copy(p, s.b[s.off:])
	s.off += n
	return n, nil
}

func crc32c(b []byte) uint32                   { return crc32.Checksum(b, castagnoli()) }
func crc32cUpdate(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli(), b) }
