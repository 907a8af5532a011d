package iscsitarget

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// tcpInit dials addr and returns a testInit over TCP.
func tcpInit(t testing.TB, addr string, isid byte) *testInit {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	ti := &testInit{t: t, c: c, isid: [6]byte{0x40, 0, 0x27, 0x23, 0, isid}, mrdsl: 8192, cmdSN: 1}
	ti.rd = pduReader{r: c, maxData: 1 << 24}
	return ti
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// settle waits until the goroutine count drops back to at most base.
func settle(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutine leak: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHostileInitiators: garbage before login, an oversize data segment, a
// connection dropped in the middle of a write and 64 concurrent sessions
// hammering the same LU. The target stays up, leaks no goroutines or file
// descriptors, and every acknowledged write reads back.
func TestHostileInitiators(t *testing.T) {
	d, _ := newImage(t, 8<<20)
	cfg := simpleConfig(d)
	cfg.MaxLoginFailures = 1000
	cfg.LoginTimeout = 3 * time.Second
	// 64 sessions of one initiator name from one address: above the
	// per-address and per-initiator defaults.
	cfg.MaxConnectionsPerAddress, cfg.MaxSessionsPerAddress, cfg.MaxSessionsPerInitiator = 80, 80, 80
	baseG := runtime.NumGoroutine()
	baseFD := countFDs(t)
	s, err := NewServer(func() Config { cfg.Logger = testLogger(t); return cfg }())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	serveDone := make(chan error, 1)
	go func() { serveDone <- s.Serve(context.Background(), l) }()

	t.Run("garbage before login", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(bytes.Repeat([]byte("GET / HTTP/1.0\r\n"), 10))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 64)); err == nil {
			t.Fatal("target answered garbage instead of closing")
		}
	})
	t.Run("oversize data segment", func(t *testing.T) {
		ti := tcpInit(t, addr, 1)
		ti.loginNone(testIQN)
		p := &pdu{}
		p.bhs[0] = opSCSICmd
		p.bhs[1] = 0xa0
		p.put32(16, 1)
		p.put32(20, 1<<20)
		p.put32(24, ti.cmdSN)
		copy(p.bhs[32:], write10(0, 2048))
		p.setDataLen(1 << 20) // header claims 1 MiB; nothing follows
		ti.c.Write(p.bhs[:])
		if _, err := ti.rd.read(); err == nil {
			t.Fatal("connection survived a data segment beyond MaxRecvDataSegmentLength")
		}
	})
	t.Run("dropped mid-command", func(t *testing.T) {
		ti := tcpInit(t, addr, 2)
		ti.loginNone(testIQN)
		ti.command(write10(0, 64), false, true, 64*512, nil)
		if r := ti.read(); r.opcode() != opR2T {
			t.Fatalf("opcode 0x%02x, want R2T", r.opcode())
		}
		ti.c.Close() // vanish with the R2T outstanding
	})
	t.Run("64 sessions", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs <- hammer(addr, i)
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		// Every acknowledged write is in the image.
		for i := 0; i < 64; i++ {
			for k := 0; k < 8; k++ {
				b := make([]byte, 512)
				d.ReadAt(b, int64(i*64+k*8)*512)
				if want := blockPattern(i, k); !bytes.Equal(b, want[:512]) {
					t.Fatalf("session %d write %d lost", i, k)
				}
			}
		}
	})
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-serveDone; err != nil {
		t.Fatal(err)
	}
	settle(t, baseG)
	if n := countFDs(t); n > baseFD {
		t.Fatalf("file descriptor leak: %d open, %d before", n, baseFD)
	}
}

func blockPattern(i, k int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("s%02dw%d/", i, k)), 4096/6+1)[:4096]
}

// hammer logs in, writes 8 distinct 4 KiB blocks of its own region (one
// pipelined burst), reads them back and logs out.
func hammer(addr string, i int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	ft := &fatalT{}
	ti := &testInit{t: ft, c: c, isid: [6]byte{0x40, 0, 0, 0, 1, byte(i)}, mrdsl: 8192, cmdSN: 1}
	ti.rd = pduReader{r: c, maxData: 1 << 24}
	return ft.run(func() {
		ti.loginNone(testIQN)
		for k := 0; k < 8; k++ {
			lba := uint32(i*64 + k*8)
			data := blockPattern(i, k)
			if res := ti.await(ti.command(write10(lba, 8), false, true, len(data), nil), data); res.status != 0 {
				ft.Fatalf("session %d: write status %d", i, res.status)
			}
		}
		for k := 0; k < 8; k++ {
			lba := uint32(i*64 + k*8)
			res := ti.await(ti.command(read10(lba, 8), true, false, 4096, nil), nil)
			if !bytes.Equal(res.data, blockPattern(i, k)) {
				ft.Fatalf("session %d: read back differs: got %d bytes %q, status %d", i, len(res.data), res.data[:min(16, len(res.data))], res.status)
			}
		}
		lo := &pdu{}
		lo.bhs[0] = 0x40 | opLogoutReq
		lo.bhs[1] = 0x80
		lo.put32(16, 999)
		lo.put32(24, ti.cmdSN)
		ti.write(lo)
		if r := ti.read(); r.opcode() != opLogoutResp || r.bhs[2] != 0 {
			ft.Fatalf("logout: opcode 0x%02x response %d", r.opcode(), r.bhs[2])
		}
	})
}

// fatalT lets testInit helpers run in goroutines: Fatalf aborts the
// goroutine and run returns the message as an error.
type fatalT struct {
	testing.TB
	msg string
}

type fatalAbort struct{}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalAbort{})
}
func (f *fatalT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fatalT) run(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalAbort); !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", f.msg)
		}
	}()
	fn()
	return nil
}

// TestSessionReinstatement: a second login with the same initiator name
// and ISID and TSIH 0 closes the first session; a different ISID coexists.
func TestSessionReinstatement(t *testing.T) {
	d, _ := newImage(t, 1<<20)
	_, addr := startServer(t, simpleConfig(d))
	a := tcpInit(t, addr, 7)
	a.loginNone(testIQN)
	other := tcpInit(t, addr, 8)
	other.loginNone(testIQN)
	b := tcpInit(t, addr, 7)
	b.loginNone(testIQN)
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.rd.read(); err == nil {
		t.Fatal("old session still open after reinstatement")
	}
	for _, ti := range []*testInit{b, other} {
		res := ti.await(ti.command([]byte{0, 0, 0, 0, 0, 0}, false, false, 0, nil), nil)
		if res.status != 0 {
			t.Fatalf("TEST UNIT READY: %d", res.status)
		}
	}
	_ = binary.BigEndian
}
