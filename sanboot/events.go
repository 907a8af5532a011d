package sanboot

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// State is a step of a client's boot, as logged and kept in the EventLog.
type State int

// Boot steps.
const (
	StateIgnored       State = iota // request not answered (policy, not PXE, other server chosen)
	StateMalformed                  // packet could not be parsed
	StateOffered                    // full mode DHCPOFFER
	StateBound                      // full mode DHCPACK
	StateNAKed                      // full mode DHCPNAK
	StateReleased                   // DHCPRELEASE
	StateDeclined                   // DHCPDECLINE: address in use elsewhere
	StateInformed                   // DHCPINFORM answered
	StateProxyOffered               // proxy offer or port-4011 ACK
	StateChainload                  // a plain PXE ROM was sent the iPXE binary
	StateSANBoot                    // an iPXE client was sent the SAN answer
	StateTFTPStart                  // TFTP read request accepted
	StateTFTPDone                   // TFTP transfer completed
	StateTFTPFailed                 // TFTP request refused or transfer failed
	StateLogin                      // iSCSI login authenticated (also discovery sessions)
	StateLoginFailed                // iSCSI login refused: authentication failed or the client may not use the target
	StateOverlay                    // the client's write-back overlay was created or reopened
	StateOverlayFailed              // the client's overlay could not be opened or created
	StateIPv6RA                     // an IPv6 router solicitation was answered: iPXE's IPv6 wait ends
)

var stateNames = [...]string{"ignored", "malformed", "offered", "bound", "naked", "released", "declined", "informed",
	"proxy-offered", "chainload", "sanboot", "tftp-start", "tftp-done", "tftp-failed",
	"login", "login-failed", "overlay", "overlay-failed", "ipv6-ra"}

// String names the state.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText makes states readable in JSON status.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Event is one logged step of a client.
type Event struct {
	Time   time.Time `json:"time"`
	Client string    `json:"client"` // MAC, or the IP when the MAC is not known (TFTP, iSCSI)
	Proto  string    `json:"proto"`  // dhcp, proxydhcp, tftp, iscsi
	State  State     `json:"state"`
	Detail string    `json:"detail,omitempty"`
	// Attrs are the event's further log attributes (ip, file, initiator,
	// err …) as text.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// EventLog keeps the last N events per client and logs every event. It also
// remembers which MAC holds which IP, so TFTP events name the MAC. It is
// safe for concurrent use; the zero value is not usable, use NewEventLog.
type EventLog struct {
	log *slog.Logger
	now func() time.Time
	n   int

	mu     sync.Mutex
	events map[string][]Event
	byIP   map[string]string
	watch  []func(Event)
}

// NewEventLog returns a log keeping n events per client (n ≤ 0 means 10),
// writing each event to log (nil: discard) at info level, or at debug level
// for ignored and malformed packets.
func NewEventLog(log *slog.Logger, n int) *EventLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if n <= 0 {
		n = 10
	}
	return &EventLog{log: log, now: time.Now, n: n, events: map[string][]Event{}, byIP: map[string]string{}}
}

// Watch calls f with every event kept from now on (every event but
// malformed packets), after it is logged, from the goroutine that recorded
// it: f must be safe for concurrent use and should not block. `xpboot serve
// --json` prints events this way.
func (l *EventLog) Watch(f func(Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watch = append(l.watch, f)
}

// Record logs an event for client and keeps it.
func (l *EventLog) Record(client, proto string, state State, detail string, attrs ...slog.Attr) {
	level := slog.LevelInfo
	switch state {
	case StateIgnored, StateMalformed:
		level = slog.LevelDebug
	case StateTFTPFailed, StateDeclined, StateNAKed, StateLoginFailed:
		level = slog.LevelWarn
	case StateOverlayFailed:
		level = slog.LevelError
	}
	all := append([]slog.Attr{slog.String("client", client), slog.String("proto", proto), slog.String("state", state.String())}, attrs...)
	l.log.LogAttrs(context.Background(), level, detail, all...)
	if state == StateMalformed {
		return // not a client step; keep the table for real clients
	}
	e := Event{Time: l.now(), Client: client, Proto: proto, State: state, Detail: detail}
	if len(attrs) > 0 {
		e.Attrs = make(map[string]string, len(attrs))
		for _, a := range attrs {
			e.Attrs[a.Key] = a.Value.Resolve().String()
		}
	}
	l.mu.Lock()
	if _, known := l.events[client]; !known && len(l.events) >= maxEventClients {
		l.evictLocked()
	}
	ev := append(l.events[client], e)
	if len(ev) > l.n {
		ev = append(ev[:0:0], ev[len(ev)-l.n:]...)
	}
	l.events[client] = ev
	watch := l.watch
	l.mu.Unlock()
	for _, f := range watch {
		f(e)
	}
}

// maxEventClients bounds the clients an EventLog remembers, so a flood of
// made-up MACs cannot grow it without limit.
const maxEventClients = 4096

// evictLocked forgets the client whose last event is the oldest.
func (l *EventLog) evictLocked() {
	var oldest string
	var t time.Time
	for c, ev := range l.events {
		if last := ev[len(ev)-1].Time; oldest == "" || last.Before(t) {
			oldest, t = c, last
		}
	}
	delete(l.events, oldest)
}

// Bind ties an IP to a MAC, so later events for the IP name the MAC.
func (l *EventLog) Bind(ip net.IP, mac net.HardwareAddr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.byIP[ip.String()]; !known && len(l.byIP) >= maxEventClients {
		clear(l.byIP) // a rebuild from later leases is cheap; logging only
	}
	l.byIP[ip.String()] = mac.String()
}

// ClientFor returns the MAC bound to ip, or the IP itself.
func (l *EventLog) ClientFor(ip net.IP) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if mac, ok := l.byIP[ip.String()]; ok {
		return mac
	}
	return ip.String()
}

// Events returns a copy of the kept events of one client.
func (l *EventLog) Events(client string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events[client]...)
}

// Snapshot returns a copy of all kept events by client, for status output.
func (l *EventLog) Snapshot() map[string][]Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]Event, len(l.events))
	for k, v := range l.events {
		out[k] = append([]Event(nil), v...)
	}
	return out
}
