package ntfstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mount is an ntfs-3g FUSE mount of a bare volume file, alive in a private
// mount namespace of the ntfs-3g process only.
type Mount struct {
	// Dir is where the tests reach the mounted volume:
	// /proc/PID/root/MOUNTPOINT.
	Dir string

	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
	werr  error
	once  sync.Once
	uerr  error
	point string // the mount point, an empty directory of the host
}

// syncBuffer collects ntfs-3g's output while the process runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// MountTimeout bounds how long ntfs-3g may take to mount or to close a
// volume after SIGTERM.
const MountTimeout = 2 * time.Minute

// NeedMount skips (fails under CI) a test that cannot mount with ntfs-3g.
func NeedMount(t testing.TB) {
	t.Helper()
	needRoot(t, "ntfs-3g FUSE mounts in a private mount namespace")
	need(t, "ntfs-3g", "ntfs-3g")
	need(t, "unshare", "util-linux")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing(t, "/dev/fuse", "fuse3")
	}
}

// MountVolume mounts the bare NTFS volume file vol with ntfs-3g, read-only
// unless rw is set, always with norecover: a volume whose $LogFile is not
// clean, or that is hibernated, fails to mount read-write instead of being
// "repaired". The mount is unmounted in t.Cleanup if the test does not call
// Unmount; the volume file must not be used by anything else meanwhile.
func MountVolume(t testing.TB, vol string, rw bool) (*Mount, error) {
	t.Helper()
	m, err := mountVolume(vol, rw)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m, nil
}

// mountVolume is MountVolume without a test: the caller must Unmount.
func mountVolume(vol string, rw bool) (*Mount, error) {
	vol, err := filepath.Abs(vol)
	if err != nil {
		return nil, err
	}
	point, err := os.MkdirTemp(filepath.Dir(vol), "mnt-")
	if err != nil {
		return nil, err
	}
	opts := "norecover,no_detach"
	if !rw {
		opts += ",ro"
	}
	m := &Mount{out: &syncBuffer{}, done: make(chan struct{}), point: point}
	// unshare gives ntfs-3g a mount namespace of its own whose mounts do
	// not propagate to the host; it execs ntfs-3g in the same process, so
	// the parent-death signal reaches ntfs-3g itself and the namespace, and
	// with it the mount, dies with the test binary.
	m.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "ntfs-3g", "-o", opts, vol, point)
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		os.Remove(point)
		return nil, err
	}
	go func() {
		m.werr = m.cmd.Wait()
		close(m.done)
	}()
	mountinfo := fmt.Sprintf("/proc/%d/mountinfo", m.cmd.Process.Pid)
	deadline := time.Now().Add(MountTimeout)
	for {
		select {
		case <-m.done:
			m.Unmount()
			return nil, fmt.Errorf("ntfs-3g -o %s %s: %v\n%s", opts, vol, m.werr, strings.TrimSpace(m.out.String()))
		default:
		}
		if b, err := os.ReadFile(mountinfo); err == nil && mounted(b, point) {
			m.Dir = fmt.Sprintf("/proc/%d/root%s", m.cmd.Process.Pid, point)
			if !rw {
				return m, nil
			}
			// ntfs-3g falls back to a read-only mount when the volume is
			// unclean or hibernated; it says which in its "Mounted" line.
			for !strings.Contains(m.out.String(), "Mounted ") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if log := m.out.String(); !strings.Contains(log, "(Read-Write") {
				m.Unmount()
				return nil, fmt.Errorf("ntfs-3g -o %s %s: no read-write mount\n%s", opts, vol, strings.TrimSpace(log))
			}
			return m, nil
		}
		if time.Now().After(deadline) {
			m.Unmount()
			return nil, fmt.Errorf("ntfs-3g -o %s %s: not mounted after %v\n%s", opts, vol, MountTimeout, m.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mounted reports whether a mountinfo table has a FUSE mount at point.
func mounted(mountinfo []byte, point string) bool {
	for _, line := range strings.Split(string(mountinfo), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == point && strings.Contains(line, " - fuse") {
			return true
		}
	}
	return false
}

// Unmount stops ntfs-3g with SIGTERM, on which it unmounts and closes the
// volume, and waits for it to exit; after MountTimeout it kills it. An
// error reports a non-zero exit or a kill. Calling it again returns the
// first result.
func (m *Mount) Unmount() error {
	m.once.Do(func() {
		select {
		case <-m.done:
		default:
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
		defer os.Remove(m.point)
		select {
		case <-m.done:
		case <-time.After(MountTimeout):
			m.cmd.Process.Kill()
			<-m.done
			m.uerr = fmt.Errorf("ntfs-3g did not exit within %v of SIGTERM; killed\n%s", MountTimeout, m.out.String())
			return
		}
		var exit *exec.ExitError
		if m.werr != nil && !(errors.As(m.werr, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() &&
			exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
			m.uerr = fmt.Errorf("ntfs-3g: %v\n%s", m.werr, m.out.String())
		}
	})
	return m.uerr
}

// Log returns what ntfs-3g printed so far.
func (m *Mount) Log() string { return m.out.String() }

// run runs a peer with a timeout and returns its combined output and exit
// error; a timeout is an error naming the command.
func run(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return out, fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), timeout)
	}
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}
