package iscsitarget

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address local (127.0.0.x),
// so that one test can play several hosts.
func dialFrom(t testing.TB, addr, local string, isid [6]byte) (*testInit, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	ti := &testInit{t: t, c: c, isid: isid, mrdsl: 8192, cmdSN: 1}
	ti.rd = pduReader{r: c, maxData: 1 << 24}
	return ti, nil
}

// libiscsiISID is an ISID of the random format libiscsi uses (not iPXE's).
func libiscsiISID(n byte) [6]byte { return [6]byte{0x80, 0x12, 0x34, 0x56, 0, n} }

// heapBytes is the live heap as runtime/metrics reports it.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func settledHeap() uint64 {
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	return heapBytes()
}

func read16(lba uint64, n uint32) []byte {
	c := make([]byte, 16)
	c[0] = cmdRead16
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], n)
	return c
}

// TestMemoryBudget drives the hostile patterns of issue 15 at a target
// with small budgets: from one address, connections that queue 8 MiB
// READs and never read the answers, one READ(16) of 64 MiB with an EDTL of
// 512, and a CmdSN flood. The heap stays within the configured budget
// (twice it, for the pooled buffers, plus a fixed allowance for connection
// state; without the budget it grows by hundreds of MiB) while a client at another
// address keeps writing and reading back, and returns to where it was
// once the hostile connections close.
func TestMemoryBudget(t *testing.T) {
	d, _ := newImage(t, 64<<20)
	cfg := simpleConfig(d)
	cfg.MaxLoginFailures = 1000
	cfg.MaxConnectionMemory = 8 << 20
	cfg.MaxAddressMemory = 16 << 20
	cfg.MaxMemory = 24 << 20
	cfg.MaxTransferLength = 8 << 20
	cfg.IdleTimeout = -1
	_, addr := startServer(t, cfg)
	const hostileConns = 12
	base := settledHeap()

	var peak atomic.Uint64
	var between sync.Mutex // held by the good client while a command runs
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			// Live heap: after two collections, so that garbage waiting
			// for the next cycle does not count, nor what a cycle's
			// concurrent mark keeps alive because it was allocated
			// meanwhile; the good client (whose 1 MiB reads churn fast)
			// pauses between its commands while the sample is taken.
			between.Lock()
			runtime.GC()
			runtime.GC()
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			between.Unlock()
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	var hostile []*testInit
	for i := 0; i < hostileConns; i++ {
		ti, err := dialFrom(t, addr, "127.0.0.1", libiscsiISID(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		if st := ti.loginAs(fmt.Sprintf("iqn.2026-01.test:hostile%d", i), byte(i)); st != 0 {
			t.Fatalf("hostile login %d: status 0x%04x", i, st)
		}
		// A window's worth of 8 MiB READs, never read back.
		for k := 0; k < 64; k++ {
			ti.command(read10(uint32(k)*16384%(64<<11-16384), 16384), true, false, 8<<20, nil)
		}
		hostile = append(hostile, ti)
	}
	// A READ(16) of 131072 blocks (64 MiB) with EDTL 512 is refused
	// (MAXIMUM TRANSFER LENGTH), not served.
	big, err := dialFrom(t, addr, "127.0.0.3", libiscsiISID(100))
	if err != nil {
		t.Fatal(err)
	}
	if st := big.loginAs("iqn.2026-01.test:big", 100); st != 0 {
		t.Fatalf("login: 0x%04x", st)
	}
	res := big.await(big.command(read16(0, 131072), true, false, 512, nil), nil)
	if k, asc := senseOf(&scsiResult{sense: res.sense}); res.status != statusCheckCondition || k != senseIllegalRequest || asc != ascInvalidFieldInCDB {
		t.Errorf("READ(16) of 64 MiB: status 0x%02x sense %x, want INVALID FIELD IN CDB", res.status, res.sense)
	}
	// A READ inside the limit with a small EDTL sends EDTL bytes and an
	// overflow residual.
	res = big.await(big.command(read10(0, 64), true, false, 512, nil), nil)
	if res.status != 0 || len(res.data) != 512 || res.residual != 63*512 || res.flags&0x04 == 0 {
		t.Errorf("READ(10) of 64 blocks, EDTL 512: status %d, %d bytes, residual %d flags 0x%02x", res.status, len(res.data), res.residual, res.flags)
	}
	// CmdSN flood: commands far outside the window are dropped, those
	// behind a gap inside it wait (bounded by the window and
	// maxQueuedBytes).
	for k := 0; k < 2060; k++ {
		sn := big.cmdSN + 1000 + uint32(k)
		if k >= 2000 {
			sn = big.cmdSN + 1 + uint32(k-2000) // a gap at big.cmdSN
		}
		p := &pdu{}
		p.bhs[0] = opSCSICmd
		p.bhs[1] = 0xc1
		p.put32(16, uint32(1000+k))
		p.put32(20, 512)
		p.put32(24, sn)
		copy(p.bhs[32:], read10(0, 1))
		big.write(p)
	}

	// A legitimate client elsewhere keeps working meanwhile.
	good, err := dialFrom(t, addr, "127.0.0.2", libiscsiISID(200))
	if err != nil {
		t.Fatal(err)
	}
	if st := good.loginAs("iqn.2026-01.test:good", 200); st != 0 {
		t.Fatalf("legitimate login: 0x%04x", st)
	}
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		between.Lock()
		blk := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a, 0xa5}, 128)
		lba := uint32(i % 1024)
		good.writeBlock(lba, blk)
		if got := good.readBlock(lba); !bytes.Equal(got, blk) {
			t.Fatalf("legitimate client: block %d reads back differently", lba)
		}
		res := good.await(good.command(read10(lba, 2048), true, false, 1<<20, nil), nil)
		if res.status != 0 || len(res.data) != 1<<20 {
			t.Fatalf("legitimate 1 MiB READ: status %d, %d bytes", res.status, len(res.data))
		}
		between.Unlock()
	}
	close(stopSampling)
	<-sampled
	// The budget bounds the buffers in use and the free ones kept for
	// reuse together; the allowance is for what is not command data
	// (bufio buffers, tasks, PDUs, the test's own client buffers).
	allowance := uint64(cfg.MaxMemory) + 16<<20
	if grown := peak.Load() - min(base, peak.Load()); grown > allowance {
		t.Errorf("heap grew by %d MiB under attack, budget %d MiB (allowed: %d MiB)", grown>>20, cfg.MaxMemory>>20, allowance>>20)
	} else {
		t.Logf("heap peak %d MiB above the start (MaxMemory %d MiB)", grown>>20, cfg.MaxMemory>>20)
	}
	for _, ti := range append(hostile, big) {
		ti.c.Close()
	}
	// Memory comes back once the connections are gone.
	var after uint64
	for wait := time.Now().Add(20 * time.Second); time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
		if after = settledHeap(); after < base+8<<20 {
			break
		}
	}
	if after >= base+8<<20 {
		t.Errorf("heap %d MiB above the start after the hostile connections closed", (after-base)>>20)
	}
}

