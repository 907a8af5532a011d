package integrate

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/inftext"
)

// Errors Detect wraps, for errors.Is.
var (
	// ErrNotSetupTree: the directory has no setup layout at all.
	ErrNotSetupTree = errors.New("integrate: not a Windows 2000/XP/2003 setup tree")
	// ErrMissingFiles: the layout is there but required files are not.
	ErrMissingFiles = errors.New("integrate: setup tree incomplete")
	// ErrUnsupported: a layout or system this package cannot integrate into.
	ErrUnsupported = errors.New("integrate: unsupported setup tree")
)

// Layout is the kind of setup tree.
type Layout int

// Layouts Detect recognises.
const (
	// LocalSource is a winnt32 /makelocalsource /syspart tree:
	// $WIN_NT$.~BT (boot files) and $WIN_NT$.~LS\I386 (or AMD64).
	LocalSource Layout = iota + 1
	// Media is installation media or an nLite work folder: I386 or AMD64
	// at the top.
	Media
)

// String names the layout as reports show it.
func (l Layout) String() string {
	switch l {
	case LocalSource:
		return "local-source"
	case Media:
		return "media"
	}
	return "unknown"
}

// MarshalText renders the layout for JSON reports.
func (l Layout) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Tree is a detected setup tree. Paths are slash-separated, relative to
// the FS root and spelled as found on disk.
type Tree struct {
	FS     imagefs.FS `json:"-"`
	Layout Layout     `json:"layout"`
	// BootDir is $WIN_NT$.~BT for LocalSource, "" for Media.
	BootDir string `json:"bootDir,omitempty"`
	// SetupDir holds txtsetup.sif and the compressed files: I386 or
	// AMD64 (under $WIN_NT$.~LS for LocalSource).
	SetupDir string `json:"setupDir"`
	// Paths of the required files; DosNet is "" when absent (LocalSource).
	TxtSetup string `json:"txtsetup"`
	SetupReg string `json:"setupreg"`
	HiveSys  string `json:"hivesys"`
	HiveSft  string `json:"hivesft"`
	DosNet   string `json:"dosnet,omitempty"`
	// HiveSft32 is hivsft32.inf (64-bit systems: the Wow6432Node
	// software hive), "" when absent.
	HiveSft32 string `json:"hivesft32,omitempty"`
	// TxtSetupCopies are the other txtsetup.sif files setup reads
	// (~BT and the root of a LocalSource tree) that get the same edits.
	TxtSetupCopies []string `json:"txtsetupCopies,omitempty"`

	OS          string `json:"os"` // "2000", "XP" or "2003"
	Major       int    `json:"major"`
	Minor       int    `json:"minor"`
	ServicePack int    `json:"servicePack"`
	// ProductType is 1 workstation, 2 domain controller, 3 server.
	ProductType int    `json:"productType"`
	ProductName string `json:"productName,omitempty"`
	Arch        string `json:"arch"` // "x86" or "amd64"
	// Warnings lists what detection had to guess.
	Warnings []string `json:"warnings,omitempty"`
}

// Target returns the driver-resolution target for the tree.
func (t *Tree) Target() drivers.Target {
	return drivers.Target{Major: t.Major, Minor: t.Minor, Arch: t.Arch, ProductType: t.ProductType}
}

// archDir returns the on-disk name of the architecture directory of dir
// (AMD64 before I386: x64 media carry both, the 64-bit setup is in
// AMD64), and the architecture.
func archDir(fsys imagefs.FS, dir string) (string, string) {
	if n := lookup(fsys, dir, "amd64"); n != "" {
		return n, "amd64"
	}
	if n := lookup(fsys, dir, "i386"); n != "" {
		return n, "x86"
	}
	if n := lookup(fsys, dir, "ia64"); n != "" {
		return n, "ia64"
	}
	return "", ""
}

func isDir(fsys imagefs.FS, name string) bool {
	fi, err := fsys.Stat(name)
	return err == nil && fi.IsDir()
}

