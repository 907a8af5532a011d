package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/internal/peertest"
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
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
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
