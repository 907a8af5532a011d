package sanboot

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestEventLog(t *testing.T) {
	var logs syncBuffer
	l := NewEventLog(slog.New(slog.NewTextHandler(&logs, nil)), 3)
	clk := &fakeClock{time.Unix(1000, 0)}
	l.now = clk.Now
	for i, st := range []State{StateOffered, StateBound, StateSANBoot, StateTFTPStart, StateTFTPDone} {
		clk.t = clk.t.Add(time.Second)
		l.Record("52:54:00:77:00:01", "dhcp", st, fmt.Sprint("step ", i))
	}
	ev := l.Events("52:54:00:77:00:01")
	if len(ev) != 3 || ev[0].State != StateSANBoot || ev[2].State != StateTFTPDone {
		t.Errorf("kept %+v", ev)
	}
	l.Record("1.2.3.4:68", "dhcp", StateMalformed, "garbage")
	if len(l.Snapshot()) != 1 {
		t.Error("malformed packets are kept as clients")
	}
	if out := logs.String(); !strings.Contains(out, "client=52:54:00:77:00:01 proto=dhcp state=tftp-done") || strings.Contains(out, "garbage") {
		t.Errorf("log (info level):\n%s", out)
	}
	if b, _ := StateProxyOffered.MarshalText(); string(b) != "proxy-offered" || State(99).String() != "unknown" {
		t.Error("state names")
	}
	// A flood of clients evicts the least recent, never growing past the cap.
	for i := range maxEventClients + 10 {
		clk.t = clk.t.Add(time.Second)
		l.Record(fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), "dhcp", StateIgnored, "flood")
	}
	if n := len(l.Snapshot()); n != maxEventClients {
		t.Errorf("%d clients kept", n)
	}
	if len(l.Events("52:54:00:77:00:01")) != 0 {
		t.Error("the oldest client was not evicted")
	}
}
