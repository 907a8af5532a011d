package iscsitarget

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// writeTimeout bounds sending one response.
const writeTimeout = 60 * time.Second

// session is an iSCSI session: one I_T nexus with its command window. With
// MaxConnections=1 it has at most one connection.
type session struct {
	srv       *Server
	tsih      uint16
	initiator string
	isid      [6]byte
	host      string   // source address of its connection
	tgt       *target  // nil for discovery
	nexus     string   // SCSI initiator port name: "<iqn>,i,0x<isid>"
	priv      *privSet // the initiator's own LUs (LUN.Open); nil if none
	privDone  bool     // priv's reference released; guarded by srv.mu

	mu          sync.Mutex
	expCmdSN    uint32
	outstanding int
	conn        *conn
	queued      map[uint32]*pdu // commands ahead of ExpCmdSN, inside the window
	queuedBytes int             // data bytes of queued
}

// maxQueuedBytes bounds the data of commands waiting for a CmdSN gap to
// fill. With one connection per session, TCP delivers commands in order,
// so a gap is an initiator error, never a reason to buffer much.
const maxQueuedBytes = 1 << 20

// window returns ExpCmdSN and MaxCmdSN for the next PDU.
func (s *session) window() (uint32, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expCmdSN, s.expCmdSN + uint32(s.srv.cfg.QueueDepth-s.outstanding) - 1
}

// serialLess is RFC 1982 serial number comparison for 32-bit numbers.
func serialLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// bind creates the session for a completed login, reinstating an older one
// of the same initiator name and ISID (RFC 7143 §6.3.5).
func (s *Server) bind(l *login) (*session, error) {
	var stale []*conn
	var release []*privSet
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		for _, c := range stale {
			c.kill()
		}
		for _, p := range release {
			s.releasePriv(p)
		}
	}()
	if s.closing {
		return nil, loginFail(statusServiceUnavail, "server shutting down")
	}
	if l.tsih != 0 {
		sess := s.sessions[l.tsih]
		if sess == nil || !strings.EqualFold(sess.initiator, l.initiatorName) || sess.isid != l.isid || sess.tgt != l.tgt {
			return nil, loginFail(statusNoSession, "TSIH %d: no such session", l.tsih)
		}
		sess.mu.Lock()
		old := sess.conn
		if old != nil && old.cid != l.cid {
			sess.mu.Unlock()
			return nil, loginFail(statusTooManyConns, "MaxConnections is 1")
		}
		// Connection reinstatement: the old connection of the same CID goes.
		sess.conn = l.c
		sess.mu.Unlock()
		if old != nil {
			stale = append(stale, old)
		}
		return sess, nil
	}
	for tsih, old := range s.sessions {
		if strings.EqualFold(old.initiator, l.initiatorName) && old.isid == l.isid && old.tgt == l.tgt {
			s.log.Info("session reinstatement: closing the old session", "initiator", l.initiatorName, "tsih", tsih)
			delete(s.sessions, tsih)
			old.mu.Lock()
			if old.conn != nil {
				stale = append(stale, old.conn)
			}
			old.conn = nil
			old.mu.Unlock()
			if old.priv != nil && !old.privDone {
				// The new session of the same initiator took its own
				// reference first: the device stays open for the old
				// session's last commands.
				release = append(release, old.priv)
				old.privDone = true
			}
			if old.tgt != nil {
				for _, lu := range old.tgt.lus {
					lu.nexusLost(old.nexus)
				}
			}
		}
	}
	if len(s.sessions) >= s.cfg.MaxSessions {
		return nil, loginFail(statusOutOfResources, "%d sessions already", len(s.sessions))
	}
	host := l.c.host
	byName, byAddr := 0, 0
	for _, o := range s.sessions {
		if strings.EqualFold(o.initiator, l.initiatorName) {
			byName++
		}
		if o.host == host {
			byAddr++
		}
	}
	if byName >= s.cfg.MaxSessionsPerInitiator {
		return nil, loginFail(statusOutOfResources, "initiator %s has %d sessions already (MaxSessionsPerInitiator)", l.initiatorName, byName)
	}
	if byAddr >= s.cfg.MaxSessionsPerAddress {
		return nil, loginFail(statusOutOfResources, "address %s has %d sessions already (MaxSessionsPerAddress)", host, byAddr)
	}
	for i := 0; i < 65536; i++ {
		s.nextTSIH++
		if s.nextTSIH != 0 && s.sessions[s.nextTSIH] == nil {
			break
		}
	}
	sess := &session{
		srv:       s,
		tsih:      s.nextTSIH,
		initiator: l.initiatorName,
		isid:      l.isid,
		host:      host,
		tgt:       l.tgt,
		priv:      l.priv,
		nexus:     strings.ToLower(l.initiatorName) + ",i,0x" + hex.EncodeToString(l.isid[:]),
		expCmdSN:  l.cmdSN,
		conn:      l.c,
		queued:    make(map[uint32]*pdu),
	}
	s.sessions[sess.tsih] = sess
	return sess, nil
}

