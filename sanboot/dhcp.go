package sanboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Mode is the DHCP role of the server.
type Mode string

// DHCP modes.
const (
	ModeOff   Mode = "off"   // no DHCP: clients boot from another server's root-path or a script
	ModeFull  Mode = "full"  // the only DHCP server on the link: addresses and boot answers
	ModeProxy Mode = "proxy" // ProxyDHCP beside a router's server: boot answers only
)

// ParseMode reads a --dhcp value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeOff, ModeFull, ModeProxy:
		return m, nil
	}
	return "", fmt.Errorf("sanboot: DHCP mode %q: want off, full or proxy", s)
}

// PXEPort is the UDP port of PXE's ProxyDHCP requests (UEFI ROMs use it).
const PXEPort = 4011

// DHCPConfig configures a DHCPServer.
type DHCPConfig struct {
	Mode      Mode    // ModeFull or ModeProxy
	Network   Network // ServerIP always; the rest in full mode
	Leases    *Leases // full mode
	Policy    Policy
	BootFiles BootFiles // default DefaultBootFiles
	// Script makes iPXE clients fetch their generated script by TFTP
	// (ScriptName) instead of receiving a root-path. Proxy mode always
	// does so.
	Script bool
	Events *EventLog // default: a new log on Log
	Log    *slog.Logger
}

// DHCPServer answers DHCP (port 67) and PXE (port 4011) requests.
type DHCPServer struct {
	cfg       DHCPConfig
	warnOnce  sync.Map  // foreign server identifiers already warned about
	relayOnce sync.Once // the first relayed request in full mode is a warning
}

// NewDHCPServer checks cfg and fills in defaults.
func NewDHCPServer(cfg DHCPConfig) (*DHCPServer, error) {
	if cfg.Network.ServerIP.To4() == nil {
		return nil, errors.New("sanboot: DHCP needs the server's IPv4 address on the client link")
	}
	cfg.Network.ServerIP = cfg.Network.ServerIP.To4()
	if cfg.Policy == nil {
		return nil, errors.New("sanboot: DHCP needs a client policy")
	}
	switch cfg.Mode {
	case ModeFull:
		if cfg.Leases == nil {
			return nil, errors.New("sanboot: full DHCP mode needs a lease table (a range)")
		}
		if cfg.Network.Netmask == nil {
			return nil, errors.New("sanboot: full DHCP mode needs a netmask")
		}
		subnet := net.IPNet{IP: cfg.Network.ServerIP.Mask(cfg.Network.Netmask), Mask: cfg.Network.Netmask}
		for _, a := range []netip.Addr{cfg.Leases.cfg.Start, cfg.Leases.cfg.End} {
			if !subnet.Contains(net.IP(a.AsSlice())) {
				return nil, fmt.Errorf("sanboot: DHCP range address %s is outside the server's subnet %s", a, subnet.String())
			}
		}
		if cfg.Network.LeaseTime <= 0 {
			cfg.Network.LeaseTime = time.Hour
		}
	case ModeProxy:
		cfg.Script = true
	default:
		return nil, fmt.Errorf("sanboot: DHCP mode %q: a server runs in full or proxy mode", cfg.Mode)
	}
	if cfg.BootFiles == (BootFiles{}) {
		cfg.BootFiles = DefaultBootFiles
	}
	if cfg.Events == nil {
		cfg.Events = NewEventLog(cfg.Log, 0)
	}
	return &DHCPServer{cfg: cfg}, nil
}

// Events returns the server's event log.
func (s *DHCPServer) Events() *EventLog { return s.cfg.Events }

// ListenDHCP opens a UDP socket for DHCP on iface (bound to the device, with
// SO_BROADCAST and SO_REUSEADDR) at port (67, or PXEPort). It needs root or
// CAP_NET_BIND_SERVICE plus CAP_NET_RAW.
func ListenDHCP(iface string, port int) (net.PacketConn, error) {
	c, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: port})
	if err != nil {
		return nil, fmt.Errorf("sanboot: DHCP socket on %s port %d: %w", iface, port, err)
	}
	return c, nil
}

// Serve answers DHCP on conn (port 67) until ctx ends, then returns nil.
// The caller owns conn. Packets are handled one at a time.
func (s *DHCPServer) Serve(ctx context.Context, conn net.PacketConn) error {
	return s.serve(ctx, conn, false)
}

// ServePXE answers ProxyDHCP requests on conn (port 4011) until ctx ends.
func (s *DHCPServer) ServePXE(ctx context.Context, conn net.PacketConn) error {
	return s.serve(ctx, conn, true)
}

