package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/xpboot/xpboot/imagefs"
)

// Result reports a stage.
type Result struct {
	Plan        *Plan            `json:"plan"`
	DryRun      bool             `json:"dry_run"`
	Integration *IntegrateResult `json:"integration,omitempty"`
}

// ErrStaged refuses staging over an existing stage without Force.
var ErrStaged = errors.New("setup: the target is already staged")

// Stage stages the media at source onto target (a directory, or IMG /
// IMG:/ for the FAT32 or NTFS partition of a disk image); see the package
// documentation. With opts.DryRun it returns the plan and writes nothing.
func Stage(source, targetSpec string, opts Options) (*Result, error) {
	if opts.Integrate != nil {
		if err := opts.Integrate.load(); err != nil {
			return nil, err
		}
	}
	src, err := OpenSource(source)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	m, err := DetectMedia(src)
	if err != nil {
		return nil, err
	}
	p, err := planSource(src, m, &opts)
	if err != nil {
		return nil, err
	}
	t, err := openTarget(targetSpec, &opts)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			t.abort()
		}
	}()
	p.Target = t.String()

	// An existing stage: refused, or replaced with --force.
	var found []string
	for _, e := range []string{BootDir, LocalDir, "$LDR$"} {
		if t.exists(e) {
			found = append(found, e)
		}
	}
	if len(found) > 0 {
		if !opts.Force {
			return nil, fmt.Errorf("%w: %s holds %s; --force replaces the stage", ErrStaged, t, strings.Join(found, ", "))
		}
		p.Replaced = found
	}

	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var existing []byte
	if t.exists("BOOT.INI") {
		if existing, err = t.readFile("BOOT.INI"); err != nil {
			return nil, fmt.Errorf("setup: %s: BOOT.INI: %w", t, err)
		}
	}
	ini, err := bootINI(existing, m.Title)
	if err != nil {
		return nil, err
	}
	why := "Default=C:\\$WIN_NT$.~BT\\BOOTSECT.DAT"
	if len(existing) > 0 {
		why += ", existing entries kept"
	}
	if err := p.add(Item{Path: "BOOT.INI", Why: why, data: ini}); err != nil {
		return nil, err
	}
	dat, notes, err := t.bootSector()
	if err != nil {
		return nil, err
	}
	p.BootCode = notes
	if dat != nil {
		if err := p.add(Item{Path: BootDir + "/" + BootSectFile, Why: "xpboot's " + bootCodeName(t) + " boot sector for this volume, loading $LDR$", data: dat}); err != nil {
			return nil, err
		}
	} else {
		p.Warnings = append(p.Warnings, "a directory has no volume boot sector to copy: BOOTSECT.DAT is left out; after copying the tree into a FAT32 or NTFS image run `xpboot setup bootsect IMG`, or stage into the image (IMG:/)")
	}
	if opts.MigrateINF {
		sig, off, ok := t.volume()
		if !ok {
			return nil, fmt.Errorf("setup: --migrate-inf needs an image target (it maps C: by the disk signature and the partition offset)")
		}
		if err := p.add(Item{Path: BootDir + "/MIGRATE.INF", Why: fmt.Sprintf("C: = disk %08x, partition at byte %d", sig, off), data: migrateINF(sig, off)}); err != nil {
			return nil, err
		}
	}

	// Room, before the first write.
	p.reserve(src, t.clusterSize(), t.entryOverhead())
	p.Free = t.free()
	if p.Free >= 0 && p.Free < p.Needed {
		return nil, p.roomError()
	}
	res := &Result{Plan: p, DryRun: opts.DryRun}
	if opts.DryRun {
		return res, nil
	}

	for _, e := range p.Replaced {
		if err := t.removeAll(e); err != nil {
			return nil, fmt.Errorf("setup: %s: remove the old %s: %w", t, e, err)
		}
	}
	for _, d := range p.Dirs {
		if err := t.mkdirAll(d, now); err != nil {
			return nil, fmt.Errorf("setup: %s: create %s: %w", t, d, err)
		}
	}
	var done int64
	progress := func(n int64) {
		done += n
		if opts.Progress != nil {
			opts.Progress(done, p.Bytes)
		}
	}
	for _, it := range p.Items {
		if opts.Context != nil && opts.Context.Err() != nil {
			return nil, fmt.Errorf("setup: %s: %w; nothing staged", t, opts.Context.Err())
		}
		if err := writeItem(t, it, now, progress); err != nil {
			return nil, fmt.Errorf("setup: %s: write %s: %w", t, it.Path, err)
		}
	}
	if opts.Context != nil && opts.Context.Err() != nil {
		return nil, fmt.Errorf("setup: %s: %w; nothing staged", t, opts.Context.Err())
	}
	if opts.Integrate != nil {
		ir, err := opts.Integrate.run(t.integrateFS())
		if err != nil {
			return nil, fmt.Errorf("setup: %s: integrate: %w", t, err)
		}
		res.Integration = ir
	}
	committed = true
	if err := t.commit(); err != nil {
		return nil, err
	}
	return res, nil
}

func (p *Plan) roomError() error {
	var parts []string
	for _, k := range sortedKeys(p.Reserved) {
		parts = append(parts, fmt.Sprintf("%s %s", k, num(p.Reserved[k])))
	}
	reserved := ""
	if len(parts) > 0 {
		reserved = ", including txtsetup.sif [DiskSpaceRequirements] " + strings.Join(parts, ", ")
	}
	return fmt.Errorf("setup: %s: not enough room: the stage needs %s bytes (%d files of %s bytes in %d directories, cluster-rounded%s) but the file system has %s bytes free; make the disk at least %s bytes larger",
		p.Target, num(p.Needed), len(p.Items), num(p.Bytes), len(p.Dirs), reserved, num(p.Free), num(p.Needed-p.Free))
}

// num formats n with thousands separators.
func num(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

type countingReader struct {
	r  io.Reader
	fn func(int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.fn(int64(n))
	return n, err
}

func writeItem(t target, it Item, now time.Time, progress func(int64)) error {
	if it.node == nil {
		progress(int64(len(it.data)))
		return t.writeFile(it.Path, bytes.NewReader(it.data), int64(len(it.data)), now)
	}
	r, err := it.node.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	mtime := it.node.ModTime
	if mtime.IsZero() {
		mtime = now
	}
	return t.writeFile(it.Path, countingReader{io.LimitReader(r, it.node.Size), progress}, it.node.Size, mtime)
}

// bootCodeName names the boot code BOOTSECT.DAT carries.
func bootCodeName(t target) string {
	if it, ok := t.(*imageTarget); ok && it.kind == imagefs.FSNTFS {
		return "NTFS"
	}
	return "FAT32"
}