// unbind detaches c from sess; with ERL 0 the session ends with its only
// connection, releasing SPC-2 reservations of the nexus.
func (s *Server) unbind(sess *session, c *conn) {
	var release *privSet
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		s.releasePriv(release)
	}()
	sess.mu.Lock()
	mine := sess.conn == c
	if mine {
		sess.conn = nil
	}
	sess.mu.Unlock()
	if !mine {
		return
	}
	if s.sessions[sess.tsih] == sess {
		delete(s.sessions, sess.tsih)
		if !sess.privDone {
			release, sess.privDone = sess.priv, true
		}
	}
	if sess.tgt != nil {
		for _, lu := range sess.tgt.lus {
			lu.nexusLost(sess.nexus)
		}
	}
}

// conn is one TCP connection: the login phase, then the full feature phase.
type conn struct {
	srv  *Server
	nc   net.Conn
	host string // source address, for the per-address limits
	meta ConnMeta
	log  *slog.Logger
	mem  *budgetShare // this connection's account in the server's budget
	// quit is closed when the connection stops or dies: budget waits and
	// delayed login answers give up.
	quit     chan struct{}
	quitOnce sync.Once
	// rxPDUs counts the PDUs the reader got, for idle pings: a counter,
	// not a time stamp, keeps the clock off the per-PDU path.
	rxPDUs atomic.Uint64
	rd     pduReader
	br     *bufio.Reader // rd's buffer, to see whether a whole PDU is waiting

	// PDUs the reader goroutine produced (R2Ts, responses to the writes it
	// ran itself) wait in outQ until it has handled every complete PDU
	// already received, then go out in one write: under load one system
	// call carries many of them. Only the reader goroutine touches outQ.
	outQ  []*pdu
	outSt []bool
	// inlineOff: no writes on the reader before this time (see slowInline).
	inlineOff time.Time

	wmu    sync.Mutex // guards writes, statSN and the digest flags used for sending
	statSN uint32
	hd, dd bool
	wbuf   []byte

	sess *session
	cid  uint16
	p    params

	mu       sync.Mutex
	tasks    map[uint32]*task // by ITT
	ttts     map[uint32]*task // by target transfer tag of an open R2T
	nextTTT  uint32
	text     *textState
	execSem  chan struct{}
	taskWG   sync.WaitGroup
	stopping atomic.Bool
	once     sync.Once
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:   s,
		nc:    nc,
		meta:  ConnMeta{RemoteAddr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr()},
		tasks: make(map[uint32]*task),
		ttts:  make(map[uint32]*task),
	}
	c.host = hostOf(nc.RemoteAddr())
	c.mem = s.mem.share(c.host)
	c.quit = make(chan struct{})
	c.log = s.log.With("remote", nc.RemoteAddr().String())
	c.br = bufio.NewReaderSize(nc, 64<<10)
	c.rd = pduReader{r: c.br, maxData: loginMaxRecvDataLength}
	c.execSem = make(chan struct{}, 16)
	return c
}

