package sanboot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// syncBuffer is a log sink safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func testPolicy(t testing.TB, unknown UnknownClients, entries ...ClientEntry) *StaticPolicy {
	t.Helper()
	tgt := testTarget
	tgt.CHAPUser, tgt.CHAPSecret = "xpbuser", "xpbsecret1234"
	p, err := NewStaticPolicy(PolicyConfig{Default: tgt, Unknown: unknown, Clients: entries})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fullServer(t testing.TB, p *StaticPolicy, leaseFile string, log *slog.Logger) *DHCPServer {
	t.Helper()
	l, err := OpenLeases(LeaseConfig{Start: a("10.77.0.100"), End: a("10.77.0.150"), Reserved: p.Reserved(), File: leaseFile})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewDHCPServer(DHCPConfig{Mode: ModeFull, Policy: p, Leases: l, Log: log,
		Network: Network{ServerIP: testServer, Netmask: net.CIDRMask(24, 32), Router: net.IPv4(10, 77, 0, 254), LeaseTime: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func proxyServer(t testing.TB, p Policy) *DHCPServer {
	t.Helper()
	s, err := NewDHCPServer(DHCPConfig{Mode: ModeProxy, Policy: p, Network: Network{ServerIP: testServer}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func msg(t testing.TB, typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	return mustPacket(t, append([]dhcpv4.Modifier{dhcpv4.WithMessageType(typ)}, mods...)...)
}

func TestNewDHCPServerErrors(t *testing.T) {
	p := testPolicy(t, UnknownServe)
	for _, cfg := range []DHCPConfig{
		{Mode: ModeFull, Policy: p},
		{Mode: ModeFull, Policy: p, Network: Network{ServerIP: testServer}},
		{Mode: ModeProxy, Network: Network{ServerIP: testServer}},
		{Mode: ModeOff, Policy: p, Network: Network{ServerIP: testServer}},
		{Mode: ModeProxy, Policy: p},
	} {
		if _, err := NewDHCPServer(cfg); err == nil {
			t.Errorf("NewDHCPServer(%+v) accepted", cfg)
		}
	}
	l, _ := OpenLeases(LeaseConfig{Start: a("192.168.1.10"), End: a("192.168.1.20")})
	if _, err := NewDHCPServer(DHCPConfig{Mode: ModeFull, Policy: p, Leases: l,
		Network: Network{ServerIP: testServer, Netmask: net.CIDRMask(24, 32)}}); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("range outside the subnet: %v", err)
	}
	if _, err := ParseMode("auto"); err == nil {
		t.Error("ParseMode(auto) accepted")
	}
}

// TestFullReply runs a full-mode conversation through Reply, step by step.
func TestFullReply(t *testing.T) {
	s := fullServer(t, testPolicy(t, UnknownServe,
		ClientEntry{MAC: "52:54:00:77:00:09", Address: "10.77.0.9", Name: "pc09", NoGateway: ptr(true)}), "", nil)
	fixedMAC := net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 9}
	type want struct {
		typ      dhcpv4.MessageType // 0 = no reply
		yiaddr   string
		file     string
		rootPath string
		router   bool
		check    func(t *testing.T, r *dhcpv4.DHCPv4)
	}
	steps := []struct {
		name string
		req  *dhcpv4.DHCPv4
		want want
	}{
		{"plain discover", msg(t, dhcpv4.MessageTypeDiscover), want{typ: dhcpv4.MessageTypeOffer, yiaddr: "10.77.0.100", router: true}},
		{"request offered", msg(t, dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 100))),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer))), want{typ: dhcpv4.MessageTypeAck, yiaddr: "10.77.0.100", router: true}},
		{"request for another server", msg(t, dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 100))),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 2)))), want{}},
		{"request wrong address", msg(t, dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 1, 5)))),
			want{typ: dhcpv4.MessageTypeNak}},
		{"renew by ciaddr", msg(t, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 100))),
			want{typ: dhcpv4.MessageTypeAck, yiaddr: "10.77.0.100", router: true}},
		{"PXE ROM gets undionly.kpxe", msg(t, dhcpv4.MessageTypeDiscover, biosPXE()...),
			want{typ: dhcpv4.MessageTypeOffer, yiaddr: "10.77.0.100", file: "undionly.kpxe", router: true, check: func(t *testing.T, r *dhcpv4.DHCPv4) {
				if r.ClassIdentifier() != "PXEClient" || !r.ServerIPAddr.Equal(testServer) {
					t.Errorf("no PXEClient/siaddr: %s", r.Summary())
				}
			}}},
		{"UEFI ROM gets ipxe.efi", msg(t, dhcpv4.MessageTypeDiscover, efiPXE()...),
			want{typ: dhcpv4.MessageTypeOffer, yiaddr: "10.77.0.100", file: "ipxe.efi", router: true}},
		{"iPXE gets the SAN answer", msg(t, dhcpv4.MessageTypeRequest, append(ipxeClient(), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 100))))...),
			want{typ: dhcpv4.MessageTypeAck, yiaddr: "10.77.0.100", rootPath: "iscsi:10.77.0.1:::1:iqn.2026-01.org.xpboot:disk", router: true,
				check: func(t *testing.T, r *dhcpv4.DHCPv4) {
					s, ok, err := GetIPXE(r)
					if !ok || err != nil || s.Username != "xpbuser" || s.Password != "xpbsecret1234" || !s.NoPXEDHCP {
						t.Errorf("option 175: %s %v %v", s, ok, err)
					}
					if iqn := string(r.Options.Get(OptionInitiatorIQN)); iqn != "iqn.2026-01.org.xpboot:client-52-54-00-77-00-01" {
						t.Errorf("option 203 %q", iqn)
					}
				}}},
		{"inform", msg(t, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 100))),
			want{typ: dhcpv4.MessageTypeAck, yiaddr: "0.0.0.0", router: true, check: func(t *testing.T, r *dhcpv4.DHCPv4) {
				if r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
					t.Error("INFORM answer carries a lease time")
				}
			}}},
		{"release", msg(t, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 100))), want{}},
		{"decline", msg(t, dhcpv4.MessageTypeDecline, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 100)))), want{}},
		{"after decline a new address", msg(t, dhcpv4.MessageTypeDiscover), want{typ: dhcpv4.MessageTypeOffer, yiaddr: "10.77.0.101", router: true}},
		{"fixed client: address, name, no gateway", msg(t, dhcpv4.MessageTypeDiscover, dhcpv4.WithHwAddr(fixedMAC)),
			want{typ: dhcpv4.MessageTypeOffer, yiaddr: "10.77.0.9", check: func(t *testing.T, r *dhcpv4.DHCPv4) {
				if r.HostName() != "pc09" {
					t.Errorf("host name %q", r.HostName())
				}
			}}},
		{"fixed client asks for another address", msg(t, dhcpv4.MessageTypeRequest, dhcpv4.WithHwAddr(fixedMAC),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 120)))), want{typ: dhcpv4.MessageTypeNak}},
		{"reply to a BOOTREPLY: none", func() *dhcpv4.DHCPv4 {
			m := msg(t, dhcpv4.MessageTypeDiscover)
			m.OpCode = dhcpv4.OpcodeBootReply
			return m
		}(), want{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r, err := s.Reply(st.req, false)
			if err != nil {
				t.Fatal(err)
			}
			if st.want.typ == 0 {
				if r != nil {
					t.Fatalf("unexpected reply %s", r.Summary())
				}
				return
			}
			if r == nil {
				t.Fatal("no reply")
			}
			if r.MessageType() != st.want.typ {
				t.Fatalf("type %s, want %s: %s", r.MessageType(), st.want.typ, r.Summary())
			}
			if st.want.typ == dhcpv4.MessageTypeNak {
				return
			}
			if r.YourIPAddr.String() != st.want.yiaddr || r.BootFileName != st.want.file || r.RootPath() != st.want.rootPath {
				t.Errorf("yiaddr %s file %q root-path %q", r.YourIPAddr, r.BootFileName, r.RootPath())
			}
			if got := r.Options.Has(dhcpv4.OptionRouter); got != st.want.router {
				t.Errorf("router present %v, want %v", got, st.want.router)
			}
			if st.want.check != nil {
				st.want.check(t, r)
			}
		})
	}
	ev := s.Events().Events(testMAC.String())
	// The log keeps the last 10 events of the client, oldest first.
	if len(ev) != 10 || ev[len(ev)-1].State != StateIgnored || ev[len(ev)-2].State != StateOffered || ev[len(ev)-3].State != StateDeclined {
		t.Errorf("events %+v", ev)
	}
}

