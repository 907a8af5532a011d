package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/bootcode"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/imagefs/ntfs"
	"github.com/xpboot/xpboot/integrate"
)

// target is where a stage is written.
type target interface {
	String() string
	exists(p string) bool
	readFile(p string) ([]byte, error)
	mkdirAll(p string, mtime time.Time) error
	writeFile(p string, r io.Reader, size int64, mtime time.Time) error
	removeAll(p string) error
	free() int64
	clusterSize() int64
	// entryOverhead is the space each staged file or directory takes
	// beyond its cluster-rounded data (an NTFS MFT record).
	entryOverhead() int64
	// bootSector returns BOOTSECT.DAT and what the stage does to the
	// disk's boot code.
	bootSector() ([]byte, []string, error)
	// volume returns the disk signature and the partition's byte offset
	// (MIGRATE.INF); ok is false for a directory.
	volume() (sig uint32, off int64, ok bool)
	integrateFS() imagefs.FS
	commit() error
	abort()
}

// openTarget opens a directory or IMG[:/] for a stage.
func openTarget(spec string, opts *Options) (target, error) {
	if st, err := os.Stat(spec); err == nil && st.IsDir() {
		return newDirTarget(spec, opts.DryRun)
	}
	loc, ok := imagefs.ParseLocation(spec)
	if !ok {
		return nil, fmt.Errorf("setup: target %s: not a directory or a disk image (IMG or IMG:/)", spec)
	}
	if loc.Path != "/" {
		return nil, fmt.Errorf("setup: target %s: setup is staged at the root of a partition (IMG or IMG:/), not in %s", spec, loc.Path)
	}
	return newImageTarget(loc.Image, opts.Partition, !opts.DryRun)
}

// imageTarget is a FAT32 or NTFS partition of a disk image.
type imageTarget struct {
	img  *imagefs.Image
	fs   imagefs.FS
	part imagefs.Partition
	kind string // imagefs.FSFAT32 or imagefs.FSNTFS
	name string
	done bool
	// undo saves what an NTFS stage overwrites (nil for FAT32 and for a
	// read-only open); see undoDevice.
	undo *undoDevice
}

func newImageTarget(image string, partition int, writable bool) (*imageTarget, error) {
	img, err := imagefs.Open(image, writable)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	// The partition imagefs.Image.FS would choose: the given one, else the
	// active one with a known file system, else the first FAT32 or NTFS
	// one.
	var part *imagefs.Partition
	parts := img.Partitions()
	for i := range parts {
		p := &parts[i]
		switch {
		case partition != 0 && p.Index == partition:
			part = p
		case partition == 0 && part == nil && p.Entry.Active && img.Detect(*p) != imagefs.FSUnknown:
			part = p
		}
	}
	for i := range parts {
		if k := img.Detect(parts[i]); partition == 0 && part == nil && (k == imagefs.FSFAT32 || k == imagefs.FSNTFS) {
			part = &parts[i]
		}
	}
	if part == nil {
		img.Dev.Close()
		if partition != 0 {
			return nil, fmt.Errorf("setup: %s: partition %d does not exist", image, partition)
		}
		return nil, fmt.Errorf("setup: %s: %w", image, imagefs.ErrNoPartition)
	}
	kind := img.Detect(*part)
	var undo *undoDevice
	switch kind {
	case imagefs.FSFAT32:
	case imagefs.FSNTFS:
		if writable {
			if undo, err = ntfsUndo(img, *part); err != nil {
				img.Dev.Close()
				return nil, fmt.Errorf("setup: %s: partition %d: %w", image, part.Index, err)
			}
			img.Dev = undo
		}
	default:
		img.Dev.Close()
		return nil, fmt.Errorf("setup: %s: partition %d (type 0x%02x) holds a %s file system; staging needs FAT32 or NTFS", image, part.Index, part.Entry.Type, kind)
	}
	fsys, err := img.FS(part.Index)
	if err != nil {
		img.Dev.Close()
		return nil, fmt.Errorf("setup: %w", err)
	}
	if n, ok := fsys.(interface{ CheckWritable() error }); ok && writable {
		// The NTFS writer's guard rails (a dirty volume, an unclean
		// $LogFile, hiberfil.sys, $MFTMirr out of step), before any plan.
		if err := n.CheckWritable(); err != nil {
			img.Dev.Close()
			return nil, fmt.Errorf("setup: %s: partition %d: %w", image, part.Index, err)
		}
	}
	return &imageTarget{img: img, fs: fsys, part: *part, kind: kind, name: image, undo: undo}, nil
}

