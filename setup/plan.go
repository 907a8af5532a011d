package setup

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/xpboot/xpboot/iso"
)

// Options control Stage.
type Options struct {
	Answers Answers
	// AnswerFile is a user answer file (unattend.txt / winnt.sif syntax)
	// merged under the answers above; AnswerFileName names it in messages.
	AnswerFile     []byte
	AnswerFileName string
	// Unattended writes a fully unattended WINNT.SIF and refuses to stage
	// when a key text mode requires is missing.
	Unattended bool
	// ConvertNTFS sets [Unattended] FileSystem=ConvertNTFS.
	ConvertNTFS bool
	// OEMDir is a $OEM$ tree staged as $WIN_NT$.~LS\$OEM$, with
	// OemPreinstall=Yes.
	OEMDir string
	// MigrateINF writes $WIN_NT$.~BT\MIGRATE.INF mapping C: to the staged
	// partition (image targets only).
	MigrateINF bool
	// Force stages over an existing stage, replacing it.
	Force bool
	// DryRun plans and checks everything and writes nothing.
	DryRun bool
	// Partition picks the target partition of an image (1–4); 0 the
	// active one, else the first FAT32 or NTFS one.
	Partition int
	// Integrate, when set, integrates drivers into the staged tree in the
	// same run.
	Integrate *IntegrateRequest
	// Progress is called with the bytes copied so far and the total.
	Progress func(done, total int64)
	// Now stamps the generated files; zero means time.Now().
	Now time.Time
	// Context, when set, cancels the stage between files; a cancelled
	// stage ends like a failed one, leaving the target as it was.
	Context context.Context
}

// Item is one file of the stage.
type Item struct {
	// Path is slash-separated, relative to the target's root.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// From is the source path, or "generated".
	From string `json:"from"`
	// Why says which rule put the file there.
	Why string `json:"why"`

	node *iso.Node
	data []byte
}

// Plan is the complete list of what a stage writes.
type Plan struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Media  *Media `json:"media"`
	// Dirs are created (with parents) before the files.
	Dirs  []string `json:"dirs"`
	Items []Item   `json:"files"`
	// Bytes is the total file size; Needed the free space the target must
	// have: the files rounded up to clusters, one cluster per directory,
	// plus txtsetup.sif's [DiskSpaceRequirements] (Reserved).
	Bytes    int64            `json:"bytes"`
	Needed   int64            `json:"needed"`
	Reserved map[string]int64 `json:"reserved,omitempty"`
	Free     int64            `json:"free"`
	// Replaced lists the existing stage entries --force removes.
	Replaced []string `json:"replaced,omitempty"`
	// BootCode says what the stage does to the disk's boot code.
	BootCode []string `json:"boot_code,omitempty"`
	Warnings []string `json:"warnings,omitempty"`

	dirSeen map[string]bool
	seen    map[string]int // lower-case path -> item index
}

func (p *Plan) addDir(d string) {
	if d == "" || d == "." {
		return
	}
	if p.dirSeen[strings.ToLower(d)] {
		return
	}
	p.addDir(path.Dir(d))
	p.dirSeen[strings.ToLower(d)] = true
	p.Dirs = append(p.Dirs, d)
}

// add appends a file; a path already planned is an error unless the
// same source put it there (dosnet.inf and txtsetup.sif name files twice).
func (p *Plan) add(it Item) error {
	key := strings.ToLower(it.Path)
	if i, ok := p.seen[key]; ok {
		if p.Items[i].node != nil && p.Items[i].node == it.node {
			return nil
		}
		return fmt.Errorf("setup: %s is planned twice (%s, then %s)", it.Path, p.Items[i].Why, it.Why)
	}
	p.addDir(path.Dir(it.Path))
	if it.node != nil {
		it.Size, it.From = it.node.Size, it.node.Path
	} else {
		it.Size, it.From = int64(len(it.data)), "generated"
	}
	p.seen[key] = len(p.Items)
	p.Items = append(p.Items, it)
	return nil
}

