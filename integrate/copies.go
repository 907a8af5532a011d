package integrate

import "github.com/xpboot/xpboot/drivers"

// copyDriverFiles plans the driver file copies of one package.
func (p *Plan) copyDriverFiles(pkg *drivers.Package, devs []*drivers.Device, tfs []*textFile) error {
	return nil
}

// tcpipFiles plans the file copies and loader patch a NIC needs.
func (p *Plan) tcpipFiles() error { return nil }
