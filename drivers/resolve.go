package drivers

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// A Device is the resolved install plan of one model line of an INF.
type Device struct {
	INF            string   // INF file name
	Manufacturer   string   // expanded manufacturer name
	Description    string   // expanded device description
	ModelsSection  string   // models section used, decoration included
	InstallSection string   // DDInstall section used, decoration included
	HardwareID     string   // first ID of the model line
	CompatibleIDs  []string // the other IDs of the model line
	Class          string
	ClassGUID      string
	Provider       string
	DriverDate     string
	DriverVer      string
	CatalogFile    string // for the target architecture, "" if none

	// Files to copy, DDInstall and CoInstallers CopyFiles, in order.
	Files []FileCopy
	// Registry operations for the driver (software) key
	// Control\Class\{ClassGUID}\NNNN: HKR means that key. From DDInstall
	// and DDInstall.CoInstallers.
	Registry []RegOp
	// HWRegistry operations for the device (hardware) key
	// Enum\<id>\<instance>\Device Parameters' parent: HKR means the
	// instance key. From DDInstall.HW.
	HWRegistry []RegOp
	// Services from DDInstall.Services AddService directives.
	Services []Service

	// Characteristics and BusType are the network-adapter directives of
	// DDInstall (NCF_* flags, NdisInterface bus type); Has… tell whether
	// present.
	Characteristics    uint32
	HasCharacteristics bool
	BusType            uint32
	HasBusType         bool
}

// UniqueServices returns the services of devs in device order, each name
// once (compared case-insensitively, as the service database does): the
// models of one INF often install the same service.
func UniqueServices(devs []*Device) []*Service {
	seen := map[string]bool{}
	var out []*Service
	for _, d := range devs {
		for i := range d.Services {
			sv := &d.Services[i]
			if key := strings.ToLower(sv.Name); !seen[key] {
				seen[key] = true
				out = append(out, sv)
			}
		}
	}
	return out
}

// FileCopy is one file a device's install copies.
type FileCopy struct {
	// Source is the file's path in the package, slash-separated, with the
	// case found on disk when resolved through a Package.
	Source string
	// Dest is the destination relative to %SystemRoot%,
	// backslash-separated (e.g. system32\DRIVERS\e1000325.sys; ".." when
	// the DIRID is outside the Windows directory).
	Dest    string
	DirID   int
	Flags   uint32 // COPYFLG_* from the copy-files line
	Section string // copy-files section, or "@" for CopyFiles=@file
	INF     string // INF the line comes from
	Line    int
}

// Service is one AddService directive with its service-install section.
type Service struct {
	Name           string
	Flags          uint32 // SPSVCINST_* (0x2 ASSOCSERVICE: the function driver)
	DisplayName    string
	Description    string
	ServiceType    uint32
	StartType      uint32
	ErrorControl   uint32
	LoadOrderGroup string
	// TagToFront is SPSVCINST_TAGTOFRONT (0x1): put the service's Tag
	// first in its group's GroupOrderList.
	TagToFront bool
	// Dependencies as written; DependOnService and DependOnGroup split
	// them (a leading + names a load-order group).
	Dependencies    []string
	DependOnService []string
	DependOnGroup   []string
	// ServiceBinary relative to %SystemRoot%, e.g. system32\DRIVERS\x.sys.
	ServiceBinary string
	// ImagePath as setup stores it: the relative path for kernel and
	// file-system drivers, %SystemRoot%\… (REG_EXPAND_SZ) otherwise.
	ImagePath string
	StartName string
	Security  string
	// Registry operations; HKR is Services\<Name>.
	Registry []RegOp
	// EventLog is set when AddService names an event-log install section.
	EventLog *EventLog
}

// EventLog is AddService's event-log install.
type EventLog struct {
	Type string // log name, default System
	Name string // source name, default the service name
	// Registry operations; HKR is Services\EventLog\<Type>\<Name>.
	Registry []RegOp
}

