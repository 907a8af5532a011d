package bootcode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// qemuTimeout bounds every QEMU run; a boot that has neither exited nor
// printed what the test waits for by then fails.
const qemuTimeout = 60 * time.Second

// debugExitOK is QEMU's exit status after the test programs write 0x10 to
// isa-debug-exit: (0x10 << 1) | 1.
const debugExitOK = 33

// qemuRun describes one boot.
type qemuRun struct {
	disk      string // raw disk image, attached as the first IDE disk
	optionROM string // extra option ROM, "" for none
	// until ends the run early once the serial output contains it; the boot
	// code halts after an error message, so QEMU never exits by itself.
	until string
}

// qemuResult is what a boot printed and how QEMU ended.
type qemuResult struct {
	serial string
	exit   int // QEMU's exit status; -1 when the test stopped it
}

// boot runs QEMU with SeaBIOS on r.disk and returns the serial output. With
// graphics=off QEMU asks SeaBIOS to mirror the screen to COM1 (its "sercon"
// console), so text the boot code prints through INT 10h AH=0Eh appears on
// the serial port next to what the test programs write to port 0x3F8.
func boot(t *testing.T, r qemuRun) qemuResult {
	t.Helper()
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	ctx, cancel := context.WithTimeout(context.Background(), qemuTimeout)
	defer cancel()
	args := []string{
		"-machine", "pc,graphics=off", "-display", "none", "-m", "32",
		"-net", "none", "-no-reboot", "-boot", "c",
		"-monitor", "none", "-parallel", "none", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file=" + qemuEscape(r.disk) + ",format=raw,if=ide",
	}
	args = append(args, peertest.QEMUAccel()...)
	if r.optionROM != "" {
		args = append(args, "-option-rom", qemuEscape(r.optionROM))
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", qemu, err)
	}

	var (
		mu     sync.Mutex
		serial []byte
		found  = make(chan struct{})
		once   sync.Once
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			mu.Lock()
			serial = append(serial, buf[:n]...)
			hit := r.until != "" && bytes.Contains(serial, []byte(r.until))
			mu.Unlock()
			if hit {
				once.Do(func() { close(found) })
			}
			if err != nil {
				return
			}
		}
	}()

	stopped := false
	select {
	case <-found:
		stopped = true
		_ = cmd.Process.Kill()
	case <-done:
	case <-ctx.Done():
	}
	<-done
	waitErr := cmd.Wait()
	mu.Lock()
	out := string(serial)
	mu.Unlock()
	if ctx.Err() != nil {
		t.Fatalf("QEMU did not finish within %v\nserial output:\n%s\nstderr:\n%s", qemuTimeout, out, stderr.String())
	}
	res := qemuResult{serial: out, exit: 0}
	if stopped {
		res.exit = -1
		return res
	}
	var ee *exec.ExitError
	switch {
	case errors.As(waitErr, &ee):
		res.exit = ee.ExitCode()
	case waitErr != nil && !errors.Is(waitErr, io.EOF):
		t.Fatalf("QEMU: %v\nstderr:\n%s", waitErr, stderr.String())
	}
	if res.exit != debugExitOK {
		t.Logf("QEMU exit status %d; stderr:\n%s", res.exit, strings.TrimSpace(stderr.String()))
	}
	return res
}

// qemuEscape doubles commas, QEMU's escape in option values (test temporary
// directories are named after the test).
func qemuEscape(path string) string { return strings.ReplaceAll(path, ",", ",,") }
