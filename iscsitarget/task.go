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

	data        []byte // write data received so far, in order; cap is held
	held        int    // bytes of data booked in the connection's memory budget
	growing     bool   // waiting for budget to grow data to the whole EDTL
	unsolEnd    int    // offset where unsolicited data ends
	unsolOpen   bool   // unsolicited Data-Out PDUs still expected
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

// maxImmediateTasks is how many commands a connection may have beyond its
// command window (immediate ones) before further ones get TASK SET FULL.
const maxImmediateTasks = 16

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
	c.mu.Lock()
	busy := len(c.tasks)
	c.mu.Unlock()
	if busy >= c.srv.cfg.QueueDepth+maxImmediateTasks {
		// Only immediate commands get past the command window: answered
		// at once from the reader, which also stops reading while the
		// answer cannot be sent (backpressure).
		c.releaseSlot(p)
		r := &pdu{}
		r.bhs[0] = opSCSIResp
		r.bhs[1] = 0x80
		r.bhs[3] = statusTaskSetFull
		r.put32(16, t.itt)
		return c.send1(r, true)
	}
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
	unsolEnd := len(p.data)
	if !c.p.initialR2T && !p.final() {
		unsolEnd = min(c.p.firstBurst, t.edtl)
	}
	if unsolEnd > 0 {
		size := t.edtl
		if !c.mem.tryAcquire(size) {
			// Data the initiator sends unasked is here or on its way: it
			// is taken whatever the budget, but only it (at most
			// FirstBurstLength per command); room for the rest is waited
			// for before its R2Ts (solicit).
			size = unsolEnd
			c.mem.force(size)
		}
		c.allocData(t, p.data, unsolEnd, size)
		if len(t.data) == t.edtl {
			return c.startTask(t)
		}
		return c.solicit(t, c.queueOut)
	}
	// Nothing is solicited, and nothing allocated, before the budget has
	// room for the whole transfer.
	if c.mem.tryAcquire(t.edtl) {
		c.allocData(t, nil, 0, t.edtl)
		return c.solicit(t, c.queueOut)
	}
	go func() {
		if !c.mem.acquire(t.edtl, t.done, c.quit) {
			return
		}
		c.mu.Lock()
		if t.finished {
			c.mu.Unlock()
			c.mem.release(t.edtl)
			return
		}
		c.allocDataLocked(t, nil, 0, t.edtl)
		c.mu.Unlock()
		if err := c.solicit(t, c.send); err != nil {
			c.log.Debug("sending R2T failed", "itt", t.itt, "err", err)
		}
	}()
	return nil
}

// allocData gives t its write buffer of size bytes (already booked in
// the budget: the EDTL, or only the unsolicited part when the budget had
// no room for more), holding the immediate data first, with unsolicited
// data expected up to unsolEnd.
func (c *conn) allocData(t *task, first []byte, unsolEnd, size int) {
	c.mu.Lock()
	c.allocDataLocked(t, first, unsolEnd, size)
	c.mu.Unlock()
}

func (c *conn) allocDataLocked(t *task, first []byte, unsolEnd, size int) {
	t.held = size
	t.data = c.mem.buffer(size)[:len(first)]
	copy(t.data, first)
	t.unsolEnd = max(len(first), unsolEnd)
	t.unsolOpen = t.unsolEnd > len(t.data)
	t.r2tNext = t.unsolEnd
}

// growLocked books extra more bytes for t's buffer (already acquired) and
// moves the data received so far into a buffer of the whole EDTL.
func (c *conn) growLocked(t *task, extra int) {
	b := c.mem.buffer(t.edtl)[:len(t.data)]
	copy(b, t.data)
	c.mem.recycle(t.data, 0) // the booking moves to b
	t.data = b
	t.held += extra
}

// solicit sends R2Ts for the rest of t's data, at most MaxOutstandingR2T
// open at a time and each at most MaxBurstLength, through emit (c.queueOut
// on the reader goroutine, c.send elsewhere).
func (c *conn) solicit(t *task, emit func([]*pdu, []bool) error) error {
	var out []*pdu
	c.mu.Lock()
	if t.held > 0 && t.held < t.edtl && !t.finished && t.r2tNext < t.edtl {
		// Only the unsolicited data was booked: room for the rest first.
		if t.growing {
			c.mu.Unlock()
			return nil
		}
		extra := t.edtl - t.held
		if !c.mem.tryAcquire(extra) {
			t.growing = true
			c.mu.Unlock()
			go func() {
				if !c.mem.acquire(extra, t.done, c.quit) {
					return
				}
				c.mu.Lock()
				t.growing = false
				if t.finished {
					c.mu.Unlock()
					c.mem.release(extra)
					return
				}
				c.growLocked(t, extra)
				c.mu.Unlock()
				if err := c.solicit(t, c.send); err != nil {
					c.log.Debug("sending R2T failed", "itt", t.itt, "err", err)
				}
			}()
			return nil
		}
		c.growLocked(t, extra)
	}
	for !t.finished && t.held == t.edtl && len(t.open) < c.p.maxOutstandingR2T && t.r2tNext < t.edtl {
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
	// Queued on the reader: R2Ts for the commands of one read go out
	// together.
	return emit(out, make([]bool, len(out)))
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
	return c.solicit(t, c.queueOut)
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
	data, held := t.data, t.held
	t.data, t.held = nil, 0
	c.mu.Unlock()
	if held > 0 {
		c.mem.recycle(data, held)
	}
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
		c.log.Debug("SCSI command", "itt", t.itt, "command", cmdName(t.cdb), "cdb", fmt.Sprintf("%x", t.cdb[:cdbLen(t.cdb[0])]), "edtl", t.edtl, "status", res.status, "sense", fmt.Sprintf("%x", res.sense))
	}
	if t.aborted.Load() {
		return nil
	}
	err := c.sendResult(t, res, emit)
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
