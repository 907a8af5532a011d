package integrate

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// BackupSuffix is appended to a file's name for the copy of its original
// that Commit keeps with Options.Backup: I386/TXTSETUP.SIF is saved as
// I386/TXTSETUP.SIF.xpboot-orig. Setup ignores such files; restoring is
// renaming them back and removing the files the plan created.
const BackupSuffix = ".xpboot-orig"

// KindBackup is the FileChange.Kind of a backup copy made by Commit.
const KindBackup = "backup"

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
	return p.hives.finishSetupReg()
}

// change is one file Commit writes or removes.
type change struct {
	path   string
	data   []byte
	remove bool
	kind   string
	why    string
	exists bool   // the file was there when the plan read it
	orig   []byte // its content then
}

// changes lists what Commit writes: the changed text files, then the
// changed whole-file outputs, in plan order.
func (p *Plan) changes() ([]change, error) {
	var cs []change
	for _, f := range p.texts.files {
		b, err := f.text.Bytes()
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(b, f.orig) {
			cs = append(cs, change{path: f.path, data: b, kind: KindText, exists: true, orig: f.orig})
		}
	}
	for _, o := range p.copies.outs {
		if o.changed() {
			cs = append(cs, change{path: o.path, data: o.data, remove: o.remove, kind: o.kind, why: o.why, exists: o.exists, orig: o.orig})
		}
	}
	return cs, nil
}

// backups returns the backup copies Commit makes with Options.Backup: one
// per replaced or removed file whose backup does not exist yet.
func (p *Plan) backups(cs []change) ([]change, error) {
	if !p.Options.Backup {
		return nil, nil
	}
	var bs []change
	for _, c := range cs {
		if !c.exists {
			continue
		}
		name := c.path + BackupSuffix
		_, err := p.Tree.FS.Stat(name)
		switch {
		case err == nil:
			continue // an earlier run's backup: the true original
		case !isNotExist(err):
			return nil, fmt.Errorf("integrate: %w", err)
		}
		bs = append(bs, change{path: name, data: c.orig, kind: KindBackup, why: "original of " + c.path})
	}
	return bs, nil
}

