package hive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// CurrentControlSet does not exist on disk: Windows links it at boot to
// ControlSet00N, N being the REG_DWORD Current of the SYSTEM hive's
// \Select key (hivexregedit's man page, "CurrentControlSet etc."). This
// file is the one place xpboot reads that link; packages integrate,
// integrate/installed and the hive command resolve through it.

// ControlSetName returns the key name of control set n, ControlSet001 to
// ControlSet999; any other n is an error wrapping ErrInvalid.
func ControlSetName(n uint32) (string, error) {
	if n < 1 || n > 999 {
		return "", fmt.Errorf("%w: %d is not a control set number (1-999)", ErrInvalid, n)
	}
	return fmt.Sprintf("ControlSet%03d", n), nil
}

// currentControlSet is CurrentControlSet over a hive read through
// current (the \Select\Current value) and has (whether a key exists;
// nil skips that check).
func currentControlSet(def string, current func() (*Value, error), has func(string) bool) (string, error) {
	v, err := current()
	var name string
	switch {
	case err == nil:
		if v.Type != DWORD || len(v.Data) != 4 {
			return "", fmt.Errorf("%w: \\Select\\Current is %v of %d bytes, not a REG_DWORD", ErrInvalid, v.Type, len(v.Data))
		}
		if name, err = ControlSetName(binary.LittleEndian.Uint32(v.Data)); err != nil {
			return "", fmt.Errorf("\\Select\\Current: %w", err)
		}
	case def != "" && errors.Is(err, ErrNotFound):
		name = def
	default:
		return "", fmt.Errorf("resolving CurrentControlSet through \\Select\\Current: %w", err)
	}
	if has != nil && !has(name) {
		return "", fmt.Errorf("%w: the hive has no %s key for CurrentControlSet", ErrNotFound, name)
	}
	return name, nil
}

// CurrentControlSet returns the control set \Select\Current names
// (ControlSet001 for Current = 1), after checking that its key exists.
// def is the answer for a hive without \Select\Current (a setup hive's
// setupreg.hiv may lack it; text-mode setup then uses ControlSet001); with
// def "" that is an error wrapping ErrNotFound. A Current that is not a
// REG_DWORD naming set 1 to 999 is an error wrapping ErrInvalid.
func (f *File) CurrentControlSet(def string) (string, error) {
	return currentControlSet(def, f.selectCurrent, func(name string) bool { _, err := f.Key(name); return err == nil })
}

func (f *File) selectCurrent() (*Value, error) {
	k, err := f.Key("Select")
	if err != nil {
		return nil, err
	}
	return k.Value("Current")
}

func (e *Editor) selectCurrent() (*Value, error) { return e.value("Select", "Current") }

// CurrentControlSet is File.CurrentControlSet for the edited hive.
func (e *Editor) CurrentControlSet(def string) (string, error) {
	return currentControlSet(def, e.selectCurrent, e.HasKey)
}

// resolveCCS rewrites a leading CurrentControlSet component of path with
// the control set \Select\Current names. The set's key need not exist:
// a path resolved for writing may create it.
func resolveCCS(path string, current func() (*Value, error)) (string, error) {
	parts := splitPath(path)
	if len(parts) == 0 || !strings.EqualFold(parts[0], "CurrentControlSet") {
		return path, nil
	}
	name, err := currentControlSet("", current, nil)
	if err != nil {
		return "", err
	}
	parts[0] = name
	return strings.Join(parts, `\`), nil
}

// ResolveCurrentControlSet replaces a leading CurrentControlSet in path by
// the control set \Select\Current names (see CurrentControlSet). Other
// paths are returned unchanged.
func (f *File) ResolveCurrentControlSet(path string) (string, error) {
	return resolveCCS(path, f.selectCurrent)
}

// ResolveCurrentControlSet is File.ResolveCurrentControlSet for the edited
// hive.
func (e *Editor) ResolveCurrentControlSet(path string) (string, error) {
	return resolveCCS(path, e.selectCurrent)
}