func (s *DHCPServer) serve(ctx context.Context, conn net.PacketConn, pxePort bool) error {
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	handle := s.Handler
	if pxePort {
		handle = s.PXEHandler
	}
	buf := make([]byte, 65536)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("sanboot: DHCP read: %w", err)
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			s.cfg.Events.Record(peer.String(), "dhcp", StateMalformed, "unparsable DHCP packet", slog.String("error", err.Error()))
			continue
		}
		handle(conn, peer, m)
	}
}

// Handler answers one DHCP message received on port 67; it has server4's
// Handler signature.
func (s *DHCPServer) Handler(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.handle(conn, peer, m, false)
}

// PXEHandler answers one message received on port 4011.
func (s *DHCPServer) PXEHandler(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.handle(conn, peer, m, true)
}

func (s *DHCPServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4, pxePort bool) {
	proto := "dhcp"
	if s.cfg.Mode == ModeProxy || pxePort {
		proto = "proxydhcp"
	}
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Events.log.Error("DHCP handler panic", "client", m.ClientHWAddr.String(), "proto", proto, "panic", fmt.Sprint(r))
		}
	}()
	reply, err := s.Reply(m, pxePort)
	if err != nil || reply == nil {
		return
	}
	dst := replyAddr(peer)
	if _, err := conn.WriteTo(reply.ToBytes(), dst); err != nil {
		s.cfg.Events.log.Warn("DHCP send failed", "client", m.ClientHWAddr.String(), "proto", proto, "to", dst.String(), "error", err.Error())
	}
}

// replyAddr is where a reply goes: back to the peer, or broadcast to its
// port when it has no address yet (server4's rule; relays get their giaddr
// peer back).
func replyAddr(peer net.Addr) net.Addr {
	u, ok := peer.(*net.UDPAddr)
	if !ok {
		return peer
	}
	if u.IP == nil || u.IP.IsUnspecified() {
		return &net.UDPAddr{IP: net.IPv4bcast, Port: u.Port}
	}
	return u
}

// Reply computes the answer to m, or nil for no answer; pxePort says m came
// to port 4011. Every decision is recorded in the event log. It never sends.
func (s *DHCPServer) Reply(m *dhcpv4.DHCPv4, pxePort bool) (*dhcpv4.DHCPv4, error) {
	proto := "dhcp"
	if s.cfg.Mode == ModeProxy || pxePort {
		proto = "proxydhcp"
	}
	mac := m.ClientHWAddr
	who := mac.String()
	ignore := func(why string, attrs ...slog.Attr) (*dhcpv4.DHCPv4, error) {
		s.cfg.Events.Record(who, proto, StateIgnored, why, attrs...)
		return nil, nil
	}
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return ignore("not a BOOTREQUEST")
	}
	if len(mac) != 6 {
		who = fmt.Sprintf("%x", []byte(mac))
		return ignore("hardware address is not Ethernet")
	}
	if gi := m.GatewayIPAddr; s.cfg.Mode == ModeFull && !pxePort && gi != nil && !gi.IsUnspecified() {
		// A relay agent forwarded this from another network: full mode's
		// range, netmask and server address belong to its own link only.
		// (Proxy mode answers relayed PXE requests: it assigns nothing.)
		s.relayOnce.Do(func() {
			s.cfg.Events.log.Warn("relayed DHCP request ignored: full mode hands out addresses on its own link only (further ones are logged at debug level)",
				"client", who, "proto", proto, "giaddr", gi.String())
		})
		return ignore("relayed from another network by "+gi.String()+": full mode serves its own link only", slog.String("giaddr", gi.String()))
	}
	kind := Classify(m)
	if _, present, err := GetIPXE(m); present && err != nil {
		// iPXE never sends this; treat the client as iPXE all the same.
		s.cfg.Events.Record(who, proto, StateMalformed, "bad option 175", slog.String("error", err.Error()))
	}
	if (s.cfg.Mode == ModeProxy || pxePort) && kind == KindOther {
		return ignore("not a PXE client", slog.String("vendor_class", m.ClassIdentifier()))
	}
	c, err := s.cfg.Policy.Client(mac)
	if errors.Is(err, ErrIgnoredClient) {
		return ignore("client ignored by policy")
	}
	if err != nil {
		s.cfg.Events.Record(who, proto, StateIgnored, "policy error", slog.String("error", err.Error()))
		return nil, err
	}
	if pxePort || s.cfg.Mode == ModeProxy {
		return s.proxyReply(m, c, kind, pxePort)
	}
	return s.fullReply(m, c, kind)
}

