package installed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// UndoDir is the directory at the root of the tree that keeps one undo
// record per integration that changed something: UndoDir/NNN/ holds
// manifest.json and the originals of the files and sectors it replaced.
// Undo takes the newest record back and removes it.
const UndoDir = "xpboot-undo"

// Manifest is an undo record's manifest.json.
type Manifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	System  string    `json:"system"`
	// Files written or created, in write order.
	Files []UndoFile `json:"files"`
	// Dirs created, parents first.
	Dirs []string `json:"dirs,omitempty"`
	// Sectors of the partition rewritten.
	Sectors []UndoSector `json:"sectors,omitempty"`
}

// UndoFile is one file an integration wrote: Saved names the copy of its
// original in the record (empty for a file it created); SHA256 is the
// content it wrote, so Undo notices a file changed since.
type UndoFile struct {
	Path   string `json:"path"`
	Saved  string `json:"saved,omitempty"`
	SHA256 string `json:"sha256"`
}

// UndoSector is one partition sector an integration rewrote.
type UndoSector struct {
	Sector int64  `json:"sector"`
	Saved  string `json:"saved"`
	SHA256 string `json:"sha256"`
}

// prepare finishes the plan and its boot-sector change.
func (p *Plan) prepare() error {
	if err := p.finish(); err != nil {
		return err
	}
	return p.planBoot()
}

// outputs lists every file the plan writes, hives last (they are the
// commit point of the registry), with whether each changes.
func (p *Plan) outputs() ([]*fileOut, error) {
	outs := slices.Clone(p.files)
	for _, h := range []*regHive{p.system, p.software} {
		b, err := h.bytes()
		if err != nil {
			return nil, err
		}
		outs = append(outs, &fileOut{path: h.path, data: b, orig: h.orig, exists: true, kind: KindHive,
			why: fmt.Sprintf("%s hive: %d edits", h.name, len(h.edits))})
	}
	return outs, nil
}

func (o *fileOut) changed() bool { return !o.exists || !bytes.Equal(o.orig, o.data) }

// Files describes every file of the plan for --json and the summary.
func (p *Plan) Files() ([]integrate.FileChange, error) {
	if err := p.prepare(); err != nil {
		return nil, err
	}
	outs, err := p.outputs()
	if err != nil {
		return nil, err
	}
	var fc []integrate.FileChange
	for _, o := range outs {
		c := integrate.FileChange{Path: o.path, Kind: o.kind, Changed: o.changed(), Why: o.why}
		if c.Changed {
			c.Action = "edit"
			if !o.exists {
				c.Action = "create"
			}
		}
		fc = append(fc, c)
	}
	if p.boot != nil {
		fc = append(fc, integrate.FileChange{Path: fmt.Sprintf("(partition %d boot sector)", p.Boot.Partition().Index),
			Kind: KindBoot, Changed: true, Action: "edit", Why: strings.Join(p.boot.reasons, "; ")})
	}
	return fc, nil
}

