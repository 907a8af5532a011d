package sanboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// Neighbor Discovery messages (RFC 4861 §4.1, §4.2, §4.6): just what the
// router advertiser reads and writes. The kernel fills and checks the ICMPv6
// checksum of raw ICMPv6 sockets, so these encoders leave it zero.

// ICMPv6 types of router discovery.
const (
	ICMPv6RouterSolicitation  = 133
	ICMPv6RouterAdvertisement = 134
)

// NDP option types (RFC 4861 §4.6).
const (
	ndpOptSourceLinkAddr = 1
	ndpOptPrefixInfo     = 3
)

// RA flags (RFC 4861 §4.2).
const (
	RAFlagManaged = 0x80 // M: addresses from DHCPv6
	RAFlagOther   = 0x40 // O: other configuration from DHCPv6
)

// ErrNDP is wrapped by every error about a malformed Neighbor Discovery
// message.
var ErrNDP = errors.New("sanboot: malformed neighbor discovery message")

// NDPError names what is wrong with a message and at which byte.
type NDPError struct {
	Off int
	Msg string
}

func (e *NDPError) Error() string {
	return fmt.Sprintf("sanboot: ICMPv6 message at byte %d: %s", e.Off, e.Msg)
}

// Unwrap makes errors.Is(err, ErrNDP) true.
func (e *NDPError) Unwrap() error { return ErrNDP }

// RouterSolicitation is a parsed RS.
type RouterSolicitation struct {
	// SourceLinkAddr is the source link-layer address option, nil when the
	// RS has none (it must have none when sent from ::).
	SourceLinkAddr net.HardwareAddr
}

// RouterAdvertisement is an RA as this package writes and reads it.
type RouterAdvertisement struct {
	CurHopLimit    uint8
	Flags          uint8 // RAFlagManaged, RAFlagOther
	RouterLifetime time.Duration
	ReachableTime  time.Duration
	RetransTimer   time.Duration
	// SourceLinkAddr is written as option 1 when set.
	SourceLinkAddr net.HardwareAddr
	// Prefixes counts the prefix information options of a parsed RA
	// (the encoder never writes any).
	Prefixes int
}

