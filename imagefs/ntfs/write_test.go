package ntfs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xpboot/xpboot/imagefs/ntfs/ntfstest"
)

func TestMain(m *testing.M) { os.Exit(ntfstest.Main(m)) }

var testTime = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)

// openFixture opens a private copy of a fixture for writing.
func openFixture(t *testing.T, name string) (*ntfstest.Fixture, *FS) {
	t.Helper()
	ntfstest.NeedPeers(t)
	fx := ntfstest.Build(t, name)
	return fx, openImage(t, fx)
}

func openImage(t *testing.T, fx *ntfstest.Fixture) *FS {
	t.Helper()
	f, err := os.OpenFile(fx.Image, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	fs, err := OpenWritable(f, fx.Offset, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// apply runs op through the writer and the model.
func apply(t *testing.T, fs *FS, want ntfstest.Tree, op ntfstest.Op) {
	t.Helper()
	var err error
	switch op.Kind {
	case ntfstest.OpPut:
		err = fs.WriteFile("/"+op.Path, bytes.NewReader(op.Data), int64(len(op.Data)), testTime)
	case ntfstest.OpMkdir:
		err = fs.Mkdir("/"+op.Path, testTime)
	case ntfstest.OpRemove:
		err = fs.Remove("/" + op.Path)
	case ntfstest.OpRemoveAll:
		err = fs.removeAll("/" + op.Path)
	}
	if err != nil {
		t.Fatalf("%v: %v", op, err)
	}
	if err := want.Apply(op); err != nil {
		t.Fatalf("model: %v", err)
	}
}

// removeAll is rm -r for the tests (the command layer does its own).
func (fs *FS) removeAll(p string) error {
	fi, err := fs.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		list, err := fs.ReadDir(p)
		if err != nil {
			return err
		}
		for _, c := range list {
			if err := fs.removeAll(path.Join(p, c.Name())); err != nil {
				return err
			}
		}
	}
	return fs.Remove(p)
}

func put(p string, n int) ntfstest.Op {
	return ntfstest.Op{Kind: ntfstest.OpPut, Path: p, Data: ntfstest.Content(p+fmt.Sprint(n), n)}
}
func mkdir(p string) ntfstest.Op { return ntfstest.Op{Kind: ntfstest.OpMkdir, Path: p} }
func rm(p string) ntfstest.Op    { return ntfstest.Op{Kind: ntfstest.OpRemove, Path: p} }

func fileHash(t *testing.T, img string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestWriteBasic covers the data paths: new resident and non-resident
// files, overwrite with the same size, shrink, grow within the allocation,
// grow with new clusters, resident to non-resident and back, long and
// Unicode names (generated DOS names), new directories and removal.
func TestWriteBasic(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureBasic)
	want := fx.Want
	ops := []ntfstest.Op{
		put("small.txt", 100),
		put("big.bin", 300_000),
		put("Long File Name With Spaces.dat", 5000),
		put("Ünïcödé ファイル.txt", 700),
		mkdir("newdir"),
		mkdir("newdir/Sub Directory"),
		put("newdir/Sub Directory/x.sys", 40_000),
		put("big.bin", 300_000),   // same size
		put("big.bin", 100_000),   // shrink
		put("big.bin", 102_000),   // grow within the allocation
		put("big.bin", 2_000_000), // grow with new clusters
		put("small.txt", 9000),    // resident to non-resident
		put("small.txt", 10),      // and back
		put("empty", 0),
		rm("Long File Name With Spaces.dat"),
		rm("newdir/Sub Directory/x.sys"),
		rm("newdir/Sub Directory"),
	}
	for p, h := range want {
		// Overwrite an existing file of the fixture, too.
		if h != ntfstest.Dir && strings.Count(p, "/") == 1 {
			ops = append(ops, put(p, 12345))
			break
		}
	}
	for _, op := range ops {
		apply(t, fs, want, op)
	}
	flushCheck(t, fs, fx, want)
	verifyIndexes(t, fs)
	readBack(t, fs, want)
}

// TestBigDirectory inserts hundreds of names into a directory of 2,000
// entries (a multi-level $I30), removes some, and checks every peer.
func TestBigDirectory(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureBigDir)
	want := fx.Want
	var dir string
	count := map[string]int{}
	for p := range want {
		count[path.Dir(p)]++
	}
	for d, n := range count {
		if n > count[dir] {
			dir = d
		}
	}
	if count[dir] < 1500 {
		t.Fatalf("fixture's largest directory %s has %d entries", dir, count[dir])
	}
	for i := 0; i < 600; i++ {
		name := fmt.Sprintf("%s/added-%04d-%s.sys", dir, (i*7919)%600, strings.Repeat("n", i%40))
		apply(t, fs, want, put(name, 200+i*13))
	}
	// Remove every third original entry that is a file.
	var victims []string
	for p, h := range want {
		if path.Dir(p) == dir && h != ntfstest.Dir {
			victims = append(victims, p)
		}
	}
	sort.Strings(victims)
	for i, p := range victims {
		if i%3 == 0 {
			apply(t, fs, want, rm(p))
		}
	}
	flushCheck(t, fs, fx, want)
	if d := verifyIndexes(t, fs); d < 2 {
		t.Errorf("deepest index has %d levels below the root; the test wants a multi-level tree", d)
	}
}

// TestMFTGrowth puts thousands of files on FixtureMFTFull, whose $MFT
// $DATA ends (before its allocation does) a few records after the last
// one ntfs-3g used, so $MFT (and record 0 in $MFTMirr) must grow many
// times, first into its own allocated clusters, after about 40 files.
func TestMFTGrowth(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureMFTFull)
	if fx.FreeMFTRecords > ntfstest.MaxFreeMFTRecordsTotal {
		t.Fatalf("fixture has %d free MFT records; the test needs at most %d", fx.FreeMFTRecords, ntfstest.MaxFreeMFTRecordsTotal)
	}
	want := fx.Want
	apply(t, fs, want, mkdir("many"))
	n := 3000
	if testing.Short() {
		n = 600
	}
	for i := 0; i < n; i++ {
		apply(t, fs, want, put(fmt.Sprintf("many/f%05d.txt", i), 40+i%900))
	}
	flushCheck(t, fs, fx, want)
	verifyIndexes(t, fs)
}

