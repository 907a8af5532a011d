package iscsitarget

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/iscsitarget/auth"
)

// Account is one CHAP user name and secret: the one credential type of
// xpboot, shared with sanboot and serve through package auth.
type Account = auth.Account

// Auth is the authentication policy of a target or of discovery sessions,
// in the shape of IETD's IncomingUser/OutgoingUser lines.
type Auth struct {
	// Incoming lists the users an initiator may authenticate as. A
	// non-empty list makes CHAP mandatory: such a target can never be
	// entered with AuthMethod=None.
	Incoming []Account
	// Outgoing is the name and secret the target proves itself with when the
	// initiator asks for mutual CHAP.
	Outgoing *Account
	// RequireCHAP makes CHAP mandatory even with an empty Incoming list; the
	// Config's CHAPSecret callback then knows the users.
	RequireCHAP bool
	// RequireMutual refuses initiators that do not ask the target to
	// authenticate itself.
	RequireMutual bool
}

func (a *Auth) chapRequired() bool { return a.RequireCHAP || len(a.Incoming) > 0 || a.RequireMutual }

// LUN is one logical unit of a target.
type LUN struct {
	// Number is the LUN (0..16383); iPXE's iscsi:SERVER::::IQN boots LUN 0.
	Number uint16
	// Device is the disk. The caller opens and closes it; the server only
	// flushes it on Shutdown.
	Device blockdev.Device
	// Open, if set, gives each initiator its own device for this LUN (a
	// copy-on-write overlay, say) instead of Device, which may then be nil.
	// It is called at the login of an initiator's first normal session to
	// the target (meta names the initiator); all sessions of that initiator
	// name to the target share the device, and the server closes it when
	// the last of them ends. An error fails the login (Target Error).
	// Whatever ReadOnly says, a device whose ReadOnly method returns true
	// is served read-only (DATA PROTECT, WP), for Device and Open alike;
	// thin provisioning is offered when the device can Discard.
	Open func(meta ConnMeta) (blockdev.Device, error)
	// ReadOnly makes writes fail with DATA PROTECT and sets WP in MODE SENSE.
	ReadOnly bool
	// Serial is the unit serial number (VPD page 0x80); empty derives one
	// from the target name and LUN.
	Serial string
}

// Target is one iSCSI target (an IQN) with its LUNs.
type Target struct {
	Name  string // iSCSI name, e.g. iqn.2026-01.org.xpboot:xp
	Alias string // optional TargetAlias
	LUNs  []LUN
	Auth  Auth
}

// ConnMeta describes the peer of a connection for callbacks and logs.
type ConnMeta struct {
	RemoteAddr    net.Addr
	LocalAddr     net.Addr
	InitiatorName string
	TargetName    string // empty in discovery sessions
	SessionType   string // "Normal" or "Discovery"
	ISID          [6]byte
}

