package ntfstest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs/mbr"
)

// Names of the fixtures Build makes.
const (
	// FixtureBasic: a deep tree (16 levels), long names (255 ASCII
	// characters, 120 Cyrillic ones), Cyrillic, CJK, Greek and accented
	// names, names that only full Unicode case folding would confuse
	// (straße / STRASSE), 8.3 and long names, empty, resident and
	// non-resident files up to 3 MiB, and a file of at least 8 fragments
	// next to a directory of 200 entries, on a 64 MiB disk.
	FixtureBasic = "basic"
	// FixtureBigDir: one directory of 2,000 entries (files and a few
	// subdirectories), so its $I30 is a multi-level B+tree.
	FixtureBigDir = "bigdir"
	// FixtureXP: an XP-shaped WINDOWS\system32\drivers with 1,500 .sys
	// files and a real regf hive (from ../shared/testdata) as
	// WINDOWS\system32\config\SYSTEM, boot.ini and NTLDR in the root.
	FixtureXP = "xp"
	// FixtureMFTFull: a small tree and a directory fill/ of 100 empty
	// files made through ntfs-3g, then $MFT's $DATA cut back (data and
	// initialized size; allocation unchanged) to the whole clusters that
	// hold the last record in use, so that at most MaxFreeMFTRecords
	// records from 64 on are free, and at most MaxFreeMFTRecordsTotal
	// from 24 on (Fixture.FreeMFTRecords): ntfs-3g never hands out
	// records 27–63, so no volume it populates uses them. A writer that
	// takes the lowest free record grows $MFT after about 40 new files.
	// ntfs-3g alone always keeps a reserve of free records; see fillMFT.
	FixtureMFTFull = "mftfull"
	// FixtureFull: less than 512 KiB of free space (Fixture.FreeBytes).
	FixtureFull = "full"
	// FixtureDirty: a small tree with VOLUME_IS_DIRTY set in $Volume, set
	// the way Linux sets it: ntfsfix, which marks every volume it fixed
	// so that chkdsk runs at the next boot.
	FixtureDirty = "dirty"
	// FixtureHibernated: a small tree and a live hiberfil.sys (its first
	// page starts with "hibr"), which ntfs-3g refuses to mount read-write.
	FixtureHibernated = "hibernated"
	// FixtureUncleanLog: a small tree whose $LogFile restart areas say a
	// client is still logging (no clean shutdown), which ntfs-3g refuses to
	// mount read-write without recovery.
	FixtureUncleanLog = "uncleanlog"
)

// Fixtures lists every fixture name.
func Fixtures() []string {
	return []string{FixtureBasic, FixtureBigDir, FixtureXP, FixtureMFTFull, FixtureFull, FixtureDirty, FixtureHibernated, FixtureUncleanLog}
}

// Fixture is a private copy of a fixture image.
type Fixture struct {
	Name   string
	Image  string // a raw disk image, or the bare volume from BuildVolume
	Offset int64  // byte offset of the NTFS volume in Image
	Want   Tree   // what the volume holds

	FreeMFTRecords int64  // records from 24 on that $MFT's $DATA holds and $BITMAP marks free
	FreeBytes      int64  // free space as ntfs-3g reports it
	Fragments      int    // data runs of FixtureBasic's frag/fragmented.bin
	Hive           string // FixtureXP: the host file copied to config/SYSTEM
}

// BuildTimeout bounds the making of one fixture.
const BuildTimeout = 10 * time.Minute

// cache holds fixtures built once per test binary run, in a directory
// that Main creates and removes. It is the package's only mutable state;
// see the package documentation.
var cache struct {
	mu      sync.Mutex
	dir     string
	entries map[string]*cached
}

type cached struct {
	once sync.Once
	fx   *Fixture
	err  error
	skip string
}

// Main runs the tests of a package with the fixture cache on and removes
// the cache afterwards. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(ntfstest.Main(m)) }
func Main(m *testing.M) int {
	sweepCaches()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", cachePrefix, os.Getpid()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ntfstest:", err)
		return 1
	}
	cache.mu.Lock()
	cache.dir, cache.entries = dir, map[string]*cached{}
	cache.mu.Unlock()
	defer os.RemoveAll(dir)
	return m.Run()
}

// cachePrefix starts the name of a fixture cache directory; the process id
// of its test binary follows.
const cachePrefix = "xpboot-ntfstest-"

// sweepCaches removes the caches of test binaries that died without
// cleaning up (a test timeout panics past every deferred call): those
// whose process no longer exists.
func sweepCaches() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), cachePrefix+"*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(d), cachePrefix), "-", 2)[0])
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(d)
		}
	}
}

