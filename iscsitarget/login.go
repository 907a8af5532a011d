package iscsitarget

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// The login phase (RFC 7143 §6.3): a typed stage plus an explicit CHAP
// sub-state. Every transition is in (*login).step.

type stage uint8

const (
	stageSecurity    stage = 0
	stageOperational stage = 1
	stageFull        stage = 3
)

func (s stage) String() string {
	switch s {
	case stageSecurity:
		return "security"
	case stageOperational:
		return "operational"
	case stageFull:
		return "full-feature"
	}
	return "stage(" + strconv.Itoa(int(s)) + ")"
}

type authState uint8

const (
	authStart authState = iota // AuthMethod not yet negotiated
	authWaitA                  // CHAP chosen, waiting for CHAP_A
	authWaitR                  // challenge sent, waiting for CHAP_N/CHAP_R
	authDone                   // authenticated (or None allowed)
)

// Login status classes and details (RFC 7143 §11.13.5).
const (
	statusSuccess          = 0x0000
	statusInitiatorError   = 0x0200
	statusAuthFailed       = 0x0201
	statusForbidden        = 0x0202
	statusNotFound         = 0x0203
	statusUnsupportedVer   = 0x0205
	statusTooManyConns     = 0x0206
	statusMissingParam     = 0x0207
	statusCantInclude      = 0x0208
	statusSessionType      = 0x0209
	statusNoSession        = 0x020a
	statusInvalidDuring    = 0x020b
	statusTargetError      = 0x0300
	statusServiceUnavail   = 0x0301
	statusOutOfResources   = 0x0302
	maxLoginRounds         = 32
	maxLoginContinuations  = 16
	loginMaxRecvDataLength = 8192 // MaxRecvDataSegmentLength during login
)

// loginError ends the login with a status; msg goes to the log only.
type loginError struct {
	status uint16
	msg    string
}

func (e *loginError) Error() string {
	return fmt.Sprintf("login failed with status 0x%04x: %s", e.status, e.msg)
}

func loginFail(status uint16, format string, args ...any) *loginError {
	return &loginError{status: status, msg: fmt.Sprintf(format, args...)}
}

type login struct {
	c     *conn
	priv  *privSet // acquired for the session being created
	stage stage
	auth  authState
	first bool

	isid          [6]byte
	tsih          uint16
	cid           uint16
	itt           uint32
	initiatorName string
	targetName    string
	sessionType   string
	tgt           *target
	policy        *Auth

	chapID        byte
	chapChallenge []byte
	chapUser      string
	authMethod    string

	params        params
	declaredMRDSL bool
	tpgtSent      bool
	statSN        uint32
	cmdSN         uint32
	pending       []byte // continued text
	// delay is how long the answer to a failed login waits (see
	// Server.loginFailed).
	delay time.Duration
}

// runLogin drives the login phase to full feature phase or failure. On
// success the connection is bound to its session.
func (c *conn) runLogin() error {
	l := &login{c: c, first: true, params: defaultParams()}
	deadline := time.Now().Add(c.srv.cfg.LoginTimeout)
	// The first request must come soon: a connection that sends nothing
	// must not hold one of the address's connection slots for long.
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.FirstPDUTimeout))
	_ = c.nc.SetWriteDeadline(deadline)
	defer func() {
		_ = c.nc.SetWriteDeadline(time.Time{})
		if !c.stopping.Load() {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
	}()
	conts := 0
	for round := 0; round < maxLoginRounds+maxLoginContinuations; round++ {
		p, err := c.rd.read()
		if err != nil {
			return fmt.Errorf("login: %w", err)
		}
		if p.opcode() != opLoginReq {
			// Garbage or a full-feature PDU before login: RFC 7143 §6.3
			// says drop the connection.
			return p.errorf("PDU before login completed")
		}
		if l.first {
			_ = c.nc.SetReadDeadline(deadline)
		}
		// Continuation (C bit): collect text, answer an empty response.
		if p.flags()&0x40 != 0 {
			conts++
			if conts > maxLoginContinuations || len(l.pending)+len(p.data) > maxTextLen {
				return l.fail(p, loginFail(statusInitiatorError, "too many login continuations"))
			}
			if err := l.checkHeader(p); err != nil {
				var le *loginError
				if errors.As(err, &le) {
					return l.fail(p, le)
				}
				return err
			}
			l.pending = append(l.pending, p.data...)
			if err := l.respond(p, nil, false, l.stage, l.stage, statusSuccess); err != nil {
				return err
			}
			continue
		}
		text := p.data
		if len(l.pending) > 0 {
			text = append(l.pending, p.data...)
			l.pending = nil
		}
		done, err := l.step(p, text)
		if err != nil {
			var le *loginError
			if errors.As(err, &le) {
				if !l.wait() {
					return fmt.Errorf("%w (connection closed while the failure answer was delayed)", le)
				}
				return l.fail(p, le)
			}
			return err
		}
		if done {
			return nil
		}
		if round >= maxLoginRounds {
			break
		}
	}
	return errors.New("login: too many rounds")
}

