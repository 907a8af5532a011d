package drivers

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/internal/inftext"
)

// TxtSetupOEM is a parsed txtsetup.oem: the description of a text-mode
// driver disk (Microsoft's "TxtSetup.oem File Format").
type TxtSetupOEM struct {
	Name  string
	Disks []OEMDisk
	// Defaults maps a lower-case component (scsi, computer …) to the ID
	// of its default option.
	Defaults map[string]string
	// Options lists every option of every component section, in order.
	Options []*OEMOption
}

// OEMDisk is one [Disks] line: d1 = "description",\tagfile,\directory.
type OEMDisk struct {
	Key         string
	Description string
	TagFile     string
	Directory   string // relative to the package, slash-separated, "" for the top
	Line        int
}

// OEMOption is one option of a component: [scsi] id = "description".
type OEMOption struct {
	Component   string // lower case: scsi, computer, display, keyboard, mouse
	ID          string
	Description string
	Files       []OEMFile        // [Files.<component>.<id>]
	HardwareIDs []OEMHardwareID  // [HardwareIds.<component>.<id>]
	Config      []OEMConfigValue // [Config.<DriverKey>] of its driver files
	Line        int
}

// OEMFile is a [Files.x.y] line: type = disk, file[, DriverKey].
type OEMFile struct {
	Type      string // driver, inf, catalog, dll, port, class, hal, detect …
	Disk      string
	Name      string
	DriverKey string // for driver lines: the Services key and [Config.X] name
	Source    string // path in the package, slash-separated
	Line      int
}

// OEMHardwareID is a [HardwareIds.x.y] line: id = "PCI\VEN_…","service".
type OEMHardwareID struct {
	ID      string
	Service string
	Line    int
}

// OEMConfigValue is a [Config.X] line:
// value = "subkey", name, REG_DWORD, data. It is written under
// Services\<DriverKey>\<Subkey>.
type OEMConfigValue struct {
	DriverKey string
	Subkey    string
	Name      string
	Type      uint32  // RegSZ …
	Data      RegData // as RegOp.Data
	Line      int
}

var oemComponents = []string{"computer", "display", "keyboard", "mouse", "scsi"}