// stop ends the connection gracefully: the reader is unblocked with a past
// deadline, in-flight commands complete, then the socket closes.
func (c *conn) stop() {
	c.stopping.Store(true)
	c.closeQuit()
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

// kill closes the socket at once (session reinstatement, fatal errors).
func (c *conn) kill() {
	c.stopping.Store(true)
	c.closeQuit()
	c.once.Do(func() { c.nc.Close() })
}

func (c *conn) closeQuit() { c.quitOnce.Do(func() { close(c.quit) }) }

func (c *conn) serve(ctx context.Context) {
	defer c.srv.removeConn(c)
	defer c.mem.done()
	defer c.kill()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("connection handler panicked; connection dropped", "panic", fmt.Sprint(r))
		}
	}()
	// A caller with AuthLog logs each login and authentication failure
	// itself (xpboot serve, under the client's MAC): the target's own lines
	// are then debug detail, so that a login is one line at INFO.
	reported := c.srv.cfg.AuthLog != nil
	if err := c.runLogin(); err != nil {
		if !c.stopping.Load() {
			level := slog.LevelWarn
			var le *loginError
			if reported && errors.As(err, &le) && le.status == statusAuthFailed {
				level = slog.LevelDebug
			}
			c.log.Log(context.Background(), level, "login failed", "initiator", c.meta.InitiatorName, "target", c.meta.TargetName, "err", err)
		}
		return
	}
	c.log = c.log.With("initiator", c.meta.InitiatorName, "target", c.meta.TargetName)
	level := slog.LevelInfo
	if reported {
		level = slog.LevelDebug
	}
	c.log.Log(context.Background(), level, "login", "session", c.meta.SessionType, "tsih", c.sess.tsih, "isid", hex.EncodeToString(c.sess.isid[:]),
		"header_digest", c.hd, "data_digest", c.dd, "mrdsl", c.p.initMaxRecvData, "immediate_data", c.p.immediateData, "initial_r2t", c.p.initialR2T)
	if c.sess.tgt != nil && c.srv.cfg.IdleTimeout > 0 && !isIPXE(c.sess.isid) {
		go c.pingIdle()
	}
	err := c.fullFeature()
	// Abort what is still waiting for data, let executing commands finish;
	// commands waiting for memory give up.
	c.closeQuit()
	c.abortAll(nil, true)
	c.waitTasks(30*time.Second, nil)
	c.srv.unbind(c.sess, c)
	switch {
	case err == nil, c.stopping.Load(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.log.Info("connection closed")
	default:
		c.log.Warn("connection dropped", "err", err)
	}
}

func (c *conn) waitTasks(d time.Duration, quit <-chan struct{}) {
	done := make(chan struct{})
	go func() { c.taskWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-quit:
	case <-time.After(d):
		c.log.Warn("commands still running at connection end")
	}
}

// finishLogin switches the connection to the negotiated parameters.
func (c *conn) finishLogin(l *login, sess *session) {
	c.sess = sess
	c.cid = l.cid
	c.p = l.params
	c.meta.TargetName = ""
	if sess.tgt != nil {
		c.meta.TargetName = sess.tgt.name
	}
	c.wmu.Lock()
	c.statSN = l.statSN
	c.hd, c.dd = l.params.headerDigest, l.params.dataDigest
	c.wmu.Unlock()
	c.rd.headerDigest, c.rd.dataDigest = c.hd, c.dd
	c.rd.reuseDataOut = true // dataOut copies the data before the next read
	if l.declaredMRDSL {
		c.rd.maxData = c.srv.cfg.MaxRecvDataSegmentLength
	} else {
		c.rd.maxData = 8192
	}
}

// writeRaw sends a PDU as is (login phase: no digests, no sequence fill-in).
func (c *conn) writeRaw(p *pdu) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendPDU(c.wbuf[:0], p, false, false)
	_, err := c.nc.Write(c.wbuf)
	return err
}

// send writes PDUs in order, filling StatSN, ExpCmdSN and MaxCmdSN (bytes
// 24..35 of every target PDU). PDUs flagged in status advance StatSN.
// iPXE copies these fields from every PDU, so they are always meaningful.
func (c *conn) send(ps []*pdu, status []bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var bufs net.Buffers
	hdr := c.wbuf[:0]
	// Headers are packed into one buffer; data segments are referenced.
	type seg struct{ hs, he int }
	segs := make([]seg, len(ps))
	for i, p := range ps {
		exp, maxSN := c.sess.window()
		p.put32(24, c.statSN)
		if status[i] {
			c.statSN++
		}
		p.put32(28, exp)
		p.put32(32, maxSN)
		p.setDataLen(len(p.data))
		p.bhs[4] = byte(len(p.ahs) / 4)
		start := len(hdr)
		hdr = append(hdr, p.bhs[:]...)
		hdr = append(hdr, p.ahs...)
		if c.hd {
			hdr = binary.LittleEndian.AppendUint32(hdr, crc32c(hdr[start:]))
		}
		segs[i] = seg{start, len(hdr)}
	}
	var pad [8]byte
	tails := make([]byte, 0, 8*len(ps))
	for i, p := range ps {
		bufs = append(bufs, hdr[segs[i].hs:segs[i].he])
		if len(p.data) == 0 {
			continue
		}
		bufs = append(bufs, p.data)
		n := pad4(len(p.data))
		ts := len(tails)
		tails = append(tails, pad[:n]...)
		if c.dd {
			crc := crc32cUpdate(crc32c(p.data), pad[:n])
			tails = binary.LittleEndian.AppendUint32(tails, crc)
		}
		if len(tails) > ts {
			bufs = append(bufs, tails[ts:len(tails):len(tails)])
		}
	}
	c.wbuf = hdr
	// An initiator that stops reading must not pin the connection forever.
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := bufs.WriteTo(c.nc)
	if err != nil {
		c.kill()
	}
	return err
}

