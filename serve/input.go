package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

// This file reads what the command line hands over as text: CHAP accounts
// from flags, the environment and secrets files, the clients file, and
// the defaults that depend on the machine. Errors wrap ErrConfig.

// ParseAccount splits USER:SECRET at the first colon; source names the
// flag or file in errors.
func ParseAccount(source, v string) (iscsitarget.Account, error) {
	u, s, ok := strings.Cut(v, ":")
	if !ok || u == "" || s == "" {
		return iscsitarget.Account{}, badConfig("%s: want USER:SECRET", source)
	}
	return iscsitarget.Account{User: u, Secret: []byte(s)}, nil
}

// AccountSources are the places CHAP accounts come from: --chap values
// (or $XPBOOT_CHAP), a --chap-file of USER:SECRET lines, and the mutual
// account from --mutual-chap (or $XPBOOT_MUTUAL_CHAP) or a
// --mutual-chap-file. A command line is visible to every user of the
// machine, hence the file and environment forms.
type AccountSources struct {
	CHAP       []string
	CHAPFile   string
	Mutual     string
	MutualFile string
}

// Read returns the one-way accounts and the mutual one (nil for none);
// log receives a warning about secrets files other users may read.
func (a AccountSources) Read(log *slog.Logger) (incoming []iscsitarget.Account, outgoing *iscsitarget.Account, err error) {
	for _, v := range a.CHAP {
		acct, err := ParseAccount("--chap", v)
		if err != nil {
			return nil, nil, err
		}
		incoming = append(incoming, acct)
	}
	if a.CHAPFile != "" {
		if len(a.CHAP) > 0 {
			return nil, nil, badConfig("--chap and --chap-file exclude each other")
		}
		lines, err := secretLines(log, "chap-file", a.CHAPFile)
		if err != nil {
			return nil, nil, err
		}
		for i, l := range lines {
			acct, err := ParseAccount("--chap-file", l)
			if err != nil {
				return nil, nil, badConfig("%s: account %d: %w", a.CHAPFile, i+1, err)
			}
			incoming = append(incoming, acct)
		}
		if len(incoming) == 0 {
			return nil, nil, badConfig("--chap-file %s holds no USER:SECRET line", a.CHAPFile)
		}
	}
	if a.Mutual != "" {
		acct, err := ParseAccount("--mutual-chap", a.Mutual)
		if err != nil {
			return nil, nil, err
		}
		outgoing = &acct
	}
	if a.MutualFile != "" {
		if outgoing != nil {
			return nil, nil, badConfig("--mutual-chap and --mutual-chap-file exclude each other")
		}
		lines, err := secretLines(log, "mutual-chap-file", a.MutualFile)
		if err != nil {
			return nil, nil, err
		}
		if len(lines) != 1 {
			return nil, nil, badConfig("--mutual-chap-file %s: want one USER:SECRET line, found %d", a.MutualFile, len(lines))
		}
		acct, err := ParseAccount("--mutual-chap-file", lines[0])
		if err != nil {
			return nil, nil, badConfig("%s: %w", a.MutualFile, err)
		}
		outgoing = &acct
	}
	return incoming, outgoing, nil
}

