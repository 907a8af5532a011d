package ntfstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// PeerTimeout bounds one run of a checking peer.
const PeerTimeout = 5 * time.Minute

func need(t testing.TB, program, pkg string) { t.Helper(); peertest.Need(t, program, pkg) }
func needRoot(t testing.TB, why string)      { t.Helper(); peertest.NeedRoot(t, why) }
func missing(t testing.TB, what, pkg string) { t.Helper(); peertest.Missing(t, what, pkg) }

// NeedPeers skips (fails under CI) a test when a checker's peer is missing.
func NeedPeers(t testing.TB) {
	t.Helper()
	NeedMount(t)
	for _, p := range [][2]string{
		{"mkntfs", "ntfs-3g"}, {"ntfsfix", "ntfs-3g"}, {"ntfsinfo", "ntfs-3g"}, {"ntfscp", "ntfs-3g"},
		{"fls", "sleuthkit"}, {"icat", "sleuthkit"}, {"tsk_recover", "sleuthkit"}, {"fsntfsinfo", "libfsntfs-utils"},
	} {
		need(t, p[0], p[1])
	}
}

// Target is what a checker looks at: an NTFS volume inside an image, its
// bare copy, and the tree the volume must hold.
type Target struct {
	Volume
	Bare string // a bare copy of the volume the checkers may mount and change
	Want Tree
	tb   testing.TB
}

// NewTarget reads the volume at byte off of image and makes a bare copy of
// it in a temporary directory of t.
func NewTarget(t testing.TB, image string, off int64, want Tree) (*Target, error) {
	t.Helper()
	v, err := OpenVolume(image, off)
	if err != nil {
		return nil, err
	}
	bare := filepath.Join(t.TempDir(), "volume.ntfs")
	if err := v.Extract(bare); err != nil {
		return nil, err
	}
	return &Target{Volume: v, Bare: bare, Want: want, tb: t}, nil
}

// Checker is one independent NTFS implementation's verdict on a Target.
type Checker struct {
	Name  string
	check func(ctx context.Context, tg *Target) error
}

// Run returns nil when the checker finds the target clean and holding
// exactly tg.Want, else an error describing the first disagreement.
func (c Checker) Run(ctx context.Context, tg *Target) error { return c.check(ctx, tg) }

// Checkers returns every checker, in the order Check runs them. The
// read-write mount comes last because it may change the bare copy.
func Checkers() []Checker {
	return []Checker{
		{"ntfsfix -n", checkNtfsfix},
		{"ntfsinfo -m", checkVolumeFlags},
		{"ntfs-3g read-only mount", checkMountTree},
		{"sleuthkit fls/icat", checkSleuthkit},
		{"libfsntfs fsntfsinfo", checkLibfsntfs},
		{"go-ntfs", checkGoNTFS},
		{"ntfs-3g read-write mount", checkMountRW},
	}
}

// Check runs every checker on the NTFS volume at byte off of image and
// fails t, naming the checker, for each one that finds the volume unclean
// or holding anything but want. The image itself is not changed.
func Check(t testing.TB, image string, off int64, want Tree) {
	t.Helper()
	NeedPeers(t)
	tg, err := NewTarget(t, image, off, want)
	if err != nil {
		t.Fatalf("check %s: %v", image, err)
	}
	ctx := context.Background()
	for _, c := range Checkers() {
		start := time.Now()
		err := c.Run(ctx, tg)
		if testing.Verbose() {
			t.Logf("checker %s: %v", c.Name, time.Since(start).Round(time.Millisecond))
		}
		if err != nil {
			t.Errorf("%s (volume at byte %d): checker %s: %v", image, off, c.Name, err)
		}
	}
}

