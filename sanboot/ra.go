package sanboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Router advertisements that end iPXE's IPv6 wait.
//
// iPXE configures IPv4 (DHCP) and IPv6 (router discovery) side by side and
// boots only when both are done; on a link without an IPv6 router its
// router solicitations go unanswered until the discovery times out, which
// is most of a SAN boot's time. A RouterAdvertiser answers them with an RA
// that says nothing: router lifetime 0 (not a default router), no prefix,
// M and O clear (no DHCPv6). iPXE then ends its IPv6 configuration at once
// and no host makes a route through this server.

// RFC 4861 §10 router constants.
const (
	raMaxDelay        = 500 * time.Millisecond // MAX_RA_DELAY_TIME
	raMinMulticastGap = 3 * time.Second        // MIN_DELAY_BETWEEN_RAS
	raHopLimit        = 255
)

// allNodes and allRouters are the link-local multicast groups of RFC 4291.
var (
	allNodes   = netip.MustParseAddr("ff02::1")
	allRouters = netip.MustParseAddr("ff02::2")
)

// errNoLinkLocal is returned by RAConn.WriteNDP while the interface has no
// usable link-local address (none yet, or still in duplicate address
// detection): RFC 4861 §6.1.2 makes hosts drop RAs from other sources.
var errNoLinkLocal = errors.New("sanboot: interface has no usable IPv6 link-local address yet")

// RAConn is the ICMPv6 socket of one interface: ListenNDP opens the real
// one; tests use a fake.
type RAConn interface {
	// ReadNDP reads one ICMPv6 message and its IPv6 source and hop limit.
	ReadNDP(b []byte) (n int, src netip.Addr, hopLimit int, err error)
	// WriteNDP sends one ICMPv6 message from the interface's link-local
	// address with hop limit 255.
	WriteNDP(b []byte, dst netip.Addr) error
	SetReadDeadline(t time.Time) error
	// HardwareAddr is the interface's MAC (the RA's source link-layer
	// option).
	HardwareAddr() net.HardwareAddr
	// LinkLocal is the interface's link-local address, if it has one.
	LinkLocal() (netip.Addr, bool)
}

// RAConfig configures a RouterAdvertiser.
type RAConfig struct {
	Interface string // for the log
	// MinInterval and MaxInterval bound the random period of unsolicited
	// advertisements (RFC 4861 §6.2.1; defaults 200 s and 600 s).
	MinInterval, MaxInterval time.Duration
	// MaxDelay bounds the random delay of a solicited answer (RFC 4861
	// §6.2.6 MAX_RA_DELAY_TIME, default 500 ms); negative means none
	// (tests).
	MaxDelay time.Duration
	// MulticastGap is the least time between two RAs to all nodes (RFC 4861
	// MIN_DELAY_BETWEEN_RAS, default 3 s); a solicitation inside it is
	// answered by unicast.
	MulticastGap time.Duration
	// Quiet is how long another router's configuring RA keeps this server
	// quiet past that router's lifetime (default 10 minutes).
	Quiet  time.Duration
	Events *EventLog
	Log    *slog.Logger
	Rand   *rand.Rand       // default: seeded from the runtime
	Now    func() time.Time // default time.Now
}

// RouterAdvertiser answers router solicitations and sends periodic
// unsolicited RAs, all of them EndsIPXEWait. It stays quiet while another
// router on the link advertises a default route, a prefix or DHCPv6: that
// router's RA ends iPXE's wait too, and ours would only race with it.
type RouterAdvertiser struct {
	cfg RAConfig
	mu  sync.Mutex // guards rand
}

// NewRouterAdvertiser fills in cfg's defaults.
func NewRouterAdvertiser(cfg RAConfig) *RouterAdvertiser {
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = 600 * time.Second
	}
	if cfg.MinInterval <= 0 || cfg.MinInterval > cfg.MaxInterval {
		cfg.MinInterval = cfg.MaxInterval / 3
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = raMaxDelay
	}
	if cfg.MulticastGap <= 0 {
		cfg.MulticastGap = raMinMulticastGap
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 10 * time.Minute
	}
	if cfg.Events == nil {
		cfg.Events = NewEventLog(cfg.Log, 0)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RouterAdvertiser{cfg: cfg}
}

func (r *RouterAdvertiser) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return lo + time.Duration(r.cfg.Rand.Int64N(int64(hi-lo)))
}

