package integrate

import (
	"fmt"
	"path"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/inftext"
)

// textPlanner owns the edited setup text files: txtsetup.sif (and its
// copies), dosnet.inf, hivesys.inf and hivesft.inf, edited through Text.
// Its methods plan the GUI-mode staging entries, text-mode loading and
// the critical-device database; the registry lines of the hive INFs are
// the hivePlanner's, written through do.
type textPlanner struct {
	*planEnv
	files []*planFile
}

// planFile is one text file of the plan: as read, and as edited.
type planFile struct {
	logical string // TxtSetupSIF, DosNetINF
	path    string
	orig    []byte
	text    *Text
}

// read reads the tree's text files: txtsetup.sif and its copies,
// dosnet.inf when the tree has one, the hive INFs.
func (p *textPlanner) read() error {
	t := p.tree
	add := func(logical, name string) error {
		b, err := imagefs.ReadFile(t.FS, name)
		if err != nil {
			return fmt.Errorf("integrate: %w", err)
		}
		x, err := ParseText(name, b, nil)
		if err != nil {
			return err
		}
		p.files = append(p.files, &planFile{logical, name, b, x})
		return nil
	}
	if err := add(TxtSetupSIF, t.TxtSetup); err != nil {
		return err
	}
	for _, c := range t.TxtSetupCopies {
		if err := add(TxtSetupSIF, c); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		logical, name string
		optional      bool // "" when the tree has none
	}{
		{DosNetINF, t.DosNet, true}, {HiveSysINF, t.HiveSys, false},
		{HiveSftINF, t.HiveSft, false}, {HiveSft32INF, t.HiveSft32, true},
	} {
		if f.optional && f.name == "" {
			continue
		}
		if err := add(f.logical, f.name); err != nil {
			return err
		}
	}
	return nil
}

// text returns the primary in-memory copy of a logical file, or nil.
func (p *textPlanner) text(logical string) *Text {
	for _, f := range p.files {
		if f.logical == logical {
			return f.text
		}
	}
	return nil
}

// do applies e to every copy of its file and records it once.
func (p *textPlanner) do(e Edit) {
	for _, f := range p.files {
		if f.logical == e.File && e.Apply(f.text) {
			e.Changed = true
		}
	}
	p.recordOnce(e)
}

// sourceDisk returns entry 1 of txtsetup.sif's [SourceDisksNames.<arch>].
func (p *textPlanner) sourceDisk() (setupDisk, error) {
	t := p.tree
	sdn := "SourceDisksNames." + t.Arch
	var d setupDisk
	for _, e := range p.text(TxtSetupSIF).Entries(sdn) {
		if e.Key == "1" && len(e.Fields) >= 2 {
			d = setupDisk{e.Fields[0], e.Fields[1]}
		}
	}
	if d.desc == "" {
		return d, fmt.Errorf("integrate: %s: [%s] has no entry 1 to copy the disk name from", t.TxtSetup, sdn)
	}
	return d, nil
}

// A setupDisk is the source disk of the setup directory: entry 1 of
// [SourceDisksNames.<arch>], whose name and tag file the staging disks
// repeat.
type setupDisk struct{ desc, tag string }

// stagingIDs are the ids of a staging directory: its source disk, its
// [WinntDirectories] entry and its dosnet.inf [Directories] entry ("" when
// the tree has no dosnet.inf).
type stagingIDs struct{ disk, winnt, dosnet string }