// ndpOptions walks the options from off on, checking each length, and calls
// f with every option's type, its body (after type and length) and offset.
func ndpOptions(b []byte, off int, f func(typ byte, body []byte, off int) error) error {
	for off < len(b) {
		if len(b)-off < 2 {
			return &NDPError{off, "truncated option header"}
		}
		n := int(b[off+1]) * 8
		if n == 0 {
			return &NDPError{off, fmt.Sprintf("option %d has length 0", b[off])}
		}
		if off+n > len(b) {
			return &NDPError{off, fmt.Sprintf("option %d of %d bytes runs past the end (%d bytes)", b[off], n, len(b))}
		}
		if err := f(b[off], b[off+2:off+n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// ParseRouterSolicitation checks an RS as RFC 4861 §6.1.1 asks of a router
// (type, code 0, at least 8 bytes, no option of length 0; no source
// link-layer option when the source is unspecified) and returns it. The
// hop limit (255) is the caller's to check: it is not in the ICMPv6 bytes.
// fromUnspecified says the IPv6 source was ::.
func ParseRouterSolicitation(b []byte, fromUnspecified bool) (RouterSolicitation, error) {
	var rs RouterSolicitation
	if len(b) < 8 {
		return rs, &NDPError{0, fmt.Sprintf("%d bytes, a router solicitation has at least 8", len(b))}
	}
	if b[0] != ICMPv6RouterSolicitation {
		return rs, &NDPError{0, fmt.Sprintf("ICMPv6 type %d is not a router solicitation", b[0])}
	}
	if b[1] != 0 {
		return rs, &NDPError{1, fmt.Sprintf("code %d, want 0", b[1])}
	}
	err := ndpOptions(b, 8, func(typ byte, body []byte, off int) error {
		if typ != ndpOptSourceLinkAddr {
			return nil // RFC 4861 §4.6: unknown options are skipped
		}
		if fromUnspecified {
			return &NDPError{off, "source link-layer address option in a solicitation from ::"}
		}
		if rs.SourceLinkAddr == nil && len(body) >= 6 {
			// Ethernet: 6 bytes and padding to 8 (RFC 2464 §6).
			rs.SourceLinkAddr = net.HardwareAddr(append([]byte(nil), body[:6]...))
		}
		return nil
	})
	return rs, err
}

// Marshal encodes the RA with a zero checksum.
func (ra RouterAdvertisement) Marshal() []byte {
	b := make([]byte, 16, 24)
	b[0] = ICMPv6RouterAdvertisement
	b[4] = ra.CurHopLimit
	b[5] = ra.Flags
	binary.BigEndian.PutUint16(b[6:], uint16(min(ra.RouterLifetime/time.Second, 0xffff)))
	binary.BigEndian.PutUint32(b[8:], uint32(min(ra.ReachableTime/time.Millisecond, 0xffffffff)))
	binary.BigEndian.PutUint32(b[12:], uint32(min(ra.RetransTimer/time.Millisecond, 0xffffffff)))
	if len(ra.SourceLinkAddr) > 0 {
		n := (2 + len(ra.SourceLinkAddr) + 7) / 8 * 8
		opt := make([]byte, n)
		opt[0], opt[1] = ndpOptSourceLinkAddr, byte(n/8)
		copy(opt[2:], ra.SourceLinkAddr)
		b = append(b, opt...)
	}
	return b
}

// ParseRouterAdvertisement reads an RA (another router's, or one of ours in
// tests), checking type, code, length and option lengths.
func ParseRouterAdvertisement(b []byte) (RouterAdvertisement, error) {
	var ra RouterAdvertisement
	if len(b) < 16 {
		return ra, &NDPError{0, fmt.Sprintf("%d bytes, a router advertisement has at least 16", len(b))}
	}
	if b[0] != ICMPv6RouterAdvertisement {
		return ra, &NDPError{0, fmt.Sprintf("ICMPv6 type %d is not a router advertisement", b[0])}
	}
	if b[1] != 0 {
		return ra, &NDPError{1, fmt.Sprintf("code %d, want 0", b[1])}
	}
	ra.CurHopLimit, ra.Flags = b[4], b[5]
	ra.RouterLifetime = time.Duration(binary.BigEndian.Uint16(b[6:])) * time.Second
	ra.ReachableTime = time.Duration(binary.BigEndian.Uint32(b[8:])) * time.Millisecond
	ra.RetransTimer = time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Millisecond
	err := ndpOptions(b, 16, func(typ byte, body []byte, off int) error {
		switch typ {
		case ndpOptSourceLinkAddr:
			if ra.SourceLinkAddr == nil && len(body) >= 6 {
				ra.SourceLinkAddr = net.HardwareAddr(append([]byte(nil), body[:6]...))
			}
		case ndpOptPrefixInfo:
			ra.Prefixes++
		}
		return nil
	})
	return ra, err
}

// EndsIPXEWait is the RA xpboot sends: no default router (lifetime 0), no
// prefixes, M and O clear, so iPXE's IPv6 autoconfiguration finishes at
// once (ipxe src/net/ndp.c stops its router discovery on the first RA and
// starts DHCPv6 only for M or O) and no host makes a route through us.
func EndsIPXEWait(mac net.HardwareAddr) RouterAdvertisement {
	return RouterAdvertisement{SourceLinkAddr: mac}
}

// configuresHosts says whether an RA tells hosts anything (a default
// router, a prefix, DHCPv6): such an RA comes from a real IPv6 router, and
// xpboot's own advertisements would only race with it.
func (ra RouterAdvertisement) configuresHosts() bool {
	return ra.RouterLifetime > 0 || ra.Prefixes > 0 || ra.Flags&(RAFlagManaged|RAFlagOther) != 0
}
