package imagefs

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Location names a path inside an image: IMG:/path on the command line.
type Location struct {
	Image string
	Path  string // absolute, "/"-separated; "/" when omitted
}

func (l Location) String() string { return l.Image + ":" + l.Path }

// ParseLocation splits IMG:/path. The image part is taken up to the first
// ":/" or ":\" whose prefix names an existing file, so image paths may contain
// colons; "IMG" and "IMG:" mean the root. ok is false for a plain local path
// with no such separator that is not an existing file either.
func ParseLocation(s string) (loc Location, ok bool) {
	if loc, ok := ParseImagePath(s); ok {
		return loc, true
	}
	if st, err := os.Stat(s); err == nil && !st.IsDir() {
		return Location{Image: s, Path: "/"}, true
	}
	return Location{}, false
}

// ParseImagePath accepts only the explicit IMG:/path form (IMG an existing
// file), for arguments that may also name a plain local file, such as a
// hive.
func ParseImagePath(s string) (loc Location, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		rest := s[i+1:]
		if rest != "" && rest[0] != '/' && rest[0] != '\\' {
			continue
		}
		if st, err := os.Stat(s[:i]); err == nil && !st.IsDir() {
			return Location{Image: s[:i], Path: cleanPath(rest)}, true
		}
	}
	return Location{}, false
}

// cleanPath makes p absolute and "/"-separated and resolves "." and "..".
// A ".." that would climb above the root is kept as a leading "/.." rather
// than clamped to the root, so that the path names nothing and
// Location.Validate reports it.
func cleanPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	depth := 0
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			if depth == 0 {
				return "/.." + path.Clean("/"+p)
			}
			depth--
		default:
			depth++
		}
	}
	return path.Clean("/" + p)
}

// ErrPathEscapes reports an image path whose ".." leaves the root.
var ErrPathEscapes = errors.New("the path leaves the image's root directory")

// Validate reports a path that leaves the image's root ("IMG:/../x"),
// which is refused rather than clamped to the root.
func (l Location) Validate() error {
	if l.Path == "/.." || strings.HasPrefix(l.Path, "/../") {
		return fmt.Errorf("%s: %w", l, ErrPathEscapes)
	}
	return nil
}

// CopyStats counts what a copy did.
type CopyStats struct {
	Files int   `json:"files"`
	Dirs  int   `json:"dirs"`
	Bytes int64 `json:"bytes"`
	// Skipped lists the entries Get left out because their names could
	// not be local file names (see SafeName), as DIR/"NAME".
	Skipped []string `json:"skipped,omitempty"`
}

// localItem is one file or directory to put.
type localItem struct {
	src   string // local path
	dst   string // path inside the image
	dir   bool
	size  int64
	mtime time.Time
}