// Config configures a Server. NewServer copies it; later changes have no
// effect.
type Config struct {
	Targets []Target
	// DiscoveryAuth is the policy of SendTargets discovery sessions (IETD's
	// global IncomingUser/OutgoingUser).
	DiscoveryAuth Auth

	// CHAPSecret, if set, returns the secret of user for the connection's
	// target (meta.TargetName, empty for discovery) instead of a lookup in
	// the target's Auth.Incoming. It returns ErrUnknownUser for unknown users.
	CHAPSecret func(meta ConnMeta, user string) ([]byte, error)
	// MutualSecret, if set, returns the target's own CHAP name and secret
	// instead of Auth.Outgoing.
	MutualSecret func(meta ConnMeta) (Account, error)
	// AuthLog, if set, is called after every authentication attempt with the
	// method ("None" or "CHAP") and nil or the failure.
	AuthLog func(meta ConnMeta, method string, err error)
	// Authorize, if set, decides whether an initiator may use a target,
	// whatever the target's authentication (also without CHAP). In a normal
	// session it is called once per login, as soon as the first login
	// request names the initiator and an existing target (meta.TargetName is
	// the configured name) and before any authentication: an error refuses
	// the login with status 0x0202 (authorization failure), is logged with
	// the error's text (which must hold no secret), counts as a failed login
	// for MaxLoginFailures, and closes the connection. In discovery sessions
	// it is called for each target a SendTargets answer would list, with
	// meta.TargetName set to that target and meta.SessionType "Discovery":
	// targets it refuses are left out (SendTargets=<name> of such a target
	// is answered like that of an unknown one, Reject). The discovery login
	// itself is governed by DiscoveryAuth only. It must be safe for
	// concurrent use.
	Authorize func(meta ConnMeta) error
	// Rand is the source of CHAP challenges; crypto/rand by default.
	Rand io.Reader
	// Logger receives the server's log; slog.Default() by default. Secrets
	// are never logged.
	Logger *slog.Logger
	// Now is the clock for login rate limiting; time.Now by default.
	Now func() time.Time

	// PortalGroupTag is the TargetPortalGroupTag (default 1).
	PortalGroupTag uint16
	// MaxRecvDataSegmentLength is the longest data segment the target
	// accepts (default 262144).
	MaxRecvDataSegmentLength int
	// MaxBurstLength and FirstBurstLength are the target's offers
	// (defaults 1 MiB and 256 KiB).
	MaxBurstLength, FirstBurstLength int
	// MaxOutstandingR2T is the target's offer (default 8).
	MaxOutstandingR2T int
	// QueueDepth is the command window per session (default 64).
	QueueDepth int
	// MaxTransferLength caps one command's data (default 8 MiB).
	MaxTransferLength int
	// MaxSessions caps live sessions (default 256); MaxConnections caps TCP
	// connections including those still logging in (default 512).
	MaxSessions, MaxConnections int
	// MaxConnectionsPerAddress caps the TCP connections of one source
	// address, those still logging in included (default 32): further ones
	// are closed at once. MaxSessionsPerAddress (default 32) and
	// MaxSessionsPerInitiator (default 4, per initiator name) cap sessions;
	// a login beyond them fails with status 0x0301 (out of resources).
	// Four per name leave room for what a boot does: iPXE's session stays
	// while the OS logs in again with its own ISID (and maybe a discovery
	// session); a login with the same name and ISID replaces the old
	// session (RFC 7143 §6.3.5) and does not count twice.
	MaxConnectionsPerAddress, MaxSessionsPerAddress, MaxSessionsPerInitiator int
	// MaxConnectionMemory, MaxAddressMemory and MaxMemory bound the
	// command data held for one connection, for all connections of one
	// source address, and for the whole server (defaults 16 MiB, 64 MiB,
	// 256 MiB): write buffers (the EDTL of each write waiting for data) and
	// Data-In chunks (at most 1 MiB per READ at a time). A command waits for
	// room instead of failing. Each must be at least MaxTransferLength.
	MaxConnectionMemory, MaxAddressMemory, MaxMemory int
	// LoginTimeout bounds the whole login phase (default 15s);
	// FirstPDUTimeout bounds the wait for a new connection's first login
	// request (default 5s), so idle connections do not hold a slot long.
	LoginTimeout, FirstPDUTimeout time.Duration
	// KeepAlive is the TCP keepalive period that reaps dead sessions such as
	// the one iPXE abandons when Windows takes over (default 15s).
	KeepAlive time.Duration
	// IdleTimeout: a full-feature connection that has sent nothing for this
	// long gets a NOP-In ping and is closed if it still sends nothing
	// within another IdleTimeout (default 60s; negative: never). iPXE and
	// gPXE (recognised by their ISID, IANA enterprise number 10019) ignore
	// pings, so they are never pinged: TCP keepalive reaps their sessions.
	IdleTimeout time.Duration
	// MaxLoginFailures is how many failed logins of one user (CHAP name,
	// or initiator name when Authorize refuses) from one source address
	// are answered at once (default 3); 4×MaxLoginFailures failures of
	// any user from one address likewise. Each further failure within 10
	// minutes is answered only after a delay that starts at
	// LoginFailureDelay (default 1s) and doubles up to 30s, failures of one
	// user and address one after another, so parallel connections do not
	// multiply the guessing rate. A correct login is never delayed or
	// refused for earlier failures.
	MaxLoginFailures  int
	LoginFailureDelay time.Duration
	// AllowGlobalReset makes TARGET WARM RESET and TARGET COLD RESET act
	// on every initiator's sessions, as SAM describes for a target with
	// one initiator. By default they act only on the sessions of the
	// initiator name that sent them (aborting their tasks, releasing their
	// reservations; cold reset also ends those sessions), so that one
	// initiator cannot reset the others away.
	AllowGlobalReset bool
	// UnsolicitedData makes the target offer ImmediateData=Yes and
	// InitialR2T=No (Windows and libiscsi then send write data without
	// waiting for an R2T). The default, ImmediateData=No and InitialR2T=Yes,
	// is what iPXE asks for anyway: every data PDU is solicited and carries
	// a DataSN the target checks. Both modes are fully implemented; the
	// default is kept because libiscsi 1.19.0's iSCSIDataSnInvalid test
	// (Debian bookworm's) loses its own ImmediateData=No on reconnect when
	// the target allows immediate data, so that one test fails in any
	// target that does (fixed in libiscsi 1.20.0, commit fbfa387).
	UnsolicitedData bool
	// DisableDigests refuses CRC32C header and data digests.
	DisableDigests bool
}

