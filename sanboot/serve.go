package sanboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ServeConfig is everything `xpboot serve --dhcp full|proxy` needs to run
// DHCP and TFTP on one interface. NewNetboot turns it into a Server whose
// sockets are open; the caller adds the iSCSI target as a Service.
type ServeConfig struct {
	Mode      Mode   // ModeFull or ModeProxy
	Interface string // the client link (required)
	// ServerIP is the address clients use for TFTP and iSCSI; default the
	// interface's first IPv4 address.
	ServerIP net.IP
	// RangeStart and RangeEnd are the dynamic range (full mode, required).
	RangeStart, RangeEnd netip.Addr
	Router               net.IP   // option 3 in full mode; nil for none
	DNS                  []net.IP // option 6 in full mode
	LeaseTime            time.Duration
	// LeaseFile persists the lease table (full mode); "" keeps it in memory.
	LeaseFile string
	IPXEDir   string // TFTP root; default DefaultIPXEDir()
	// Script hands iPXE clients a generated script by TFTP instead of a
	// root-path (always so in proxy mode).
	Script bool
	// Policy is the clients configuration. Its targets' empty Server
	// fields are filled with ServerIP.
	Policy PolicyConfig
	// Prepared, if set, is the policy itself, built by the caller (xpboot
	// serve builds it once, from the address its iSCSI target is bound
	// to, and answers the target's questions from it too); Policy is then
	// not used.
	Prepared *StaticPolicy
	// Probe, when positive, is how long full mode waits for another DHCP
	// server's answer to one DISCOVER before starting; an answer is logged
	// as a warning, never fatal.
	Probe time.Duration
	// RouterAdvertisements answers IPv6 router solicitations on the
	// interface with an RA that ends iPXE's IPv6 wait (see
	// RouterAdvertiser). Without IPv6 on the interface it is skipped with a
	// warning.
	RouterAdvertisements bool
	// Ports, for tests; 0 means the standard 67, 4011 and 69.
	DHCPPort, PXEPort, TFTPPort int
	Log                         *slog.Logger
	// EventsPerClient is how many events the EventLog keeps per client
	// (default 10).
	EventsPerClient int
	// Events, if set, is the EventLog DHCP and TFTP record into (the caller
	// shares it with the iSCSI target's log); EventsPerClient then does
	// not apply.
	Events *EventLog
}

// Netboot is a running-ready DHCP+TFTP composition: its Server has every
// socket open. Add the iSCSI accept loop to Server.Services, call
// Server.Serve, then Close.
type Netboot struct {
	Server   *Server
	Events   *EventLog
	Policy   *StaticPolicy
	Leases   *Leases // nil in proxy mode
	ServerIP net.IP
	Netmask  net.IPMask
	log      *slog.Logger
	closers  []func() error
}

// InterfaceIPv4 returns the first IPv4 address of the interface name and
// its netmask.
func InterfaceIPv4(name string) (net.IP, net.IPMask, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("sanboot: interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("sanboot: interface %s: %w", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), n.Mask[len(n.Mask)-4:], nil
		}
	}
	return nil, nil, fmt.Errorf("sanboot: interface %s has no IPv4 address; give it one or pass the server address", name)
}

// ServerAddress returns the address clients use for TFTP and iSCSI on
// interface name, and its netmask: ip when given (it must be an IPv4
// address of that interface), else the interface's first IPv4 address.
func ServerAddress(name string, ip net.IP) (net.IP, net.IPMask, error) {
	if ip == nil {
		return InterfaceIPv4(name)
	}
	if ip.To4() == nil {
		return nil, nil, fmt.Errorf("sanboot: server address %s is not IPv4", ip)
	}
	ip = ip.To4()
	mask := maskFor(name, ip)
	if mask == nil {
		if _, err := net.InterfaceByName(name); err != nil {
			return nil, nil, fmt.Errorf("sanboot: interface %s: %w", name, err)
		}
		return nil, nil, fmt.Errorf("sanboot: server address %s is not on interface %s", ip, name)
	}
	return ip, mask, nil
}

