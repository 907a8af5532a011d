package fat32

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"path"
	"strings"
	"time"
)

// writeChunk bounds the memory a file copy uses.
const writeChunk = 4 << 20

func (fs *FS) parentDir(p string) (*dir, string, error) {
	parts := splitPath(p)
	if len(parts) == 0 {
		return nil, "", errors.New("the root directory cannot be replaced")
	}
	name := parts[len(parts)-1]
	if why := validLongName(name); why != "" {
		return nil, "", fmt.Errorf("invalid name %q: %s", name, why)
	}
	_, pe, err := fs.lookup(path.Join(parts[:len(parts)-1]...))
	if err != nil {
		return nil, "", fmt.Errorf("parent directory: %w", err)
	}
	c := fs.bs.RootCluster
	if pe != nil {
		if pe.attr&attrDirectory == 0 {
			return nil, "", errors.New("parent is not a directory")
		}
		c = fs.dirCluster(pe)
	}
	d, err := fs.dir(c)
	return d, name, err
}

// WriteFile creates or replaces the file at p with size bytes read from r.
// The parent directory must exist. Data goes straight to the device in
// chunks of up to 4 MiB; the FAT and directory changes are written by Flush.
func (fs *FS) WriteFile(p string, r io.Reader, size int64, mtime time.Time) error {
	if fs.readOnly {
		return ErrReadOnly
	}
	if size < 0 || size > maxFileSize {
		return &PathError{Op: "write", Path: p, Err: fmt.Errorf("size %d is beyond the FAT32 file size limit of 4 GiB - 1", size)}
	}
	d, name, err := fs.parentDir(p)
	if err != nil {
		return &PathError{Op: "write", Path: p, Err: err}
	}
	old := d.byName[upperKey(name)]
	if old != nil && old.attr&attrDirectory != 0 {
		return &PathError{Op: "write", Path: p, Err: errors.New("is a directory")}
	}
	var oldChain []uint32
	if old != nil && old.cluster != 0 {
		if oldChain, err = fs.chain(old.cluster); err != nil {
			return &PathError{Op: "write", Path: p, Err: err}
		}
	}
	need := uint32((size + fs.csize - 1) / fs.csize)
	// The old clusters become free only once the new data is in place, so a
	// replacement needs room for both; the space check counts on that.
	chain, err := fs.allocate(need)
	if err != nil {
		return &PathError{Op: "write", Path: p, Err: err}
	}
	if err := fs.copyIn(chain, r, size); err != nil {
		fs.free(chain)
		return &PathError{Op: "write", Path: p, Err: err}
	}
	first := uint32(0)
	if len(chain) > 0 {
		first = chain[0]
	}
	tv := newTimeValue(mtime)
	if old != nil {
		fs.free(oldChain)
		old.cluster, old.size, old.mtime = first, uint32(size), tv
		old.attr |= attrArchive
		d.encode(old)
		d.dirty = true
		return nil
	}
	if _, err := fs.add(d, name, attrArchive, first, uint32(size), tv); err != nil {
		fs.free(chain)
		return &PathError{Op: "write", Path: p, Err: err}
	}
	return nil
}

// copyIn fills chain with size bytes of r, zero padding the last cluster.
func (fs *FS) copyIn(chain []uint32, r io.Reader, size int64) error {
	buf := make([]byte, min(int64(writeChunk), max(size, fs.csize)))
	perChunk := int(int64(len(buf)) / fs.csize)
	done := int64(0)
	for i := 0; i < len(chain); i += perChunk {
		part := chain[i:min(i+perChunk, len(chain))]
		want := min(int64(len(part))*fs.csize, size-done)
		b := buf[:int64(len(part))*fs.csize]
		if _, err := io.ReadFull(r, b[:want]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("source ended after %d of %d bytes", done, size)
			}
			return err
		}
		clear(b[want:])
		if err := fs.writeClusters(part, b); err != nil {
			return err
		}
		done += want
	}
	return nil
}

// Mkdir creates the directory p; its parent must exist.
func (fs *FS) Mkdir(p string, mtime time.Time) error {
	if fs.readOnly {
		return ErrReadOnly
	}
	d, name, err := fs.parentDir(p)
	if err != nil {
		return &PathError{Op: "mkdir", Path: p, Err: err}
	}
	if d.byName[upperKey(name)] != nil {
		return &PathError{Op: "mkdir", Path: p, Err: iofs.ErrExist}
	}
	c, err := fs.allocate(1)
	if err != nil {
		return &PathError{Op: "mkdir", Path: p, Err: err}
	}
	tv := newTimeValue(mtime)
	if _, err := fs.add(d, name, attrDirectory, c[0], 0, tv); err != nil {
		fs.free(c)
		return &PathError{Op: "mkdir", Path: p, Err: err}
	}
	parent := d.cluster
	if parent == fs.bs.RootCluster {
		parent = 0 // ".." of a first-level directory is 0, not the root's cluster
	}
	data := make([]byte, fs.csize)
	initDir(data, c[0], parent, tv)
	nd := &dir{cluster: c[0], chain: c, data: data, end: 2, dirty: true, entries: map[int]*dirEntry{},
		byName: map[string]*dirEntry{}, shortNames: map[shortName]bool{}, nextTail: map[string]int{}}
	fs.dirs[c[0]] = nd
	return nil
}