// ntfsUndo wraps the image's device in an undoDevice protecting
// everything but the NTFS partition's free clusters.
func ntfsUndo(img *imagefs.Image, part imagefs.Partition) (*undoDevice, error) {
	alloc, err := ntfs.AllocatedRanges(img.Dev, part.Offset, part.Size)
	if err != nil {
		return nil, err
	}
	keep := []span{{0, part.Offset}, {part.Offset + part.Size, img.Dev.Size()}}
	for _, r := range alloc.Ranges {
		keep = append(keep, span{part.Offset + r.Off, part.Offset + r.Off + r.Len})
	}
	return newUndoDevice(img.Dev, keep)
}

func (t *imageTarget) String() string { return t.name }

func (t *imageTarget) abs(p string) string { return path.Clean("/" + p) }

func (t *imageTarget) exists(p string) bool {
	_, err := t.fs.Stat(t.abs(p))
	return err == nil
}

func (t *imageTarget) readFile(p string) ([]byte, error) {
	f, err := t.fs.Open(t.abs(p))
	if err != nil {
		return nil, err
	}
	if f.Size() > 1<<20 {
		return nil, fmt.Errorf("%s:%s is %d bytes", t.name, t.abs(p), f.Size())
	}
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

func (t *imageTarget) mkdirAll(p string, mtime time.Time) error {
	return t.fs.MkdirAll(t.abs(p), mtime)
}

func (t *imageTarget) writeFile(p string, r io.Reader, size int64, mtime time.Time) error {
	return t.fs.WriteFile(t.abs(p), r, size, mtime)
}

func (t *imageTarget) removeAll(p string) error {
	p = t.abs(p)
	fi, err := t.fs.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		list, err := t.fs.ReadDir(p)
		if err != nil {
			return err
		}
		for _, c := range list {
			if err := t.removeAll(path.Join(p, c.Name())); err != nil {
				return err
			}
		}
	}
	return t.fs.Remove(p)
}

func (t *imageTarget) free() int64 { return t.fs.FreeBytes() }

func (t *imageTarget) clusterSize() int64 {
	b := make([]byte, 512)
	if _, err := t.img.Dev.ReadAt(b, t.part.Offset); err != nil {
		return 4096
	}
	return int64(b[0x0D]) * int64(uint16(b[0x0B])|uint16(b[0x0C])<<8)
}

// entryOverhead is an MFT record per entry on NTFS (FAT32's directory
// entries are in the per-directory cluster the plan reserves).
func (t *imageTarget) entryOverhead() int64 {
	if t.kind != imagefs.FSNTFS {
		return 0
	}
	b := make([]byte, 512)
	if _, err := t.img.Dev.ReadAt(b, t.part.Offset); err != nil {
		return 4096
	}
	switch c := int8(b[0x40]); {
	case c < 0 && c >= -16:
		return 1 << uint(-c)
	case c > 0:
		return int64(c) * t.clusterSize()
	}
	return 4096
}

func (t *imageTarget) readSectors() (sector0, boot, stage2 []byte, err error) {
	sector0, boot, stage2 = make([]byte, 512), make([]byte, 512), make([]byte, 512)
	for _, r := range []struct {
		b   []byte
		off int64
	}{{sector0, 0}, {boot, t.part.Offset}, {stage2, t.part.Offset + bootcode.FAT32Stage2Sector*512}} {
		if _, err := t.img.Dev.ReadAt(r.b, r.off); err != nil {
			return nil, nil, nil, fmt.Errorf("setup: %s: read sector at byte %d: %w", t.name, r.off, err)
		}
	}
	return sector0, boot, stage2, nil
}