func checkNtfsfix(ctx context.Context, tg *Target) error {
	out, err := run(ctx, PeerTimeout, "ntfsfix", "-n", tg.Bare)
	if err != nil {
		return err
	}
	// ntfsfix -n exits 0 on some findings it only prints; require the
	// lines of a clean pass.
	for _, ok := range []string{
		"Processing of $MFT and $MFTMirr completed successfully.",
		"Checking the alternate boot sector... OK",
		"NTFS volume version is 3.1.",
	} {
		if !strings.Contains(string(out), ok) {
			return fmt.Errorf("ntfsfix -n did not print %q:\n%s", ok, out)
		}
	}
	return nil
}

var volumeFlags = regexp.MustCompile(`Volume Flags: 0x([0-9a-fA-F]+)`)

func checkVolumeFlags(ctx context.Context, tg *Target) error {
	// ntfsinfo refuses a dirty volume (exit 1, "Volume is scheduled for
	// check") unless forced; forcing lets it print the flags it found.
	out, err := run(ctx, PeerTimeout, "ntfsinfo", "-f", "-m", tg.Bare)
	if err != nil {
		return err
	}
	m := volumeFlags.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("ntfsinfo -m printed no volume flags:\n%s", out)
	}
	if flags, _ := strconv.ParseUint(string(m[1]), 16, 16); flags != 0 {
		return fmt.Errorf("$Volume flags are 0x%04x, want 0 (0x0001 is dirty: chkdsk would run at boot)", flags)
	}
	return nil
}

func checkMountTree(ctx context.Context, tg *Target) error {
	m, err := MountVolume(tg.tb, tg.Bare, false)
	if err != nil {
		return err
	}
	got, err := ReadDirTree(m.Dir)
	if uerr := m.Unmount(); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("reading the mounted tree: %w", err)
	}
	if d := Diff(tg.Want, got); d != "" {
		return fmt.Errorf("the ntfs-3g mount differs from the expected tree:\n%s", d)
	}
	return nil
}

func checkMountRW(ctx context.Context, tg *Target) error {
	m, err := MountVolume(tg.tb, tg.Bare, true)
	if err != nil {
		return fmt.Errorf("read-write mount without recovery refused: %w", err)
	}
	log := m.Log()
	if err := m.Unmount(); err != nil {
		return err
	}
	// The command line echoes "norecover"; any other mention of recovery,
	// or of an unclean volume, means ntfs-3g found something to repair.
	l := strings.ToLower(strings.ReplaceAll(log, "norecover", ""))
	if strings.Contains(l, "recover") || strings.Contains(l, "unclean") || strings.Contains(l, "hibernat") {
		return fmt.Errorf("ntfs-3g mounted read-write but reported:\n%s", log)
	}
	return nil
}

// flsLine is one line of `fls -r -p`: "r/r 65-128-2:	dir/a.txt"
// (deleted entries carry a "*" before the address and -u leaves them out).
var flsLine = regexp.MustCompile(`^([a-zA-Z-])/([a-zA-Z-]) (\*\s+)?([0-9]+(?:-[0-9]+-[0-9]+)?):\t(.*)$`)

// listSleuthkit returns the Tree paths fls lists, each mapped to Dir or to
// the inode address icat takes.
func listSleuthkit(ctx context.Context, v Volume) (map[string]string, error) {
	out, err := run(ctx, PeerTimeout, "fls", "-r", "-p", "-u", "-o", strconv.FormatInt(v.Offset/512, 10), v.Image)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		m := flsLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("fls printed a line it should not: %q", line)
		}
		p := m[5]
		if strings.HasPrefix(p, "$") || strings.Contains(p, ":") {
			continue // metadata files, $OrphanFiles, named streams
		}
		if _, dup := got[p]; dup {
			return nil, fmt.Errorf("fls lists %s twice", p)
		}
		if m[2] == "d" {
			got[p] = Dir
		} else {
			got[p] = m[4]
		}
	}
	return got, nil
}