// checkHeader validates the fields that must stay the same in every login
// request of the connection.
func (l *login) checkHeader(p *pdu) error {
	vmax, vmin := p.bhs[2], p.bhs[3]
	if vmin > 0 || vmax < vmin {
		return loginFail(statusUnsupportedVer, "version range %d..%d", vmin, vmax)
	}
	var isid [6]byte
	copy(isid[:], p.bhs[8:14])
	tsih := binary.BigEndian.Uint16(p.bhs[14:])
	cid := binary.BigEndian.Uint16(p.bhs[20:])
	csg := stage(p.flags() >> 2 & 3)
	if l.first {
		l.isid, l.tsih, l.cid, l.itt = isid, tsih, cid, p.itt()
		l.cmdSN = p.u32(24)
		l.statSN = p.u32(28)
		l.stage = csg
		if csg != stageSecurity && csg != stageOperational {
			return loginFail(statusInitiatorError, "first login request in stage %v", csg)
		}
		l.first = false
		return nil
	}
	if isid != l.isid || tsih != l.tsih || cid != l.cid {
		return loginFail(statusInitiatorError, "ISID, TSIH or CID changed during login")
	}
	if csg != l.stage {
		return loginFail(statusInitiatorError, "request in stage %v, expected %v", csg, l.stage)
	}
	l.cmdSN = p.u32(24)
	return nil
}