// Diff renders the plan for --dry-run: the files to write, then per hive
// the key/value difference, then the boot-sector change.
func (p *Plan) Diff() (string, error) {
	if err := p.prepare(); err != nil {
		return "", err
	}
	outs, err := p.outputs()
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, o := range outs {
		if !o.changed() || o.kind == KindHive {
			continue
		}
		act := "edit  "
		if !o.exists {
			act = "create"
		}
		fmt.Fprintf(&sb, "%s %s (%d bytes; %s)\n", act, o.path, len(o.data), o.why)
	}
	for _, o := range outs {
		if o.kind != KindHive || !o.changed() {
			continue
		}
		d, err := integrate.HiveDiff(o.orig, o.data)
		if err != nil {
			return "", fmt.Errorf("installed: %s: %w", o.path, err)
		}
		fmt.Fprintf(&sb, "--- a/%s\n+++ b/%s\n%s", o.path, o.path, d)
	}
	if p.boot != nil {
		fmt.Fprintf(&sb, "boot sector of partition %d: %s\n", p.Boot.Partition().Index, strings.Join(p.boot.reasons, "; "))
	}
	return sb.String(), nil
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// Commit writes the plan: nothing when nothing changes; otherwise first
// an undo record (UndoDir), then with Options.Backup the NAME.xpboot-orig
// copies, then the driver files, the hives and the boot sector. Every
// check happens before the first write, and a failed write puts back
// what was written before it.
func (p *Plan) Commit() error {
	if err := p.prepare(); err != nil {
		return err
	}
	outs, err := p.outputs()
	if err != nil {
		return err
	}
	var cs []*fileOut
	for _, o := range outs {
		if o.changed() {
			cs = append(cs, o)
		}
	}
	if len(cs) == 0 && p.boot == nil {
		return nil
	}
	if err := imagefs.CheckWritable(p.FS); err != nil {
		return fmt.Errorf("installed: %w", err)
	}
	// The originals must still be what the plan read.
	for _, o := range cs {
		cur, err := imagefs.ReadFile(p.FS, o.path)
		switch {
		case err == nil && (!o.exists || !bytes.Equal(cur, o.orig)):
			return fmt.Errorf("installed: %s changed since the plan read it; nothing written (run again)", o.path)
		case err != nil && !isNotExist(err):
			return fmt.Errorf("installed: %s: %w", o.path, err)
		case err != nil && o.exists:
			return fmt.Errorf("installed: %s disappeared since the plan read it; nothing written", o.path)
		}
	}
	if p.Options.Backup {
		var bs []*fileOut
		for _, o := range cs {
			if !o.exists {
				continue
			}
			name := o.path + integrate.BackupSuffix
			if _, err := p.FS.Stat(name); err == nil {
				continue // an earlier run's backup: the true original
			} else if !isNotExist(err) {
				return fmt.Errorf("installed: %s: %w", name, err)
			}
			bs = append(bs, &fileOut{path: name, data: o.orig, kind: KindBackup, why: "original of " + o.path})
		}
		cs = append(bs, cs...)
	}
	rec, recFiles, err := p.undoRecord(cs)
	if err != nil {
		return err
	}
	all := append(recFiles, cs...)
	var need int64
	for _, o := range all {
		need += int64(len(o.data))
	}
	if free := p.FS.FreeBytes(); free >= 0 && need > free {
		return fmt.Errorf("installed: the integration writes %d bytes but the file system has only %d free; nothing written", need, free)
	}
	j := integrate.NewJournal(p.FS)
	for _, o := range all {
		if err := j.Write(o.path, o.data, o.orig, o.exists); err != nil {
			return j.Rollback(o.path, err)
		}
	}
	if p.boot != nil {
		for i, s := range p.boot.sectors {
			if err := p.Boot.WriteSector(s.n, s.new); err != nil {
				for _, w := range p.boot.sectors[:i] {
					p.Boot.WriteSector(w.n, w.orig)
				}
				return j.Rollback(fmt.Sprintf("%s (sector %d)", rec, s.n), err)
			}
		}
	}
	for _, o := range outs {
		o.orig, o.exists = o.data, true
	}
	return nil
}

// undoRecord plans the undo record of the changes cs: the directory
// UndoDir/NNN (one above the newest), the originals and manifest.json.
func (p *Plan) undoRecord(cs []*fileOut) (string, []*fileOut, error) {
	n, err := lastRecord(p.FS)
	if err != nil {
		return "", nil, err
	}
	dir := fmt.Sprintf("%s/%03d", UndoDir, n+1)
	m := Manifest{Version: 1, Created: time.Now().UTC(), System: p.Sys.Root}
	var files []*fileOut
	seen := map[string]bool{}
	for _, o := range cs {
		for d := path.Dir(o.path); d != "." && d != "/"; d = path.Dir(d) {
			if seen[strings.ToLower(d)] {
				continue
			}
			seen[strings.ToLower(d)] = true
			if _, err := p.FS.Stat(d); isNotExist(err) {
				m.Dirs = append(m.Dirs, d)
			} else if err != nil {
				return "", nil, fmt.Errorf("installed: %s: %w", d, err)
			}
		}
	}
	slices.SortFunc(m.Dirs, func(a, b string) int { return strings.Count(a, "/") - strings.Count(b, "/") })
	for i, o := range cs {
		f := UndoFile{Path: o.path, SHA256: sum(o.data)}
		if o.exists {
			f.Saved = fmt.Sprintf("%04d.orig", i+1)
			files = append(files, &fileOut{path: dir + "/" + f.Saved, data: o.orig, kind: KindUndo, why: "original of " + o.path})
		}
		m.Files = append(m.Files, f)
	}
	if p.boot != nil {
		for _, s := range p.boot.sectors {
			u := UndoSector{Sector: s.n, Saved: fmt.Sprintf("sector%d.orig", s.n), SHA256: sum(s.new)}
			files = append(files, &fileOut{path: dir + "/" + u.Saved, data: s.orig, kind: KindUndo, why: "original of sector " + strconv.FormatInt(s.n, 10)})
			m.Sectors = append(m.Sectors, u)
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", nil, err
	}
	files = append(files, &fileOut{path: dir + "/manifest.json", data: append(mb, '\n'), kind: KindUndo, why: "undo record"})
	return dir, files, nil
}

// lastRecord returns the number of the newest undo record, 0 if none.
func lastRecord(fsys imagefs.FS) (int, error) {
	ents, err := fsys.ReadDir(UndoDir)
	if isNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("installed: %s: %w", UndoDir, err)
	}
	last := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && n > last {
			last = n
		}
	}
	return last, nil
}

// ErrNoUndo reports a tree without an undo record.
var ErrNoUndo = errors.New("installed: no undo record (" + UndoDir + ") in the tree")

