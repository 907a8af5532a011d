package sanboot

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"strings"

	"github.com/xpboot/xpboot/iscsitarget/auth"
)

// ErrIgnoredClient is returned by a Policy for a client that must get no
// answer at all (an unknown MAC under UnknownIgnore).
var ErrIgnoredClient = errors.New("sanboot: client ignored by policy")

// Client is what one machine boots and how.
type Client struct {
	MAC          net.HardwareAddr
	Name         string     // host name, also sent as option 12 in full mode
	Known        bool       // listed in the clients section
	Address      netip.Addr // fixed address in full mode; invalid means from the range
	InitiatorIQN string     // option 203 / `set initiator-iqn`; unique per client
	Image        string     // image name, resolved to Target by the policy
	Target       Target     // the disk, with this client's CHAP credentials
	Overlay      bool       // per-client copy-on-write overlay on the image
	NoGateway    bool       // omit option 3 / clear the gateway in scripts
	KeepSAN      bool       // 175.8 / `set keep-san 1`
	SkipSANBoot  bool       // 175.9: hook the disk without booting it (install)
	BootFile     string     // file iPXE clients get instead of none (root-path only); "" = none
}

// Policy decides what a MAC boots. It answers DHCP, TFTP and the iSCSI
// target alike, so it must be safe for concurrent use.
type Policy interface {
	// Client returns the configuration for mac, ErrIgnoredClient when the
	// client must not be answered, or another error.
	Client(mac net.HardwareAddr) (Client, error)
}

// UnknownClients is what a StaticPolicy does with a MAC not in its list.
type UnknownClients string

// Unknown-client rules.
const (
	UnknownServe  UnknownClients = "serve"  // boot the default image
	UnknownIgnore UnknownClients = "ignore" // no answer
)

// ClientEntry is one entry of the configuration's clients section.
type ClientEntry struct {
	MAC        string `json:"mac"`
	Name       string `json:"name,omitempty"`
	Address    string `json:"address,omitempty"`
	IQN        string `json:"iqn,omitempty"`   // initiator IQN; default IQNPrefix + MAC
	Image      string `json:"image,omitempty"` // key of PolicyConfig.Images; "" = default
	Overlay    *bool  `json:"overlay,omitempty"`
	NoGateway  *bool  `json:"no_gateway,omitempty"`
	CHAPUser   string `json:"chap_user,omitempty"`
	CHAPSecret string `json:"chap_secret,omitempty"`
	// BootFile is a file under the TFTP root that iPXE boots after hooking
	// the disk (and writing the iBFT for it), instead of booting the disk:
	// an iPXE script loading an installer or a Linux kernel that logs in
	// again from the iBFT. Root-path answers only (full mode, no --script).
	BootFile string `json:"boot_file,omitempty"`
}

// PolicyConfig is the input of NewStaticPolicy.
type PolicyConfig struct {
	Default   Target            // the default image's target, with default credentials
	Images    map[string]Target // further images by name
	IQNPrefix string            // initiator IQN = prefix + MAC as 52-54-00-…; default "iqn.2026-01.org.xpboot:client-"
	Overlay   bool              // default overlay switch
	NoGateway bool              // default gateway switch
	KeepSAN   bool
	Install   bool // SkipSANBoot for every client
	Unknown   UnknownClients
	Clients   []ClientEntry
}

// DefaultIQNPrefix prefixes the per-client initiator IQN.
const DefaultIQNPrefix = "iqn.2026-01.org.xpboot:client-"

// StaticPolicy is a Policy from configuration. It is immutable after
// NewStaticPolicy and safe for concurrent use.
type StaticPolicy struct {
	cfg     PolicyConfig
	clients map[string]Client // by MAC string
	byIQN   map[string]string // initiator IQN → MAC string, listed clients
}

// NewStaticPolicy validates cfg and builds the policy.
func NewStaticPolicy(cfg PolicyConfig) (*StaticPolicy, error) {
	if cfg.IQNPrefix == "" {
		cfg.IQNPrefix = DefaultIQNPrefix
	}
	switch cfg.Unknown {
	case "":
		cfg.Unknown = UnknownServe
	case UnknownServe, UnknownIgnore:
	default:
		return nil, fmt.Errorf("sanboot: unknown-client policy %q: want serve or ignore", cfg.Unknown)
	}
	if err := cfg.Default.Validate(); err != nil {
		return nil, fmt.Errorf("default image: %w", err)
	}
	for name, t := range cfg.Images {
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("image %q: %w", name, err)
		}
	}
	p := &StaticPolicy{cfg: cfg, clients: map[string]Client{}, byIQN: map[string]string{}}
	iqns := map[string]string{}
	addrs := map[netip.Addr]string{}
	for i, e := range cfg.Clients {
		mac, err := net.ParseMAC(e.MAC)
		if err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("sanboot: clients[%d]: MAC %q: want an Ethernet address", i, e.MAC)
		}
		key := mac.String()
		if _, dup := p.clients[key]; dup {
			return nil, fmt.Errorf("sanboot: clients[%d]: MAC %s listed twice", i, key)
		}
		c := p.defaults(mac)
		c.Known, c.Name = true, e.Name
		if e.Address != "" {
			a, err := netip.ParseAddr(e.Address)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("sanboot: client %s: address %q: want IPv4", key, e.Address)
			}
			if other, dup := addrs[a]; dup {
				return nil, fmt.Errorf("sanboot: client %s: address %s already given to %s", key, a, other)
			}
			addrs[a] = key
			c.Address = a
		}
		if e.IQN != "" {
			if err := auth.CheckName(e.IQN); err != nil {
				return nil, fmt.Errorf("sanboot: client %s: initiator IQN: %w", key, err)
			}
			c.InitiatorIQN = e.IQN
		}
		if other, dup := iqns[c.InitiatorIQN]; dup {
			return nil, fmt.Errorf("sanboot: client %s: initiator IQN %s already used by %s", key, c.InitiatorIQN, other)
		}
		iqns[c.InitiatorIQN] = key
		if e.Image != "" {
			t, ok := cfg.Images[e.Image]
			if !ok {
				return nil, fmt.Errorf("sanboot: client %s: no image %q", key, e.Image)
			}
			c.Image, c.Target = e.Image, t
		}
		if e.Overlay != nil {
			c.Overlay = *e.Overlay
		}
		if e.NoGateway != nil {
			c.NoGateway = *e.NoGateway
		}
		if e.CHAPUser != "" {
			c.Target.CHAPUser = e.CHAPUser
			if e.CHAPSecret != "" {
				c.Target.CHAPSecret = e.CHAPSecret
			}
		}
		if err := c.Target.Validate(); err != nil {
			return nil, fmt.Errorf("sanboot: client %s: %w", key, err)
		}
		if e.BootFile != "" {
			if !fs.ValidPath(e.BootFile) || strings.ContainsAny(e.BootFile, scriptUnsafe) {
				return nil, fmt.Errorf("sanboot: client %s: boot file %q: want a plain relative path under the TFTP root", key, e.BootFile)
			}
			c.BootFile = e.BootFile
		}
		p.clients[key] = c
		p.byIQN[c.InitiatorIQN] = key
	}
	return p, nil
}

