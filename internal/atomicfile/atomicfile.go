package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// marker separates a final name from the owner of a temporary name.
const marker = ".xpboot-tmp-"

// File is an output being written: an *os.File that reaches its final name
// only through Commit. Abort (or a Commit that fails) discards it.
type File struct {
	*os.File
	final string
	perm  fs.FileMode
	// temp is the temporary name, or "" for an unnamed (O_TMPFILE) file.
	temp string
	done bool
}

// Create starts the output final with permissions perm, or those of the
// file it will replace. It removes stale temporary files of dead xpboot
// processes from final's directory first.
func Create(final string, perm fs.FileMode) (*File, error) {
	if st, err := os.Stat(final); err == nil && st.Mode().IsRegular() {
		perm = st.Mode().Perm() // a replaced file keeps its mode
	}
	return CreateMode(final, perm)
}

// CreateMode is Create with exactly the permissions perm, also when it
// replaces a file with other ones: for outputs that hold secrets (0600),
// which must not inherit a readable mode. The file has perm from the start,
// so the secret is never readable by others while it is written.
func CreateMode(final string, perm fs.FileMode) (*File, error) {
	dir := filepath.Dir(final)
	Clean(dir)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(perm))
	if err == nil {
		return &File{File: os.NewFile(uintptr(fd), final), final: final, perm: perm}, nil
	}
	return createNamed(final, perm)
}

// createNamed is Create for file systems without O_TMPFILE: a
// recognisable temporary name.
func createNamed(final string, perm fs.FileMode) (*File, error) {
	name, err := TempName(final)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err
	}
	return &File{File: f, final: final, perm: perm, temp: name}, nil
}

// Commit makes the file complete under its final name, replacing any file
// there: fsync of the data, the name, fsync of the directory. The File is
// closed afterwards, whether Commit succeeds or not.
func (f *File) Commit() (err error) {
	if f.done {
		return errors.New("atomicfile: " + f.final + ": already committed or aborted")
	}
	defer func() {
		if err != nil {
			f.Abort()
		}
	}()
	if err := f.Sync(); err != nil {
		return err
	}
	// An unnamed file is created with the umask applied by the kernel like
	// any other; fchmod makes the mode exactly perm, as callers ask.
	if err := f.Chmod(f.perm); err != nil {
		return err
	}
	src := f.temp
	if src == "" {
		// linkat cannot replace an existing name: link the file under a
		// temporary name, then rename that over the final one.
		tmp, err := TempName(f.final)
		if err != nil {
			return err
		}
		proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
		if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
			return fmt.Errorf("%s: giving the file its name: %w", f.final, err)
		}
		src = tmp
		f.temp = tmp
	}
	if err := os.Rename(src, f.final); err != nil {
		return err
	}
	f.temp = ""
	f.done = true
	if err := f.File.Close(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(f.final))
}

// Abort discards the file; it is safe to call after Commit (it then does
// nothing) and more than once.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	if f.temp != "" {
		os.Remove(f.temp)
	}
}

// SyncDir fsyncs a directory, so that names created or renamed in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err // some file systems cannot sync a directory: that is no error
	}
	return nil
}

// TempName returns a hidden, unique name beside final that records this
// process (PID and start time), for outputs that must be created by path.
// Clean removes such names once their process is gone.
func TempName(final string) (string, error) {
	start, err := startTime(os.Getpid())
	if err != nil {
		return "", err
	}
	var b [6]byte
	rand.Read(b[:])
	return filepath.Join(filepath.Dir(final),
		fmt.Sprintf(".%s%s%d.%s-%s", filepath.Base(final), marker, os.Getpid(), start, hex.EncodeToString(b[:]))), nil
}