// TestFairLimits: one address holding all its connection slots (idle,
// never logging in) and its sessions does not keep a client at another
// address out; idle pre-login connections are closed after
// FirstPDUTimeout.
func TestFairLimits(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.MaxConnectionsPerAddress = 4
	cfg.MaxSessionsPerAddress = 3
	cfg.FirstPDUTimeout = 300 * time.Millisecond
	cfg.IdleTimeout = -1
	_, addr := startServer(t, cfg)

	// Sessions: three from 127.0.0.1 fill its share, a fourth is refused.
	for i := 0; i < 3; i++ {
		ti, err := dialFrom(t, addr, "127.0.0.1", libiscsiISID(byte(i)))
		if err != nil {
			t.Fatal(err)
		}
		if st := ti.loginAs(fmt.Sprintf("iqn.2026-01.test:a%d", i), byte(i)); st != 0 {
			t.Fatalf("session %d: 0x%04x", i, st)
		}
	}
	ti, err := dialFrom(t, addr, "127.0.0.1", libiscsiISID(9))
	if err != nil {
		t.Fatal(err)
	}
	if st := ti.loginAs("iqn.2026-01.test:a9", 9); st != statusOutOfResources {
		t.Fatalf("session beyond MaxSessionsPerAddress: 0x%04x, want 0x0302", st)
	}
	// Connections: the address's fourth slot is free again; fill it and
	// more with idle connections, which are refused or time out.
	var idle []net.Conn
	for i := 0; i < 8; i++ {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	good, err := dialFrom(t, addr, "127.0.0.2", libiscsiISID(1))
	if err != nil {
		t.Fatal(err)
	}
	if st := good.loginAs("iqn.2026-01.test:good", 1); st != 0 {
		t.Fatalf("client at another address: 0x%04x", st)
	}
	if b := good.readBlock(0); len(b) != 512 {
		t.Fatalf("read %d bytes", len(b))
	}
	start := time.Now()
	for i, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("idle connection %d got data", i)
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("idle pre-login connections closed after %v, FirstPDUTimeout is %v", took, cfg.FirstPDUTimeout)
	}
}

