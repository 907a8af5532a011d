package iscsitarget

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// task is one SCSI command of a connection, from its SCSI Command PDU to its
// response: it collects write data (immediate, unsolicited, solicited via
// R2T), then runs in its own goroutine.
type task struct {
	itt       uint32
	immediate bool
	lunField  [8]byte
	lun       uint16
	lunOK     bool
	cdb       []byte
	rflag     bool
	wflag     bool
	edtl      int

	data        []byte   // write data received so far, in order
	pool        *bufPool // where data came from, if pooled
	unsolEnd    int      // offset where unsolicited data ends
	unsolOpen   bool     // unsolicited Data-Out PDUs still expected
	unsolDataSN uint32
	r2tNext     int // next offset to solicit
	r2tSN       uint32
	open        []*r2tState

	running  bool // handed to execution
	finished bool
	// lateAbort is an ABORT TASK that arrived while the data this task had
	// already solicited was in flight; see taskMgmt.
	lateAbort *pdu
	lateTimer *time.Timer
	aborted   atomic.Bool
	done      chan struct{}
}

type r2tState struct {
	ttt      uint32
	off, end int
	dataSN   uint32
}

// decodeLUN reads a single-level LUN in peripheral or flat addressing.
func decodeLUN(f [8]byte) (uint16, bool) {
	for _, b := range f[2:] {
		if b != 0 {
			return 0, false
		}
	}
	switch f[0] >> 6 {
	case 0: // peripheral device addressing, bus 0
		if f[0]&0x3f != 0 {
			return 0, false
		}
		return uint16(f[1]), true
	case 1: // flat space addressing
		return uint16(f[0]&0x3f)<<8 | uint16(f[1]), true
	}
	return 0, false
}

// encodeLUN is the REPORT LUNS form of n.
func encodeLUN(n uint16) [8]byte {
	var f [8]byte
	if n < 256 {
		f[1] = byte(n)
	} else {
		f[0] = 0x40 | byte(n>>8)
		f[1] = byte(n)
	}
	return f
}

// releaseSlot returns the window slot a refused non-immediate command took.
func (c *conn) releaseSlot(p *pdu) {
	if !p.immediate() {
		c.sess.mu.Lock()
		c.sess.outstanding--
		c.sess.mu.Unlock()
	}
}

func (c *conn) scsiCommand(p *pdu) error {
	if c.sess.tgt == nil {
		c.releaseSlot(p)
		return c.reject(p, rejectProtocolError, "SCSI command in a discovery session")
	}
	t := &task{
		itt:       p.itt(),
		immediate: p.immediate(),
		lunField:  p.lun(),
		rflag:     p.flags()&0x40 != 0,
		wflag:     p.flags()&0x20 != 0,
		edtl:      int(p.u32(20)),
		done:      make(chan struct{}),
	}
	t.lun, t.lunOK = decodeLUN(t.lunField)
	t.cdb = append([]byte(nil), p.bhs[32:48]...)
	if len(p.ahs) > 0 {
		// Extended CDB AHS (type 1): 2-byte length, type, reserved, bytes.
		if len(p.ahs) >= 4 && p.ahs[2] == 1 {
			n := int(binary.BigEndian.Uint16(p.ahs)) - 1
			if n > 0 && 4+n <= len(p.ahs) {
				t.cdb = append(t.cdb, p.ahs[4:4+n]...)
			}
		}
	}
	if t.itt == reservedTag {
		c.releaseSlot(p)
		return c.reject(p, rejectInvalidField, "reserved ITT")
	}
	c.mu.Lock()
	_, dup := c.tasks[t.itt]
	if !dup {
		c.tasks[t.itt] = t
	}
	c.mu.Unlock()
	if dup {
		c.releaseSlot(p)
		return c.reject(p, rejectTaskInProgress, "ITT already in use")
	}
	c.taskWG.Add(1)
	if len(p.data) > 0 && (!t.wflag || !c.p.immediateData) {
		c.finishTask(t)
		return c.reject(p, rejectProtocolError, "immediate data not allowed")
	}
	if t.edtl > c.srv.cfg.MaxTransferLength {
		go c.respondOnly(t, checkCondition(senseIllegalRequest, ascInvalidFieldInCDB))
		return nil
	}
	if !t.wflag || t.edtl == 0 {
		return c.startTask(t)
	}
	if len(p.data) > t.edtl || len(p.data) > c.p.firstBurst {
		c.finishTask(t)
		return &PDUError{Opcode: opSCSICmd, ITT: t.itt, Msg: "immediate data longer than FirstBurstLength or the expected transfer length"}
	}
	if l := c.sess.lu(t.lun); l != nil && t.lunOK {
		t.pool = &l.pool
		t.data = l.pool.get(t.edtl)[:len(p.data)]
	} else {
		t.data = make([]byte, len(p.data), t.edtl)
	}
	copy(t.data, p.data)
	t.unsolEnd = len(p.data)
	if !c.p.initialR2T && !p.final() {
		t.unsolEnd = min(c.p.firstBurst, t.edtl)
		t.unsolOpen = t.unsolEnd > len(t.data)
	}
	t.r2tNext = t.unsolEnd
	if len(t.data) == t.edtl {
		return c.startTask(t)
	}
	return c.solicit(t)
}