// raClient is a solicitor waiting for its answer.
type raClient struct {
	who string // MAC from the source link-layer option, else the address
	src netip.Addr
}

// raState is the scheduler of one Serve loop.
type raState struct {
	nextUnsolicited time.Time
	lastMulticast   time.Time
	multicastAt     time.Time  // zero: no multicast pending
	multicastFor    []raClient // solicitors the pending multicast answers
	unicast         []struct {
		at time.Time
		c  raClient
	}
	quietUntil time.Time
	foreign    map[netip.Addr]bool // routers already warned about
	waitLL     int                 // sends put off for want of a link-local address
}

// maxPendingUnicast bounds the answers queued at once: a flood of
// solicitations costs a bounded amount of memory and sends.
const maxPendingUnicast = 64

// Serve answers on conn until ctx ends, then returns nil. It first sends a
// router solicitation of its own, so that a real router on the link shows
// itself before the first unsolicited RA, which follows a second later.
func (r *RouterAdvertiser) Serve(ctx context.Context, conn RAConn) error {
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	log := r.cfg.Events.log
	now := r.cfg.Now()
	st := &raState{nextUnsolicited: now.Add(time.Second), foreign: map[netip.Addr]bool{}}
	rs := []byte{ICMPv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0}
	if err := conn.WriteNDP(rs, allRouters); err != nil {
		log.Debug("router solicitation probe not sent", "proto", "ipv6-ra", "interface", r.cfg.Interface, "err", err.Error())
	}
	buf := make([]byte, 1500)
	for {
		r.runDue(conn, st)
		if err := conn.SetReadDeadline(st.next()); err != nil {
			return fmt.Errorf("sanboot: ICMPv6 socket: %w", err)
		}
		n, src, hops, err := conn.ReadNDP(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("sanboot: ICMPv6 read on %s: %w", r.cfg.Interface, err)
		}
		r.receive(conn, st, buf[:n], src, hops)
	}
}

// next is when the loop must wake: the earliest pending send.
func (st *raState) next() time.Time {
	t := st.nextUnsolicited
	if !st.multicastAt.IsZero() && st.multicastAt.Before(t) {
		t = st.multicastAt
	}
	for _, u := range st.unicast {
		if u.at.Before(t) {
			t = u.at
		}
	}
	return t
}

func (r *RouterAdvertiser) receive(conn RAConn, st *raState, b []byte, src netip.Addr, hops int) {
	ev := r.cfg.Events
	now := r.cfg.Now()
	if len(b) == 0 {
		return
	}
	switch b[0] {
	case ICMPv6RouterAdvertisement:
		if ll, ok := conn.LinkLocal(); ok && ll == src {
			return // our own, looped back
		}
		ra, err := ParseRouterAdvertisement(b)
		if err != nil || hops != raHopLimit || !src.IsLinkLocalUnicast() {
			return // RFC 4861 §6.1.2: not a valid RA; hosts drop it too
		}
		if !ra.configuresHosts() {
			return // another xpboot, or a router saying the same as we do
		}
		until := now.Add(ra.RouterLifetime + r.cfg.Quiet)
		if until.After(st.quietUntil) {
			st.quietUntil = until
		}
		if !st.foreign[src] {
			st.foreign[src] = true
			ev.log.Warn("another IPv6 router advertises on the link: xpboot stays quiet while it does (its RA ends iPXE's wait too)",
				"proto", "ipv6-ra", "interface", r.cfg.Interface, "router", src.String(),
				"lifetime", ra.RouterLifetime.String(), "prefixes", ra.Prefixes, "managed", ra.Flags&RAFlagManaged != 0, "other", ra.Flags&RAFlagOther != 0)
		}
		st.multicastAt, st.multicastFor, st.unicast = time.Time{}, nil, nil
		return
	case ICMPv6RouterSolicitation:
	default:
		return
	}
	who := src.String()
	rs, err := ParseRouterSolicitation(b, src.IsUnspecified())
	if err == nil && hops != raHopLimit {
		err = fmt.Errorf("hop limit %d, want 255 (RFC 4861 §6.1.1): not from this link", hops)
	}
	if err == nil && rs.SourceLinkAddr != nil {
		who = rs.SourceLinkAddr.String()
	}
	if err != nil {
		ev.Record(who, "ipv6-ra", StateMalformed, "invalid router solicitation ignored", slog.String("from", src.String()), slog.String("error", err.Error()))
		return
	}
	if now.Before(st.quietUntil) {
		ev.Record(who, "ipv6-ra", StateIgnored, "router solicitation left to the link's IPv6 router", slog.String("from", src.String()))
		return
	}
	c := raClient{who: who, src: src}
	delay := time.Duration(0)
	if r.cfg.MaxDelay > 0 {
		delay = r.between(0, r.cfg.MaxDelay)
	}
	at := now.Add(delay)
	switch {
	case !st.multicastAt.IsZero():
		// One multicast is on its way already: it answers this one too.
		st.multicastFor = append(st.multicastFor, c)
	case at.Sub(st.lastMulticast) >= r.cfg.MulticastGap || st.lastMulticast.IsZero():
		st.multicastAt, st.multicastFor = at, []raClient{c}
	case !src.IsUnspecified() && len(st.unicast) < maxPendingUnicast:
		// RFC 4861 §6.2.6 allows a unicast answer; it keeps the multicast
		// rate limit without making a second client wait for it.
		st.unicast = append(st.unicast, struct {
			at time.Time
			c  raClient
		}{at, c})
	default:
		st.multicastAt, st.multicastFor = st.lastMulticast.Add(r.cfg.MulticastGap), []raClient{c}
	}
}