// TestSessionsPerInitiator: at boot the OS logs in with its own ISID while
// iPXE's session of the same initiator name still exists; both are
// admitted (default MaxSessionsPerInitiator 4). A login with the same name
// and ISID reinstates the old session (its connection is closed) and does
// not count twice; a fifth concurrent ISID is refused.
func TestSessionsPerInitiator(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.IdleTimeout = -1
	_, addr := startServer(t, cfg)
	const name = "iqn.2010-04.org.ipxe:client-1"
	ipxe, _ := dialFrom(t, addr, "127.0.0.1", [6]byte{0x40, 0x00, 0x27, 0x23, 0x12, 0x34})
	if st := ipxe.loginAs(name, 0x34); st != 0 {
		t.Fatalf("iPXE login: 0x%04x", st)
	}
	ipxe.writeBlock(7, bytes.Repeat([]byte{7}, 512))
	osLogin, _ := dialFrom(t, addr, "127.0.0.1", [6]byte{0x40, 0x00, 0x01, 0x37, 0x00, 0x01})
	if st := osLogin.loginAs(name, 0x01); st != 0 {
		t.Fatalf("OS login while iPXE's session exists: 0x%04x", st)
	}
	if b := osLogin.readBlock(7); b[0] != 7 {
		t.Fatal("OS session reads other data")
	}
	// Reinstatement: the same name and ISID again, many times.
	for i := 0; i < 6; i++ {
		again, _ := dialFrom(t, addr, "127.0.0.1", [6]byte{0x40, 0x00, 0x01, 0x37, 0x00, 0x01})
		if st := again.loginAs(name, 0x01); st != 0 {
			t.Fatalf("reinstatement %d: 0x%04x", i, st)
		}
		osLogin.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := osLogin.rd.read(); err == nil {
			t.Fatalf("reinstatement %d: the old connection is still open", i)
		}
		osLogin = again
	}
	for i := byte(2); i <= 3; i++ {
		x, _ := dialFrom(t, addr, "127.0.0.1", [6]byte{0x40, 0x00, 0x01, 0x37, 0x00, i})
		if st := x.loginAs(name, i); st != 0 {
			t.Fatalf("session %d of the initiator: 0x%04x", i+1, st)
		}
	}
	fifth, _ := dialFrom(t, addr, "127.0.0.1", [6]byte{0x40, 0x00, 0x01, 0x37, 0x00, 9})
	if st := fifth.loginAs(name, 9); st != statusOutOfResources {
		t.Fatalf("fifth session of one initiator: 0x%04x, want 0x0302", st)
	}
	// iPXE's session still works.
	if b := ipxe.readBlock(7); b[0] != 7 {
		t.Fatal("iPXE's session broke")
	}
}

func tmf(ti *testInit, fn byte, lun uint16) byte {
	ti.t.Helper()
	ti.itt++
	p := &pdu{}
	p.bhs[0] = 0x40 | opTaskMgmt
	p.bhs[1] = 0x80 | fn
	f := encodeLUN(lun)
	copy(p.bhs[8:16], f[:])
	p.put32(16, ti.itt)
	p.put32(20, reservedTag)
	p.put32(24, ti.cmdSN)
	p.put32(28, ti.expStatSN)
	ti.write(p)
	for {
		r := ti.read()
		if r.opcode() == opTaskResp && r.itt() == ti.itt {
			return r.bhs[2]
		}
	}
}

