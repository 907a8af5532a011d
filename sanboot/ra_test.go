package sanboot

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fakeNDP records what the advertiser sends; the scheduler tests drive
// receive and runDue directly with a fake clock.
type fakeNDP struct {
	mac  net.HardwareAddr
	ll   netip.Addr
	noLL bool
	sent []fakeSend
}

type fakeSend struct {
	b   []byte
	dst netip.Addr
}

func (f *fakeNDP) ReadNDP([]byte) (int, netip.Addr, int, error) {
	return 0, netip.Addr{}, 0, errors.New("not used")
}
func (f *fakeNDP) WriteNDP(b []byte, dst netip.Addr) error {
	if f.noLL {
		return errNoLinkLocal
	}
	f.sent = append(f.sent, fakeSend{append([]byte(nil), b...), dst})
	return nil
}
func (f *fakeNDP) SetReadDeadline(time.Time) error { return nil }
func (f *fakeNDP) HardwareAddr() net.HardwareAddr  { return f.mac }
func (f *fakeNDP) LinkLocal() (netip.Addr, bool)   { return f.ll, !f.noLL }

// rsFrom is a router solicitation with a source link-layer option.
func rsFrom(mac string) []byte {
	b := []byte{ICMPv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0, ndpOptSourceLinkAddr, 1}
	m, _ := net.ParseMAC(mac)
	return append(b, m...)
}

func TestRouterAdvertiserSchedule(t *testing.T) {
	client1, client2 := netip.MustParseAddr("fe80::5054:ff:fe77:1"), netip.MustParseAddr("fe80::5054:ff:fe77:2")
	router := netip.MustParseAddr("fe80::1")
	foreignRA := RouterAdvertisement{RouterLifetime: 1800 * time.Second}.Marshal()
	type step struct {
		at    time.Duration // clock before this step
		b     []byte        // received message (nil: only run due sends)
		src   netip.Addr
		hops  int
		sends []string // destinations sent in this step, in order
	}
	tests := []struct {
		name   string
		noLL   bool
		steps  []step
		events []string // "client state" of the event log, in order
	}{
		{name: "answer by multicast", steps: []step{
			{b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255, sends: []string{"ff02::1"}},
		}, events: []string{"52:54:00:77:00:01 ipv6-ra"}},
		{name: "second client inside the gap gets unicast", steps: []step{
			{b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255, sends: []string{"ff02::1"}},
			{at: time.Second, b: rsFrom("52:54:00:77:00:02"), src: client2, hops: 255, sends: []string{client2.String()}},
			{at: 4 * time.Second, b: rsFrom("52:54:00:77:00:02"), src: client2, hops: 255, sends: []string{"ff02::1"}},
		}, events: []string{"52:54:00:77:00:01 ipv6-ra", "52:54:00:77:00:02 ipv6-ra", "52:54:00:77:00:02 ipv6-ra"}},
		{name: "solicitation from :: inside the gap waits for the next multicast", steps: []step{
			{b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255, sends: []string{"ff02::1"}},
			{at: time.Second, b: []byte{ICMPv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0}, src: netip.IPv6Unspecified(), hops: 255},
			{at: 3 * time.Second, sends: []string{"ff02::1"}},
		}, events: []string{"52:54:00:77:00:01 ipv6-ra", ":: ipv6-ra"}},
		{name: "hop limit not 255", steps: []step{
			{b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 64},
		}, events: []string{}},
		{name: "link-layer option from ::", steps: []step{
			{b: rsFrom("52:54:00:77:00:01"), src: netip.IPv6Unspecified(), hops: 255},
		}, events: []string{}},
		{name: "zero-length option", steps: []step{
			{b: []byte{ICMPv6RouterSolicitation, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, src: client1, hops: 255},
		}, events: []string{}},
		{name: "another router configures the link", steps: []step{
			{b: foreignRA, src: router, hops: 255},
			{at: time.Second, b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255},
			{at: 2 * time.Second},
		}, events: []string{"52:54:00:77:00:01 ignored"}},
		{name: "another xpboot saying nothing does not silence us", steps: []step{
			{b: EndsIPXEWait(nil).Marshal(), src: router, hops: 255},
			{at: time.Second, b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255, sends: []string{"ff02::1"}},
		}, events: []string{"52:54:00:77:00:01 ipv6-ra"}},
		{name: "forged RA from off the link is ignored", steps: []step{
			{b: foreignRA, src: router, hops: 64},
			{at: time.Second, b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255, sends: []string{"ff02::1"}},
		}, events: []string{"52:54:00:77:00:01 ipv6-ra"}},
		{name: "no link-local address yet: retried", noLL: true, steps: []step{
			{b: rsFrom("52:54:00:77:00:01"), src: client1, hops: 255},
		}, events: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			now := base
			ev := NewEventLog(nil, 20)
			var events []string
			ev.Watch(func(e Event) { events = append(events, e.Client+" "+e.State.String()) })
			r := NewRouterAdvertiser(RAConfig{Interface: "tap0", MaxDelay: -1, Events: ev, Now: func() time.Time { return now },
				Rand: rand.New(rand.NewPCG(1, 2))})
			conn := &fakeNDP{mac: net.HardwareAddr{2, 0, 0, 0, 0, 1}, ll: netip.MustParseAddr("fe80::1:1"), noLL: tc.noLL}
			st := &raState{nextUnsolicited: base.Add(time.Hour), foreign: map[netip.Addr]bool{}}
			for i, s := range tc.steps {
				now = base.Add(s.at)
				conn.sent = nil
				if s.b != nil {
					r.receive(conn, st, s.b, s.src, s.hops)
				}
				r.runDue(conn, st)
				var got []string
				for _, m := range conn.sent {
					got = append(got, m.dst.String())
					ra, err := ParseRouterAdvertisement(m.b)
					if err != nil {
						t.Fatalf("step %d: sent %x: %v", i, m.b, err)
					}
					if ra.RouterLifetime != 0 || ra.Flags != 0 || ra.Prefixes != 0 || !bytes.Equal(ra.SourceLinkAddr, conn.mac) {
						t.Errorf("step %d: sent %+v", i, ra)
					}
				}
				if strings.Join(got, " ") != strings.Join(s.sends, " ") {
					t.Errorf("step %d: sent to %v, want %v", i, got, s.sends)
				}
			}
			if strings.Join(events, ",") != strings.Join(tc.events, ",") {
				t.Errorf("events %v, want %v", events, tc.events)
			}
			if tc.noLL && (st.multicastAt.IsZero() || len(st.multicastFor) != 1) {
				t.Errorf("answer dropped instead of retried: %+v", st)
			}
		})
	}
}