// Files lists the files the plan read or writes, in order, with their
// state; with Options.Backup, then the backups Commit would make.
func (p *Plan) Files() ([]FileChange, error) {
	if err := p.finish(); err != nil {
		return nil, err
	}
	var out []FileChange
	for _, f := range p.texts.files {
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
	for _, o := range p.copies.outs {
		out = append(out, FileChange{Path: o.path, Kind: o.kind, Changed: o.changed(), Action: o.action(), Why: o.why})
	}
	cs, err := p.changes()
	if err != nil {
		return nil, err
	}
	bs, err := p.backups(cs)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		out = append(out, FileChange{Path: b.path, Kind: KindBackup, Changed: true, Action: "create", Why: b.why})
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
	for _, f := range p.texts.files {
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
	for _, o := range p.copies.outs {
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
	cs, err := p.changes()
	if err != nil {
		return "", err
	}
	bs, err := p.backups(cs)
	if err != nil {
		return "", err
	}
	for _, b := range bs {
		fmt.Fprintf(&sb, "backup %s (%s)\n", b.path, b.why)
	}
	return sb.String(), nil
}

// Commit writes every changed file through the tree's imagefs.FS, creating
// missing directories, as one all-or-nothing step as far as the imagefs.FS
// allows:
//
//   - everything is encoded, and with Options.Backup the backups listed,
//     before anything is written; unchanged files are not touched;
//   - nothing is written if the file system says it cannot be written
//     (imagefs.CheckWritable), if the new contents exceed its free space
//     (FreeBytes, when it knows), or if any file to change is no longer what the plan
//     read (another program changed the tree meanwhile);
//   - each file is replaced atomically by the FS (a temporary file and a
//     rename for DirFS; new clusters, then the directory entry, inside a
//     FAT32 image);
//   - when a write fails, every file already written is put back as it
//     was read (created files and directories, and backups, are removed),
//     so the tree is byte-identical to before; the error says whether
//     that rollback succeeded.
//
// A crash (power loss, SIGKILL) between two files still leaves the set
// half written: with DirFS each file is either old or new; inside an
// image nothing reaches the file system's metadata before the image is
// closed (see imagefs/fat32).
func (p *Plan) Commit() error {
	if err := p.finish(); err != nil {
		return err
	}
	cs, err := p.changes()
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return nil
	}
	bs, err := p.backups(cs)
	if err != nil {
		return err
	}
	fsys := p.Tree.FS
	if err := imagefs.CheckWritable(fsys); err != nil {
		return fmt.Errorf("integrate: %w", err)
	}
	all := append(bs, cs...) // backups first: they copy what the changes replace
	var need int64
	for _, c := range all {
		if !c.remove {
			need += int64(len(c.data))
		}
	}
	if free := fsys.FreeBytes(); free >= 0 && need > free {
		return fmt.Errorf("integrate: the plan writes %d bytes but the file system has only %d free; nothing written", need, free)
	}
	for _, c := range cs {
		cur, ok, err := p.copies.readOptional(c.path)
		if err != nil {
			return err
		}
		if ok != c.exists || !bytes.Equal(cur, c.orig) {
			return fmt.Errorf("integrate: %s changed since the plan read it; nothing written (run again)", c.path)
		}
	}
	j := &journal{fs: fsys}
	for _, c := range all {
		if err := j.apply(c); err != nil {
			return j.fail(c.path, err)
		}
	}
	for _, f := range p.texts.files {
		if b, err := f.text.Bytes(); err == nil {
			f.orig = b
		}
	}
	for _, o := range p.copies.outs {
		o.orig, o.exists = o.data, !o.remove
	}
	return nil
}

// journal records what Commit has done so that a failure can undo it.
type journal struct {
	fs   imagefs.FS
	done []change // applied changes, undone in reverse
	dirs []string // directories created, parents first
}

// apply writes or removes one file, creating its missing directories.
func (j *journal) apply(c change) error {
	if c.remove {
		if err := j.fs.Remove(c.path); err != nil {
			return err
		}
		j.done = append(j.done, c)
		return nil
	}
	if err := j.mkdirs(path.Dir(c.path)); err != nil {
		return err
	}
	if err := imagefs.WriteBytes(j.fs, c.path, c.data); err != nil {
		return err
	}
	j.done = append(j.done, c)
	return nil
}

// mkdirs creates dir and its missing parents, recording the ones it made.
func (j *journal) mkdirs(dir string) error {
	if dir == "." || dir == "/" || dir == "" {
		return nil
	}
	elems := strings.Split(strings.Trim(dir, "/"), "/")
	var missing []string
	for i := range elems {
		pre := strings.Join(elems[:i+1], "/")
		fi, err := j.fs.Stat(pre)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s is not a directory", pre)
		case isNotExist(err):
			missing = append(missing, pre)
		case err != nil:
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	err := j.fs.MkdirAll(dir, time.Now())
	for _, m := range missing {
		if _, serr := j.fs.Stat(m); serr == nil {
			j.dirs = append(j.dirs, m)
		}
	}
	return err
}

// undo puts back every file the journal changed, newest first, then
// removes the directories it created, deepest first.
func (j *journal) undo() error {
	var errs []error
	for i := len(j.done) - 1; i >= 0; i-- {
		c := j.done[i]
		var err error
		if c.exists {
			err = imagefs.WriteBytes(j.fs, c.path, c.orig)
		} else if err = j.fs.Remove(c.path); isNotExist(err) {
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", c.path, err))
		}
	}
	for i := len(j.dirs) - 1; i >= 0; i-- {
		if err := j.fs.Remove(j.dirs[i]); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("removing directory %s: %w", j.dirs[i], err))
		}
	}
	j.done, j.dirs = nil, nil
	return errors.Join(errs...)
}

// fail undoes the journal after writing name failed with err.
func (j *journal) fail(name string, err error) error {
	n := len(j.done)
	if uerr := j.undo(); uerr != nil {
		return fmt.Errorf("integrate: writing %s: %w; rolling back the %d files written before failed, the tree is partly written: %v", name, err, n, uerr)
	}
	return fmt.Errorf("integrate: writing %s: %w (the %d files written before were restored)", name, err, n)
}