// secretLines reads the non-empty lines of a secrets file that are not
// comments, warning when other users may read it.
func secretLines(log *slog.Logger, flag, path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, badConfig("--%s: %w", flag, err)
	}
	if st.Mode().Perm()&0o077 != 0 && log != nil {
		log.Warn("secrets file is readable by other users; chmod 600 it", "file", path, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, badConfig("--%s: %w", flag, err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}

// ReadClients reads a clients file: a JSON list of sanboot.ClientEntry
// objects; unknown fields are refused, so a misspelt key is not ignored.
func ReadClients(path string) ([]sanboot.ClientEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []sanboot.ClientEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return nil, badConfig("--clients %s: %w", path, err)
	}
	return out, nil
}

// iqnUnsafe is what DefaultIQN replaces in an image's name.
// (Compiled at first use: every xpboot command pays for what package
// variables compute at start.)
var iqnUnsafe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9.:-]+`) })

// DefaultIQN names a target after its image file.
func DefaultIQN(image string) string {
	base := strings.TrimSuffix(filepath.Base(image), filepath.Ext(image))
	base = strings.Trim(iqnUnsafe().ReplaceAllString(strings.ToLower(base), "-"), "-")
	if base == "" {
		base = "disk"
	}
	return "iqn.2026-01.org.xpboot:" + base
}

// DefaultStateDir is where the lease file lives unless told otherwise:
// $STATE_DIRECTORY (systemd's StateDirectory=), /var/lib/xpboot for root,
// else $XDG_STATE_HOME/xpboot (~/.local/state/xpboot).
func DefaultStateDir() (string, error) {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0], nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/xpboot", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "xpboot"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", badConfig("no state directory (set --state-dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "xpboot"), nil
}

// ReadConfigFile reads an ietd.conf-style file (iscsitarget.ParseConfig)
// into the targets and discovery accounts of a Config; settings the
// target negotiates itself are logged as ignored.
func ReadConfigFile(path string, log *slog.Logger) ([]iscsitarget.FileTarget, iscsitarget.Auth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, iscsitarget.Auth{}, err
	}
	defer f.Close()
	fc, err := iscsitarget.ParseConfig(f, path)
	if err != nil {
		return nil, iscsitarget.Auth{}, configError{err}
	}
	for _, ig := range fc.Ignored {
		log.Info("config setting ignored (the target negotiates it)", "where", ig)
	}
	return fc.Targets, fc.Discovery, nil
}

// NetbootText is the part of Netboot the command line gives as text.
type NetbootText struct {
	Range, Router, ServerIP string
	DNS                     []string
	// StateDir holds the lease file in full mode (default DefaultStateDir).
	StateDir string
	// Clients is the clients file (ReadClients).
	Clients string
}

// Fill parses t into n, whose Mode and Interface are set.
func (t NetbootText) Fill(n *Netboot) error {
	var err error
	if t.Range != "" && n.Interface != "" {
		if n.RangeStart, n.RangeEnd, err = sanboot.ParseRange(t.Range); err != nil {
			return badConfig("--dhcp-range: %w", err)
		}
	}
	ip4 := func(flag, s string) (net.IP, error) {
		if ip := net.ParseIP(s).To4(); ip != nil {
			return ip, nil
		}
		return nil, badConfig("--%s %q: want an IPv4 address", flag, s)
	}
	if t.Router != "" {
		if n.Router, err = ip4("router", t.Router); err != nil {
			return err
		}
	}
	for _, d := range t.DNS {
		ip, err := ip4("dns", d)
		if err != nil {
			return err
		}
		n.DNS = append(n.DNS, ip)
	}
	if t.ServerIP != "" {
		if n.ServerIP, err = ip4("server-ip", t.ServerIP); err != nil {
			return err
		}
	}
	if n.Mode == sanboot.ModeFull && n.Interface != "" {
		dir := t.StateDir
		if dir == "" {
			if dir, err = DefaultStateDir(); err != nil {
				return err
			}
		}
		n.LeaseFile = filepath.Join(dir, "leases-"+n.Interface+".json")
	}
	if t.Clients != "" {
		n.Clients, err = ReadClients(t.Clients)
	}
	return err
}

// ImageTarget is the one target of `xpboot serve --image`: the image as
// LUN Number of target IQN (default DefaultIQN(Image)) with the accounts
// of Accounts.
type ImageTarget struct {
	Image, IQN    string
	LUN           uint16
	ReadOnly      bool
	Accounts      AccountSources
	RequireMutual bool
}

// Target reads the accounts and returns the target.
func (it ImageTarget) Target(log *slog.Logger) (iscsitarget.FileTarget, error) {
	t := iscsitarget.FileTarget{Name: it.IQN, LUNs: []iscsitarget.FileLUN{{Number: it.LUN, Path: it.Image, ReadOnly: it.ReadOnly}}}
	if t.Name == "" {
		t.Name = DefaultIQN(it.Image)
	}
	var err error
	if t.Auth.Incoming, t.Auth.Outgoing, err = it.Accounts.Read(log); err != nil {
		return t, err
	}
	t.Auth.RequireMutual = it.RequireMutual
	switch {
	case t.Auth.RequireMutual && t.Auth.Outgoing == nil:
		return t, badConfig("--require-mutual needs --mutual-chap")
	case t.Auth.Outgoing != nil && len(t.Auth.Incoming) == 0:
		return t, badConfig("--mutual-chap needs at least one --chap user (mutual CHAP follows one-way CHAP)")
	}
	return t, nil
}