// Server is an iSCSI target serving the configured targets.
type Server struct {
	cfg     Config
	log     *slog.Logger
	targets map[string]*target
	order   []*target

	mem *memBudget

	mu        sync.Mutex
	sessions  map[uint16]*session
	nextTSIH  uint16
	conns     map[*conn]struct{}
	addrConns map[string]int // connections per source address
	listeners map[net.Listener]struct{}
	failures  map[string]*failRecord
	closing   bool
	chapID    byte
	wg        sync.WaitGroup
	// refused counts connections refused since refuseLog, so that a flood
	// is logged once a second, not once a connection.
	refused   int
	refuseLog time.Time

	privMu sync.Mutex // guards priv; never held together with mu
	priv   map[string]*privSet
}

// failRecord is the failed logins of one (address, user) or one address.
type failRecord struct {
	count int
	last  time.Time // last failure
	next  time.Time // when the last booked failure answer goes out
}

type target struct {
	name  string
	alias string
	auth  Auth
	lus   map[uint16]*lu
	lunNo []uint16       // ascending
	open  map[uint16]LUN // LUNs with Open: per-initiator devices
}

// NewServer checks cfg, applies defaults and returns a server ready to Serve.
// It refuses configurations that could not work or would be insecure: no
// targets, duplicate names or LUNs, a missing LUN device, CHAP required
// without any way to look up secrets, mutual CHAP required without a target
// secret, or an incoming secret equal to the outgoing one (RFC 7143 §9.2.1).
func NewServer(cfg Config) (*Server, error) {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if cfg.PortalGroupTag == 0 {
		cfg.PortalGroupTag = 1
	}
	def(&cfg.MaxRecvDataSegmentLength, 262144)
	def(&cfg.MaxBurstLength, 1<<20)
	def(&cfg.FirstBurstLength, 256<<10)
	def(&cfg.MaxOutstandingR2T, 8)
	def(&cfg.QueueDepth, 64)
	def(&cfg.MaxTransferLength, 8<<20)
	def(&cfg.MaxSessions, 256)
	def(&cfg.MaxConnections, 512)
	def(&cfg.MaxConnectionsPerAddress, min(32, cfg.MaxConnections))
	def(&cfg.MaxSessionsPerAddress, min(32, cfg.MaxSessions))
	def(&cfg.MaxSessionsPerInitiator, min(4, cfg.MaxSessions))
	def(&cfg.MaxConnectionMemory, 16<<20)
	def(&cfg.MaxAddressMemory, 64<<20)
	def(&cfg.MaxMemory, 256<<20)
	def(&cfg.MaxLoginFailures, 3)
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = 15 * time.Second
	}
	if cfg.FirstPDUTimeout <= 0 {
		cfg.FirstPDUTimeout = min(5*time.Second, cfg.LoginTimeout)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.LoginFailureDelay <= 0 {
		cfg.LoginFailureDelay = time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	switch {
	case cfg.MaxRecvDataSegmentLength < 512 || cfg.MaxRecvDataSegmentLength > 1<<24-1:
		return nil, fmt.Errorf("iscsitarget: MaxRecvDataSegmentLength %d outside 512..16777215", cfg.MaxRecvDataSegmentLength)
	case cfg.MaxBurstLength < 512 || cfg.MaxBurstLength > 1<<24-1:
		return nil, fmt.Errorf("iscsitarget: MaxBurstLength %d outside 512..16777215", cfg.MaxBurstLength)
	case cfg.FirstBurstLength < 512 || cfg.FirstBurstLength > cfg.MaxBurstLength:
		return nil, fmt.Errorf("iscsitarget: FirstBurstLength %d outside 512..MaxBurstLength", cfg.FirstBurstLength)
	case cfg.QueueDepth > 1024:
		return nil, fmt.Errorf("iscsitarget: QueueDepth %d above 1024", cfg.QueueDepth)
	case cfg.MaxTransferLength%blockdev.SectorSize != 0 || cfg.MaxTransferLength > 64<<20:
		return nil, fmt.Errorf("iscsitarget: MaxTransferLength %d must be a multiple of 512 up to 64 MiB", cfg.MaxTransferLength)
	case cfg.MaxConnectionMemory < cfg.MaxTransferLength || cfg.MaxAddressMemory < cfg.MaxConnectionMemory || cfg.MaxMemory < cfg.MaxAddressMemory:
		return nil, fmt.Errorf("iscsitarget: memory limits must grow MaxTransferLength (%d) ≤ MaxConnectionMemory (%d) ≤ MaxAddressMemory (%d) ≤ MaxMemory (%d)",
			cfg.MaxTransferLength, cfg.MaxConnectionMemory, cfg.MaxAddressMemory, cfg.MaxMemory)
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("iscsitarget: no targets configured")
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		targets:   make(map[string]*target),
		sessions:  make(map[uint16]*session),
		mem:       newMemBudget(cfg.MaxConnectionMemory, cfg.MaxAddressMemory, cfg.MaxMemory),
		conns:     make(map[*conn]struct{}),
		addrConns: make(map[string]int),
		listeners: make(map[net.Listener]struct{}),
		failures:  make(map[string]*failRecord),
		priv:      make(map[string]*privSet),
	}
	if err := s.checkAuth("discovery", &cfg.DiscoveryAuth); err != nil {
		return nil, err
	}
	for i := range cfg.Targets {
		t := &cfg.Targets[i]
		if err := auth.CheckName(t.Name); err != nil {
			return nil, fmt.Errorf("iscsitarget: target: %w", err)
		}
		name := strings.ToLower(t.Name) // iSCSI names compare case-insensitively
		if s.targets[name] != nil {
			return nil, fmt.Errorf("iscsitarget: target %s configured twice", t.Name)
		}
		if len(t.LUNs) == 0 {
			return nil, fmt.Errorf("iscsitarget: target %s has no LUNs", t.Name)
		}
		if err := s.checkAuth("target "+t.Name, &t.Auth); err != nil {
			return nil, err
		}
		tg := &target{name: t.Name, alias: t.Alias, auth: copyAuth(t.Auth), lus: make(map[uint16]*lu)}
		for _, l := range t.LUNs {
			if l.Number >= 16384 {
				return nil, fmt.Errorf("iscsitarget: target %s: LUN %d above 16383", t.Name, l.Number)
			}
			if tg.lus[l.Number] != nil {
				return nil, fmt.Errorf("iscsitarget: target %s: LUN %d configured twice", t.Name, l.Number)
			}
			if l.Open != nil {
				if tg.open == nil {
					tg.open = make(map[uint16]LUN)
				}
				tg.open[l.Number] = l
				if l.Device == nil {
					l.Device = absentDevice{}
				}
			} else if l.Device == nil {
				return nil, fmt.Errorf("iscsitarget: target %s: LUN %d has no device", t.Name, l.Number)
			}
			if l.Device.Size() < blockdev.SectorSize && l.Open == nil {
				return nil, fmt.Errorf("iscsitarget: target %s: LUN %d: device of %d bytes is smaller than one block", t.Name, l.Number, l.Device.Size())
			}
			tg.lus[l.Number] = newLU(tg, l, cfg.MaxTransferLength)
			tg.lunNo = append(tg.lunNo, l.Number)
		}
		sortU16(tg.lunNo)
		s.targets[name] = tg
		s.order = append(s.order, tg)
	}
	cfg.Targets = nil // the copies live in s.targets
	s.cfg = cfg
	return s, nil
}

func copyAuth(a Auth) Auth {
	a.Incoming = append([]Account(nil), a.Incoming...)
	if a.Outgoing != nil {
		o := *a.Outgoing
		a.Outgoing = &o
	}
	return a
}

func sortU16(v []uint16) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// checkAuth validates one policy and warns about secrets the Windows
// initiator would refuse (auth.CheckSecret: 12 to 16 bytes without IPsec).
// It warns rather than refuses because the library also serves Linux
// initiators, which take any length; xpboot serve refuses them.
func (s *Server) checkAuth(where string, a *Auth) error {
	if a.chapRequired() && len(a.Incoming) == 0 && s.cfg.CHAPSecret == nil {
		return fmt.Errorf("iscsitarget: %s requires CHAP but has no users and no CHAPSecret callback", where)
	}
	if a.RequireMutual && a.Outgoing == nil && s.cfg.MutualSecret == nil {
		return fmt.Errorf("iscsitarget: %s requires mutual CHAP but has no outgoing account", where)
	}
	warn := func(kind, user string, secret []byte) {
		if auth.CheckSecret(kind, user, secret) != nil {
			s.log.Warn("CHAP secret length outside 12..16 bytes; the Windows iSCSI initiator will refuse it",
				"where", where, "kind", kind, "user", user, "length", len(secret))
		}
	}
	seen := map[string]bool{}
	for _, in := range a.Incoming {
		if in.User == "" || len(in.Secret) == 0 {
			return fmt.Errorf("iscsitarget: %s: CHAP user and secret must not be empty", where)
		}
		if seen[in.User] {
			return fmt.Errorf("iscsitarget: %s: CHAP user %q listed twice", where, in.User)
		}
		seen[in.User] = true
		warn("incoming", in.User, in.Secret)
		if a.Outgoing != nil && bytes.Equal(in.Secret, a.Outgoing.Secret) {
			return fmt.Errorf("iscsitarget: %s: incoming secret of %q equals the outgoing secret (RFC 7143 §9.2.1 forbids it)", where, in.User)
		}
	}
	if a.Outgoing != nil {
		if a.Outgoing.User == "" || len(a.Outgoing.Secret) == 0 {
			return fmt.Errorf("iscsitarget: %s: outgoing CHAP user and secret must not be empty", where)
		}
		warn("outgoing", a.Outgoing.User, a.Outgoing.Secret)
	}
	return nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("iscsitarget: server closed")

// Serve accepts connections on l until ctx is cancelled or Shutdown is
// called. After a cancellation it shuts down gracefully itself (bounded by
// twice LoginTimeout) and returns once every connection has ended and every
// device is flushed, with nil or the flush error. Temporary Accept errors
// (EMFILE, ENFILE, ENOBUFS, ECONNABORTED …) are logged and retried with a
// growing delay of up to a second; any other Accept error ends Serve with
// that error.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	// Cancellation only stops accepting; the accept loop below then runs
	// the one Shutdown itself, so Serve returns only after every flush.
	// (A Shutdown started from here as well would still be flushing when
	// Serve returned, and the caller would close devices under it.)
	stop := context.AfterFunc(ctx, s.stopAccepting)
	defer stop()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				if ctx.Err() != nil {
					// Cancelled: finish the shutdown (connections drained,
					// devices flushed) before returning, so that the
					// caller may close the devices.
					sctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.LoginTimeout)
					defer cancel()
					return s.Shutdown(sctx)
				}
				return nil
			}
			if temporaryAcceptError(err) {
				// Out of file descriptors, buffers or memory, or a
				// connection aborted before it was accepted: the
				// listener still works. Back off (bounded) and retry.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				continue
			}
			return err
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetKeepAlive(true)
			_ = tc.SetKeepAlivePeriod(s.cfg.KeepAlive)
			_ = tc.SetNoDelay(true)
		}
		host := hostOf(nc.RemoteAddr())
		s.mu.Lock()
		var why string
		switch {
		case s.closing:
			why = "shutting down"
		case len(s.conns) >= s.cfg.MaxConnections:
			why = "MaxConnections reached"
		case s.addrConns[host] >= s.cfg.MaxConnectionsPerAddress:
			why = "MaxConnectionsPerAddress reached for this address"
		}
		if why != "" {
			s.refused++
			logIt := time.Since(s.refuseLog) >= time.Second
			n := s.refused
			if logIt {
				s.refuseLog, s.refused = time.Now(), 0
			}
			s.mu.Unlock()
			if logIt {
				s.log.Warn("connection refused", "remote", nc.RemoteAddr().String(), "reason", why, "refused_since_last_warning", n)
			}
			nc.Close()
			continue
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.addrConns[host]++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve(ctx)
		}()
	}
}

