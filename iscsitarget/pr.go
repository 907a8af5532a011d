package iscsitarget

import (
	"encoding/binary"
	"sort"
)

// Persistent reservations (SPC-4 §5.9), kept in memory per LU.

const (
	prWE   = 1 // write exclusive
	prEA   = 3 // exclusive access
	prWERO = 5 // write exclusive, registrants only
	prEARO = 6 // exclusive access, registrants only
	prWEAR = 7 // write exclusive, all registrants
	prEAAR = 8 // exclusive access, all registrants
)

type prState struct {
	generation uint32
	regs       map[string]uint64 // I_T nexus → reservation key
	holder     string
	rtype      byte
}

func allRegistrants(t byte) bool { return t == prWEAR || t == prEAAR }

func (p *prState) isHolder(nexus string) bool {
	if p.rtype == 0 {
		return false
	}
	if allRegistrants(p.rtype) {
		_, ok := p.regs[nexus]
		return ok
	}
	return p.holder == nexus
}

func validPRType(t byte) bool {
	switch t {
	case prWE, prEA, prWERO, prEARO, prWEAR, prEAAR:
		return true
	}
	return false
}

func (l *lu) prIn(cdb []byte) *scsiResult {
	alloc := int(be16(cdb[7:]))
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &l.pr
	var d []byte
	switch cdb[1] & 0x1f {
	case 0: // READ KEYS
		d = make([]byte, 8)
		binary.BigEndian.PutUint32(d, p.generation)
		for _, n := range p.sortedNexus() {
			d = binary.BigEndian.AppendUint64(d, p.regs[n])
		}
		binary.BigEndian.PutUint32(d[4:], uint32(len(d)-8))
	case 1: // READ RESERVATION
		d = make([]byte, 8)
		binary.BigEndian.PutUint32(d, p.generation)
		if p.rtype != 0 {
			r := make([]byte, 16)
			if !allRegistrants(p.rtype) {
				binary.BigEndian.PutUint64(r, p.regs[p.holder])
			}
			r[13] = p.rtype
			d = append(d, r...)
			binary.BigEndian.PutUint32(d[4:], 16)
		}
	case 2: // REPORT CAPABILITIES
		d = make([]byte, 8)
		binary.BigEndian.PutUint16(d, 8)
		d[2] = 0x10 // CRH: RESERVE/RELEASE handled per SPC-4 §5.9.3
		d[3] = 0x80 // TMV: type mask valid
		d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02
		d[5] = 0x01
	case 3: // READ FULL STATUS
		d = make([]byte, 8)
		binary.BigEndian.PutUint32(d, p.generation)
		for _, n := range p.sortedNexus() {
			e := make([]byte, 24)
			binary.BigEndian.PutUint64(e, p.regs[n])
			if p.isHolder(n) {
				e[12] = 0x01
				e[13] = p.rtype
			}
			e[12] |= 0x02 // ALL_TG_PT: we have one target port
			tid := transportID(n)
			binary.BigEndian.PutUint32(e[20:], uint32(len(tid)))
			d = append(d, e...)
			d = append(d, tid...)
		}
		binary.BigEndian.PutUint32(d[4:], uint32(len(d)-8))
	default:
		return illegal(ascInvalidFieldInCDB)
	}
	return good(trunc(d, alloc))
}

// transportID is the iSCSI TransportID (format 01b: initiator port name).
func transportID(nexus string) []byte {
	n := len(nexus) + 1
	n += (4 - n%4) % 4
	b := make([]byte, 4+n)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	copy(b[4:], nexus)
	return b
}

func (p *prState) sortedNexus() []string {
	out := make([]string, 0, len(p.regs))
	for n := range p.regs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (l *lu) prOut(nexus string, cdb []byte, out []byte) *scsiResult {
	sa := cdb[1] & 0x1f
	typ := cdb[2] & 0x0f
	scope := cdb[2] >> 4
	plen := int(be32(cdb[5:]))
	res := func(r *scsiResult) *scsiResult { r.wantOut = plen; return r }
	conflict := func() *scsiResult { return res(&scsiResult{status: statusReservationConflict}) }
	if plen != 24 {
		return res(illegal(ascParamListLength))
	}
	if len(out) < 24 {
		return res(illegal(ascParamListLength))
	}
	key := be64(out[0:])
	saKey := be64(out[8:])
	flags := out[20]
	if flags&0x08 != 0 { // SPEC_I_PT unsupported
		return res(illegal(ascInvalidFieldInParam))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &l.pr
	cur, registered := p.regs[nexus]
	switch sa {
	case 0, 6: // REGISTER, REGISTER AND IGNORE EXISTING KEY
		if sa == 0 {
			if !registered && key != 0 {
				return conflict()
			}
			if registered && key != cur {
				return conflict()
			}
		}
		if saKey == 0 {
			if registered {
				p.unregister(nexus)
			}
		} else {
			p.regs[nexus] = saKey
		}
		p.generation++
		return res(good(nil))
	}
	if !registered || key != cur {
		return conflict()
	}
	switch sa {
	case 1: // RESERVE
		if scope != 0 || !validPRType(typ) {
			return res(illegal(ascInvalidFieldInCDB))
		}
		if l.reserve != "" {
			return conflict()
		}
		if p.rtype != 0 {
			if p.isHolder(nexus) && p.rtype == typ {
				return res(good(nil))
			}
			return conflict()
		}
		p.rtype, p.holder = typ, nexus
	case 2: // RELEASE
		if p.rtype == 0 || !p.isHolder(nexus) {
			return res(good(nil))
		}
		if p.rtype != typ {
			return res(illegal(ascInvalidRelease))
		}
		p.rtype, p.holder = 0, ""
	case 3: // CLEAR
		p.regs = make(map[string]uint64)
		p.rtype, p.holder = 0, ""
		p.generation++
	case 4, 5: // PREEMPT, PREEMPT AND ABORT
		if !validPRType(typ) {
			return res(illegal(ascInvalidFieldInCDB))
		}
		if p.rtype != 0 && allRegistrants(p.rtype) && saKey == 0 {
			// Preempt an all-registrants reservation: everybody else goes.
			for n := range p.regs {
				if n != nexus {
					delete(p.regs, n)
				}
			}
			p.rtype, p.holder = typ, nexus
			p.generation++
			return res(good(nil))
		}
		if saKey == 0 {
			return res(illegal(ascInvalidFieldInParam))
		}
		holderKey := uint64(0)
		if p.rtype != 0 && !allRegistrants(p.rtype) {
			holderKey = p.regs[p.holder]
		}
		removed := false
		for n, k := range p.regs {
			if k == saKey && n != nexus {
				delete(p.regs, n)
				removed = true
			}
		}
		if p.rtype != 0 && holderKey == saKey {
			p.rtype, p.holder = typ, nexus
			removed = true
		}
		if !removed {
			return conflict()
		}
		p.generation++
	default:
		return res(illegal(ascInvalidFieldInCDB))
	}
	return res(good(nil))
}

// unregister removes a registration, releasing its reservation when it
// held one (the last registrant of an all-registrants reservation too).
func (p *prState) unregister(nexus string) {
	delete(p.regs, nexus)
	if p.rtype == 0 {
		return
	}
	if allRegistrants(p.rtype) {
		if len(p.regs) == 0 {
			p.rtype, p.holder = 0, ""
		}
		return
	}
	if p.holder == nexus {
		p.rtype, p.holder = 0, ""
	}
}