// TestResetConfined: TARGET WARM/COLD RESET and LOGICAL UNIT RESET from
// one initiator never end another initiator's session; cold reset ends the
// caller's own; AllowGlobalReset restores the reset of everyone.
func TestResetConfined(t *testing.T) {
	for _, global := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowGlobalReset=%v", global), func(t *testing.T) {
			d, _ := newImage(t, 1<<20)
			cfg := simpleConfig(d)
			cfg.AllowGlobalReset = global
			cfg.IdleTimeout = -1
			_, addr := startServer(t, cfg)
			a, _ := dialFrom(t, addr, "127.0.0.1", libiscsiISID(1))
			if st := a.loginAs("iqn.2026-01.test:attacker", 1); st != 0 {
				t.Fatal(st)
			}
			b, _ := dialFrom(t, addr, "127.0.0.2", libiscsiISID(2))
			if st := b.loginAs("iqn.2026-01.test:victim", 2); st != 0 {
				t.Fatal(st)
			}
			a2, _ := dialFrom(t, addr, "127.0.0.1", libiscsiISID(3))
			if st := a2.loginAs("iqn.2026-01.test:attacker", 3); st != 0 {
				t.Fatal(st)
			}
			for _, fn := range []byte{tmfLUReset, tmfTargetWarm} {
				if r := tmf(a, fn, 0); r != tmfRespComplete {
					t.Fatalf("TMF %d: response %d", fn, r)
				}
				b.writeBlock(1, bytes.Repeat([]byte{fn}, 512))
			}
			if r := tmf(a, tmfTargetCold, 0); r != tmfRespComplete {
				t.Fatalf("TARGET COLD RESET: response %d", r)
			}
			closed := func(ti *testInit) bool {
				ti.c.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, err := ti.rd.read()
				return err != nil
			}
			if !closed(a) || !closed(a2) {
				t.Error("cold reset left the caller's own sessions open")
			}
			if global {
				if !closed(b) {
					t.Error("AllowGlobalReset: cold reset left another initiator's session open")
				}
				return
			}
			b.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if got := b.readBlock(1); got[0] != tmfTargetWarm {
				t.Errorf("victim reads %x", got[:4])
			}
		})
	}
}

// TestIdlePing: an idle connection of an initiator that answers NOP-In is
// pinged after IdleTimeout and kept while it answers; one that does not
// answer is closed after another IdleTimeout; iPXE (recognised by its
// ISID) is never pinged and stays.
func TestIdlePing(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.IdleTimeout = 200 * time.Millisecond
	_, addr := startServer(t, cfg)

	answering, _ := dialFrom(t, addr, "127.0.0.1", libiscsiISID(1))
	if st := answering.loginAs("iqn.2026-01.test:answers", 1); st != 0 {
		t.Fatal(st)
	}
	pings := 0
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		answering.c.SetReadDeadline(deadline)
		p, err := answering.rd.read()
		if err != nil {
			break
		}
		if p.opcode() != opNOPIn || p.itt() != reservedTag || p.u32(20) == reservedTag {
			t.Fatalf("opcode 0x%02x itt %x ttt %x, want a NOP-In ping", p.opcode(), p.itt(), p.u32(20))
		}
		pings++
		r := &pdu{}
		r.bhs[0] = 0x40 | opNOPOut
		r.bhs[1] = 0x80
		r.put32(16, reservedTag)
		r.put32(20, p.u32(20))
		r.put32(24, answering.cmdSN)
		answering.write(r)
	}
	if pings == 0 {
		t.Fatal("no NOP-In ping to an idle connection")
	}
	answering.c.SetDeadline(time.Now().Add(10 * time.Second))
	if b := answering.readBlock(0); len(b) != 512 {
		t.Fatal("answering connection broken")
	}

	silent, _ := dialFrom(t, addr, "127.0.0.1", libiscsiISID(2))
	if st := silent.loginAs("iqn.2026-01.test:silent", 2); st != 0 {
		t.Fatal(st)
	}
	ipxe, _ := dialFrom(t, addr, "127.0.0.1", [6]byte{0x40, 0, 0x27, 0x23, 0, 3})
	if st := ipxe.loginAs("iqn.2010-04.org.ipxe:quiet", 3); st != 0 {
		t.Fatal(st)
	}
	start := time.Now()
	silent.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		p, err := silent.rd.read()
		if err != nil {
			break
		}
		if p.opcode() != opNOPIn {
			t.Fatalf("opcode 0x%02x", p.opcode())
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("silent connection closed after %v", took)
	}
	ipxe.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if p, err := ipxe.rd.read(); err == nil {
		t.Fatalf("iPXE got opcode 0x%02x while idle", p.opcode())
	}
	ipxe.c.SetDeadline(time.Now().Add(10 * time.Second))
	if b := ipxe.readBlock(0); len(b) != 512 {
		t.Fatal("iPXE's idle session was dropped")
	}
}

