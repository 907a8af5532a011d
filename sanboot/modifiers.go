package sanboot

import (
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Each policy of a reply is one named dhcpv4.Modifier; a reply is
// dhcpv4.NewReplyFromRequest(req, modifiers...).

// WithSANBoot gives an iPXE client the SAN answer: option 17 root-path,
// option 203 initiator IQN, and option 175 with the CHAP credentials,
// keep-san and skip-san-boot. noPXEDHCP (full mode) tells iPXE not to wait
// for ProxyDHCP offers.
func WithSANBoot(c Client, noPXEDHCP bool) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		d.UpdateOption(OptRootPath(c.Target))
		WithInitiatorIQN(c.InitiatorIQN)(d)
		WithIPXESettings(IPXESettings{
			Username:        c.Target.CHAPUser,
			Password:        c.Target.CHAPSecret,
			ReverseUsername: c.Target.MutualUser,
			ReversePassword: c.Target.MutualSecret,
			KeepSAN:         c.KeepSAN,
			SkipSANBoot:     c.SkipSANBoot,
			NoPXEDHCP:       noPXEDHCP,
		})(d)
	}
}

// WithIPXESettings sets option 175, or removes it when s is empty.
func WithIPXESettings(s IPXESettings) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		if b := s.ToBytes(); len(b) == 0 {
			d.DeleteOption(OptionIPXEEncap)
			return
		}
		d.UpdateOption(OptIPXE(s))
	}
}

// WithInitiatorIQN sets option 203 so that every client logs in under its
// own name; iPXE's default name collides on machines with a blank SMBIOS
// UUID. An empty IQN leaves the option out.
func WithInitiatorIQN(iqn string) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		if iqn == "" {
			d.DeleteOption(OptionInitiatorIQN)
			return
		}
		d.UpdateOption(OptInitiatorIQN(iqn))
	}
}

// WithScript gives an iPXE client its per-client boot script by TFTP instead
// of a root-path (proxy mode needs it: iPXE takes a proxy offer only with
// siaddr and a file).
func WithScript(server net.IP, mac net.HardwareAddr, iqn string) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		WithBootFile(server, ScriptName(mac))(d)
		WithInitiatorIQN(iqn)(d)
	}
}

// WithBootFile sets the next server (siaddr) and the boot file name.
func WithBootFile(server net.IP, file string) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		d.ServerIPAddr = server
		d.BootFileName = file
	}
}

// WithChainload gives a plain PXE ROM the iPXE binary for its firmware
// (option 93): this and Classify break the chainload loop. A firmware with
// no binary gets no file.
func WithChainload(req *dhcpv4.DHCPv4, files BootFiles, server net.IP) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		if f := files.For(FirmwareOf(req)); f != "" {
			WithBootFile(server, f)(d)
		}
	}
}

// WithPXEClass marks a reply as carrying PXE boot information: option 60
// PXEClient, the client's UUID (97) mirrored as PXE 2.1 requires, and
// option 43 telling BIOS ROMs to skip boot server discovery.
func WithPXEClass(req *dhcpv4.DHCPv4) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		d.UpdateOption(OptPXEClient())
		if v := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); v != nil {
			d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, v))
		}
		d.UpdateOption(OptPXEVendor(PXEVendor{DiscoveryControl: PXEDiscoverySkip}))
	}
}

// WithProxyOffer turns a reply into a ProxyDHCP answer: no address
// (yiaddr 0), this server as siaddr and server identifier, and the PXE
// class options. A UEFI ROM's OFFER on port 67 carries neither option 43
// nor a file, so that the ROM comes to port 4011 for them (OVMF does;
// research/netboot.md §2.5); pass atPXEPort for the 4011 answer. An ACK
// always names the file: no further step would bring it.
func WithProxyOffer(req *dhcpv4.DHCPv4, server net.IP, atPXEPort bool) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		d.YourIPAddr = net.IPv4zero
		d.ServerIPAddr = server
		d.UpdateOption(dhcpv4.OptServerIdentifier(server))
		WithPXEClass(req)(d)
		if Classify(req) == KindPXE && FirmwareOf(req) == FirmwareEFI && !atPXEPort && d.MessageType() == dhcpv4.MessageTypeOffer {
			d.DeleteOption(dhcpv4.OptionVendorSpecificInformation)
			d.BootFileName = ""
		}
	}
}

// Network is what full mode tells clients about the link.
type Network struct {
	ServerIP  net.IP
	Netmask   net.IPMask
	Router    net.IP   // nil: no option 3
	DNS       []net.IP // nil: no option 6
	LeaseTime time.Duration
}

// WithLease hands out a lease: yiaddr, lease time, T1/T2, netmask, router,
// DNS and server identifier. A zero lease time is the INFORM answer
// (configuration only).
func WithLease(addr net.IP, n Network, leaseTime time.Duration) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		if addr != nil {
			d.YourIPAddr = addr
		}
		if leaseTime > 0 {
			d.UpdateOption(dhcpv4.OptIPAddressLeaseTime(leaseTime))
			d.UpdateOption(dhcpv4.OptRenewTimeValue(leaseTime / 2))
			d.UpdateOption(dhcpv4.OptRebindingTimeValue(leaseTime * 7 / 8))
		}
		d.UpdateOption(dhcpv4.OptServerIdentifier(n.ServerIP))
		if n.Netmask != nil {
			d.UpdateOption(dhcpv4.OptSubnetMask(n.Netmask))
		}
		if n.Router != nil {
			d.UpdateOption(dhcpv4.OptRouter(n.Router))
		}
		if len(n.DNS) > 0 {
			d.UpdateOption(dhcpv4.OptDNS(n.DNS...))
		}
	}
}

// WithHostName sets option 12 when name is not empty.
func WithHostName(name string) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		if name != "" {
			d.UpdateOption(dhcpv4.OptHostName(name))
		}
	}
}

// WithoutGateway removes option 3: the Microsoft iSCSI boot initiator pins a
// route to the target through the iBFT gateway (KB 960104), so Windows
// clients may boot better without one. Apply it after WithLease.
func WithoutGateway() dhcpv4.Modifier {
	return dhcpv4.WithoutOption(dhcpv4.OptionRouter)
}

// ScriptName is the TFTP file name of a client's generated boot script.
func ScriptName(mac net.HardwareAddr) string {
	return "xpboot-" + strings.ReplaceAll(mac.String(), ":", "-") + ".ipxe"
}

// ParseScriptName returns the MAC a script file name is for.
func ParseScriptName(name string) (net.HardwareAddr, bool) {
	s, ok := strings.CutPrefix(name, "xpboot-")
	if !ok {
		return nil, false
	}
	s, ok = strings.CutSuffix(s, ".ipxe")
	if !ok || len(s) != 17 {
		return nil, false
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, false
	}
	return mac, true
}