// solicit sends R2Ts for the rest of t's data, at most MaxOutstandingR2T
// open at a time and each at most MaxBurstLength.
func (c *conn) solicit(t *task) error {
	var out []*pdu
	c.mu.Lock()
	for len(t.open) < c.p.maxOutstandingR2T && t.r2tNext < t.edtl {
		n := min(c.p.maxBurst, t.edtl-t.r2tNext)
		c.nextTTT++
		ttt := c.nextTTT & 0x7fffffff
		r := &r2tState{ttt: ttt, off: t.r2tNext, end: t.r2tNext + n}
		t.open = append(t.open, r)
		c.ttts[ttt] = t
		p := &pdu{}
		p.bhs[0] = opR2T
		p.bhs[1] = 0x80
		copy(p.bhs[8:16], t.lunField[:])
		p.put32(16, t.itt)
		p.put32(20, ttt)
		p.put32(36, t.r2tSN)
		p.put32(40, uint32(r.off))
		p.put32(44, uint32(n))
		t.r2tSN++
		t.r2tNext += n
		out = append(out, p)
	}
	c.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	// Queued: R2Ts for the commands of one read go out together.
	return c.queueOut(out, make([]bool, len(out)))
}

// dataOut validates one Data-Out PDU (TTT, DataSN, offset, length) and
// stores its data. Violations end the connection: with ErrorRecoveryLevel 0
// that is the recovery RFC 7143 prescribes.
func (c *conn) dataOut(p *pdu) error {
	ttt := p.u32(20)
	dataSN := p.u32(36)
	off := int(p.u32(40))
	c.mu.Lock()
	var t *task
	var r *r2tState
	if ttt == reservedTag {
		t = c.tasks[p.itt()]
		if t == nil || t.running {
			c.mu.Unlock()
			// Data of a command we already answered (e.g. refused): drop.
			c.log.Debug("unsolicited Data-Out for no waiting task dropped", "itt", p.itt())
			return nil
		}
		if !t.unsolOpen {
			c.mu.Unlock()
			return p.errorf("unsolicited Data-Out not expected")
		}
		if dataSN != t.unsolDataSN {
			c.mu.Unlock()
			return p.errorf("DataSN %d, expected %d", dataSN, t.unsolDataSN)
		}
		if off != len(t.data) || off+len(p.data) > t.unsolEnd {
			c.mu.Unlock()
			return p.errorf("unsolicited data at offset %d+%d, expected offset %d up to %d", off, len(p.data), len(t.data), t.unsolEnd)
		}
		t.unsolDataSN++
		t.data = append(t.data, p.data...)
		if p.final() {
			t.unsolOpen = false
			if len(t.data) != t.unsolEnd {
				c.mu.Unlock()
				return p.errorf("unsolicited burst ended at %d, FirstBurstLength requires %d", len(t.data), t.unsolEnd)
			}
		}
	} else {
		t = c.ttts[ttt]
		if t == nil || t.itt != p.itt() {
			c.mu.Unlock()
			if t == nil {
				// R2T of an aborted task: its data may still be in flight.
				return nil
			}
			return p.errorf("target transfer tag 0x%08x belongs to another task", ttt)
		}
		for _, o := range t.open {
			if o.ttt == ttt {
				r = o
			}
		}
		if dataSN != r.dataSN {
			c.mu.Unlock()
			return p.errorf("DataSN %d, expected %d", dataSN, r.dataSN)
		}
		if off != len(t.data) || off < r.off || off+len(p.data) > r.end {
			c.mu.Unlock()
			return p.errorf("data at offset %d+%d outside the R2T range %d..%d (expected offset %d)", off, len(p.data), r.off, r.end, len(t.data))
		}
		r.dataSN++
		t.data = append(t.data, p.data...)
		if len(t.data) == r.end {
			delete(c.ttts, ttt)
			for i, o := range t.open {
				if o == r {
					t.open = append(t.open[:i], t.open[i+1:]...)
					break
				}
			}
		} else if p.final() {
			c.mu.Unlock()
			return p.errorf("F bit before the end of the R2T range")
		}
	}
	complete := len(t.data) == t.edtl && !t.unsolOpen
	c.mu.Unlock()
	if complete {
		return c.startTask(t)
	}
	return c.solicit(t)
}