// boot returns the modifiers that make the reply boot the client, and the
// state to record.
func (s *DHCPServer) boot(m *dhcpv4.DHCPv4, c Client, kind Kind) ([]dhcpv4.Modifier, State, string) {
	srv := s.cfg.Network.ServerIP
	switch kind {
	case KindIPXE:
		if s.cfg.Script {
			return []dhcpv4.Modifier{WithScript(srv, c.MAC, c.InitiatorIQN), WithIPXESettings(IPXESettings{NoPXEDHCP: s.cfg.Mode == ModeFull})},
				StateSANBoot, "iPXE client: boot script " + ScriptName(c.MAC)
		}
		mods := []dhcpv4.Modifier{WithSANBoot(c, s.cfg.Mode == ModeFull)}
		if c.BootFile != "" {
			mods = append(mods, WithBootFile(srv, c.BootFile))
		}
		return mods, StateSANBoot, "iPXE client: root-path " + c.Target.RootPath()
	case KindPXE:
		fw := FirmwareOf(m)
		file := s.cfg.BootFiles.For(fw)
		if file == "" {
			return nil, StateIgnored, "PXE client with firmware " + archString(m) + ": no iPXE binary for it"
		}
		return []dhcpv4.Modifier{WithPXEClass(m), WithChainload(m, s.cfg.BootFiles, srv)}, StateChainload,
			fmt.Sprintf("PXE ROM (%s): chainload %s", fw, file)
	}
	return nil, StateIgnored, ""
}

func archString(m *dhcpv4.DHCPv4) string {
	if a := m.ClientArch(); len(a) > 0 {
		return a[0].String()
	}
	return "unknown"
}

func (s *DHCPServer) proxyReply(m *dhcpv4.DHCPv4, c Client, kind Kind, pxePort bool) (*dhcpv4.DHCPv4, error) {
	who, proto := c.MAC.String(), "proxydhcp"
	var typ dhcpv4.MessageType
	switch mt := m.MessageType(); {
	case mt == dhcpv4.MessageTypeDiscover && !pxePort:
		typ = dhcpv4.MessageTypeOffer
	case mt == dhcpv4.MessageTypeRequest && !pxePort && s.cfg.Network.ServerIP.Equal(m.ServerIdentifier()) && m.Options.Has(dhcpv4.OptionRequestedIPAddress):
		// This REQUEST selects an address offer, and the proxy offers no
		// address: it is for a DHCP server on this host sharing the
		// proxy's address (dnsmasq beside xpboot). An ACK with yiaddr 0
		// racing that server's ACK makes OVMF configure 0.0.0.0 and stop
		// with PXE-E07; UEFI clients come to port 4011 for their file.
		s.cfg.Events.Record(who, proto, StateIgnored, "REQUEST selects the address offer of another DHCP server sharing this address")
		return nil, nil
	case mt == dhcpv4.MessageTypeRequest && (pxePort || s.cfg.Network.ServerIP.Equal(m.ServerIdentifier())):
		typ = dhcpv4.MessageTypeAck
	case mt == dhcpv4.MessageTypeInform && pxePort:
		typ = dhcpv4.MessageTypeAck
	default:
		s.cfg.Events.Record(who, proto, StateIgnored, "not for the proxy: "+mt.String())
		return nil, nil
	}
	bootMods, state, detail := s.boot(m, c, kind)
	if state == StateIgnored {
		s.cfg.Events.Record(who, proto, state, detail)
		return nil, nil
	}
	mods := append([]dhcpv4.Modifier{dhcpv4.WithMessageType(typ)}, bootMods...)
	mods = append(mods, WithProxyOffer(m, s.cfg.Network.ServerIP, pxePort))
	r, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return nil, err
	}
	s.cfg.Events.Record(who, proto, StateProxyOffered, detail, slog.String("type", typ.String()), slog.String("file", r.BootFileName))
	if ip := m.ClientIPAddr; ip != nil && !ip.IsUnspecified() {
		s.cfg.Events.Bind(ip, c.MAC)
	}
	return r, nil
}

