package setup

import (
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/iso"
)

// Media is installation media identified from its own files.
type Media struct {
	// OS is "2000", "XP" or "2003"; Arch "x86" or "amd64".
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Version     string `json:"version"` // "5.1"
	ServicePack int    `json:"service_pack"`
	ProductName string `json:"product_name,omitempty"`
	// Edition is the edition txtsetup.sif's [SetupData] ProductType names
	// ("Professional", "Home Edition", "Standard Edition" …), "" when it
	// does not say.
	Edition string `json:"edition,omitempty"`
	// Channel is setupp.ini's: "retail", "oem" or "volume" ("" unknown).
	Channel string `json:"channel,omitempty"`
	// SetupDir is the source directory holding txtsetup.sif and dosnet.inf
	// (I386, or AMD64 on x64 media); LoaderDir the one holding NTLDR,
	// NTDETECT.COM and SETUPLDR.BIN (always I386).
	SetupDir  string `json:"setup_dir"`
	LoaderDir string `json:"loader_dir"`
	// Title is the boot.ini title of the setup entry.
	Title    string   `json:"title"`
	Warnings []string `json:"warnings,omitempty"`

	tree *integrate.Tree
}

// editions maps txtsetup.sif [SetupData] ProductType to edition names per
// version (0 and 4 are the workstation editions; the rest servers).
var editions = map[string]map[int]string{
	"2000": {0: "Professional", 1: "Server", 2: "Advanced Server", 3: "Datacenter Server"},
	"XP":   {0: "Professional", 4: "Home Edition"},
	"2003": {1: "Standard Edition", 2: "Enterprise Edition", 3: "Datacenter Edition", 5: "Web Edition", 6: "Small Business Server"},
}

// DetectMedia identifies the media: integrate.Detect's reading of
// txtsetup.sif, hivesys.inf and hivesft.inf, plus the edition, setupp.ini's
// channel and the loader files staging needs.
func DetectMedia(src *Source) (*Media, error) {
	t, err := integrate.Detect(nodeFS{src.Root})
	if err != nil {
		return nil, fmt.Errorf("setup: %s: %w", src.Name, err)
	}
	if t.Layout != integrate.Media {
		return nil, fmt.Errorf("setup: %s is already a staged tree ($WIN_NT$.~LS); give the installation media", src.Name)
	}
	m := &Media{OS: t.OS, Arch: t.Arch, Version: fmt.Sprintf("%d.%d", t.Major, t.Minor), ServicePack: t.ServicePack,
		ProductName: t.ProductName, SetupDir: t.SetupDir, Warnings: append([]string(nil), t.Warnings...), tree: t}
	loader := find(src.Root, "I386")
	if loader == nil || !loader.Dir {
		return nil, fmt.Errorf("setup: %s has no I386 directory: the loaders (NTLDR, NTDETECT.COM, SETUPLDR.BIN) live there, also on x64 media", src.Name)
	}
	m.LoaderDir = loader.Name
	var missing []string
	for _, f := range []string{"NTLDR", "NTDETECT.COM", "SETUPLDR.BIN"} {
		if n := find(loader, f); n == nil || n.Dir {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("setup: %s: %s lacks %s", src.Name, loader.Name, strings.Join(missing, ", "))
	}
	if sif, err := readText(src.Root, t.TxtSetup); err == nil {
		if v, ok := sif.Value("SetupData", "ProductType"); ok {
			var n int
			if _, err := fmt.Sscan(strings.Trim(strings.TrimSpace(v), `"`), &n); err == nil {
				m.Edition = editions[m.OS][n]
			}
		}
	}
	if n := find(src.Root, m.SetupDir+"/SETUPP.INI"); n != nil {
		if x, err := readText(src.Root, m.SetupDir+"/SETUPP.INI"); err == nil {
			if pid, ok := x.Value("Pid", "Pid"); ok {
				pid = strings.Trim(strings.TrimSpace(pid), `"`)
				if len(pid) >= 8 {
					switch tail := strings.ToUpper(pid[5:8]); {
					case tail == "OEM":
						m.Channel = "oem"
					case tail == "270":
						m.Channel = "volume"
					default:
						m.Channel = "retail"
					}
				}
			}
		}
	}
	name := m.ProductName
	if name == "" {
		name = "Microsoft Windows " + m.OS
	}
	if !strings.HasPrefix(strings.ToLower(name), "microsoft") {
		name = "Microsoft " + name
	}
	if m.Edition != "" && !strings.Contains(strings.ToLower(name), strings.ToLower(m.Edition)) {
		name += " " + m.Edition
	}
	if m.Arch == "amd64" && !strings.Contains(strings.ToLower(name), "x64") {
		name += " x64"
	}
	m.Title = name + " Setup"
	return m, nil
}

func readText(root *iso.Node, p string) (*integrate.Text, error) {
	n := find(root, p)
	if n == nil {
		return nil, fmt.Errorf("%s: not found", p)
	}
	b, err := readNode(n)
	if err != nil {
		return nil, err
	}
	return integrate.ParseText(p, b, nil)
}