// A write run by the reader that takes longer than slowInline (the page
// cache is full and the kernel throttles writers, say) makes the
// connection hand its writes to workers again for inlinePause, so that the
// commands behind it are not held up.
const (
	slowInline  = 20 * time.Millisecond
	inlinePause = time.Second
)

// inlineWrite reports whether t is a write the reader goroutine carries out
// itself: a plain WRITE of at most 64 KiB, without FUA (which flushes).
// Such a write costs a few microseconds in the page cache, less than
// handing it to another goroutine, and its response joins the reader's
// queued output.
func inlineWrite(t *task) bool {
	if !t.wflag || t.rflag || t.edtl > 64<<10 || len(t.cdb) == 0 {
		return false
	}
	switch t.cdb[0] {
	case 0x0a: // WRITE(6)
		return true
	case 0x2a, 0xaa, 0x8a: // WRITE(10), WRITE(12), WRITE(16)
		return t.cdb[1]&0x08 == 0
	}
	return false
}

// startTask hands a task with all its data to a worker goroutine, or runs
// a small write at once (see inlineWrite). Only the reader goroutine calls
// it.
func (c *conn) startTask(t *task) error {
	c.mu.Lock()
	if t.finished {
		c.mu.Unlock()
		return nil
	}
	t.running = true
	c.mu.Unlock()
	if inlineWrite(t) {
		start := time.Now()
		if start.After(c.inlineOff) {
			err := c.runTask(t, c.queueOut)
			if d := time.Since(start); d > slowInline {
				c.inlineOff = start.Add(d + inlinePause)
				c.log.Debug("slow write on the reader: writes go to workers for a while", "itt", t.itt, "took", d)
			}
			return err
		}
	}
	go func() {
		c.execSem <- struct{}{}
		defer func() { <-c.execSem }()
		defer func() {
			// A bug in a command handler costs this connection, never the
			// server.
			if r := recover(); r != nil {
				c.log.Error("command handler panicked; connection dropped", "itt", t.itt, "cdb", fmt.Sprintf("%x", t.cdb), "panic", fmt.Sprint(r))
				c.finishTask(t)
				c.kill()
			}
		}()
		if err := c.runTask(t, c.send); err != nil {
			c.log.Debug("sending response failed", "itt", t.itt, "err", err)
		}
	}()
	return nil
}

