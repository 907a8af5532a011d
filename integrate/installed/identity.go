package installed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
)

// ErrComputerName reports a name Windows does not take as a computer name.
var ErrComputerName = errors.New("not a usable computer name")

// CheckComputerName accepts what works both as a NetBIOS computer name and
// as a DNS host label: 1 to 15 letters, digits and hyphens, not only
// digits, not starting or ending with a hyphen.
func CheckComputerName(name string) error {
	if len(name) < 1 || len(name) > 15 {
		return fmt.Errorf("%q: %w (1 to 15 characters)", name, ErrComputerName)
	}
	digits := true
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-':
			digits = false
		default:
			return fmt.Errorf("%q: %w (only letters, digits and hyphens)", name, ErrComputerName)
		}
	}
	if digits || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return fmt.Errorf("%q: %w (not only digits; no hyphen first or last)", name, ErrComputerName)
	}
	return nil
}

// SetComputerName gives the installed Windows in fsys the computer name
// name, in every control set \Select names: Control\ComputerName's
// ComputerName and ActiveComputerName (the NetBIOS name, upper case) and
// Tcpip\Parameters' Hostname and NV Hostname (the DNS name, as given). It
// is how one shared base image boots as many named PCs (CCBoot's per-client
// identity): the name is written into each client's own overlay. The
// SYSTEM hive is edited in a private temporary copy and written back as
// one file.
func SetComputerName(fsys imagefs.FS, name string) error {
	if err := CheckComputerName(name); err != nil {
		return err
	}
	sys, err := Detect(fsys)
	if err != nil {
		return err
	}
	data, err := imagefs.ReadFile(fsys, sys.SystemHive())
	if err != nil {
		return fmt.Errorf("installed: %s: %w", sys.SystemHive(), err)
	}
	dir, err := os.MkdirTemp("", "xpboot-name-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "SYSTEM")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		return err
	}
	ed, err := hive.Edit(local)
	if err != nil {
		return fmt.Errorf("installed: %s: %w", sys.SystemHive(), err)
	}
	netbios := strings.ToUpper(name)
	for _, cs := range sys.ControlSets {
		for _, v := range []struct{ key, name, data string }{
			{cs + `\Control\ComputerName\ComputerName`, "ComputerName", netbios},
			{cs + `\Control\ComputerName\ActiveComputerName`, "ComputerName", netbios},
			{cs + `\Services\Tcpip\Parameters`, "Hostname", name},
			{cs + `\Services\Tcpip\Parameters`, "NV Hostname", name},
		} {
			if err := ed.CreateKey(v.key); err != nil {
				return fmt.Errorf("installed: %s: %s: %w", sys.SystemHive(), v.key, err)
			}
			if err := ed.SetValue(v.key, v.name, hive.SZ, hive.EncodeString(v.data)); err != nil {
				return fmt.Errorf("installed: %s: %s\\%s: %w", sys.SystemHive(), v.key, v.name, err)
			}
		}
	}
	if err := ed.Save(local); err != nil {
		return fmt.Errorf("installed: %s: %w", sys.SystemHive(), err)
	}
	out, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	return imagefs.WriteBytes(fsys, sys.SystemHive(), out)
}