func ptr[T any](v T) *T { return &v }

func TestProxyReply(t *testing.T) {
	s := proxyServer(t, testPolicy(t, UnknownServe))
	tests := []struct {
		name    string
		req     *dhcpv4.DHCPv4
		pxePort bool
		typ     dhcpv4.MessageType
		file    string
		has43   bool
	}{
		{"plain client ignored", msg(t, dhcpv4.MessageTypeDiscover), false, 0, "", false},
		{"BIOS PXE discover", msg(t, dhcpv4.MessageTypeDiscover, biosPXE()...), false, dhcpv4.MessageTypeOffer, "undionly.kpxe", true},
		{"UEFI PXE discover: no file, go to 4011", msg(t, dhcpv4.MessageTypeDiscover, efiPXE()...), false, dhcpv4.MessageTypeOffer, "", false},
		{"UEFI PXE on 4011", msg(t, dhcpv4.MessageTypeRequest, efiPXE()...), true, dhcpv4.MessageTypeAck, "ipxe.efi", true},
		{"BIOS PXE on 4011", msg(t, dhcpv4.MessageTypeRequest, biosPXE()...), true, dhcpv4.MessageTypeAck, "undionly.kpxe", true},
		{"iPXE discover gets its script", msg(t, dhcpv4.MessageTypeDiscover, ipxeClient()...), false, dhcpv4.MessageTypeOffer, "xpboot-52-54-00-77-00-01.ipxe", true},
		{"request to the router: ignored", msg(t, dhcpv4.MessageTypeRequest, append(biosPXE(), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 254))))...), false, 0, "", false},
		{"request naming the proxy", msg(t, dhcpv4.MessageTypeRequest, append(biosPXE(), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer)))...), false, dhcpv4.MessageTypeAck, "undionly.kpxe", true},
		{"UEFI request naming the proxy gets the file", msg(t, dhcpv4.MessageTypeRequest, append(efiPXE(), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer)))...), false, dhcpv4.MessageTypeAck, "ipxe.efi", true},
		// dnsmasq on the same host and address as the proxy: the client's
		// REQUEST names the shared address and asks for dnsmasq's offer.
		// An ACK from the proxy (yiaddr 0) would race dnsmasq's: PXE-E07.
		{"UEFI request selecting a co-located server's offer: ignored", msg(t, dhcpv4.MessageTypeRequest, append(efiPXE(),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 185))))...), false, 0, "", false},
		{"BIOS request selecting a co-located server's offer: ignored", msg(t, dhcpv4.MessageTypeRequest, append(biosPXE(),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(testServer)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 77, 0, 185))))...), false, 0, "", false},
		{"plain client on 4011 ignored", msg(t, dhcpv4.MessageTypeRequest), true, 0, "", false},
		{"discover on 4011 ignored", msg(t, dhcpv4.MessageTypeDiscover, biosPXE()...), true, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Reply(tt.req, tt.pxePort)
			if err != nil {
				t.Fatal(err)
			}
			if tt.typ == 0 {
				if r != nil {
					t.Fatalf("unexpected reply %s", r.Summary())
				}
				return
			}
			if r == nil || r.MessageType() != tt.typ {
				t.Fatalf("reply %v, want %s", r, tt.typ)
			}
			if !r.YourIPAddr.Equal(net.IPv4zero) || !r.ServerIPAddr.Equal(testServer) || !r.ServerIdentifier().Equal(testServer) ||
				r.ClassIdentifier() != "PXEClient" || r.BootFileName != tt.file || r.Options.Has(dhcpv4.OptionVendorSpecificInformation) != tt.has43 {
				t.Errorf("reply %s", r.Summary())
			}
			if tt.req.Options.Has(dhcpv4.OptionClientMachineIdentifier) && !bytes.Equal(r.Options.Get(dhcpv4.OptionClientMachineIdentifier), tt.req.Options.Get(dhcpv4.OptionClientMachineIdentifier)) {
				t.Error("option 97 not mirrored")
			}
		})
	}
	// Unknown clients under the ignore rule get nothing, in either mode.
	ign := proxyServer(t, testPolicy(t, UnknownIgnore))
	if r, _ := ign.Reply(msg(t, dhcpv4.MessageTypeDiscover, biosPXE()...), false); r != nil {
		t.Errorf("ignored client answered: %s", r.Summary())
	}
}

