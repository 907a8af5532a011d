package iscsitarget

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// cuSummary extracts "tests total ran passed failed" from iscsi-test-cu.
var cuSummary = regexp.MustCompile(`(?m)^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)

// runTestCU runs one iscsi-test-cu family and returns total, passed,
// failed and skipped counts.
func runTestCU(t *testing.T, bin, url, family string) (total, passed, failed, skipped int, out []byte) {
	t.Helper()
	out, err := peertest.Try(t, 240*time.Second, bin, "-d", "-t", family, url)
	m := cuSummary.FindSubmatch(out)
	if m == nil {
		t.Fatalf("iscsi-test-cu -t %s: no summary (err %v)\n%s", family, err, tail(out, 4000))
	}
	total, _ = strconv.Atoi(string(m[1]))
	passed, _ = strconv.Atoi(string(m[3]))
	failed, _ = strconv.Atoi(string(m[4]))
	skipped = bytes.Count(out, []byte("[SKIPPED]"))
	return
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// failedTests lists the "Test: X ...FAILED" lines.
func failedTests(out []byte) string {
	var s []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Test:") && strings.Contains(l, "FAILED") {
			s = append(s, strings.TrimSpace(l))
		}
	}
	return strings.Join(s, "\n")
}

// TestLibiscsiConformance runs libiscsi's iscsi-test-cu SCSI and iSCSI
// families against the target: zero failures are required (skips are
// allowed), and the passed count must reach tgt 1.0.85's 208 + 14 measured on
// this machine with the same tool (research §5.4; bench/iscsi/conformance.sh
// re-measures it).
func TestLibiscsiConformance(t *testing.T) {
	bin := peertest.Need(t, "iscsi-test-cu", "libiscsi-bin")
	if testing.Short() {
		t.Skip("long peer test")
	}
	d, _ := newImage(t, 64<<20)
	_, addr := startServer(t, simpleConfig(d))
	url := "iscsi://" + addr + "/" + testIQN + "/0"
	for _, fam := range []struct {
		name    string
		minPass int
	}{{"SCSI", 208}, {"iSCSI", 14}} {
		total, passed, failed, skipped, out := runTestCU(t, bin, url, fam.name)
		t.Logf("iscsi-test-cu %s: %d tests, %d passed (%d skip messages), %d failed", fam.name, total, passed, skipped, failed)
		if failed != 0 {
			t.Errorf("%s: %d failures:\n%s\n%s", fam.name, failed, failedTests(out), tail(out, 6000))
		}
		if passed < fam.minPass {
			t.Errorf("%s: %d passed, tgt passes %d", fam.name, passed, fam.minPass)
		}
	}
}

// TestLibiscsiUnsolicitedData runs the data-moving suites with
// ImmediateData=Yes and InitialR2T=No, the mode Windows and libiscsi prefer,
// and with CRC32C digests offered (libiscsi proposes None first).
func TestLibiscsiUnsolicitedData(t *testing.T) {
	bin := peertest.Need(t, "iscsi-test-cu", "libiscsi-bin")
	if testing.Short() {
		t.Skip("long peer test")
	}
	d, _ := newImage(t, 16<<20)
	cfg := simpleConfig(d)
	cfg.UnsolicitedData = true
	_, addr := startServer(t, cfg)
	url := "iscsi://" + addr + "/" + testIQN + "/0"
	for _, fam := range []string{"SCSI.Write10", "SCSI.Write16", "SCSI.WriteVerify10", "SCSI.CompareAndWrite", "SCSI.Read10", "iSCSI.iSCSIResiduals"} {
		_, passed, failed, _, out := runTestCU(t, bin, url, fam)
		if failed != 0 || passed == 0 {
			t.Errorf("%s with unsolicited data: %d passed, %d failed:\n%s", fam, passed, failed, failedTests(out))
		}
	}
}

// TestCHAPWithIscsiInq logs in with libiscsi's iscsi-inq using right and
// wrong CHAP credentials, one-way and mutual, through the URL and the
// LIBISCSI_CHAP_* environment (libiscsi tests/test_1000_chap.sh cases).
func TestCHAPWithIscsiInq(t *testing.T) {
	bin := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	d, _ := newImage(t, 1<<20)
	cfg := simpleConfig(d)
	cfg.Targets[0].Auth = Auth{
		Incoming: []Account{{User: "testuser", Secret: []byte("userpassword")}, {User: "second", Secret: []byte("secondsecret1")}},
		Outgoing: &Account{User: "testtarget", Secret: []byte("targetpassword")},
	}
	cfg.MaxLoginFailures = 1000
	var authLog bytes.Buffer
	cfg.AuthLog = func(m ConnMeta, method string, err error) {
		fmt.Fprintf(&authLog, "%s %s %v\n", m.InitiatorName, method, err)
	}
	_, addr := startServer(t, cfg)
	cases := []struct {
		name  string
		url   string
		env   []string
		login bool
	}{
		{"no credentials", "iscsi://" + addr + "/" + testIQN + "/0", nil, false},
		{"wrong user", "iscsi://nobody%userpassword@" + addr + "/" + testIQN + "/0", nil, false},
		{"wrong password", "iscsi://testuser%wrongpassword@" + addr + "/" + testIQN + "/0", nil, false},
		{"one-way URL", "iscsi://testuser%userpassword@" + addr + "/" + testIQN + "/0", nil, true},
		{"one-way second user", "iscsi://second%secondsecret1@" + addr + "/" + testIQN + "/0", nil, true},
		{"one-way env", "iscsi://" + addr + "/" + testIQN + "/0", []string{"LIBISCSI_CHAP_USERNAME=testuser", "LIBISCSI_CHAP_PASSWORD=userpassword"}, true},
		{"mutual", "iscsi://testuser%userpassword@" + addr + "/" + testIQN + "/0",
			[]string{"LIBISCSI_CHAP_TARGET_USERNAME=testtarget", "LIBISCSI_CHAP_TARGET_PASSWORD=targetpassword"}, true},
		{"mutual wrong target password", "iscsi://testuser%userpassword@" + addr + "/" + testIQN + "/0",
			[]string{"LIBISCSI_CHAP_TARGET_USERNAME=testtarget", "LIBISCSI_CHAP_TARGET_PASSWORD=wrongtargetpw"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runEnv(t, 30*time.Second, tc.env, bin, tc.url)
			ok := err == nil && bytes.Contains(out, []byte("Vendor:XPBOOT"))
			if ok != tc.login {
				t.Errorf("login %v, want %v: %v\n%s", ok, tc.login, err, out)
			}
		})
	}
	if strings.Contains(authLog.String(), "userpassword") || strings.Contains(authLog.String(), "targetpassword") {
		t.Errorf("secret in AuthLog output:\n%s", authLog.String())
	}
}

// runEnv runs a peer with extra environment and a timeout.
func runEnv(t *testing.T, timeout time.Duration, env []string, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s timed out", name)
	}
	return nil, nil
}

// TestQemuImgRoundTrip copies a random image into the target and back out
// through QEMU's libiscsi block driver and compares bytes.
func TestQemuImgRoundTrip(t *testing.T) {
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	out, _ := peertest.Try(t, 20*time.Second, qemuImg, "--help")
	if !bytes.Contains(out, []byte("iscsi")) {
		peertest.Missing(t, "qemu-img's iscsi driver", "qemu-block-extra")
	}
	const size = 24 << 20
	d, _ := newImage(t, size)
	_, addr := startServer(t, simpleConfig(d))
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	data := make([]byte, size)
	rand.Read(data[:size/2]) // second half stays zero: exercises holes
	copy(data[size-4096:], "tail marker")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "iscsi://" + addr + "/" + testIQN + "/0"
	peertest.Run(t, 120*time.Second, qemuImg, "convert", "-n", "-f", "raw", "-O", "raw", src, url)
	back := filepath.Join(dir, "back.img")
	peertest.Run(t, 120*time.Second, qemuImg, "convert", "-f", "raw", "-O", "raw", url, back)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("round trip through iscsi:// changed the data")
	}
	// The device itself must hold the bytes too (flushed on Shutdown).
	onDisk := make([]byte, size)
	if _, err := d.ReadAt(onDisk, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, data) {
		t.Fatalf("image content differs from what qemu-img wrote")
	}
}
