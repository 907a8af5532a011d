package integrate

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/integrate/cab"
)

// infPlanner owns the edits of the setup directory's own INFs, stored
// packed (*.in_, a cabinet) or plain: boot-start TCP/IP, staged driver
// INFs, HAL, in-box model lines disabled, sfcfiles.dll. They are whole
// files of the copyPlanner. Methods: packed.go, packed_infs.go,
// packed_inbox.go.
type infPlanner struct {
	*planEnv
	texts  *textPlanner // the text files, which are not edited here
	hives  *hivePlanner // the network adapters' class instances
	copies *copyPlanner
}

// OpComment turns every line of the section equal to Value into a
// comment (';' put in front, the line's bytes kept): in-box model lines
// that would beat the integrated driver in GUI mode.
const OpComment Op = "comment"

// maxPackedSize bounds the file read out of a packed setup file
// (sfcfiles.dll, the largest one edited, is under 2 MiB).
const maxPackedSize = 64 << 20

// signingAdvice ends every warning about an edit that voids a catalog
// signature (issue 7 §5).
const signingAdvice = "GUI-mode setup may then stop to ask about an unsigned driver: set DriverSigningPolicy=Ignore in winnt.sif [Unattended]"

// What a packed file must hold when it is stored uncompressed.
const (
	packedINF = "INF"
	packedPE  = "PE image"
)

// A packedFile is a setup file as the plan will leave it, uncompressed:
// either a single-file cabinet (nettcpip.in_ holding nettcpip.inf) or the
// plain file some trees carry instead (setup takes either).
type packedFile struct {
	path  string // slash path in the tree
	isCab bool
	hdr   cab.FileHeader  // the cabinet's file: name, time, attributes
	comp  cab.Compression // the cabinet's compression
	data  []byte          // the (inner) content
}

// openPacked reads name as a single-file cabinet or, when it is not one,
// as a plain file of the given kind (packedINF, packedPE). A missing file
// gives nil. A file that is neither — a damaged or unsupported cabinet,
// garbage — is warned about (why says what is then not done) and gives
// nil too: setup trees differ, and issue 7 §2 wants those skipped.
func (p *infPlanner) openPacked(name, kind, why string) (*packedFile, error) {
	b, ok, err := p.copies.current(name)
	if err != nil || !ok {
		return nil, err
	}
	pf, err := unpack(name, b, kind)
	if err != nil {
		p.warn("%s: %v; %s skipped", name, err, why)
		return nil, nil
	}
	return pf, nil
}

// unpack decodes the content of a packed setup file.
func unpack(name string, b []byte, kind string) (*packedFile, error) {
	pf := &packedFile{path: name}
	if !bytes.HasPrefix(b, []byte("MSCF")) {
		if err := plausible(b, kind); err != nil {
			return nil, err
		}
		pf.data = b
		return pf, nil
	}
	r, err := cab.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	if len(r.File) != 1 {
		return nil, fmt.Errorf("cabinet holds %d files, not one", len(r.File))
	}
	f := r.File[0]
	if f.Size > maxPackedSize {
		return nil, fmt.Errorf("cabinet file %s is %d bytes, more than a setup file can be", f.Name, f.Size)
	}
	d, err := f.ReadAll()
	if err != nil {
		return nil, err
	}
	pf.isCab = true
	pf.hdr = cab.FileHeader{Name: f.Name, Modified: f.Modified, Attrs: f.Attrs}
	pf.comp = r.Folder[f.FolderIndex].Compression
	pf.data = d
	return pf, nil
}

// plausible checks that an uncompressed file is of the kind expected: an
// INF is text (UTF-16 with its byte-order mark, or without NUL bytes); a
// PE image starts with MZ.
func plausible(b []byte, kind string) error {
	switch kind {
	case packedPE:
		if bytes.HasPrefix(b, []byte("MZ")) {
			return nil
		}
	default:
		if bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.IndexByte(b, 0) < 0 {
			return nil
		}
	}
	return fmt.Errorf("neither a cabinet nor a plain %s", kind)
}

