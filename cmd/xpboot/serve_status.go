package main

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/xpboot/xpboot/sanboot"
	"github.com/xpboot/xpboot/serve"
)

// serveStatus prints `serve --json`: one JSON object per line on stdout,
// "listening" once the target (and DHCP/TFTP) listen, "client" for each
// event of the EventLog, "stopped" with a summary at the end. Without
// --json it does nothing.
//
// Lines are written by one goroutine from a bounded queue, never by the
// DHCP, TFTP or iSCSI goroutine that records an event: if nothing reads
// stdout and the pipe fills, client lines beyond the queue are dropped and
// counted ("dropped_events" in the "stopped" line) instead of stalling the
// servers.
type serveStatus struct {
	e      *env
	on     bool
	events *sanboot.EventLog
	start  time.Time
	// wait bounds how long stopped waits for the queue to drain.
	wait time.Duration

	lines   chan []byte   // encoded lines, each ending in '\n'
	drained chan struct{} // closed when the writer goroutine ends

	mu      sync.Mutex
	counts  map[sanboot.State]int
	dropped int  // client lines not queued because the queue was full
	closed  bool // stopped has begun: no more client lines
}

// statusQueue is how many status lines wait for stdout before client
// lines are dropped.
const statusQueue = 1024

// statusListening is the "listening" line: the bound sockets and the
// served targets as package serve describes them.
type statusListening struct {
	Event string    `json:"event"` // "listening"
	Time  time.Time `json:"time"`
	serve.Listening
}

type statusEvent struct {
	Kind string `json:"event"` // "client"
	sanboot.Event
}

// statusClient is one client's last kept event in the summary.
type statusClient struct {
	Client    string        `json:"client"`
	LastState sanboot.State `json:"last_state"`
	LastProto string        `json:"last_proto"`
	LastTime  time.Time     `json:"last_time"`
	Detail    string        `json:"detail,omitempty"`
}

type statusStopped struct {
	Event         string         `json:"event"` // "stopped"
	Time          time.Time      `json:"time"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Error         string         `json:"error,omitempty"`
	Events        map[string]int `json:"events"`         // how many events of each state
	DroppedEvents int            `json:"dropped_events"` // client lines dropped: stdout was not read
	Clients       []statusClient `json:"clients"`
}

func newServeStatus(e *env, on bool, events *sanboot.EventLog) *serveStatus {
	s := &serveStatus{e: e, on: on, events: events, start: time.Now(), wait: 10 * time.Second, counts: map[sanboot.State]int{}}
	if !on {
		return s
	}
	s.lines = make(chan []byte, statusQueue)
	s.drained = make(chan struct{})
	go s.write()
	events.Watch(func(ev sanboot.Event) {
		b, err := marshalLine(statusEvent{Kind: "client", Event: ev})
		s.mu.Lock()
		defer s.mu.Unlock()
		s.counts[ev.State]++
		if err != nil || s.closed {
			return
		}
		select {
		case s.lines <- b:
		default:
			s.dropped++
		}
	})
	return s
}

// write copies the queued lines to stdout until the queue is closed. After
// a write error it keeps draining (so nothing blocks) without writing.
func (s *serveStatus) write() {
	defer close(s.drained)
	var failed error
	for b := range s.lines {
		if failed != nil {
			continue
		}
		if _, err := s.e.stdout.Write(b); err != nil {
			failed = err
			fmt.Fprintln(s.e.stderr, "xpboot: status output:", err)
		}
	}
}

// marshalLine encodes v as one JSON line.
func marshalLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}

// put queues a line that must not be dropped ("listening", "stopped"),
// waiting at most s.wait for room.
func (s *serveStatus) put(v any) bool {
	b, err := marshalLine(v)
	if err != nil {
		fmt.Fprintln(s.e.stderr, "xpboot: status output:", err)
		return false
	}
	select {
	case s.lines <- b:
		return true
	case <-time.After(s.wait):
		fmt.Fprintln(s.e.stderr, "xpboot: status output: stdout is not being read; a status line was not written")
		return false
	}
}

// listening prints the "listening" line; dhcp is nil without --dhcp.
func (s *serveStatus) listening(addr net.Addr, targets []serve.TargetStatus, dhcp *serve.DHCPStatus) {
	if !s.on {
		return
	}
	s.put(statusListening{Event: "listening", Time: time.Now(), Listening: serve.Listening{ISCSI: addr.String(), Targets: targets, DHCP: dhcp}})
}

// stopped prints the summary line after every queued line and waits (at
// most s.wait) until stdout has taken them. Client events after it are
// counted but not printed.
func (s *serveStatus) stopped(err error) {
	if !s.on {
		return
	}
	now := time.Now()
	st := statusStopped{Event: "stopped", Time: now, UptimeSeconds: now.Sub(s.start).Seconds(), Events: map[string]int{}, Clients: []statusClient{}}
	if err != nil {
		st.Error = err.Error()
	}
	for client, evs := range s.events.Snapshot() {
		if len(evs) == 0 {
			continue
		}
		last := evs[len(evs)-1]
		st.Clients = append(st.Clients, statusClient{Client: client, LastState: last.State, LastProto: last.Proto, LastTime: last.Time, Detail: last.Detail})
	}
	sort.Slice(st.Clients, func(i, j int) bool { return st.Clients[i].Client < st.Clients[j].Client })
	s.mu.Lock()
	s.closed = true
	for state, n := range s.counts {
		st.Events[state.String()] = n
	}
	st.DroppedEvents = s.dropped
	s.mu.Unlock()
	if st.DroppedEvents > 0 {
		fmt.Fprintf(s.e.stderr, "xpboot: status output: %d client events dropped because stdout was not read\n", st.DroppedEvents)
	}
	deadline := time.Now().Add(s.wait)
	s.put(st)
	close(s.lines) // the Watch callback no longer sends: closed is set
	select {
	case <-s.drained:
	case <-time.After(time.Until(deadline)):
		fmt.Fprintln(s.e.stderr, "xpboot: status output: stdout is not being read; the last status lines were not written")
	}
}