func checkSleuthkit(ctx context.Context, tg *Target) error {
	listed, err := listSleuthkit(ctx, tg.Volume)
	if err != nil {
		return err
	}
	// Compare kinds first; icat then proves the bytes of the files.
	kinds := Tree{}
	for p, v := range listed {
		kinds[p] = markFile(v)
	}
	want := Tree{}
	for p, v := range tg.Want {
		want[p] = markFile(v)
	}
	if d := Diff(want, kinds); d != "" {
		return fmt.Errorf("fls -r lists another tree:\n%s", d)
	}
	// tsk_recover extracts every allocated file in one run; icat, which
	// parses the volume anew for each file, reads a spread sample.
	rec := filepath.Join(filepath.Dir(tg.Bare), "tsk_recover")
	defer os.RemoveAll(rec)
	if err := os.Mkdir(rec, 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, PeerTimeout, "tsk_recover", "-a", "-o", strconv.FormatInt(tg.Offset/512, 10), tg.Image, rec); err != nil {
		return err
	}
	got, err := ReadDirTree(rec)
	if err != nil {
		return fmt.Errorf("reading tsk_recover's output: %w", err)
	}
	empty := Hash(nil)
	for p, v := range tg.Want {
		// tsk_recover makes directories only for what it writes and
		// leaves empty files out.
		if _, ok := got[p]; !ok && (v == Dir || v == empty) {
			got[p] = v
		}
	}
	if d := Diff(tg.Want, got); d != "" {
		return fmt.Errorf("tsk_recover -a extracts another tree:\n%s", d)
	}
	max := 8
	if s := os.Getenv("XPBOOT_NTFS_ICAT_MAX"); s != "" {
		max, _ = strconv.Atoi(s)
	}
	var files []string
	for _, p := range tg.Want.Paths() {
		if tg.Want[p] != Dir {
			files = append(files, p)
		}
	}
	// Spread the sample over the whole sorted list, so that every
	// directory is likely to be visited.
	step := 1
	if max > 0 && len(files) > max {
		step = (len(files) + max - 1) / max
	}
	for i := 0; i < len(files); i += step {
		p := files[i]
		out, err := runQuiet(ctx, "icat", "-o", strconv.FormatInt(tg.Offset/512, 10), tg.Image, listed[p])
		if err != nil {
			return fmt.Errorf("icat %s (%s): %v", listed[p], p, err)
		}
		if h := Hash(out); h != tg.Want[p] {
			return fmt.Errorf("icat %s (%s): %d bytes with sha256 %.12s…, want %.12s…", listed[p], p, len(out), h, tg.Want[p])
		}
	}
	return nil
}