func (p *StaticPolicy) defaults(mac net.HardwareAddr) Client {
	return Client{
		MAC:          mac,
		InitiatorIQN: p.cfg.IQNPrefix + strings.ReplaceAll(mac.String(), ":", "-"),
		Target:       p.cfg.Default,
		Overlay:      p.cfg.Overlay,
		NoGateway:    p.cfg.NoGateway,
		KeepSAN:      p.cfg.KeepSAN || p.cfg.Install,
		SkipSANBoot:  p.cfg.Install,
	}
}

// Client implements Policy.
func (p *StaticPolicy) Client(mac net.HardwareAddr) (Client, error) {
	if len(mac) != 6 {
		return Client{}, fmt.Errorf("sanboot: hardware address %q is not Ethernet", mac)
	}
	if c, ok := p.clients[mac.String()]; ok {
		c.MAC = append(net.HardwareAddr(nil), mac...)
		return c, nil
	}
	if p.cfg.Unknown == UnknownIgnore {
		return Client{}, ErrIgnoredClient
	}
	return p.defaults(append(net.HardwareAddr(nil), mac...)), nil
}

// Clients returns the listed clients, for status output.
func (p *StaticPolicy) Clients() []Client {
	out := make([]Client, 0, len(p.clients))
	for _, c := range p.clients {
		out = append(out, c)
	}
	return out
}

// Reserved returns the fixed addresses of the listed clients, address →
// MAC, for LeaseConfig.Reserved.
func (p *StaticPolicy) Reserved() map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for mac, c := range p.clients {
		if c.Address.IsValid() {
			out[c.Address] = mac
		}
	}
	return out
}

// ClientByIQN maps an initiator name back to its client, for the iSCSI
// target: a listed client's IQN, or the default IQNPrefix + MAC form of an
// unlisted one (subject to the unknown-client rule). Names the policy did
// not hand out return ErrIgnoredClient.
func (p *StaticPolicy) ClientByIQN(iqn string) (Client, error) {
	if key, ok := p.byIQN[iqn]; ok {
		mac, _ := net.ParseMAC(key)
		return p.Client(mac)
	}
	if rest, ok := strings.CutPrefix(iqn, p.cfg.IQNPrefix); ok && len(rest) == 17 {
		if mac, err := net.ParseMAC(rest); err == nil && len(mac) == 6 {
			c, err := p.Client(mac)
			if err == nil && c.InitiatorIQN == iqn {
				return c, nil
			}
		}
	}
	return Client{}, fmt.Errorf("%w: initiator %s was not given out by xpboot", ErrIgnoredClient, iqn)
}

// ErrNotAuthorized is wrapped by AuthorizeISCSI's refusals.
var ErrNotAuthorized = errors.New("sanboot: initiator not authorized for target")

// AuthorizeISCSI says whether initiator may log in to target (iSCSI names
// compare case-insensitively), for the iSCSI target's authorization hook.
// A client of the policy (a listed one, or an unlisted MAC's default IQN
// under UnknownServe) may use its own image's target only. Initiator names
// the policy did not hand out follow the unknown-client rule: under
// UnknownServe they may use the default image's target, under
// UnknownIgnore nothing. It returns the client when the initiator is one
// (for the log), and nil or an error wrapping ErrNotAuthorized that says
// why.
func (p *StaticPolicy) AuthorizeISCSI(initiator, target string) (Client, error) {
	c, err := p.ClientByIQN(initiator)
	switch {
	case err == nil:
		if strings.EqualFold(target, c.Target.IQN) {
			return c, nil
		}
		return c, fmt.Errorf("%w: client %s (initiator %s) may use target %s only", ErrNotAuthorized, c.MAC, initiator, c.Target.IQN)
	case p.cfg.Unknown == UnknownIgnore:
		return Client{}, fmt.Errorf("%w: initiator %s is not a client of this server and unknown clients are ignored", ErrNotAuthorized, initiator)
	case strings.EqualFold(target, p.cfg.Default.IQN):
		return Client{}, nil
	}
	return Client{}, fmt.Errorf("%w: initiator %s is not a client of this server; unknown clients may use the default target %s only", ErrNotAuthorized, initiator, p.cfg.Default.IQN)
}