func (t *imageTarget) bootSector() ([]byte, []string, error) {
	sector0 := make([]byte, 512)
	if _, err := t.img.Dev.ReadAt(sector0, 0); err != nil {
		return nil, nil, fmt.Errorf("setup: %s: read sector at byte 0: %w", t.name, err)
	}
	var dat []byte
	var notes []string
	var err error
	if t.kind == imagefs.FSNTFS {
		dat, notes, err = t.ntfsBootSector()
	} else {
		dat, notes, err = t.fat32BootSector()
	}
	if err != nil {
		return nil, nil, err
	}
	if !bootcode.HasMBRCode(sector0) {
		notes = append([]string{"install xpboot's MBR code"}, notes...)
	}
	if !t.part.Entry.Active {
		notes = append(notes, fmt.Sprintf("make partition %d the active one", t.part.Index))
	}
	for _, p := range t.img.Partitions() {
		if p.Index != t.part.Index && p.Entry.Active {
			notes = append(notes, fmt.Sprintf("clear the active flag of partition %d", p.Index))
		}
	}
	return dat, notes, nil
}

// checkHidden refuses a volume whose boot sector does not know where it
// starts: the boot code finds its volume through the hidden sectors.
func (t *imageTarget) checkHidden(boot []byte) error {
	if hidden := int64(boot[0x1C]) | int64(boot[0x1D])<<8 | int64(boot[0x1E])<<16 | int64(boot[0x1F])<<24; hidden*512 != t.part.Offset {
		return fmt.Errorf("setup: %s: partition %d: the boot sector's hidden sectors field says %d, but the partition starts at sector %d; the boot code would not find its volume", t.name, t.part.Index, hidden, t.part.Offset/512)
	}
	return nil
}

func (t *imageTarget) fat32BootSector() ([]byte, []string, error) {
	_, boot, stage2, err := t.readSectors()
	if err != nil {
		return nil, nil, err
	}
	if err := t.checkHidden(boot); err != nil {
		return nil, nil, err
	}
	as, err := bootcode.FAT32BootSector(boot)
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %s: partition %d: %w", t.name, t.part.Index, err)
	}
	dat, err := bootcode.FAT32SetupLoaderSector(as, bootcode.FAT32Stage2())
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %s: partition %d: %w", t.name, t.part.Index, err)
	}
	var notes []string
	if !bootcode.HasFAT32Code(boot, stage2) {
		notes = append(notes, fmt.Sprintf("install xpboot's FAT32 boot code in partition %d", t.part.Index))
	}
	return dat, notes, nil
}

// readNTFSBoot reads the 16 sectors of the NTFS volume's $Boot.
func (t *imageTarget) readNTFSBoot() ([]byte, error) {
	boot := make([]byte, bootcode.NTFSBootSize)
	if _, err := t.img.Dev.ReadAt(boot, t.part.Offset); err != nil {
		return nil, fmt.Errorf("setup: %s: read the NTFS boot sectors at byte %d: %w", t.name, t.part.Offset, err)
	}
	return boot, nil
}

// ntfsBootSector makes BOOTSECT.DAT from the volume's boot sector as
// xpboot's NTFS boot code will leave it (commit installs the code when the
// volume has other code): the BPB of this volume, the first stage loading
// $LDR$ through the volume's second stage.
func (t *imageTarget) ntfsBootSector() ([]byte, []string, error) {
	boot, err := t.readNTFSBoot()
	if err != nil {
		return nil, nil, err
	}
	if err := t.checkHidden(boot); err != nil {
		return nil, nil, err
	}
	as, err := bootcode.NTFSBootArea(boot, t.part.Offset)
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %s: partition %d: %w", t.name, t.part.Index, err)
	}
	dat, err := bootcode.NTFSSetupLoaderSector(as, t.part.Offset)
	if err != nil {
		return nil, nil, fmt.Errorf("setup: %s: partition %d: %w", t.name, t.part.Index, err)
	}
	var notes []string
	if !bootcode.HasNTFSCode(boot) {
		notes = append(notes, fmt.Sprintf("install xpboot's NTFS boot code in partition %d", t.part.Index))
	}
	return dat, notes, nil
}

