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

func TestEventLogWatch(t *testing.T) {
	var logs syncBuffer
	l := NewEventLog(slog.New(slog.NewTextHandler(&logs, nil)), 0)
	var got []Event
	l.Watch(func(e Event) { got = append(got, e) })
	l.Record("1.2.3.4:68", "dhcp", StateMalformed, "garbage")
	l.Record("10.0.0.100", "iscsi", StateLoginFailed, "authentication failed",
		slog.String("initiator", "iqn.2026-01.org.xpboot:pc1"), slog.Any("err", fmt.Errorf("wrong CHAP response")))
	l.Record("52:54:00:77:00:01", "iscsi", StateLogin, "iSCSI login", slog.Int("port", 3260))
	if len(got) != 2 {
		t.Fatalf("watched %d events, want 2 (malformed packets are not client steps): %+v", len(got), got)
	}
	if e := got[0]; e.State != StateLoginFailed || e.Attrs["initiator"] != "iqn.2026-01.org.xpboot:pc1" || e.Attrs["err"] != "wrong CHAP response" {
		t.Errorf("event %+v", e)
	}
	if got[1].Attrs["port"] != "3260" || got[1].State.String() != "login" {
		t.Errorf("event %+v", got[1])
	}
	if out := logs.String(); !strings.Contains(out, `level=WARN msg="authentication failed" client=10.0.0.100 proto=iscsi state=login-failed`) {
		t.Errorf("log:\n%s", out)
	}
	for s := StateIgnored; s <= StateOverlayFailed; s++ {
		if s.String() == "unknown" {
			t.Errorf("state %d has no name", s)
		}
	}
}
