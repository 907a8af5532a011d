package integrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/integratetest"
	"github.com/xpboot/xpboot/internal/peertest"
)

// failFS fails the n-th call (from 1) that changes the tree: WriteFile,
// MkdirAll or Remove. Calls after it succeed again, so that a rollback can
// run; n 0 never fails. calls counts them all.
type failFS struct {
	imagefs.FS
	n, calls int
}

var errInjected = errors.New("injected failure")

func (f *failFS) fail(op, name string) error {
	f.calls++
	if f.calls == f.n {
		return fmt.Errorf("%s %s: %w", op, name, errInjected)
	}
	return nil
}

func (f *failFS) WriteFile(name string, r io.Reader, size int64, mtime time.Time) error {
	if err := f.fail("write", name); err != nil {
		return err
	}
	return f.FS.WriteFile(name, r, size, mtime)
}

func (f *failFS) MkdirAll(name string, mtime time.Time) error {
	if err := f.fail("mkdir", name); err != nil {
		return err
	}
	return f.FS.MkdirAll(name, mtime)
}

func (f *failFS) Remove(name string) error {
	if err := f.fail("remove", name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

// planOn is planWith that fails the test when a driver is refused.
func planOn(t *testing.T, fsys imagefs.FS, opts Options, dirs ...string) *Plan {
	t.Helper()
	p, err := planWith(t, fsys, opts, dirs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testPackages(t *testing.T) []string {
	return []string{nicPackage(t, integratetest.I386), rootPackage(t), scsiPackage(t)}
}

// TestCommitRollback fails every write, directory creation and removal
// of a full commit in turn: the tree must be as before each time.
func TestCommitRollback(t *testing.T) {
	pkgs := testPackages(t)
	count := &failFS{FS: DirFS(makeMedia(t))}
	if err := planOn(t, count, Options{Backup: true}, pkgs...).Commit(); err != nil {
		t.Fatal(err)
	}
	if count.calls < 4 {
		t.Fatalf("a full commit made only %d changes", count.calls)
	}
	for n := 1; n <= count.calls; n++ {
		root := makeMedia(t)
		before := integratetest.Snapshot(t, root)
		ffs := &failFS{FS: DirFS(root), n: n}
		err := planOn(t, ffs, Options{Backup: true}, pkgs...).Commit()
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "restored") {
			t.Errorf("failure %d of %d: err %v", n, count.calls, err)
		}
		integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
	}
}

// TestCommitBackup keeps the originals once: a second run that changes
// the files again leaves the first backups alone.
func TestCommitBackup(t *testing.T) {
	root := makeMedia(t)
	pristine := integratetest.Snapshot(t, root)
	p := planOn(t, DirFS(root), Options{Backup: true}, nicPackage(t, integratetest.I386))
	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	var backups []string
	for _, f := range files {
		if f.Kind == KindBackup {
			backups = append(backups, f.Path)
		}
	}
	if len(backups) == 0 {
		t.Fatal("Files lists no backups")
	}
	if d, _ := p.Diff(); !strings.Contains(d, "backup I386/TXTSETUP.SIF"+BackupSuffix) {
		t.Errorf("Diff does not name the backup:\n%s", d)
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	after := integratetest.Snapshot(t, root)
	for _, b := range backups {
		orig := strings.TrimSuffix(b, BackupSuffix)
		if after[b] != pristine[orig] {
			t.Errorf("%s is not the original of %s", b, orig)
		}
	}
	if after["I386/TXTSETUP.SIF"] == pristine["I386/TXTSETUP.SIF"] {
		t.Fatal("txtsetup.sif unchanged")
	}
	p2 := planOn(t, DirFS(root), Options{Backup: true}, nicPackage(t, integratetest.I386), scsiPackage(t))
	if err := p2.Commit(); err != nil {
		t.Fatal(err)
	}
	again := integratetest.Snapshot(t, root)
	if again["I386/TXTSETUP.SIF"] == after["I386/TXTSETUP.SIF"] {
		t.Fatal("second run did not change txtsetup.sif")
	}
	for _, b := range backups {
		if again[b] != after[b] {
			t.Errorf("second run replaced %s", b)
		}
	}
}

// TestCommitChangedSinceRead refuses to write over a file another program
// changed between planning and commit.
func TestCommitChangedSinceRead(t *testing.T) {
	root := makeMedia(t)
	p := planOn(t, DirFS(root), Options{}, nicPackage(t, integratetest.I386))
	sif := filepath.Join(root, "I386", "TXTSETUP.SIF")
	b, _ := os.ReadFile(sif)
	writeFile(t, sif, append(b[:len(b)-1:len(b)-1], "; edited\r\n\x1a"...))
	before := integratetest.Snapshot(t, root)
	if err := p.Commit(); err == nil || !strings.Contains(err.Error(), "I386/TXTSETUP.SIF changed since the plan read it") {
		t.Fatalf("err %v", err)
	}
	integratetest.SameSnapshot(t, before, integratetest.Snapshot(t, root))
}

// mediaImage makes a FAT32 image holding the tree src under dir (inside
// the image) and returns its path.
func mediaImage(t *testing.T, src, dir string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if _, err := imagefs.Create(img, imagefs.CreateOptions{Size: 64 << 20, FS: imagefs.FSFAT32, Label: "SETUP"}); err != nil {
		t.Fatal(err)
	}
	im, fsys := openImageFS(t, img, true)
	ents, _ := os.ReadDir(src)
	var srcs []string
	for _, e := range ents {
		srcs = append(srcs, filepath.Join(src, e.Name()))
	}
	if _, err := imagefs.Put(fsys, srcs, dir+"/", nil); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// imageSnapshot lists the tree under dir of the image's first partition.
func imageSnapshot(t *testing.T, img, dir string) map[string]string {
	t.Helper()
	im, fsys := openImageFS(t, img, false)
	defer im.Close()
	return integratetest.SnapshotFS(t, fsys, dir)
}

// openImageFS opens the image img and the file system of its first
// partition.
func openImageFS(t *testing.T, img string, writable bool) (*imagefs.Image, imagefs.FS) {
	t.Helper()
	im, err := imagefs.Open(img, writable)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := im.FS(0)
	if err != nil {
		im.Close()
		t.Fatal(err)
	}
	return im, fsys
}

// TestImageFS integrates into a tree inside a FAT32 image and checks the
// result file by file against the same integration into a directory.
func TestImageFS(t *testing.T) {
	pkgs := testPackages(t)
	dirRoot := makeMedia(t)
	img := mediaImage(t, dirRoot, "/setup")
	if err := planOn(t, DirFS(dirRoot), Options{Backup: true}, pkgs...).Commit(); err != nil {
		t.Fatal(err)
	}
	want := integratetest.NormalizeHives(t, integratetest.Snapshot(t, dirRoot))

	f, err := OpenImage(img, 0, "/SETUP", true) // matched case-insensitively
	if err != nil {
		t.Fatal(err)
	}
	if err := planOn(t, f, Options{Backup: true}, pkgs...).Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, want, integratetest.NormalizeHives(t, imageSnapshot(t, img, "/setup")))
	integratetest.FsckImage(t, img)

	// The second run changes nothing.
	f, err = OpenImage(img, 0, "/setup", true)
	if err != nil {
		t.Fatal(err)
	}
	p := planOn(t, f, Options{Backup: true}, pkgs...)
	fc, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fc {
		if c.Changed {
			t.Errorf("second run changes %s", c.Path)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestImageFSRollback fails a write in the middle of a commit into an
// image: after closing it, every file is as before and fsck.fat is happy.
func TestImageFSRollback(t *testing.T) {
	pkgs := testPackages(t)
	img := mediaImage(t, makeMedia(t), "/")
	before := imageSnapshot(t, img, "/")
	count := &failFS{FS: DirFS(makeMedia(t))}
	if err := planOn(t, count, Options{}, pkgs...).Commit(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, count.calls/2 + 1, count.calls} {
		f, err := OpenImage(img, 1, "/", true)
		if err != nil {
			t.Fatal(err)
		}
		ffs := &failFS{FS: f, n: n}
		if err := planOn(t, ffs, Options{}, pkgs...).Commit(); !errors.Is(err, errInjected) {
			t.Errorf("failure %d: err %v", n, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		integratetest.SameSnapshot(t, before, imageSnapshot(t, img, "/"))
	}
	integratetest.FsckImage(t, img)
}

// TestImageFSReadOnly: a plan over an image opened read-only plans and
// diffs but refuses to commit, up front.
func TestImageFSReadOnly(t *testing.T) {
	img := mediaImage(t, makeMedia(t), "/")
	before, _ := os.ReadFile(img)
	f, err := OpenImage(img, 0, "/", false)
	if err != nil {
		t.Fatal(err)
	}
	p := planOn(t, f, Options{}, nicPackage(t, integratetest.I386))
	if d, err := p.Diff(); err != nil || d == "" {
		t.Fatalf("diff %q, %v", d, err)
	}
	if err := p.Commit(); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("commit on a read-only image: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(img); string(after) != string(before) {
		t.Error("the image changed")
	}
	if _, err := OpenImage(img, 0, "/nonexistent", false); err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("missing root: %v", err)
	}
	if _, err := OpenImage(img, 0, "/I386/TXTSETUP.SIF", false); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as root: %v", err)
	}
}

// TestImageFSNTFS integrates into a setup tree on an NTFS partition (made
// by mkntfs, filled by xpboot's NTFS writer) and checks the result file by
// file against the same integration into a directory, then the volume with
// ntfsfix. A read-only open still refuses writes.
func TestImageFSNTFS(t *testing.T) {
	peertest.Need(t, "mkntfs", "ntfs-3g")
	peertest.Need(t, "ntfsfix", "ntfs-3g")
	pkgs := testPackages(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "ntfs.img")
	res, err := imagefs.Create(img, imagefs.CreateOptions{Size: 64 << 20, FS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(dir, "vol")
	f, _ := os.Create(vol)
	f.Truncate(res.Partition.Size)
	f.Close()
	peertest.Run(t, time.Minute, "mkntfs", "-F", "-Q", "-q", "-p", "63", "-H", "255", "-S", "63", vol)
	raw, _ := os.ReadFile(vol)
	disk, _ := os.OpenFile(img, os.O_RDWR, 0)
	disk.WriteAt(raw, res.Partition.Offset)
	disk.Close()

	dirRoot := makeMedia(t)
	im, fsys := openImageFS(t, img, true)
	ents, _ := os.ReadDir(dirRoot)
	var srcs []string
	for _, e := range ents {
		srcs = append(srcs, filepath.Join(dirRoot, e.Name()))
	}
	if err := fsys.Mkdir("/setup", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := imagefs.Put(fsys, srcs, "/setup/", nil); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := OpenImage(img, 0, "/setup", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.CheckWritable(); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("CheckWritable on a read-only open: %v", err)
	}
	ro.Close()

	if err := planOn(t, DirFS(dirRoot), Options{Backup: true}, pkgs...).Commit(); err != nil {
		t.Fatal(err)
	}
	want := integratetest.NormalizeHives(t, integratetest.Snapshot(t, dirRoot))
	w, err := OpenImage(img, 0, "/SETUP", true)
	if err != nil {
		t.Fatal(err)
	}
	if w.Type() != imagefs.FSNTFS {
		t.Fatalf("partition type %s", w.Type())
	}
	if err := planOn(t, w, Options{Backup: true}, pkgs...).Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, want, integratetest.NormalizeHives(t, imageSnapshot(t, img, "/setup")))

	disk, _ = os.Open(img)
	out := make([]byte, res.Partition.Size)
	disk.ReadAt(out, res.Partition.Offset)
	disk.Close()
	os.WriteFile(vol, out, 0o644)
	peertest.Run(t, time.Minute, "ntfsfix", "-n", vol)
}

// TestImageFSFull: a plan whose files do not fit in the image's free
// space is refused before anything is written.
func TestImageFSFull(t *testing.T) {
	img := mediaImage(t, makeMedia(t), "/setup")
	im, fsys := openImageFS(t, img, true)
	free := fsys.(interface{ FreeBytes() int64 }).FreeBytes()
	fill := free - 8<<10
	if err := fsys.WriteFile("/fill.bin", io.LimitReader(zeros{}, fill), fill, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	before := imageSnapshot(t, img, "/setup")
	f, err := OpenImage(img, 0, "/setup", true)
	if err != nil {
		t.Fatal(err)
	}
	err = planOn(t, f, Options{}, testPackages(t)...).Commit()
	if err == nil || !strings.Contains(err.Error(), "free; nothing written") {
		t.Errorf("commit into a full image: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	integratetest.SameSnapshot(t, before, imageSnapshot(t, img, "/setup"))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