// startServer runs s on a loopback socket and returns its address; the
// server stops and the test checks it returned at cleanup.
func startServer(t *testing.T, serve func(context.Context, net.PacketConn) error) *net.UDPAddr {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
		conn.Close()
	})
	return conn.LocalAddr().(*net.UDPAddr)
}

func client(t *testing.T, server *net.UDPAddr, mac net.HardwareAddr) *nclient4.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := nclient4.NewWithConn(conn, mac, nclient4.WithServerAddr(server), nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFullServerLoopback runs nclient4 against the server over loopback:
// DORA for a plain client and an iPXE client, RELEASE, garbage, a restart
// that keeps the lease.
func TestFullServerLoopback(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	leaseFile := filepath.Join(t.TempDir(), "leases.json")
	p := testPolicy(t, UnknownServe)
	s := fullServer(t, p, leaseFile, log)
	addr := startServer(t, s.Serve)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Garbage first: it must be ignored, and the server must keep going.
	g, _ := net.Dial("udp4", addr.String())
	g.Write([]byte("not DHCP at all"))
	g.Write(make([]byte, 300))
	g.Close()

	c := client(t, addr, testMAC)
	lease, err := c.Request(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lease.ACK.YourIPAddr.String() != "10.77.0.100" || lease.ACK.RootPath() != "" {
		t.Errorf("plain client ACK: %s", lease.ACK.Summary())
	}

	ipxeMAC := net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 2}
	ci := client(t, addr, ipxeMAC)
	il, err := ci.Request(ctx, ipxeClient()...)
	if err != nil {
		t.Fatal(err)
	}
	if il.ACK.YourIPAddr.String() != "10.77.0.101" || il.ACK.RootPath() != "iscsi:10.77.0.1:::1:iqn.2026-01.org.xpboot:disk" ||
		string(il.ACK.Options.Get(OptionInitiatorIQN)) != "iqn.2026-01.org.xpboot:client-52-54-00-77-00-02" {
		t.Errorf("iPXE ACK: %s", il.ACK.Summary())
	}
	// Two iPXE clients never share an initiator IQN.
	ci3 := client(t, addr, net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 3})
	il3, err := ci3.Request(ctx, ipxeClient()...)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(il3.ACK.Options.Get(OptionInitiatorIQN), il.ACK.Options.Get(OptionInitiatorIQN)) {
		t.Error("two clients got the same initiator IQN")
	}

	// RELEASE (no reply expected): send it raw.
	rel, _ := dhcpv4.NewReleaseFromACK(lease.ACK)
	rc, _ := net.Dial("udp4", addr.String())
	rc.Write(rel.ToBytes())
	rc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, held := s.cfg.Leases.Lookup(testMAC.String()); !held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("RELEASE not processed")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A restarted server (same lease file) gives the iPXE client its address back.
	s2 := fullServer(t, p, leaseFile, log)
	addr2 := startServer(t, s2.Serve)
	ci2 := client(t, addr2, ipxeMAC)
	il2, err := ci2.Request(ctx, ipxeClient()...)
	if err != nil {
		t.Fatal(err)
	}
	if il2.ACK.YourIPAddr.String() != "10.77.0.101" {
		t.Errorf("after restart: %s", il2.ACK.YourIPAddr)
	}

	out := logs.String()
	for _, w := range []string{"state=malformed", "client=52:54:00:77:00:02", "proto=dhcp", "state=sanboot", "state=released"} {
		if !strings.Contains(out, w) {
			t.Errorf("log lacks %q", w)
		}
	}
}