// Put copies local files and directories (recursively) into fs, the way cp
// does: into dest when dest is a directory, ends in "/" or several sources
// are given, else to dest itself. Missing parent directories are created.
// Every source is checked, and the free space, before anything is written.
func Put(fs FS, sources []string, dest string, progress func(done, total int64)) (*CopyStats, error) {
	if len(sources) == 0 {
		return nil, errors.New("put: no source files")
	}
	dest = strings.ReplaceAll(dest, `\`, "/")
	intoDir := strings.HasSuffix(dest, "/") || len(sources) > 1
	dest = cleanPath(dest)
	if fi, err := fs.Stat(dest); err == nil {
		if fi.IsDir() {
			intoDir = true
		} else if intoDir {
			return nil, fmt.Errorf("put: %s is a file, not a directory", dest)
		}
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("put: %s: %w", dest, err)
	}
	var items []localItem
	var total int64
	for _, src := range sources {
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("put: %w", err)
		}
		target := dest
		if intoDir {
			target = path.Join(dest, filepath.Base(filepath.Clean(src)))
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("put: %s is not a regular file", src)
			}
			items = append(items, localItem{src: src, dst: target, size: st.Size(), mtime: st.ModTime()})
			total += st.Size()
			continue
		}
		err = filepath.WalkDir(src, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			st, err := os.Stat(p) // follows symbolic links, like cp -rL
			if err != nil {
				return err
			}
			it := localItem{src: p, dst: path.Join(target, filepath.ToSlash(rel)), mtime: st.ModTime()}
			switch {
			case st.IsDir():
				it.dir = true
			case st.Mode().IsRegular():
				it.size = st.Size()
				total += st.Size()
			default:
				return fmt.Errorf("%s is not a regular file or directory", p)
			}
			items = append(items, it)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("put: %w", err)
		}
	}
	// One lookup per distinct path: under a directory that does not exist
	// yet nothing needs looking up (thousands of files into a new
	// directory cost no lookups before they are written).
	paths := newPathCache(fs)
	for _, it := range items {
		if err := paths.checkNew(it.dst); err != nil {
			return nil, fmt.Errorf("put: %w", err)
		}
	}
	// A negative FreeBytes is an unknown free space (a volume the writer
	// refuses, whose WriteFile then says why).
	if free := fs.FreeBytes(); free >= 0 {
		// Files that are replaced give their space back.
		var reclaimed int64
		for _, it := range items {
			if it.dir || !paths.exists(it.dst) {
				continue
			}
			if fi, err := fs.Stat(it.dst); err == nil && !fi.IsDir() {
				reclaimed += fi.Size()
			}
		}
		if total > free+reclaimed {
			return nil, fmt.Errorf("put: %d bytes to copy, only %d free in the image (%d of them from files replaced)",
				total, free+reclaimed, reclaimed)
		}
	}
	stats := &CopyStats{}
	if parent := path.Dir(items[0].dst); parent != "/" {
		if err := fs.MkdirAll(parent, time.Now()); err != nil {
			return stats, fmt.Errorf("put: %w", err)
		}
	}
	ahead := readAhead(items)
	defer ahead.stop()
	for i, it := range items {
		if it.dir {
			if err := fs.MkdirAll(it.dst, it.mtime); err != nil {
				return stats, fmt.Errorf("put: %w", err)
			}
			stats.Dirs++
			continue
		}
		var src io.Reader
		if got, ok := ahead.take(i); ok {
			if got.err != nil {
				return stats, fmt.Errorf("put: %w", got.err)
			}
			src = bytes.NewReader(got.b)
		} else {
			f, err := os.Open(it.src)
			if err != nil {
				return stats, fmt.Errorf("put: %w", err)
			}
			src = f
		}
		err := fs.WriteFile(it.dst, &progressReader{r: src, base: stats.Bytes, total: total, cb: progress}, it.size, it.mtime)
		if f, ok := src.(*os.File); ok {
			f.Close()
		}
		if err != nil {
			return stats, fmt.Errorf("put %s: %w", it.src, err)
		}
		stats.Files++
		stats.Bytes += it.size
		if progress != nil {
			progress(stats.Bytes, total)
		}
	}
	return stats, fs.Flush()
}

// readAheadMax is the largest file read ahead, and readAheadFiles how many
// read-ahead files may wait: at most 16 MiB held.
const (
	readAheadMax   = 256 << 10
	readAheadFiles = 64
)

// aheadFile is a local file read ahead for Put: its index in the items,
// its content or why it could not be read.
type aheadFile struct {
	i   int
	b   []byte
	err error
}

// aheadReader reads Put's small files on another goroutine, in order,
// while the image is written: opening and reading thousands of small
// files costs as much as writing them, and the two overlap on a second
// CPU.
type aheadReader struct {
	files chan aheadFile
	done  chan struct{}
	next  *aheadFile
}

func readAhead(items []localItem) *aheadReader {
	r := &aheadReader{files: make(chan aheadFile, readAheadFiles), done: make(chan struct{})}
	go func() {
		defer close(r.files)
		for i, it := range items {
			if it.dir || it.size > readAheadMax {
				continue
			}
			b, err := readExactly(it.src, it.size)
			select {
			case r.files <- aheadFile{i: i, b: b, err: err}:
			case <-r.done:
				return
			}
		}
	}()
	return r
}

// take returns item i's content if it was read ahead.
func (r *aheadReader) take(i int) (aheadFile, bool) {
	if r.next == nil {
		f, ok := <-r.files
		if !ok {
			return aheadFile{}, false
		}
		r.next = &f
	}
	if r.next.i != i {
		return aheadFile{}, false
	}
	f := *r.next
	r.next = nil
	return f, true
}

func (r *aheadReader) stop() { close(r.done) }

// readExactly reads the size bytes the file at p had when Put listed it.
func readExactly(p string, size int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w (it changed while being copied?)", p, err)
	}
	return b, nil
}

// Get copies the file or directory src out of fs to the local path dest,
// recursively. A file lands inside dest when dest is a directory. Each local
// file is written to a temporary name and renamed when complete; a new
// directory tree is built under a temporary name beside dest and renamed
// into place when complete, so a failed get leaves no partial tree.
//
// Names inside an image are outside data: an entry whose name could not
// be a single local file name ("..", ".", a name holding "/", "\\" or NUL,
// as a damaged or hostile image may hold) is left out before anything is
// written and listed in CopyStats.Skipped, so nothing lands outside dest.
func Get(fs FS, src, dest string, progress func(done, total int64)) (*CopyStats, error) {
	src = cleanPath(src)
	fi, err := fs.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	stats := &CopyStats{}
	if st, err := os.Stat(dest); err == nil && st.IsDir() && src != "/" {
		if !SafeName(fi.Name()) {
			return stats, fmt.Errorf("get: %q is not a file name that can be written locally; give the local name", fi.Name())
		}
		dest = filepath.Join(dest, fi.Name())
	}
	var total int64
	if !fi.IsDir() {
		total = fi.Size()
		return stats, getFile(fs, src, dest, fi, stats, total, progress)
	}
	type job struct {
		src, rel string
		fi       FileInfo
	}
	var jobs []job
	var walk func(src, rel string, depth int) error
	walk = func(src, rel string, depth int) error {
		if depth > maxTreeDepth {
			return fmt.Errorf("%s: directories nested deeper than %d (a loop in a damaged image?)", src, maxTreeDepth)
		}
		list, err := fs.ReadDir(src)
		if err != nil {
			return err
		}
		jobs = append(jobs, job{src, rel, nil})
		for _, c := range list {
			if !SafeName(c.Name()) {
				stats.Skipped = append(stats.Skipped, fmt.Sprintf("%s/%q", strings.TrimSuffix(src, "/"), c.Name()))
				continue
			}
			cs, cr := path.Join(src, c.Name()), filepath.Join(rel, c.Name())
			if c.IsDir() {
				if err := walk(cs, cr, depth+1); err != nil {
					return err
				}
				continue
			}
			jobs = append(jobs, job{cs, cr, c})
			total += c.Size()
		}
		return nil
	}
	if err := walk(src, "", 0); err != nil {
		return stats, fmt.Errorf("get: %w", err)
	}
	root := dest
	if _, err := os.Lstat(dest); errors.Is(err, iofs.ErrNotExist) {
		// A new tree: build it beside dest and rename it into place.
		// A name that records this process, so that a later run cleans up
		// the partial tree of a get that was killed (atomicfile.Clean).
		tmp, err := atomicfile.TempName(dest)
		if err == nil {
			err = os.Mkdir(tmp, 0o755)
		}
		if err != nil {
			return stats, fmt.Errorf("get: %w", err)
		}
		defer os.RemoveAll(tmp) // gone after the rename; the partial tree after a failure
		root = tmp
	}
	for _, j := range jobs {
		dst := filepath.Join(root, j.rel)
		if j.fi == nil {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return stats, fmt.Errorf("get: %w", err)
			}
			stats.Dirs++
			continue
		}
		if err := getFile(fs, j.src, dst, j.fi, stats, total, progress); err != nil {
			return stats, err
		}
	}
	if root != dest {
		if err := os.Chmod(root, 0o755); err != nil {
			return stats, fmt.Errorf("get: %w", err)
		}
		if err := os.Rename(root, dest); err != nil {
			return stats, fmt.Errorf("get: %w", err)
		}
	}
	return stats, nil
}

// maxTreeDepth bounds the directories Get descends, so that a directory
// loop in a damaged image ends with an error instead of running forever.
const maxTreeDepth = 256

// SafeName reports whether name, read from an image, can be used as one
// local file name: not "", "." or "..", and without "/", "\\" or NUL.
// Such names also cannot be reached by path inside the image.
func SafeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

func getFile(fs FS, src, dst string, fi FileInfo, stats *CopyStats, total int64, progress func(done, total int64)) error {
	f, err := fs.Open(src)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	err = writeAtomically(dst, func(out *os.File) error {
		_, err := io.Copy(out, &progressReader{r: io.NewSectionReader(f, 0, f.Size()), base: stats.Bytes, total: total, cb: progress})
		return err
	})
	if err != nil {
		return fmt.Errorf("get %s: %w", src, err)
	}
	if t := fi.ModTime(); !t.IsZero() {
		os.Chtimes(dst, t, t)
	}
	stats.Files++
	stats.Bytes += f.Size()
	if progress != nil {
		progress(stats.Bytes, total)
	}
	return nil
}

// GetTo writes the bytes of the file src inside fs to w (stdout for
// `image get IMG:/path -`).
func GetTo(fs FS, src string, w io.Writer) error {
	src = cleanPath(src)
	fi, err := fs.Stat(src)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("get: %s is a directory; only a file can be written to stdout", src)
	}
	f, err := fs.Open(src)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if _, err := io.Copy(w, io.NewSectionReader(f, 0, f.Size())); err != nil {
		return fmt.Errorf("get %s: %w", src, err)
	}
	return nil
}

// PutFrom writes everything r delivers (stdin for `image put -
// IMG:/path`) to the file dest inside fs, creating missing parent
// directories. r is read to the end into a temporary file first: the file
// systems need the size before they allocate, and nothing is written to
// the image when reading r fails.
func PutFrom(fs FS, r io.Reader, dest string, mtime time.Time) error {
	dest = cleanPath(dest)
	if dest == "/" {
		return errors.New("put: - needs IMG:/path naming the file to write")
	}
	if fi, err := fs.Stat(dest); err == nil && fi.IsDir() {
		return fmt.Errorf("put: %s is a directory; name the file to write from stdin", dest)
	}
	if err := CheckNewPath(fs, dest); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	spool, err := os.CreateTemp("", "xpboot-stdin-*")
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	size, err := io.Copy(spool, r)
	if err != nil {
		return fmt.Errorf("put: reading stdin: %w", err)
	}
	if free := fs.FreeBytes(); free >= 0 {
		var reclaimed int64
		if fi, err := fs.Stat(dest); err == nil {
			reclaimed = fi.Size()
		}
		if size > free+reclaimed {
			return fmt.Errorf("put: %d bytes from stdin, only %d free in the image", size, free+reclaimed)
		}
	}
	if parent := path.Dir(dest); parent != "/" {
		if err := fs.MkdirAll(parent, mtime); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	if err := fs.WriteFile(dest, io.NewSectionReader(spool, 0, size), size, mtime); err != nil {
		return fmt.Errorf("put %s: %w", dest, err)
	}
	return nil
}

// RemoveAll removes p inside fs: a file, or a directory with everything in
// it (children first, as rm -r does). The root itself is refused.
func RemoveAll(fs FS, p string) error {
	p = cleanPath(p)
	if p == "/" {
		return errors.New("rm: refusing to remove the root directory")
	}
	var remove func(p string, depth int) error
	remove = func(p string, depth int) error {
		if depth > maxTreeDepth {
			return fmt.Errorf("rm: %s: directories nested deeper than %d (a loop in a damaged image?)", p, maxTreeDepth)
		}
		fi, err := fs.Stat(p)
		if err != nil {
			return fmt.Errorf("rm: %w", err)
		}
		if fi.IsDir() {
			list, err := fs.ReadDir(p)
			if err != nil {
				return fmt.Errorf("rm: %w", err)
			}
			for _, c := range list {
				if c.Name() == "." || c.Name() == ".." || strings.ContainsAny(c.Name(), "/\x00") {
					return fmt.Errorf("rm: %s holds an entry named %q that is not a file name; the directory is damaged", p, c.Name())
				}
				if err := remove(path.Join(p, c.Name()), depth+1); err != nil {
					return err
				}
			}
		}
		if err := fs.Remove(p); err != nil {
			return fmt.Errorf("rm: %w", err)
		}
		return nil
	}
	return remove(p, 0)
}

// progressReader reports the bytes read through it, on top of base, to cb
// about every MiB, so that a bar moves within a large file too.
type progressReader struct {
	r       io.Reader
	base    int64
	n, last int64
	total   int64
	cb      func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.cb != nil && p.n-p.last >= 1<<20 {
		p.last = p.n
		p.cb(p.base+p.n, p.total)
	}
	return n, err
}

// ErrBadName reports a name Windows cannot use for a file or directory.
var ErrBadName = errors.New("not a name Windows can use")

// CheckName reports whether name may be given to a new file or directory
// inside an image: Windows refuses the characters < > : " / \ | ? * and
// control characters, names ending in a space or a dot, and the device names
// CON, PRN, AUX, NUL, COM1–COM9 and LPT1–LPT9 (with any extension), which
// it would open as devices instead of the file.
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	for _, r := range name {
		if r < 0x20 || strings.ContainsRune(`<>:"/\|?*`, r) {
			return fmt.Errorf("%q: %w (it holds %q)", name, ErrBadName, r)
		}
	}
	if strings.HasSuffix(name, " ") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("%q: %w (it ends in a space or a dot)", name, ErrBadName)
	}
	base, _, _ := strings.Cut(name, ".")
	switch b := strings.ToUpper(strings.TrimRight(base, " ")); b {
	case "CON", "PRN", "AUX", "NUL":
		return fmt.Errorf("%q: %w (%s is a device)", name, ErrBadName, b)
	default:
		if len(b) == 4 && (strings.HasPrefix(b, "COM") || strings.HasPrefix(b, "LPT")) && b[3] >= '1' && b[3] <= '9' {
			return fmt.Errorf("%q: %w (%s is a device)", name, ErrBadName, b)
		}
	}
	return nil
}

// CheckNewPath checks, with CheckName, every component of p that does not
// exist in fs yet: the names a write to p would create.
func CheckNewPath(fs FS, p string) error {
	return newPathCache(fs).checkNew(p)
}

// pathCache remembers which paths of fs exist, looking each up once; a
// path under one that does not exist is known not to without a lookup.
type pathCache struct {
	fs    FS
	known map[string]bool
}

func newPathCache(fs FS) *pathCache { return &pathCache{fs: fs, known: map[string]bool{"/": true}} }

// exists reports whether the clean path p exists in fs (a lookup error
// counts as not existing, as for CheckNewPath).
func (c *pathCache) exists(p string) bool {
	if v, ok := c.known[p]; ok {
		return v
	}
	v := false
	if c.exists(path.Dir(p)) {
		_, err := c.fs.Stat(p)
		v = err == nil
	}
	c.known[p] = v
	return v
}

func (c *pathCache) checkNew(p string) error {
	p = cleanPath(p)
	if p == "/" {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		cur += "/" + part
		if c.exists(cur) {
			continue
		}
		if err := CheckName(part); err != nil {
			return fmt.Errorf("%s: %w", cur, err)
		}
	}
	return nil
}