func (c *conn) send1(p *pdu, status bool) error {
	return c.send([]*pdu{p}, []bool{status})
}

// reject answers a PDU with a Reject carrying its header (RFC 7143 §11.17).
func (c *conn) reject(p *pdu, reason byte, why string) error {
	c.log.Warn("rejecting PDU", "err", p.errorf("%s", why))
	r := &pdu{data: append([]byte(nil), p.bhs[:]...)}
	r.bhs[0] = opReject
	r.bhs[1] = 0x80
	r.bhs[2] = reason
	r.put32(16, reservedTag)
	return c.send1(r, true)
}

// fullFeature is the reader loop of the full feature phase.
func (c *conn) fullFeature() (err error) {
	defer func() {
		// Responses to commands already carried out still go out (best
		// effort: the connection may be gone).
		if ferr := c.flushOut(); err == nil && !c.stopping.Load() {
			err = ferr
		}
	}()
	for {
		if c.stopping.Load() {
			return nil
		}
		if len(c.outQ) > 0 && !c.pduBuffered() {
			// The next read may wait for the initiator, which may be
			// waiting for what is queued.
			if err := c.flushOut(); err != nil {
				return err
			}
		}
		p, err := c.rd.read()
		c.rxPDUs.Add(1)
		if err != nil {
			var pe *PDUError
			if errors.As(err, &pe) && errors.Is(err, ErrDigest) && errors.Is(pe.Err, ErrDigest) && pe.Msg == "data digest" {
				// A data digest error leaves the stream in sync: reject it.
				if rerr := c.reject(&pdu{}, rejectDigestError, err.Error()); rerr != nil {
					return rerr
				}
				continue
			}
			if c.stopping.Load() {
				return nil
			}
			return err
		}
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("PDU", "opcode", fmt.Sprintf("0x%02x", p.opcode()), "itt", fmt.Sprintf("0x%08x", p.itt()), "cmdsn", p.u32(24), "len", len(p.data))
		}
		done, err := c.dispatch(p)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// queueOut queues PDUs of the reader goroutine for flushOut.
func (c *conn) queueOut(ps []*pdu, status []bool) error {
	c.outQ = append(c.outQ, ps...)
	c.outSt = append(c.outSt, status...)
	if len(c.outQ) >= 64 {
		return c.flushOut()
	}
	return nil
}

// flushOut sends the queued PDUs in one write.
func (c *conn) flushOut() error {
	if len(c.outQ) == 0 {
		return nil
	}
	err := c.send(c.outQ, c.outSt)
	clear(c.outQ)
	c.outQ, c.outSt = c.outQ[:0], c.outSt[:0]
	return err
}

// pduBuffered reports whether a complete PDU is already in the read
// buffer, so that reading it cannot wait for the initiator.
func (c *conn) pduBuffered() bool {
	n := c.br.Buffered()
	if n < bhsLen {
		return false
	}
	h, err := c.br.Peek(bhsLen)
	if err != nil {
		return false
	}
	dlen := int(h[5])<<16 | int(h[6])<<8 | int(h[7])
	need := bhsLen + int(h[4])*4 + dlen + pad4(dlen)
	if c.rd.headerDigest {
		need += 4
	}
	if c.rd.dataDigest && dlen > 0 {
		need += 4
	}
	return n >= need
}

// dispatch handles one PDU; done reports a completed logout.
func (c *conn) dispatch(p *pdu) (bool, error) {
	if op := p.opcode(); op != opDataOut && op != opSCSICmd {
		// Everything but the write data path is answered at once and
		// after what is queued, in arrival order.
		if err := c.flushOut(); err != nil {
			return false, err
		}
	}
	switch p.opcode() {
	case opDataOut:
		return false, c.dataOut(p)
	case opSNACK:
		return false, c.reject(p, rejectSNACK, "SNACK with ErrorRecoveryLevel 0")
	case opNOPOut, opSCSICmd, opTaskMgmt, opTextReq, opLogoutReq:
	default:
		return false, c.reject(p, rejectProtocolError, "unexpected opcode")
	}
	if p.opcode() == opNOPOut && p.itt() == reservedTag {
		// Answer to a target ping (we send none) or a CmdSN carrier: no reply.
		if !p.immediate() {
			return false, p.errorf("NOP-Out without ITT must be immediate")
		}
		return false, nil
	}
	if p.immediate() {
		return c.execute(p)
	}
	// CmdSN ordering (RFC 7143 §4.2.2.1): outside the window is discarded
	// silently; ahead of ExpCmdSN waits for the gap to fill.
	sess := c.sess
	cmdSN := p.u32(24)
	sess.mu.Lock()
	exp := sess.expCmdSN
	maxSN := exp + uint32(c.srv.cfg.QueueDepth-sess.outstanding) - 1
	if serialLess(cmdSN, exp) || serialLess(maxSN, cmdSN) {
		sess.mu.Unlock()
		c.log.Debug("PDU outside the command window discarded", "opcode", p.opcode(), "itt", p.itt(), "cmdsn", cmdSN, "expcmdsn", exp, "maxcmdsn", maxSN)
		return false, nil
	}
	if cmdSN != exp {
		if _, dup := sess.queued[cmdSN]; !dup {
			if sess.queuedBytes+len(p.data) > maxQueuedBytes {
				sess.mu.Unlock()
				return false, p.errorf("commands waiting for CmdSN %d would hold more than %d bytes", exp, maxQueuedBytes)
			}
			sess.queued[cmdSN] = p
			sess.queuedBytes += len(p.data)
		}
		sess.mu.Unlock()
		return false, nil
	}
	sess.expCmdSN++
	if p.opcode() == opSCSICmd {
		// Counted in the same step as ExpCmdSN so that MaxCmdSN never
		// moves backwards (it is ExpCmdSN + depth - 1 - outstanding).
		sess.outstanding++
	}
	sess.mu.Unlock()
	done, err := c.execute(p)
	// Run queued PDUs that are now in order; bounded by the window size.
	for i := 0; !done && err == nil && i <= c.srv.cfg.QueueDepth; i++ {
		sess.mu.Lock()
		q := sess.queued[sess.expCmdSN]
		if q == nil {
			sess.mu.Unlock()
			break
		}
		delete(sess.queued, sess.expCmdSN)
		sess.queuedBytes -= len(q.data)
		sess.expCmdSN++
		if q.opcode() == opSCSICmd {
			sess.outstanding++
		}
		sess.mu.Unlock()
		done, err = c.execute(q)
	}
	return done, err
}

func (c *conn) execute(p *pdu) (bool, error) {
	switch p.opcode() {
	case opNOPOut:
		return false, c.nopOut(p)
	case opSCSICmd:
		return false, c.scsiCommand(p)
	case opTaskMgmt:
		return false, c.taskMgmt(p)
	case opTextReq:
		return false, c.textRequest(p)
	case opLogoutReq:
		return c.logout(p)
	}
	return false, nil
}

func (c *conn) nopOut(p *pdu) error {
	if len(p.data) > c.p.initMaxRecvData {
		return c.reject(p, rejectProtocolError, "ping data longer than the initiator's MaxRecvDataSegmentLength")
	}
	r := &pdu{data: p.data}
	r.bhs[0] = opNOPIn
	r.bhs[1] = 0x80
	copy(r.bhs[8:16], p.bhs[8:16])
	r.put32(16, p.itt())
	r.put32(20, reservedTag)
	return c.send1(r, true)
}

func (c *conn) logout(p *pdu) (bool, error) {
	reason := p.flags() & 0x7f
	r := &pdu{}
	r.bhs[0] = opLogoutResp
	r.bhs[1] = 0x80
	r.put32(16, p.itt())
	switch reason {
	case 0, 1:
		if reason == 1 && binary.BigEndian.Uint16(p.bhs[20:]) != c.cid {
			r.bhs[2] = 1 // CID not found
			return false, c.send1(r, true)
		}
		// Outstanding commands complete before the response (§11.14).
		// Those still waiting for Data-Out (or for their CmdSN) never
		// would: this reader is the one that would read their data. They
		// end here, and a server shutting down does not wait at all.
		c.abortAll(func(t *task) bool { return !t.running }, false)
		c.waitTasks(30*time.Second, c.quit)
		binary.BigEndian.PutUint16(r.bhs[40:], uint16(c.p.defaultTime2Wait))
		binary.BigEndian.PutUint16(r.bhs[42:], uint16(c.p.defaultTime2Retain))
		if err := c.send1(r, true); err != nil {
			return false, err
		}
		c.log.Info("logout", "reason", reason)
		return true, nil
	default:
		r.bhs[2] = 2 // connection recovery not supported
		return false, c.send1(r, true)
	}
}
