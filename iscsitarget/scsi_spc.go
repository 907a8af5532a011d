package iscsitarget

import (
	"encoding/binary"
)

// SPC-4 commands of every LU: INQUIRY and its VPD pages, capacity, REPORT
// LUNS, mode pages, REQUEST SENSE and SPC-2 reservations.

func requestSense(cdb []byte, sense []byte) *scsiResult {
	if sense == nil {
		sense = fixedSense(senseNoSense, 0, 0, false)
	}
	if cdb[1]&1 != 0 { // DESC: descriptor format
		d := make([]byte, 8)
		d[0] = 0x72
		d[1] = sense[2]
		d[2], d[3] = sense[12], sense[13]
		sense = d
	}
	return good(trunc(sense, int(cdb[4])))
}

// Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3.
var versionDescriptors = [...]uint16{0x00a0, 0x0960, 0x0460, 0x04c0}

func standardInquiry(l *lu) []byte {
	d := make([]byte, 96)
	d[2] = 0x06 // SPC-4
	d[3] = 0x12 // HiSup, response data format 2
	d[4] = byte(len(d) - 5)
	d[7] = 0x02 // CmdQue
	copy(d[8:16], "XPBOOT  ")
	copy(d[16:32], "VIRTUAL-DISK    ")
	copy(d[32:36], "0001")
	for i, v := range versionDescriptors {
		binary.BigEndian.PutUint16(d[58+2*i:], v)
	}
	return d
}

func (l *lu) inquiry(cdb []byte) *scsiResult {
	alloc := int(be16(cdb[3:]))
	evpd := cdb[1]&1 != 0
	page := cdb[2]
	if !evpd {
		if page != 0 {
			return illegal(ascInvalidFieldInCDB)
		}
		return good(trunc(standardInquiry(l), alloc))
	}
	var body []byte
	switch page {
	case 0x00:
		body = []byte{0x00, 0x80, 0x83, 0xb0, 0xb1}
		if l.punch != nil {
			body = append(body, 0xb2)
		}
	case 0x80:
		body = []byte(l.serial)
	case 0x83:
		// NAA (locally assigned) designator of the LU.
		body = append(body, 0x01, 0x03, 0x00, 0x08)
		body = append(body, l.naa[:]...)
		// T10 vendor ID designator.
		t10 := "XPBOOT  " + l.serial
		body = append(body, 0x02, 0x01, 0x00, byte(len(t10)))
		body = append(body, t10...)
		// SCSI name string of the target device (association 10b, type 8).
		name := l.tgt.name
		n := len(name) + 1
		n += (4 - n%4) % 4
		body = append(body, 0x53, 0x28, 0x00, byte(n))
		nb := make([]byte, n)
		copy(nb, name)
		body = append(body, nb...)
	case 0xb0: // block limits
		body = make([]byte, 0x3c)
		body[0] = 0x01 // WSNZ
		body[1] = 255  // MAXIMUM COMPARE AND WRITE LENGTH
		binary.BigEndian.PutUint16(body[2:], 8)
		binary.BigEndian.PutUint32(body[4:], uint32(l.maxXfer/blockSize))
		binary.BigEndian.PutUint32(body[8:], uint32(min(l.maxXfer, 1<<20)/blockSize))
		if l.punch != nil {
			binary.BigEndian.PutUint32(body[16:], 0xffffffff) // max unmap LBA count
			binary.BigEndian.PutUint32(body[20:], 256)        // max unmap descriptors
			binary.BigEndian.PutUint32(body[24:], 1)          // unmap granularity
		}
		binary.BigEndian.PutUint64(body[32:], maxWriteSame) // MAXIMUM WRITE SAME LENGTH
	case 0xb1: // block device characteristics: non-rotating
		body = make([]byte, 0x3c)
		binary.BigEndian.PutUint16(body[0:], 1)
	case 0xb2:
		if l.punch == nil {
			return illegal(ascInvalidFieldInCDB)
		}
		body = make([]byte, 4)
		body[1] = 0x80 | 0x40 | 0x20 | 0x04 // LBPU, LBPWS, LBPWS10, LBPRZ
		body[2] = 0x02                      // thin provisioned
	default:
		return illegal(ascInvalidFieldInCDB)
	}
	d := make([]byte, 4, 4+len(body))
	d[1] = page
	binary.BigEndian.PutUint16(d[2:], uint16(len(body)))
	return good(trunc(append(d, body...), alloc))
}