// runQuiet is run for a peer whose stdout is data: stderr is kept apart.
func runQuiet(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, PeerTimeout)
	defer cancel()
	var stderr strings.Builder
	cmd := execCommand(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func markFile(v string) string {
	if v == Dir {
		return Dir
	}
	return "file"
}

func checkLibfsntfs(ctx context.Context, tg *Target) error {
	off := strconv.FormatInt(tg.Offset, 10)
	out, err := run(ctx, PeerTimeout, "fsntfsinfo", "-o", off, "-H", tg.Image)
	if err != nil {
		return err
	}
	got := map[string]bool{}
	const head = "File system hierarchy:"
	i := strings.Index(string(out), head)
	if i < 0 {
		return fmt.Errorf("fsntfsinfo -H printed no hierarchy:\n%s", out)
	}
	for _, line := range strings.Split(string(out[i+len(head):]), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p := strings.ReplaceAll(strings.TrimPrefix(line, `\`), `\`, "/")
		if strings.HasPrefix(p, "$") || strings.Contains(p, ":") {
			continue
		}
		got[p] = true
	}
	var missingP, extra []string
	for p := range tg.Want {
		if !got[p] {
			missingP = append(missingP, p)
		}
	}
	for p := range got {
		if _, ok := tg.Want[p]; !ok {
			extra = append(extra, p)
		}
	}
	if len(missingP)+len(extra) > 0 {
		sort.Strings(missingP)
		sort.Strings(extra)
		return fmt.Errorf("fsntfsinfo -H lists another tree: missing %s; unexpected %s", firstFew(missingP), firstFew(extra))
	}
	// -E all parses every MFT entry, the new ones included; libfsntfs
	// reports a damaged entry as an error and exits non-zero.
	out, err = run(ctx, PeerTimeout, "fsntfsinfo", "-o", off, "-E", "all", tg.Image)
	if err != nil {
		return err
	}
	if bytesContainsFold(out, "unable to") {
		return fmt.Errorf("fsntfsinfo -E all reported an error:\n%s", grepLines(out, "unable to"))
	}
	return nil
}

func firstFew(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	if len(list) > 10 {
		return fmt.Sprintf("%s … (%d in all)", strings.Join(list[:10], ", "), len(list))
	}
	return strings.Join(list, ", ")
}

func bytesContainsFold(b []byte, s string) bool {
	return strings.Contains(strings.ToLower(string(b)), s)
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(strings.ToLower(l), s) {
			out = append(out, l)
		}
	}
	return firstFew(out)
}

// Snapshot returns the Tree an ntfs-3g read-only mount shows for the NTFS
// volume at byte off of image.
func Snapshot(t testing.TB, image string, off int64) Tree {
	t.Helper()
	NeedMount(t)
	tg, err := NewTarget(t, image, off, nil)
	if err != nil {
		t.Fatalf("snapshot %s: %v", image, err)
	}
	m, err := MountVolume(t, tg.Bare, false)
	if err != nil {
		t.Fatalf("snapshot %s: %v", image, err)
	}
	tree, err := ReadDirTree(m.Dir)
	if uerr := m.Unmount(); err == nil {
		err = uerr
	}
	if err != nil {
		t.Fatalf("snapshot %s: %v", image, err)
	}
	os.Remove(tg.Bare)
	return tree
}

// Listing returns the sorted `fls -r -p -u` listing (kind and path, no
// inode numbers, metadata files left out) of the volume at byte off of
// image, for comparing an xpboot result with its twin.
func Listing(t testing.TB, image string, off int64) []string {
	t.Helper()
	need(t, "fls", "sleuthkit")
	listed, err := listSleuthkit(context.Background(), Volume{Image: image, Offset: off})
	if err != nil {
		t.Fatalf("listing %s: %v", image, err)
	}
	var out []string
	for p, v := range listed {
		out = append(out, markFile(v)+" "+p)
	}
	sort.Strings(out)
	return out
}

// Twin copies image to a temporary file of t, applies ops to its NTFS
// volume at byte off through an ntfs-3g read-write mount (the reference
// writer), and returns the copy's path. An op ntfs-3g refuses fails t.
func Twin(t testing.TB, image string, off int64, ops []Op) string {
	t.Helper()
	NeedMount(t)
	dir := t.TempDir()
	twin := filepath.Join(dir, "twin.img")
	if err := copySparse(twin, image); err != nil {
		t.Fatalf("twin of %s: %v", image, err)
	}
	v, err := OpenVolume(twin, off)
	if err != nil {
		t.Fatalf("twin: %v", err)
	}
	bare := filepath.Join(dir, "twin.ntfs")
	if err := v.Extract(bare); err != nil {
		t.Fatalf("twin: %v", err)
	}
	m, err := MountVolume(t, bare, true)
	if err != nil {
		t.Fatalf("twin: %v", err)
	}
	for i, op := range ops {
		if err := ApplyDir(m.Dir, op); err != nil {
			m.Unmount()
			t.Fatalf("twin: op %d (%v) through ntfs-3g: %v", i, op, err)
		}
	}
	if err := m.Unmount(); err != nil {
		t.Fatalf("twin: %v", err)
	}
	if err := v.WriteBack(bare); err != nil {
		t.Fatalf("twin: %v", err)
	}
	os.Remove(bare)
	return twin
}