// ParseTxtSetupOEM parses a txtsetup.oem (ANSI, or UTF-16 with a BOM).
func ParseTxtSetupOEM(name string, data []byte) (*TxtSetupOEM, error) {
	text, enc, err := inftext.Decode(data, 0x0409)
	if err != nil {
		return nil, errorf(name, 0, "decoding %s: %v", enc, err)
	}
	raw := &INF{Name: name, index: map[string]*Section{}}
	if err := raw.parseRaw(text, false); err != nil {
		return nil, err
	}
	for _, s := range raw.Sections {
		for _, l := range s.Lines {
			key, rest, hasKey := inftext.SplitKey(l.raw)
			if hasKey {
				l.HasKey, l.Key = true, inftext.Unquote(key)
			}
			l.Fields = inftext.Fields(rest)
		}
	}
	o := &TxtSetupOEM{Name: name, Defaults: map[string]string{}}
	disks := raw.Section("Disks")
	if disks == nil {
		return nil, errorf(name, 0, "no [Disks] section")
	}
	for _, l := range disks.Lines {
		d := OEMDisk{Key: l.Key, Description: l.Field(0), TagFile: l.Field(1), Line: l.Num}
		if !l.HasKey || d.Key == "" {
			return nil, errorf(name, l.Num, "[Disks] line without a disk key")
		}
		dir := strings.Trim(strings.ReplaceAll(l.Field(2), `\`, "/"), "/")
		if err := checkRelPath(dir); err != nil {
			return nil, errorf(name, l.Num, "[Disks] %s: %v", d.Key, err)
		}
		d.Directory = dir
		o.Disks = append(o.Disks, d)
	}
	if s := raw.Section("Defaults"); s != nil {
		for _, l := range s.Lines {
			if l.HasKey {
				o.Defaults[strings.ToLower(l.Key)] = l.Field(0)
			}
		}
	}
	for _, comp := range oemComponents {
		s := raw.Section(comp)
		if s == nil {
			continue
		}
		for _, l := range s.Lines {
			if !l.HasKey {
				continue
			}
			opt := &OEMOption{Component: comp, ID: l.Key, Description: l.Field(0), Line: l.Num}
			if err := o.option(raw, opt); err != nil {
				return nil, err
			}
			o.Options = append(o.Options, opt)
		}
	}
	for comp, id := range o.Defaults {
		if o.Option(comp, id) == nil && contains(oemComponents, comp) && raw.Section(comp) != nil {
			return nil, errorf(name, raw.Section("Defaults").Line, "[Defaults] %s = %s: no such option in [%s]", comp, id, comp)
		}
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Option returns the option of a component by ID (case-insensitive), or nil.
func (o *TxtSetupOEM) Option(component, id string) *OEMOption {
	for _, opt := range o.Options {
		if strings.EqualFold(opt.Component, component) && strings.EqualFold(opt.ID, id) {
			return opt
		}
	}
	return nil
}

func (o *TxtSetupOEM) disk(key string) *OEMDisk {
	for i := range o.Disks {
		if strings.EqualFold(o.Disks[i].Key, key) {
			return &o.Disks[i]
		}
	}
	return nil
}

func (o *TxtSetupOEM) option(raw *INF, opt *OEMOption) error {
	fs := raw.Section("Files." + opt.Component + "." + opt.ID)
	if fs == nil {
		return errorf(o.Name, opt.Line, "section [Files.%s.%s] is missing", opt.Component, opt.ID)
	}
	var keys []string
	for _, l := range fs.Lines {
		if !l.HasKey {
			continue
		}
		f := OEMFile{Type: strings.ToLower(l.Key), Disk: l.Field(0), Name: l.Field(1), DriverKey: l.Field(2), Line: l.Num}
		if err := checkName(f.Name); err != nil {
			return errorf(o.Name, l.Num, "[%s]: %v", fs.Name, err)
		}
		d := o.disk(f.Disk)
		if d == nil {
			return errorf(o.Name, l.Num, "[%s]: disk \"%s\" is not in [Disks]", fs.Name, f.Disk)
		}
		f.Source = strings.TrimPrefix(d.Directory+"/"+f.Name, "/")
		if f.Type == "driver" && f.DriverKey != "" {
			keys = append(keys, f.DriverKey)
		}
		opt.Files = append(opt.Files, f)
	}
	if hs := raw.Section("HardwareIds." + opt.Component + "." + opt.ID); hs != nil {
		for _, l := range hs.Lines {
			if !l.HasKey || !strings.EqualFold(l.Key, "id") {
				continue
			}
			if l.Field(0) == "" || l.Field(1) == "" {
				return errorf(o.Name, l.Num, "[%s]: id line needs a hardware ID and a service", hs.Name)
			}
			opt.HardwareIDs = append(opt.HardwareIDs, OEMHardwareID{ID: l.Field(0), Service: l.Field(1), Line: l.Num})
		}
	}
	for _, k := range keys {
		cs := raw.Section("Config." + k)
		if cs == nil {
			continue
		}
		for _, l := range cs.Lines {
			if !l.HasKey || !strings.EqualFold(l.Key, "value") {
				continue
			}
			v, err := parseOEMValue(k, l)
			if err != nil {
				return errorf(o.Name, l.Num, "[%s]: %v", cs.Name, err)
			}
			opt.Config = append(opt.Config, v)
		}
	}
	return nil
}

func parseOEMValue(key string, l *Line) (OEMConfigValue, error) {
	v := OEMConfigValue{DriverKey: key, Subkey: l.Field(0), Name: l.Field(1), Line: l.Num}
	if err := checkRelPath(v.Subkey); err != nil {
		return v, err
	}
	data := l.Fields[min(3, len(l.Fields)):]
	switch strings.ToUpper(l.Field(2)) {
	case "REG_DWORD":
		// txtsetup.oem DWORDs are hexadecimal digits (Microsoft's format
		// description), with or without 0x.
		s := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(strings.Join(data[:min(1, len(data))], "")), "0x"), "0X")
		var n uint64
		if _, err := fmt.Sscanf(s, "%x", &n); err != nil || n > 0xffffffff || len(s) > 8 {
			return v, fmt.Errorf("REG_DWORD data \"%s\" is not hexadecimal", s)
		}
		v.Type, v.Data = RegDWORD, DWORDData(uint32(n))
	case "REG_SZ":
		v.Type, v.Data = RegSZ, StringData(strings.Join(data[:min(1, len(data))], ""))
	case "REG_EXPAND_SZ":
		v.Type, v.Data = RegExpandSZ, StringData(strings.Join(data[:min(1, len(data))], ""))
	case "REG_MULTI_SZ":
		v.Type, v.Data = RegMultiSZ, MultiData(append([]string{}, data...))
	case "REG_BINARY":
		b, err := hex.DecodeString(strings.Join(data, ""))
		if err != nil {
			return v, fmt.Errorf("REG_BINARY data: %v", err)
		}
		v.Type, v.Data = RegBinary, BinaryData(b)
	default:
		return v, fmt.Errorf("unknown value type \"%s\"", l.Field(2))
	}
	return v, nil
}
