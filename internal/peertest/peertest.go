// Package peertest finds the outside programs (qemu-img, fsck.fat, hivexsh,
// iscsi-test-cu, qemu-system-x86_64 …) that xpboot's tests use as peers.
//
// A missing peer skips the test with a message naming the Debian package,
// except when the environment has CI=true: CI must prove the real thing, so
// there a missing peer fails the test.
package peertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true), where every peer
// must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need returns the path of program, or skips (fails under CI) the test when
// it is not installed. pkg names the Debian package that provides it.
func Need(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		Missing(t, "program "+program, pkg)
	}
	return path
}

// NeedFile returns path, or skips (fails under CI) the test when that file,
// for example an iPXE ROM, does not exist. pkg names the Debian package that
// provides it.
func NeedFile(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, path, pkg)
	}
	return path
}

// Missing ends a test whose peer (a program, file or driver, described by
// what) is not installed: a skip naming the Debian package, or a failure
// under CI, where every peer must be present.
func Missing(t testing.TB, what, pkg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("peer %s not found (Debian package %s); CI=true requires it", what, pkg)
		return
	}
	t.Skipf("peer %s not found: install Debian package %s to run this test", what, pkg)
}

// NeedRoot skips (fails under CI) a test that needs root, e.g. to create a
// network namespace.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatalf("test needs root (%s); CI runs as root", why)
	}
	t.Skipf("test needs root: %s", why)
}

// Run runs a peer with a timeout and returns its combined output. The test
// fails with that output if the program exits non-zero.
func Run(t testing.TB, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	out, err := Try(t, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

// Try is Run without the failure: it returns the output and the exit error.
func Try(t testing.TB, timeout time.Duration, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: timed out after %v\n%s", name, args, timeout, out)
	}
	return out, err
}

// Volume makes a file system with a formatting peer (mkfs.fat, mkntfs) on
// a new sparse file of size bytes, `program args... FILE`, and returns the
// file's bytes: the volume image a test feeds to the code under test.
func Volume(t testing.TB, size int64, program string, args ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "volume.img")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	Run(t, time.Minute, program, append(args, path)...)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// QEMUAccel returns the -accel arguments for a test's QEMU virtual machine:
// TCG unless XPBOOT_TEST_KVM=1 asks for KVM. A /dev/kvm that opens is no
// proof that KVM works: under a nested hypervisor it can hang iPXE at
// "starting execution" while TCG boots the same guest, so the tests never
// switch KVM on by themselves.
func QEMUAccel() []string {
	if os.Getenv("XPBOOT_TEST_KVM") == "1" {
		return []string{"-accel", "kvm"}
	}
	return []string{"-accel", "tcg"}
}
