package integrate

import (
	"bytes"
	"fmt"
	"path"
	"strings"
)

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
func (p *Plan) readOptional(name string) (data []byte, ok bool, err error) {
	b, err := p.Tree.FS.ReadFile(name)
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
func (p *Plan) output(name string) *fileOut {
	for _, o := range p.outs {
		if strings.EqualFold(o.path, name) {
			return o
		}
	}
	return nil
}

// current returns what name will hold after the plan: a pending output's
// data, else the file in the tree (ok false when neither exists).
func (p *Plan) current(name string) ([]byte, bool, error) {
	if o := p.output(name); o != nil {
		return o.data, !o.remove, nil
	}
	return p.readOptional(name)
}

// putFile plans writing data to name (a slash path in the tree; missing
// directories are created at commit). Writing the same name again
// replaces the planned data; the why of the first write is kept.
func (p *Plan) putFile(name string, data []byte, kind, why string) (*fileOut, error) {
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
func (p *Plan) removeFile(name, why string) error {
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

// FileChange is one file of a plan and what the plan does to it.
type FileChange struct {
	Path    string `json:"path"`
	Kind    string `json:"kind"`
	Changed bool   `json:"changed"`
	// Action is "edit", "create" or "remove" when Changed.
	Action string `json:"action,omitempty"`
	Why    string `json:"why,omitempty"`
}

// finish brings whole-file outputs that are built from in-memory state
// (setupreg.hiv) up to date; Files, Diff and Commit call it first.
func (p *Plan) finish() error {
	return p.finishSetupReg()
}

// Files lists the files the plan read or writes, in order, with their
// state.
func (p *Plan) Files() ([]FileChange, error) {
	if err := p.finish(); err != nil {
		return nil, err
	}
	var out []FileChange
	for _, f := range p.files {
		b, err := f.text.Bytes()
		if err != nil {
			return nil, err
		}
		c := FileChange{Path: f.path, Kind: KindText, Changed: !bytes.Equal(b, f.orig)}
		if c.Changed {
			c.Action = "edit"
		}
		out = append(out, c)
	}
	for _, o := range p.outs {
		out = append(out, FileChange{Path: o.path, Kind: o.kind, Changed: o.changed(), Action: o.action(), Why: o.why})
	}
	return out, nil
}

// Diff returns a unified diff of every changed text file, and for other
// files their own diff (hives: keys and values) or a one-line note, for
// --dry-run.
func (p *Plan) Diff() (string, error) {
	if err := p.finish(); err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, f := range p.files {
		b, err := f.text.Bytes()
		if err != nil {
			return "", err
		}
		if bytes.Equal(b, f.orig) {
			continue
		}
		old, _ := ParseText(f.path, f.orig, nil)
		sb.WriteString(Diff("a/"+f.path, "b/"+f.path, old.Lines(), f.text.Lines()))
	}
	for _, o := range p.outs {
		switch {
		case !o.changed():
			continue
		case o.remove:
			fmt.Fprintf(&sb, "removed %s\n", o.path)
		case o.diff != nil:
			d, err := o.diff(o.orig, o.data)
			if err != nil {
				return "", fmt.Errorf("integrate: %s: %w", o.path, err)
			}
			sb.WriteString(d)
		case !o.exists:
			fmt.Fprintf(&sb, "new file %s (%d bytes, %s)\n", o.path, len(o.data), o.kind)
		default:
			fmt.Fprintf(&sb, "Binary files a/%s and b/%s differ\n", o.path, o.path)
		}
	}
	return sb.String(), nil
}

// Commit writes every changed file through the tree's FS (atomically per
// file), creating missing directories. Everything is encoded before
// anything is written; unchanged files are not touched.
func (p *Plan) Commit() error {
	if err := p.finish(); err != nil {
		return err
	}
	type write struct {
		path   string
		b      []byte
		remove bool
	}
	var writes []write
	for _, f := range p.files {
		b, err := f.text.Bytes()
		if err != nil {
			return err
		}
		if !bytes.Equal(b, f.orig) {
			writes = append(writes, write{path: f.path, b: b})
		}
	}
	for _, o := range p.outs {
		if o.changed() {
			writes = append(writes, write{path: o.path, b: o.data, remove: o.remove})
		}
	}
	for _, w := range writes {
		var err error
		switch {
		case w.remove:
			err = p.Tree.FS.Remove(w.path)
		default:
			if dir := path.Dir(w.path); dir != "." && dir != "/" {
				if err = p.Tree.FS.MkdirAll(dir); err != nil {
					break
				}
			}
			err = p.Tree.FS.WriteFile(w.path, w.b)
		}
		if err != nil {
			return fmt.Errorf("integrate: writing %s: %w", w.path, err)
		}
	}
	for _, f := range p.files {
		if b, err := f.text.Bytes(); err == nil {
			f.orig = b
		}
	}
	for _, o := range p.outs {
		o.orig, o.exists = o.data, !o.remove
	}
	return nil
}
