package integrate

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
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// A setup tree or an installed system is read and written through
// imagefs.FS, the one file-system interface of xpboot: a partition of a
// disk image (OpenImage, OpenVolume), a host directory (DirFS), the ISO a
// setup source is read from (package setup). Names are slash-separated
// and matched case-insensitively (XP media is upper case while INFs say
// \i386); a backend resolves each element to the name found on disk and
// keeps that case when writing. Whole small files go through
// imagefs.ReadFile and imagefs.WriteBytes; Plan.Commit asks
// imagefs.CheckWritable and the file system's free space before its
// first write.

// DirFS returns the file system of the directory root of the host.
// Writes go to a temporary file in the same directory that is then
// renamed over the destination (package atomicfile), so each file is
// either old or new.
func DirFS(root string) imagefs.FS { return dirFS{root: root} }

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

// Type names the backend: a directory of the host.
func (d dirFS) Type() string { return "dir" }

// Label is the directory's name.
func (d dirFS) Label() (string, error) { return filepath.Base(d.root), nil }

// Flush has nothing to do: every write reaches the host at once.
func (d dirFS) Flush() error { return nil }

// FreeBytes answers -1, not known: a directory shares the host's file
// system with everything else, and files replaced atomically need their
// new and old copies at once, so a count taken before a plan's first
// write would promise nothing. Writes report ENOSPC themselves, and
// Commit rolls back.
func (d dirFS) FreeBytes() int64 { return -1 }

// Open opens the file name for reading.
func (d dirFS) Open(name string) (imagefs.File, error) {
	p, err := d.resolve(name, false)
	if err != nil {
		return nil, err
	}
	// Read whole: the files of a setup tree are small, and an open
	// descriptor would need a Close the interface does not have.
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

// Stat describes name.
func (d dirFS) Stat(name string) (imagefs.FileInfo, error) {
	p, err := d.resolve(name, false)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

// ReadDir lists the directory name, sorted by name.
func (d dirFS) ReadDir(name string) ([]imagefs.FileInfo, error) {
	p, err := d.resolve(name, false)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]imagefs.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}

// WriteFile replaces or creates name with size bytes of r, atomically; a
// new file's last element keeps the case given, its directory must exist.
func (d dirFS) WriteFile(name string, r io.Reader, size int64, mtime time.Time) error {
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
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("integrate: %s: %d of %d bytes: %w", p, n, size, io.ErrUnexpectedEOF)
	}
	if err == nil && !mtime.IsZero() {
		tv := unix.NsecToTimeval(mtime.UnixNano())
		err = unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
	}
	if err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// Mkdir creates the directory name; its parent must exist.
func (d dirFS) Mkdir(name string, _ time.Time) error {
	p, err := d.resolve(name, true)
	if err != nil {
		return err
	}
	return os.Mkdir(p, 0o755)
}

// MkdirAll creates name and its missing parents; existing elements are
// matched case-insensitively and keep their case.
func (d dirFS) MkdirAll(name string, _ time.Time) error {
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

// Remove deletes the file or empty directory name; a missing name is an
// error satisfying errors.Is(err, fs.ErrNotExist).
func (d dirFS) Remove(name string) error {
	p, err := d.resolve(name, false)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

// lookup returns the on-disk name of the entry of dir matching name
// case-insensitively, or "".
func lookup(fsys imagefs.FS, dir, name string) string {
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