// TestRefusals: dirty, hibernated and unclean-log volumes are refused with
// a clear message and left byte-identical; reading still works.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct{ fixture, msg string }{
		{ntfstest.FixtureDirty, "dirty"},
		{ntfstest.FixtureHibernated, "hibernated"},
		{ntfstest.FixtureUncleanLog, "LogFile"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			fx, fs := openFixture(t, tc.fixture)
			if err := fs.Flush(); err != nil {
				t.Fatal(err)
			}
			before := fileHash(t, fx.Image)
			for _, fn := range []func() error{
				func() error { return fs.WriteFile("/new.txt", strings.NewReader("x"), 1, testTime) },
				func() error { return fs.Mkdir("/newdir", testTime) },
			} {
				err := fn()
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("got %v, want a refusal mentioning %q", err, tc.msg)
				}
			}
			if fileHash(t, fx.Image) != before {
				t.Error("refused volume was changed")
			}
			if _, err := fs.ReadDir("/"); err != nil {
				t.Errorf("reading a refused volume: %v", err)
			}
		})
	}
}

// TestNoSpace: a write that does not fit leaves the image byte-identical.
func TestNoSpace(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureFull)
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, fx.Image)
	big := int(fx.FreeBytes) + 1<<20
	err := fs.WriteFile("/toobig.bin", bytes.NewReader(make([]byte, big)), int64(big), testTime)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("got %v, want ErrNoSpace", err)
	}
	if fileHash(t, fx.Image) != before {
		t.Fatal("failed write changed the image")
	}
	// A write that fits still works afterwards.
	want := fx.Want
	apply(t, fs, want, put("fits.txt", 3000))
	flushCheck(t, fs, fx, want)
}

