package bootcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// Kinds of system Check reads.
const (
	KindInstalled = "installed"
	KindSetup     = "setup"
)

// Options are the check's choices.
type Options struct {
	// Devices are hardware IDs (PCI\VEN_8086&DEV_100E…) of network
	// adapters that must be boot adapters.
	Devices []string
}

// A Report is the result of Check.
type Report struct {
	Kind string `json:"kind"`
	// Hive is the registry file read, ControlSet the control set used.
	Hive       string `json:"hive"`
	ControlSet string `json:"control_set"`
	// Drivers are the boot drivers in load order.
	Drivers []Driver `json:"drivers"`
	// NICs are the boot network adapters found.
	NICs     []NIC     `json:"nics"`
	Findings []Finding `json:"findings"`
}

// A Driver is one boot driver.
type Driver struct {
	Service string `json:"service"`
	Group   string `json:"group,omitempty"`
	Tag     uint32 `json:"tag,omitempty"`
	// Image is the file loaded, relative to the tree; Missing when it is
	// not there.
	Image   string `json:"image"`
	Missing bool   `json:"missing,omitempty"`
	// Ungrouped is set for a driver whose group is not in
	// ServiceGroupOrder (loaded last, if at all).
	Ungrouped bool `json:"ungrouped,omitempty"`
}

// A NIC is a network adapter whose driver is a boot driver.
type NIC struct {
	HardwareID string `json:"hardware_id"`
	Service    string `json:"service"`
	ClassKey   string `json:"class_key,omitempty"`
	GUID       string `json:"net_cfg_instance_id,omitempty"`
}

// A Finding is one reason the system may not boot from iSCSI.
type Finding struct {
	// Code is a stable name for scripts: missing-image, dependency,
	// filter-not-boot, no-boot-nic, order, no-interface, no-iscsiprt,
	// no-sanbootconf, ungrouped, gateway.
	Code string `json:"code"`
	// Where is the key or file at fault.
	Where   string `json:"where"`
	Message string `json:"message"`
}

func (r *Report) add(code, where, format string, a ...any) {
	r.Findings = append(r.Findings, Finding{Code: code, Where: where, Message: fmt.Sprintf(format, a...)})
}

// ErrNoSystem reports a tree with neither an installed system nor a
// setup tree.
var ErrNoSystem = errors.New("bootcheck: no installed Windows (WINDOWS or WINNT with system32/config/SYSTEM) and no setup tree")

// Check reads the system in fsys and reports its boot drivers and
// findings. An error means it could not be read.
func Check(fsys imagefs.FS, opts Options) (*Report, error) {
	if root := windowsDir(fsys); root != "" {
		return checkInstalled(fsys, root, opts)
	}
	t, err := integrate.Detect(fsys)
	if err != nil {
		if errors.Is(err, integrate.ErrNotSetupTree) {
			return nil, ErrNoSystem
		}
		return nil, fmt.Errorf("bootcheck: %w", err)
	}
	return checkSetup(fsys, t, opts)
}

// windowsDir returns the WINDOWS or WINNT directory holding a SYSTEM
// hive, or "".
func windowsDir(fsys imagefs.FS) string {
	ents, err := fsys.ReadDir(".")
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if e.IsDir() && (strings.EqualFold(e.Name(), "WINDOWS") || strings.EqualFold(e.Name(), "WINNT")) {
			if _, err := fsys.Stat(e.Name() + "/system32/config/SYSTEM"); err == nil {
				return e.Name()
			}
		}
	}
	return ""
}

// reg is a read-only hive with typed getters.
type reg struct {
	name string
	f    *hive.File
	// syntheticOrder names the services a setup tree loads that have no
	// key in its hive, in the order they were added to the check.
	syntheticOrder []string
}

func openReg(fsys imagefs.FS, name string) (*reg, error) {
	b, err := imagefs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("bootcheck: %s: %w", name, err)
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("bootcheck: %s: %w", name, err)
	}
	return &reg{name: name, f: f}, nil
}

func (r *reg) value(key, name string) (*hive.Value, bool) {
	k, err := r.f.Key(key)
	if err != nil {
		return nil, false
	}
	v, err := k.Value(name)
	if err != nil {
		return nil, false
	}
	return v, true
}

func (r *reg) has(key string) bool { _, err := r.f.Key(key); return err == nil }

func (r *reg) str(key, name string) (string, bool) {
	v, ok := r.value(key, name)
	if !ok || (v.Type != hive.SZ && v.Type != hive.ExpandSZ) {
		return "", false
	}
	return hive.DecodeString(v.Data), true
}

func (r *reg) multi(key, name string) []string {
	v, ok := r.value(key, name)
	if !ok {
		return nil
	}
	switch v.Type {
	case hive.MultiSZ:
		var out []string
		for _, s := range hive.DecodeMultiString(v.Data) {
			if s != "" {
				out = append(out, s)
			}
		}
		return out
	case hive.SZ, hive.ExpandSZ:
		if s := hive.DecodeString(v.Data); s != "" {
			return []string{s}
		}
	}
	return nil
}

func (r *reg) dword(key, name string) (uint32, bool) {
	v, ok := r.value(key, name)
	if !ok || v.Type != hive.DWORD || len(v.Data) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v.Data), true
}