// finishTask removes a task and returns its window slot.
func (c *conn) finishTask(t *task) {
	c.mu.Lock()
	if t.finished {
		c.mu.Unlock()
		return
	}
	t.finished = true
	if c.tasks[t.itt] == t {
		delete(c.tasks, t.itt)
	}
	for _, r := range t.open {
		delete(c.ttts, r.ttt)
	}
	t.open = nil
	if t.pool != nil {
		t.pool.put(t.data)
		t.data, t.pool = nil, nil
	}
	c.mu.Unlock()
	close(t.done)
	if !t.immediate {
		c.sess.mu.Lock()
		c.sess.outstanding--
		c.sess.mu.Unlock()
	}
	c.taskWG.Done()
}

func (c *conn) respondOnly(t *task, res *scsiResult) {
	defer c.finishTask(t)
	if t.aborted.Load() {
		return
	}
	_ = c.sendResult(t, res, c.send)
}

// runTask executes the command and hands Data-In and the response to emit
// (c.send, or c.queueOut on the reader goroutine). The error is emit's.
func (c *conn) runTask(t *task, emit func([]*pdu, []bool) error) error {
	defer c.finishTask(t)
	if t.aborted.Load() {
		return nil
	}
	var l *lu
	if t.lunOK {
		l = c.sess.lu(t.lun)
	}
	res := execSCSI(l, c.sess, t.cdb, t.data, t.edtl)
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("SCSI command", "itt", t.itt, "cdb", fmt.Sprintf("%x", t.cdb[:cdbLen(t.cdb[0])]), "edtl", t.edtl, "status", res.status, "sense", fmt.Sprintf("%x", res.sense))
	}
	if t.aborted.Load() {
		res.release()
		return nil
	}
	err := c.sendResult(t, res, emit)
	res.release()
	c.mu.Lock()
	late := t.lateAbort
	t.lateAbort = nil
	if t.lateTimer != nil {
		t.lateTimer.Stop()
	}
	c.mu.Unlock()
	if late != nil && err == nil {
		err = emit([]*pdu{tmfResponse(late, tmfRespNoTask)}, []bool{true})
	}
	return err
}

// sendResult sends read data as Data-In PDUs no longer than the initiator's
// MaxRecvDataSegmentLength, in sequences of at most MaxBurstLength, then the
// status: in the last Data-In (S bit) for GOOD, else in a SCSI Response with
// sense data.
// Data-In goes to emit before res is released, so emit must have written
// or copied any PDU data it got by the time it returns; c.queueOut only gets
// writes, whose responses carry no Data-In.
func (c *conn) sendResult(t *task, res *scsiResult, emit func([]*pdu, []bool) error) error {
	data := res.data
	var resid uint32
	var residFlag byte
	if t.wflag || (res.wantOut > 0 && !t.rflag) {
		switch {
		case res.wantOut > t.edtl:
			resid, residFlag = uint32(res.wantOut-t.edtl), 0x04
		case res.wantOut < t.edtl:
			resid, residFlag = uint32(t.edtl-res.wantOut), 0x02
		}
		data = nil
	} else {
		if !t.rflag {
			data = nil
			if len(res.data) > 0 {
				resid, residFlag = uint32(len(res.data)), 0x04
			}
		} else {
			switch {
			case len(data) > t.edtl:
				resid, residFlag = uint32(len(data)-t.edtl), 0x04
				data = data[:t.edtl]
			case len(data) < t.edtl:
				resid, residFlag = uint32(t.edtl-len(data)), 0x02
			}
		}
	}
	good := res.status == statusGood
	mrdsl := c.p.initMaxRecvData
	var ps []*pdu
	var st []bool
	dataSN := uint32(0)
	for off := 0; off < len(data); {
		n := min(mrdsl, len(data)-off)
		// Respect MaxBurstLength: a sequence ends (F bit) at each burst.
		burstEnd := (off/c.p.maxBurst + 1) * c.p.maxBurst
		if off+n > burstEnd {
			n = burstEnd - off
		}
		p := &pdu{data: data[off : off+n]}
		p.bhs[0] = opDataIn
		last := off+n == len(data)
		var f byte
		if last || off+n == burstEnd {
			f |= 0x80
		}
		status := false
		if last && good {
			f |= 0x01 | residFlag
			p.bhs[3] = statusGood
			p.put32(44, resid)
			status = true
		}
		p.bhs[1] = f
		copy(p.bhs[8:16], t.lunField[:])
		p.put32(16, t.itt)
		p.put32(20, reservedTag)
		p.put32(36, dataSN)
		p.put32(40, uint32(off))
		dataSN++
		ps = append(ps, p)
		st = append(st, status)
		off += n
		if len(ps) >= 64 {
			if err := emit(ps, st); err != nil {
				return err
			}
			ps, st = ps[:0], st[:0]
		}
	}
	if len(data) == 0 || !good {
		r := &pdu{}
		r.bhs[0] = opSCSIResp
		r.bhs[1] = 0x80 | residFlag
		r.bhs[3] = res.status
		r.put32(16, t.itt)
		r.put32(36, dataSN) // ExpDataSN
		r.put32(44, resid)
		if len(res.sense) > 0 {
			r.data = make([]byte, 2+len(res.sense))
			binary.BigEndian.PutUint16(r.data, uint16(len(res.sense)))
			copy(r.data[2:], res.sense)
		}
		ps = append(ps, r)
		st = append(st, true)
	}
	return emit(ps, st)
}

