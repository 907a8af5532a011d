package integrate

import (
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FS is the filesystem a setup tree lives in. Names are slash-separated
// paths relative to the tree's root, matched case-insensitively (XP media
// is upper case while INFs say \i386); a backend resolves each element to
// the name found on disk and keeps that case when writing.
type FS interface {
	ReadFile(name string) ([]byte, error)
	// WriteFile replaces or creates name atomically; a new file's last
	// element keeps the case given, its directories must exist.
	WriteFile(name string, data []byte) error
	Stat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	// MkdirAll creates name and its missing parents; existing elements
	// are matched case-insensitively and keep their case.
	MkdirAll(name string) error
	// Remove deletes the file or empty directory name; a missing name is
	// an error satisfying errors.Is(err, fs.ErrNotExist).
	Remove(name string) error
}

// A WriteChecker is an FS that can tell before the first write whether
// writes will fail (an image opened read-only, an NTFS volume that is
// dirty or hibernated).
// Plan.Commit asks it before writing anything.
type WriteChecker interface {
	CheckWrite() error
}

// A SpaceReporter is an FS with a bounded free space (a file system
// inside an image). Plan.Commit refuses a plan whose new contents and
// backups exceed it before writing anything. A negative FreeBytes means
// unknown.
type SpaceReporter interface {
	FreeBytes() int64
}

// DirFS returns an FS for the directory root of the host filesystem.
// Writes go to a temporary file in the same directory that is then
// renamed over the destination.
func DirFS(root string) FS { return dirFS{root: root} }

type dirFS struct{ root string }

// resolve maps name to a host path, matching every element
// case-insensitively (an exact match wins). With allowNew the last
// element may be missing and is then returned as given.
func (d dirFS) resolve(name string, allowNew bool) (string, error) {
	name = path.Clean("/" + filepath.ToSlash(name))
	cur := d.root
	if name == "/" {
		return cur, nil
	}
	elems := strings.Split(name[1:], "/")
	for i, el := range elems {
		if el == ".." {
			return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
		}
		next := filepath.Join(cur, el)
		if _, err := os.Lstat(next); err == nil {
			cur = next
			continue
		}
		ents, err := os.ReadDir(cur)
		if err != nil {
			return "", err
		}
		found := ""
		for _, e := range ents {
			if strings.EqualFold(e.Name(), el) {
				found = e.Name()
				break
			}
		}
		if found == "" {
			if allowNew && i == len(elems)-1 {
				return next, nil
			}
			return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		cur = filepath.Join(cur, found)
	}
	return cur, nil
}

func (d dirFS) ReadFile(name string) ([]byte, error) {
	p, err := d.resolve(name, false)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func (d dirFS) Stat(name string) (fs.FileInfo, error) {
	p, err := d.resolve(name, false)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

func (d dirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := d.resolve(name, false)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

func (d dirFS) WriteFile(name string, data []byte) error {
	p, err := d.resolve(name, true)
	if err != nil {
		return err
	}
	if st, err := os.Stat(p); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("integrate: %s is not a regular file", p)
	}
	// Complete or not at all, keeping a replaced file's mode; a killed run
	// leaves nothing behind (package atomicfile).
	f, err := atomicfile.Create(p, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

func (d dirFS) MkdirAll(name string) error {
	name = path.Clean("/" + filepath.ToSlash(name))
	cur := ""
	for _, el := range strings.Split(strings.TrimPrefix(name, "/"), "/") {
		if el == "" {
			continue
		}
		next := path.Join(cur, el)
		p, err := d.resolve(next, true)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		switch {
		case err == nil && !st.IsDir():
			return fmt.Errorf("integrate: %s is not a directory", p)
		case isNotExist(err):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		cur = next
	}
	return nil
}

func (d dirFS) Remove(name string) error {
	p, err := d.resolve(name, false)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

// lookup returns the on-disk name of the entry of dir matching name
// case-insensitively, or "".
func lookup(fsys FS, dir, name string) string {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if e.Name() == name {
			return e.Name()
		}
	}
	for _, e := range ents {
		if strings.EqualFold(e.Name(), name) {
			return e.Name()
		}
	}
	return ""
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
