package sanboot

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"
)

// ErrNoAddress is returned when the range has no free address.
var ErrNoAddress = errors.New("sanboot: no free address in the DHCP range")

// ErrNotOffered is returned by Bind for an address the table did not offer
// to, or lease to, that MAC.
var ErrNotOffered = errors.New("sanboot: address not offered to this client")

// maxRange bounds the range so allocation scans stay cheap.
const maxRange = 1 << 16

// Lease is one address held by one MAC.
type Lease struct {
	MAC      string     `json:"mac"`
	Addr     netip.Addr `json:"addr"`
	Expires  time.Time  `json:"expires"`
	Bound    bool       `json:"bound"` // acknowledged; false while only offered
	Hostname string     `json:"hostname,omitempty"`
}

// LeaseConfig configures a lease table.
type LeaseConfig struct {
	Start, End  netip.Addr            // the dynamic range, inclusive
	Reserved    map[netip.Addr]string // fixed addresses by address → MAC; never given to others
	File        string                // JSON file the table persists to; "" keeps it in memory
	OfferHold   time.Duration         // how long an unanswered offer holds its address (default 1 min)
	DeclineHold time.Duration         // how long a declined address is skipped (default 10 min)
	Now         func() time.Time      // clock (default time.Now)
}

// Leases is a lease table. Methods are safe for concurrent use.
type Leases struct {
	cfg      LeaseConfig
	mu       sync.Mutex
	byMAC    map[string]*Lease
	byAddr   map[netip.Addr]*Lease
	declined map[netip.Addr]time.Time
}

type leaseFile struct {
	Version int     `json:"version"`
	Leases  []Lease `json:"leases"`
}

// OpenLeases checks cfg and loads cfg.File when it exists; a missing file is
// an empty table.
func OpenLeases(cfg LeaseConfig) (*Leases, error) {
	if !cfg.Start.Is4() || !cfg.End.Is4() || cfg.End.Less(cfg.Start) {
		return nil, fmt.Errorf("sanboot: DHCP range %s-%s: want two IPv4 addresses, low to high", cfg.Start, cfg.End)
	}
	if n := u32(cfg.End) - u32(cfg.Start) + 1; n > maxRange || n == 0 {
		return nil, fmt.Errorf("sanboot: DHCP range %s-%s holds more than %d addresses", cfg.Start, cfg.End, maxRange)
	}
	if cfg.OfferHold <= 0 {
		cfg.OfferHold = time.Minute
	}
	if cfg.DeclineHold <= 0 {
		cfg.DeclineHold = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Leases{cfg: cfg, byMAC: map[string]*Lease{}, byAddr: map[netip.Addr]*Lease{}, declined: map[netip.Addr]time.Time{}}
	if cfg.File == "" {
		return l, nil
	}
	data, err := os.ReadFile(cfg.File)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sanboot: lease file: %w", err)
	}
	var f leaseFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("sanboot: lease file %s: %w", cfg.File, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("sanboot: lease file %s: version %d, want 1", cfg.File, f.Version)
	}
	for _, le := range f.Leases {
		if !le.Addr.Is4() || le.MAC == "" {
			continue
		}
		if _, dup := l.byAddr[le.Addr]; dup {
			continue
		}
		le := le
		l.byMAC[le.MAC] = &le
		l.byAddr[le.Addr] = &le
	}
	return l, nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrOf(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// InRange reports whether a is in the dynamic range.
func (l *Leases) InRange(a netip.Addr) bool {
	return a.Is4() && !a.Less(l.cfg.Start) && !l.cfg.End.Less(a)
}

// usable reports whether mac may take a now.
func (l *Leases) usable(a netip.Addr, mac string, now time.Time) bool {
	if owner, ok := l.cfg.Reserved[a]; ok && owner != mac {
		return false
	}
	if t, ok := l.declined[a]; ok && now.Before(t) {
		return false
	}
	le, ok := l.byAddr[a]
	return !ok || le.MAC == mac || now.After(le.Expires)
}

// Offer picks an address for mac and holds it for OfferHold: the fixed
// address if given, else the client's previous address, else the requested
// one if free, else the first free address of the range.
func (l *Leases) Offer(mac string, requested, fixed netip.Addr) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	pick := func() (netip.Addr, error) {
		if fixed.IsValid() {
			return fixed, nil
		}
		if le, ok := l.byMAC[mac]; ok && l.InRange(le.Addr) && l.usable(le.Addr, mac, now) {
			return le.Addr, nil
		}
		if requested.IsValid() && l.InRange(requested) && l.usable(requested, mac, now) {
			return requested, nil
		}
		var reuse netip.Addr
		for v := u32(l.cfg.Start); ; v++ {
			a := addrOf(v)
			if l.usable(a, mac, now) {
				if _, used := l.byAddr[a]; !used {
					return a, nil
				}
				if !reuse.IsValid() {
					reuse = a // expired lease of another client: last resort
				}
			}
			if v == u32(l.cfg.End) {
				break
			}
		}
		if reuse.IsValid() {
			return reuse, nil
		}
		return netip.Addr{}, ErrNoAddress
	}
	a, err := pick()
	if err != nil {
		return Lease{}, err
	}
	if le, ok := l.byMAC[mac]; ok && le.Bound && le.Addr == a && now.Before(le.Expires) {
		return *le, nil // a bound lease keeps its expiry until the REQUEST renews it
	}
	return *l.put(Lease{MAC: mac, Addr: a, Expires: now.Add(l.cfg.OfferHold)}), nil
}

// put stores le, dropping whatever held its MAC or address before.
func (l *Leases) put(le Lease) *Lease {
	if old, ok := l.byMAC[le.MAC]; ok {
		delete(l.byAddr, old.Addr)
	}
	if old, ok := l.byAddr[le.Addr]; ok {
		delete(l.byMAC, old.MAC)
	}
	p := &le
	l.byMAC[le.MAC] = p
	l.byAddr[le.Addr] = p
	return p
}

// Bind acknowledges addr for mac for d and persists the table. The address
// must be the one offered or leased to mac (or its fixed address).
func (l *Leases) Bind(mac string, addr netip.Addr, d time.Duration, hostname string) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	le, ok := l.byMAC[mac]
	if !ok || le.Addr != addr {
		// A client coming back after a restart of ours with a lease we
		// lost (INIT-REBOOT): accept it when the address is free.
		owner, res := l.cfg.Reserved[addr]
		switch {
		case res && owner == mac:
		case !res && l.InRange(addr) && l.usable(addr, mac, now):
		default:
			return Lease{}, ErrNotOffered
		}
	}
	p := l.put(Lease{MAC: mac, Addr: addr, Expires: now.Add(d), Bound: true, Hostname: hostname})
	return *p, l.saveLocked()
}