func (r *reg) subkeys(key string) []string {
	k, err := r.f.Key(key)
	if err != nil {
		return nil
	}
	subs, err := k.Subkeys()
	if err != nil {
		return nil
	}
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.Name()
	}
	return out
}

// currentSet returns the control set Select\Current names (ControlSet001
// when a setup hive has no Select), through hive's one resolver.
func (r *reg) currentSet(required bool) (string, error) {
	def := "ControlSet001"
	if required {
		def = ""
	}
	cs, err := r.f.CurrentControlSet(def)
	if err != nil {
		return "", fmt.Errorf("bootcheck: %s: %w", r.name, err)
	}
	return cs, nil
}

// service is a service key's load-relevant values.
type service struct {
	name      string // on-disk case
	start     uint32
	hasStart  bool
	typ       uint32
	group     string
	tag       uint32
	hasTag    bool
	imagePath string
	deps      []string
}

func (r *reg) services(cs string) map[string]*service {
	out := map[string]*service{}
	base := cs + `\Services\`
	for _, n := range r.subkeys(cs + `\Services`) {
		s := &service{name: n}
		s.start, s.hasStart = r.dword(base+n, "Start")
		s.typ, _ = r.dword(base+n, "Type")
		s.group, _ = r.str(base+n, "Group")
		s.tag, s.hasTag = r.dword(base+n, "Tag")
		s.imagePath, _ = r.str(base+n, "ImagePath")
		s.deps = r.multi(base+n, "DependOnService")
		out[strings.ToLower(n)] = s
	}
	return out
}

// loadOrder orders the boot services as NTLDR does: per group of the
// ServiceGroupOrder list, first those whose Tag the group's
// GroupOrderList lists (in its order), then the others of the group in
// key order; last those whose group is absent from the list.
func (r *reg) loadOrder(cs string, boot []*service) ([]*service, map[*service]bool) {
	groups := r.multi(cs+`\Control\ServiceGroupOrder`, "List")
	done := map[*service]bool{}
	var out []*service
	for _, g := range groups {
		var tags []uint32
		if v, ok := r.value(cs+`\Control\GroupOrderList`, g); ok && len(v.Data) >= 4 {
			n := binary.LittleEndian.Uint32(v.Data)
			for i := uint32(0); i < n && int(4+4*i+4) <= len(v.Data); i++ {
				tags = append(tags, binary.LittleEndian.Uint32(v.Data[4+4*i:]))
			}
		}
		for _, t := range tags {
			for _, s := range boot {
				if !done[s] && s.hasTag && s.tag == t && strings.EqualFold(s.group, g) {
					done[s] = true
					out = append(out, s)
				}
			}
		}
		for _, s := range boot {
			if !done[s] && strings.EqualFold(s.group, g) {
				done[s] = true
				out = append(out, s)
			}
		}
	}
	ungrouped := map[*service]bool{}
	for _, s := range boot {
		if !done[s] {
			ungrouped[s] = true
			out = append(out, s)
		}
	}
	return out, ungrouped
}

// exists reports whether name exists in the tree.
func exists(fsys imagefs.FS, name string) bool {
	_, err := fsys.Stat(name)
	return err == nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// imageFile maps a service's ImagePath to a tree path under the Windows
// directory root: relative paths and \SystemRoot\ are under it, and a
// missing ImagePath means system32\drivers\<service>.sys.
func imageFile(root string, s *service) string {
	p := s.imagePath
	if p == "" {
		return root + "/system32/drivers/" + s.name + ".sys"
	}
	p = strings.ReplaceAll(p, `\`, "/")
	low := strings.ToLower(p)
	for _, pre := range []string{"/systemroot/", "%systemroot%/", "systemroot/"} {
		if strings.HasPrefix(low, pre) {
			return root + "/" + p[len(pre):]
		}
	}
	if strings.HasPrefix(low, "/??/") && len(p) > 6 && p[5] == ':' {
		return strings.TrimPrefix(p[6:], "/")
	}
	if len(p) > 2 && p[1] == ':' {
		return strings.TrimPrefix(p[2:], "/")
	}
	return root + "/" + strings.TrimPrefix(p, "/")
}

// sameModel reports whether two device IDs name one model: equal, or the
// &-parts of the shorter all among the longer's, same bus and vendor.
func sameModel(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ap := strings.Split(strings.ToUpper(a), "&")
	bp := strings.Split(strings.ToUpper(b), "&")
	if len(ap) > len(bp) {
		ap, bp = bp, ap
	}
	if len(ap) < 2 || ap[0] != bp[0] {
		return false
	}
	for _, s := range ap[1:] {
		if !slices.Contains(bp[1:], s) {
			return false
		}
	}
	return true
}

// cddbIDs lists the CriticalDeviceDatabase key names Windows tries for a
// hardware ID, most specific first: the ID, then without REV, SUBSYS.
func cddbIDs(id string) []string {
	id = strings.ToLower(id)
	out := []string{id}
	parts := strings.Split(id, "&")
	for n := len(parts) - 1; n >= 2; n-- {
		out = append(out, strings.Join(parts[:n], "&"))
	}
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], `\`, "#")
	}
	return out
}

func base(p string) string { return path.Base(strings.ReplaceAll(p, `\`, "/")) }
