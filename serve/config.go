package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/iscsitarget/auth"
	"github.com/xpboot/xpboot/sanboot"
)

// ErrConfig is wrapped by every error that is a mistake in the Config (or
// in the files it names) rather than a failure of the machine: the command
// line answers those with exit status 2.
var ErrConfig = errors.New("serve: bad configuration")

// configError keeps the message as written and also answers
// errors.Is(err, ErrConfig).
type configError struct{ err error }

func (e configError) Error() string   { return e.err.Error() }
func (e configError) Unwrap() []error { return []error{e.err, ErrConfig} }

func badConfig(format string, a ...any) error { return configError{fmt.Errorf(format, a...)} }

// Config is everything one boot server serves. New copies what it needs;
// the Config is not changed.
type Config struct {
	// Targets are the served targets: names, LUNs with image paths, and
	// CHAP accounts (Auth.Incoming, Auth.Outgoing, Auth.RequireMutual).
	Targets []iscsitarget.FileTarget
	// Discovery is the authentication of SendTargets discovery sessions.
	Discovery iscsitarget.Auth
	// OverlayDir, if set, serves every LUN's image read-only as a base and
	// gives each initiator its own copy-on-write VMDK delta in it.
	OverlayDir string
	// Listen is the iSCSI portal: ADDR, ADDR:PORT, :PORT or [v6]:PORT
	// (default ":3260"; an address without a port means port 3260).
	Listen string
	// Tuning holds the target's limits and options (MaxMemory, KeepAlive,
	// IdleTimeout, UnsolicitedData …). Its Targets, DiscoveryAuth,
	// Authorize, CHAPSecret, MutualSecret, AuthLog and Logger are serve's
	// and must be left empty.
	Tuning iscsitarget.Config
	// Netboot is the DHCP/TFTP side; its zero value runs none.
	Netboot Netboot
	// Log receives the log (slog.Default() if nil).
	Log *slog.Logger
	// Events, if set, is where every client event is recorded (the caller
	// watches it for status output); else New makes one.
	Events *sanboot.EventLog
}

// Netboot configures DHCP (full or proxy), TFTP and IPv6 router
// advertisements on one interface.
type Netboot struct {
	// Mode is sanboot.ModeFull or sanboot.ModeProxy; "" or sanboot.ModeOff
	// runs no DHCP and no TFTP.
	Mode      sanboot.Mode
	Interface string // the client link (required)
	// ServerIP is the address clients use for TFTP and iSCSI; default the
	// interface's first IPv4 address.
	ServerIP net.IP
	// RangeStart and RangeEnd are the addresses full mode hands out.
	RangeStart, RangeEnd netip.Addr
	Router               net.IP   // option 3 (full mode)
	DNS                  []net.IP // option 6 (full mode)
	LeaseFile            string   // full mode; "" keeps leases in memory
	IPXEDir              string   // TFTP root; default sanboot.DefaultIPXEDir()
	// Script hands iPXE a generated script instead of a root-path (always
	// so in proxy mode).
	Script               bool
	RouterAdvertisements bool
	// Probe, when positive, is how long full mode listens for another
	// DHCP server before it starts.
	Probe time.Duration
	// Unknown is what clients not in Clients get (default serve).
	Unknown sanboot.UnknownClients
	// NoGateway, KeepSAN and Install are the defaults of every client.
	NoGateway, KeepSAN, Install bool
	// Clients are the entries of the clients file.
	Clients []sanboot.ClientEntry
	// Ports, for tests; 0 means the standard 67, 4011 and 69.
	DHCPPort, PXEPort, TFTPPort int
}

// On reports whether DHCP and TFTP run.
func (n Netboot) On() bool { return n.Mode != "" && n.Mode != sanboot.ModeOff }

// prepared is a validated Config with the clients' credentials merged
// into copies of the targets.
type prepared struct {
	targets []iscsitarget.FileTarget
	clients []sanboot.ClientEntry
	// differs names the clients whose secret differs from their target's
	// account of the same user (MAC, user, target), for a warning.
	differs [][3]string
}

