package integrate

import (
	"debug/pe"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/xpboot/xpboot/drivers"
)

// AddTextModeDriver plans the integration of a text-mode driver disk
// (--textmode-driver): the option id of the [scsi] component of its
// txtsetup.oem, or its [Defaults] option when id is empty, read from the
// package directory dir (research §5). Text-mode setup loads the driver
// through [SCSI.Load] from the setup directory (and the boot directory of
// a local source), its hardware IDs go to [HardwareIdsDatabase], its
// [Config.<DriverKey>] values to hivesys.inf and setupreg.hiv, and every
// file of the option is staged for GUI-mode setup as PnP drivers are.
//
// Everything is checked first — the option, every file, the binaries'
// architecture — and nothing is planned when something is wrong.
func (p *Plan) AddTextModeDriver(dir string, oem *drivers.TxtSetupOEM, id string) error {
	d, err := readOEMDriver(p.Tree, dir, oem, id)
	if err != nil {
		return err
	}
	src, err := p.texts.sourceDisk()
	if err != nil {
		return err
	}
	if len(d.opt.Config) > 0 {
		// The [Config] values go to setupreg.hiv: a hive that does not
		// load must fail before anything is planned.
		if _, err := p.hives.setupRegLoad(); err != nil {
			return err
		}
	}

	// Plan: the text files, the files, the registry.
	p.texts.oemTextMode(d, src)
	if err := p.copies.oemFiles(d); err != nil {
		return err
	}
	if err := p.hives.oemConfig(d); err != nil {
		return err
	}
	p.hives.devicePath([]string{`%SystemRoot%\TEMP\SCSIDRV\` + d.staging})
	return nil
}

// An oemDriver is a txtsetup.oem [scsi] option read and checked for the
// tree (readOEMDriver): its files, which of them text mode loads, and the
// names the plan gives them.
type oemDriver struct {
	opt     *drivers.OEMOption
	files   []oemFile // every file of the option, once
	drvs    []oemFile // its driver files
	why     string    // "text-mode driver <id>", for edits and outputs
	staging string    // the staging subdirectory (oemStagingName)
}

// An oemFile is one file of a txtsetup.oem option and its content.
type oemFile struct {
	f    drivers.OEMFile
	data []byte
}

// readOEMDriver reads the option id of the [scsi] component of oem from
// the package directory dir and checks every file: readable, and each
// binary of the tree's architecture.
func readOEMDriver(t *Tree, dir string, oem *drivers.TxtSetupOEM, id string) (*oemDriver, error) {
	if oem == nil {
		return nil, fmt.Errorf("integrate: %s: no txtsetup.oem", dir)
	}
	oemPath := filepath.Join(dir, oem.Name)
	opt, err := oemOption(oem, id)
	if err != nil {
		return nil, fmt.Errorf("integrate: %s: %w", oemPath, err)
	}
	want := map[string]uint16{"x86": pe.IMAGE_FILE_MACHINE_I386, "amd64": pe.IMAGE_FILE_MACHINE_AMD64}[t.Arch]
	d := &oemDriver{opt: opt, why: "text-mode driver " + opt.ID, staging: oemStagingName(opt.ID)}
	seen := map[string]bool{}
	for _, f := range opt.Files {
		if seen[strings.ToLower(f.Name)] {
			continue // listed twice (driver and a second type): copied once
		}
		seen[strings.ToLower(f.Name)] = true
		src := filepath.Join(dir, filepath.FromSlash(f.Source))
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("integrate: %s:%d: [Files.scsi.%s] %s: %w", oemPath, f.Line, opt.ID, f.Name, err)
		}
		low := strings.ToLower(f.Name)
		if strings.HasSuffix(low, ".sys") || strings.HasSuffix(low, ".dll") {
			if m := peMachine(b); m != 0 && m != want {
				return nil, fmt.Errorf("%w: %s is for machine 0x%x, the setup tree is %s", ErrArch, src, m, t.Arch)
			}
		}
		of := oemFile{f, b}
		d.files = append(d.files, of)
		if f.Type == "driver" {
			d.drvs = append(d.drvs, of)
		}
	}
	if len(d.drvs) == 0 {
		return nil, fmt.Errorf("integrate: %s: [Files.scsi.%s] has no driver line", oemPath, opt.ID)
	}
	return d, nil
}

// oemTextMode plans the txtsetup.sif and dosnet.inf lines of a
// txtsetup.oem driver: its staging directory (like src) and files, the
// drivers loaded through [SCSI.Load], its hardware IDs.
func (p *textPlanner) oemTextMode(d *oemDriver, src setupDisk) {
	t, why := p.tree, d.why
	for _, f := range d.files {
		if !is83(f.f.Name) {
			p.warn("%s: %s is not an 8.3 name; text-mode setup loading it from a FAT boot folder or an ISO 9660 level 1 CD may not find it", why, f.f.Name)
		}
	}
	if !is83(d.staging) && t.Layout == Media {
		p.warn("%s: staging directory %s is not an 8.3 name; an ISO 9660 level 1 CD cannot carry it", why, d.staging)
	}
	ids := p.addStagingDir(src, d.staging, why)
	for _, f := range d.files {
		p.addStagedFile(ids, f.f.Name, why)
	}
	sdf := "SourceDisksFiles." + t.Arch
	dn := p.text(DosNetINF)
	for _, f := range d.drvs {
		// [SCSI.Load] copies the file (disposition 3: never by
		// SourceDisksFiles), [FileFlags] 16 keeps GUI mode from copying
		// it again.
		v := "1,,,,,,4_,4,3,3"
		if t.Minor != 0 {
			v += ",,1,4"
		}
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdf, Key: f.f.Name, Match: &FieldMatch{7, "4"}, Value: v, Why: why})
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "FileFlags", Key: f.f.Name, Value: "16", Why: why})
		svc := strings.TrimSuffix(f.f.Name, filepath.Ext(f.f.Name))
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SCSI.Load", Key: svc, Value: f.f.Name + ",4", Why: why})
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SCSI", Key: svc, Value: quote(d.opt.Description), Why: why})
		if dn != nil {
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: "d1," + f.f.Name, Why: why})
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "FloppyFiles.1", Value: "d1," + f.f.Name, Why: why})
		}
	}
	for _, h := range d.opt.HardwareIDs {
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "HardwareIdsDatabase", Key: h.ID, Value: quote(h.Service), Why: why})
	}
}

// oemFiles plans the files of a txtsetup.oem driver: every file in its
// staging directory, the drivers also in the setup directory (and the
// boot directory of a local source), which text mode loads them from.
func (p *copyPlanner) oemFiles(d *oemDriver) error {
	t, why := p.tree, d.why
	stageDir := t.SetupDir + "/scsidrv/" + d.staging
	for _, f := range d.files {
		if _, err := p.putFile(stageDir+"/"+strings.ToLower(f.f.Name), f.data, KindBinary, why+": staged for GUI-mode setup"); err != nil {
			return err
		}
	}
	for _, f := range d.drvs {
		if _, err := p.putFile(t.SetupDir+"/"+f.f.Name, f.data, KindBinary, why+": loaded by text-mode setup"); err != nil {
			return err
		}
		if t.Layout == LocalSource && t.BootDir != "" {
			if _, err := p.putFile(t.BootDir+"/"+f.f.Name, f.data, KindBinary, why+": loaded by text-mode setup"); err != nil {
				return err
			}
		}
	}
	return nil
}

// oemConfig plans the [Config.<DriverKey>] values of a txtsetup.oem
// driver in hivesys.inf and setupreg.hiv.
func (p *hivePlanner) oemConfig(d *oemDriver) error {
	for _, c := range d.opt.Config {
		key := ccs + `Services\` + c.DriverKey
		if s := strings.Trim(c.Subkey, `\`); s != "" {
			key += `\` + s
		}
		p.setReg(key, c.Name, c.Type, c.Data, d.why)
		if err := p.setupRegSet(key, c.Name, c.Type, c.Data, d.why); err != nil {
			return err
		}
	}
	return nil
}

// oemOption picks the [scsi] option id, or the [Defaults] one, or the
// only one.
func oemOption(oem *drivers.TxtSetupOEM, id string) (*drivers.OEMOption, error) {
	var ids []string
	for _, o := range oem.Options {
		if o.Component == "scsi" {
			ids = append(ids, o.ID)
		}
	}
	sort.Strings(ids)
	list := strings.Join(ids, ", ")
	if id != "" {
		if o := oem.Option("scsi", id); o != nil {
			return o, nil
		}
		for _, o := range oem.Options {
			if strings.EqualFold(o.ID, id) {
				return nil, fmt.Errorf("option %s is a [%s] option; only [scsi] drivers are integrated (available: %s)", id, o.Component, list)
			}
		}
		return nil, fmt.Errorf("no [scsi] option %s (available: %s)", id, list)
	}
	if d := oem.Defaults["scsi"]; d != "" {
		if o := oem.Option("scsi", d); o != nil {
			return o, nil
		}
	}
	switch len(ids) {
	case 0:
		return nil, fmt.Errorf("no [scsi] driver options")
	case 1:
		return oem.Option("scsi", ids[0]), nil
	}
	return nil, fmt.Errorf("no [Defaults] scsi option and %d to choose from: name one (available: %s)", len(ids), list)
}

// oemStagingName is the staging subdirectory of a txtsetup.oem option:
// its ID in lower case, characters a file name cannot hold replaced.
func oemStagingName(id string) string {
	b := []byte(strings.ToLower(id))
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// is83 reports whether name is an MS-DOS 8.3 name: at most eight
// characters, an optional extension of at most three, no characters
// FAT short names and ISO 9660 level 1 refuse.
func is83(name string) bool {
	base, ext, dot := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || (dot && (len(ext) > 3 || strings.Contains(ext, "."))) {
		return false
	}
	for _, c := range base + ext {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '~') {
			return false
		}
	}
	return true
}