// temporaryAcceptError reports whether Accept failed for a reason that
// passes: descriptor or memory exhaustion, a connection reset before it was
// accepted, or a timeout.
func temporaryAcceptError(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Shutdown stops accepting, ends every connection (unblocking reads with a
// past deadline after in-flight commands finish), waits for them and flushes
// every LUN device. It returns ctx.Err() if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stop()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	for _, t := range s.order {
		for _, n := range t.lunNo {
			if ferr := t.lus[n].dev.Flush(); ferr != nil && err == nil {
				err = fmt.Errorf("iscsitarget: flush %s LUN %d: %w", t.name, n, ferr)
			}
		}
	}
	if ferr := s.flushPriv(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// stopAccepting marks the server closing and closes its listeners, which
// ends the accept loops.
func (s *Server) stopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
		delete(s.listeners, l)
	}
}

// removeConn forgets a finished connection.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		if n := s.addrConns[c.host] - 1; n > 0 {
			s.addrConns[c.host] = n
		} else {
			delete(s.addrConns, c.host)
		}
	}
	s.mu.Unlock()
}

// failWindow is how long failed logins are remembered after the last one.
const failWindow = 10 * time.Minute

// maxFailureDelay caps the delay of a failed login's answer.
const maxFailureDelay = 30 * time.Second