// Build returns a private copy (in t.TempDir) of the named fixture's disk
// image: an MBR and one NTFS partition at LBA 63.
func Build(t testing.TB, name string) *Fixture {
	t.Helper()
	fx := built(t, name)
	c := *fx
	c.Image = filepath.Join(t.TempDir(), name+".img")
	if err := copySparse(c.Image, fx.Image); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	c.Want = fx.Want.Clone()
	return &c
}

// BuildVolume is Build for the bare volume: Image holds the NTFS volume
// alone and Offset is 0.
func BuildVolume(t testing.TB, name string) *Fixture {
	t.Helper()
	fx := built(t, name)
	v, err := OpenVolume(fx.Image, fx.Offset)
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	c := *fx
	c.Image, c.Offset = filepath.Join(t.TempDir(), name+".ntfs"), 0
	if err := v.Extract(c.Image); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	c.Want = fx.Want.Clone()
	return &c
}

// built returns the cached fixture, building it first if needed.
func built(t testing.TB, name string) *Fixture {
	t.Helper()
	NeedPeers(t)
	cache.mu.Lock()
	dir := cache.dir
	var c *cached
	if dir != "" {
		if c = cache.entries[name]; c == nil {
			c = &cached{}
			cache.entries[name] = c
		}
	}
	cache.mu.Unlock()
	if c == nil { // no Main: build for this test only
		fx, err := buildFixture(t, name, t.TempDir())
		if err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		return fx
	}
	c.once.Do(func() {
		sub := filepath.Join(dir, name)
		if c.err = os.Mkdir(sub, 0o755); c.err == nil {
			c.fx, c.err = buildFixture(t, name, sub)
		}
	})
	if c.err != nil {
		t.Fatalf("fixture %s: %v", name, c.err)
	}
	return c.fx
}

// spec describes how a fixture is made.
type spec struct {
	disk     int64 // bytes, rounded up to whole cylinders
	populate func(ctx context.Context, w *populator) error
	// after runs on the bare, unmounted volume.
	after func(ctx context.Context, fx *Fixture, vol string) error
}

func specOf(name string) (spec, error) {
	switch name {
	case FixtureBasic:
		return spec{disk: 64 << 20, populate: populateBasic, after: countFragments}, nil
	case FixtureBigDir:
		return spec{disk: 64 << 20, populate: populateBigDir}, nil
	case FixtureXP:
		return spec{disk: 128 << 20, populate: populateXP}, nil
	case FixtureMFTFull:
		return spec{disk: 64 << 20, populate: populateMFTFull, after: fillMFT}, nil
	case FixtureFull:
		return spec{disk: 48 << 20, populate: populateFull}, nil
	case FixtureDirty:
		return spec{disk: 32 << 20, populate: populateSmall, after: markDirty}, nil
	case FixtureHibernated:
		return spec{disk: 32 << 20, populate: populateHibernated}, nil
	case FixtureUncleanLog:
		return spec{disk: 32 << 20, populate: populateSmall, after: makeLogUnclean}, nil
	}
	return spec{}, fmt.Errorf("no fixture named %q (have %s)", name, strings.Join(Fixtures(), ", "))
}