// abortAll aborts tasks: all of this connection (filter nil) or those the
// filter selects. Tasks still waiting for data end at once; running ones
// finish without sending a response. With wait it waits for running ones.
func (c *conn) abortAll(filter func(*task) bool, wait bool) {
	c.mu.Lock()
	var waiting, running []*task
	for _, t := range c.tasks {
		if filter != nil && !filter(t) {
			continue
		}
		t.aborted.Store(true)
		if t.running {
			running = append(running, t)
		} else {
			waiting = append(waiting, t)
		}
	}
	c.mu.Unlock()
	for _, t := range waiting {
		c.finishTask(t)
	}
	if wait {
		deadline := time.After(30 * time.Second)
		for _, t := range running {
			select {
			case <-t.done:
			case <-deadline:
				return
			}
		}
	}
}

// Task management functions and responses (RFC 7143 §11.5, §11.6).
const (
	tmfAbortTask     = 1
	tmfAbortTaskSet  = 2
	tmfClearACA      = 3
	tmfClearTaskSet  = 4
	tmfLUReset       = 5
	tmfTargetWarm    = 6
	tmfTargetCold    = 7
	tmfTaskReassign  = 8
	tmfRespComplete  = 0
	tmfRespNoTask    = 1
	tmfRespNoLUN     = 2
	tmfRespNoReassgn = 4
	tmfRespNotSupp   = 5
)