// UndoResult says what Undo restored.
type UndoResult struct {
	Record   string   `json:"record"`
	Restored []string `json:"restored"`
	Removed  []string `json:"removed"`
	Sectors  []int64  `json:"sectors,omitempty"`
}

// Undo takes back the newest integration recorded in the tree: every
// file it replaced gets its original bytes, every file and directory it
// created is removed, the boot sectors it rewrote are put back (boot may
// be nil for a directory tree), and the record is removed. A file
// changed since the integration is refused before anything is written,
// unless force is set. With dryRun nothing is written.
func Undo(fsys imagefs.FS, boot BootSector, force, dryRun bool) (*UndoResult, error) {
	n, err := lastRecord(fsys)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNoUndo
	}
	dir := fmt.Sprintf("%s/%03d", UndoDir, n)
	mb, err := imagefs.ReadFile(fsys, dir+"/manifest.json")
	if err != nil {
		return nil, fmt.Errorf("installed: undo record %s: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("installed: %s/manifest.json: %w", dir, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("installed: %s/manifest.json: version %d is not 1", dir, m.Version)
	}
	res := &UndoResult{Record: dir}
	type restore struct {
		path      string
		orig, cur []byte
		existed   bool
	}
	var rs []restore
	for _, f := range m.Files {
		if f.Path == "" || strings.Contains(f.Path, "..") || strings.HasPrefix(strings.ToLower(f.Path), UndoDir) {
			return nil, fmt.Errorf("installed: %s/manifest.json: bad path %q", dir, f.Path)
		}
		cur, err := imagefs.ReadFile(fsys, f.Path)
		if err != nil && !isNotExist(err) {
			return nil, fmt.Errorf("installed: %s: %w", f.Path, err)
		}
		if !force && (err != nil || sum(cur) != f.SHA256) {
			return nil, fmt.Errorf("installed: %s changed since the integration of %s; nothing undone (--force restores it anyway)", f.Path, dir)
		}
		r := restore{path: f.Path, cur: cur}
		if f.Saved != "" {
			if r.orig, err = imagefs.ReadFile(fsys, dir+"/"+f.Saved); err != nil {
				return nil, fmt.Errorf("installed: undo record %s: %w", dir, err)
			}
			r.existed = true
			res.Restored = append(res.Restored, f.Path)
		} else {
			res.Removed = append(res.Removed, f.Path)
		}
		rs = append(rs, r)
	}
	type sectorRestore struct {
		n         int64
		orig, cur []byte
	}
	var ss []sectorRestore
	if len(m.Sectors) > 0 {
		if boot == nil {
			return nil, fmt.Errorf("installed: %s restores boot sectors, which this tree (not a disk image) has none of", dir)
		}
		for _, s := range m.Sectors {
			orig, err := imagefs.ReadFile(fsys, dir+"/"+s.Saved)
			if err != nil {
				return nil, fmt.Errorf("installed: undo record %s: %w", dir, err)
			}
			cur, err := boot.ReadSector(s.Sector)
			if err != nil {
				return nil, fmt.Errorf("installed: %w", err)
			}
			if !force && sum(cur) != s.SHA256 {
				return nil, fmt.Errorf("installed: sector %d changed since the integration of %s; nothing undone (--force restores it anyway)", s.Sector, dir)
			}
			ss = append(ss, sectorRestore{s.Sector, orig, cur})
			res.Sectors = append(res.Sectors, s.Sector)
		}
	}
	if dryRun {
		return res, nil
	}
	if err := imagefs.CheckWritable(fsys); err != nil {
		return nil, fmt.Errorf("installed: %w", err)
	}
	j := integrate.NewJournal(fsys)
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		var err error
		if r.existed {
			err = j.Write(r.path, r.orig, r.cur, r.cur != nil)
		} else if r.cur != nil {
			err = j.Remove(r.path, r.cur)
		}
		if err != nil {
			return nil, j.Rollback(r.path, err)
		}
	}
	for i, s := range ss {
		if err := boot.WriteSector(s.n, s.orig); err != nil {
			for _, w := range ss[:i] {
				boot.WriteSector(w.n, w.cur)
			}
			return nil, j.Rollback(fmt.Sprintf("sector %d", s.n), err)
		}
	}
	// The record and the directories the integration created go last;
	// failing to remove them leaves the files restored.
	var errs []error
	for i := len(m.Dirs) - 1; i >= 0; i-- {
		if err := fsys.Remove(m.Dirs[i]); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("removing directory %s: %w", m.Dirs[i], err))
		}
	}
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if err := fsys.Remove(dir + "/" + e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := fsys.Remove(dir); err != nil {
		errs = append(errs, err)
	}
	if rest, err := fsys.ReadDir(UndoDir); err == nil && len(rest) == 0 {
		if err := fsys.Remove(UndoDir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("installed: files restored, but cleaning up %s failed: %w", dir, errors.Join(errs...))
	}
	return res, nil
}