// addStagingDir plans the staging directory <setup dir>\scsidrv\<dir>
// (dir a backslash path) as a source disk like src, the Windows directory
// %SystemRoot%\TEMP\SCSIDRV\<dir> and, with dosnet.inf, a directory and
// an optional source directory winnt32 copies.
func (p *textPlanner) addStagingDir(src setupDisk, dir, why string) stagingIDs {
	t := p.tree
	sif := p.text(TxtSetupSIF)
	sdn := "SourceDisksNames." + t.Arch
	media := `\` + strings.ToLower(path.Base(t.SetupDir)) + `\scsidrv\` + dir
	win := `TEMP\SCSIDRV\` + dir
	var id stagingIDs
	id.disk, _ = allocID(sif, sdn, 3, media, firstDiskID, "")
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdn, Key: id.disk, Value: quote(src.desc) + "," + src.tag + ",," + media, Why: why})
	id.winnt, _ = allocID(sif, "WinntDirectories", 0, win, firstWinntDir, "")
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "WinntDirectories", Key: id.winnt, Value: win, Why: why})
	if dn := p.text(DosNetINF); dn != nil {
		id.dosnet, _ = allocID(dn, "Directories", 0, media, firstDosNetDir, "d")
		p.do(Edit{File: DosNetINF, Op: OpSet, Section: "Directories", Key: id.dosnet, Value: media, Why: why})
		p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "OptionalSrcDirs", Value: `scsidrv\` + dir, Why: why})
	}
	return id
}

// addStagedFile plans the copy of the staged file name from the staging
// directory id: its [SourceDisksFiles.<arch>] line and, with dosnet.inf,
// its [Files] line.
func (p *textPlanner) addStagedFile(id stagingIDs, name, why string) {
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SourceDisksFiles." + p.tree.Arch, Key: name,
		Match: &FieldMatch{7, id.winnt}, Value: id.disk + ",,,,,,," + id.winnt + ",0,0", Why: why})
	if id.dosnet != "" {
		p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: id.dosnet + "," + name, Why: why})
	}
}

// stage copies every file of the package's INFs into the staging tree
// \<setup>\scsidrv\<inf>\… for GUI-mode setup: a source disk and a
// Windows directory per subdirectory, a SourceDisksFiles line per file.
// It returns the staging directories as the installed system names them,
// for the registry's DevicePath.
func (p *textPlanner) stage(pkg *drivers.Package, devs []*drivers.Device) ([]string, error) {
	src, err := p.sourceDisk()
	if err != nil {
		return nil, err
	}

	type staged struct{ rel string }
	byINF := map[string][]staged{}
	var infs []string
	addFile := func(inf, rel string) {
		if _, ok := byINF[inf]; !ok {
			infs = append(infs, inf)
		}
		for _, s := range byINF[inf] {
			if strings.EqualFold(s.rel, rel) {
				return
			}
		}
		byINF[inf] = append(byINF[inf], staged{rel})
	}
	for _, d := range devs {
		addFile(d.INF, d.INF)
		if d.CatalogFile != "" {
			if src, ok := pkg.Lookup(d.CatalogFile); ok {
				addFile(d.INF, src)
			} else {
				p.warn("%s: catalog %s is not in the package; GUI-mode setup will see the driver unsigned", d.INF, d.CatalogFile)
			}
		}
		for _, fc := range d.Files {
			addFile(d.INF, fc.Source)
		}
	}
	var devPath []string
	for _, inf := range infs {
		name := stagingName(inf)
		devPath = append(devPath, `%SystemRoot%\TEMP\SCSIDRV\`+name)
		why := "staging " + inf
		dirs := map[string]stagingIDs{} // subdir → its directory ids
		for _, s := range byINF[inf] {
			sub := strings.ToLower(path.Dir(s.rel))
			id, ok := dirs[sub]
			if !ok {
				dir := name
				if sub != "." {
					dir += `\` + strings.ReplaceAll(sub, "/", `\`)
				}
				id = p.addStagingDir(src, dir, why)
				dirs[sub] = id
			}
			p.addStagedFile(id, path.Base(s.rel), why)
		}
	}
	return devPath, nil
}

// textMode makes text-mode setup copy and load the driver files from the
// setup directory (research §6.5, §6.6; SCSI.Load for storage drivers).
func (p *textPlanner) textMode(tfs []*textFile) {
	t := p.tree
	sdf := "SourceDisksFiles." + t.Arch
	dn := p.text(DosNetINF)
	for _, f := range tfs {
		why := f.orig
		if f.service != nil {
			why = "service " + f.service.Name
		}
		if f.dirID == "2" { // a DLL: system32
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdf, Key: f.name, Match: &FieldMatch{7, "2"},
				Value: "1,,,,,,,2,0,0", Why: why})
			if dn != nil {
				p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: "d1," + f.name, Why: why})
			}
			continue
		}
		// A patched image is loaded, never copied (textModeUnpatched
		// installs the original), nor through SCSI.Load, which would copy it.
		scsi := f.service != nil && isStorage(f.dev) && f.service == functionService(f.dev) && f.patched == nil
		disp := "0"
		dest := ""
		if !strings.EqualFold(f.name, f.orig) && f.patched == nil {
			dest = f.orig
		}
		if scsi && dest == "" || f.patched != nil {
			disp = "3" // [SCSI.Load] copies it; a patched image is only loaded
		}
		v := "1,,,,,,4_,4," + disp + "," + disp
		if t.Minor != 0 || dest != "" {
			v += "," + dest + ",1,4"
		}
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: sdf, Key: f.name, Match: &FieldMatch{7, "4"}, Value: v, Why: why})
		if dn != nil {
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: "d1," + f.name, Why: why})
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "FloppyFiles.1", Value: "d1," + f.name, Why: why})
		}
		if disp == "3" && f.patched == nil {
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "FileFlags", Key: f.name, Value: "16", Why: why})
		}
		p.textModeUnpatched(f)
		if f.service == nil {
			continue
		}
		svc := f.service.Name
		if len(svc) > 8 && t.Layout == Media {
			p.warn("service %s: text-mode file %s is not an 8.3 name; an ISO 9660 level 1 CD cannot carry it", svc, f.name)
		}
		desc := f.service.DisplayName
		if desc == "" {
			desc = f.dev.Description
		}
		switch {
		case scsi:
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SCSI.Load", Key: svc, Value: f.name + ",4", Why: why})
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SCSI", Key: svc, Value: quote(desc), Why: why})
		case f.service.LoadOrderGroup != "":
			// A non-sticky load section; the service's Group in
			// setupreg.hiv decides the real order.
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "Keyboard.Load", Key: svc, Value: f.name, Why: why})
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "Keyboard", Key: svc,
				Value: quote(desc) + ",files.none," + svc, Why: why})
		default:
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "CdRomDrivers.Load", Key: svc, Value: f.name, Why: why})
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "CdRomDrivers", Key: svc, Value: quote(desc), Why: why})
		}
	}
}

// criticalDevices maps every hardware and compatible ID of each device to
// its function service in [HardwareIdsDatabase], with the class GUID for
// network adapters (NICBootConf needs it on the instance). Root-enumerated
// IDs are left out: those devices are pre-created in the Enum tree.
func (p *textPlanner) criticalDevices(devs []*drivers.Device) {
	for _, d := range devs {
		s := functionService(d)
		if s == nil {
			p.warn("%s: %s has no service; no critical-device entry", d.INF, d.HardwareID)
			continue
		}
		v := quote(s.Name)
		if isNIC(d) {
			v += "," + NetClassGUID
		}
		ids := append([]string{d.HardwareID}, d.CompatibleIDs...)
		for _, id := range ids {
			if id == "" || strings.HasPrefix(strings.ToUpper(id), `ROOT\`) {
				continue
			}
			p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "HardwareIdsDatabase", Key: id, Value: v, Why: d.Description})
		}
	}
}

// enableGUIBoot removes /noguiboot from [SetupData] OsLoadOptions so that
// sanbootconf's boot text shows (research §2 step 6).
func (p *textPlanner) enableGUIBoot() {
	v, ok := p.text(TxtSetupSIF).Value("SetupData", "OsLoadOptions")
	if !ok {
		return
	}
	var kept []string
	for _, o := range strings.Fields(inftext.Unquote(v)) {
		if !strings.EqualFold(o, "/noguiboot") {
			kept = append(kept, o)
		}
	}
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SetupData", Key: "OsLoadOptions",
		Value: quote(strings.Join(kept, " ")), Why: "sanbootconf: boot text needs the GUI boot screen"})
}

// textModeUnpatched plans the txtsetup.sif and dosnet.inf lines of the
// unpatched original of a patched service image (textMode's hook): it is
// copied to system32\drivers under its own name, for the installed
// system, while the patched file is only loaded in text mode.
func (p *textPlanner) textModeUnpatched(f *textFile) {
	if f.patched == nil {
		return
	}
	why := "service " + f.service.Name + ": unpatched image for the installed system"
	v := "1,,,,,,4_,4,0,0"
	if p.tree.Minor != 0 {
		v += ",,1,4"
	}
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "SourceDisksFiles." + p.tree.Arch, Key: f.orig,
		Match: &FieldMatch{7, "4"}, Value: v, Why: why})
	if p.text(DosNetINF) != nil {
		p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "Files", Value: "d1," + f.orig, Why: why})
	}
}

// tcpipLoad loads NDIS, IPSec and TCP/IP in text mode (research §7.1)
// and, on media, has winnt32 copy their files to the boot directory.
func (p *textPlanner) tcpipLoad() {
	const why = "network adapter: TCP/IP in text mode"
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "BusExtenders.Load", Key: "ndis", Value: "ndis.sys", Why: why})
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "BusExtenders", Key: "ndis", Value: `"NDIS",files.none,ndis`, Why: why})
	if p.tree.Minor != 0 {
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers.Load", Key: "ipsec", Value: "ipsec.sys", Why: why})
		p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers", Key: "ipsec", Value: `"IPSEC Driver"`, Why: why})
	}
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers.Load", Key: "tcpip", Value: "tcpip.sys", Why: why})
	p.do(Edit{File: TxtSetupSIF, Op: OpSet, Section: "DiskDrivers", Key: "tcpip", Value: `"TCP/IP Protocol Driver"`, Why: why})
	if p.text(DosNetINF) != nil {
		files := []string{"tdi.sy_", "ndis.sy_", "ipsec.sy_", "tcpip.sy_"}
		if p.tree.Minor == 0 {
			files = []string{"tdi.sy_", "ndis.sy_", "tcpip.sy_"}
		}
		for _, f := range files {
			p.do(Edit{File: DosNetINF, Op: OpAdd, Section: "FloppyFiles.1", Value: "d1," + f, Why: why})
		}
	}
}