func (c *conn) taskMgmt(p *pdu) error {
	fn := p.flags() & 0x7f
	resp := byte(tmfRespComplete)
	lun, lunOK := decodeLUN(p.lun())
	tgt := c.sess.tgt
	if tgt == nil {
		return c.reject(p, rejectProtocolError, "task management in a discovery session")
	}
	lunExists := lunOK && tgt.lus[lun] != nil
	cold := false
	switch fn {
	case tmfAbortTask:
		rtt := p.u32(20)
		c.mu.Lock()
		t := c.tasks[rtt]
		if t != nil && !t.running && len(t.open) > 0 && t.lateAbort == nil {
			// The initiator is already sending the data we asked for: let
			// the command finish and answer the abort as arriving after
			// it ("task does not exist"), unless the data stalls. This
			// keeps the SCSI response and the TMF response in a
			// consistent order, the race outcome libiscsi's
			// iSCSITMF.AbortTaskSimpleAsync handles without crashing.
			t.lateAbort = p
			t.lateTimer = time.AfterFunc(2*time.Second, func() { c.abortStalled(t) })
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		if t == nil {
			resp = tmfRespNoTask
		} else {
			c.abortAll(func(x *task) bool { return x == t }, true)
		}
	case tmfAbortTaskSet, tmfClearTaskSet:
		if !lunExists {
			resp = tmfRespNoLUN
			break
		}
		c.abortAll(func(x *task) bool { return x.lunOK && x.lun == lun }, true)
		if fn == tmfClearTaskSet {
			c.srv.abortOthers(c, tgt, func(x *task) bool { return x.lunOK && x.lun == lun })
		}
	case tmfLUReset:
		if !lunExists {
			resp = tmfRespNoLUN
			break
		}
		c.abortAll(func(x *task) bool { return x.lunOK && x.lun == lun }, true)
		c.srv.abortOthers(c, tgt, func(x *task) bool { return x.lunOK && x.lun == lun })
		c.sess.lu(lun).reset()
	case tmfTargetWarm, tmfTargetCold:
		c.abortAll(nil, true)
		c.srv.abortOthers(c, tgt, nil)
		for _, l := range tgt.lus {
			l.reset()
		}
		if p := c.sess.priv; p != nil {
			for _, l := range p.lus {
				l.reset()
			}
		}
		cold = fn == tmfTargetCold
	case tmfClearACA:
		resp = tmfRespNotSupp
	case tmfTaskReassign:
		resp = tmfRespNoReassgn
	default:
		resp = tmfRespNotSupp
	}
	r := &pdu{}
	r.bhs[0] = opTaskResp
	r.bhs[1] = 0x80
	r.bhs[2] = resp
	r.put32(16, p.itt())
	c.log.Info("task management", "function", fn, "lun", lun, "response", resp)
	if err := c.send1(r, true); err != nil {
		return err
	}
	if cold {
		// A cold reset drops every connection of the target (§11.5.1).
		c.srv.dropTarget(tgt)
	}
	return nil
}

// abortStalled really aborts a task whose ABORT TASK was deferred but
// whose data did not arrive.
func (c *conn) abortStalled(t *task) {
	c.mu.Lock()
	p := t.lateAbort
	stalled := p != nil && !t.running && !t.finished
	t.lateAbort = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	resp := byte(tmfRespNoTask)
	if stalled {
		c.abortAll(func(x *task) bool { return x == t }, true)
		resp = tmfRespComplete
	}
	c.sendTMFResponse(p, resp)
}

func (c *conn) sendTMFResponse(p *pdu, resp byte) {
	_ = c.send1(tmfResponse(p, resp), true)
}

// tmfResponse is the Task Management Function Response to request p.
func tmfResponse(p *pdu, resp byte) *pdu {
	r := &pdu{}
	r.bhs[0] = opTaskResp
	r.bhs[1] = 0x80
	r.bhs[2] = resp
	r.put32(16, p.itt())
	return r
}

// abortOthers aborts matching tasks on the target's other connections.
func (s *Server) abortOthers(self *conn, tgt *target, filter func(*task) bool) {
	s.mu.Lock()
	var others []*conn
	for _, sess := range s.sessions {
		if sess.tgt != tgt {
			continue
		}
		sess.mu.Lock()
		if sess.conn != nil && sess.conn != self {
			others = append(others, sess.conn)
		}
		sess.mu.Unlock()
	}
	s.mu.Unlock()
	for _, o := range others {
		o.abortAll(filter, true)
	}
}

func (s *Server) dropTarget(tgt *target) {
	s.mu.Lock()
	var conns []*conn
	for _, sess := range s.sessions {
		if sess.tgt == tgt {
			sess.mu.Lock()
			if sess.conn != nil {
				conns = append(conns, sess.conn)
			}
			sess.mu.Unlock()
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
}
