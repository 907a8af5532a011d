package iscsitarget

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
	// run drives a real initiator against the recording proxy at addr
	// until it is done or enough is closed.
	run func(t *testing.T, addr string, enough <-chan struct{})
	// keep, when set, says where the recording ends: the length of the
	// initiator's stream to keep once it holds enough. The initiator is
	// stopped there; without keep the recording runs to the initiator's
	// close.
	keep func(stream []byte) (n int, ok bool)
}{
	{"libiscsi-mutual-chap.pdus", iscsiInq(func(a string) string { return "iscsi://testuser%userpassword@" + a + "/" + testIQN + "/0" },
		"LIBISCSI_CHAP_TARGET_USERNAME=testtarget", "LIBISCSI_CHAP_TARGET_PASSWORD=targetpassword"), nil},
	{"libiscsi-no-auth.pdus", iscsiInq(func(a string) string { return "iscsi://" + a + "/" + testIQN + "-open/1" }), nil},
	// iPXE keeps its session until the OS takes over and never logs
	// out, so its recordings end with its first READ: the login, TEST
	// UNIT READY, READ CAPACITY(10), then READ(10) of 4 blocks at LBA 64
	// (Debian's 1.0.0+git-20190125 build, sanbooting a blank disk).
	{"ipxe-mutual-chap.pdus", ipxeSanboot(0, testIQN,
		"set username testuser", "set password userpassword",
		"set reverse-username testtarget", "set reverse-password targetpassword"), throughFirstRead},
	{"ipxe-no-auth.pdus", ipxeSanboot(1, testIQN+"-open"), throughFirstRead},
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

// TestReplayLogins feeds recorded sessions of real initiators to the target
// over net.Pipe and compares the target's answers with testdata/*.golden:
// libiscsi (login with mutual CHAP or none, INQUIRY, logout) and iPXE
// (sanboot's login with mutual CHAP or none and its first SCSI commands).
// The replay needs neither peer. `go test -run TestReplayLogins -update`
// records them again with iscsi-inq and with iPXE in QEMU, and rewrites the
// goldens. Fields the initiators randomise change on every recording: the
// ISID qualifier, libiscsi's ITTs and CmdSNs, and the mutual-CHAP
// challenge (CHAP_C, and iPXE's CHAP_I, whose digits can change the
// PDU's length), hence the target's CHAP_R in the golden. The CHAP_R the
// initiators send stays the same: the target's challenge comes from a
// fixed Rand.
func TestReplayLogins(t *testing.T) {
	for _, rec := range recordings {
		t.Run(rec.file, func(t *testing.T) {
			path := filepath.Join("testdata", rec.file)
			if *update {
				record(t, rec.file, rec.run, rec.keep)
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

// record runs an initiator (run) through a recording TCP proxy in front of
// a server configured as the replay's, and writes what the initiator sent,
// cut where keep says, to testdata/file.
func record(t *testing.T, file string, run func(*testing.T, string, <-chan struct{}), keep func([]byte) (int, bool)) {
	_, addr := startServer(t, replayConfig(t))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	var sent bytes.Buffer
	kept := -1 // all of it unless keep says otherwise
	enough := make(chan struct{})
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
			if keep != nil && kept < 0 {
				if k, ok := keep(sent.Bytes()); ok {
					kept = k
					close(enough)
				}
			}
			mu.Unlock()
			if n > 0 {
				s.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	run(t, l.Addr().String(), enough)
	l.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not finish")
	}
	mu.Lock()
	defer mu.Unlock()
	b := sent.Bytes()
	if keep != nil {
		if kept < 0 {
			t.Fatalf("the initiator stopped before the recording was complete; it sent %d bytes", len(b))
		}
		b = b[:kept]
	}
	if err := os.WriteFile(filepath.Join("testdata", file), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// iscsiInq runs libiscsi's iscsi-inq (login, INQUIRY, logout) on the URL
// url makes for the proxy's address, with env added to its environment.
func iscsiInq(url func(addr string) string, env ...string) func(*testing.T, string, <-chan struct{}) {
	return func(t *testing.T, addr string, _ <-chan struct{}) {
		bin := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
		out, err := runEnv(t, 30*time.Second, env, bin, url(addr))
		if err != nil {
			t.Fatalf("iscsi-inq: %v\n%s", err, out)
		}
	}
}

// ipxeRecordTimeout bounds one iPXE recording: QEMU (TCG on a loaded
// machine) starting iPXE, DHCP from QEMU's user network, and the login.
const ipxeRecordTimeout = 120 * time.Second

// ipxeSanboot boots Debian's iPXE (ipxe.lkrn as QEMU's -kernel) with a
// script as its initrd, which iPXE runs because it starts with #!ipxe. The
// script sets the initiator name and the settings lines, then sanboots
// LUN lun of target iqn at the proxy. QEMU's user-mode network lets the
// guest reach the proxy on the host's 127.0.0.1 as 10.0.2.2, so nothing
// listens beyond loopback. QEMU is killed as soon as the proxy has enough.
func ipxeSanboot(lun int, iqn string, settings ...string) func(*testing.T, string, <-chan struct{}) {
	return func(t *testing.T, addr string, enough <-chan struct{}) {
		qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
		lkrn := peertest.NeedFile(t, "/usr/lib/ipxe/ipxe.lkrn", "ipxe")
		_, port, _ := net.SplitHostPort(addr)
		script := "#!ipxe\ndhcp\nset initiator-iqn iqn.2010-04.org.ipxe:xpboot-replay\n"
		for _, s := range settings {
			script += s + "\n"
		}
		script += fmt.Sprintf("sanboot --no-describe iscsi:10.0.2.2::%s:%d:%s\n", port, lun, iqn)
		path := filepath.Join(t.TempDir(), "record.ipxe")
		if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), ipxeRecordTimeout)
		defer cancel()
		// romfile= keeps QEMU from loading a NIC boot ROM: the iPXE
		// that runs is the -kernel one. With 64 MiB of guest memory
		// Debian's ipxe.lkrn never reaches its script; 128 MiB works.
		args := append([]string{"-m", "128", "-display", "none", "-no-reboot", "-monitor", "none", "-serial", "none",
			"-kernel", lkrn, "-initrd", path,
			"-netdev", "user,id=n0", "-device", "e1000,netdev=n0,romfile="}, peertest.QEMUAccel()...)
		cmd := exec.CommandContext(ctx, qemu, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var waitErr error
		exited := make(chan struct{})
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		t.Cleanup(stop)
		select {
		case <-enough:
			stop() // now, so that the proxy sees the connection close
		case <-exited:
			t.Fatalf("QEMU ended before iPXE logged in: %v\n%s", waitErr, out.String())
		case <-ctx.Done():
			t.Fatalf("iPXE did not log in within %v (script %q)\n%s", ipxeRecordTimeout, script, out.String())
		}
	}
}

// throughFirstRead keeps the stream up to and including the first READ
// command: the whole login, then the SCSI commands iPXE sends before it
// reads the boot sector.
func throughFirstRead(stream []byte) (int, bool) {
	for off := 0; off < len(stream); {
		p, n, err := parsePDU(stream[off:], 1<<20)
		if err != nil {
			return 0, false // incomplete: wait for more
		}
		off += n
		if p.opcode() == opSCSICmd {
			switch p.bhs[32] {
			case cmdRead6, cmdRead10, cmdRead12, cmdRead16:
				return off, true
			}
		}
	}
	return 0, false
}
