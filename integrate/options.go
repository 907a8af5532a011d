package integrate

import "net/netip"

// Options are the integration's choices beyond the driver packages.
type Options struct {
	// NIC is the hardware ID (as on a model line, case-insensitive) of the
	// network adapter that gets the TCP/IP settings below; empty means the
	// first network adapter integrated.
	NIC string `json:"nic,omitempty"`
	// Address is the static fallback address of that adapter
	// (Tcpip\Parameters\Interfaces\{GUID} IPAddress/SubnetMask); unset
	// means 0.0.0.0. Gateway is its DefaultGateway, unset for none.
	Address netip.Prefix `json:"address,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	// DHCP asks for EnableDHCP=1 on the adapter instead of a static address.
	DHCP bool `json:"dhcp,omitempty"`
	// Preconf is the PCI location of the NIC (bus:device.function, as
	// lspci prints it) whose Enum\PCI instance is pre-created so the NIC is
	// bound without NICBootConf; empty for the critical-device path only.
	Preconf string `json:"preconf,omitempty"`
}