// loginFailed books a failed login of user (CHAP name or initiator name)
// from addr and returns how long its answer must wait: nothing for the
// first MaxLoginFailures failures of that user from that address (and
// 4×MaxLoginFailures of any user from it), then a delay doubling from
// LoginFailureDelay up to maxFailureDelay. Answers of one key are queued
// one after another, so parallel attempts do not guess faster.
func (s *Server) loginFailed(addr net.Addr, user string) time.Duration {
	host := hostOf(addr)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) >= 4096 { // bound the table: drop expired entries
		for k, v := range s.failures {
			if now.Sub(v.last) > failWindow {
				delete(s.failures, k)
			}
		}
	}
	book := func(key string, free int) time.Duration {
		r := s.failures[key]
		if r == nil || now.Sub(r.last) > failWindow {
			r = &failRecord{}
			s.failures[key] = r
		}
		r.count++
		r.last = now
		if r.count <= free {
			return 0
		}
		d := s.cfg.LoginFailureDelay << min(r.count-free-1, 16)
		d = min(d, maxFailureDelay)
		start := now
		if r.next.After(now) {
			start = r.next
		}
		r.next = start.Add(d)
		return r.next.Sub(now)
	}
	a := book("u\x00"+host+"\x00"+user, s.cfg.MaxLoginFailures)
	b := book("a\x00"+host, 4*s.cfg.MaxLoginFailures)
	return min(max(a, b), 2*maxFailureDelay)
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if h, _, err := net.SplitHostPort(a.String()); err == nil {
		return h
	}
	return a.String()
}

