package hive

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
)

// Save writes the hive to path so that a crash at any moment leaves either
// the old or the new hive.
//
// When path is the file the hive was read from (Edit), is still that file
// with the base block it had, and its changed sectors, written twice, come
// to at most half the file, they are written in place with Windows' own
// protocol (HvpWriteLog, HvpDoWriteHive): first an old-format transaction
// log, path+".LOG" (the base block of the new hive, the DIRT bitmap and
// the changed sectors), synced; then the primary's base block with only
// the first sequence number raised (the hive is now marked dirty), synced;
// then the changed sectors, synced; then the base block with both sequence
// numbers equal (not synced: until it is on disk, a crash leaves a dirty
// hive that the log completes to the same new hive). Windows, and Edit,
// replay the log over a hive left dirty; a clean hive ignores its log.
// Otherwise the whole file is written to a temporary file in the same
// directory, synced and renamed
// over path (keeping its mode). On an error before the primary is marked
// dirty the file is untouched.
func (e *Editor) Save(path string) error {
	if err := e.flush(); err != nil {
		return err
	}
	base := e.header()
	inPlace := false
	if e.src != nil && filepath.Clean(path) == filepath.Clean(e.src.path) {
		// In place, each changed sector is written twice (log and hive,
		// each synced) and scattered; a rewrite writes the whole file
		// once, sequentially. In place wins while it writes less than
		// half the bytes of the file (see docs/performance.md).
		inPlace = !e.all && 4*e.nsec*logSector <= len(e.f.data)
		// saveInPlace checks the file it opens for writing itself.
		if !inPlace {
			if err := e.checkSource(path); err != nil {
				return err
			}
		}
	}
	var err error
	if inPlace {
		err = e.saveInPlace(path, base)
	} else {
		err = writeFileAtomic(path, base, e.f.data)
	}
	if err != nil {
		return err
	}
	runtime.KeepAlive(e) // e.f.data may be a mapping e's cleanup releases
	e.seq++
	copy(e.f.base, base)
	e.f.Seq1, e.f.Seq2 = e.seq, e.seq
	clear(e.dsec)
	e.ndirty, e.nsec = 0, 0
	e.hot = freeCells{}
	e.all = false
	e.src = nil
	if st, err := os.Stat(path); err == nil {
		e.src = &source{path: path, info: st, base: base}
	}
	return nil
}

func (e *Editor) dirtyPages() int { return e.ndirty }

// dirtyRuns returns the changed sectors as runs [first, end).
func (e *Editor) dirtyRuns() [][2]uint32 {
	var runs [][2]uint32
	sectors := uint32(len(e.f.data) / logSector)
	for i, w := range e.dsec {
		for w != 0 {
			b := uint32(bits.TrailingZeros64(w))
			sec := uint32(i)*64 + b
			w &^= 1 << b
			if sec >= sectors {
				break
			}
			if n := len(runs); n > 0 && runs[n-1][1] == sec {
				runs[n-1][1] = sec + 1
			} else {
				runs = append(runs, [2]uint32{sec, sec + 1})
			}
		}
	}
	return runs
}

// oldLog builds the old-format transaction log of this write: the new
// base block as a log (file type 1), "DIRT" and one bit per 512-byte
// sector of the hive bins data, then the dirty sectors in order. The
// sectors are returned as slices of the image, not copied: writeParts
// hands them to the kernel as they are.
func (e *Editor) oldLog(base []byte, runs [][2]uint32) [][]byte {
	length := len(e.f.data)
	vecLen := (length/logSector + 7) / 8
	dataOff := (logHeaderSize + 4 + vecLen + logSector - 1) / logSector * logSector
	head := make([]byte, dataOff)
	copy(head, base[:logHeaderSize])
	le.PutUint32(head[hdrType:], logTypeOld)
	le.PutUint32(head[hdrChecksum:], 0)
	le.PutUint32(head[hdrChecksum:], checksum(head[:logHeaderSize]))
	copy(head[logHeaderSize:], "DIRT")
	vec := head[logHeaderSize+4:]
	parts := make([][]byte, 0, 1+len(runs))
	parts = append(parts, head)
	for _, r := range runs {
		for sec := r[0]; sec < r[1]; sec++ {
			vec[sec/8] |= 1 << (sec % 8)
		}
		parts = append(parts, e.f.data[r[0]*logSector:r[1]*logSector])
	}
	return parts
}

// writeGap is the largest run of unchanged sectors that writeRuns writes
// over rather than start another write: the sectors hold what the file
// already holds, and on a virtual machine a system call costs more than
// copying a few KiB.
const writeGap = 16