// Clean removes the temporary files and directories in dir that xpboot
// processes no longer running left behind (killed, or crashed, before
// committing their output). Names of live processes, and anything else,
// are left alone. It returns the names it removed.
func Clean(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		pid, start, ok := owner(e.Name())
		if !ok {
			continue
		}
		if live, err := startTime(pid); err == nil && live == start {
			continue // its owner is still running
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// owner parses ".NAME.xpboot-tmp-PID.START-RANDOM".
func owner(name string) (pid int, start string, ok bool) {
	if !strings.HasPrefix(name, ".") {
		return 0, "", false
	}
	i := strings.LastIndex(name, marker)
	if i < 0 {
		return 0, "", false
	}
	rest := name[i+len(marker):]
	id, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, "", false
	}
	p, s, ok := strings.Cut(id, ".")
	if !ok {
		return 0, "", false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 || s == "" {
		return 0, "", false
	}
	return pid, s, true
}

// startTime returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat), which tells a process from a later one
// that reuses its PID.
func startTime(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return f[19], nil // field 22 overall
}

// Named is an output that its writer must create by path (a VHD or VMDK
// writer that takes a file name, or one file of a set such as a flat VMDK
// descriptor and its extent): a recognisable temporary name beside the
// final one (see TempName), which Clean removes once its process is gone,
// and the same commit as File's: fsync of the file, the name, fsync of the
// directory, the replaced file's mode kept.
type Named struct {
	// Temp is the name to create the output at; the writer must create it
	// (O_EXCL is right: nothing else uses the name).
	Temp  string
	final string
	// keep is the mode of the file being replaced, if any; a new file keeps
	// the mode its writer gave it.
	keep    fs.FileMode
	hasKeep bool
	done    bool
}

// CreateNamed reserves a temporary name for the output final, after
// removing stale temporary files of dead xpboot processes from final's
// directory. Nothing is created: the caller writes the file at n.Temp.
func CreateNamed(final string) (*Named, error) {
	Clean(filepath.Dir(final))
	tmp, err := TempName(final)
	if err != nil {
		return nil, err
	}
	n := &Named{Temp: tmp, final: final}
	if st, err := os.Stat(final); err == nil && st.Mode().IsRegular() {
		n.keep, n.hasKeep = st.Mode().Perm(), true
	}
	return n, nil
}

// Commit fsyncs the file written at n.Temp, gives it the replaced file's
// mode, renames it over the final name and fsyncs the directory.
func (n *Named) Commit() error { return n.commit(true, true) }

// CommitNoSync is Commit without the fsyncs, for outputs whose user chose
// speed over durability (convert without --sync, like qemu-img convert and
// cp): the rename still makes the output appear complete or not at all,
// and the kernel writes it back in its own time.
func (n *Named) CommitNoSync() error { return n.commit(false, true) }

// CommitNew is Commit for an output that must not replace anything: it
// fails with an error wrapping fs.ErrExist when the final name exists,
// also when it appeared after the caller checked (a hard link never
// replaces a name; file systems without hard links get a rename after a
// last check).
func (n *Named) CommitNew() error { return n.commit(true, false) }

func (n *Named) commit(sync, replace bool) (err error) {
	if n.done {
		return errors.New("atomicfile: " + n.final + ": already committed or aborted")
	}
	defer func() {
		if err != nil {
			n.Abort()
		}
	}()
	if sync || n.hasKeep {
		f, err := os.Open(n.Temp)
		if err != nil {
			return err
		}
		if n.hasKeep {
			err = f.Chmod(n.keep)
		}
		if err == nil && sync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if replace {
		if err := os.Rename(n.Temp, n.final); err != nil {
			return err
		}
	} else if err := linkNew(n.Temp, n.final); err != nil {
		return err
	}
	n.done = true
	if sync {
		return SyncDir(filepath.Dir(n.final))
	}
	return nil
}

// linkNew gives tmp the name final unless final exists, and removes tmp.
func linkNew(tmp, final string) error {
	err := os.Link(tmp, final)
	if err == nil {
		os.Remove(tmp)
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", final, fs.ErrExist)
	}
	if _, serr := os.Lstat(final); serr == nil {
		return fmt.Errorf("%s: %w", final, fs.ErrExist)
	}
	return os.Rename(tmp, final)
}

// Abort removes the temporary file; it is safe to call after Commit (it
// then does nothing) and more than once.
func (n *Named) Abort() {
	if n.done {
		return
	}
	n.done = true
	os.Remove(n.Temp)
}