func (s *DHCPServer) fullReply(m *dhcpv4.DHCPv4, c Client, kind Kind) (*dhcpv4.DHCPv4, error) {
	who, proto, mac := c.MAC.String(), "dhcp", c.MAC.String()
	ev := s.cfg.Events
	n := s.cfg.Network
	toAddr := func(ip net.IP) netip.Addr {
		a, _ := netip.AddrFromSlice(ip.To4())
		return a
	}
	reply := func(typ dhcpv4.MessageType, addr net.IP, lease time.Duration, state State, detail string) (*dhcpv4.DHCPv4, error) {
		mods := []dhcpv4.Modifier{dhcpv4.WithMessageType(typ), WithLease(addr, n, lease), WithHostName(c.Name)}
		bootMods, bootState, bootDetail := s.boot(m, c, kind)
		mods = append(mods, bootMods...)
		if c.NoGateway {
			mods = append(mods, WithoutGateway())
		}
		r, err := dhcpv4.NewReplyFromRequest(m, mods...)
		if err != nil {
			return nil, err
		}
		if bootDetail != "" {
			detail += "; " + bootDetail
		}
		logIP := addr
		if logIP == nil {
			logIP = m.ClientIPAddr
		}
		ev.Record(who, proto, state, detail, slog.String("ip", logIP.String()))
		if bootState != StateIgnored && (state == StateBound || state == StateInformed) {
			ev.Record(who, proto, bootState, bootDetail, slog.String("iqn", c.InitiatorIQN))
		}
		return r, nil
	}
	nak := func(why string) (*dhcpv4.DHCPv4, error) {
		r, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(n.ServerIP)), dhcpv4.WithOption(dhcpv4.OptMessage(why)))
		if err != nil {
			return nil, err
		}
		r.SetBroadcast()
		ev.Record(who, proto, StateNAKed, why)
		return r, nil
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		le, err := s.cfg.Leases.Offer(mac, toAddr(m.RequestedIPAddress()), c.Address)
		if err != nil {
			ev.Record(who, proto, StateIgnored, "no address to offer", slog.String("error", err.Error()))
			return nil, nil
		}
		return reply(dhcpv4.MessageTypeOffer, net.IP(le.Addr.AsSlice()), n.LeaseTime, StateOffered, "offer")
	case dhcpv4.MessageTypeRequest:
		if sid := m.ServerIdentifier(); sid != nil && !sid.Equal(n.ServerIP) {
			if _, seen := s.warnOnce.LoadOrStore(sid.String(), true); !seen {
				ev.log.Warn("another DHCP server answers on this link", "proto", proto, "server", sid.String(), "client", who)
			}
			ev.Record(who, proto, StateIgnored, "client chose server "+sid.String())
			return nil, nil
		}
		want := m.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = m.ClientIPAddr // RENEWING / REBINDING
		}
		a := toAddr(want)
		if !a.IsValid() || a.IsUnspecified() {
			return nak("no address requested")
		}
		if c.Address.IsValid() && a != c.Address {
			return nak(fmt.Sprintf("%s is not this client's fixed address %s", a, c.Address))
		}
		le, err := s.cfg.Leases.Bind(mac, a, n.LeaseTime, c.Name)
		if errors.Is(err, ErrNotOffered) {
			return nak(fmt.Sprintf("%s is not available to this client", a))
		}
		if err != nil {
			// The lease is held in memory; only persistence failed.
			ev.log.Error("lease table", "client", who, "proto", proto, "error", err.Error())
		}
		ip := net.IP(le.Addr.AsSlice())
		ev.Bind(ip, c.MAC)
		return reply(dhcpv4.MessageTypeAck, ip, n.LeaseTime, StateBound, "lease "+le.Addr.String())
	case dhcpv4.MessageTypeRelease:
		ok, err := s.cfg.Leases.Release(mac, toAddr(m.ClientIPAddr))
		if err != nil {
			ev.log.Error("lease table", "client", who, "proto", proto, "error", err.Error())
		}
		if ok {
			ev.Record(who, proto, StateReleased, "released "+m.ClientIPAddr.String())
		} else {
			ev.Record(who, proto, StateIgnored, "release of an address it does not hold: "+m.ClientIPAddr.String())
		}
		return nil, nil
	case dhcpv4.MessageTypeDecline:
		a := toAddr(m.RequestedIPAddress())
		if !a.IsValid() {
			ev.Record(who, proto, StateIgnored, "decline without an address")
			return nil, nil
		}
		if err := s.cfg.Leases.Decline(mac, a); err != nil {
			ev.log.Error("lease table", "client", who, "proto", proto, "error", err.Error())
		}
		ev.Record(who, proto, StateDeclined, a.String()+" is in use by another host")
		return nil, nil
	case dhcpv4.MessageTypeInform:
		return reply(dhcpv4.MessageTypeAck, nil, 0, StateInformed, "inform from "+m.ClientIPAddr.String())
	}
	ev.Record(who, proto, StateIgnored, "message type "+m.MessageType().String())
	return nil, nil
}
