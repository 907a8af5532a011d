package iscsitarget

import (
	"encoding/binary"
	"errors"
)

// Data-In: a command's result as Data-In PDUs and a SCSI Response.

// streamChunk bounds the Data-In a READ holds in memory at a time: the
// device range is copied into a pooled buffer of at most this size, sent,
// and the buffer reused for the next part.
const streamChunk = 1 << 20

// sendResult sends read data as Data-In PDUs no longer than the initiator's
// MaxRecvDataSegmentLength, in sequences of at most MaxBurstLength, then the
// status: in the last Data-In (S bit) for GOOD, else in a SCSI Response with
// sense data. Only min(data length, EDTL) bytes are sent (and, for READs,
// read from the device); the rest is an overflow residual.
// Data-In goes to emit before its buffer is reused, so emit must have
// written or copied any PDU data it got by the time it returns; c.queueOut
// only gets writes, whose responses carry no Data-In.
func (c *conn) sendResult(t *task, res *scsiResult, emit func([]*pdu, []bool) error) error {
	total := res.dataLen()
	send := 0
	var resid uint32
	var residFlag byte
	if t.wflag || (res.wantOut > 0 && !t.rflag) {
		switch {
		case res.wantOut > t.edtl:
			resid, residFlag = uint32(res.wantOut-t.edtl), 0x04
		case res.wantOut < t.edtl:
			resid, residFlag = uint32(t.edtl-res.wantOut), 0x02
		}
	} else {
		if !t.rflag {
			if total > 0 {
				resid, residFlag = uint32(total), 0x04
			}
		} else {
			send = total
			switch {
			case total > t.edtl:
				resid, residFlag = uint32(total-t.edtl), 0x04
				send = t.edtl
			case total < t.edtl:
				resid, residFlag = uint32(t.edtl-total), 0x02
			}
		}
	}
	good := res.status == statusGood
	d := dataInSeq{c: c, t: t, emit: emit, total: send, good: good, resid: resid, residFlag: residFlag}
	status, sense := res.status, res.sense
	if send > 0 {
		var err error
		if res.src != nil {
			err = d.stream(res)
		} else {
			err = d.add(res.data[:send])
		}
		if err != nil {
			me, ok := err.(*mediumError)
			if !ok {
				return err
			}
			// The device failed part way: what was sent stays sent, the
			// status says the command failed.
			c.log.Warn("device read failed during Data-In", "itt", t.itt, "err", me.err)
			good, status, sense = false, statusCheckCondition, fixedSense(senseMediumError, ascReadError, 0, false)
			resid, residFlag = uint32(t.edtl), 0x02
			d.ps, d.st = d.ps[:0], d.st[:0]
		}
	}
	if send == 0 || !good {
		r := &pdu{}
		r.bhs[0] = opSCSIResp
		r.bhs[1] = 0x80 | residFlag
		r.bhs[3] = status
		r.put32(16, t.itt)
		r.put32(36, d.dataSN) // ExpDataSN
		r.put32(44, resid)
		if len(sense) > 0 {
			r.data = make([]byte, 2+len(sense))
			binary.BigEndian.PutUint16(r.data, uint16(len(sense)))
			copy(r.data[2:], sense)
		}
		d.ps = append(d.ps, r)
		d.st = append(d.st, true)
	}
	return d.flush()
}

// errConnClosing ends a Data-In stream whose connection is going away.
var errConnClosing = errors.New("iscsitarget: connection closing")

// mediumError is a device read that failed while Data-In was streamed.
type mediumError struct{ err error }

func (e *mediumError) Error() string { return "device read: " + e.err.Error() }

// dataInSeq cuts one command's Data-In into PDUs: segments of at most the
// initiator's MaxRecvDataSegmentLength, an F bit at each MaxBurstLength
// boundary, the status (S bit) in the last PDU when the command succeeded.
type dataInSeq struct {
	c         *conn
	t         *task
	emit      func([]*pdu, []bool) error
	total     int // bytes of Data-In in all
	off       int // bytes cut so far
	dataSN    uint32
	good      bool
	resid     uint32
	residFlag byte
	ps        []*pdu
	st        []bool
}

// add cuts data (the next bytes of the sequence) into PDUs, handing them
// to emit in groups of 64; the rest stays in d.ps. The PDUs reference
// data.
func (d *dataInSeq) add(data []byte) error {
	mrdsl, maxBurst := d.c.p.initMaxRecvData, d.c.p.maxBurst
	for pos := 0; pos < len(data); {
		off := d.off
		n := min(mrdsl, len(data)-pos)
		// Respect MaxBurstLength: a sequence ends (F bit) at each burst.
		burstEnd := (off/maxBurst + 1) * maxBurst
		if off+n > burstEnd {
			n = burstEnd - off
		}
		p := &pdu{data: data[pos : pos+n]}
		p.bhs[0] = opDataIn
		last := off+n == d.total
		var f byte
		if last || off+n == burstEnd {
			f |= 0x80
		}
		status := false
		if last && d.good {
			f |= 0x01 | d.residFlag
			p.bhs[3] = statusGood
			p.put32(44, d.resid)
			status = true
		}
		p.bhs[1] = f
		copy(p.bhs[8:16], d.t.lunField[:])
		p.put32(16, d.t.itt)
		p.put32(20, reservedTag)
		p.put32(36, d.dataSN)
		p.put32(40, uint32(off))
		d.dataSN++
		d.ps = append(d.ps, p)
		d.st = append(d.st, status)
		d.off += n
		pos += n
		if len(d.ps) >= 64 && !last {
			if err := d.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *dataInSeq) flush() error {
	if len(d.ps) == 0 {
		return nil
	}
	err := d.emit(d.ps, d.st)
	d.ps, d.st = d.ps[:0], d.st[:0]
	return err
}

// stream copies res's device range into chunks of at most streamChunk
// bytes, each booked against the memory budget while it is held, and sends
// each chunk's PDUs (the last one with the status if the command
// succeeded) before reusing the buffer.
func (d *dataInSeq) stream(res *scsiResult) error {
	l, c := res.src, d.c
	for d.off < d.total {
		n := min(streamChunk, d.total-d.off)
		// Devices read whole sectors; the EDTL may end inside one.
		rn := (n + blockSize - 1) / blockSize * blockSize
		if !c.mem.acquire(rn, c.quit) {
			return errConnClosing
		}
		buf := c.mem.buffer(rn)
		_, err := l.dev.ReadAt(buf, res.srcOff+int64(d.off))
		if err != nil {
			err = &mediumError{err}
		} else if err = d.add(buf[:n]); err == nil {
			err = d.flush()
		}
		c.mem.recycle(buf, rn)
		if err != nil {
			return err
		}
	}
	return nil
}