func buildFixture(t testing.TB, name, dir string) (*Fixture, error) {
	t.Helper()
	sp, err := specOf(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	start := time.Now()
	diskBytes, entry, err := diskLayout(sp.disk, mbr.TypeNTFS)
	if err != nil {
		return nil, err
	}
	vol := filepath.Join(dir, name+".ntfs")
	f, err := os.Create(vol)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(int64(entry.Sectors) * 512)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// The geometry XP's NTFS boot code needs: partition start 63, 255
	// heads, 63 sectors per track (mkntfs cannot ask a file for them).
	if _, err := run(ctx, PeerTimeout, "mkntfs", "-F", "-f", "-q", "-s", "512", "-c", "4096",
		"-p", "63", "-H", "255", "-S", "63", "-L", "XPBOOT-"+strings.ToUpper(name), vol); err != nil {
		return nil, err
	}
	fx := &Fixture{Name: name, Offset: int64(entry.Start) * 512, Want: Tree{}}
	m, err := mountVolume(vol, true)
	if err != nil {
		return nil, err
	}
	defer m.Unmount()
	w := &populator{root: m.Dir, tree: fx.Want, seed: name}
	err = sp.populate(ctx, w)
	fx.FreeBytes = w.free()
	if uerr := m.Unmount(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, fmt.Errorf("populating through ntfs-3g: %w", err)
	}
	if sp.after != nil {
		if err := sp.after(ctx, fx, vol); err != nil {
			return nil, err
		}
	}
	if fx.FreeMFTRecords, err = freeMFTRecords(vol); err != nil {
		return nil, err
	}
	fx.Image = filepath.Join(dir, name+".img")
	fx.Hive = w.hive
	if err := wrapMBR(fx.Image, vol, diskBytes, entry); err != nil {
		return nil, err
	}
	os.Remove(vol)
	t.Logf("fixture %s: %d entries, %d free MFT records, %d bytes free, built in %v",
		name, len(fx.Want), fx.FreeMFTRecords, fx.FreeBytes, time.Since(start).Round(time.Millisecond))
	return fx, nil
}

// populator writes files into a mounted volume and records them in tree.
type populator struct {
	root string
	tree Tree
	seed string
	hive string
}

func (w *populator) full(p string) string { return filepath.Join(w.root, filepath.FromSlash(p)) }

func (w *populator) mkdirAll(p string) error {
	parts := strings.Split(p, "/")
	for i := range parts {
		q := strings.Join(parts[:i+1], "/")
		if w.tree[q] == Dir {
			continue
		}
		if err := os.Mkdir(w.full(q), 0o755); err != nil {
			return err
		}
		w.tree[q] = Dir
	}
	return nil
}

func (w *populator) put(p string, data []byte) error {
	if dir := filepath.ToSlash(filepath.Dir(p)); dir != "." {
		if err := w.mkdirAll(dir); err != nil {
			return err
		}
	}
	if err := os.WriteFile(w.full(p), data, 0o644); err != nil {
		return err
	}
	w.tree[p] = Hash(data)
	return nil
}

func (w *populator) rm(p string) error {
	if err := os.Remove(w.full(p)); err != nil {
		return err
	}
	delete(w.tree, p)
	return nil
}

// free returns the free bytes of the mounted volume.
func (w *populator) free() int64 {
	var st statfs
	if err := statFS(w.root, &st); err != nil {
		return -1
	}
	return st.free
}

// Content returns n deterministic pseudo-random bytes named by key, the
// bytes the fixtures and the benchmark put into their files.
func Content(key string, n int) []byte {
	seed := sha256.Sum256([]byte(key))
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

func (w *populator) content(p string, n int) []byte { return Content(w.seed+"/"+p, n) }

func populateBasic(ctx context.Context, w *populator) error {
	// A deep tree with a file at every level.
	deep := "deep"
	for i := 1; i <= 16; i++ {
		deep += fmt.Sprintf("/level%02d", i)
		if err := w.put(deep+"/file.txt", w.content(deep, 100+i*37)); err != nil {
			return err
		}
	}
	names := []string{
		// 8.3-valid and long names, in several cases.
		"README.TXT", "readme long name.txt", "UPPER.SYS", "lower.sys", "MiXeD.Sys", "a.b.c.d", "NOEXT", "x",
		// Unicode: Cyrillic, CJK, Greek, accented, ligatures, titlecase.
		"Привет мир.txt", "日本語のファイル.txt", "中文文件名.dat", "한국어.txt", "café crème.doc", "naïve ÆØÅ.txt",
		"ΣΊΣΥΦΟΣ.txt", "σίσυφος-ς.txt", "ǅungla.txt", "ﬁle-ligature.txt", "Ärger.txt", "ärger zwei.txt",
		// Full Unicode case folding maps ß to "ss", NTFS's $UpCase maps ß
		// to itself: two different names on NTFS.
		"straße.txt", "STRASSE.txt",
		// Longest names Linux can pass: 255 bytes.
		strings.Repeat("L", 251) + ".txt", strings.Repeat("Д", 120) + ".txt",
	}
	for i, n := range names {
		if err := w.put("names/"+n, w.content(n, 10+i*53)); err != nil {
			return err
		}
	}
	if err := w.put("Юникод/目录/ドキュメント/ñandú.txt", w.content("ñandú", 4321)); err != nil {
		return err
	}
	// Sizes around the resident / non-resident boundary and beyond.
	for _, n := range []int{0, 1, 500, 700, 1000, 4096, 4097, 100 << 10, 3 << 20} {
		if err := w.put(fmt.Sprintf("sizes/size-%d.bin", n), w.content(strconv.Itoa(n), n)); err != nil {
			return err
		}
	}
	if err := w.mkdirAll("empty dir"); err != nil {
		return err
	}
	return fragment(ctx, w)
}

// fragment makes frag/fragmented.bin span many runs: it fills the volume
// with 16 KiB files and one filler, deletes every other small file, writes
// a file larger than the remaining contiguous space so that it must use
// the holes, and removes the filler again.
func fragment(ctx context.Context, w *populator) error {
	const n, each = 400, 16 << 10
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := fmt.Sprintf("frag/keep%03d.bin", i)
		if err := w.put(p, w.content(p, each)); err != nil {
			return err
		}
	}
	free := w.free()
	if free < 4<<20 {
		return fmt.Errorf("only %d bytes free before the filler", free)
	}
	filler := w.full("filler.bin")
	f, err := os.Create(filler)
	if err != nil {
		return err
	}
	chunk := make([]byte, 1<<20)
	for left := free - 2<<20; left > 0; left -= int64(len(chunk)) {
		if left < int64(len(chunk)) {
			chunk = chunk[:left]
		}
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return fmt.Errorf("filler: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	for i := 1; i < n; i += 2 {
		if err := w.rm(fmt.Sprintf("frag/keep%03d.bin", i)); err != nil {
			return err
		}
	}
	if err := w.put("frag/fragmented.bin", w.content("fragmented", 4<<20)); err != nil {
		return err
	}
	return os.Remove(filler)
}

func populateBigDir(ctx context.Context, w *populator) error {
	for i := 0; i < 2000; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var p string
		switch {
		case i%100 == 7:
			if err := w.mkdirAll(fmt.Sprintf("big/Sub Directory %04d", i)); err != nil {
				return err
			}
			continue
		case i%3 == 0:
			p = fmt.Sprintf("big/F%05d.SYS", i)
		case i%3 == 1:
			p = fmt.Sprintf("big/a rather long file name number %d.txt", i)
		default:
			p = fmt.Sprintf("big/файл-%d.дат", i)
		}
		if err := w.put(p, w.content(p, i%2500)); err != nil {
			return err
		}
	}
	return nil
}

// hivePath finds a real public hive under ../shared/testdata next to the
// repository (never copied into it).
func hivePath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "testdata", "hives", "regparser-NTUSER.DAT"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func populateXP(ctx context.Context, w *populator) error {
	hive, err := hivePath()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(hive)
	if err != nil {
		return fmt.Errorf("the XP fixture needs a real hive: %w", err)
	}
	w.hive = hive
	if err := w.put("WINDOWS/system32/config/SYSTEM", data); err != nil {
		return err
	}
	for i := 0; i < 1500; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := fmt.Sprintf("WINDOWS/system32/drivers/drv%04d.sys", i)
		switch i % 5 {
		case 1:
			p = fmt.Sprintf("WINDOWS/system32/drivers/Driver_%d_x86.SYS", i)
		case 3:
			p = fmt.Sprintf("WINDOWS/system32/drivers/n%d.sys", i)
		}
		if err := w.put(p, w.content(p, 1024+(i*7919)%23552)); err != nil {
			return err
		}
	}
	for p, s := range map[string]string{
		"boot.ini":                           "[boot loader]\r\ntimeout=30\r\ndefault=multi(0)disk(0)rdisk(0)partition(1)\\WINDOWS\r\n",
		"NTLDR":                              string(w.content("NTLDR", 250032)),
		"ntdetect.com":                       string(w.content("ntdetect", 47564)),
		"WINDOWS/system32/drivers/etc/hosts": "127.0.0.1       localhost\r\n",
		"WINDOWS/inf/netrtl.inf":             string(w.content("netrtl", 12000)),
		"WINDOWS/system32/config/SOFTWARE":   string(w.content("SOFTWARE", 1<<20)),
	} {
		if err := w.put(p, []byte(s)); err != nil {
			return err
		}
	}
	return nil
}

