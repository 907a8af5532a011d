package hive

import (
	"bytes"
	"errors"
	"testing"
)

// TestRecoverOldLog replays yarp's OldDirtyHive.LOG1 and compares the
// result with what Windows 7 recovered from the same files.
func TestRecoverOldLog(t *testing.T) {
	dirty := readCorpus(t, "yarp-OldDirtyHive")
	logb := readCorpus(t, "yarp-OldDirtyHive.LOG1")
	want := readCorpus(t, "yarp-OldDirtyHive-RecoveredHive_Windows7")
	got, err := RecoverOldLog(bytes.NewReader(dirty), int64(len(dirty)), bytes.NewReader(logb), int64(len(logb)))
	if err != nil {
		t.Fatal(err)
	}
	probs, _ := Check(bytes.NewReader(got), int64(len(got)))
	for _, p := range probs {
		t.Errorf("recovered hive: %v", p)
	}
	if a, b := dump(t, openBytes(t, got)), dump(t, openBytes(t, want)); a != b {
		t.Errorf("recovered hive differs from Windows 7's recovery:\n%s", firstDiff(a, b))
	}
	if a, b := dump(t, openBytes(t, dirty)), dump(t, openBytes(t, want)); a == b {
		t.Error("the dirty hive already equals the recovered one: the test proves nothing")
	}
	if _, err := NewEditor(openBytes(t, got)); err != nil {
		t.Errorf("editing the recovered hive: %v", err)
	}
	// A log from another write (timestamp changed) is refused.
	bad := bytes.Clone(logb)
	bad[hdrTimestamp]++
	resum(bad)
	if _, err := RecoverOldLog(bytes.NewReader(dirty), int64(len(dirty)), bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrFormat) {
		t.Errorf("foreign log: %v", err)
	}
	// Truncated logs fail cleanly.
	for _, n := range []int{0, 100, 600, 2000, len(logb) - 1} {
		if _, err := RecoverOldLog(bytes.NewReader(dirty), int64(len(dirty)), bytes.NewReader(logb[:n]), int64(n)); err == nil {
			t.Errorf("log truncated to %d bytes accepted", n)
		}
	}
}
