package serve

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/sanboot"
)

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageTarget(t *testing.T) {
	chapFile := writeFile(t, "chap", "# accounts\nother:otherpassword1\n\ntestuser:userpassword\n", 0o600)
	mutualFile := writeFile(t, "mutual", "testtarget:targetpassword\n", 0o600)
	twoLines := writeFile(t, "two", "a:aaaaaaaaaaaa\nb:bbbbbbbbbbbb\n", 0o600)
	tests := []struct {
		name    string
		it      ImageTarget
		iqn     string
		users   int
		mutual  bool
		wantErr string
	}{
		{"default name", ImageTarget{Image: "/srv/XP Disk.img"}, "iqn.2026-01.org.xpboot:xp-disk", 0, false, ""},
		{"flags", ImageTarget{Image: "a.img", IQN: "iqn.2026-01.x:y", Accounts: AccountSources{CHAP: []string{"u:usersecret12", "v:usersecret13"}, Mutual: "t:targetsecret1"}}, "iqn.2026-01.x:y", 2, true, ""},
		{"files", ImageTarget{Image: "a.img", Accounts: AccountSources{CHAPFile: chapFile, MutualFile: mutualFile}}, "iqn.2026-01.org.xpboot:a", 2, true, ""},
		{"no colon", ImageTarget{Image: "a.img", Accounts: AccountSources{CHAP: []string{"nosecret"}}}, "", 0, false, "--chap: want USER:SECRET"},
		{"both chap sources", ImageTarget{Image: "a.img", Accounts: AccountSources{CHAP: []string{"u:usersecret12"}, CHAPFile: chapFile}}, "", 0, false, "exclude each other"},
		{"both mutual sources", ImageTarget{Image: "a.img", Accounts: AccountSources{CHAP: []string{"u:usersecret12"}, Mutual: "t:targetsecret1", MutualFile: mutualFile}}, "", 0, false, "exclude each other"},
		{"mutual file of two lines", ImageTarget{Image: "a.img", Accounts: AccountSources{CHAP: []string{"u:usersecret12"}, MutualFile: twoLines}}, "", 0, false, "found 2"},
		{"missing file", ImageTarget{Image: "a.img", Accounts: AccountSources{CHAPFile: "/nonexistent/chap"}}, "", 0, false, "no such file"},
		{"require mutual alone", ImageTarget{Image: "a.img", RequireMutual: true, Accounts: AccountSources{CHAP: []string{"u:usersecret12"}}}, "", 0, false, "--require-mutual needs --mutual-chap"},
		{"mutual alone", ImageTarget{Image: "a.img", Accounts: AccountSources{Mutual: "t:targetsecret1"}}, "", 0, false, "needs at least one --chap"},
	}
	for _, tt := range tests {
		tg, err := tt.it.Target(slog.New(slog.DiscardHandler))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrConfig) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || tg.Name != tt.iqn || len(tg.Auth.Incoming) != tt.users || (tg.Auth.Outgoing != nil) != tt.mutual || tg.LUNs[0].Path != tt.it.Image {
			t.Errorf("%s: %+v, %v", tt.name, tg, err)
		}
	}
}

func TestNetbootText(t *testing.T) {
	clients := writeFile(t, "clients.json", `[{"mac":"52:54:00:00:00:01","name":"pc01"}]`, 0o644)
	bad := writeFile(t, "bad.json", `[{"mac":"52:54:00:00:00:01","colour":"red"}]`, 0o644)
	n := Netboot{Mode: sanboot.ModeFull, Interface: "eth1"}
	err := NetbootText{Range: "10.0.0.100-10.0.0.199", Router: "10.0.0.1", DNS: []string{"10.0.0.2"}, ServerIP: "10.0.0.3", StateDir: "/state", Clients: clients}.Fill(&n)
	if err != nil || n.RangeEnd.String() != "10.0.0.199" || n.Router.String() != "10.0.0.1" || len(n.DNS) != 1 || n.ServerIP.String() != "10.0.0.3" ||
		n.LeaseFile != "/state/leases-eth1.json" || len(n.Clients) != 1 || n.Clients[0].Name != "pc01" {
		t.Fatalf("Fill: %+v, %v", n, err)
	}
	for _, tt := range []struct {
		text NetbootText
		want string
	}{
		{NetbootText{Range: "10.0.0.9-10.0.0.1"}, "low to high"},
		{NetbootText{Router: "fe80::1"}, "--router"},
		{NetbootText{DNS: []string{"x"}}, "--dns"},
		{NetbootText{ServerIP: "nope"}, "--server-ip"},
		{NetbootText{Clients: bad}, "unknown field"},
	} {
		n := Netboot{Mode: sanboot.ModeFull, Interface: "eth1"}
		if err := tt.text.Fill(&n); err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want %q", tt.text, err, tt.want)
		}
	}
}

func TestReadConfigFile(t *testing.T) {
	conf := writeFile(t, "ietd.conf", "IncomingUser disc discsecret12\nMaxSessions 4\nTarget iqn.2026-01.org.xpboot:a\n  Lun 0 Path=/srv/a.img\n", 0o644)
	targets, disc, err := ReadConfigFile(conf, slog.New(slog.DiscardHandler))
	if err != nil || len(targets) != 1 || len(disc.Incoming) != 1 {
		t.Fatalf("%v %v %v", targets, disc, err)
	}
	bad := writeFile(t, "bad.conf", "Lun 0 Path=/x\n", 0o644)
	if _, _, err := ReadConfigFile(bad, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "bad.conf:1") {
		t.Errorf("bad config: %v", err)
	}
	if _, _, err := ReadConfigFile("/nonexistent/ietd.conf", nil); err == nil || errors.Is(err, ErrConfig) {
		t.Errorf("missing config: %v", err)
	}
}