func (l *lu) readCapacity10(cdb []byte) *scsiResult {
	if cdb[8]&1 == 0 && be32(cdb[2:]) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	d := make([]byte, 8)
	last := l.blocks - 1
	if last > 0xffffffff {
		last = 0xffffffff
	}
	binary.BigEndian.PutUint32(d, uint32(last))
	binary.BigEndian.PutUint32(d[4:], blockSize)
	return good(d)
}

func (l *lu) readCapacity16(cdb []byte) *scsiResult {
	d := make([]byte, 32)
	binary.BigEndian.PutUint64(d, l.blocks-1)
	binary.BigEndian.PutUint32(d[8:], blockSize)
	if l.punch != nil {
		d[14] = 0x80 | 0x40 // LBPME, LBPRZ
	}
	return good(trunc(d, int(be32(cdb[10:]))))
}

func reportLUNs(t *target, cdb []byte) *scsiResult {
	alloc := int(be32(cdb[6:]))
	if alloc < 16 {
		return illegal(ascInvalidFieldInCDB)
	}
	switch cdb[2] {
	case 0, 1, 2:
	default:
		return illegal(ascInvalidFieldInCDB)
	}
	d := make([]byte, 8, 8+8*len(t.lunNo))
	if cdb[2] != 1 {
		for _, n := range t.lunNo {
			f := encodeLUN(n)
			d = append(d, f[:]...)
		}
	}
	binary.BigEndian.PutUint32(d, uint32(len(d)-8))
	return good(trunc(d, alloc))
}

// Mode pages: caching (0x08), control (0x0a), informational exceptions (0x1c).
func (l *lu) modePage(page byte, pc byte) []byte {
	changeable := pc == 1
	switch page {
	case 0x08:
		p := make([]byte, 20)
		p[0], p[1] = 0x08, 18
		if !changeable {
			p[2] = 0x04 // WCE: writes are cached until SYNCHRONIZE CACHE/FUA
		}
		return p
	case 0x0a:
		p := make([]byte, 12)
		p[0], p[1] = 0x0a, 10
		l.mu.Lock()
		if changeable {
			p[2] = 0x04 // D_SENSE
			p[4] = 0x08 // SWP
		} else {
			if l.dsense {
				p[2] |= 0x04
			}
			if l.swp {
				p[4] |= 0x08
			}
			p[3] = 0x10 // QUEUE ALGORITHM MODIFIER 1: unrestricted
		}
		l.mu.Unlock()
		if !changeable {
			binary.BigEndian.PutUint16(p[8:], 0xffff) // busy timeout: unlimited
		}
		return p
	case 0x1c:
		p := make([]byte, 12)
		p[0], p[1] = 0x1c, 10
		return p
	}
	return nil
}

func (l *lu) modeSense(cdb []byte) *scsiResult {
	six := cdb[0] == 0x1a
	dbd := cdb[1]&0x08 != 0
	pc := cdb[2] >> 6
	page := cdb[2] & 0x3f
	sub := cdb[3]
	var alloc int
	if six {
		alloc = int(cdb[4])
	} else {
		alloc = int(be16(cdb[7:]))
	}
	if pc == 3 {
		return illegal(ascSavingNotSupported)
	}
	if sub != 0 && !(sub == 0xff && page == 0x3f) {
		return illegal(ascInvalidFieldInCDB)
	}
	var pages []byte
	if page == 0x3f {
		for _, p := range []byte{0x08, 0x0a, 0x1c} {
			pages = append(pages, l.modePage(p, pc)...)
		}
	} else {
		pages = l.modePage(page, pc)
		if pages == nil {
			return illegal(ascInvalidFieldInCDB)
		}
	}
	var bd []byte
	if !dbd {
		bd = make([]byte, 8)
		n := l.blocks
		if n > 0xffffffff {
			n = 0xffffffff
		}
		binary.BigEndian.PutUint32(bd, uint32(n))
		binary.BigEndian.PutUint32(bd[4:], blockSize)
	}
	devSpecific := byte(0x10) // DPOFUA
	if l.writeProtected() {
		devSpecific |= 0x80 // WP
	}
	var d []byte
	if six {
		d = []byte{0, 0, devSpecific, byte(len(bd))}
		d = append(d, bd...)
		d = append(d, pages...)
		d[0] = byte(min(len(d)-1, 255))
	} else {
		d = []byte{0, 0, 0, devSpecific, 0, 0, 0, byte(len(bd))}
		d = append(d, bd...)
		d = append(d, pages...)
		binary.BigEndian.PutUint16(d, uint16(len(d)-2))
	}
	return good(trunc(d, alloc))
}