// TestProxyServerLoopback sends a BIOS PXE DISCOVER to port "67" and a UEFI
// REQUEST to port "4011", as hand-built packets, and reads the replies.
func TestProxyServerLoopback(t *testing.T) {
	s := proxyServer(t, testPolicy(t, UnknownServe))
	addr67 := startServer(t, s.Serve)
	addr4011 := startServer(t, s.ServePXE)
	ask := func(to *net.UDPAddr, m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
		t.Helper()
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.WriteTo(m.ToBytes(), to); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		r, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := ask(addr67, msg(t, dhcpv4.MessageTypeDiscover, biosPXE()...))
	if r.MessageType() != dhcpv4.MessageTypeOffer || r.BootFileName != "undionly.kpxe" || !r.YourIPAddr.Equal(net.IPv4zero) {
		t.Errorf("proxy offer: %s", r.Summary())
	}
	r = ask(addr4011, msg(t, dhcpv4.MessageTypeRequest, append(efiPXE(), dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 160)))...))
	if r.MessageType() != dhcpv4.MessageTypeAck || r.BootFileName != "ipxe.efi" {
		t.Errorf("4011 ack: %s", r.Summary())
	}
	// The 4011 request told us the client's address: TFTP events name the MAC.
	if got := s.Events().ClientFor(net.IPv4(10, 77, 0, 160)); got != testMAC.String() {
		t.Errorf("ClientFor = %s", got)
	}
}

