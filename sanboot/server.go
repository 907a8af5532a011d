package sanboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Server runs the network boot services together, pixiecore style: the
// caller opens every socket first (ListenDHCP, net.ListenPacket), then Serve
// runs each loop in a goroutine; the first failure cancels the others, and
// Serve returns once all have stopped. Nil fields are skipped, so a
// `--dhcp off` server has only TFTP (or nothing but Services).
type Server struct {
	DHCP     *DHCPServer
	DHCPConn net.PacketConn // port 67
	PXEConn  net.PacketConn // port 4011 (proxy mode, UEFI); optional
	TFTP     *TFTPServer
	TFTPConn net.PacketConn // port 69
	// RA answers IPv6 router solicitations on RAConn (optional).
	RA     *RouterAdvertiser
	RAConn RAConn
	// Services are further loops run under the same context, e.g. the
	// iSCSI target's accept loop. Each must return when ctx ends.
	Services []func(ctx context.Context) error
}

// Serve runs everything until ctx ends (returning nil) or one part fails
// (returning its error after stopping the rest). It does not close the
// connections, except TFTPConn, which pin/tftp closes on shutdown.
func (s *Server) Serve(ctx context.Context) error {
	type part struct {
		name string
		run  func(context.Context) error
	}
	var parts []part
	if s.DHCP != nil {
		if s.DHCPConn == nil {
			return errors.New("sanboot: DHCP server without a socket")
		}
		parts = append(parts, part{"dhcp", func(ctx context.Context) error { return s.DHCP.Serve(ctx, s.DHCPConn) }})
		if s.PXEConn != nil {
			parts = append(parts, part{"pxe", func(ctx context.Context) error { return s.DHCP.ServePXE(ctx, s.PXEConn) }})
		}
	}
	if s.TFTP != nil {
		if s.TFTPConn == nil {
			return errors.New("sanboot: TFTP server without a socket")
		}
		parts = append(parts, part{"tftp", func(ctx context.Context) error { return s.TFTP.Serve(ctx, s.TFTPConn) }})
	}
	if s.RA != nil && s.RAConn != nil {
		parts = append(parts, part{"ipv6-ra", func(ctx context.Context) error { return s.RA.Serve(ctx, s.RAConn) }})
	}
	for i, f := range s.Services {
		parts = append(parts, part{fmt.Sprintf("service %d", i), f})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.run(ctx)
			if err == nil && ctx.Err() == nil {
				err = fmt.Errorf("sanboot: %s stopped unexpectedly", p.name)
			}
			if err != nil {
				once.Do(func() { first = fmt.Errorf("%s: %w", p.name, err) })
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}
