package imagefs

import (
	"errors"
	"fmt"
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

func cleanPath(p string) string {
	return path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
}

// CopyStats counts what a copy did.
type CopyStats struct {
	Files int   `json:"files"`
	Dirs  int   `json:"dirs"`
	Bytes int64 `json:"bytes"`
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
	if free, ok := fs.(interface{ FreeBytes() int64 }); ok && total > free.FreeBytes() {
		return nil, fmt.Errorf("put: %d bytes to copy, only %d free in the image", total, free.FreeBytes())
	}
	stats := &CopyStats{}
	if parent := path.Dir(items[0].dst); parent != "/" {
		if err := fs.MkdirAll(parent, time.Now()); err != nil {
			return stats, fmt.Errorf("put: %w", err)
		}
	}
	for _, it := range items {
		if it.dir {
			if err := fs.MkdirAll(it.dst, it.mtime); err != nil {
				return stats, fmt.Errorf("put: %w", err)
			}
			stats.Dirs++
			continue
		}
		f, err := os.Open(it.src)
		if err != nil {
			return stats, fmt.Errorf("put: %w", err)
		}
		err = fs.WriteFile(it.dst, f, it.size, it.mtime)
		f.Close()
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

// Get copies the file or directory src out of fs to the local path dest,
// recursively. A file lands inside dest when dest is a directory. Each local
// file is written to a temporary name and renamed when complete.
func Get(fs FS, src, dest string, progress func(done, total int64)) (*CopyStats, error) {
	src = cleanPath(src)
	fi, err := fs.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if st, err := os.Stat(dest); err == nil && st.IsDir() && src != "/" {
		dest = filepath.Join(dest, fi.Name())
	}
	stats := &CopyStats{}
	var total int64
	if !fi.IsDir() {
		total = fi.Size()
		return stats, getFile(fs, src, dest, fi, stats, total, progress)
	}
	type job struct {
		src, dst string
		fi       FileInfo
	}
	var jobs []job
	var walk func(src, dst string) error
	walk = func(src, dst string) error {
		list, err := fs.ReadDir(src)
		if err != nil {
			return err
		}
		jobs = append(jobs, job{src, dst, nil})
		for _, c := range list {
			cs, cd := path.Join(src, c.Name()), filepath.Join(dst, c.Name())
			if c.IsDir() {
				if err := walk(cs, cd); err != nil {
					return err
				}
				continue
			}
			jobs = append(jobs, job{cs, cd, c})
			total += c.Size()
		}
		return nil
	}
	if err := walk(src, dest); err != nil {
		return stats, fmt.Errorf("get: %w", err)
	}
	for _, j := range jobs {
		if j.fi == nil {
			if err := os.MkdirAll(j.dst, 0o755); err != nil {
				return stats, fmt.Errorf("get: %w", err)
			}
			stats.Dirs++
			continue
		}
		if err := getFile(fs, j.src, j.dst, j.fi, stats, total, progress); err != nil {
			return stats, err
		}
	}
	return stats, nil
}

func getFile(fs FS, src, dst string, fi FileInfo, stats *CopyStats, total int64, progress func(done, total int64)) error {
	f, err := fs.Open(src)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	err = writeAtomically(dst, func(out *os.File) error {
		_, err := io.Copy(out, io.NewSectionReader(f, 0, f.Size()))
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
