package integrate

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/atomicfile"
)

// An image's undo journal keeps, for one integration, the original bytes
// of every sector it wrote: block-level, so taking it back leaves the
// virtual disk byte for byte as it was (file data, FAT, directories,
// NTFS metadata and boot sector alike), which restoring files through
// the file system cannot promise. Journals live beside the image, in
// JournalDir(image), one file NNN.journal per integration; UndoImage
// takes the newest back.
//
// File layout (little-endian): the magic "XPBUNDO1", the device size
// (u64), the extent count (u32), then per extent its offset (u64),
// length (u32, a multiple of 512), the SHA-256 of the bytes the
// integration left there, and the original bytes.

const journalMagic = "XPBUNDO1"

// maxJournalExtents bounds a journal read back.
const maxJournalExtents = 1 << 20

// JournalDir is the directory of an image's undo journals.
func JournalDir(image string) string { return image + ".xpboot-undo" }

// recordingDevice saves the original content of every sector before the
// first write to it, and writes the journal when closed.
type recordingDevice struct {
	blockdev.Device
	image string
	saved map[int64][]byte // sector → original bytes
}

func (d *recordingDevice) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange("write", off, len(p), d.Size()); err != nil {
		return 0, err
	}
	for s := off / 512; s*512 < off+int64(len(p)); s++ {
		if _, ok := d.saved[s]; ok {
			continue
		}
		b := make([]byte, 512)
		if _, err := d.Device.ReadAt(b, s*512); err != nil {
			return 0, fmt.Errorf("saving sector %d for the undo journal: %w", s, err)
		}
		d.saved[s] = b
	}
	return d.Device.WriteAt(p, off)
}

// Discard refuses: a deallocation would bypass the undo record.
func (d *recordingDevice) Discard(int64, int64) error { return blockdev.ErrNotSupported }

// Close writes the journal (when anything was written), then closes the
// device.
func (d *recordingDevice) Close() error {
	err := d.writeJournal()
	if cerr := d.Device.Close(); err == nil {
		err = cerr
	}
	return err
}

type journalExtent struct {
	off  int64
	orig []byte
	sum  [32]byte
}

func (d *recordingDevice) writeJournal() error {
	if len(d.saved) == 0 {
		return nil
	}
	if err := d.Device.Flush(); err != nil {
		return err
	}
	secs := make([]int64, 0, len(d.saved))
	for s := range d.saved {
		secs = append(secs, s)
	}
	slices.Sort(secs)
	var exts []journalExtent
	for i := 0; i < len(secs); {
		j := i + 1
		for j < len(secs) && secs[j] == secs[j-1]+1 && j-i < 2048 {
			j++
		}
		e := journalExtent{off: secs[i] * 512}
		cur := make([]byte, (j-i)*512)
		for k := i; k < j; k++ {
			e.orig = append(e.orig, d.saved[secs[k]]...)
		}
		if _, err := d.Device.ReadAt(cur, e.off); err != nil {
			return err
		}
		e.sum = sha256.Sum256(cur)
		exts = append(exts, e)
		i = j
	}
	var buf bytes.Buffer
	buf.WriteString(journalMagic)
	binary.Write(&buf, binary.LittleEndian, uint64(d.Size()))
	binary.Write(&buf, binary.LittleEndian, uint32(len(exts)))
	for _, e := range exts {
		binary.Write(&buf, binary.LittleEndian, uint64(e.off))
		binary.Write(&buf, binary.LittleEndian, uint32(len(e.orig)))
		buf.Write(e.sum[:])
		buf.Write(e.orig)
	}
	dir := JournalDir(d.image)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("undo journal: %w", err)
	}
	n, err := lastJournal(dir)
	if err != nil {
		return err
	}
	name := filepath.Join(dir, fmt.Sprintf("%03d.journal", n+1))
	// atomicfile: the journal appears whole or not at all, and its name
	// survives a crash (the directory is synced too).
	f, err := atomicfile.Create(name, 0o644)
	if err != nil {
		return fmt.Errorf("undo journal: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Abort()
		return fmt.Errorf("undo journal: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("undo journal: %w", err)
	}
	return nil
}

// lastJournal returns the number of the newest journal in dir, 0 if none.
func lastJournal(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("undo journal: %w", err)
	}
	last := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".journal")); err == nil && strings.HasSuffix(e.Name(), ".journal") && n > last {
			last = n
		}
	}
	return last, nil
}

// ErrNoJournal reports an image without an undo journal.
var ErrNoJournal = errors.New("integrate: no undo journal beside the image")

// ImageUndo says what UndoImage restored.
type ImageUndo struct {
	Journal string `json:"journal"`
	Extents int    `json:"extents"`
	Bytes   int64  `json:"bytes"`
}

