package sanboot

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Option codes this package adds to dhcpv4's named ones.
const (
	OptionIPXEEncap    = dhcpv4.GenericOptionCode(175) // iPXE encapsulated settings
	OptionInitiatorIQN = dhcpv4.GenericOptionCode(203) // iPXE initiator-iqn
)

// iPXE option 175 sub-option codes (ipxe/ipxe:src/include/ipxe/dhcp.h).
const (
	IPXEPriority        = 1   // int8, higher wins among offers
	IPXEKeepSAN         = 8   // uint8
	IPXESkipSANBoot     = 9   // uint8
	IPXEFeatureISCSI    = 17  // sent by iPXE: built with iSCSI
	IPXENoPXEDHCP       = 176 // uint8: do not wait for ProxyDHCP
	IPXEBusID           = 177 // sent by iPXE
	IPXESANFilename     = 188 // string
	IPXEUsername        = 190 // string
	IPXEPassword        = 191 // string
	IPXEReverseUsername = 192 // string
	IPXEReversePassword = 193 // string
	IPXEVersion         = 235 // sent by iPXE
)

// PXE option 43 sub-option codes (PXE 2.1 spec).
const (
	PXEDiscoveryControl = 6
	// PXEDiscoverySkip is discovery control bit 3: skip boot server
	// discovery and use the boot file of this offer.
	PXEDiscoverySkip = 8
)

// ErrOption is wrapped by every error from decoding an option this package
// parses itself.
var ErrOption = errors.New("sanboot: malformed option")

// Encapsulated is a set of sub-options (RFC 2132 §8.4 vendor-encapsulated
// form: code, length, value; 0 is padding, 255 ends the list).
type Encapsulated map[uint8][]byte

// FromBytes decodes sub-options. A repeated code is concatenated, as RFC
// 3396 asks for long options. It never reads past data.
func (e Encapsulated) FromBytes(data []byte) error {
	for i := 0; i < len(data); {
		code := data[i]
		i++
		switch code {
		case 0:
			continue
		case 255:
			return nil
		}
		if i >= len(data) {
			return fmt.Errorf("%w: sub-option %d at byte %d has no length", ErrOption, code, i-1)
		}
		n := int(data[i])
		i++
		if i+n > len(data) {
			return fmt.Errorf("%w: sub-option %d at byte %d: length %d exceeds the %d bytes left", ErrOption, code, i-2, n, len(data)-i)
		}
		e[code] = append(e[code], data[i:i+n]...)
		i += n
	}
	return nil
}

// ToBytes encodes the sub-options in ascending code order, splitting values
// longer than 255 bytes into repeated sub-options.
func (e Encapsulated) ToBytes() []byte {
	var b []byte
	for _, c := range e.codes() {
		v := e[c]
		for {
			n := min(len(v), 255)
			b = append(b, c, byte(n))
			b = append(b, v[:n]...)
			v = v[n:]
			if len(v) == 0 {
				break
			}
		}
	}
	return b
}