// maskFor returns the netmask of the interface network that holds ip.
func maskFor(name string, ip net.IP) net.IPMask {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.Contains(ip) {
			return n.Mask[len(n.Mask)-4:]
		}
	}
	return nil
}

// ParseRange reads a --dhcp-range FROM-TO value.
func ParseRange(s string) (netip.Addr, netip.Addr, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("sanboot: DHCP range %q: want FROM-TO", s)
	}
	a, err1 := netip.ParseAddr(strings.TrimSpace(from))
	b, err2 := netip.ParseAddr(strings.TrimSpace(to))
	if err1 != nil || err2 != nil || !a.Is4() || !b.Is4() || b.Less(a) {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("sanboot: DHCP range %q: want two IPv4 addresses, low to high", s)
	}
	return a, b, nil
}

// probeMAC is the locally administered address ProbeDHCP sends from.
var probeMAC = net.HardwareAddr{0x02, 0x78, 0x70, 0x62, 0x6f, 0x6f}

// NewNetboot checks cfg, builds the policy, lease table, DHCP and TFTP
// servers sharing one EventLog, probes the link in full mode, and opens
// every socket. On error nothing stays open.
func NewNetboot(ctx context.Context, cfg ServeConfig) (_ *Netboot, err error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Mode {
	case ModeFull, ModeProxy:
	default:
		return nil, fmt.Errorf("sanboot: DHCP mode %q: want full or proxy", cfg.Mode)
	}
	if cfg.Interface == "" {
		return nil, fmt.Errorf("sanboot: --dhcp %s needs the client interface (--interface)", cfg.Mode)
	}
	n := &Netboot{log: log}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.ServerIP, n.Netmask, err = ServerAddress(cfg.Interface, cfg.ServerIP); err != nil {
		return nil, err
	}
	if n.Policy = cfg.Prepared; n.Policy == nil {
		pc := cfg.Policy
		fill := func(t Target) Target {
			if t.Server == "" {
				t.Server = n.ServerIP.String()
			}
			return t
		}
		pc.Default = fill(pc.Default)
		if len(pc.Images) > 0 {
			imgs := make(map[string]Target, len(pc.Images))
			for k, t := range pc.Images {
				imgs[k] = fill(t)
			}
			pc.Images = imgs
		}
		if n.Policy, err = NewStaticPolicy(pc); err != nil {
			return nil, err
		}
	}
	if cfg.Script || cfg.Mode == ModeProxy {
		for _, c := range n.Policy.Clients() {
			if c.BootFile != "" {
				return nil, fmt.Errorf("sanboot: client %s: a boot file goes with the root-path answer (--dhcp full without --script)", c.MAC)
			}
		}
	}
	n.Events = cfg.Events
	if n.Events == nil {
		n.Events = NewEventLog(log, cfg.EventsPerClient)
	}

	network := Network{ServerIP: n.ServerIP, Netmask: n.Netmask, Router: cfg.Router, DNS: cfg.DNS, LeaseTime: cfg.LeaseTime}
	if cfg.Mode == ModeFull {
		if !cfg.RangeStart.IsValid() || !cfg.RangeEnd.IsValid() {
			return nil, errors.New("sanboot: --dhcp full needs an address range (--dhcp-range FROM-TO)")
		}
		if cfg.LeaseFile != "" {
			if err := os.MkdirAll(filepath.Dir(cfg.LeaseFile), 0o755); err != nil {
				return nil, fmt.Errorf("sanboot: lease directory: %w", err)
			}
		}
		n.Leases, err = OpenLeases(LeaseConfig{Start: cfg.RangeStart, End: cfg.RangeEnd, Reserved: n.Policy.Reserved(), File: cfg.LeaseFile})
		if err != nil {
			return nil, err
		}
	}
	dhcp, err := NewDHCPServer(DHCPConfig{Mode: cfg.Mode, Network: network, Leases: n.Leases, Policy: n.Policy, Script: cfg.Script, Events: n.Events, Log: log})
	if err != nil {
		return nil, err
	}
	root := cfg.IPXEDir
	if root == "" {
		if root, err = DefaultIPXEDir(); err != nil {
			return nil, err
		}
	}
	tftp, err := NewTFTPServer(TFTPConfig{Root: root, Policy: n.Policy, Events: n.Events, Log: log})
	if err != nil {
		return nil, err
	}
	if cfg.Mode == ModeFull && cfg.Probe > 0 {
		other, err := ProbeDHCP(ctx, cfg.Interface, probeMAC, cfg.Probe)
		switch {
		case err != nil:
			log.Warn("could not probe the link for other DHCP servers", "interface", cfg.Interface, "err", err)
		case other != nil:
			log.Warn("ANOTHER DHCP SERVER ANSWERS ON THIS LINK: clients may take its offers; stop it or use --dhcp proxy",
				"interface", cfg.Interface, "server", other.String())
		default:
			log.Info("no other DHCP server answered on the link", "interface", cfg.Interface)
		}
	}
	port := func(p, def int) int {
		if p == 0 {
			return def
		}
		return p
	}
	srv := &Server{DHCP: dhcp, TFTP: tftp}
	if srv.DHCPConn, err = ListenDHCP(cfg.Interface, port(cfg.DHCPPort, 67)); err != nil {
		return nil, err
	}
	n.closers = append(n.closers, srv.DHCPConn.Close)
	if cfg.Mode == ModeProxy {
		if srv.PXEConn, err = ListenDHCP(cfg.Interface, port(cfg.PXEPort, PXEPort)); err != nil {
			return nil, err
		}
		n.closers = append(n.closers, srv.PXEConn.Close)
	}
	if cfg.RouterAdvertisements {
		c, err := ListenNDP(cfg.Interface)
		if err != nil {
			log.Warn("IPv6 router advertisements off: iPXE clients wait for IPv6 router discovery to time out", "interface", cfg.Interface, "err", err)
		} else {
			n.closers = append(n.closers, c.Close)
			srv.RAConn = c
			srv.RA = NewRouterAdvertiser(RAConfig{Interface: cfg.Interface, Events: n.Events, Log: log})
		}
	}
	taddr := net.JoinHostPort(n.ServerIP.String(), fmt.Sprint(port(cfg.TFTPPort, 69)))
	if srv.TFTPConn, err = net.ListenPacket("udp4", taddr); err != nil {
		return nil, fmt.Errorf("sanboot: TFTP socket: %w", err)
	}
	// Serve's TFTP loop closes TFTPConn; close it here only if Serve never ran.
	tconn := srv.TFTPConn
	n.closers = append(n.closers, func() error { tconn.Close(); return nil })
	n.Server = srv
	log.Info("network boot listening", "mode", string(cfg.Mode), "interface", cfg.Interface, "server_ip", n.ServerIP.String(),
		"tftp", taddr, "ipxe_dir", root, "script", cfg.Script || cfg.Mode == ModeProxy, "ipv6_ra", srv.RA != nil)
	return n, nil
}

// Close closes the sockets NewNetboot opened.
func (n *Netboot) Close() error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	return errors.Join(errs...)
}

// ISCSIClient names the client behind an iSCSI connection for the log: the
// MAC that leased (or fetched a file from) the remote address, else the MAC
// encoded in or listed for the initiator name, else the remote address.
func (n *Netboot) ISCSIClient(remote net.Addr, initiator string) string {
	return ClientOf(n.Events, n.Policy, remote, initiator)
}

// ClientOf names the client behind an iSCSI connection from the shared
// EventLog and the policy, as Netboot.ISCSIClient describes; a nil events
// or policy is skipped.
func ClientOf(events *EventLog, policy *StaticPolicy, remote net.Addr, initiator string) string {
	var ip net.IP
	switch a := remote.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	if ip != nil && events != nil {
		if who := events.ClientFor(ip); who != ip.String() {
			return who
		}
	}
	if initiator != "" && policy != nil {
		if c, err := policy.ClientByIQN(initiator); err == nil {
			return c.MAC.String()
		}
	}
	if ip != nil {
		return ip.String()
	}
	if remote != nil {
		return remote.String()
	}
	return ""
}