// TestAcceptEMFILE runs a server in a child process whose RLIMIT_NOFILE
// is low, exhausts its descriptors with connections, closes them, and
// checks the server logged the accept failures and still serves a login.
func TestAcceptEMFILE(t *testing.T) {
	if os.Getenv("XPBOOT_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAcceptEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), "XPBOOT_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "EMFILE-CHILD-OK") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func emfileChild(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 48
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.MaxConnectionsPerAddress = 1000
	cfg.FirstPDUTimeout = 2 * time.Second
	var logs syncBuf
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, addr := startServer(t, cfg)
	var conns []net.Conn
	for i := 0; i < 80; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue // the dialer runs out of descriptors too
		}
		conns = append(conns, c)
	}
	for i := 0; i < 100 && !strings.Contains(logs.String(), "accept failed; retrying"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "accept failed; retrying") {
		t.Fatalf("no accept failure logged with %d connections:\n%s", len(conns), logs.String())
	}
	for _, c := range conns {
		c.Close()
	}
	var ti *testInit
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			ti = &testInit{t: t, c: c, isid: libiscsiISID(1), mrdsl: 8192, cmdSN: 1}
			ti.rd = pduReader{r: c, maxData: 1 << 24}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ti == nil {
		t.Fatal("no connection after the descriptors came back")
	}
	if st := ti.loginAs("iqn.2026-01.test:after", 1); st != 0 {
		t.Fatalf("login after EMFILE: 0x%04x", st)
	}
	ti.c.Close()
	fmt.Println("EMFILE-CHILD-OK")
}

// TestUnsolicitedBudget: with ImmediateData=Yes a write's immediate data
// is taken even when the connection's budget is full, but the rest of the
// transfer is solicited only once there is room: two 1 MiB writes with a
// 1 MiB budget run one after the other and both land.
func TestUnsolicitedBudget(t *testing.T) {
	d, _ := newImage(t, 4<<20)
	cfg := simpleConfig(d)
	cfg.UnsolicitedData = true
	cfg.MaxTransferLength = 1 << 20
	cfg.MaxConnectionMemory, cfg.MaxAddressMemory, cfg.MaxMemory = 1<<20, 1<<20, 1<<20
	cfg.IdleTimeout = -1
	_, addr := startServer(t, cfg)
	ti, err := dialFrom(t, addr, "127.0.0.1", libiscsiISID(1))
	if err != nil {
		t.Fatal(err)
	}
	keys := append([]string(nil), ipxeOpKeys...)
	for i, k := range keys {
		switch {
		case strings.HasPrefix(k, "ImmediateData="):
			keys[i] = "ImmediateData=Yes"
		case strings.HasPrefix(k, "InitialR2T="):
			keys[i] = "InitialR2T=No"
		}
	}
	if m := ti.loginNone(testIQN, keys...); m["ImmediateData"] != "Yes" {
		t.Fatalf("ImmediateData=%s", m["ImmediateData"])
	}
	data := [2][]byte{bytes.Repeat([]byte{0x11}, 1<<20), bytes.Repeat([]byte{0x22}, 1<<20)}
	var itt [2]uint32
	for i := range data {
		itt[i] = ti.command(write10(uint32(i*2048), 2048), false, true, 1<<20, data[i][:8192])
	}
	for i := range data {
		if res := ti.await(itt[i], data[i]); res.status != 0 {
			t.Fatalf("write %d: status %d sense %x", i, res.status, res.sense)
		}
	}
	for i := range data {
		res := ti.await(ti.command(read10(uint32(i*2048), 2048), true, false, 1<<20, nil), nil)
		if !bytes.Equal(res.data, data[i]) {
			t.Fatalf("write %d did not land", i)
		}
	}
}