// addTree plans every file below n under dst.
func (p *Plan) addTree(n *iso.Node, dst, why string) error {
	p.addDir(dst)
	kids := append([]*iso.Node(nil), n.Children...)
	sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
	for _, c := range kids {
		d := dst + "/" + c.Name
		if c.Dir {
			if err := p.addTree(c, d, why); err != nil {
				return err
			}
			continue
		}
		if err := p.add(Item{Path: d, Why: why, node: c}); err != nil {
			return err
		}
	}
	return nil
}

// compressedName is setup's name for the compressed form of name: the
// last character of the extension replaced by "_" (ntkrnlmp.exe →
// ntkrnlmp.ex_; a name without extension gets "._").
func compressedName(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name + "._"
	}
	ext := name[i+1:]
	if ext == "" {
		return name + "_"
	}
	if len(ext) < 3 {
		return name + "_"
	}
	return name[:len(name)-1] + "_"
}

// findFile looks for name in dir, then for its compressed form.
func findFile(dir *iso.Node, name string) *iso.Node {
	if dir == nil {
		return nil
	}
	if n := find(dir, name); n != nil && !n.Dir {
		return n
	}
	if n := find(dir, compressedName(name)); n != nil && !n.Dir {
		return n
	}
	return nil
}

// planSource plans everything that depends only on the media: the local
// source, the root loader files and the ~BT boot set.
func planSource(src *Source, m *Media, opts *Options) (*Plan, error) {
	p := &Plan{Source: src.Name, Media: m, dirSeen: map[string]bool{}, seen: map[string]int{}}
	root := src.Root
	loader := find(root, m.LoaderDir)
	setupDir := find(root, m.SetupDir)

	// The root: the new system's loader and detector, setupldr as $LDR$,
	// txtsetup.sif.
	for _, f := range [][3]string{{"NTLDR", "NTLDR", "root boot file"}, {"NTDETECT.COM", "NTDETECT.COM", "root boot file"},
		{"SETUPLDR.BIN", "$LDR$", "setup loader, run through BOOTSECT.DAT"}} {
		if err := p.add(Item{Path: f[1], Why: f[2], node: find(loader, f[0])}); err != nil {
			return nil, err
		}
	}
	txt := find(setupDir, "TXTSETUP.SIF")
	if err := p.add(Item{Path: "TXTSETUP.SIF", Why: "text-mode setup script, root copy", node: txt}); err != nil {
		return nil, err
	}

	// ~BT: the boot floppy set of dosnet.inf.
	if err := p.planFloppyFiles(root, m, loader, setupDir); err != nil {
		return nil, err
	}
	for _, f := range []string{"TXTSETUP.SIF", "SETUPREG.HIV"} {
		n := find(setupDir, f)
		if n == nil {
			return nil, fmt.Errorf("setup: %s: %s lacks %s", src.Name, m.SetupDir, f)
		}
		if err := p.add(Item{Path: BootDir + "/" + f, Why: "setup loader's " + strings.ToLower(f), node: n}); err != nil {
			return nil, err
		}
	}
	if err := p.planLoaderFiles(src, m, loader, setupDir); err != nil {
		return nil, err
	}
	sif, err := winntSIF(m, opts)
	if err != nil {
		return nil, err
	}
	if err := p.add(Item{Path: BootDir + "/WINNT.SIF", Why: "answers: MsDosInitiated, floppyless" + answersNote(opts), data: sif}); err != nil {
		return nil, err
	}

	// ~LS: the whole source (winnt32 /makelocalsource), I386 and on x64
	// AMD64 as well.
	if err := p.addTree(loader, LocalDir+"/"+loader.Name, "local source (/makelocalsource)"); err != nil {
		return nil, err
	}
	if m.SetupDir != m.LoaderDir {
		if err := p.addTree(setupDir, LocalDir+"/"+setupDir.Name, "local source (/makelocalsource)"); err != nil {
			return nil, err
		}
	}
	if opts.OEMDir != "" {
		oem, err := iso.DirTree(opts.OEMDir)
		if err != nil {
			return nil, fmt.Errorf("setup: --oem: %w", err)
		}
		if err := p.addTree(oem, LocalDir+"/$OEM$", "--oem (OemPreinstall=Yes)"); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func answersNote(opts *Options) string {
	var n []string
	if opts.AnswerFileName != "" {
		n = append(n, "merged with "+opts.AnswerFileName)
	}
	if opts.Unattended {
		n = append(n, "unattended")
	}
	if len(n) == 0 {
		return ""
	}
	return " (" + strings.Join(n, ", ") + ")"
}

// planFloppyFiles adds dosnet.inf's [FloppyFiles.*] to ~BT. Each line is
// "dN,FILE" or "dN,FILE,NEWNAME"; dN is resolved through [Directories],
// whose paths are relative to the media root (XP: d1 = \i386) or, per the
// DOSNET.INF format note, to the directory holding dosnet.inf. A file
// listed uncompressed but present only compressed is staged compressed,
// as winnt32 copies it.
func (p *Plan) planFloppyFiles(root *iso.Node, m *Media, loader, setupDir *iso.Node) error {
	dosnetPath := m.tree.DosNet
	x, err := readText(root, dosnetPath)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	type dirRef struct {
		node *iso.Node
		rel  string // below the setup directory, for the ~BT path
	}
	dirs := map[string]dirRef{}
	for _, e := range x.Entries("Directories") {
		if e.Key == "" || len(e.Fields) == 0 {
			continue
		}
		v := strings.Trim(strings.ReplaceAll(e.Fields[0], `\`, "/"), "/")
		var ref dirRef
		first, rest, _ := strings.Cut(v, "/")
		switch {
		case v == "":
			ref = dirRef{setupDir, ""}
		case strings.EqualFold(first, setupDir.Name) || strings.EqualFold(first, loader.Name):
			ref = dirRef{find(root, v), rest}
		default:
			ref = dirRef{find(setupDir, v), v}
		}
		dirs[strings.ToLower(e.Key)] = ref
	}
	var sections []string
	for _, s := range x.Sections() {
		if strings.HasPrefix(strings.ToLower(s), "floppyfiles.") && !contains(sections, s) {
			sections = append(sections, s)
		}
	}
	if len(sections) == 0 {
		return fmt.Errorf("setup: %s has no [FloppyFiles.*] sections", dosnetPath)
	}
	var missing []string
	for _, s := range sections {
		for _, e := range x.Entries(s) {
			f := e.Fields
			if e.Key != "" || len(f) < 2 {
				continue
			}
			ref, ok := dirs[strings.ToLower(f[0])]
			if !ok {
				return fmt.Errorf("setup: %s [%s] %s: directory %s is not in [Directories]", dosnetPath, s, e.Value, f[0])
			}
			n := findFile(ref.node, f[1])
			if n == nil && ref.node != setupDir {
				n = findFile(setupDir, f[1])
			}
			if n == nil && loader != setupDir {
				n = findFile(loader, f[1]) // x64: 32-bit boot files stay in I386
			}
			if n == nil {
				missing = append(missing, fmt.Sprintf("[%s] %s", s, f[1]))
				continue
			}
			name := n.Name
			if len(f) >= 3 && f[2] != "" {
				name = f[2]
				if !strings.EqualFold(n.Name, f[1]) { // staged compressed: keep the compressed form of the new name
					name = compressedName(f[2])
				}
			}
			dst := BootDir + "/" + name
			if ref.rel != "" {
				dst = BootDir + "/" + strings.ToUpper(ref.rel) + "/" + name
			}
			if err := p.add(Item{Path: dst, Why: "dosnet.inf [" + s + "]", node: n}); err != nil {
				return err
			}
		}
	}
	if len(missing) > 0 {
		more := ""
		if len(missing) > 10 {
			more = fmt.Sprintf(" and %d more", len(missing)-10)
			missing = missing[:10]
		}
		return fmt.Errorf("setup: %s names boot files the media lacks: %s%s", dosnetPath, strings.Join(missing, ", "), more)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// planLoaderFiles adds to ~BT what setupldr loads in text mode according
// to txtsetup.sif: the drivers of the *.Load sections (SCSI, boot bus
// extenders, bus extenders, input devices, keyboard …), the [NLS] code
// page, case table and OEM font files, and the [SourceDisksFiles] lines
// whose media field is "x" (the loader marking ReactOS's setupldr reads).
// dosnet.inf's floppy sets normally list them already; one the media
// lacks is a warning, not an error, because the lists carry options for
// hardware many media do not ship.
func (p *Plan) planLoaderFiles(src *Source, m *Media, loader, setupDir *iso.Node) error {
	x, err := readText(src.Root, m.tree.TxtSetup)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	want := map[string]string{}
	var order []string
	note := func(name, why string) {
		name = strings.Trim(strings.TrimSpace(name), `"`)
		if name == "" || strings.ContainsAny(name, `\/:`) {
			return
		}
		k := strings.ToLower(name)
		if _, ok := want[k]; !ok {
			want[k] = why
			order = append(order, name)
		}
	}
	for _, s := range x.Sections() {
		ls := strings.ToLower(s)
		switch {
		case strings.HasSuffix(ls, ".load"):
			for _, e := range x.Entries(s) {
				if e.Key != "" && len(e.Fields) > 0 {
					note(e.Fields[0], "txtsetup.sif ["+s+"]")
				}
			}
		case ls == "nls":
			for _, e := range x.Entries(s) {
				if e.Key != "" && len(e.Fields) > 0 && strings.Contains(e.Fields[0], ".") {
					note(e.Fields[0], "txtsetup.sif [NLS] "+e.Key)
				}
			}
		case ls == "sourcedisksfiles" || ls == "sourcedisksfiles.x86" || ls == "sourcedisksfiles.amd64":
			if (ls == "sourcedisksfiles.x86" && m.Arch != "x86") || (ls == "sourcedisksfiles.amd64" && m.Arch != "amd64") {
				continue
			}
			for _, e := range x.Entries(s) {
				if e.Key != "" && len(e.Fields) > 6 && e.Fields[6] == "x" {
					note(e.Key, "txtsetup.sif ["+s+"] marked x")
				}
			}
		}
	}
	var lacking []string
	defer func() {
		if len(lacking) > 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("txtsetup.sif names %d text-mode files the media lacks, not staged: %s", len(lacking), strings.Join(lacking, ", ")))
		}
	}()
	for _, name := range order {
		if p.hasBootFile(name) {
			continue
		}
		n := findFile(setupDir, name)
		if n == nil {
			n = findFile(loader, name)
		}
		if n == nil {
			lacking = append(lacking, name+" ("+strings.TrimPrefix(want[strings.ToLower(name)], "txtsetup.sif ")+")")
			continue
		}
		if err := p.add(Item{Path: BootDir + "/" + n.Name, Why: want[strings.ToLower(name)], node: n}); err != nil {
			return err
		}
	}
	return nil
}

// hasBootFile reports whether name (or its compressed form) is already
// planned anywhere in ~BT.
func (p *Plan) hasBootFile(name string) bool {
	for _, n := range []string{name, compressedName(name)} {
		for _, it := range p.Items {
			if strings.HasPrefix(strings.ToLower(it.Path), strings.ToLower(BootDir)+"/") && strings.EqualFold(path.Base(it.Path), n) {
				return true
			}
		}
	}
	return false
}

// reserve computes Needed from the planned items for a file system with
// clusters of csize bytes, plus txtsetup.sif's reservation.
func (p *Plan) reserve(src *Source, csize, perEntry int64) {
	if csize <= 0 {
		csize = 4096
	}
	var need int64
	for _, it := range p.Items {
		need += (it.Size + csize - 1) / csize * csize
	}
	need += int64(len(p.Dirs)) * csize
	need += int64(len(p.Items)+len(p.Dirs)) * perEntry
	p.Bytes = 0
	for _, it := range p.Items {
		p.Bytes += it.Size
	}
	if x, err := readText(src.Root, p.Media.tree.TxtSetup); err == nil {
		var extra int64
		extra, p.Reserved = diskSpace(x)
		need += extra
	}
	p.Needed = need
}