// Registry value types.
const (
	RegNone     = 0
	RegSZ       = 1
	RegExpandSZ = 2
	RegBinary   = 3
	RegDWORD    = 4
	RegMultiSZ  = 7
	RegQWORD    = 11
)

// AddReg flags (FLG_ADDREG_*).
const (
	FlagBinValueType  = 0x00000001
	FlagNoClobber     = 0x00000002
	FlagDelVal        = 0x00000004
	FlagAppend        = 0x00000008
	FlagKeyOnly       = 0x00000010
	FlagOverwriteOnly = 0x00000020
	Flag64BitKey      = 0x00001000
	FlagKeyOnlyCommon = 0x00002000
	Flag32BitKey      = 0x00004000
	FlagDelRegBit     = 0x00008000 // in DelReg: FLG_DELREG_VALUE-style operations
	FlagTypeMask      = 0xffff0001
	// FlagDelStringMulti is DelReg's FLG_DELREG_MULTI_SZ_DELSTRING.
	FlagDelStringMulti = 0x00018002
)

// Op is a registry operation kind.
type Op string

// Registry operation kinds.
const (
	OpSet       Op = "set"       // write a value (see Flags for noclobber/append/overwrite-only)
	OpKey       Op = "key"       // create the key only
	OpDelValue  Op = "delvalue"  // delete a value
	OpDelKey    Op = "delkey"    // delete a key and its subkeys
	OpDelString Op = "delstring" // remove a string from a REG_MULTI_SZ
)

// Binary is REG_BINARY (and other raw) data; it renders as hex in JSON.
type Binary []byte

// MarshalText renders the bytes as hex.
func (b Binary) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(b)), nil }

// A RegOp is one AddReg or DelReg line.
type RegOp struct {
	Op    Op
	Root  string // HKR, HKLM, HKCU, HKCR or HKU
	Key   string // subkey, "" for the root itself
	Value string // value name, "" for the default value
	Flags uint32 // the line's FLG_ADDREG_* / FLG_DELREG_* flags
	Type  uint32 // RegSZ … for OpSet
	// Data is the value's data for OpSet (KindString for SZ and
	// EXPAND_SZ, KindMulti, KindDWORD, KindBinary for BINARY, NONE and
	// other types) and the string OpDelString removes.
	Data RegData
	INF  string
	Line int
}

// NoClobber reports FLG_ADDREG_NOCLOBBER (keep an existing value).
func (r RegOp) NoClobber() bool { return r.Flags&FlagNoClobber != 0 }

// Append reports FLG_ADDREG_APPEND (add the strings to an existing MULTI_SZ).
func (r RegOp) Append() bool { return r.Flags&FlagAppend != 0 && r.Op == OpSet }

// OverwriteOnly reports FLG_ADDREG_OVERWRITEONLY (only replace an existing value).
func (r RegOp) OverwriteOnly() bool { return r.Flags&FlagOverwriteOnly != 0 && r.Op == OpSet }

// resolver carries the state of one resolution.
type resolver struct {
	t    Target
	infs map[string]*INF // lower-case file name → INF, for Include=
}

// Resolve computes the install plan of every device of the INF for t,
// without checking the package's files (see Package.Resolve).
func (f *INF) Resolve(t Target) ([]*Device, error) {
	return (&resolver{t: t, infs: map[string]*INF{strings.ToLower(f.Name): f}}).resolveINF(f)
}

