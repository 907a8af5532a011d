package sanboot

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"
)

// NDPConn is a raw ICMPv6 socket bound to one interface that sees router
// solicitations and advertisements only, member of all-routers (ff02::2),
// and sends with hop limit 255 from the interface's link-local address. It
// implements RAConn.
type NDPConn struct {
	c     *net.IPConn
	ifi   *net.Interface
	oob   []byte
	rdErr error
}

// ListenNDP opens the ICMPv6 socket of iface. It needs root or
// CAP_NET_RAW, and IPv6 enabled on the interface.
func ListenNDP(iface string) (*NDPConn, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("sanboot: interface %s: %w", iface, err)
	}
	var serr error
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		err := rc.Control(func(fd uintptr) {
			s := int(fd)
			set := func(what string, err error) {
				if err != nil && serr == nil {
					serr = fmt.Errorf("%s: %w", what, err)
				}
			}
			set("SO_BINDTODEVICE", syscall.SetsockoptString(s, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, iface))
			set("IPV6_MULTICAST_HOPS", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, raHopLimit))
			set("IPV6_UNICAST_HOPS", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS, raHopLimit))
			set("IPV6_MULTICAST_LOOP", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_LOOP, 0))
			set("IPV6_MULTICAST_IF", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, ifi.Index))
			set("IPV6_RECVHOPLIMIT", syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_RECVHOPLIMIT, 1))
			// Linux's ICMPv6 filter: a set bit blocks the type.
			var f syscall.ICMPv6Filter
			for i := range f.Data {
				f.Data[i] = 0xffffffff
			}
			for _, t := range []int{ICMPv6RouterSolicitation, ICMPv6RouterAdvertisement} {
				f.Data[t>>5] &^= 1 << (uint(t) & 31)
			}
			set("ICMP6_FILTER", syscall.SetsockoptICMPv6Filter(s, syscall.IPPROTO_ICMPV6, syscall.ICMPV6_FILTER, &f))
			mreq := syscall.IPv6Mreq{Multiaddr: allRouters.As16(), Interface: uint32(ifi.Index)}
			set("joining ff02::2", syscall.SetsockoptIPv6Mreq(s, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, &mreq))
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("sanboot: ICMPv6 socket on %s: %w", iface, err)
	}
	return &NDPConn{c: pc.(*net.IPConn), ifi: ifi, oob: make([]byte, 128)}, nil
}

// ReadNDP implements RAConn.
func (c *NDPConn) ReadNDP(b []byte) (int, netip.Addr, int, error) {
	n, oobn, _, from, err := c.c.ReadMsgIP(b, c.oob)
	if err != nil {
		return 0, netip.Addr{}, 0, err
	}
	src, _ := netip.AddrFromSlice(from.IP)
	hops := -1
	if msgs, err := syscall.ParseSocketControlMessage(c.oob[:oobn]); err == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.IPPROTO_IPV6 && m.Header.Type == syscall.IPV6_HOPLIMIT && len(m.Data) >= 4 {
				hops = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
	}
	return n, src.Unmap(), hops, nil
}

// LinkLocal implements RAConn: the interface's first fe80::/10 address.
func (c *NDPConn) LinkLocal() (netip.Addr, bool) {
	addrs, err := c.ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
			ip, _ := netip.AddrFromSlice(n.IP)
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// WriteNDP implements RAConn. The source address is pinned with
// IPV6_PKTINFO, so the kernel never picks a global one (RFC 4861 §4.2:
// routers send from link-local addresses).
func (c *NDPConn) WriteNDP(b []byte, dst netip.Addr) error {
	src, ok := c.LinkLocal()
	if !ok {
		return errNoLinkLocal
	}
	// struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
	const pktinfoLen = 20
	oob := make([]byte, syscall.CmsgSpace(pktinfoLen))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO
	h.SetLen(syscall.CmsgLen(pktinfoLen))
	data := oob[syscall.CmsgLen(0):]
	a := src.As16()
	copy(data, a[:])
	binary.NativeEndian.PutUint32(data[16:], uint32(c.ifi.Index))
	_, _, err := c.c.WriteMsgIP(b, oob, &net.IPAddr{IP: dst.AsSlice(), Zone: c.ifi.Name})
	if err != nil && (errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EINVAL)) {
		// The address is still tentative (duplicate address detection).
		return errNoLinkLocal
	}
	return err
}

// SetReadDeadline implements RAConn.
func (c *NDPConn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// HardwareAddr implements RAConn.
func (c *NDPConn) HardwareAddr() net.HardwareAddr { return c.ifi.HardwareAddr }

// Close closes the socket.
func (c *NDPConn) Close() error { return c.c.Close() }