// putPacked plans writing data back to pf's file, packed as it was: the
// cabinet keeps its file name, time and attributes, and is written with
// MSZIP (stored when it was stored; LZX, which the writer lacks, becomes
// MSZIP, which setup reads as well). Nothing is written when data is
// what the file already holds, so a second run changes nothing. kind is
// KindText for an INF (the dry-run diff then shows the INF) or
// KindBinary.
func (p *infPlanner) putPacked(pf *packedFile, data []byte, kind, why string) (*fileOut, error) {
	if bytes.Equal(data, pf.data) {
		return nil, nil
	}
	out := data
	k := kind
	if pf.isCab {
		var buf bytes.Buffer
		w := cab.NewWriter(&buf)
		if pf.comp.Method() == cab.None {
			w.Compression = cab.None
		}
		fw, err := w.CreateHeader(&pf.hdr)
		if err != nil {
			return nil, fmt.Errorf("integrate: %s: %w", pf.path, err)
		}
		if _, err := fw.Write(data); err != nil {
			return nil, fmt.Errorf("integrate: %s: %w", pf.path, err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("integrate: %s: %w", pf.path, err)
		}
		out, k = buf.Bytes(), KindCabinet
	}
	o, err := p.copies.putFile(pf.path, out, k, why)
	if err != nil {
		return nil, err
	}
	if kind == KindText {
		o.diff = packedTextDiff(pf.path)
	}
	pf.data = data
	return o, nil
}

// packedTextDiff renders the change of a packed (or plain) INF as a
// unified diff of the INF itself.
func packedTextDiff(name string) func(orig, data []byte) (string, error) {
	return func(orig, data []byte) (string, error) {
		label := name
		var a []byte
		if orig != nil {
			pf, err := unpack(name, orig, packedINF)
			if err != nil {
				return "", err
			}
			a = pf.data
		}
		pf, err := unpack(name, data, packedINF)
		if err != nil {
			return "", err
		}
		if pf.isCab {
			label += ":" + pf.hdr.Name
		}
		ta, _ := ParseText(name, a, nil)
		tb, _ := ParseText(name, pf.data, nil)
		return Diff("a/"+label, "b/"+label, ta.Lines(), tb.Lines()), nil
	}
}

// setupFiles returns the tree paths, with their on-disk case, of a setup
// file stored packed (nettcpip.in_) and plain (nettcpip.inf) in the setup
// directory: packed first, either or both or none.
func (p *infPlanner) setupFiles(plain string) ([]string, error) {
	ents, err := p.tree.FS.ReadDir(p.tree.SetupDir)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	var out []string
	for _, want := range []string{packedName(plain), plain} {
		for _, e := range ents {
			if !e.IsDir() && strings.EqualFold(e.Name(), want) {
				out = append(out, p.tree.SetupDir+"/"+e.Name())
				break
			}
		}
	}
	return out, nil
}

// infNumber parses an INF number: decimal, or hexadecimal after 0x.
func infNumber(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		n, err := strconv.ParseUint(h, 16, 32)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return n, err == nil
}

// bootStart sets StartType = 0 (SERVICE_BOOT_START) in a service-install
// section of x, leaving a section already at 0 alone (however it writes
// the 0), and records the edit as an edit of file.
func (p *infPlanner) bootStart(x *Text, file, section, why string) {
	p.record(bootStartEdit(x, file, section, why))
}

// bootStartEdit is bootStart without recording the edit.
func bootStartEdit(x *Text, file, section, why string) Edit {
	e := Edit{File: file, Op: OpSet, Section: section, Key: "StartType", Value: "0", Why: why}
	if v, ok := x.Value(section, "StartType"); ok {
		if n, ok := infNumber(v); ok && n == 0 {
			return e
		}
	}
	e.Changed = e.Apply(x)
	return e
}

// serviceSection returns the name of the service-install section of
// service in an INF: the section IntegrateDrv names if it is there, else
// the one an AddService line for the service names.
func serviceSection(x *Text, known, service string) string {
	if x.HasSection(known) {
		return known
	}
	for _, s := range x.Sections() {
		for _, e := range x.Entries(s) {
			if strings.EqualFold(e.Key, "AddService") && len(e.Fields) > 2 &&
				strings.EqualFold(e.Fields[0], service) && x.HasSection(e.Fields[2]) {
				return e.Fields[2]
			}
		}
	}
	return ""
}
