package sanboot

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestLeases(t *testing.T) {
	clk := &fakeClock{time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	file := filepath.Join(t.TempDir(), "leases.json")
	cfg := LeaseConfig{Start: a("10.77.0.100"), End: a("10.77.0.102"), File: file, Now: clk.Now,
		Reserved: map[netip.Addr]string{a("10.77.0.101"): "52:54:00:00:00:ff", a("10.77.0.50"): "52:54:00:00:00:fe"}}
	l, err := OpenLeases(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const m1, m2, m3, m4 = "52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03", "52:54:00:00:00:04"
	steps := []struct {
		name    string
		do      func() (Lease, error)
		want    string
		wantErr error
	}{
		{"first free", func() (Lease, error) { return l.Offer(m1, netip.Addr{}, netip.Addr{}) }, "10.77.0.100", nil},
		{"reserved skipped", func() (Lease, error) { return l.Offer(m2, a("10.77.0.101"), netip.Addr{}) }, "10.77.0.102", nil},
		{"same MAC same address", func() (Lease, error) { return l.Offer(m1, a("10.77.0.102"), netip.Addr{}) }, "10.77.0.100", nil},
		{"range full", func() (Lease, error) { return l.Offer(m3, netip.Addr{}, netip.Addr{}) }, "", ErrNoAddress},
		{"fixed outside range", func() (Lease, error) { return l.Offer("52:54:00:00:00:fe", netip.Addr{}, a("10.77.0.50")) }, "10.77.0.50", nil},
		{"bind offered", func() (Lease, error) { return l.Bind(m1, a("10.77.0.100"), time.Hour, "pc1") }, "10.77.0.100", nil},
		{"bind someone else's", func() (Lease, error) { return l.Bind(m3, a("10.77.0.100"), time.Hour, "") }, "", ErrNotOffered},
		{"bind reserved of another", func() (Lease, error) { return l.Bind(m3, a("10.77.0.101"), time.Hour, "") }, "", ErrNotOffered},
		{"bind outside range", func() (Lease, error) { return l.Bind(m3, a("10.77.0.200"), time.Hour, "") }, "", ErrNotOffered},
	}
	for _, s := range steps {
		le, err := s.do()
		if !errors.Is(err, s.wantErr) || s.wantErr == nil && le.Addr.String() != s.want {
			t.Fatalf("%s: got %v %v, want %s %v", s.name, le.Addr, err, s.want, s.wantErr)
		}
	}
	// An offer expires: m2's hold ends after a minute, then m3 gets it.
	clk.t = clk.t.Add(2 * time.Minute)
	if le, err := l.Offer(m3, netip.Addr{}, netip.Addr{}); err != nil || le.Addr != a("10.77.0.102") {
		t.Fatalf("after the offer hold: %v %v", le.Addr, err)
	}
	// Decline: the address is skipped for the decline hold.
	if err := l.Decline(m3, a("10.77.0.102")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Offer(m4, netip.Addr{}, netip.Addr{}); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("declined address offered again: %v", err)
	}
	clk.t = clk.t.Add(11 * time.Minute)
	if le, err := l.Offer(m4, netip.Addr{}, netip.Addr{}); err != nil || le.Addr != a("10.77.0.102") {
		t.Fatalf("after the decline hold: %v %v", le.Addr, err)
	}
	// Persistence: only bound leases, and they come back.
	l2, err := OpenLeases(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if all := l2.All(); len(all) != 1 || all[0].MAC != m1 || all[0].Hostname != "pc1" || !all[0].Bound {
		t.Fatalf("reloaded %+v", all)
	}
	if le, err := l2.Offer(m1, netip.Addr{}, netip.Addr{}); err != nil || le.Addr != a("10.77.0.100") || !le.Bound {
		t.Fatalf("restart lost the lease: %+v %v", le, err)
	}
	// Release.
	if ok, err := l2.Release(m1, a("10.77.0.101")); ok || err != nil {
		t.Fatalf("released a wrong address: %v %v", ok, err)
	}
	if ok, err := l2.Release(m1, a("10.77.0.100")); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	l3, err := OpenLeases(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l3.All()); n != 0 {
		t.Fatalf("release not persisted: %d leases", n)
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(file))
	if len(ents) != 1 {
		t.Errorf("directory holds %d files", len(ents))
	}
}

func TestLeasesBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	old := filepath.Join(dir, "v2.json")
	os.WriteFile(old, []byte(`{"version":2}`), 0o644)
	for _, cfg := range []LeaseConfig{
		{Start: a("10.0.0.9"), End: a("10.0.0.1")},
		{Start: a("10.0.0.1"), End: a("10.2.0.1")},
		{Start: a("fe80::1"), End: a("fe80::2")},
		{Start: a("10.0.0.1"), End: a("10.0.0.2"), File: bad},
		{Start: a("10.0.0.1"), End: a("10.0.0.2"), File: old},
	} {
		if _, err := OpenLeases(cfg); err == nil {
			t.Errorf("OpenLeases(%+v) accepted", cfg)
		}
	}
}
