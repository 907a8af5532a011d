package ntfs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"time"
	"unicode/utf16"
)

// maxMemData is the largest file WriteFile holds in memory; larger ones are
// spooled to a temporary file so that a failing reader never leaves a
// half-written file behind.
const maxMemData = 64 << 20

// ntTime converts t to NTFS time (100 ns since 1601).
func ntTime(t time.Time) uint64 {
	if t.IsZero() {
		t = time.Now()
	}
	return uint64(t.UnixNano()/100 + ntfsEpochDelta)
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(strings.ReplaceAll(p, `\`, "/"), func(r rune) bool { return r == '/' }) {
		if s != "." {
			out = append(out, s)
		}
	}
	return out
}

// pathError names the path in a write error.
func pathError(op, p string, err error) error {
	if err == nil {
		return nil
	}
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &iofs.PathError{Op: op, Path: p, Err: err}
}

// walk resolves the directories of parts from the root and returns the
// record of the last one.
func (t *tx) walk(parts []string) (*record, error) {
	dir, err := t.peek(recRoot)
	if err != nil {
		return nil, err
	}
	for _, name := range parts {
		ref, _, found, err := t.lookup(dir, utf16.Encode([]rune(name)))
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%q: %w", name, iofs.ErrNotExist)
		}
		if dir, err = t.peek(refRecord(ref)); err != nil {
			return nil, err
		}
		if !dir.isDir() {
			return nil, fmt.Errorf("%q is not a directory", name)
		}
	}
	return dir, nil
}

// reader returns the writer's reader of the volume, loaded once, or nil
// when this package cannot read the volume itself (go-ntfs then serves
// reads).
func (fs *FS) reader() *vol {
	if fs.rd == nil && fs.rdErr == nil {
		dev := fs.dev
		if dev == nil {
			dev = roDevice{fs.r}
		}
		fs.rd, fs.rdErr = loadVol(dev, fs.off, fs.size)
	}
	return fs.rd
}

// roDevice is a read-only blockdev.ReaderWriterAt.
type roDevice struct{ io.ReaderAt }

func (roDevice) WriteAt([]byte, int64) (int, error) { return 0, ErrReadOnly }

// writable checks (once) the guard rails and returns the volume for
// writing.
func (fs *FS) writable() (*vol, error) {
	if fs.dev == nil {
		return nil, ErrReadOnly
	}
	if fs.w == nil && fs.werr == nil {
		if v := fs.reader(); v == nil {
			fs.werr = fs.rdErr
		} else if fs.werr = v.guard(); fs.werr == nil {
			fs.w = v
		}
	}
	return fs.w, fs.werr
}

// do runs op in a transaction: commit on success, abort on failure. The
// go-ntfs read path is reset afterwards since its caches are stale.
func (fs *FS) do(op, p string, fn func(t *tx) error) error {
	v, err := fs.writable()
	if err != nil {
		return pathError(op, p, err)
	}
	t := v.begin()
	if err := fn(t); err != nil {
		t.abort()
		if v.broken != nil {
			// A read inside fn wrote the queue and that failed.
			fs.w, fs.werr = nil, fmt.Errorf("an earlier write failed: %w", v.broken)
			fs.rd, fs.rdErr = nil, fs.werr
		}
		return pathError(op, p, err)
	}
	fs.ctx = nil
	if err := t.commit(); err != nil {
		// A write error half-way: the caches may not match the disk.
		fs.w, fs.werr = nil, fmt.Errorf("an earlier write failed: %w", err)
		fs.rd, fs.rdErr = nil, fs.werr
		return pathError(op, p, err)
	}
	return nil
}

// WriteFile creates or replaces the file at p with size bytes read from r.
// The parent directory must exist. The data is read completely before the
// volume is changed, and every change of one call is written together.
func (fs *FS) WriteFile(p string, r io.Reader, size int64, mtime time.Time) error {
	if _, err := fs.writable(); err != nil {
		return pathError("write", p, err)
	}
	data, cleanup, err := readAll(r, size)
	if err != nil {
		return pathError("write", p, err)
	}
	defer cleanup()
	return fs.do("write", p, func(t *tx) error { return t.writeFile(p, data, mtime) })
}

// readAll reads size bytes from r into memory (or a temporary file beyond
// maxMemData; NTFS data then streams from there at commit).
func readAll(r io.Reader, size int64) (fileData, func(), error) {
	if size < 0 {
		return nil, func() {}, fmt.Errorf("negative size %d", size)
	}
	if size <= maxMemData {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, func() {}, fmt.Errorf("read source: %w", err)
		}
		return memData(b), func() {}, nil
	}
	f, err := os.CreateTemp("", "xpboot-ntfs-*")
	if err != nil {
		return nil, func() {}, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if n, err := io.CopyN(f, r, size); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("read source (%d of %d bytes): %w", n, size, err)
	}
	return &spoolData{f: f, size: size}, cleanup, nil
}

// fileData is the content of a file being written.
type fileData interface {
	Len() int64
	ReadAt(p []byte, off int64) (int, error)
}

type memData []byte

func (m memData) Len() int64 { return int64(len(m)) }

func (m memData) ReadAt(p []byte, off int64) (int, error) {
	n := copy(p, m[min(off, int64(len(m))):])
	return n, nil
}

type spoolData struct {
	f    *os.File
	size int64
}

func (s *spoolData) Len() int64 { return s.size }

func (s *spoolData) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// Mkdir creates the directory p; its parent must exist.
func (fs *FS) Mkdir(p string, mtime time.Time) error {
	return fs.do("mkdir", p, func(t *tx) error {
		parts := splitPath(p)
		if len(parts) == 0 {
			return iofs.ErrExist
		}
		name, parent, _, found, err := t.entry(parts)
		if err != nil {
			return err
		}
		if found {
			return iofs.ErrExist
		}
		now := ntTime(time.Now())
		if _, err := t.create(parent, name, true, ntTime(mtime), now); err != nil {
			return err
		}
		return t.touchDir(parent.num, now)
	})
}

// MkdirAll creates p and any missing parents; existing directories are
// fine.
func (fs *FS) MkdirAll(p string, mtime time.Time) error {
	parts := splitPath(p)
	for i := range parts {
		sub := "/" + strings.Join(parts[:i+1], "/")
		err := fs.Mkdir(sub, mtime)
		if err == nil || errors.Is(err, iofs.ErrExist) {
			if errors.Is(err, iofs.ErrExist) {
				if isDir, serr := fs.isDir(sub); serr != nil || !isDir {
					return pathError("mkdir", sub, errors.New("exists and is not a directory"))
				}
			}
			continue
		}
		return err
	}
	return nil
}

func (fs *FS) isDir(p string) (bool, error) {
	v, err := fs.writable()
	if err != nil {
		return false, err
	}
	t := v.begin()
	defer t.abort()
	_, err = t.walk(splitPath(p))
	return err == nil, nil
}

// Remove deletes the file or empty directory p: its clusters, its MFT
// record and its index entries are freed.
func (fs *FS) Remove(p string) error {
	return fs.do("remove", p, func(t *tx) error {
		parts := splitPath(p)
		if len(parts) == 0 {
			return errors.New("the root directory cannot be removed")
		}
		parent, err := t.walk(parts[:len(parts)-1])
		if err != nil {
			return fmt.Errorf("parent directory: %w", err)
		}
		name := parts[len(parts)-1]
		ref, _, found, err := t.lookup(parent, utf16.Encode([]rune(name)))
		if err != nil {
			return err
		}
		if !found {
			return iofs.ErrNotExist
		}
		if refRecord(ref) < firstUserRecord && parent.num == recRoot {
			return refused("%s is an NTFS system file", name)
		}
		r, err := t.rec(refRecord(ref))
		if err != nil {
			return err
		}
		if err := t.checkPlain(r, name); err != nil && !r.isDir() {
			// Compressed or sparse files can be removed: freeing
			// their clusters needs no decompression. Only refuse
			// what cannot be freed from this record alone.
			as, _ := r.attrs()
			if find(as, atAttributeList, "") != nil || u64(r.b, 0x20) != 0 {
				return err
			}
		}
		if r.isDir() && hasAttrList(r) {
			// Its extension records would stay in use, and the
			// clusters their attributes hold allocated.
			return refused("directory %s has an $ATTRIBUTE_LIST (attributes in extension records); xpboot does not remove such directories", fileLabel(r))
		}
		pd, err := t.openIndex(parent.num)
		if err != nil {
			return err
		}
		if err := pd.editable(); err != nil {
			return err
		}
		as, err := r.attrs()
		if err != nil {
			return err
		}
		if r.isDir() {
			d, err := t.openIndex(r.num)
			if err != nil {
				return err
			}
			empty := true
			if err := d.each(func(*ientry) bool { empty = false; return false }); err != nil {
				return err
			}
			if !empty {
				return errors.New("directory not empty")
			}
		}
		// Every name must be in this directory (no hard links elsewhere).
		var names [][]uint16
		for _, a := range as {
			if a.typ == atFileName && !a.nonRes && a.valLen >= 0x42 {
				fn := r.value(&a)
				if refRecord(u64(fn, 0)) != parent.num {
					return refused("%s has a hard link in another directory (record %d)", name, refRecord(u64(fn, 0)))
				}
				names = append(names, keyName(fn))
			}
		}
		for _, a := range as {
			if a.nonRes {
				runs, err := t.v.runs(r, &a)
				if err != nil {
					return err
				}
				t.freeClusters(runs)
			}
		}
		d, err := t.openIndex(parent.num)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := d.remove(n, r.ref()); err != nil {
				return err
			}
		}
		if err := d.flush(); err != nil {
			return err
		}
		seq := r.seq() + 1
		if seq == 0 {
			seq = 1
		}
		put16(r.b, 0x10, seq)
		put16(r.b, 0x16, u16(r.b, 0x16)&^(recInUse|recDirectory))
		put16(r.b, 0x12, 0)
		t.setBitmap(true, int64(r.num), false)
		return t.touchDir(parent.num, ntTime(time.Now()))
	})
}

// Flush writes the file data and metadata that operations which only
// allocated left queued (see tx.commit), data first. imagefs calls it at
// the end of a put and when the image is closed.
func (fs *FS) Flush() error {
	if fs.w == nil {
		return nil
	}
	if err := fs.w.flush(); err != nil {
		fs.w, fs.werr = nil, fmt.Errorf("an earlier write failed: %w", err)
		fs.rd, fs.rdErr = nil, fs.werr
		return fmt.Errorf("ntfs: flush: %w", err)
	}
	return nil
}

// FreeBytes is the free space by $Bitmap. Of a volume opened for writing
// it is what the writer can use, -1 when the guard rails refuse the volume
// (so that a put reports the refusal, not a space check); of a volume
// opened read-only (image info) it is what $Bitmap says on disk, -1 when
// the volume's structures cannot be read.
func (fs *FS) FreeBytes() int64 {
	var v *vol
	if fs.dev == nil {
		v = fs.reader()
	} else {
		v, _ = fs.writable()
	}
	if v == nil {
		return -1
	}
	var used int64
	for c := int64(0); c < v.clusters; c++ {
		if v.bitmap[c>>3] == 0xFF && c&7 == 0 && c+8 <= v.clusters {
			used += 8
			c += 7
			continue
		}
		if bit(v.bitmap, c) {
			used++
		}
	}
	return (v.clusters - used) * v.csize
}