// Detect finds the setup layout at the root of fsys, checks the files
// integration needs and identifies the system. It reads only.
func Detect(fsys imagefs.FS) (*Tree, error) {
	t := &Tree{FS: fsys}
	if _, err := fsys.ReadDir("."); err != nil {
		return nil, fmt.Errorf("integrate: reading target: %w", err)
	}
	ls := lookup(fsys, ".", "$WIN_NT$.~LS")
	var arch string
	switch {
	case ls != "" && isDir(fsys, ls):
		t.Layout = LocalSource
		bt := lookup(fsys, ".", "$WIN_NT$.~BT")
		if bt == "" || !isDir(fsys, bt) {
			return nil, fmt.Errorf("%w: %s exists but $WIN_NT$.~BT does not (winnt32 /makelocalsource /syspart makes both)", ErrMissingFiles, ls)
		}
		t.BootDir = bt
		d, a := archDir(fsys, ls)
		if d == "" {
			return nil, fmt.Errorf("%w: %s has no I386 or AMD64 directory", ErrMissingFiles, ls)
		}
		t.SetupDir, arch = ls+"/"+d, a
	default:
		d, a := archDir(fsys, ".")
		if d == "" || !isDir(fsys, d) {
			return nil, fmt.Errorf("%w: no $WIN_NT$.~LS, I386 or AMD64 directory", ErrNotSetupTree)
		}
		t.Layout, t.SetupDir, arch = Media, d, a
	}
	if arch == "ia64" {
		return nil, fmt.Errorf("%w: Itanium (IA64) setup", ErrUnsupported)
	}
	t.Arch = arch

	need := []struct {
		name string
		dst  *string
	}{{"TXTSETUP.SIF", &t.TxtSetup}, {"SETUPREG.HIV", &t.SetupReg}, {"HIVESYS.INF", &t.HiveSys}, {"HIVESFT.INF", &t.HiveSft}}
	if t.Layout == Media {
		need = append(need, struct {
			name string
			dst  *string
		}{"DOSNET.INF", &t.DosNet})
	}
	var missing []string
	for _, n := range need {
		f := lookup(fsys, t.SetupDir, n.name)
		if f == "" {
			missing = append(missing, n.name)
			continue
		}
		*n.dst = t.SetupDir + "/" + f
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s lacks %s", ErrMissingFiles, t.SetupDir, strings.Join(missing, ", "))
	}
	if f := lookup(fsys, t.SetupDir, "hivsft32.inf"); f != "" {
		t.HiveSft32 = t.SetupDir + "/" + f
	}
	if t.Layout == LocalSource {
		for _, d := range []string{t.BootDir, "."} {
			if f := lookup(fsys, d, "txtsetup.sif"); f != "" {
				t.TxtSetupCopies = append(t.TxtSetupCopies, path.Join(d, f))
			}
		}
	}
	if err := t.identify(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tree) readText(name string) (*Text, error) {
	b, err := imagefs.ReadFile(t.FS, name)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	return ParseText(name, b, nil)
}

// regValue finds `HKLM,"key","name",flags,data` in any section of a
// hive INF and returns data.
func regValue(x *Text, key, name string) (string, bool) {
	for _, sec := range x.Sections() {
		for _, e := range x.Entries(sec) {
			f := e.Fields
			if e.Key == "" && len(f) >= 5 && strings.EqualFold(f[0], "HKLM") &&
				strings.EqualFold(f[1], key) && strings.EqualFold(f[2], name) {
				return f[4], true
			}
		}
	}
	return "", false
}

// (Compiled at first use: every xpboot command pays for what package
// variables compute at start.)
var spMarker = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^(?:.*\.sp([1-9])|sp([1-9])\.(?:cab|cat))$`) })

// identify reads OS, version, service pack and product type as
// IntegrateDrv does (WindowsInstallation.cs): ProductName from
// hivesft.inf, version from txtsetup.sif [SetupData], CSDVersion and
// ProductType from hivesys.inf; the fallbacks are noted in Warnings.
func (t *Tree) identify() error {
	sif, err := t.readText(t.TxtSetup)
	if err != nil {
		return err
	}
	sys, err := t.readText(t.HiveSys)
	if err != nil {
		return err
	}
	sft, err := t.readText(t.HiveSft)
	if err != nil {
		return err
	}
	num := func(s string) (int, bool) {
		n, err := strconv.ParseInt(strings.TrimSpace(inftext.Unquote(s)), 0, 64)
		return int(n), err == nil
	}
	t.Major, t.Minor = 5, -1
	if v, ok := sif.Value("SetupData", "MajorVersion"); ok {
		if n, ok := num(v); ok {
			t.Major = n
		}
	}
	if v, ok := sif.Value("SetupData", "MinorVersion"); ok {
		if n, ok := num(v); ok {
			t.Minor = n
		}
	}
	if t.Major != 5 {
		return fmt.Errorf("%w: %s: MajorVersion %d (only 5: 2000, XP, 2003)", ErrUnsupported, t.TxtSetup, t.Major)
	}

	t.ProductName, _ = regValue(sft, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, "ProductName")
	pn := strings.ToLower(t.ProductName)
	switch {
	case strings.Contains(pn, "2000"):
		t.OS = "2000"
	case strings.Contains(pn, "xp"):
		t.OS = "XP"
	case strings.Contains(pn, "2003"):
		t.OS = "2003"
	}

	if v, ok := regValue(sys, `SYSTEM\CurrentControlSet\Control\ProductOptions`, "ProductType"); ok {
		switch strings.ToLower(v) {
		case "winnt":
			t.ProductType = 1
		case "lanmannt":
			t.ProductType = 2
		case "servernt":
			t.ProductType = 3
		}
	}
	if t.ProductType == 0 {
		// txtsetup.sif [SetupData] ProductType: 0 Professional, 4 Home;
		// the others are server editions.
		t.ProductType = 1
		if v, ok := sif.Value("SetupData", "ProductType"); ok {
			if n, ok := num(v); ok && n != 0 && n != 4 {
				t.ProductType = 3
			}
		} else if t.OS == "2003" {
			t.ProductType = 3
		}
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s has no ProductOptions ProductType; assumed %d", t.HiveSys, t.ProductType))
	}

	if t.Minor < 0 {
		switch t.OS {
		case "2000":
			t.Minor = 0
		case "XP":
			t.Minor = 1
			if t.Arch == "amd64" {
				t.Minor = 2
			}
		case "2003":
			t.Minor = 2
		default:
			return fmt.Errorf("%w: %s has no [SetupData] MinorVersion and %s no known ProductName", ErrUnsupported, t.TxtSetup, t.HiveSft)
		}
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s has no [SetupData] MinorVersion; assumed 5.%d from the product name", t.TxtSetup, t.Minor))
	}
	if t.Minor < 0 || t.Minor > 2 {
		return fmt.Errorf("%w: %s: version 5.%d", ErrUnsupported, t.TxtSetup, t.Minor)
	}
	if t.Arch == "amd64" && t.Minor != 2 {
		return fmt.Errorf("%w: %s: AMD64 directory but version 5.%d", ErrUnsupported, t.TxtSetup, t.Minor)
	}
	byVersion := map[int]string{0: "2000", 1: "XP", 2: "2003"}[t.Minor]
	if t.Minor == 2 && t.Arch == "amd64" && t.ProductType == 1 {
		byVersion = "XP"
	}
	switch {
	case t.OS == "":
		t.OS = byVersion
		if t.ProductName == "" {
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s has no ProductName; Windows %s assumed from version 5.%d", t.HiveSft, t.OS, t.Minor))
		} else {
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s: unknown ProductName %q; Windows %s assumed from version 5.%d", t.HiveSft, t.ProductName, t.OS, t.Minor))
		}
	case t.OS != byVersion:
		return fmt.Errorf("%w: %s says %q but %s says version 5.%d", ErrUnsupported, t.HiveSft, t.ProductName, t.TxtSetup, t.Minor)
	}

	if v, ok := regValue(sys, `SYSTEM\CurrentControlSet\Control\Windows`, "CSDVersion"); ok {
		if n, ok := num(v); ok {
			t.ServicePack = n >> 8
		}
	} else {
		// No CSDVersion: look for the service-pack tag files
		// (WIN51IP.SP2) or cabinets (SP2.CAB) media carry.
		for _, d := range []string{".", t.SetupDir} {
			ents, _ := t.FS.ReadDir(d)
			for _, e := range ents {
				if m := spMarker().FindStringSubmatch(e.Name()); m != nil {
					n, _ := strconv.Atoi(m[1] + m[2])
					t.ServicePack = max(t.ServicePack, n)
				}
			}
		}
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s has no CSDVersion; service pack %d from tag files", t.HiveSys, t.ServicePack))
	}
	return nil
}
