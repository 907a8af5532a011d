package integrate

import "github.com/xpboot/xpboot/drivers"

// SetupRegHIV is the logical name of setupreg.hiv in Edit.File.
const SetupRegHIV = "setupreg.hiv"

// setupRegState is the in-memory setupreg.hiv of a plan.
type setupRegState struct{}

// A nicInstance is a network adapter's class instance, allocated by
// setupRegDriver: the software key Control\Class\{4D36E972-…}\NNNN and the
// NetCfgInstanceId written there. Later steps (hal.in_'s DelReg, the TCP/IP
// interface keys) refer to it.
type nicInstance struct {
	dev      *drivers.Device
	classKey string // `Control\Class\{4D36E972-E325-11CE-BFC1-08002BE10318}\0001`
	guid     string // `{…}` upper case
}

// setupRegSet plans one value in setupreg.hiv. key is written as for
// hivesys.inf, under `SYSTEM\CurrentControlSet\`; setupreg.hiv stores it
// under ControlSet001. typ is a drivers.Reg* type, data as for regLine.
func (p *Plan) setupRegSet(key, name string, typ uint32, data any, why string) error { return nil }

// setupRegDriver plans the setupreg.hiv keys of one driver package.
func (p *Plan) setupRegDriver(pkg *drivers.Package, devs []*drivers.Device) error { return nil }

// setupRegTCPIP plans the setupreg.hiv TCP/IP boot-start set.
func (p *Plan) setupRegTCPIP() error { return nil }

// finishSetupReg turns the in-memory hive into the planned file output.
func (p *Plan) finishSetupReg() error { return nil }