func TestErrors(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureBasic)
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, fx.Image)
	cases := []struct {
		name string
		fn   func() error
		is   error
	}{
		{"missing parent", func() error { return fs.WriteFile("/no/such/x", strings.NewReader("x"), 1, testTime) }, iofs.ErrNotExist},
		{"mkdir exists", func() error { return fs.Mkdir("/deep", testTime) }, iofs.ErrExist},
		{"remove missing", func() error { return fs.Remove("/nothing-here") }, iofs.ErrNotExist},
		{"remove non-empty", func() error { return fs.Remove("/deep") }, nil},
		{"remove system file", func() error { return fs.Remove("/$MFT") }, ErrRefused},
		{"bad name", func() error { return fs.WriteFile("/a:b", strings.NewReader("x"), 1, testTime) }, nil},
		{"short reader", func() error { return fs.WriteFile("/short", strings.NewReader("x"), 10, testTime) }, nil},
	}
	for _, c := range cases {
		err := c.fn()
		if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.is)
		}
	}
	if fileHash(t, fx.Image) != before {
		t.Fatal("failed operations changed the image")
	}
}

// TestXPDrivers adds drivers to an XP-shaped system32\drivers of 1,500
// entries, grows the SYSTEM hive in place, and compares the result with the
// same operations done by ntfs-3g on a twin image.
func TestXPDrivers(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureXP)
	want := fx.Want
	var drivers, hive string
	for p, h := range want {
		if strings.EqualFold(path.Base(p), "drivers") && h == ntfstest.Dir {
			drivers = p
		}
		if strings.EqualFold(path.Base(p), "SYSTEM") && strings.Contains(strings.ToLower(p), "config") {
			hive = p
		}
	}
	if drivers == "" || hive == "" {
		t.Fatal("fixture has no system32/drivers or config/SYSTEM")
	}
	old, err := fs.OpenFile("/" + hive)
	if err != nil {
		t.Fatal(err)
	}
	grown := make([]byte, old.Size()+3<<20)
	if _, err := old.ReadAt(grown[:old.Size()], 0); err != nil {
		t.Fatal(err)
	}
	copy(grown[old.Size():], ntfstest.Content("grown hive", 3<<20))
	ops := []ntfstest.Op{{Kind: ntfstest.OpPut, Path: hive, Data: grown}}
	for i := 0; i < 300; i++ {
		ops = append(ops, put(fmt.Sprintf("%s/xp%03d_%s.sys", drivers, (i*37)%300, strings.Repeat("x", i%9)), 3000+i*40))
	}
	ops = append(ops, put(drivers+"/iScsiPrt.sys", 60_000), put(drivers+"/sanbootconf-with-a-long-name.sys", 30_000))
	twin := ntfstest.Twin(t, fx.Image, fx.Offset, ops)
	for _, op := range ops {
		apply(t, fs, want, op)
	}
	flushCheck(t, fs, fx, want)
	a, b := ntfstest.Listing(t, fx.Image, fx.Offset), ntfstest.Listing(t, twin, fx.Offset)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("listing differs from the ntfs-3g twin: %d vs %d entries", len(a), len(b))
	}
	verifyIndexes(t, fs)
}

