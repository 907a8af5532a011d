package setup

import (
	"fmt"
	"sort"
	"strings"

	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/internal/inftext"
)

// Answers are the winnt.sif answers given by flags; empty fields are not
// written (a user answer file may supply them).
type Answers struct {
	ProductKey    string `json:"product_key,omitempty"`
	ComputerName  string `json:"computer_name,omitempty"`
	FullName      string `json:"full_name,omitempty"`
	Org           string `json:"org,omitempty"`
	AdminPassword string `json:"-"`
	// TimeZone is winnt.sif's TimeZone index, e.g. "85" for GMT.
	TimeZone string `json:"timezone,omitempty"`
}

// Names of the staged tree.
const (
	BootDir      = "$WIN_NT$.~BT"
	LocalDir     = "$WIN_NT$.~LS"
	BootSectFile = "BOOTSECT.DAT"
	bootEntry    = `C:\$WIN_NT$.~BT\BOOTSECT.DAT`
)

// required lists the keys text mode and GUI mode need in a floppyless
// unattended run ("the entry … in the [UserData] section is corrupt or
// missing" otherwise), with the flag that supplies each.
func required(os string) [][3]string {
	key := "ProductKey"
	if os == "2000" {
		key = "ProductID" // Windows 2000's name for the key
	}
	return [][3]string{
		{"UserData", "FullName", "--full-name"},
		{"UserData", "ComputerName", "--computer-name"},
		{"UserData", key, "--product-key"},
	}
}

// winntSIF builds $WIN_NT$.~BT\WINNT.SIF: the user's answer file (if any)
// with the [Data] keys of a floppyless local-source run and the answers
// given as options set over it.
func winntSIF(m *Media, opts *Options) ([]byte, error) {
	base := opts.AnswerFile
	name := "WINNT.SIF"
	if opts.AnswerFileName != "" {
		name = opts.AnswerFileName
	}
	if len(base) == 0 {
		base = []byte("[Data]\r\n")
	}
	x, err := integrate.ParseText(name, base, nil)
	if err != nil {
		return nil, fmt.Errorf("setup: answer file %s: %w", name, err)
	}
	set := func(sec, key, val string) { x.Set(sec, key, val) }
	set("Data", "MsDosInitiated", `"1"`)
	set("Data", "floppyless", `"1"`)
	a := opts.Answers
	keyName := "ProductKey"
	if m.OS == "2000" {
		keyName = "ProductID"
	}
	if a.ProductKey != "" {
		set("UserData", keyName, inftext.Quote(a.ProductKey))
	}
	if a.ComputerName != "" {
		set("UserData", "ComputerName", inftext.Quote(a.ComputerName))
	}
	if a.FullName != "" {
		set("UserData", "FullName", inftext.Quote(a.FullName))
	}
	if a.Org != "" {
		set("UserData", "OrgName", inftext.Quote(a.Org))
	}
	if a.AdminPassword != "" {
		set("GuiUnattended", "AdminPassword", inftext.Quote(a.AdminPassword))
	}
	if a.TimeZone != "" {
		set("GuiUnattended", "TimeZone", a.TimeZone)
	}
	if opts.ConvertNTFS {
		set("Unattended", "FileSystem", "ConvertNTFS")
	}
	if opts.OEMDir != "" {
		set("Unattended", "OemPreinstall", "Yes")
	}
	if opts.Unattended {
		set("Data", "UnattendedInstall", `"Yes"`)
		set("Data", "AutoPartition", `"1"`)
		if _, ok := x.Value("Unattended", "UnattendMode"); !ok {
			set("Unattended", "UnattendMode", "FullUnattended")
		}
		if _, ok := x.Value("Unattended", "OemSkipEula"); !ok {
			set("Unattended", "OemSkipEula", "Yes")
		}
		if _, ok := x.Value("Unattended", "TargetPath"); !ok {
			set("Unattended", "TargetPath", `\WINDOWS`)
		}
		var missing []string
		for _, r := range required(m.OS) {
			v, ok := x.Value(r[0], r[1])
			if !ok || strings.TrimSpace(inftext.Unquote(v)) == "" {
				missing = append(missing, fmt.Sprintf("[%s] %s (%s)", r[0], r[1], r[2]))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("setup: --unattended: WINNT.SIF would lack %s; text-mode setup stops on a missing answer, so give them as options or in --answer-file", strings.Join(missing, ", "))
		}
	}
	return x.Bytes()
}

// bootINI returns BOOT.INI with the setup entry as default. An existing
// file keeps its other entries and settings; a new one gets a 5-second
// timeout.
func bootINI(existing []byte, title string) ([]byte, error) {
	if len(existing) == 0 {
		return []byte("[boot loader]\r\ntimeout=5\r\ndefault=" + bootEntry + "\r\n[operating systems]\r\n" +
			bootEntry + "=" + inftext.Quote(title) + "\r\n"), nil
	}
	x, err := integrate.ParseText("BOOT.INI", existing, nil)
	if err != nil {
		return nil, fmt.Errorf("setup: BOOT.INI: %w", err)
	}
	// New lines are written as bootcfg writes them, without spaces
	// around "="; an existing default line keeps its spacing.
	if _, ok := x.Value("boot loader", "default"); ok {
		x.Set("boot loader", "default", bootEntry)
	} else {
		x.EnsureSection("boot loader")
		x.AddLine("boot loader", "default="+bootEntry)
	}
	if _, ok := x.Value("operating systems", bootEntry); !ok {
		x.EnsureSection("operating systems")
		x.AddLine("operating systems", bootEntry+"="+inftext.Quote(title))
	}
	return x.Bytes()
}

// migrateINF maps C: to the staged partition: MountedDevices'
// \DosDevices\C: is the 12-byte MBR form, the disk signature then the
// partition's byte offset, both little-endian.
func migrateINF(signature uint32, offset int64) []byte {
	var b [12]byte
	for i := 0; i < 4; i++ {
		b[i] = byte(signature >> (8 * i))
	}
	for i := 0; i < 8; i++ {
		b[4+i] = byte(uint64(offset) >> (8 * i))
	}
	hex := make([]string, len(b))
	for i, c := range b {
		hex[i] = fmt.Sprintf("%02x", c)
	}
	return []byte("[Version]\r\nSignature = \"$Windows NT$\"\r\n\r\n[Addreg]\r\n" +
		`HKLM,"SYSTEM\MountedDevices","\DosDevices\C:",0x00030001,` + strings.Join(hex, ",") + "\r\n")
}

// diskSpace sums txtsetup.sif's [DiskSpaceRequirements] values, read as
// KiB (XP's WinDirSpace of about 1.5 million is its 1.5 GB install).
func diskSpace(sif *integrate.Text) (int64, map[string]int64) {
	parts := map[string]int64{}
	var total int64
	for _, e := range sif.Entries("DiskSpaceRequirements") {
		if e.Key == "" || len(e.Fields) == 0 {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(e.Fields[0], &n); err != nil || n < 0 || n > 1<<32 {
			continue
		}
		parts[e.Key] = n << 10
		total += n << 10
	}
	return total, parts
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
