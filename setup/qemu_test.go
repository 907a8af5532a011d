package setup

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// qemuBoot runs QEMU (SeaBIOS, COM1 on stdout, isa-debug-exit) with args
// and returns the serial output, stopping QEMU once it contains until or
// the guest exits; the timeout fails the test. until must be the whole
// text the caller checks: QEMU is stopped as soon as it appears.
func qemuBoot(t *testing.T, qemu string, args []string, until string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"-machine", "pc", "-display", "none", "-m", "64", "-net", "none", "-no-reboot",
		"-monitor", "none", "-parallel", "none", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"}, args...)
	full = append(full, peertest.QEMUAccel()...)
	cmd := exec.CommandContext(ctx, qemu, full...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var serial []byte
	found := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := out.Read(buf)
			mu.Lock()
			serial = append(serial, buf[:n]...)
			hit := bytes.Contains(serial, []byte(until))
			mu.Unlock()
			if hit {
				once.Do(func() { close(found) })
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-found:
	case <-done:
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-done
	cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil && !bytes.Contains(serial, []byte(until)) {
		t.Fatalf("QEMU: no %q within %v\nserial:\n%s\nstderr:\n%s", until, timeout, serial, stderr.String())
	}
	return string(serial)
}