func populateSmall(ctx context.Context, w *populator) error {
	for _, p := range []string{"a.txt", "dir/b.bin", "dir/sub/c.dat", "WINDOWS/system32/config/SYSTEM"} {
		if err := w.put(p, w.content(p, 3000)); err != nil {
			return err
		}
	}
	return nil
}

func populateMFTFull(ctx context.Context, w *populator) error {
	if err := populateSmall(ctx, w); err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		if err := w.put(fmt.Sprintf("fill/f%05d", i), nil); err != nil {
			return err
		}
	}
	return nil
}

func populateFull(ctx context.Context, w *populator) error {
	if err := populateSmall(ctx, w); err != nil {
		return err
	}
	size := w.free() - 384<<10
	if size <= 0 {
		return fmt.Errorf("no room to fill: %d bytes free", size)
	}
	return w.put("fill.bin", w.content("fill", int(size)))
}

func populateHibernated(ctx context.Context, w *populator) error {
	if err := populateSmall(ctx, w); err != nil {
		return err
	}
	// ntfs-3g reads the first page of hiberfil.sys: "hibr" (or "wake")
	// there means Windows hibernated and the volume's cache lives in it.
	page := w.content("hiberfil", 64<<10)
	copy(page, "hibr")
	return w.put("hiberfil.sys", page)
}

func markDirty(ctx context.Context, fx *Fixture, vol string) error {
	if _, err := run(ctx, PeerTimeout, "ntfsfix", vol); err != nil {
		return err
	}
	out, err := run(ctx, PeerTimeout, "ntfsinfo", "-f", "-m", vol)
	if err != nil {
		return err
	}
	if !strings.Contains(string(out), "Volume Flags: 0x0001") {
		return fmt.Errorf("ntfsfix did not leave the volume dirty:\n%s", grepLines(out, "flags"))
	}
	return nil
}
