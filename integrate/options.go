package integrate

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/xpboot/xpboot/drivers"
)

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
	// Backup makes Commit keep the original of every file it replaces or
	// removes as <name>.xpboot-orig (BackupSuffix) next to it, unless such
	// a copy already exists: a second run keeps the true originals.
	Backup bool `json:"backup,omitempty"`
}

// ErrOptions reports contradictory or malformed Options.
var ErrOptions = errors.New("integrate: invalid options")

// pciSlot is lspci's bus:device.function, with an optional domain 0000.
// (Compiled at first use: every xpboot command pays for what package
// variables compute at start.)
var pciSlot = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:0000:)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$`) })

// ParsePCISlot checks a PCI location as lspci prints it ("00:03.0",
// optionally with the domain "0000:") and returns it in the short,
// lower-case form bus:device.function. The device number is at most 0x1f.
func ParsePCISlot(s string) (string, error) {
	m := pciSlot().FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return "", fmt.Errorf("%w: PCI slot %q: want bus:device.function as lspci prints it, e.g. 00:03.0", ErrOptions, s)
	}
	if dev, _ := strconv.ParseUint(m[2], 16, 8); dev > 0x1f {
		return "", fmt.Errorf("%w: PCI slot %q: device %s is above 1f", ErrOptions, s, m[2])
	}
	return m[1] + ":" + m[2] + "." + m[3], nil
}

// Check validates the options and normalises Preconf. It returns warnings
// for choices that are allowed but probably wrong (a gateway outside the
// address's prefix) and an error wrapping ErrOptions for contradictions:
// a static address together with DHCP, a gateway without a static
// address, anything but IPv4, a malformed PCI slot.
func (o *Options) Check() (warnings []string, err error) {
	o.NIC = strings.TrimSpace(o.NIC)
	if o.Address.IsValid() {
		if o.DHCP {
			return nil, fmt.Errorf("%w: a static address (%s) and DHCP exclude each other", ErrOptions, o.Address)
		}
		if !o.Address.Addr().Is4() {
			return nil, fmt.Errorf("%w: address %s: Windows 2000/XP/2003 setup needs IPv4", ErrOptions, o.Address)
		}
		if b := o.Address.Bits(); b < 1 || b > 32 {
			return nil, fmt.Errorf("%w: address %s: prefix length %d is not 1–32", ErrOptions, o.Address, b)
		}
		if o.Address.Addr() == o.Address.Masked().Addr() && o.Address.Bits() < 31 {
			warnings = append(warnings, fmt.Sprintf("address %s is the network address of its prefix", o.Address))
		}
	}
	if o.Gateway.IsValid() {
		switch {
		case !o.Address.IsValid():
			return nil, fmt.Errorf("%w: a gateway (%s) needs a static address", ErrOptions, o.Gateway)
		case !o.Gateway.Is4():
			return nil, fmt.Errorf("%w: gateway %s: want IPv4", ErrOptions, o.Gateway)
		case !o.Address.Contains(o.Gateway):
			warnings = append(warnings, fmt.Sprintf("gateway %s is outside %s; Windows will not reach it", o.Gateway, o.Address.Masked()))
		case o.Gateway == o.Address.Addr():
			warnings = append(warnings, fmt.Sprintf("gateway %s is the adapter's own address", o.Gateway))
		}
	}
	if o.Preconf != "" {
		s, err := ParsePCISlot(o.Preconf)
		if err != nil {
			return nil, err
		}
		o.Preconf = s
	}
	return warnings, nil
}

// CheckDevices checks the adapter options against every device to be
// integrated: --nic must name a network adapter among them; the TCP/IP
// options without any network adapter are ignored, with a warning.
func (o *Options) CheckDevices(devs []*drivers.Device) (warnings []string, err error) {
	var nics []*drivers.Device
	for _, d := range devs {
		if isNIC(d) {
			nics = append(nics, d)
		}
	}
	if o.NIC != "" {
		for _, d := range nics {
			if MatchesID(d, o.NIC) {
				return nil, nil
			}
		}
		return nil, fmt.Errorf("%w: NIC %s is not a network adapter of the driver packages", ErrOptions, o.NIC)
	}
	if len(nics) == 0 {
		var set []string
		if o.Address.IsValid() {
			set = append(set, "address "+o.Address.String())
		}
		if o.DHCP {
			set = append(set, "DHCP")
		}
		if o.Preconf != "" {
			set = append(set, "PCI slot "+o.Preconf)
		}
		if len(set) > 0 {
			warnings = append(warnings, fmt.Sprintf("no network adapter among the drivers: %s ignored", strings.Join(set, ", ")))
		}
	}
	return warnings, nil
}