// writeRuns writes the changed sectors runs to the hive file at their
// places, joining runs less than writeGap sectors apart into one write.
func (e *Editor) writeRuns(fh *os.File, runs [][2]uint32, crashHalf bool) error {
	for i := 0; i < len(runs); {
		first, end := runs[i][0], runs[i][1]
		j := i + 1
		for ; j < len(runs) && runs[j][0]-end <= writeGap; j++ {
			end = runs[j][1]
		}
		if crashHalf && i >= len(runs)/2 {
			return errCrash // about half the sectors written
		}
		if _, err := fh.WriteAt(e.f.data[first*logSector:end*logSector], baseBlockSize+int64(first)*logSector); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// checkSource refuses to save over the file the hive was read from if it
// is no longer that file with that base block: another program changed it.
func (e *Editor) checkSource(path string) error {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hive: saving %s: %w", path, err)
	}
	defer fh.Close()
	_, err = e.checkOpen(fh, path)
	return err
}

// checkOpen checks that fh, opened at path, is still the file the hive
// was read from with the base block it had, and returns its metadata.
func (e *Editor) checkOpen(fh *os.File, path string) (os.FileInfo, error) {
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("hive: saving %s: %w", path, err)
	}
	cur := make([]byte, baseBlockSize)
	if _, err := fh.ReadAt(cur, 0); err != nil || !os.SameFile(st, e.src.info) || !bytes.Equal(cur, e.src.base) {
		return nil, fmt.Errorf("hive: %s changed on disk since it was read; not saved", path)
	}
	return st, nil
}

// saveInPlace writes the changed pages into path (see Save).
func (e *Editor) saveInPlace(path string, base []byte) error {
	fail := func(err error) error { return fmt.Errorf("hive: saving %s: %w", path, err) }
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	defer fh.Close()
	st, err := e.checkOpen(fh, path)
	if err != nil {
		return err
	}
	oldLen := int64(le.Uint32(e.src.base[hdrLength:]))
	if st.Size() < baseBlockSize+oldLen {
		return fmt.Errorf("hive: %s was truncated since it was read; not saved", path)
	}
	newSize := int64(baseBlockSize + len(e.f.data))
	if newSize > st.Size() {
		// Reserve the space first: a full disk fails here, before the
		// hive is marked dirty.
		if err := allocate(fh, st.Size(), newSize-st.Size()); err != nil {
			return fail(err)
		}
	}
	runs := e.dirtyRuns()
	lf, err := os.OpenFile(path+".LOG", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return fail(err)
	}
	err = writeParts(lf, 0, e.oldLog(base, runs))
	if err == nil {
		err = datasync(lf)
	}
	if cerr := lf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if e.crashAt == 1 {
		return errCrash
	}
	dirty := bytes.Clone(base)
	le.PutUint32(dirty[hdrSeq2:], e.seq)
	le.PutUint32(dirty[hdrChecksum:], 0)
	le.PutUint32(dirty[hdrChecksum:], checksum(dirty))
	if _, err := fh.WriteAt(dirty, 0); err != nil {
		return fail(err)
	}
	if err := datasync(fh); err != nil {
		return fail(err)
	}
	if e.crashAt == 2 {
		return errCrash
	}
	// From here on a failure leaves a dirty hive that its log completes.
	if err := e.writeRuns(fh, runs, e.crashAt == 3); err != nil {
		if err == errCrash {
			return err
		}
		return fail(fmt.Errorf("%w (the hive is dirty; %s.LOG completes it)", err, path))
	}
	if err := datasync(fh); err != nil {
		return fail(fmt.Errorf("%w (the hive is dirty; %s.LOG completes it)", err, path))
	}
	if e.crashAt == 4 {
		return errCrash
	}
	// The clean base block needs no sync of its own: the new hive is on
	// disk already (pages and log), and until this block reaches the disk
	// a crash leaves a dirty hive that the log completes to the same hive.
	if _, err := fh.WriteAt(base, 0); err != nil {
		return fail(fmt.Errorf("%w (the hive is dirty; %s.LOG completes it)", err, path))
	}
	return nil
}

// errCrash is what a save stopped by Editor.crashAt returns.
var errCrash = errors.New("hive: simulated crash")

// writeFileAtomic writes parts to a new file that replaces path complete
// (fsync of file and directory) or not at all, keeping path's mode.
func writeFileAtomic(path string, parts ...[]byte) error {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("hive: %s is not a regular file", path)
	}
	// An unnamed file linked into place (package atomicfile): a crash or
	// kill -9 before the rename leaves the old hive and nothing else.
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return fmt.Errorf("hive: saving %s: %w", path, err)
	}
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			f.Abort()
			return fmt.Errorf("hive: saving %s: %w", path, err)
		}
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("hive: saving %s: %w", path, err)
	}
	return nil
}