// step handles one complete login request. It returns done when the final
// response (T=1, NSG=full feature) has been sent.
func (l *login) step(p *pdu, text []byte) (bool, error) {
	wasFirst := l.policy == nil // first complete request (after any continuation)
	if err := l.checkHeader(p); err != nil {
		return false, err
	}
	keys, err := parseText(text)
	if err != nil {
		return false, loginFail(statusInitiatorError, "%v", err)
	}
	transit := p.flags()&0x80 != 0
	nsg := stage(p.flags() & 3)
	if transit && (nsg <= l.stage || nsg == 2) {
		return false, loginFail(statusInitiatorError, "transit from %v to %v", l.stage, nsg)
	}
	if wasFirst {
		if err := l.declare(keys); err != nil {
			return false, err
		}
		if err := l.authorize(); err != nil {
			return false, err
		}
	}
	var answer []kv
	if wasFirst && l.sessionType == "Normal" {
		answer = append(answer, kv{"TargetPortalGroupTag", strconv.Itoa(int(l.c.srv.cfg.PortalGroupTag))})
		l.tpgtSent = true
	}
	lim := targetLimits{
		maxRecvData:       l.c.srv.cfg.MaxRecvDataSegmentLength,
		maxBurst:          l.c.srv.cfg.MaxBurstLength,
		firstBurst:        l.c.srv.cfg.FirstBurstLength,
		maxOutstandingR2T: l.c.srv.cfg.MaxOutstandingR2T,
		allowDigests:      !l.c.srv.cfg.DisableDigests,
		unsolicited:       l.c.srv.cfg.UnsolicitedData,
	}
	var chapKeys []kv
	for _, k := range keys {
		switch k.key {
		case "AuthMethod", "CHAP_A", "CHAP_N", "CHAP_R", "CHAP_I", "CHAP_C":
			if l.stage != stageSecurity {
				return false, loginFail(statusInitiatorError, "security key %s in %v stage", k.key, l.stage)
			}
			chapKeys = append(chapKeys, k)
			continue
		case "SendTargets", "TargetAddress", "TargetPortalGroupTag", "TargetAlias":
			answer = append(answer, kv{k.key, valIrrelevant})
			continue
		}
		a, known := negotiateKey(&l.params, &lim, k.key, k.value)
		if !known {
			answer = append(answer, kv{k.key, valNotUnderstood})
			continue
		}
		if a != "" {
			answer = append(answer, kv{k.key, a})
		}
	}

	switch l.stage {
	case stageSecurity:
		more, err := l.security(chapKeys)
		if err != nil {
			return false, err
		}
		answer = append(answer, more...)
		if l.auth != authDone {
			// Stay in the security stage whatever the T bit says: iPXE sets T
			// on every login PDU, even mid-CHAP.
			return false, l.respond(p, answer, false, l.stage, l.stage, statusSuccess)
		}
	case stageOperational:
		if l.auth != authDone {
			if l.policy.chapRequired() {
				return false, loginFail(statusAuthFailed, "operational stage without authentication")
			}
			l.auth = authDone
			l.authMethod = "None"
			l.c.srv.authLog(l.c.meta, "None", nil)
		}
	}
	if !transit {
		if l.stage == stageOperational && !l.declaredMRDSL {
			answer = append(answer, kv{"MaxRecvDataSegmentLength", strconv.Itoa(lim.maxRecvData)})
			l.declaredMRDSL = true
		}
		return false, l.respond(p, answer, false, l.stage, l.stage, statusSuccess)
	}
	if nsg == stageFull && !l.declaredMRDSL && l.sessionType == "Normal" {
		answer = append(answer, kv{"MaxRecvDataSegmentLength", strconv.Itoa(lim.maxRecvData)})
		l.declaredMRDSL = true
	}
	if nsg != stageFull {
		if err := l.respond(p, answer, true, l.stage, nsg, statusSuccess); err != nil {
			return false, err
		}
		l.stage = nsg
		return false, nil
	}
	// Final response: create or reinstate the session, then answer T=1.
	if l.sessionType == "Normal" {
		priv, err := l.c.srv.acquirePriv(l)
		if err != nil {
			return false, err
		}
		l.priv = priv
	}
	sess, err := l.c.srv.bind(l)
	if err != nil || sess.priv != l.priv {
		// Failed, or a connection added to an existing session that
		// already holds its reference.
		l.c.srv.releasePriv(l.priv)
	}
	l.priv = nil
	if err != nil {
		return false, err
	}
	l.tsih = sess.tsih
	if err := l.respond(p, answer, true, l.stage, stageFull, statusSuccess); err != nil {
		l.c.srv.unbind(sess, l.c)
		return false, err
	}
	l.c.finishLogin(l, sess)
	return true, nil
}

// declare reads the declarative keys of the first request and resolves the
// target.
func (l *login) declare(keys []kv) error {
	l.sessionType = "Normal"
	for _, k := range keys {
		switch k.key {
		case "InitiatorName":
			l.initiatorName = k.value
		case "TargetName":
			l.targetName = k.value
		case "SessionType":
			l.sessionType = k.value
		}
	}
	if l.initiatorName == "" {
		return loginFail(statusMissingParam, "no InitiatorName")
	}
	l.c.meta.InitiatorName = l.initiatorName
	l.c.meta.ISID = l.isid
	l.c.meta.SessionType = l.sessionType
	switch l.sessionType {
	case "Discovery":
		l.policy = &l.c.srv.cfg.DiscoveryAuth
	case "Normal":
		if l.targetName == "" {
			return loginFail(statusMissingParam, "no TargetName in a normal session")
		}
		l.tgt = l.c.srv.lookupTarget(l.targetName)
		if l.tgt == nil {
			return loginFail(statusNotFound, "unknown target %q", l.targetName)
		}
		l.c.meta.TargetName = l.tgt.name
		l.policy = &l.tgt.auth
	default:
		return loginFail(statusSessionType, "session type %q", l.sessionType)
	}
	return nil
}

// authorize asks Config.Authorize whether the initiator may use the target
// of a normal session. It runs before authentication, like IETD's
// initiators.allow and LIO's node ACLs: an initiator that may not use the
// target learns nothing from a CHAP exchange and costs no secret lookup.
func (l *login) authorize() error {
	srv := l.c.srv
	if srv.cfg.Authorize == nil || l.sessionType != "Normal" {
		return nil
	}
	if err := srv.cfg.Authorize(l.c.meta); err != nil {
		// The connection's "login failed" line carries the reason.
		l.failed(l.initiatorName)
		return loginFail(statusForbidden, "initiator %s not authorized for target %s: %v", l.initiatorName, l.tgt.name, err)
	}
	return nil
}