// Release ends mac's lease on addr and persists the table.
func (l *Leases) Release(mac string, addr netip.Addr) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.byMAC[mac]
	if !ok || le.Addr != addr {
		return false, nil
	}
	delete(l.byMAC, mac)
	delete(l.byAddr, addr)
	return true, l.saveLocked()
}

// Decline records that mac found addr in use by someone else: the lease is
// dropped and the address skipped for DeclineHold.
func (l *Leases) Decline(mac string, addr netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if le, ok := l.byMAC[mac]; ok && le.Addr == addr {
		delete(l.byMAC, mac)
		delete(l.byAddr, addr)
	}
	l.declined[addr] = l.cfg.Now().Add(l.cfg.DeclineHold)
	return l.saveLocked()
}

// Lookup returns mac's lease.
func (l *Leases) Lookup(mac string) (Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.byMAC[mac]
	if !ok {
		return Lease{}, false
	}
	return *le, true
}

// All returns every lease by address.
func (l *Leases) All() []Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Lease, 0, len(l.byMAC))
	for _, le := range l.byMAC {
		out = append(out, *le)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// saveLocked writes the bound leases to a temporary file in the same
// directory, syncs it and renames it over the file.
func (l *Leases) saveLocked() error {
	if l.cfg.File == "" {
		return nil
	}
	f := leaseFile{Version: 1, Leases: []Lease{}}
	for _, le := range l.byMAC {
		if le.Bound {
			f.Leases = append(f.Leases, *le)
		}
	}
	sort.Slice(f.Leases, func(i, j int) bool { return f.Leases[i].Addr.Less(f.Leases[j].Addr) })
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := atomicfile.Create(l.cfg.File, 0o600)
	if err != nil {
		return fmt.Errorf("sanboot: saving leases: %w", err)
	}
	if _, err = tmp.Write(append(data, '\n')); err != nil {
		tmp.Abort()
	} else {
		err = tmp.Commit()
	}
	if err != nil {
		return fmt.Errorf("sanboot: saving leases to %s: %w", l.cfg.File, err)
	}
	return nil
}