func (s *Server) lookupTarget(name string) *target {
	return s.targets[strings.ToLower(name)]
}

// secretFor returns the incoming secret of user under policy a.
func (s *Server) secretFor(meta ConnMeta, a *Auth, user string) ([]byte, error) {
	if s.cfg.CHAPSecret != nil {
		return s.cfg.CHAPSecret(meta, user)
	}
	for _, in := range a.Incoming {
		if in.User == user {
			return in.Secret, nil
		}
	}
	return nil, ErrUnknownUser
}

func (s *Server) outgoingFor(meta ConnMeta, a *Auth) (Account, error) {
	if s.cfg.MutualSecret != nil {
		return s.cfg.MutualSecret(meta)
	}
	if a.Outgoing == nil {
		return Account{}, errors.New("no outgoing CHAP account configured")
	}
	return *a.Outgoing, nil
}

func (s *Server) authLog(meta ConnMeta, method string, err error) {
	if s.cfg.AuthLog != nil {
		s.cfg.AuthLog(meta, method, err)
	}
}

// mayDiscover asks Config.Authorize whether a discovery session of meta may
// list t.
func (s *Server) mayDiscover(meta ConnMeta, t *target) bool {
	if s.cfg.Authorize == nil {
		return true
	}
	meta.TargetName = t.name
	meta.SessionType = "Discovery"
	if err := s.cfg.Authorize(meta); err != nil {
		s.log.Debug("target left out of SendTargets: initiator not authorized", "remote", fmt.Sprint(meta.RemoteAddr),
			"initiator", meta.InitiatorName, "target", t.name, "err", err)
		return false
	}
	return true
}
