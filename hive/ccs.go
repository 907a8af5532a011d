package hive

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// CurrentControlSet does not exist on disk: Windows links it at boot to
// ControlSet00N, N being the REG_DWORD Current of the SYSTEM hive's
// \Select key (hivexregedit's man page, "CurrentControlSet etc.").

// resolveCCS rewrites a leading CurrentControlSet component of path with
// the control set number current returns.
func resolveCCS(path string, current func() (*Value, error)) (string, error) {
	parts := splitPath(path)
	if len(parts) == 0 || !strings.EqualFold(parts[0], "CurrentControlSet") {
		return path, nil
	}
	v, err := current()
	if err != nil {
		return "", fmt.Errorf("resolving CurrentControlSet through \\Select\\Current: %w", err)
	}
	if v.Type != DWORD || len(v.Data) != 4 {
		return "", fmt.Errorf("%w: \\Select\\Current is %v of %d bytes, not a REG_DWORD", ErrInvalid, v.Type, len(v.Data))
	}
	parts[0] = fmt.Sprintf("ControlSet%03d", binary.LittleEndian.Uint32(v.Data))
	return strings.Join(parts, `\`), nil
}

// ResolveCurrentControlSet replaces a leading CurrentControlSet in path by
// the control set \Select\Current names (ControlSet001 for Current = 1).
// Other paths are returned unchanged.
func (f *File) ResolveCurrentControlSet(path string) (string, error) {
	return resolveCCS(path, func() (*Value, error) {
		k, err := f.Key("Select")
		if err != nil {
			return nil, err
		}
		return k.Value("Current")
	})
}

// ResolveCurrentControlSet is File.ResolveCurrentControlSet for the edited
// hive.
func (e *Editor) ResolveCurrentControlSet(path string) (string, error) {
	return resolveCCS(path, func() (*Value, error) { return e.value("Select", "Current") })
}