// security runs the AuthMethod and CHAP exchange (research §3.6).
func (l *login) security(keys []kv) ([]kv, error) {
	get := func(name string) (string, bool) {
		for _, k := range keys {
			if k.key == name {
				return k.value, true
			}
		}
		return "", false
	}
	var out []kv
	srv := l.c.srv
	switch l.auth {
	case authStart:
		methods, ok := get("AuthMethod")
		if !ok {
			if l.policy.chapRequired() {
				// No AuthMethod yet: wait for it (the initiator may stay in
				// the security stage), unless it wants to move on.
				return nil, loginFail(statusAuthFailed, "CHAP required but no AuthMethod offered")
			}
			l.auth = authDone
			l.authMethod = "None"
			srv.authLog(l.c.meta, "None", nil)
			return nil, nil
		}
		want := "None"
		if l.policy.chapRequired() {
			want = "CHAP"
		}
		found := false
		for _, m := range splitList(methods) {
			if m == want {
				found = true
				break
			}
		}
		if !found {
			err := fmt.Errorf("%w: initiator offered AuthMethod=%s, target requires %s", ErrAuth, methods, want)
			srv.authLog(l.c.meta, want, err)
			l.failed(l.initiatorName)
			return nil, loginFail(statusAuthFailed, "%v", err)
		}
		out = append(out, kv{"AuthMethod", want})
		if want == "None" {
			l.auth = authDone
			l.authMethod = "None"
			srv.authLog(l.c.meta, "None", nil)
			return out, nil
		}
		l.auth = authWaitA
		l.authMethod = "CHAP"
		if _, ok := get("CHAP_A"); !ok {
			return out, nil
		}
		fallthrough
	case authWaitA:
		algs, ok := get("CHAP_A")
		if !ok {
			return out, nil // nothing yet; keep waiting (bounded by rounds)
		}
		if !chapAlgorithm(algs) {
			return nil, l.authFailure(fmt.Errorf("%w: no supported CHAP_A in %q", ErrAuth, algs))
		}
		var rnd [1 + chapChallengeSz]byte
		if _, err := io.ReadFull(srv.cfg.Rand, rnd[:]); err != nil {
			return nil, loginFail(statusTargetError, "random challenge: %v", err)
		}
		l.chapID = rnd[0]
		l.chapChallenge = append([]byte(nil), rnd[1:]...)
		l.auth = authWaitR
		out = append(out,
			kv{"CHAP_A", "5"},
			kv{"CHAP_I", strconv.Itoa(int(l.chapID))},
			kv{"CHAP_C", "0x" + hex.EncodeToString(l.chapChallenge)})
		return out, nil
	case authWaitR:
		user, okN := get("CHAP_N")
		resp, okR := get("CHAP_R")
		if !okN || !okR {
			return nil, l.authFailure(fmt.Errorf("%w: CHAP_N or CHAP_R missing", ErrAuth))
		}
		l.chapUser = user
		r, err := decodeCHAPBinary(resp)
		if err != nil {
			return nil, l.authFailure(err)
		}
		secret, err := srv.secretFor(l.c.meta, l.policy, user)
		if err != nil || len(secret) == 0 {
			// Compute a response anyway so that unknown users cost the same.
			chapEqual(r, chapMD5Response(l.chapID, []byte("unknown user padding"), l.chapChallenge))
			return nil, l.authFailure(fmt.Errorf("%w: user %q: %v", ErrAuth, user, ErrUnknownUser))
		}
		if !chapEqual(r, chapMD5Response(l.chapID, secret, l.chapChallenge)) {
			return nil, l.authFailure(fmt.Errorf("%w: wrong CHAP response for user %q", ErrAuth, user))
		}
		ci, okI := get("CHAP_I")
		cc, okC := get("CHAP_C")
		if okI != okC {
			return nil, l.authFailure(fmt.Errorf("%w: CHAP_I without CHAP_C or vice versa", ErrAuth))
		}
		if !okI {
			if l.policy.RequireMutual {
				return nil, l.authFailure(fmt.Errorf("%w: mutual CHAP required but the initiator did not ask for it", ErrAuth))
			}
			l.auth = authDone
			srv.authLog(l.c.meta, "CHAP", nil)
			return nil, nil
		}
		id, ok := parseNumber(ci)
		if !ok || id > 255 {
			return nil, l.authFailure(fmt.Errorf("%w: bad CHAP_I %q", ErrAuth, ci))
		}
		chal, err := decodeCHAPBinary(cc)
		if err != nil {
			return nil, l.authFailure(err)
		}
		if chapEqual(chal, l.chapChallenge) {
			return nil, l.authFailure(fmt.Errorf("%w: initiator reflected the target's challenge", ErrAuth))
		}
		acct, err := srv.outgoingFor(l.c.meta, l.policy)
		if err != nil {
			return nil, l.authFailure(fmt.Errorf("%w: mutual CHAP requested: %v", ErrAuth, err))
		}
		// RFC 7143 §9.2.1: a response equal to the one we would compute with
		// our own secret means both sides share a secret; refuse.
		if chapEqual(r, chapMD5Response(l.chapID, acct.Secret, l.chapChallenge)) {
			return nil, l.authFailure(fmt.Errorf("%w: initiator and target secrets are identical", ErrAuth))
		}
		l.auth = authDone
		srv.authLog(l.c.meta, "CHAP", nil)
		out = append(out,
			kv{"CHAP_N", acct.User},
			kv{"CHAP_R", "0x" + hex.EncodeToString(chapMD5Response(byte(id), acct.Secret, chal))})
		return out, nil
	}
	return nil, nil
}

