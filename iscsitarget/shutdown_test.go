package iscsitarget

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
)

// slowFlush counts flushes in progress and completed.
type slowFlush struct {
	blockdev.Device
	active, done atomic.Int32
}

func (d *slowFlush) Flush() error {
	d.active.Add(1)
	defer d.active.Add(-1)
	time.Sleep(100 * time.Millisecond)
	d.done.Add(1)
	return d.Device.Flush()
}

// TestServeReturnsAfterFlush: when its context is cancelled, Serve returns
// only after the device is flushed and with no flush still running, so the
// caller may close the image (and release its lock) at once.
func TestServeReturnsAfterFlush(t *testing.T) {
	raw, _ := newImage(t, 1<<20)
	dev := &slowFlush{Device: raw}
	cfg := simpleConfig(dev)
	cfg.Logger = testLogger(t)
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancellation")
	}
	if dev.done.Load() == 0 || dev.active.Load() != 0 {
		t.Fatalf("Serve returned with %d flushes done and %d still running", dev.done.Load(), dev.active.Load())
	}
	time.Sleep(200 * time.Millisecond)
	if n := dev.done.Load(); n != 1 {
		t.Errorf("%d flushes after one cancellation, want exactly 1", n)
	}
}