func (e Encapsulated) codes() []uint8 {
	cs := make([]uint8, 0, len(e))
	for c := range e {
		if c != 0 && c != 255 {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	return cs
}

// String lists the sub-options as code=hex.
func (e Encapsulated) String() string {
	var parts []string
	for _, c := range e.codes() {
		parts = append(parts, fmt.Sprintf("%d=%x", c, e[c]))
	}
	return strings.Join(parts, " ")
}

// IPXESettings is option 175, iPXE's encapsulated settings: the fields a
// server sends, plus what iPXE itself reports (Features, BusID, Version),
// and any other sub-option in Other.
type IPXESettings struct {
	Priority        int8
	KeepSAN         bool
	SkipSANBoot     bool
	NoPXEDHCP       bool
	SANFilename     string
	Username        string
	Password        string
	ReverseUsername string
	ReversePassword string
	// Sent by iPXE in requests.
	ISCSI   bool   // feature 175.17
	BusID   []byte // 175.177
	Version []byte // 175.235
	Other   Encapsulated
}

// FromBytes decodes option 175.
func (s *IPXESettings) FromBytes(data []byte) error {
	e := Encapsulated{}
	if err := e.FromBytes(data); err != nil {
		return fmt.Errorf("option 175: %w", err)
	}
	*s = IPXESettings{}
	u8 := func(c uint8) (byte, bool) {
		v, ok := e[c]
		if !ok || len(v) == 0 {
			return 0, false
		}
		return v[len(v)-1], true
	}
	take := func(c uint8) []byte { v := e[c]; delete(e, c); return v }
	if v, ok := u8(IPXEPriority); ok {
		s.Priority = int8(v)
		delete(e, IPXEPriority)
	}
	for _, f := range []struct {
		c uint8
		p *bool
	}{{IPXEKeepSAN, &s.KeepSAN}, {IPXESkipSANBoot, &s.SkipSANBoot}, {IPXENoPXEDHCP, &s.NoPXEDHCP}, {IPXEFeatureISCSI, &s.ISCSI}} {
		if v, ok := u8(f.c); ok {
			*f.p = v != 0
			delete(e, f.c)
		}
	}
	s.SANFilename = string(take(IPXESANFilename))
	s.Username = string(take(IPXEUsername))
	s.Password = string(take(IPXEPassword))
	s.ReverseUsername = string(take(IPXEReverseUsername))
	s.ReversePassword = string(take(IPXEReversePassword))
	s.BusID = take(IPXEBusID)
	s.Version = take(IPXEVersion)
	if len(e) > 0 {
		s.Other = e
	}
	return nil
}

// encap returns the settings as sub-options.
func (s IPXESettings) encap() Encapsulated {
	e := Encapsulated{}
	for c, v := range s.Other {
		e[c] = append([]byte(nil), v...)
	}
	if s.Priority != 0 {
		e[IPXEPriority] = []byte{byte(s.Priority)}
	}
	for _, f := range []struct {
		c uint8
		b bool
	}{{IPXEKeepSAN, s.KeepSAN}, {IPXESkipSANBoot, s.SkipSANBoot}, {IPXENoPXEDHCP, s.NoPXEDHCP}, {IPXEFeatureISCSI, s.ISCSI}} {
		if f.b {
			e[f.c] = []byte{1}
		}
	}
	for _, f := range []struct {
		c uint8
		v []byte
	}{
		{IPXESANFilename, []byte(s.SANFilename)}, {IPXEUsername, []byte(s.Username)}, {IPXEPassword, []byte(s.Password)},
		{IPXEReverseUsername, []byte(s.ReverseUsername)}, {IPXEReversePassword, []byte(s.ReversePassword)},
		{IPXEBusID, s.BusID}, {IPXEVersion, s.Version},
	} {
		if len(f.v) > 0 {
			e[f.c] = f.v
		}
	}
	return e
}

// ToBytes encodes option 175.
func (s IPXESettings) ToBytes() []byte { return s.encap().ToBytes() }

// String describes the settings; secrets are shown only as their length.
func (s IPXESettings) String() string {
	var p []string
	add := func(k, v string) { p = append(p, k+"="+v) }
	if s.Priority != 0 {
		add("priority", strconv.Itoa(int(s.Priority)))
	}
	for _, f := range []struct {
		k string
		b bool
	}{{"keep-san", s.KeepSAN}, {"skip-san-boot", s.SkipSANBoot}, {"no-pxedhcp", s.NoPXEDHCP}, {"feature-iscsi", s.ISCSI}} {
		if f.b {
			add(f.k, "1")
		}
	}
	if s.SANFilename != "" {
		add("san-filename", strconv.Quote(s.SANFilename))
	}
	if s.Username != "" {
		add("username", strconv.Quote(s.Username))
	}
	if s.Password != "" {
		add("password", fmt.Sprintf("<%d chars>", len(s.Password)))
	}
	if s.ReverseUsername != "" {
		add("reverse-username", strconv.Quote(s.ReverseUsername))
	}
	if s.ReversePassword != "" {
		add("reverse-password", fmt.Sprintf("<%d chars>", len(s.ReversePassword)))
	}
	if len(s.BusID) > 0 {
		add("bus-id", fmt.Sprintf("%x", s.BusID))
	}
	if len(s.Version) > 0 {
		add("version", fmt.Sprintf("%x", s.Version))
	}
	if len(s.Other) > 0 {
		p = append(p, s.Other.String())
	}
	return "iPXE{" + strings.Join(p, " ") + "}"
}

// OptIPXE returns option 175 with the given settings.
func OptIPXE(s IPXESettings) dhcpv4.Option {
	return dhcpv4.Option{Code: OptionIPXEEncap, Value: s}
}

// GetIPXE returns the client's option 175, whether it was present, and a
// decoding error.
func GetIPXE(m *dhcpv4.DHCPv4) (IPXESettings, bool, error) {
	v := m.Options.Get(OptionIPXEEncap)
	if v == nil {
		return IPXESettings{}, false, nil
	}
	var s IPXESettings
	err := s.FromBytes(v)
	return s, true, err
}

// RootPath is option 17 as a Target.
type RootPath struct{ Target Target }

// ToBytes returns the root-path string.
func (r RootPath) ToBytes() []byte { return []byte(r.Target.RootPath()) }

// String returns the root-path string.
func (r RootPath) String() string { return r.Target.RootPath() }

// FromBytes parses an iSCSI root-path.
func (r *RootPath) FromBytes(data []byte) error {
	t, err := ParseRootPath(string(data))
	if err != nil {
		return err
	}
	r.Target = t
	return nil
}

// OptRootPath returns option 17 pointing at t.
func OptRootPath(t Target) dhcpv4.Option {
	return dhcpv4.Option{Code: dhcpv4.OptionRootPath, Value: RootPath{t}}
}

// InitiatorIQN is option 203, the name iPXE's initiator logs in with.
type InitiatorIQN string

// ToBytes returns the IQN.
func (q InitiatorIQN) ToBytes() []byte { return []byte(q) }

// String returns the IQN.
func (q InitiatorIQN) String() string { return string(q) }

// FromBytes reads the IQN.
func (q *InitiatorIQN) FromBytes(data []byte) error { *q = InitiatorIQN(data); return nil }

// OptInitiatorIQN returns option 203.
func OptInitiatorIQN(iqn string) dhcpv4.Option {
	return dhcpv4.Option{Code: OptionInitiatorIQN, Value: InitiatorIQN(iqn)}
}

// PXEVendor is option 43 as PXE 2.1 defines it for PXEClient replies.
type PXEVendor struct {
	DiscoveryControl uint8 // sub-option 6; PXEDiscoverySkip = use this offer's file
	Other            Encapsulated
}

// ToBytes encodes option 43.
func (p PXEVendor) ToBytes() []byte {
	e := Encapsulated{}
	for c, v := range p.Other {
		e[c] = v
	}
	if p.DiscoveryControl != 0 {
		e[PXEDiscoveryControl] = []byte{p.DiscoveryControl}
	}
	return append(e.ToBytes(), 255)
}

// FromBytes decodes option 43.
func (p *PXEVendor) FromBytes(data []byte) error {
	e := Encapsulated{}
	if err := e.FromBytes(data); err != nil {
		return fmt.Errorf("option 43: %w", err)
	}
	*p = PXEVendor{}
	if v, ok := e[PXEDiscoveryControl]; ok && len(v) > 0 {
		p.DiscoveryControl = v[len(v)-1]
		delete(e, PXEDiscoveryControl)
	}
	if len(e) > 0 {
		p.Other = e
	}
	return nil
}

// String describes option 43.
func (p PXEVendor) String() string {
	s := fmt.Sprintf("PXE{discovery-control=%d", p.DiscoveryControl)
	if p.DiscoveryControl&PXEDiscoverySkip != 0 {
		s += " (use boot file)"
	}
	if len(p.Other) > 0 {
		s += " " + p.Other.String()
	}
	return s + "}"
}

// OptPXEVendor returns option 43.
func OptPXEVendor(p PXEVendor) dhcpv4.Option {
	return dhcpv4.Option{Code: dhcpv4.OptionVendorSpecificInformation, Value: p}
}

// PXEClientClass is the option 60 vendor class of PXE clients and of every
// ProxyDHCP reply.
const PXEClientClass = "PXEClient"

// OptPXEClient returns option 60 "PXEClient".
func OptPXEClient() dhcpv4.Option { return dhcpv4.OptClassIdentifier(PXEClientClass) }

// Firmware is the boot environment a client's option 93 announces.
type Firmware int

// Firmware kinds.
const (
	FirmwareUnknown Firmware = iota
	FirmwareBIOS
	FirmwareEFI
)

// String names the firmware.
func (f Firmware) String() string {
	switch f {
	case FirmwareBIOS:
		return "bios"
	case FirmwareEFI:
		return "efi"
	}
	return "unknown"
}

// FirmwareOf reads option 93. No option 93 means BIOS, as PXE 2.1 ROMs
// predate it; EFI x86-64 (7) and EFI BC (9, an old misnumbering of 7) are
// the EFI builds Debian ships; anything else is unknown.
func FirmwareOf(m *dhcpv4.DHCPv4) Firmware {
	if !m.Options.Has(dhcpv4.OptionClientSystemArchitectureType) {
		return FirmwareBIOS
	}
	archs := m.ClientArch()
	if len(archs) == 0 {
		return FirmwareUnknown
	}
	switch archs[0] {
	case iana.INTEL_X86PC:
		return FirmwareBIOS
	case iana.EFI_X86_64, iana.EFI_BC:
		return FirmwareEFI
	}
	return FirmwareUnknown
}

// BootFiles names the iPXE binaries, relative to the TFTP root, handed to
// plain PXE ROMs.
type BootFiles struct {
	BIOS string // default "undionly.kpxe"
	EFI  string // default "ipxe.efi"
}

// DefaultBootFiles are Debian's iPXE builds in /usr/lib/ipxe.
var DefaultBootFiles = BootFiles{BIOS: "undionly.kpxe", EFI: "ipxe.efi"}

// For returns the file for a firmware, or "" when there is none.
func (b BootFiles) For(f Firmware) string {
	switch f {
	case FirmwareBIOS:
		return b.BIOS
	case FirmwareEFI:
		return b.EFI
	}
	return ""
}

// Kind is what a DHCP client is, as far as booting goes.
type Kind int

// Client kinds.
const (
	KindOther Kind = iota // no PXE: an ordinary DHCP client
	KindPXE               // a PXE ROM that is not iPXE: chainload iPXE
	KindIPXE              // iPXE: give it the SAN answer
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindPXE:
		return "pxe"
	case KindIPXE:
		return "ipxe"
	}
	return "other"
}

// Classify breaks the chainload loop: a request with option 175 or user
// class "iPXE" comes from iPXE; one whose vendor class starts with
// "PXEClient" from another PXE ROM; anything else is no network boot.
func Classify(m *dhcpv4.DHCPv4) Kind {
	if m.Options.Has(OptionIPXEEncap) {
		return KindIPXE
	}
	for _, uc := range m.UserClass() {
		if uc == "iPXE" {
			return KindIPXE
		}
	}
	if strings.HasPrefix(m.ClassIdentifier(), PXEClientClass) {
		return KindPXE
	}
	return KindOther
}
