package sanboot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/iscsitarget/auth"
)

// DefaultISCSIPort is the iSCSI port an empty root-path port stands for.
const DefaultISCSIPort = 3260

// MinCHAPSecret and MaxCHAPSecret bound the CHAP secrets the Microsoft iSCSI
// initiator accepts (auth.CheckSecret, the one secret rule of xpboot);
// other lengths are refused here so that the boot does not fail later
// inside Windows.
const (
	MinCHAPSecret = auth.MinSecret
	MaxCHAPSecret = auth.MaxSecret
)

// ErrTarget is wrapped by every Target validation and root-path parse error.
var ErrTarget = errors.New("sanboot: bad target")

// Target is one iSCSI disk as a client sees it, with the credentials the
// client presents.
type Target struct {
	Server       string `json:"server"`                // IPv4 address or host name of the portal
	Port         int    `json:"port,omitempty"`        // 0 means DefaultISCSIPort
	IQN          string `json:"iqn"`                   // target name
	LUN          int    `json:"lun,omitempty"`         // 0…255
	CHAPUser     string `json:"chap_user,omitempty"`   // initiator → target CHAP name
	CHAPSecret   string `json:"-"`                     // never marshalled
	MutualUser   string `json:"mutual_user,omitempty"` // target → initiator (mutual) CHAP name
	MutualSecret string `json:"-"`                     // never marshalled
}

// Validate reports the first problem that would make iPXE or the Microsoft
// initiator reject the target.
func (t Target) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrTarget, fmt.Sprintf(format, a...))
	}
	switch {
	case t.Server == "":
		return bad("no server address")
	case strings.ContainsAny(t.Server, ": \t\r\n"):
		// The root-path is colon separated; IPv6 literals would need the
		// bracket form, which iPXE 2019 (Debian's build) does not parse.
		return bad("server %q: want an IPv4 address or host name", t.Server)
	case t.Port < 0 || t.Port > 65535:
		return bad("port %d out of range", t.Port)
	case t.IQN == "":
		return bad("no target IQN")
	case t.LUN < 0 || t.LUN > 255:
		return bad("LUN %d: want 0…255", t.LUN)
	case t.CHAPSecret != "" && t.CHAPUser == "":
		return bad("CHAP secret without a user")
	case t.MutualSecret != "" && t.MutualUser == "":
		return bad("mutual CHAP secret without a user")
	}
	if err := auth.CheckName(t.IQN); err != nil {
		return bad("target IQN: %v", err)
	}
	var in []auth.Account
	if t.CHAPUser != "" {
		a := auth.Account{User: t.CHAPUser, Secret: []byte(t.CHAPSecret)}
		if err := auth.CheckAccount("CHAP", a); err != nil {
			return bad("%v", err)
		}
		in = append(in, a)
	}
	if t.MutualUser != "" {
		a := auth.Account{User: t.MutualUser, Secret: []byte(t.MutualSecret)}
		if err := auth.CheckPair(in, &a); err != nil {
			return bad("%v", err)
		}
		if err := auth.CheckAccount("mutual CHAP", a); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// RootPath returns the target in iPXE's SAN URI form
// iscsi:<server>:<protocol>:<port>:<LUN>:<IQN> (https://ipxe.org/sanuri):
// the protocol is always empty (TCP), the port is empty when it is the
// default 3260, and the LUN is hexadecimal and empty when 0.
func (t Target) RootPath() string {
	port := ""
	if t.Port != 0 && t.Port != DefaultISCSIPort {
		port = strconv.Itoa(t.Port)
	}
	lun := ""
	if t.LUN != 0 {
		lun = strconv.FormatInt(int64(t.LUN), 16)
	}
	return "iscsi:" + t.Server + "::" + port + ":" + lun + ":" + t.IQN
}

// ParseRootPath reads an iPXE iSCSI root-path back into a Target (without
// credentials). It accepts what iPXE accepts for the single-level LUNs
// xpboot uses: empty port and LUN fields, protocol empty or 6.
func ParseRootPath(s string) (Target, error) {
	bad := func(format string, a ...any) (Target, error) {
		return Target{}, fmt.Errorf("%w: root-path %q: %s", ErrTarget, s, fmt.Sprintf(format, a...))
	}
	rest, ok := strings.CutPrefix(s, "iscsi:")
	if !ok {
		return bad("want the iscsi: scheme")
	}
	// The IQN is the last field and may itself contain colons.
	f := strings.SplitN(rest, ":", 5)
	if len(f) != 5 {
		return bad("want iscsi:<server>:<protocol>:<port>:<LUN>:<IQN>")
	}
	t := Target{Server: f[0], IQN: f[4]}
	if f[1] != "" && f[1] != "6" {
		return bad("protocol %q: only 6 (TCP) exists", f[1])
	}
	if f[2] != "" {
		p, err := strconv.ParseUint(f[2], 10, 16)
		if err != nil {
			return bad("port %q", f[2])
		}
		t.Port = int(p)
		if t.Port == DefaultISCSIPort {
			t.Port = 0
		}
	}
	if f[3] != "" {
		l, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return bad("LUN %q: want hexadecimal 0…ff", f[3])
		}
		t.LUN = int(l)
	}
	if err := t.Validate(); err != nil {
		return Target{}, fmt.Errorf("root-path %q: %w", s, err)
	}
	return t, nil
}
