package sanboot

import (
	"log/slog"
	"strings"
	"testing"
)

func TestClientLogHandler(t *testing.T) {
	var out syncBuffer
	macs := map[string]string{"10.0.0.100:4000": "52:54:00:77:00:01"}
	l := slog.New(ClientLogHandler(slog.NewTextHandler(&out, nil), func(remote string) string { return macs[remote] }))
	conn := l.With("remote", "10.0.0.100:4000")
	conn.Info("login failed", "initiator", "iqn.x", "err", "no such target")
	l.Warn("connection refused", "remote", "10.0.0.100:4000")
	l.Info("unrelated")
	l.With("remote", "10.9.9.9:1").Info("unknown peer")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("log:\n%s", out.String())
	}
	for i, want := range []string{
		`msg="login failed" remote=10.0.0.100:4000 initiator=iqn.x err="no such target" client=52:54:00:77:00:01 proto=iscsi`,
		`msg="connection refused" remote=10.0.0.100:4000 client=52:54:00:77:00:01 proto=iscsi`,
		`msg=unrelated`,
		`msg="unknown peer" remote=10.9.9.9:1`,
	} {
		if !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d: %s\nwant suffix %s", i, lines[i], want)
		}
	}
}