// verifyIndexes walks every directory's $I30 with the writer's own reader
// and checks the B+tree invariants: keys strictly increasing in collation
// order, every leaf at the same depth, every used block marked in
// $BITMAP:$I30 and referenced once.
func verifyIndexes(t *testing.T, fs *FS) (maxDepth int) {
	t.Helper()
	v, err := fs.writable()
	if err != nil {
		t.Fatal(err)
	}
	tx := v.begin()
	defer tx.abort()
	var walkDir func(rec uint64, name string, depth int)
	walkDir = func(rec uint64, name string, depth int) {
		if depth > 64 {
			t.Fatalf("%s: directories nest too deep", name)
		}
		d, err := tx.openIndex(rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, _, bm, err := d.allocation()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		leafDepth := -1
		used := map[int64]bool{}
		var prev []uint16
		var children []ientry
		var walk func(vcn int64, lvl int)
		walk = func(vcn int64, lvl int) {
			if lvl > maxIndexDepth {
				t.Fatalf("%s: index too deep", name)
			}
			if vcn >= 0 {
				if used[vcn] {
					t.Fatalf("%s: block VCN %d referenced twice", name, vcn)
				}
				used[vcn] = true
				idx := vcn * d.unit / int64(d.bsize)
				if idx>>3 >= int64(len(bm)) || !bit(bm, idx) {
					t.Errorf("%s: block VCN %d in use but free in $BITMAP:$I30", name, vcn)
				}
			}
			n, err := d.node(vcn)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n.leaf() {
				maxDepth = max(maxDepth, lvl)
				if leafDepth < 0 {
					leafDepth = lvl
				} else if leafDepth != lvl {
					t.Errorf("%s: leaf VCN %d at depth %d, others at %d", name, vcn, lvl, leafDepth)
				}
				if vcn >= 0 && len(n.entries) < 2 {
					t.Errorf("%s: empty leaf block VCN %d", name, vcn)
				}
			}
			for _, e := range n.entries {
				if (e.child >= 0) == n.leaf() {
					t.Errorf("%s: node VCN %d mixes leaf and subnode entries", name, vcn)
				}
				if e.child >= 0 {
					walk(e.child, lvl+1)
				}
				if e.key != nil {
					k := keyName(e.key)
					if prev != nil && v.cmpFull(prev, k) >= 0 {
						t.Errorf("%s: %q sorts after %q", name, string(utf16.Decode(prev)), string(utf16.Decode(k)))
					}
					prev = k
					if u32(e.key, 0x38)&faIndexPresent != 0 && e.key[0x41] != nsDOS && refRecord(e.ref) != rec {
						children = append(children, e)
					}
				}
			}
		}
		walk(-1, 0)
		for i := int64(0); i < int64(len(bm))*8; i++ {
			if bit(bm, i) && !used[i*int64(d.bsize)/d.unit] {
				t.Errorf("%s: block %d marked in $BITMAP:$I30 but not in the tree", name, i)
			}
		}
		for _, c := range children {
			if refRecord(c.ref) >= firstUserRecord {
				walkDir(refRecord(c.ref), name+"/"+string(utf16.Decode(keyName(c.key))), depth+1)
			}
		}
	}
	walkDir(recRoot, "", 0)
	return maxDepth
}

// TestProperty applies random sequences of put / overwrite / grow / mkdir /
// rm / rm -r to a fixture, through the writer and the model, and runs every
// checker after each sequence. XPBOOT_NTFS_PROPERTY_SEQS (default 2) and
// XPBOOT_NTFS_PROPERTY_OPS (default 120) lengthen it; XPBOOT_NTFS_SEED
// replays a run.
func TestProperty(t *testing.T) {
	seqs, nops := envInt("XPBOOT_NTFS_PROPERTY_SEQS", 2), envInt("XPBOOT_NTFS_PROPERTY_OPS", 120)
	seed := uint64(envInt("XPBOOT_NTFS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("seed %d (XPBOOT_NTFS_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fx, fs := openFixture(t, ntfstest.FixtureBasic)
	want := fx.Want
	for s := 0; s < seqs; s++ {
		for i := 0; i < nops; i++ {
			op, ok := randomOp(rng, want, fmt.Sprintf("%d-%d", s, i))
			if ok {
				apply(t, fs, want, op)
			}
		}
		flushCheck(t, fs, fx, want)
		verifyIndexes(t, fs)
		readBack(t, fs, want)
		if t.Failed() {
			t.Fatalf("sequence %d failed (seed %d)", s, seed)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// randomOp picks an operation valid on the model.
func randomOp(rng *rand.Rand, m ntfstest.Tree, tag string) (ntfstest.Op, bool) {
	var dirs, files []string
	dirs = append(dirs, "")
	for _, p := range m.Paths() {
		if m[p] == ntfstest.Dir {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}
	join := func(d, n string) string {
		if d == "" {
			return n
		}
		return d + "/" + n
	}
	size := func() int {
		switch rng.IntN(4) {
		case 0:
			return rng.IntN(600) // resident
		case 1:
			return rng.IntN(20_000)
		case 2:
			return rng.IntN(300_000)
		}
		return 0
	}
	names := []string{"f" + tag + ".txt", "Long name " + tag + ".data", "ÄÖÜ-" + tag, "x" + tag, "UPPER" + tag + ".SYS"}
	switch k := rng.IntN(10); {
	case k < 4:
		d := dirs[rng.IntN(len(dirs))]
		n := names[rng.IntN(len(names))]
		if _, ok := m[join(d, n)]; ok {
			return ntfstest.Op{}, false
		}
		return put(join(d, n), size()), true
	case k < 6 && len(files) > 0:
		return put(files[rng.IntN(len(files))], size()), true
	case k < 7:
		d := dirs[rng.IntN(len(dirs))]
		p := join(d, "dir "+tag)
		return mkdir(p), true
	case k < 9 && len(files) > 0:
		return rm(files[rng.IntN(len(files))]), true
	case len(dirs) > 1:
		d := dirs[1+rng.IntN(len(dirs)-1)]
		return ntfstest.Op{Kind: ntfstest.OpRemoveAll, Path: d}, true
	}
	return ntfstest.Op{}, false
}

// readBack reads the whole tree through the same FS that wrote it (the
// writer's Stat and ReadDir, go-ntfs for file data) and compares it with
// the model.
func readBack(t *testing.T, fs *FS, want ntfstest.Tree) {
	t.Helper()
	got := ntfstest.Tree{}
	var walk func(dir string)
	walk = func(dir string) {
		list, err := fs.ReadDir("/" + dir)
		if err != nil {
			t.Fatalf("readdir /%s: %v", dir, err)
		}
		for _, fi := range list {
			p := fi.Name()
			if dir != "" {
				p = dir + "/" + p
			}
			if fi.IsDir() {
				got[p] = ntfstest.Dir
				walk(p)
				continue
			}
			f, err := fs.OpenFile("/" + p)
			if err != nil {
				t.Fatalf("open /%s: %v", p, err)
			}
			b := make([]byte, f.Size())
			if _, err := f.ReadAt(b, 0); err != nil && f.Size() > 0 && !errors.Is(err, io.EOF) {
				t.Fatalf("read /%s: %v", p, err)
			}
			// Lookups are case-insensitive by $UpCase; ASCII is the
			// part every table maps the same way.
			upper := strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' {
					return r - 32
				}
				return r
			}, p)
			st, err := fs.Stat("/" + upper)
			if err != nil || st.Size() != int64(len(b)) || st.Name() != fi.Name() {
				t.Errorf("stat /%s: %v, %+v", p, err, st)
			}
			got[p] = ntfstest.Hash(b)
		}
	}
	walk("")
	if d := ntfstest.Diff(want, got); d != "" {
		t.Errorf("read back through the writing FS:\n%s", d)
	}
}

// flushCheck writes the metadata fs still holds back, then runs every
// checker on the image.
func flushCheck(t *testing.T, fs *FS, fx *ntfstest.Fixture, want ntfstest.Tree) {
	t.Helper()
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	ntfstest.Check(t, fx.Image, fx.Offset, want)
}

// TestFreedIndexBlocks empties INDX blocks by removal: every block of the
// directory's $INDEX_ALLOCATION must then read, straight from the device,
// as a valid node without entries, since Sleuth Kit and go-ntfs read every
// block whatever $BITMAP:$I30 says (property seed 1796578666479590432:
// they listed a removed directory).
func TestFreedIndexBlocks(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureMFTFull)
	want := fx.Want
	apply(t, fs, want, mkdir("d"))
	long := strings.Repeat("N", 200)
	for i := 0; i < 12; i++ {
		apply(t, fs, want, put(fmt.Sprintf("d/%s%02d", long, i), 100))
	}
	for i := 0; i < 12; i++ {
		apply(t, fs, want, rm(fmt.Sprintf("d/%s%02d", long, i)))
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	v := fs.w
	tx := v.begin()
	dir, err := tx.walk([]string{"d"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tx.openIndex(dir.num)
	if err != nil {
		t.Fatal(err)
	}
	runs, size, _, err := d.allocation()
	if err != nil || runs == nil {
		t.Fatalf("d has no index allocation (%v); the test needs INDX blocks", err)
	}
	for pos := int64(0); pos+int64(d.bsize) <= size; pos += int64(d.bsize) {
		off, err := v.locate(runs, pos, int64(d.bsize), int64(dir.num))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, d.bsize)
		if err := v.readAt(b, off); err != nil {
			t.Fatal(err)
		}
		if err := unfixup(b, "INDX", -1, off); err != nil {
			t.Errorf("block at %d: %v", pos, err)
			continue
		}
		eo, il := int(u32(b, 0x18)), int(u32(b, 0x1C))
		es, err := parseEntries(b, 0x18+eo, 0x18+il, func(o int, msg string, a ...any) error { return fmt.Errorf(msg, a...) })
		if err != nil {
			t.Errorf("block at %d: %v", pos, err)
			continue
		}
		if len(es) != 1 || es[0].key != nil {
			t.Errorf("block at %d still holds %d entries after every name was removed", pos, len(es)-1)
		}
	}
	flushCheck(t, fs, fx, want)
}

// TestLongNameDirectory: a directory whose record is crowded by a
// 200-character name, its DOS name and a resident security descriptor
// cannot get its first INDX block without an $ATTRIBUTE_LIST. The put that
// would need it is refused with that reason and leaves the image
// byte-identical; a directory with a 120-character name takes hundreds of
// entries.
func TestLongNameDirectory(t *testing.T) {
	fx, fs := openFixture(t, ntfstest.FixtureMFTFull)
	want := fx.Want
	crowded := strings.Repeat("N", 200)
	apply(t, fs, want, mkdir(crowded))
	refusedAt := -1
	for i := 0; i < 20 && refusedAt < 0; i++ {
		p := fmt.Sprintf("%s/NEW%02d.SYS", crowded, i)
		if err := fs.Flush(); err != nil {
			t.Fatal(err)
		}
		before := fileHash(t, fx.Image)
		err := fs.WriteFile("/"+p, strings.NewReader("x"), 1, testTime)
		switch {
		case err == nil:
			want[p] = ntfstest.Hash([]byte("x"))
		case errors.Is(err, ErrRefused) && strings.Contains(err.Error(), "$ATTRIBUTE_LIST"):
			refusedAt = i
			if fileHash(t, fx.Image) != before {
				t.Error("refused put changed the image")
			}
		default:
			t.Fatalf("put %s: %v", p, err)
		}
	}
	if refusedAt < 0 {
		t.Fatal("20 entries fit in the crowded directory's root; the test expects the refusal")
	}
	roomy := strings.Repeat("R", 120)
	apply(t, fs, want, mkdir(roomy))
	for i := 0; i < 300; i++ {
		apply(t, fs, want, put(fmt.Sprintf("%s/file %03d.txt", roomy, i), 10+i))
	}
	flushCheck(t, fs, fx, want)
	verifyIndexes(t, fs)
}