// runDue sends whatever is due.
func (r *RouterAdvertiser) runDue(conn RAConn, st *raState) {
	now := r.cfg.Now()
	ra := EndsIPXEWait(conn.HardwareAddr()).Marshal()
	quiet := now.Before(st.quietUntil)
	send := func(dst netip.Addr) bool {
		err := conn.WriteNDP(ra, dst)
		if errors.Is(err, errNoLinkLocal) {
			st.waitLL++
			if st.waitLL == 20 {
				r.cfg.Events.log.Warn("no IPv6 link-local address on the interface: router advertisements wait for one",
					"proto", "ipv6-ra", "interface", r.cfg.Interface)
			}
			return false
		}
		st.waitLL = 0
		if err != nil {
			r.cfg.Events.log.Warn("router advertisement not sent", "proto", "ipv6-ra", "interface", r.cfg.Interface, "to", dst.String(), "err", err.Error())
		}
		return err == nil
	}
	// Without a link-local address (interface just up, address in DAD),
	// retry soon instead of dropping the answer.
	retry := now.Add(250 * time.Millisecond)
	if !st.multicastAt.IsZero() && !st.multicastAt.After(now) {
		if quiet {
			st.multicastAt, st.multicastFor = time.Time{}, nil
		} else if send(allNodes) {
			st.lastMulticast = now
			for _, c := range st.multicastFor {
				r.cfg.Events.Record(c.who, "ipv6-ra", StateIPv6RA, "router solicitation answered: no IPv6 router here (lifetime 0, no prefix, no DHCPv6)",
					slog.String("from", c.src.String()), slog.String("to", allNodes.String()))
			}
			st.multicastAt, st.multicastFor = time.Time{}, nil
		} else {
			st.multicastAt = retry
		}
	}
	kept := st.unicast[:0]
	for _, u := range st.unicast {
		switch {
		case u.at.After(now):
			kept = append(kept, u)
		case quiet:
		case send(u.c.src):
			r.cfg.Events.Record(u.c.who, "ipv6-ra", StateIPv6RA, "router solicitation answered: no IPv6 router here (lifetime 0, no prefix, no DHCPv6)",
				slog.String("from", u.c.src.String()), slog.String("to", u.c.src.String()))
		default:
			u.at = retry
			kept = append(kept, u)
		}
	}
	st.unicast = kept
	if !st.nextUnsolicited.After(now) {
		switch {
		case quiet:
			st.nextUnsolicited = st.quietUntil
		case now.Sub(st.lastMulticast) < r.cfg.MulticastGap:
			st.nextUnsolicited = st.lastMulticast.Add(r.cfg.MulticastGap)
		case send(allNodes):
			st.lastMulticast = now
			r.cfg.Events.log.Debug("unsolicited router advertisement sent", "proto", "ipv6-ra", "interface", r.cfg.Interface)
			st.nextUnsolicited = now.Add(r.between(r.cfg.MinInterval, r.cfg.MaxInterval))
		default:
			st.nextUnsolicited = now.Add(time.Second)
		}
	}
}
