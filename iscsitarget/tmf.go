package iscsitarget

import (
	"strings"
	"time"
)

// Task management functions (RFC 7143 §11.5) and the aborts they cause.

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
			c.srv.abortOthers(c, tgt, c.sess.initiator, func(x *task) bool { return x.lunOK && x.lun == lun })
		}
	case tmfLUReset:
		if !lunExists {
			resp = tmfRespNoLUN
			break
		}
		// The LU's state is reset for everyone (SAM), but only the
		// caller's initiator loses commands: another initiator's commands
		// complete normally, so its session is never ended by this.
		c.abortAll(func(x *task) bool { return x.lunOK && x.lun == lun }, true)
		c.srv.abortOthers(c, tgt, c.sess.initiator, func(x *task) bool { return x.lunOK && x.lun == lun })
		c.sess.lu(lun).reset()
	case tmfTargetWarm, tmfTargetCold:
		cold = fn == tmfTargetCold
		c.abortAll(nil, true)
		if c.srv.cfg.AllowGlobalReset {
			c.srv.abortOthers(c, tgt, "", nil)
			for _, l := range tgt.lus {
				l.reset()
			}
			if p := c.sess.priv; p != nil {
				for _, l := range p.lus {
					l.reset()
				}
			}
			break
		}
		// Confined to the caller's initiator: its tasks end, the SPC-2
		// reservations its sessions hold go; other initiators see nothing.
		c.srv.abortOthers(c, tgt, c.sess.initiator, nil)
		for _, nexus := range c.srv.nexusesOf(tgt, c.sess.initiator) {
			for _, l := range tgt.lus {
				l.nexusLost(nexus)
			}
			if p := c.sess.priv; p != nil {
				for _, l := range p.lus {
					l.nexusLost(nexus)
				}
			}
		}
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
		// A cold reset drops the connections of the target (§11.5.1):
		// all of them with AllowGlobalReset, else the caller's initiator's.
		who := c.sess.initiator
		if c.srv.cfg.AllowGlobalReset {
			who = ""
		}
		c.srv.dropTarget(tgt, who)
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

// abortOthers aborts matching tasks on the target's other connections: of
// sessions of the initiator name initiator, or of all if it is "".
func (s *Server) abortOthers(self *conn, tgt *target, initiator string, filter func(*task) bool) {
	s.mu.Lock()
	var others []*conn
	for _, sess := range s.sessions {
		if sess.tgt != tgt || (initiator != "" && !strings.EqualFold(sess.initiator, initiator)) {
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

// nexusesOf lists the I_T nexus names of initiator's sessions to tgt.
func (s *Server) nexusesOf(tgt *target, initiator string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sess := range s.sessions {
		if sess.tgt == tgt && strings.EqualFold(sess.initiator, initiator) {
			out = append(out, sess.nexus)
		}
	}
	return out
}

// dropTarget stops the connections of tgt's sessions: of initiator's
// sessions, or of all if it is "".
func (s *Server) dropTarget(tgt *target, initiator string) {
	s.mu.Lock()
	var conns []*conn
	for _, sess := range s.sessions {
		if sess.tgt == tgt && (initiator == "" || strings.EqualFold(sess.initiator, initiator)) {
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