// readJournal parses a journal file, checking every count and length
// against the file before use.
func readJournal(name string, size int64) ([]journalExtent, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("undo journal: %w", err)
	}
	bad := func(off int, msg string) error {
		return fmt.Errorf("undo journal %s: at offset %d: %s", name, off, msg)
	}
	if len(b) < 20 || string(b[:8]) != journalMagic {
		return nil, bad(0, "not an xpboot undo journal")
	}
	if got := int64(binary.LittleEndian.Uint64(b[8:])); got != size {
		return nil, bad(8, fmt.Sprintf("recorded for a device of %d bytes, the image has %d", got, size))
	}
	n := binary.LittleEndian.Uint32(b[16:])
	if n > maxJournalExtents {
		return nil, bad(16, fmt.Sprintf("%d extents", n))
	}
	pos := 20
	var out []journalExtent
	for i := uint32(0); i < n; i++ {
		if len(b)-pos < 44 {
			return nil, bad(pos, "truncated extent header")
		}
		e := journalExtent{off: int64(binary.LittleEndian.Uint64(b[pos:]))}
		l := int(binary.LittleEndian.Uint32(b[pos+8:]))
		copy(e.sum[:], b[pos+12:pos+44])
		pos += 44
		if l <= 0 || l%512 != 0 || len(b)-pos < l || e.off < 0 || e.off%512 != 0 || e.off+int64(l) > size {
			return nil, bad(pos-44, fmt.Sprintf("extent of %d bytes at device offset %d", l, e.off))
		}
		e.orig = b[pos : pos+l]
		pos += l
		out = append(out, e)
	}
	if pos != len(b) {
		return nil, bad(pos, "trailing bytes")
	}
	return out, nil
}

// UndoImage takes back the newest integration journalled for the disk
// image: every sector it wrote gets its original bytes. A sector changed
// since (the image was booted or edited) refuses the undo before anything
// is written, unless force. The journal is removed afterwards. With
// dryRun nothing is written. A sparse container (VMDK, VHD) keeps the
// grains or blocks the integration allocated; what the disk reads is as
// before.
func UndoImage(image string, force, dryRun bool) (*ImageUndo, error) {
	dir := JournalDir(image)
	n, err := lastJournal(dir)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNoJournal
	}
	name := filepath.Join(dir, fmt.Sprintf("%03d.journal", n))
	img, err := imagefs.Open(image, !dryRun)
	if err != nil {
		return nil, fmt.Errorf("integrate: %w", err)
	}
	exts, err := readJournal(name, img.Dev.Size())
	if err != nil {
		img.Dev.Close()
		return nil, err
	}
	res := &ImageUndo{Journal: name, Extents: len(exts)}
	for _, e := range exts {
		res.Bytes += int64(len(e.orig))
		if force {
			continue
		}
		cur := make([]byte, len(e.orig))
		if _, err := img.Dev.ReadAt(cur, e.off); err != nil && !errors.Is(err, io.EOF) {
			img.Dev.Close()
			return nil, fmt.Errorf("integrate: %s: %w", image, err)
		}
		if sha256.Sum256(cur) != e.sum {
			img.Dev.Close()
			return nil, fmt.Errorf("integrate: %s: the %d bytes at offset %d changed since the integration journalled in %s; nothing undone (--force restores them anyway)", image, len(e.orig), e.off, name)
		}
	}
	if dryRun {
		return res, img.Dev.Close()
	}
	for _, e := range exts {
		if _, err := img.Dev.WriteAt(e.orig, e.off); err != nil {
			img.Dev.Close()
			return nil, fmt.Errorf("integrate: %s: restoring offset %d: %w (the image is partly restored; run --undo again)", image, e.off, err)
		}
	}
	if err := img.Dev.Close(); err != nil {
		return nil, fmt.Errorf("integrate: %s: %w", image, err)
	}
	if err := os.Remove(name); err != nil {
		return res, fmt.Errorf("integrate: image restored, but removing %s failed: %w", name, err)
	}
	os.Remove(dir) // only when empty
	return res, nil
}

// restore writes back every saved original and forgets them: the device
// reads as before the first write.
func (d *recordingDevice) restore() error {
	var errs []error
	for s, b := range d.saved {
		if _, err := d.Device.WriteAt(b, s*512); err != nil {
			errs = append(errs, fmt.Errorf("sector %d: %w", s, err))
		}
	}
	if len(errs) == 0 {
		d.saved = map[int64][]byte{}
	}
	return errors.Join(errs...)
}

// Abort undoes, below the file system, every write made through an
// ImageFS opened writable by OpenVolume (file data, metadata, boot
// sector) and closes the image without flushing the file system's cached
// metadata: the image is byte for byte as it was opened, and no journal
// is left. For other ImageFS values it is Close.
func (f *ImageFS) Abort() error {
	rd, ok := f.img.Dev.(*recordingDevice)
	if !ok {
		return f.Close()
	}
	err := rd.restore()
	if cerr := rd.Device.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("integrate: %s: putting back the sectors written: %w", f.img.Path, err)
	}
	return nil
}
