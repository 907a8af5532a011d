package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/sanboot"
)

// statusLine is any line of `serve --json`.
type statusLine struct {
	Event   string `json:"event"`
	ISCSI   string `json:"iscsi"`
	Targets []struct {
		IQN  string `json:"iqn"`
		CHAP bool   `json:"chap"`
		LUNs []struct {
			LUN    int    `json:"lun"`
			Format string `json:"format"`
			Size   int64  `json:"size"`
		} `json:"luns"`
		RootPath string `json:"root_path"`
	} `json:"targets"`
	DHCP *struct {
		Mode string `json:"mode"`
		TFTP string `json:"tftp"`
	} `json:"dhcp"`
	Client  string            `json:"client"`
	Proto   string            `json:"proto"`
	State   string            `json:"state"`
	Detail  string            `json:"detail"`
	Attrs   map[string]string `json:"attrs"`
	Error   string            `json:"error"`
	Events  map[string]int    `json:"events"`
	Clients []struct {
		Client    string `json:"client"`
		LastState string `json:"last_state"`
	} `json:"clients"`
}

// parseStatus reads the JSON lines of out, skipping other lines when
// mixed is set (stdout and stderr in one buffer).
func parseStatus(t *testing.T, out string, mixed bool) []statusLine {
	t.Helper()
	var lines []statusLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if mixed && !strings.HasPrefix(sc.Text(), "{") {
			continue
		}
		var l statusLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("status line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// TestServeJSON runs `serve --json` on loopback, logs in with iscsi-inq
// once with the right and once with a wrong CHAP secret, stops serve, and
// reads stdout: a "listening" line, one "client" line per iSCSI login
// (success and refusal, naming initiator and address), and a "stopped"
// summary — JSON lines and nothing else.
func TestServeJSON(t *testing.T) {
	inq := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	img := sparseImage(t, "json.img", 4<<20)
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		app := newApp(strings.NewReader(""), &stdout, &stderr)
		app.ExitErrHandler = func(*cli.Context, error) {}
		done <- app.RunContext(ctx, []string{"xpboot", "serve", "--json", "--image", img, "--listen", "127.0.0.1:0",
			"--iqn", "iqn.2026-01.org.xpboot:json", "--chap", "testuser:userpassword"})
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if ls := parseStatus(t, stdout.String(), false); len(ls) > 0 {
			addr = ls[0].ISCSI
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	peertest.Run(t, 30*time.Second, inq, "iscsi://testuser%userpassword@"+addr+"/iqn.2026-01.org.xpboot:json/0")
	if out, err := peertest.Try(t, 30*time.Second, inq, "iscsi://testuser%wrongpassword@"+addr+"/iqn.2026-01.org.xpboot:json/0"); err == nil {
		t.Errorf("login with a wrong secret succeeded:\n%s", out)
	}
	// A target that does not exist: refused, and the log says which.
	if out, err := peertest.Try(t, 30*time.Second, inq, "iscsi://testuser%userpassword@"+addr+"/iqn.2026-01.org.xpboot:nope/0"); err == nil {
		t.Errorf("login to a missing target succeeded:\n%s", out)
	}
	stopServe(t, cancel, done, &stderr)
	lines := parseStatus(t, stdout.String(), false)
	if len(lines) < 4 {
		t.Fatalf("status:\n%s", stdout.String())
	}
	first, last := lines[0], lines[len(lines)-1]
	if first.Event != "listening" || len(first.Targets) != 1 || first.Targets[0].IQN != "iqn.2026-01.org.xpboot:json" ||
		!first.Targets[0].CHAP || len(first.Targets[0].LUNs) != 1 || first.Targets[0].LUNs[0].Size != 4<<20 ||
		first.Targets[0].LUNs[0].Format != "raw" || first.DHCP != nil {
		t.Errorf("listening line: %+v", first)
	}
	var login, refused bool
	for _, l := range lines[1 : len(lines)-1] {
		if l.Event != "client" || l.Proto != "iscsi" || l.Client != "127.0.0.1" || l.Attrs["remote"] == "" || l.Attrs["initiator"] == "" {
			t.Errorf("client line: %+v", l)
		}
		switch l.State {
		case "login":
			login = login || l.Attrs["session"] == "Normal"
		case "login-failed":
			refused = strings.Contains(l.Attrs["err"], "authentication failed") && l.Attrs["method"] == "CHAP"
		}
	}
	if !login || !refused {
		t.Errorf("want a login and a refused login among the client lines:\n%s", stdout.String())
	}
	if last.Event != "stopped" || last.Error != "" || last.Events["login"] < 1 || last.Events["login-failed"] != 1 ||
		len(last.Clients) != 1 || last.Clients[0].Client != "127.0.0.1" || last.Clients[0].LastState != "login-failed" {
		t.Errorf("stopped line: %+v", last)
	}
	if strings.Contains(stdout.String(), "userpassword") || strings.Contains(stdout.String(), "wrongpassword") {
		t.Error("a secret in the status output")
	}
	if !regexp.MustCompile(`msg="login failed" remote=127\.0\.0\.1:\d+ initiator=\S+ .*err=".*unknown target \\"iqn\.2026-01\.org\.xpboot:nope\\""`).MatchString(stderr.String()) {
		t.Errorf("the login to a missing target is not in the log:\n%s", stderr.String())
	}
	if !bytes.Contains([]byte(stderr.String()), []byte(`msg="authentication failed"`)) {
		t.Errorf("the refused login is not in the log:\n%s", stderr.String())
	}
}

// blockingWriter blocks every Write until release is closed; entered is
// signalled on the first Write.
type blockingWriter struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
	out     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.out.Write(p)
}

// TestServeStatusBlockedStdout: with stdout not read, recording client
// events never blocks; lines beyond the queue are dropped and counted, and
// once stdout moves again the "stopped" line reports the count after every
// queued line. A stdout that never moves delays stopped by at most its
// wait.
func TestServeStatusBlockedStdout(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	var stderr syncBuffer
	e := &env{stdout: w, stderr: &stderr, log: slog.New(slog.DiscardHandler)}
	events := sanboot.NewEventLog(nil, 0)
	s := newServeStatus(e, true, events)
	s.listening(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3260}, nil, nil)
	<-w.entered // the writer holds the listening line and blocks
	const extra = 50
	start := time.Now()
	for i := range statusQueue + extra {
		events.Record("52:54:00:00:00:01", "dhcp", sanboot.StateOffered, fmt.Sprint("offer ", i))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("recording %d events with stdout blocked took %v", statusQueue+extra, d)
	}
	close(w.release)
	s.stopped(nil)
	lines := parseStatus(t, w.out.String(), false)
	if len(lines) != statusQueue+2 {
		t.Fatalf("%d lines, want the listening line, %d client lines and stopped", len(lines), statusQueue)
	}
	var last struct {
		Event         string         `json:"event"`
		Events        map[string]int `json:"events"`
		DroppedEvents int            `json:"dropped_events"`
	}
	all := strings.Split(strings.TrimSpace(w.out.String()), "\n")
	if err := json.Unmarshal([]byte(all[len(all)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if lines[0].Event != "listening" || lines[1].Event != "client" || last.Event != "stopped" ||
		last.DroppedEvents != extra || last.Events["offered"] != statusQueue+extra {
		t.Errorf("first %q, second %q, last %+v; want %d dropped of %d", lines[0].Event, lines[1].Event, last, extra, statusQueue+extra)
	}
	if lines[1].Detail != "offer 0" || lines[statusQueue].Detail != fmt.Sprint("offer ", statusQueue-1) {
		t.Errorf("client lines %q … %q: want the first %d events in order", lines[1].Detail, lines[statusQueue].Detail, statusQueue)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("%d client events dropped", extra)) {
		t.Errorf("stderr: %q", stderr.String())
	}

	// Never read: stopped gives up after its wait.
	w2 := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(w2.release)
	var stderr2 syncBuffer
	events2 := sanboot.NewEventLog(nil, 0)
	s2 := newServeStatus(&env{stdout: w2, stderr: &stderr2, log: slog.New(slog.DiscardHandler)}, true, events2)
	s2.wait = 200 * time.Millisecond
	s2.listening(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3260}, nil, nil)
	for range statusQueue + 1 {
		events2.Record("52:54:00:00:00:01", "tftp", sanboot.StateTFTPStart, "read")
	}
	start = time.Now()
	s2.stopped(nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopped with stdout never read took %v", d)
	}
	if !strings.Contains(stderr2.String(), "not being read") {
		t.Errorf("stderr: %q", stderr2.String())
	}
	events2.Record("52:54:00:00:00:01", "tftp", sanboot.StateTFTPDone, "after stop") // counted, not sent on the closed queue
}