func TestReplyAddr(t *testing.T) {
	if got := replyAddr(&net.UDPAddr{IP: net.IPv4zero, Port: 68}).String(); got != "255.255.255.255:68" {
		t.Errorf("unconfigured client: %s", got)
	}
	if got := replyAddr(&net.UDPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 67}).String(); got != "10.0.0.5:67" {
		t.Errorf("relay: %s", got)
	}
}

// FuzzReply feeds arbitrary packets through the library's parser and both
// server modes: no input may panic.
func FuzzReply(f *testing.F) {
	add := func(m *dhcpv4.DHCPv4) { f.Add(m.ToBytes()) }
	add(msg(f, dhcpv4.MessageTypeDiscover, ipxeClient()...))
	add(msg(f, dhcpv4.MessageTypeRequest, efiPXE()...))
	add(msg(f, dhcpv4.MessageTypeInform))
	full := fullServer(f, testPolicy(f, UnknownServe), "", nil)
	proxy := proxyServer(f, testPolicy(f, UnknownServe))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		for _, s := range []*DHCPServer{full, proxy} {
			for _, port := range []bool{false, true} {
				if r, err := s.Reply(m, port); err == nil && r != nil {
					if _, err := dhcpv4.FromBytes(r.ToBytes()); err != nil {
						t.Fatalf("reply does not parse: %v", err)
					}
				} else if err != nil && !errors.Is(err, ErrIgnoredClient) {
					t.Fatal(err)
				}
			}
		}
	})
}

var _ = netip.Addr{}

// TestServerComposition runs DHCP, PXE and TFTP under one Server: a
// failing extra service stops all of them with its error, and cancelling
// the context stops them with nil.
func TestServerComposition(t *testing.T) {
	listen := func() net.PacketConn {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	root, _ := tftpRoot(t)
	p := testPolicy(t, UnknownServe)
	tf, err := NewTFTPServer(TFTPConfig{Root: root, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	s := &Server{DHCP: proxyServer(t, p), DHCPConn: listen(), PXEConn: listen(), TFTP: tf, TFTPConn: listen(),
		Services: []func(context.Context) error{func(ctx context.Context) error {
			select {
			case <-time.After(100 * time.Millisecond):
				return boom
			case <-ctx.Done():
				return nil
			}
		}}}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Serve = %v, want boom", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a failing service did not stop the server")
	}

	tf2, _ := NewTFTPServer(TFTPConfig{Root: root, Policy: p})
	s = &Server{DHCP: proxyServer(t, p), DHCPConn: listen(), TFTP: tf2, TFTPConn: listen()}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- s.Serve(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not stop the server")
	}
}

// TestRelayedRequestIgnored: full mode serves its own link only, so a
// request a relay agent forwarded from another network gets no answer and a
// warning (once); proxy mode still answers relayed PXE clients.
func TestRelayedRequestIgnored(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	full := fullServer(t, testPolicy(t, UnknownServe), "", log)
	relayed := func() *dhcpv4.DHCPv4 {
		m := msg(t, dhcpv4.MessageTypeDiscover, ipxeClient()...)
		m.GatewayIPAddr = net.IPv4(192, 0, 2, 1)
		return m
	}
	for range 2 {
		if r, err := full.Reply(relayed(), false); r != nil || err != nil {
			t.Fatalf("relayed DISCOVER answered: %v %v", r, err)
		}
	}
	if out := logs.String(); strings.Count(out, "relayed DHCP request ignored") != 1 || !strings.Contains(out, "giaddr=192.0.2.1") {
		t.Errorf("log:\n%s", out)
	}
	if r, err := full.Reply(msg(t, dhcpv4.MessageTypeDiscover, ipxeClient()...), false); r == nil || err != nil {
		t.Errorf("a DISCOVER on the link: %v %v", r, err)
	}
	proxy := proxyServer(t, testPolicy(t, UnknownServe))
	m := msg(t, dhcpv4.MessageTypeDiscover, ipxeClient()...)
	m.GatewayIPAddr = net.IPv4(192, 0, 2, 1)
	if r, err := proxy.Reply(m, false); r == nil || err != nil {
		t.Errorf("proxy mode, relayed iPXE DISCOVER: %v %v", r, err)
	}
}