// Validate checks the configuration without opening anything.
func (c *Config) Validate() error {
	_, err := c.prepare()
	return err
}

func (c *Config) prepare() (*prepared, error) {
	if len(c.Targets) == 0 {
		return nil, badConfig("no targets to serve")
	}
	if c.Tuning.Targets != nil || c.Tuning.Authorize != nil || c.Tuning.CHAPSecret != nil || c.Tuning.MutualSecret != nil || c.Tuning.AuthLog != nil {
		return nil, badConfig("Tuning must not carry targets or authentication hooks: serve sets them")
	}
	p := &prepared{targets: make([]iscsitarget.FileTarget, len(c.Targets))}
	seen := map[string]bool{}
	byName := map[string]int{}
	for i, ft := range c.Targets {
		if err := auth.CheckName(ft.Name); err != nil {
			return nil, configError{err}
		}
		key := strings.ToLower(ft.Name)
		if seen[key] {
			return nil, badConfig("target %s configured twice", ft.Name)
		}
		seen[key] = true
		byName[ft.Name] = i
		if len(ft.LUNs) == 0 {
			return nil, badConfig("target %s has no LUNs", ft.Name)
		}
		luns := map[uint16]bool{}
		for _, l := range ft.LUNs {
			switch {
			case l.Number > 16383:
				return nil, badConfig("target %s: LUN %d: want 0..16383", ft.Name, l.Number)
			case luns[l.Number]:
				return nil, badConfig("target %s: LUN %d configured twice", ft.Name, l.Number)
			case l.Path == "":
				return nil, badConfig("target %s: LUN %d has no image path", ft.Name, l.Number)
			case l.ReadOnly && c.OverlayDir != "":
				return nil, badConfig("target %s: LUN %d: a read-only LUN and overlays exclude each other (with overlays the base is never written)", ft.Name, l.Number)
			}
			luns[l.Number] = true
		}
		if c.Netboot.On() && ft.LUNs[0].Number > 255 {
			return nil, badConfig("target %s: LUN %d: iPXE boots LUNs 0..255 only", ft.Name, ft.LUNs[0].Number)
		}
		// Copy the accounts: the clients' merge below must not reach the
		// caller's slices.
		t := ft
		t.Auth.Incoming = append([]iscsitarget.Account(nil), ft.Auth.Incoming...)
		p.targets[i] = t
	}
	if c.Netboot.On() {
		if err := c.Netboot.check(); err != nil {
			return nil, err
		}
		if err := p.mergeClients(c.Netboot.Clients, byName); err != nil {
			return nil, err
		}
	}
	if err := checkAuth("discovery", c.Discovery); err != nil {
		return nil, err
	}
	for _, t := range p.targets {
		if err := checkAuth("target "+t.Name, t.Auth); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkAuth applies the one secret rule and the pairing rules to the
// accounts of a target or of discovery.
func checkAuth(where string, a iscsitarget.Auth) error {
	users := map[string]bool{}
	for _, in := range a.Incoming {
		if err := auth.CheckAccount("CHAP", in); err != nil {
			return badConfig("%s: %v", where, err)
		}
		if users[in.User] {
			return badConfig("%s: CHAP user %q listed twice", where, in.User)
		}
		users[in.User] = true
	}
	if a.Outgoing != nil {
		if err := auth.CheckAccount("mutual CHAP", *a.Outgoing); err != nil {
			return badConfig("%s: %v", where, err)
		}
	}
	if err := auth.CheckPair(a.Incoming, a.Outgoing); err != nil {
		return badConfig("%s: %v", where, err)
	}
	if a.RequireMutual && a.Outgoing == nil {
		return badConfig("%s requires mutual CHAP but has no outgoing account", where)
	}
	return nil
}

// check validates the DHCP settings; the messages name the command line's
// flags, the way users meet these settings.
func (n Netboot) check() error {
	switch n.Mode {
	case sanboot.ModeFull, sanboot.ModeProxy:
	default:
		return badConfig("--dhcp %q: want off, full or proxy", n.Mode)
	}
	if n.Interface == "" {
		return badConfig("--dhcp %s needs --interface IF (the client link)", n.Mode)
	}
	full := n.Mode == sanboot.ModeFull
	switch {
	case full && (!n.RangeStart.IsValid() || !n.RangeEnd.IsValid()):
		return badConfig("--dhcp full needs --dhcp-range FROM-TO")
	case !full && (n.RangeStart.IsValid() || n.RangeEnd.IsValid()):
		return badConfig("--dhcp-range applies to --dhcp full only (proxy mode hands out no addresses)")
	case !full && n.Router != nil:
		return badConfig("--router applies to --dhcp full only (the router's DHCP server hands out the network settings)")
	case !full && len(n.DNS) > 0:
		return badConfig("--dns applies to --dhcp full only (the router's DHCP server hands out the network settings)")
	case n.RangeStart.IsValid() && (!n.RangeStart.Is4() || !n.RangeEnd.Is4() || n.RangeEnd.Less(n.RangeStart)):
		return badConfig("DHCP range %s-%s: want two IPv4 addresses, low to high", n.RangeStart, n.RangeEnd)
	case n.ServerIP != nil && n.ServerIP.To4() == nil:
		return badConfig("server address %s is not IPv4", n.ServerIP)
	}
	switch n.Unknown {
	case "", sanboot.UnknownServe, sanboot.UnknownIgnore:
	default:
		return badConfig("--unknown %q: want serve or ignore", n.Unknown)
	}
	return nil
}

// mergeClients fills in and adds the clients' CHAP accounts (see the
// package contract).
func (p *prepared) mergeClients(entries []sanboot.ClientEntry, byName map[string]int) error {
	p.clients = append([]sanboot.ClientEntry(nil), entries...)
	for i := range p.clients {
		ce := &p.clients[i]
		if ce.CHAPUser == "" {
			if ce.CHAPSecret != "" {
				return badConfig("client %s: chap_secret without chap_user", ce.MAC)
			}
			continue
		}
		ti := 0
		if ce.Image != "" {
			var ok bool
			if ti, ok = byName[ce.Image]; !ok {
				return badConfig("client %s: image %q is not a served target (use the target IQN)", ce.MAC, ce.Image)
			}
		}
		ft := &p.targets[ti]
		var acct *iscsitarget.Account
		for j := range ft.Auth.Incoming {
			if ft.Auth.Incoming[j].User == ce.CHAPUser {
				acct = &ft.Auth.Incoming[j]
			}
		}
		switch {
		case acct == nil && ce.CHAPSecret == "":
			return badConfig("client %s: CHAP user %q is not a user of %s; give its chap_secret or a --chap for it", ce.MAC, ce.CHAPUser, ft.Name)
		case acct == nil:
			ft.Auth.Incoming = append(ft.Auth.Incoming, iscsitarget.Account{User: ce.CHAPUser, Secret: []byte(ce.CHAPSecret)})
		case ce.CHAPSecret == "":
			ce.CHAPSecret = string(acct.Secret)
		case ce.CHAPSecret != string(acct.Secret):
			p.differs = append(p.differs, [3]string{ce.MAC, ce.CHAPUser, ft.Name})
		}
	}
	return nil
}

// clientTarget is how clients see a served target: its first LUN, its
// first CHAP user and the mutual account, at the server's address and the
// bound port.
func clientTarget(ft iscsitarget.FileTarget, server net.IP, port int) sanboot.Target {
	t := sanboot.Target{IQN: ft.Name, Server: server.String(), LUN: int(ft.LUNs[0].Number)}
	if port != sanboot.DefaultISCSIPort {
		t.Port = port
	}
	if len(ft.Auth.Incoming) > 0 {
		t.CHAPUser, t.CHAPSecret = ft.Auth.Incoming[0].User, string(ft.Auth.Incoming[0].Secret)
	}
	if o := ft.Auth.Outgoing; o != nil {
		t.MutualUser, t.MutualSecret = o.User, string(o.Secret)
	}
	return t
}

// listenAddr accepts ADDR, ADDR:PORT, :PORT and [v6]:PORT.
func listenAddr(s string) string {
	if s == "" {
		return ":3260"
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "3260")
}
