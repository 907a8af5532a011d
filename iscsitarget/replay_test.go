package iscsitarget

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

var update = flag.Bool("update", false, "re-record testdata/*.pdus with real initiators and rewrite *.golden")

// A recording is what a real initiator sent: its PDUs, byte for byte. The
// server runs with a fixed Rand, so the CHAP challenge, and therefore the
// recorded CHAP_R, are the same on every replay.
var recordings = []struct {
	file string
	url  func(addr string) string
	env  []string
}{
	{"libiscsi-mutual-chap.pdus", func(a string) string { return "iscsi://testuser%userpassword@" + a + "/" + testIQN + "/0" },
		[]string{"LIBISCSI_CHAP_TARGET_USERNAME=testtarget", "LIBISCSI_CHAP_TARGET_PASSWORD=targetpassword"}},
	{"libiscsi-no-auth.pdus", func(a string) string { return "iscsi://" + a + "/" + testIQN + "-open/1" }, nil},
}

func replayConfig(t *testing.T) Config {
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.Targets[0].Auth = testAuth
	cfg.Targets = append(cfg.Targets, Target{Name: testIQN + "-open", LUNs: []LUN{{Number: 1, Device: d}}})
	cfg.Rand = fixedRand(0x42)
	cfg.Logger = testLogger(t)
	return cfg
}

// TestReplayLogins feeds recorded libiscsi sessions (login with mutual CHAP
// or none, INQUIRY, logout) to the target over net.Pipe and compares the
// target's answers with testdata/*.golden. `go test -run TestReplayLogins
// -update` records them again with iscsi-inq.
func TestReplayLogins(t *testing.T) {
	for _, rec := range recordings {
		t.Run(rec.file, func(t *testing.T) {
			path := filepath.Join("testdata", rec.file)
			if *update {
				record(t, rec.file, rec.url, rec.env)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewServer(replayConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Shutdown(t.Context()) })
			ti := pipeServer(t, s)
			var transcript strings.Builder
			for off := 0; off < len(raw); {
				req, n, err := parsePDU(raw[off:], 1<<20)
				if err != nil {
					t.Fatalf("recording at byte %d: %v", off, err)
				}
				off += n
				if _, err := ti.c.Write(raw[off-n : off]); err != nil {
					t.Fatal(err)
				}
				if req.opcode() == opNOPOut && req.itt() == reservedTag {
					continue
				}
				// Read until the PDU that completes this request.
				for i := 0; i < 1000; i++ {
					resp := ti.read()
					fmt.Fprintf(&transcript, "%s flags=%02x status=%02x%02x", opName(resp.opcode()), resp.flags(), resp.bhs[2], resp.bhs[3])
					if resp.opcode() == opLoginResp {
						fmt.Fprintf(&transcript, " login=%04x keys=%q", loginStatus(resp), strings.TrimRight(string(resp.data), "\x00"))
					}
					transcript.WriteString("\n")
					if resp.opcode() != opDataIn || resp.flags()&0x01 != 0 {
						break
					}
				}
			}
			golden := strings.TrimSuffix(path, ".pdus") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(transcript.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := transcript.String(); got != string(want) {
				t.Errorf("replay differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// record runs iscsi-inq through a recording TCP proxy in front of a server.
func record(t *testing.T, file string, url func(string) string, env []string) {
	bin := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	_, addr := startServer(t, replayConfig(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var sent bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer s.Close()
		go io.Copy(c, s)
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			mu.Lock()
			sent.Write(buf[:n])
			mu.Unlock()
			if n > 0 {
				s.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	out, err := runEnv(t, 30*time.Second, env, bin, url(l.Addr().String()))
	if err != nil {
		t.Fatalf("iscsi-inq: %v\n%s", err, out)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not finish")
	}
	mu.Lock()
	defer mu.Unlock()
	if err := os.WriteFile(filepath.Join("testdata", file), sent.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