// MkdirAll creates p and any missing parents; existing directories are fine.
func (fs *FS) MkdirAll(p string, mtime time.Time) error {
	parts := splitPath(p)
	for i := range parts {
		sub := "/" + strings.Join(parts[:i+1], "/")
		fi, err := fs.Stat(sub)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			return &PathError{Op: "mkdir", Path: sub, Err: errors.New("exists and is not a directory")}
		case !errors.Is(err, iofs.ErrNotExist):
			return err
		}
		if err := fs.Mkdir(sub, mtime); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes a file or an empty directory.
func (fs *FS) Remove(p string) error {
	if fs.readOnly {
		return ErrReadOnly
	}
	d, e, err := fs.lookup(p)
	if err == nil && e == nil {
		err = errors.New("the root directory cannot be removed")
	}
	if err != nil {
		return &PathError{Op: "remove", Path: p, Err: err}
	}
	var chain []uint32
	if e.cluster != 0 {
		if chain, err = fs.chain(e.cluster); err != nil {
			return &PathError{Op: "remove", Path: p, Err: err}
		}
	}
	if e.attr&attrDirectory != 0 {
		sub, err := fs.dir(fs.dirCluster(e))
		if err != nil {
			return &PathError{Op: "remove", Path: p, Err: err}
		}
		if !sub.isEmpty() {
			return &PathError{Op: "remove", Path: p, Err: errors.New("directory not empty")}
		}
		delete(fs.dirs, sub.cluster)
	}
	d.remove(e)
	fs.free(chain)
	return nil
}

// Flush writes the changed FAT sectors to every FAT copy, then the changed
// directories, then FSInfo.
func (fs *FS) Flush() error {
	if fs.readOnly {
		return nil
	}
	bps := int64(fs.bs.BytesPerSector)
	copies := []int{fs.bs.activeFAT()}
	if fs.bs.mirrored() {
		copies = copies[:0]
		for i := 0; i < int(fs.bs.NumFATs); i++ {
			copies = append(copies, i)
		}
	}
	dirty := func(sec int64) bool { return fs.fatDirty[sec/64]&(1<<(sec%64)) != 0 }
	sectors := int64(len(fs.fatDirty)) * 64
	var raw []byte
	// FSInfo is rewritten only after a change: a run that wrote nothing
	// (a put refused on a damaged volume) leaves every byte as it was,
	// even where the stored free count is stale.
	wrote := false
	for lo := int64(0); lo < sectors; lo++ {
		if !dirty(lo) {
			continue
		}
		wrote = true
		// Write each run of consecutive dirty sectors at once. The last
		// sector may hold fewer entries than fit: the bytes past the last
		// cluster's entry are left as they are on disk.
		hi := lo
		for hi < sectors && dirty(hi) {
			fs.fatDirty[hi/64] &^= 1 << (hi % 64)
			hi++
		}
		first, last := lo*bps/4, min(hi*bps/4, int64(len(fs.fat)))
		raw = raw[:0]
		for _, v := range fs.fat[first:last] {
			raw = binary.LittleEndian.AppendUint32(raw, v)
		}
		for _, c := range copies {
			if _, err := fs.dev.WriteAt(raw, fs.off+fs.bs.fatStart(c)+lo*bps); err != nil {
				return fmt.Errorf("fat32: write FAT %d: %w", c+1, err)
			}
		}
		lo = hi
	}
	for _, d := range fs.dirs {
		if !d.dirty {
			continue
		}
		if err := fs.writeClusters(d.chain, d.data); err != nil {
			return fmt.Errorf("fat32: write directory at cluster %d: %w", d.cluster, err)
		}
		d.dirty = false
		wrote = true
	}
	if !wrote {
		return nil
	}
	return fs.writeFSInfo()
}

// writeFSInfo records the free count and allocation hint in FSInfo and its
// backup, when those sectors carry valid signatures.
func (fs *FS) writeFSInfo() error {
	bps := int64(fs.bs.BytesPerSector)
	for _, sec := range []int64{int64(fs.bs.FSInfoSector), int64(fs.bs.BackupBootSector) + int64(fs.bs.FSInfoSector)} {
		if sec == 0 || sec >= int64(fs.bs.ReservedSectors) || (fs.bs.BackupBootSector == 0 && sec != int64(fs.bs.FSInfoSector)) {
			continue
		}
		b := make([]byte, 512)
		if _, err := fs.dev.ReadAt(b, fs.off+sec*bps); err != nil {
			return err
		}
		le := binary.LittleEndian
		if le.Uint32(b[0:]) != fsInfoLeadSig || le.Uint32(b[484:]) != fsInfoStructSig {
			continue
		}
		le.PutUint32(b[488:], fs.freeCount)
		le.PutUint32(b[492:], fs.nextFree)
		le.PutUint32(b[508:], fsInfoTrailSig)
		if _, err := fs.dev.WriteAt(b, fs.off+sec*bps); err != nil {
			return err
		}
	}
	return nil
}