func (l *login) authFailure(err error) error {
	l.c.srv.authLog(l.c.meta, "CHAP", err)
	user := l.chapUser
	if user == "" {
		user = l.initiatorName
	}
	l.failed(user)
	return loginFail(statusAuthFailed, "%v", err)
}

// failed books a failed login of user from this connection's address.
func (l *login) failed(user string) {
	l.delay = l.c.srv.loginFailed(l.c.nc.RemoteAddr(), user)
	if l.delay > 0 {
		l.c.log.Info("failed login answer delayed", "user", user, "delay", l.delay)
	}
}

// wait sleeps for the delay of a failed login's answer; false if the
// connection was stopped meanwhile.
func (l *login) wait() bool {
	if l.delay <= 0 {
		return true
	}
	t := time.NewTimer(l.delay)
	defer t.Stop()
	select {
	case <-t.C:
		_ = l.c.nc.SetWriteDeadline(time.Now().Add(l.c.srv.cfg.LoginTimeout))
		return true
	case <-l.c.quit:
		return false
	}
}

func splitList(s string) []string {
	var out []string
	for len(s) > 0 && len(out) < 64 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return out
}

// respond sends one Login Response. Long answers are split with the C bit;
// the initiator then sends empty requests to collect the rest.
func (l *login) respond(req *pdu, keys []kv, transit bool, csg, nsg stage, status uint16) error {
	data := appendText(nil, keys)
	for {
		chunk := data
		cont := false
		if len(chunk) > loginMaxRecvDataLength {
			chunk, cont = chunk[:loginMaxRecvDataLength], true
		}
		data = data[len(chunk):]
		p := &pdu{data: chunk}
		p.bhs[0] = opLoginResp
		flags := byte(csg) << 2
		if cont {
			flags |= 0x40
		} else if transit {
			flags |= 0x80 | byte(nsg)
		}
		p.bhs[1] = flags
		copy(p.bhs[8:14], l.isid[:])
		binary.BigEndian.PutUint16(p.bhs[14:], l.tsih)
		p.put32(16, req.itt())
		p.put32(24, l.statSN)
		if status == statusSuccess {
			l.statSN++
		}
		p.put32(28, l.cmdSN)
		p.put32(32, l.cmdSN+uint32(l.c.srv.cfg.QueueDepth)-1)
		p.bhs[36], p.bhs[37] = byte(status>>8), byte(status)
		if err := l.c.writeRaw(p); err != nil {
			return err
		}
		if !cont {
			return nil
		}
		// Wait for the initiator's empty continuation request.
		next, err := l.c.rd.read()
		if err != nil {
			return err
		}
		if next.opcode() != opLoginReq || len(next.data) != 0 {
			return next.errorf("expected an empty login request to continue the response")
		}
		req = next
	}
}

// fail sends a failing Login Response and returns an error for the log.
func (l *login) fail(req *pdu, le *loginError) error {
	_ = l.respond(req, nil, false, l.stage, l.stage, le.status)
	return le
}