// modeSelect accepts the control page's D_SENSE and SWP; everything else
// must equal the current values.
func (l *lu) modeSelect(cdb []byte, out []byte) *scsiResult {
	six := cdb[0] == 0x15
	var plen int
	if six {
		plen = int(cdb[4])
	} else {
		plen = int(be16(cdb[7:]))
	}
	if cdb[1]&0x01 != 0 { // SP: saving not supported
		r := illegal(ascInvalidFieldInCDB)
		r.wantOut = plen
		return r
	}
	if plen == 0 {
		return &scsiResult{status: statusGood}
	}
	if len(out) < plen {
		r := illegal(ascParamListLength)
		r.wantOut = plen
		return r
	}
	p := out[:plen]
	var hdr, bdl int
	if six {
		if plen < 4 {
			return &scsiResult{status: statusCheckCondition, sense: fixedSense(senseIllegalRequest, ascParamListLength, 0, false), wantOut: plen}
		}
		hdr, bdl = 4, int(p[3])
	} else {
		if plen < 8 {
			return &scsiResult{status: statusCheckCondition, sense: fixedSense(senseIllegalRequest, ascParamListLength, 0, false), wantOut: plen}
		}
		hdr, bdl = 8, int(be16(p[6:]))
	}
	rest := p[min(hdr+bdl, len(p)):]
	bad := func() *scsiResult {
		r := illegal(ascInvalidFieldInParam)
		r.wantOut = plen
		return r
	}
	for len(rest) >= 2 {
		page := rest[0] & 0x3f
		n := int(rest[1]) + 2
		if n > len(rest) {
			return bad()
		}
		cur := l.modePage(page, 0)
		if cur == nil || len(cur) != n {
			return bad()
		}
		if page == 0x0a {
			l.mu.Lock()
			l.dsense = rest[2]&0x04 != 0
			l.swp = rest[4]&0x08 != 0
			l.mu.Unlock()
		}
		rest = rest[n:]
	}
	return &scsiResult{status: statusGood, wantOut: plen}
}

// SPC-2 RESERVE/RELEASE.
func (l *lu) reserveRelease(nexus string, op byte) *scsiResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch op {
	case cmdReserve6, cmdReserve10:
		if l.pr.rtype != 0 {
			return &scsiResult{status: statusReservationConflict}
		}
		if l.reserve != "" && l.reserve != nexus {
			return &scsiResult{status: statusReservationConflict}
		}
		l.reserve = nexus
	default:
		if l.reserve == nexus {
			l.reserve = ""
		}
	}
	return good(nil)
}

// conflict applies SPC-2 and persistent reservations to a command.
func (l *lu) conflict(nexus string, op byte, cdb []byte) *scsiResult {
	acc := opAccess(op)
	switch acc {
	case accExempt:
		return nil
	case accPR:
		l.mu.Lock()
		held := l.reserve != "" && l.reserve != nexus
		l.mu.Unlock()
		if held {
			return &scsiResult{status: statusReservationConflict}
		}
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserve != "" && l.reserve != nexus {
		if op == cmdRelease6 || op == cmdRelease10 {
			return nil
		}
		return &scsiResult{status: statusReservationConflict}
	}
	if l.pr.rtype == 0 || l.pr.isHolder(nexus) {
		return nil
	}
	_, registered := l.pr.regs[nexus]
	write := acc == accWrite
	read := acc == accRead
	switch l.pr.rtype {
	case prWE:
		if write {
			return &scsiResult{status: statusReservationConflict}
		}
	case prEA:
		if write || read {
			return &scsiResult{status: statusReservationConflict}
		}
	case prWERO, prWEAR:
		if write && !registered {
			return &scsiResult{status: statusReservationConflict}
		}
	case prEARO, prEAAR:
		if (write || read) && !registered {
			return &scsiResult{status: statusReservationConflict}
		}
	}
	if (op == cmdReserve6 || op == cmdReserve10) && l.pr.rtype != 0 {
		return &scsiResult{status: statusReservationConflict}
	}
	return nil
}
