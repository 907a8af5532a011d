package installed

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// ErrNotInstalled reports a tree that holds no installed Windows
// 2000/XP/2003.
var ErrNotInstalled = errors.New("installed: not an installed Windows 2000/XP/2003")

// A System is an installed Windows found in a tree.
type System struct {
	// Root is the Windows directory relative to the tree (WINDOWS or
	// WINNT), with the case found on disk.
	Root string `json:"root"`
	// OS is "Windows 2000", "Windows XP", "Windows XP x64" or "Windows
	// Server 2003"; Version is CurrentVersion ("5.1"), ServicePack
	// CSDVersion, Build CurrentBuildNumber.
	OS          string `json:"os"`
	Version     string `json:"version"`
	ServicePack string `json:"service_pack,omitempty"`
	Build       string `json:"build,omitempty"`
	// Arch is "x86" or "amd64", from ntoskrnl.exe's PE header.
	Arch string `json:"arch"`
	// ProductType is 1 (WinNT), 2 (LanmanNT) or 3 (ServerNT), from
	// Control\ProductOptions.
	ProductType int `json:"product_type"`
	// ControlSets are the control sets Select names (Current, Default,
	// LastKnownGood, Failed; each once, Current first), e.g.
	// ["ControlSet001", "ControlSet002"].
	ControlSets []string `json:"control_sets"`
	// Current is the control set Select\Current names.
	Current string `json:"current"`

	Major, Minor int `json:"-"`
}

// SystemHive, SoftwareHive and DriversDir are paths in the tree.
func (s *System) SystemHive() string   { return s.Root + "/system32/config/SYSTEM" }
func (s *System) SoftwareHive() string { return s.Root + "/system32/config/SOFTWARE" }
func (s *System) DriversDir() string   { return s.Root + "/system32/drivers" }

// Target is what driver INFs are resolved for.
func (s *System) Target() drivers.Target {
	return drivers.Target{Major: s.Major, Minor: s.Minor, Arch: s.Arch, ProductType: s.ProductType}
}

// Detect finds the installed Windows of a tree: a WINDOWS or WINNT
// directory (any case) holding system32\ntoskrnl.exe and the SYSTEM and
// SOFTWARE hives. The version comes from SOFTWARE's CurrentVersion, the
// architecture from the kernel's PE header, the product type and control
// sets from SYSTEM. Every error names the file or key.
func Detect(fsys imagefs.FS) (*System, error) {
	var roots []string
	ents, err := fsys.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("installed: reading the tree's root: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() && (strings.EqualFold(e.Name(), "WINDOWS") || strings.EqualFold(e.Name(), "WINNT")) {
			if _, err := fsys.Stat(e.Name() + "/system32/config/SYSTEM"); err == nil {
				roots = append(roots, e.Name())
			}
		}
	}
	switch len(roots) {
	case 0:
		return nil, fmt.Errorf("%w: no WINDOWS or WINNT directory with system32/config/SYSTEM", ErrNotInstalled)
	case 1:
	default:
		return nil, fmt.Errorf("%w: two Windows directories (%s); the tree must hold one", ErrNotInstalled, strings.Join(roots, ", "))
	}
	s := &System{Root: roots[0]}
	for _, f := range []string{s.SoftwareHive(), s.Root + "/system32/ntoskrnl.exe"} {
		if _, err := fsys.Stat(f); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotInstalled, f, err)
		}
	}
	sw, err := readHive(fsys, s.SoftwareHive())
	if err != nil {
		return nil, err
	}
	const cv = `Microsoft\Windows NT\CurrentVersion`
	ver, ok := hiveStr(sw, cv, "CurrentVersion")
	if !ok {
		return nil, fmt.Errorf("%w: %s has no %s\\CurrentVersion", ErrNotInstalled, s.SoftwareHive(), cv)
	}
	s.Version = ver
	s.ServicePack, _ = hiveStr(sw, cv, "CSDVersion")
	s.Build, _ = hiveStr(sw, cv, "CurrentBuildNumber")
	maj, min, ok := strings.Cut(ver, ".")
	s.Major, _ = strconv.Atoi(maj)
	s.Minor, _ = strconv.Atoi(min)
	if !ok || s.Major != 5 || s.Minor < 0 || s.Minor > 2 {
		return nil, fmt.Errorf("%w: %s: CurrentVersion is %q, not 5.0, 5.1 or 5.2", ErrNotInstalled, s.SoftwareHive(), ver)
	}
	kernel, err := imagefs.ReadFile(fsys, s.Root+"/system32/ntoskrnl.exe")
	if err != nil {
		return nil, fmt.Errorf("installed: %s/system32/ntoskrnl.exe: %w", s.Root, err)
	}
	if s.Arch, err = integrate.PEArch(kernel); err != nil {
		return nil, fmt.Errorf("installed: %s/system32/ntoskrnl.exe: %w", s.Root, err)
	}
	sys, err := readHive(fsys, s.SystemHive())
	if err != nil {
		return nil, err
	}
	s.ProductType = 1
	if pt, ok := hiveStr(sys, `ControlSet001\Control\ProductOptions`, "ProductType"); ok {
		switch strings.ToUpper(pt) {
		case "LANMANNT":
			s.ProductType = 2
		case "SERVERNT":
			s.ProductType = 3
		}
	}
	if s.ControlSets, s.Current, err = controlSets(sys, s.SystemHive()); err != nil {
		return nil, err
	}
	if v, ok := hiveStr(sys, s.Current+`\Control\ProductOptions`, "ProductType"); ok && strings.EqualFold(v, "ServerNT") {
		s.ProductType = 3
	}
	switch {
	case s.Minor == 0:
		s.OS = "Windows 2000"
	case s.Minor == 1:
		s.OS = "Windows XP"
	case s.Arch == "amd64" && s.ProductType == 1:
		s.OS = "Windows XP x64"
	default:
		s.OS = "Windows Server 2003"
	}
	if s.Arch == "amd64" && s.Minor != 2 {
		return nil, fmt.Errorf("%w: an amd64 kernel with CurrentVersion %s", ErrNotInstalled, ver)
	}
	return s, nil
}

