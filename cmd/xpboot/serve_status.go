package main

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
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
	targets []statusTarget
	counts  map[sanboot.State]int
	dropped int  // client lines not queued because the queue was full
	closed  bool // stopped has begun: no more client lines
}

// statusQueue is how many status lines wait for stdout before client
// lines are dropped.
const statusQueue = 1024

// statusTarget is one served target in the "listening" line.
type statusTarget struct {
	IQN        string      `json:"iqn"`
	CHAP       bool        `json:"chap"`
	MutualCHAP bool        `json:"mutual_chap"`
	RootPath   string      `json:"root_path,omitempty"` // with --dhcp: what clients are told
	LUNs       []statusLUN `json:"luns"`
}

type statusLUN struct {
	LUN        uint16 `json:"lun"`
	Path       string `json:"path"`
	Format     string `json:"format"`
	Size       int64  `json:"size"`
	ReadOnly   bool   `json:"read_only"`
	OverlayDir string `json:"overlay_dir,omitempty"`
}

type statusDHCP struct {
	Mode      string `json:"mode"`
	Interface string `json:"interface"`
	ServerIP  string `json:"server_ip"`
	DHCP      string `json:"dhcp"`
	PXE       string `json:"pxe,omitempty"` // proxy mode's port 4011
	TFTP      string `json:"tftp"`
	Script    bool   `json:"script"`
}

type statusListening struct {
	Event   string         `json:"event"` // "listening"
	Time    time.Time      `json:"time"`
	ISCSI   string         `json:"iscsi"`
	Targets []statusTarget `json:"targets"`
	DHCP    *statusDHCP    `json:"dhcp,omitempty"`
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

// lun adds a served LUN of target ft to the "listening" line.
func (s *serveStatus) lun(ft iscsitarget.FileTarget, fl iscsitarget.FileLUN, format imagefs.Format, size int64, overlayDir string) {
	if !s.on {
		return
	}
	if n := len(s.targets); n == 0 || s.targets[n-1].IQN != ft.Name {
		s.targets = append(s.targets, statusTarget{IQN: ft.Name, CHAP: len(ft.Auth.Incoming) > 0, MutualCHAP: ft.Auth.Outgoing != nil})
	}
	t := &s.targets[len(s.targets)-1]
	t.LUNs = append(t.LUNs, statusLUN{LUN: fl.Number, Path: fl.Path, Format: string(format), Size: size,
		ReadOnly: fl.ReadOnly && overlayDir == "", OverlayDir: overlayDir})
}

// listening prints the "listening" line; nb and cfg are nil without --dhcp.
func (s *serveStatus) listening(addr net.Addr, nb *sanboot.Netboot, cfg *sanboot.ServeConfig) {
	if !s.on {
		return
	}
	l := statusListening{Event: "listening", Time: time.Now(), ISCSI: addr.String(), Targets: s.targets}
	if nb != nil {
		for i := range l.Targets {
			if t, ok := cfg.Policy.Images[l.Targets[i].IQN]; ok {
				if t.Server == "" {
					t.Server = nb.ServerIP.String()
				}
				l.Targets[i].RootPath = t.RootPath()
			}
		}
		d := &statusDHCP{Mode: string(cfg.Mode), Interface: cfg.Interface, ServerIP: nb.ServerIP.String(),
			Script: cfg.Script || cfg.Mode == sanboot.ModeProxy}
		if c := nb.Server.DHCPConn; c != nil {
			d.DHCP = c.LocalAddr().String()
		}
		if c := nb.Server.PXEConn; c != nil {
			d.PXE = c.LocalAddr().String()
		}
		if c := nb.Server.TFTPConn; c != nil {
			d.TFTP = c.LocalAddr().String()
		}
		l.DHCP = d
	}
	s.put(l)
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