func TestNDPCodec(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 1}
	b := EndsIPXEWait(mac).Marshal()
	want := []byte{134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0, 0x77, 0, 1}
	if !bytes.Equal(b, want) {
		t.Fatalf("RA % x, want % x", b, want)
	}
	ra, err := ParseRouterAdvertisement(b)
	if err != nil || ra.configuresHosts() || !bytes.Equal(ra.SourceLinkAddr, mac) {
		t.Fatalf("parsed %+v %v", ra, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		un   bool
		want string
	}{
		{"short", []byte{133, 0, 0}, false, "at byte 0: 3 bytes"},
		{"type", []byte{134, 0, 0, 0, 0, 0, 0, 0}, false, "type 134 is not a router solicitation"},
		{"code", []byte{133, 1, 0, 0, 0, 0, 0, 0}, false, "at byte 1: code 1"},
		{"truncated option", []byte{133, 0, 0, 0, 0, 0, 0, 0, 1}, false, "at byte 8: truncated option header"},
		{"option past end", []byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0}, false, "at byte 8: option 1 of 16 bytes runs past the end"},
		{"lladdr from ::", rsFrom("52:54:00:77:00:01"), true, "from ::"},
	} {
		_, err := ParseRouterSolicitation(tc.b, tc.un)
		if err == nil || !errors.Is(err, ErrNDP) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	rs, err := ParseRouterSolicitation(append(rsFrom("52:54:00:77:00:01"), 99, 1, 0, 0, 0, 0, 0, 0), false)
	if err != nil || rs.SourceLinkAddr.String() != "52:54:00:77:00:01" {
		t.Errorf("RS with an unknown option: %+v %v", rs, err)
	}
}

func FuzzParseRouterSolicitation(f *testing.F) {
	f.Add(rsFrom("52:54:00:77:00:01"), false)
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0}, true)
	f.Add(EndsIPXEWait(net.HardwareAddr{1, 2, 3, 4, 5, 6}).Marshal(), false)
	f.Fuzz(func(t *testing.T, b []byte, un bool) {
		rs, err := ParseRouterSolicitation(b, un)
		if err == nil && un && rs.SourceLinkAddr != nil {
			t.Fatal("link-layer address accepted from ::")
		}
		if ra, err := ParseRouterAdvertisement(b); err == nil {
			// What we write, we read back the same.
			again, err := ParseRouterAdvertisement(RouterAdvertisement{CurHopLimit: ra.CurHopLimit, Flags: ra.Flags,
				RouterLifetime: ra.RouterLifetime, ReachableTime: ra.ReachableTime, RetransTimer: ra.RetransTimer,
				SourceLinkAddr: ra.SourceLinkAddr}.Marshal())
			if err != nil || again.RouterLifetime != ra.RouterLifetime || again.Flags != ra.Flags || !bytes.Equal(again.SourceLinkAddr, ra.SourceLinkAddr) {
				t.Fatalf("round trip: %+v -> %+v %v", ra, again, err)
			}
		}
	})
}
