package sanboot

import (
	"fmt"
	"strings"
)

// ScriptConfig chooses what an iPXE boot script does.
type ScriptConfig struct {
	Target       Target
	InitiatorIQN string // "" leaves iPXE's default (which collides on blank SMBIOS UUIDs)
	DHCP         bool   // start with `dhcp` (for embedded or flashed scripts; chainloaded ones have their DHCP already)
	NoGateway    bool   // `clear net0.dhcp/gateway`, for the Microsoft initiator's gateway route (KB 960104)
	Install      bool   // `sanhook` and `exit` instead of `sanboot`, to install onto the disk from other media
	KeepSAN      bool   // `set keep-san 1`: keep the disk attached if booting from it fails or returns
}

// scriptUnsafe are characters that iPXE's command parser would split on or
// expand; values containing them cannot be written into a script safely.
const scriptUnsafe = " \t\r\n$\"'\\#|&;"

// Script returns an iPXE script (https://ipxe.org/scripting) that sets the
// initiator name and credentials and SAN-boots (or, with Install, hooks)
// the target.
func Script(c ScriptConfig) (string, error) {
	if err := c.Target.Validate(); err != nil {
		return "", err
	}
	check := func(what, v string) error {
		unsafe := scriptUnsafe
		if what == "initiator IQN" {
			// Meant to be expanded by iPXE: iqn…:client-${mac:hexhyp}.
			unsafe = strings.ReplaceAll(unsafe, "$", "")
		}
		if i := strings.IndexAny(v, unsafe); i >= 0 {
			return fmt.Errorf("%w: %s contains %q, which an iPXE script cannot carry", ErrTarget, what, v[i])
		}
		return nil
	}
	for _, f := range []struct{ what, v string }{
		{"initiator IQN", c.InitiatorIQN},
		{"target IQN", c.Target.IQN},
		{"CHAP user", c.Target.CHAPUser},
		{"CHAP secret", c.Target.CHAPSecret},
		{"mutual CHAP user", c.Target.MutualUser},
		{"mutual CHAP secret", c.Target.MutualSecret},
	} {
		if err := check(f.what, f.v); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	line := func(s ...string) { b.WriteString(strings.Join(s, " ") + "\n") }
	line("#!ipxe")
	if c.DHCP {
		line("dhcp")
	}
	if c.InitiatorIQN != "" {
		line("set initiator-iqn", c.InitiatorIQN)
	}
	t := c.Target
	if t.CHAPUser != "" {
		line("set username", t.CHAPUser)
		line("set password", t.CHAPSecret)
	}
	if t.MutualUser != "" {
		line("set reverse-username", t.MutualUser)
		line("set reverse-password", t.MutualSecret)
	}
	if c.NoGateway {
		// Verified with Debian's iPXE (research/netboot.md §2.6); the
		// gPXE spelling was net0.dhcp/gateway:ipv4.
		line("clear net0.dhcp/gateway")
	}
	if c.KeepSAN {
		line("set keep-san 1")
	}
	rp := t.RootPath()
	if c.Install {
		line("sanhook", rp, "|| goto failed")
		line("echo xpboot: " + t.IQN + " is attached; continuing with the next boot device")
		line("exit")
	} else {
		line("sanboot", rp, "|| goto failed")
	}
	line(":failed")
	line("echo xpboot: SAN boot of " + t.IQN + " failed")
	line("exit 1")
	return b.String(), nil
}
