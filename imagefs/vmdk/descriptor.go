package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Descriptor is the text that names a VMDK's extents, its content ids and
// its disk database (geometry, adapter type). It is embedded in sector 1 of
// monolithicSparse and streamOptimized files and is a file of its own for
// monolithicFlat and split disks.
type Descriptor struct {
	Version            int
	CID                uint32 // content id, changed on the first write of every session
	ParentCID          uint32 // parent's CID when this is a delta; NoParentCID otherwise
	CreateType         string
	ParentFileNameHint string
	Encoding           string
	Extents            []ExtentLine
	DDB                []KV // "ddb.*" entries in file order
}

// ExtentLine is one line of the extent description:
// ACCESS SECTORS TYPE "FILE" [OFFSET].
type ExtentLine struct {
	Access  string // RW, RDONLY or NOACCESS
	Sectors int64
	Type    string // FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE
	File    string // relative to the descriptor's directory unless absolute
	Offset  int64  // sectors into File (FLAT/VMFS)
	Pos     int64  // byte offset of the line in the descriptor text
}

// KV is a disk database entry.
type KV struct{ Key, Value string }

// Get returns the value of a ddb key, or "".
func (d *Descriptor) Get(key string) string {
	for _, kv := range d.DDB {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// HasParent reports whether the descriptor describes a delta disk.
func (d *Descriptor) HasParent() bool {
	return d.ParentCID != NoParentCID && d.ParentFileNameHint != ""
}

// IsDescriptor reports whether b (the start of a file) looks like a text
// descriptor: "# Disk DescriptorFile" first, or a first non-comment line
// "version=", the criterion qemu and VMware use.
func IsDescriptor(b []byte) bool {
	if bytes.HasPrefix(b, []byte("# Disk DescriptorFile")) {
		return true
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		return bytes.HasPrefix(l, []byte("version="))
	}
	return false
}

// ParseDescriptor parses descriptor text (NUL padding ignored). Errors are
// *FormatError with Off the byte offset of the offending line in text.
func ParseDescriptor(text []byte) (*Descriptor, error) {
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	d := &Descriptor{ParentCID: NoParentCID}
	sawVersion := false
	pos := int64(0)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		lpos := pos
		pos += int64(len(line)) + 1
		l := strings.TrimSpace(string(line))
		if l == "" || l[0] == '#' {
			continue
		}
		bad := func(format string, args ...any) error {
			return &FormatError{Off: lpos, Msg: fmt.Sprintf("descriptor line %q: ", truncate(l)) + fmt.Sprintf(format, args...), Err: ErrFormat}
		}
		if !sawVersion && !strings.HasPrefix(l, "version=") {
			return nil, bad("the first entry must be version=")
		}
		if f := strings.Fields(l); len(f) >= 3 && (f[0] == "RW" || f[0] == "RDONLY" || f[0] == "NOACCESS") {
			e, err := parseExtentLine(l)
			if err != nil {
				return nil, bad("%v", err)
			}
			e.Pos = lpos
			d.Extents = append(d.Extents, e)
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, bad("neither key=value nor an extent")
		}
		k = strings.TrimSpace(k)
		v = unquote(strings.TrimSpace(v))
		var err error
		switch k {
		case "version":
			d.Version, err = strconv.Atoi(v)
			if err != nil || d.Version < 1 || d.Version > 3 {
				return nil, bad("version must be 1, 2 or 3")
			}
			sawVersion = true
		case "CID", "parentCID":
			var n uint64
			n, err = strconv.ParseUint(v, 16, 32)
			if err != nil {
				return nil, bad("not a 32-bit hex number")
			}
			if k == "CID" {
				d.CID = uint32(n)
			} else {
				d.ParentCID = uint32(n)
			}
		case "createType":
			d.CreateType = v
		case "parentFileNameHint":
			d.ParentFileNameHint = v
		case "encoding":
			d.Encoding = v
		default:
			if strings.HasPrefix(k, "ddb.") {
				d.DDB = append(d.DDB, KV{k, v})
			}
			// Other keys (isNativeSnapshot, …) carry nothing xpboot uses.
		}
	}
	if !sawVersion {
		return nil, &FormatError{Off: 0, Msg: "descriptor has no version= entry", Err: ErrFormat}
	}
	return d, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func parseExtentLine(l string) (ExtentLine, error) {
	var e ExtentLine
	f := strings.Fields(l)
	e.Access = f[0]
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 || n > MaxSize/sectorSize {
		return e, fmt.Errorf("extent size %q is not a sector count up to %d", f[1], int64(MaxSize/sectorSize))
	}
	e.Sectors = n
	e.Type = f[2]
	if e.Type == "ZERO" {
		return e, nil
	}
	// The file name is quoted and may contain spaces.
	i := strings.IndexByte(l, '"')
	j := strings.LastIndexByte(l, '"')
	if i < 0 || j <= i {
		return e, fmt.Errorf("extent file name is not quoted")
	}
	e.File = l[i+1 : j]
	if e.File == "" {
		return e, fmt.Errorf("empty extent file name")
	}
	if rest := strings.TrimSpace(l[j+1:]); rest != "" {
		o, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		if err != nil || o < 0 || o > MaxSize/sectorSize {
			return e, fmt.Errorf("extent offset %q is not a sector count", rest)
		}
		e.Offset = o
	}
	switch e.Type {
	case "FLAT", "VMFS", "SPARSE", "VMFSSPARSE":
	default:
		return e, fmt.Errorf("extent type %q is not FLAT, SPARSE, ZERO, VMFS or VMFSSPARSE", e.Type)
	}
	return e, nil
}

// Marshal renders the descriptor in the layout qemu and VMware write.
func (d *Descriptor) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("# Disk DescriptorFile\n")
	fmt.Fprintf(&b, "version=%d\n", d.Version)
	if d.Encoding != "" {
		fmt.Fprintf(&b, "encoding=%q\n", d.Encoding)
	}
	fmt.Fprintf(&b, "CID=%08x\n", d.CID)
	fmt.Fprintf(&b, "parentCID=%08x\n", d.ParentCID)
	fmt.Fprintf(&b, "createType=%q\n", d.CreateType)
	if d.ParentFileNameHint != "" {
		fmt.Fprintf(&b, "parentFileNameHint=%q\n", d.ParentFileNameHint)
	}
	b.WriteString("\n# Extent description\n")
	for _, e := range d.Extents {
		if e.Type == "ZERO" {
			fmt.Fprintf(&b, "%s %d ZERO\n", e.Access, e.Sectors)
			continue
		}
		fmt.Fprintf(&b, "%s %d %s \"%s\"", e.Access, e.Sectors, e.Type, e.File)
		if e.Type == "FLAT" || e.Type == "VMFS" || e.Offset != 0 {
			fmt.Fprintf(&b, " %d", e.Offset)
		}
		b.WriteByte('\n')
	}
	b.WriteString("\n# The Disk Data Base\n#DDB\n\n")
	for _, kv := range d.DDB {
		fmt.Fprintf(&b, "%s = %q\n", kv.Key, kv.Value)
	}
	return b.Bytes()
}
