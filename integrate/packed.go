package integrate

import "github.com/xpboot/xpboot/drivers"

// packedDriverINFs plans the INF patches of one package.
func (p *Plan) packedDriverINFs(pkg *drivers.Package, devs []*drivers.Device) error { return nil }

// packedTCPIP plans the packed-INF patches for TCP/IP boot start.
func (p *Plan) packedTCPIP() error { return nil }