func (t *imageTarget) volume() (uint32, int64, bool) {
	return t.img.MBR.Signature, t.part.Offset, true
}

// integrateFS is the staged tree for integrate: the partition's file
// system, names taken from its root.
func (t *imageTarget) integrateFS() imagefs.FS { return imagefs.Sub(t.fs, "/") }

// commit writes the file system's metadata, then the boot code and the
// active flag, and closes the image. An NTFS flush that fails is undone.
func (t *imageTarget) commit() error {
	t.done = true
	if err := t.fs.Flush(); err != nil {
		if t.undo != nil {
			if rerr := t.undo.restore(); rerr != nil {
				err = fmt.Errorf("%w (and putting back the bytes it changed failed: %v)", err, rerr)
			}
		}
		t.img.Dev.Close()
		return fmt.Errorf("setup: %s: %w", t.name, err)
	}
	sector0 := make([]byte, 512)
	if _, err := t.img.Dev.ReadAt(sector0, 0); err != nil {
		t.img.Dev.Close()
		return fmt.Errorf("setup: %s: read the MBR: %w", t.name, err)
	}
	if err := t.installBootCode(); err != nil {
		t.img.Dev.Close()
		return err
	}
	m, err := mbr.Parse(sector0, uint64(t.img.Dev.Size()/512))
	if err != nil {
		t.img.Dev.Close()
		return fmt.Errorf("setup: %s: %w", t.name, err)
	}
	for i := range m.Entries {
		m.Entries[i].Active = i+1 == t.part.Index
	}
	out := m.Bytes()
	if err := bootcode.InstallMBR(out); err != nil {
		t.img.Dev.Close()
		return err
	}
	if !bytes.Equal(out, sector0) {
		if _, err := t.img.Dev.WriteAt(out, 0); err != nil {
			t.img.Dev.Close()
			return fmt.Errorf("setup: %s: write MBR: %w", t.name, err)
		}
	}
	if err := t.img.Dev.Close(); err != nil {
		return fmt.Errorf("setup: %s: %w", t.name, err)
	}
	return nil
}

// installBootCode puts xpboot's boot code for the partition's file system
// in place unless it is there already.
func (t *imageTarget) installBootCode() error {
	if t.kind == imagefs.FSNTFS {
		boot, err := t.readNTFSBoot()
		if err != nil {
			return err
		}
		if bootcode.HasNTFSCode(boot) {
			return nil
		}
		if err := bootcode.InstallNTFS(t.img.Dev, t.part.Offset); err != nil {
			return fmt.Errorf("setup: %s: %w", t.name, err)
		}
		return nil
	}
	_, boot, stage2, err := t.readSectors()
	if err != nil {
		return err
	}
	if !bootcode.HasFAT32Code(boot, stage2) {
		if err := bootcode.InstallFAT32(t.img.Dev, t.part.Offset); err != nil {
			return fmt.Errorf("setup: %s: %w", t.name, err)
		}
	}
	return nil
}

// abort closes the image without writing the file system's metadata: on
// FAT32 the data written went to clusters its FAT still calls free; on
// NTFS the blocks in use that were written are put back (undoDevice).
func (t *imageTarget) abort() {
	if !t.done {
		t.done = true
		if t.undo != nil {
			t.undo.restore()
		}
		t.img.Dev.Close()
	}
}

// dirTarget is a plain directory. The stage is built in a temporary
// directory inside it and its top-level entries are moved into place by
// commit, so a failed stage leaves the directory as it was.
type dirTarget struct {
	root, tmp string
}