func (r *resolver) resolveINF(f *INF) ([]*Device, error) {
	if err := r.t.check(); err != nil {
		return nil, err
	}
	mfr := f.Section("Manufacturer")
	if mfr == nil {
		return nil, nil // not a device INF
	}
	var out []*Device
	for _, ml := range mfr.Lines {
		name := ml.Key
		fields := ml.Fields
		if !ml.HasKey {
			// "manufacturer-name" alone: the models section has that name.
			name, fields = ml.Field(0), ml.Fields[:min(1, len(ml.Fields))]
		}
		if len(fields) == 0 || fields[0] == "" {
			return nil, errorf(f.Name, ml.Num, "[Manufacturer] entry \"%s\" names no models section", name)
		}
		deco, ok := chooseDecoration(fields[1:], r.t)
		if !ok {
			continue // no models section for this platform
		}
		models := fields[0]
		if deco != "" {
			models += "." + deco
		}
		ms := f.Section(models)
		if ms == nil {
			if deco == "" && len(fields) > 1 {
				continue // only decorated sections, none for this target
			}
			return nil, errorf(f.Name, ml.Num, "models section [%s] is missing", models)
		}
		for _, l := range ms.Lines {
			if len(l.Fields) < 2 || l.Field(1) == "" {
				continue // no hardware ID: installable by hand only
			}
			d, err := r.device(f, name, ms, l)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

func (r *resolver) device(f *INF, mfr string, ms *Section, l *Line) (*Device, error) {
	d := &Device{
		INF: f.Name, Manufacturer: mfr, Description: l.Key, ModelsSection: ms.Name,
		HardwareID: l.Field(1), Class: f.Version.Class, ClassGUID: f.Version.ClassGUID,
		Provider: f.Version.Provider, DriverDate: f.Version.DriverDate, DriverVer: f.Version.DriverVer,
		CatalogFile: f.CatalogFor(r.t.Arch),
	}
	for _, id := range l.Fields[2:] {
		if id != "" {
			d.CompatibleIDs = append(d.CompatibleIDs, id)
		}
	}
	base := l.Field(0)
	inst, ok := f.installSectionName(base, r.t)
	if !ok {
		return nil, errorf(f.Name, l.Num, "install section [%s] for %s is missing", base, d.HardwareID)
	}
	d.InstallSection = inst
	// DDInstall.
	err := r.walk(f, inst, l.Num, map[string]bool{}, func(f *INF, s *Section) error {
		for _, dl := range s.Lines {
			if !dl.HasKey {
				continue
			}
			var err error
			switch strings.ToLower(dl.Key) {
			case "copyfiles":
				var fc []FileCopy
				fc, err = r.copyFiles(f, dl)
				d.Files = append(d.Files, fc...)
			case "addreg", "delreg":
				d.Registry, _, err = r.regLine(f, dl, d.Registry)
			case "characteristics":
				d.Characteristics, err = parseNumber(dl.Field(0))
				d.HasCharacteristics = true
			case "bustype":
				d.BusType, err = parseNumber(dl.Field(0))
				d.HasBusType = true
			}
			if err != nil {
				return wrapLine(f, dl, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// DDInstall.HW, .Services, .CoInstallers: optional.
	if f.Section(inst+".HW") != nil {
		var err error
		if d.HWRegistry, err = r.regOnly(f, inst+".HW", l.Num, d.HWRegistry); err != nil {
			return nil, err
		}
	}
	if f.Section(inst+".Services") != nil {
		err := r.walk(f, inst+".Services", l.Num, map[string]bool{}, func(f *INF, s *Section) error {
			for _, dl := range s.Values("AddService") {
				svc, err := r.service(f, dl)
				if err != nil {
					return err
				}
				if svc != nil {
					d.Services = append(d.Services, *svc)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if f.Section(inst+".CoInstallers") != nil {
		err := r.walk(f, inst+".CoInstallers", l.Num, map[string]bool{}, func(f *INF, s *Section) error {
			for _, dl := range s.Lines {
				var err error
				switch strings.ToLower(dl.Key) {
				case "copyfiles":
					var fc []FileCopy
					fc, err = r.copyFiles(f, dl)
					d.Files = append(d.Files, fc...)
				case "addreg", "delreg":
					d.Registry, _, err = r.regLine(f, dl, d.Registry)
				}
				if err != nil {
					return wrapLine(f, dl, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

func wrapLine(f *INF, l *Line, err error) error {
	if _, ok := err.(*Error); ok {
		return err
	}
	return errorf(f.Name, l.Num, "%v", err)
}

// walk calls fn for the section and, first, for every section its Needs
// directives name (recursively), looked up in the INF and in the INFs its
// Include directives name.
func (r *resolver) walk(f *INF, name string, refLine int, seen map[string]bool, fn func(*INF, *Section) error) error {
	s := f.Section(name)
	if s == nil {
		return errorf(f.Name, refLine, "section [%s] is missing", name)
	}
	key := strings.ToLower(f.Name + "\x00" + s.Name)
	if seen[key] {
		return nil
	}
	seen[key] = true
	var incl []*INF
	for _, l := range s.Values("Include") {
		for _, n := range l.Fields {
			if n == "" {
				continue
			}
			inc := r.infs[strings.ToLower(n)]
			if inc == nil {
				return errorf(f.Name, l.Num, "included INF %s is not in the package (nor in Package.System)", n)
			}
			incl = append(incl, inc)
		}
	}
	for _, l := range s.Values("Needs") {
		for _, n := range l.Fields {
			if n == "" {
				continue
			}
			var target *INF
			for _, cand := range append([]*INF{f}, incl...) {
				if cand.Section(n) != nil {
					target = cand
					break
				}
			}
			if target == nil {
				return errorf(f.Name, l.Num, "section [%s] referenced by Needs is missing", n)
			}
			if err := r.walk(target, n, l.Num, seen, fn); err != nil {
				return err
			}
		}
	}
	return fn(f, s)
}

// copyFiles resolves a CopyFiles directive.
func (r *resolver) copyFiles(f *INF, l *Line) ([]FileCopy, error) {
	var out []FileCopy
	for _, item := range l.Fields {
		if item == "" {
			continue
		}
		if strings.HasPrefix(item, "@") {
			name := strings.TrimSpace(item[1:])
			if err := checkName(name); err != nil {
				return nil, errorf(f.Name, l.Num, "CopyFiles: %v", err)
			}
			fc, err := r.fileCopy(f, l.Num, "@", name, name, 0)
			if err != nil {
				return nil, err
			}
			out = append(out, fc)
			continue
		}
		s := f.Section(item)
		if s == nil {
			return nil, errorf(f.Name, l.Num, "section [%s] referenced by CopyFiles is missing", item)
		}
		for _, cl := range s.Lines {
			if cl.HasKey {
				// "dest = …" is not file-list syntax; hand-edited INFs
				// have it. Read the key as the destination name, as
				// IntegrateDrv's INI reader ends up doing.
				cl = &Line{Num: cl.Num, Fields: append([]string{cl.Key}, cl.Fields...)}
			}
			dest := cl.Field(0)
			if dest == "" {
				continue
			}
			src := cl.Field(1)
			if src == "" {
				src = dest
			}
			for _, n := range []string{dest, src} {
				if err := checkName(n); err != nil {
					return nil, errorf(f.Name, cl.Num, "[%s]: %v", s.Name, err)
				}
			}
			var flags uint32
			if v := cl.Field(3); v != "" {
				var err error
				if flags, err = parseNumber(v); err != nil {
					return nil, errorf(f.Name, cl.Num, "copy flags: %v", err)
				}
			}
			fc, err := r.fileCopy(f, cl.Num, s.Name, dest, src, flags)
			if err != nil {
				return nil, err
			}
			out = append(out, fc)
		}
	}
	return out, nil
}

func (r *resolver) fileCopy(f *INF, line int, section, dest, src string, flags uint32) (FileCopy, error) {
	fc := FileCopy{Section: section, Flags: flags, INF: f.Name, Line: line}
	// Destination directory: [DestinationDirs] entry, else DefaultDestDir.
	dd := f.Section("DestinationDirs")
	var dl *Line
	if section != "@" {
		if ls := dd.Values(section); len(ls) > 0 {
			dl = ls[0]
		}
	}
	if dl == nil {
		if ls := dd.Values("DefaultDestDir"); len(ls) > 0 {
			dl = ls[0]
		}
	}
	if dl == nil {
		return fc, errorf(f.Name, line, "no [DestinationDirs] entry for [%s] and no DefaultDestDir", section)
	}
	id, err := parseNumber(dl.Field(0))
	if err != nil {
		return fc, errorf(f.Name, dl.Num, "DestinationDirs: DIRID %v", err)
	}
	fc.DirID = int(int32(id))
	base, err := dirIDPath(fc.DirID, r.t.Arch)
	if err != nil {
		return fc, errorf(f.Name, dl.Num, "%v", err)
	}
	sub := dl.Field(1)
	if err := checkRelPath(sub); err != nil {
		return fc, errorf(f.Name, dl.Num, "DestinationDirs: %v", err)
	}
	fc.Dest = joinWin(base, sub, dest)
	// Source: [SourceDisksFiles.arch] then [SourceDisksFiles], and the
	// disk's path from [SourceDisksNames.arch] then [SourceDisksNames].
	sdf := r.sourceLine(f, "SourceDisksFiles", src)
	if sdf == nil {
		if f.Section("SourceDisksFiles") == nil && f.Section("SourceDisksFiles."+r.t.Arch) == nil {
			// No SourceDisks sections at all (in-box style INFs and
			// flat OEM directories): the file lies beside the INF.
			fc.Source = src
			return fc, nil
		}
		return fc, errorf(f.Name, line, "file %s is not listed in [SourceDisksFiles] or [SourceDisksFiles.%s]", src, r.t.Arch)
	}
	disk := sdf.Field(0)
	sdn := r.sourceLine(f, "SourceDisksNames", disk)
	if sdn == nil {
		return fc, errorf(f.Name, sdf.Num, "disk %s of %s is not in [SourceDisksNames] or [SourceDisksNames.%s]", disk, src, r.t.Arch)
	}
	dpath, sub2 := sdn.Field(3), sdf.Field(1)
	// A leading \ is the root of the distribution, i.e. the package.
	dpath = strings.TrimLeft(dpath, `\/`)
	for _, p := range []string{dpath, sub2} {
		if err := checkRelPath(strings.TrimLeft(p, `\/`)); err != nil {
			return fc, errorf(f.Name, sdn.Num, "source path: %v", err)
		}
	}
	fc.Source = strings.ReplaceAll(joinWin(dpath, sub2, src), `\`, "/")
	return fc, nil
}

func (r *resolver) sourceLine(f *INF, section, key string) *Line {
	for _, n := range []string{section + "." + r.t.Arch, section} {
		if ls := f.Section(n).Values(key); len(ls) > 0 {
			return ls[0]
		}
	}
	return nil
}

// regSections resolves an AddReg or DelReg directive's sections.
// regLine applies an AddReg or DelReg directive to ops; handled is false
// for any other directive.
func (r *resolver) regLine(f *INF, l *Line, ops []RegOp) (_ []RegOp, handled bool, err error) {
	switch strings.ToLower(l.Key) {
	case "addreg":
		ops, err = r.regSections(f, l, ops, false)
		return ops, true, err
	case "delreg":
		ops, err = r.regSections(f, l, ops, true)
		return ops, true, err
	}
	return ops, false, nil
}

// regOnly collects the AddReg and DelReg directives of a section that holds
// nothing else of interest (DDInstall.HW, an event log install section),
// following its Include and Needs.
func (r *resolver) regOnly(f *INF, name string, refLine int, ops []RegOp) ([]RegOp, error) {
	err := r.walk(f, name, refLine, map[string]bool{}, func(f *INF, s *Section) error {
		for _, l := range s.Lines {
			var err error
			if ops, _, err = r.regLine(f, l, ops); err != nil {
				return wrapLine(f, l, err)
			}
		}
		return nil
	})
	return ops, err
}

func (r *resolver) regSections(f *INF, l *Line, ops []RegOp, del bool) ([]RegOp, error) {
	for _, name := range l.Fields {
		if name == "" {
			continue
		}
		s := f.Section(name)
		if s == nil {
			kind := "AddReg"
			if del {
				kind = "DelReg"
			}
			return nil, errorf(f.Name, l.Num, "section [%s] referenced by %s is missing", name, kind)
		}
		for _, rl := range s.Lines {
			if rl.HasKey {
				// An unquoted = in a registry line: rejoin it.
				rl = &Line{Num: rl.Num, Fields: append([]string{rl.Key + "=" + rl.Field(0)}, rl.Fields[min(1, len(rl.Fields)):]...)}
			}
			op, err := parseRegLine(rl, del)
			if err != nil {
				return nil, errorf(f.Name, rl.Num, "[%s]: %v", s.Name, err)
			}
			op.INF, op.Line = f.Name, rl.Num
			ops = append(ops, op)
		}
	}
	return ops, nil
}

func parseRegLine(l *Line, del bool) (RegOp, error) {
	op := RegOp{Root: strings.ToUpper(l.Field(0)), Key: l.Field(1), Value: l.Field(2)}
	switch op.Root {
	case "HKR", "HKLM", "HKCU", "HKCR", "HKU":
	case "HKEY_LOCAL_MACHINE":
		op.Root = "HKLM"
	default:
		return op, fmt.Errorf("unknown registry root \"%s\"", l.Field(0))
	}
	if strings.HasPrefix(op.Key, `\`) {
		op.Key = strings.TrimLeft(op.Key, `\`)
	}
	if fl := l.Field(3); fl != "" {
		v, err := parseNumber(fl)
		if err != nil {
			return op, fmt.Errorf("flags: %v", err)
		}
		op.Flags = v
	}
	if del {
		switch {
		case op.Flags&FlagDelStringMulti == FlagDelStringMulti:
			op.Op, op.Type, op.Data = OpDelString, RegMultiSZ, StringData(l.Field(4))
		case len(l.Fields) < 3:
			op.Op = OpDelKey
		default:
			op.Op = OpDelValue
		}
		return op, nil
	}
	switch {
	case op.Flags&FlagKeyOnly != 0 || len(l.Fields) < 3:
		op.Op = OpKey
		return op, nil
	case op.Flags&FlagDelVal != 0:
		op.Op = OpDelValue
		return op, nil
	}
	op.Op = OpSet
	data := l.Fields[min(4, len(l.Fields)):]
	if op.Flags&FlagBinValueType == 0 {
		switch op.Flags >> 16 {
		case 0:
			op.Type, op.Data = RegSZ, StringData(strings.Join(data[:min(1, len(data))], ""))
		case 1:
			op.Type = RegMultiSZ
			ms := []string{}
			for _, s := range data {
				ms = append(ms, s)
			}
			op.Data = MultiData(ms)
		case 2:
			op.Type, op.Data = RegExpandSZ, StringData(strings.Join(data[:min(1, len(data))], ""))
		default:
			return op, fmt.Errorf("flags 0x%08x: unknown string type", op.Flags)
		}
		return op, nil
	}
	switch op.Flags >> 16 {
	case 0:
		op.Type = RegBinary
	case 1:
		op.Type = RegDWORD
	case 2:
		op.Type = RegNone
	default:
		op.Type = op.Flags >> 16 // FLG_ADDREG_BINVALUETYPE with a custom type
	}
	if op.Type == RegDWORD && len(data) <= 1 {
		var v uint32
		if len(data) == 1 && data[0] != "" {
			var err error
			if v, err = parseNumber(data[0]); err != nil {
				return op, fmt.Errorf("DWORD %v", err)
			}
		}
		op.Data = DWORDData(v)
		return op, nil
	}
	b := Binary{}
	for _, s := range data {
		// Quoted bytes are tolerated (VIA Rhine III INF, per IntegrateDrv).
		s = strings.TrimPrefix(strings.TrimPrefix(strings.Trim(s, `"`), "0x"), "0X")
		if s == "" {
			continue
		}
		var v uint64
		if _, err := fmt.Sscanf(s, "%x", &v); err != nil || v > 0xff || len(s) > 2 {
			return op, fmt.Errorf("binary byte \"%s\" is not two hex digits", s)
		}
		b = append(b, byte(v))
	}
	if op.Type == RegDWORD {
		// The old byte-list form of a DWORD: up to four bytes, little-endian.
		if len(b) > 4 {
			return op, fmt.Errorf("DWORD given as %d bytes", len(b))
		}
		var v uint32
		for i, c := range b {
			v |= uint32(c) << (8 * i)
		}
		op.Data = DWORDData(v)
		return op, nil
	}
	op.Data = BinaryData(b)
	return op, nil
}

// service resolves one AddService line.
func (r *resolver) service(f *INF, l *Line) (*Service, error) {
	svc := &Service{Name: l.Field(0)}
	if svc.Name == "" {
		return nil, nil // "AddService = ,2": a device that needs no service
	}
	if err := checkName(svc.Name); err != nil {
		return nil, errorf(f.Name, l.Num, "AddService: %v", err)
	}
	if v := l.Field(1); v != "" {
		n, err := parseNumber(v)
		if err != nil {
			return nil, errorf(f.Name, l.Num, "AddService flags: %v", err)
		}
		svc.Flags = n
	}
	svc.TagToFront = svc.Flags&0x1 != 0
	secName := l.Field(2)
	if secName == "" {
		return nil, errorf(f.Name, l.Num, "AddService %s names no service-install section", svc.Name)
	}
	have := map[string]bool{}
	err := r.walk(f, secName, l.Num, map[string]bool{}, func(f *INF, s *Section) error {
		for _, sl := range s.Lines {
			var err error
			switch strings.ToLower(sl.Key) {
			case "displayname":
				svc.DisplayName = sl.Field(0)
			case "description":
				svc.Description = sl.Field(0)
			case "servicetype":
				svc.ServiceType, err = parseNumber(sl.Field(0))
			case "starttype":
				svc.StartType, err = parseNumber(sl.Field(0))
			case "errorcontrol":
				svc.ErrorControl, err = parseNumber(sl.Field(0))
			case "loadordergroup":
				svc.LoadOrderGroup = sl.Field(0)
			case "dependencies":
				for _, d := range sl.Fields {
					if d == "" {
						continue
					}
					svc.Dependencies = append(svc.Dependencies, d)
					if strings.HasPrefix(d, "+") {
						svc.DependOnGroup = append(svc.DependOnGroup, d[1:])
					} else {
						svc.DependOnService = append(svc.DependOnService, d)
					}
				}
			case "servicebinary":
				svc.ServiceBinary, err = expandDirIDPath(sl.Field(0), r.t.Arch)
			case "startname":
				svc.StartName = sl.Field(0)
			case "security":
				svc.Security = sl.Field(0)
			case "addreg", "delreg":
				svc.Registry, _, err = r.regLine(f, sl, svc.Registry)
			}
			if err != nil {
				return wrapLine(f, sl, err)
			}
			have[strings.ToLower(sl.Key)] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"servicetype", "starttype", "errorcontrol", "servicebinary"} {
		if !have[k] {
			return nil, errorf(f.Name, l.Num, "service-install section [%s] of %s lacks %s", secName, svc.Name, k)
		}
	}
	if svc.ServiceType&0x3 != 0 { // kernel or file-system driver
		svc.ImagePath = svc.ServiceBinary
	} else {
		svc.ImagePath = joinWin(`%SystemRoot%`, svc.ServiceBinary)
	}
	if el := l.Field(3); el != "" {
		ev := &EventLog{Type: l.Field(4), Name: l.Field(5)}
		if ev.Type == "" {
			ev.Type = "System"
		}
		if ev.Name == "" {
			ev.Name = svc.Name
		}
		var err error
		if ev.Registry, err = r.regOnly(f, el, l.Num, ev.Registry); err != nil {
			return nil, err
		}
		svc.EventLog = ev
	}
	return svc, nil
}
