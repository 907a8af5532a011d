package sanboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// ProbeDHCP looks for another DHCP server on iface before full mode starts:
// it broadcasts one DHCPDISCOVER from hwaddr (use a locally administered
// address, such as 02:78:70:62:6f:6f, so no real client's lease is touched)
// and returns the server identifier of the first offer, or nil when none
// arrived within timeout. Proxy servers do not answer it: it is not a PXE
// request. It needs CAP_NET_RAW (an AF_PACKET socket).
func ProbeDHCP(ctx context.Context, iface string, hwaddr net.HardwareAddr, timeout time.Duration) (net.IP, error) {
	c, err := nclient4.New(iface, nclient4.WithHWAddr(hwaddr), nclient4.WithTimeout(timeout), nclient4.WithRetry(1))
	if err != nil {
		return nil, fmt.Errorf("sanboot: probing for DHCP servers on %s: %w", iface, err)
	}
	defer c.Close()
	offer, err := c.DiscoverOffer(ctx)
	if errors.Is(err, nclient4.ErrNoResponse) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sanboot: probing for DHCP servers on %s: %w", iface, err)
	}
	if id := offer.ServerIdentifier(); id != nil {
		return id, nil
	}
	return offer.ServerIPAddr, nil
}
