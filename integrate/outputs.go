package integrate

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/imagefs"
)

// copyPlanner owns the whole files of the plan: every file it creates,
// replaces or removes, and the driver files copied. Methods: outputs.go
// (the file list), textfiles.go (which driver files text mode loads),
// copies.go (the copies), loader.go (TCP/IP files and the setup loader's
// kernel).
type copyPlanner struct {
	*planEnv
	texts *textPlanner // txtsetup.sif lines of a renamed kernel
	outs  []*fileOut
	// driverFiles is the content hash of each driver file output.
	driverFiles map[string][32]byte
}

// Kinds of whole files a plan writes besides the INI-shaped ones.
const (
	KindText    = "text"    // txtsetup.sif, dosnet.inf, hive INFs: edited line by line
	KindBinary  = "binary"  // driver files, patched PE images, setup loaders
	KindHive    = "hive"    // setupreg.hiv
	KindCabinet = "cabinet" // *.in_, *.sy_, *.dl_ rewritten through integrate/cab
)

// A fileOut is a whole file the plan creates, replaces or removes: copied
// driver files, patched binaries, rewritten cabinets, the edited
// setupreg.hiv. Later steps of the same plan may rewrite it again
// (p.output), so every step sees the state the earlier ones left.
type fileOut struct {
	path   string // slash path in the tree, as the plan names it
	exists bool   // the file was there when the plan read it
	orig   []byte // its content then
	data   []byte
	remove bool
	kind   string
	why    string
	// diff, if set, renders the change for --dry-run (a hive's key/value
	// diff, the INF inside a cabinet); otherwise binary files are named.
	diff func(orig, data []byte) (string, error)
}

// readOptional reads name through the tree's FS; a missing file is not
// an error (ok is false).
func (p *copyPlanner) readOptional(name string) (data []byte, ok bool, err error) {
	b, err := imagefs.ReadFile(p.tree.FS, name)
	if isNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("integrate: %w", err)
	}
	return b, true, nil
}

// output returns the pending whole-file output for name, or nil. Names
// compare case-insensitively, as the FS resolves them.
func (p *copyPlanner) output(name string) *fileOut {
	for _, o := range p.outs {
		if strings.EqualFold(o.path, name) {
			return o
		}
	}
	return nil
}

// current returns what name will hold after the plan: a pending output's
// data, else the file in the tree (ok false when neither exists).
func (p *copyPlanner) current(name string) ([]byte, bool, error) {
	if o := p.output(name); o != nil {
		return o.data, !o.remove, nil
	}
	return p.readOptional(name)
}

// putFile plans writing data to name (a slash path in the tree; missing
// directories are created at commit). Writing the same name again
// replaces the planned data; the why of the first write is kept.
func (p *copyPlanner) putFile(name string, data []byte, kind, why string) (*fileOut, error) {
	if o := p.output(name); o != nil {
		o.data, o.remove = data, false
		return o, nil
	}
	orig, ok, err := p.readOptional(name)
	if err != nil {
		return nil, err
	}
	o := &fileOut{path: name, exists: ok, orig: orig, data: data, kind: kind, why: why}
	p.outs = append(p.outs, o)
	return o, nil
}

// removeFile plans deleting name; a file that is not there is ignored.
func (p *copyPlanner) removeFile(name, why string) error {
	if o := p.output(name); o != nil {
		o.data, o.remove = nil, true
		return nil
	}
	orig, ok, err := p.readOptional(name)
	if err != nil || !ok {
		return err
	}
	p.outs = append(p.outs, &fileOut{path: name, exists: true, orig: orig, remove: true, kind: KindBinary, why: why})
	return nil
}

func (o *fileOut) changed() bool {
	if o.remove {
		return o.exists
	}
	return !o.exists || !bytes.Equal(o.orig, o.data)
}

func (o *fileOut) action() string {
	switch {
	case !o.changed():
		return ""
	case o.remove:
		return "remove"
	case !o.exists:
		return "create"
	}
	return "edit"
}