// controlSets returns the control sets \Select names: Current first, then
// Default, LastKnownGood and Failed, each once, only those that exist.
// Current is resolved by hive.File.CurrentControlSet; a hive without a
// non-zero REG_DWORD Current is not an installed system's.
func controlSets(f *hive.File, name string) ([]string, string, error) {
	if n, ok := hiveDWORD(f, "Select", "Current"); !ok || n == 0 {
		return nil, "", fmt.Errorf("%w: %s has no REG_DWORD Select\\Current", ErrNotInstalled, name)
	}
	current, err := f.CurrentControlSet("")
	if err != nil {
		return nil, "", fmt.Errorf("installed: %s: %w", name, err)
	}
	out := []string{current}
	for _, v := range []string{"Default", "LastKnownGood", "Failed"} {
		n, ok := hiveDWORD(f, "Select", v)
		if !ok || n == 0 {
			continue
		}
		cs, err := hive.ControlSetName(n)
		if err != nil {
			return nil, "", fmt.Errorf("installed: %s: Select\\%s: %w", name, v, err)
		}
		if _, err := f.Key(cs); err != nil {
			continue
		}
		if !hasFold(out, cs) {
			out = append(out, cs)
		}
	}
	return out, current, nil
}

// readHive reads a hive file of the tree read-only.
func readHive(fsys imagefs.FS, p string) (*hive.File, error) {
	b, err := imagefs.ReadFile(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("installed: %s: %w", p, err)
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("installed: %s: %w", p, err)
	}
	return f, nil
}

func hiveStr(f *hive.File, key, name string) (string, bool) {
	k, err := f.Key(key)
	if err != nil {
		return "", false
	}
	v, err := k.Value(name)
	if err != nil || (v.Type != hive.SZ && v.Type != hive.ExpandSZ) {
		return "", false
	}
	return hive.DecodeString(v.Data), true
}

func hiveDWORD(f *hive.File, key, name string) (uint32, bool) {
	k, err := f.Key(key)
	if err != nil {
		return 0, false
	}
	v, err := k.Value(name)
	if err != nil || v.Type != hive.DWORD || len(v.Data) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v.Data), true
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