func newDirTarget(root string, dryRun bool) (*dirTarget, error) {
	t := &dirTarget{root: root}
	if !dryRun {
		tmp, err := os.MkdirTemp(root, ".xpboot-stage-")
		if err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
		t.tmp = tmp
	}
	return t, nil
}

func (t *dirTarget) String() string { return t.root }

// resolve finds p below root case-insensitively ("" when absent).
func resolveCase(root, p string) string {
	cur := root
	for _, el := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if el == "" {
			continue
		}
		next := filepath.Join(cur, el)
		if _, err := os.Lstat(next); err == nil {
			cur = next
			continue
		}
		ents, err := os.ReadDir(cur)
		if err != nil {
			return ""
		}
		found := ""
		for _, e := range ents {
			if strings.EqualFold(e.Name(), el) {
				found = e.Name()
				break
			}
		}
		if found == "" {
			return ""
		}
		cur = filepath.Join(cur, found)
	}
	return cur
}

func (t *dirTarget) exists(p string) bool { return resolveCase(t.root, p) != "" }

func (t *dirTarget) readFile(p string) ([]byte, error) {
	r := resolveCase(t.root, p)
	if r == "" {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return os.ReadFile(r)
}

func (t *dirTarget) local(p string) string { return filepath.Join(t.tmp, filepath.FromSlash(p)) }

func (t *dirTarget) mkdirAll(p string, mtime time.Time) error {
	return os.MkdirAll(t.local(p), 0o755)
}

func (t *dirTarget) writeFile(p string, r io.Reader, size int64, mtime time.Time) error {
	f, err := os.OpenFile(t.local(p), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes copied, %d expected", p, n, size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !mtime.IsZero() {
		err = os.Chtimes(t.local(p), mtime, mtime)
	}
	return err
}

// removeAll is deferred to commit for a directory: the old entry is
// replaced by the new one there.
func (t *dirTarget) removeAll(string) error { return nil }

func (t *dirTarget) free() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(t.root, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func (t *dirTarget) clusterSize() int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(t.root, &st); err != nil || st.Bsize <= 0 {
		return 4096
	}
	return int64(st.Bsize)
}

// bootSector of a directory has no volume to copy a BPB from.
func (t *dirTarget) bootSector() ([]byte, []string, error) {
	return nil, nil, nil
}

func (t *dirTarget) volume() (uint32, int64, bool) { return 0, 0, false }

func (t *dirTarget) entryOverhead() int64 { return 0 }

func (t *dirTarget) integrateFS() imagefs.FS { return integrate.DirFS(t.tmp) }

// commit moves each new top-level entry into place; an entry it replaces
// (BOOT.INI, or an old stage with --force) is moved aside first and
// deleted at the end. A failed move puts back what was moved.
func (t *dirTarget) commit() error {
	ents, err := os.ReadDir(t.tmp)
	if err != nil {
		return err
	}
	aside := filepath.Join(t.tmp, ".replaced")
	type move struct{ from, to string }
	var done []move
	undo := func() {
		for i := len(done) - 1; i >= 0; i-- {
			os.Rename(done[i].to, done[i].from)
		}
	}
	if err := os.Mkdir(aside, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		dst := filepath.Join(t.root, e.Name())
		if old := resolveCase(t.root, e.Name()); old != "" {
			m := move{old, filepath.Join(aside, filepath.Base(old))}
			if err := os.Rename(m.from, m.to); err != nil {
				undo()
				return fmt.Errorf("setup: %w", err)
			}
			done = append(done, m)
		}
		m := move{filepath.Join(t.tmp, e.Name()), dst}
		if err := os.Rename(m.from, m.to); err != nil {
			undo()
			return fmt.Errorf("setup: %w", err)
		}
		done = append(done, m)
	}
	return os.RemoveAll(t.tmp)
}

func (t *dirTarget) abort() {
	if t.tmp != "" {
		os.RemoveAll(t.tmp)
	}
}
