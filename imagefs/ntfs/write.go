package ntfs

import (
	"bytes"
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

// roDevice is a read-only Device.
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

func (t *tx) writeFile(p string, data fileData, mtime time.Time) error {
	parts := splitPath(p)
	if len(parts) == 0 {
		return errors.New("the root directory cannot be replaced")
	}
	name := parts[len(parts)-1]
	if err := validName(name); err != nil {
		return err
	}
	parent, err := t.walk(parts[:len(parts)-1])
	if err != nil {
		return fmt.Errorf("parent directory: %w", err)
	}
	ref, _, found, err := t.lookup(parent, utf16.Encode([]rune(name)))
	if err != nil {
		return err
	}
	now := ntTime(time.Now())
	mt := ntTime(mtime)
	if found {
		r, err := t.rec(refRecord(ref))
		if err != nil {
			return err
		}
		if r.isDir() {
			return errors.New("is a directory")
		}
		if err := t.checkPlain(r, name); err != nil {
			return err
		}
		if err := t.setData(r, data, name); err != nil {
			return err
		}
		if err := t.touch(r, mt, now); err != nil {
			return err
		}
		if err := t.syncNames(r); err != nil {
			return err
		}
		return t.touchDir(parent.num, now)
	}
	r, err := t.create(parent, name, false, mt, now)
	if err != nil {
		return err
	}
	if err := t.setData(r, data, name); err != nil {
		return err
	}
	if err := t.syncNames(r); err != nil {
		return err
	}
	return t.touchDir(parent.num, now)
}

// checkPlain refuses files xpboot cannot rewrite safely.
func (t *tx) checkPlain(r *record, name string) error {
	as, err := r.attrs()
	if err != nil {
		return err
	}
	if find(as, atAttributeList, "") != nil {
		return refused("%s has an $ATTRIBUTE_LIST (very fragmented or many names); xpboot does not write such files", name)
	}
	if u64(r.b, 0x20) != 0 {
		return refused("%s: record %d is an extension record", name, r.num)
	}
	if si := find(as, atStandardInformation, ""); si != nil && !si.nonRes && si.valLen >= 0x24 {
		if fa := u32(r.value(si), 0x20); fa&(faCompressed|faEncrypted|faSparse|faReparse) != 0 {
			return refused("%s is compressed, encrypted, sparse or a reparse point (attributes 0x%x); xpboot does not write such files", name, fa)
		}
	}
	for _, a := range as {
		if a.typ == atData && a.flags&(attrCompressed|attrEncrypted|attrSparse) != 0 {
			return refused("%s: its data is compressed, encrypted or sparse (flags 0x%x); xpboot does not write such files", name, a.flags)
		}
	}
	return nil
}

// setData replaces the unnamed $DATA of r with data: resident when it fits
// in the record, else non-resident reusing the clusters the file has,
// freeing the surplus and allocating the rest.
func (t *tx) setData(r *record, data fileData, name string) error {
	v := t.v
	as, err := r.attrs()
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	size := data.Len()
	var oldRuns []run
	if d != nil && d.nonRes {
		if oldRuns, err = v.runs(r, d); err != nil {
			return err
		}
	}
	free := len(r.b) - r.used()
	if d != nil {
		free += d.length
	}
	// Keep resident data small enough that the $FILE_NAME copies and a
	// later $DATA change still fit; Windows keeps files up to ~700 bytes
	// resident in 1 KiB records.
	if size <= int64(v.recSize)/2 && align8(0x18+int(size)) <= free {
		if d != nil {
			r.removeAttr(d.off)
		}
		t.freeClusters(oldRuns)
		b := make([]byte, size)
		if _, err := data.ReadAt(b, 0); err != nil {
			return err
		}
		if r.insertAttr(residentAttr(atData, nil, b, 0)) < 0 {
			return refused("%s: MFT record %d has no room for its data", name, r.num)
		}
		return nil
	}
	need := (size + v.csize - 1) / v.csize
	keep, cut := truncRuns(oldRuns, need)
	for _, x := range keep {
		if x.lcn < 0 {
			return refused("%s is sparse", name)
		}
	}
	if have := runClusters(keep); have < need {
		near := int64(-1)
		if k := len(keep); k > 0 {
			near = keep[k-1].lcn + keep[k-1].n
		}
		add, err := t.allocClusters(need-have, near)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		keep = appendRuns(keep, add...)
	}
	t.freeClusters(cut)
	if err := t.queueData(keep, data); err != nil {
		return err
	}
	enc := encodeRuns(keep)
	if d != nil && d.nonRes {
		ro := d.runsOff - d.off
		if !r.resizeAttr(d.off, align8(ro+len(enc))) {
			return refused("%s is too fragmented: its runlist (%d bytes) no longer fits MFT record %d and would need an $ATTRIBUTE_LIST", name, len(enc), r.num)
		}
		copy(r.b[d.off+ro:], enc)
		put64(r.b, d.off+0x18, uint64(need-1))
		put64(r.b, d.off+0x28, uint64(need*v.csize))
		put64(r.b, d.off+0x30, uint64(size))
		put64(r.b, d.off+0x38, uint64(size))
		return nil
	}
	if d != nil {
		r.removeAttr(d.off)
	}
	if r.insertAttr(nonResidentAttr(atData, nil, enc, need, size, size, v.csize)) < 0 {
		return refused("%s: its runlist (%d bytes) does not fit MFT record %d and would need an $ATTRIBUTE_LIST", name, len(enc), r.num)
	}
	return nil
}

// queueData queues the file content for the clusters of runs, cluster
// padded with zeros.
func (t *tx) queueData(runs []run, data fileData) error {
	pos := int64(0)
	for _, r := range runs {
		n := r.n * t.v.csize
		chunk := make([]byte, n)
		if pos < data.Len() {
			if _, err := data.ReadAt(chunk[:min(n, data.Len()-pos)], pos); err != nil {
				return err
			}
		}
		t.data = append(t.data, dataWrite{off: r.lcn * t.v.csize, b: chunk})
		pos += n
	}
	return nil
}

// sizes returns the allocated and data sizes of r's unnamed $DATA as the
// $FILE_NAME copies record them.
func (t *tx) sizes(r *record) (alloc, size uint64) {
	as, err := r.attrs()
	if err != nil {
		return 0, 0
	}
	d := find(as, atData, "")
	switch {
	case d == nil:
		return 0, 0
	case d.nonRes:
		return uint64(d.alloc), uint64(d.size)
	default:
		return uint64(align8(d.valLen)), uint64(d.valLen)
	}
}

// touch sets the modification time of r's $STANDARD_INFORMATION to mt and
// its change and access times to now.
func (t *tx) touch(r *record, mt, now uint64) error {
	as, err := r.attrs()
	if err != nil {
		return err
	}
	si := find(as, atStandardInformation, "")
	if si == nil || si.nonRes || si.valLen < 0x30 {
		return recErr(int64(r.num), 0, "no $STANDARD_INFORMATION")
	}
	val := r.value(si)
	put64(val, 0x08, mt)
	put64(val, 0x10, now)
	put64(val, 0x18, now)
	if !r.isDir() {
		put32(val, 0x20, u32(val, 0x20)|faArchive)
	}
	return nil
}

func (t *tx) touchDir(n uint64, now uint64) error {
	r, err := t.rec(n)
	if err != nil {
		return err
	}
	return t.touch(r, now, now)
}

// syncNames refreshes the $FILE_NAME attributes of r and their copies in
// the parent's $I30 (times, sizes, attributes) from $STANDARD_INFORMATION
// and $DATA, as Windows does when it closes a changed file.
func (t *tx) syncNames(r *record) error {
	as, err := r.attrs()
	if err != nil {
		return err
	}
	si := find(as, atStandardInformation, "")
	if si == nil || si.nonRes || si.valLen < 0x24 {
		return recErr(int64(r.num), 0, "no $STANDARD_INFORMATION")
	}
	sv := r.value(si)
	alloc, size := t.sizes(r)
	byParent := map[uint64]*dirIndex{}
	for _, a := range as {
		if a.typ != atFileName || a.nonRes || a.valLen < 0x42 {
			continue
		}
		fn := r.value(&a)
		copy(fn[0x08:0x28], sv[0x00:0x20])
		if !r.isDir() {
			put64(fn, 0x28, alloc)
			put64(fn, 0x30, size)
		}
		fa := u32(sv, 0x20) &^ (faDirectory | faIndexPresent)
		if r.isDir() {
			fa |= faIndexPresent
		}
		put32(fn, 0x38, fa)
		pn := refRecord(u64(fn, 0))
		d, ok := byParent[pn]
		if !ok {
			if d, err = t.openIndex(pn); err != nil {
				return err
			}
			byParent[pn] = d
		}
		if err := d.updateKey(keyName(fn), r.ref(), bytes.Clone(fn)); err != nil {
			return err
		}
	}
	for _, d := range byParent {
		if err := d.flush(); err != nil {
			return err
		}
	}
	return nil
}

// create makes a new file or directory record named name in parent and
// links it into the parent's index.
func (t *tx) create(parent *record, name string, dir bool, mt, now uint64) (*record, error) {
	v := t.v
	d, err := t.openIndex(parent.num)
	if err != nil {
		return nil, err
	}
	long := utf16.Encode([]rune(name))
	// Names: one WIN32_AND_DOS name for 8.3 names, else WIN32 plus a
	// generated DOS name unique in the directory.
	type fname struct {
		name []uint16
		ns   byte
	}
	names := []fname{{long, nsWin32AndDOS}}
	if !validDOSName(name) {
		names[0].ns = nsWin32
		var short []uint16
		for cand := range shortNames(name) {
			u := utf16.Encode([]rune(cand))
			_, _, ok, err := d.search(u, false)
			if err != nil {
				return nil, err
			}
			if !ok {
				short = u
				break
			}
		}
		if short == nil {
			return nil, fmt.Errorf("no free short name for %q", name)
		}
		names = append(names, fname{short, nsDOS})
	}
	secID, sd, err := t.security(parent, d, dir)
	if err != nil {
		return nil, err
	}
	num, seq, err := t.allocRecord()
	if err != nil {
		return nil, err
	}
	r := &record{num: num, b: emptyRecord(num, seq, v.recSize)}
	t.recs[num] = r
	flags := uint16(recInUse)
	if dir {
		flags |= recDirectory
	}
	put16(r.b, 0x16, flags)
	put16(r.b, 0x12, uint16(len(names)))
	si := make([]byte, 72)
	put64(si, 0x00, mt)
	put64(si, 0x08, mt)
	put64(si, 0x10, now)
	put64(si, 0x18, now)
	if !dir {
		put32(si, 0x20, faArchive)
	}
	put32(si, 0x34, secID)
	r.insertAttr(residentAttr(atStandardInformation, nil, si, 0))
	fa := uint32(faArchive)
	if dir {
		fa = faIndexPresent
	}
	var keys [][]byte
	for _, n := range names {
		fn := make([]byte, 0x42+2*len(n.name))
		put64(fn, 0, parent.ref())
		for o := 0x08; o < 0x28; o += 8 {
			put64(fn, o, now)
		}
		put64(fn, 0x08, mt)
		put64(fn, 0x10, mt)
		put32(fn, 0x38, fa)
		fn[0x40] = byte(len(n.name))
		fn[0x41] = n.ns
		for i, c := range n.name {
			put16(fn, 0x42+2*i, c)
		}
		if r.insertAttr(residentAttr(atFileName, nil, fn, 1)) < 0 {
			return nil, fmt.Errorf("name %q does not fit an MFT record", name)
		}
		keys = append(keys, fn)
	}
	if sd != nil {
		if r.insertAttr(residentAttr(atSecurityDescriptor, nil, sd, 0)) < 0 {
			return nil, fmt.Errorf("security descriptor does not fit an MFT record")
		}
	}
	if dir {
		root := make([]byte, 0x30)
		put32(root, 0, atFileName)
		put32(root, 4, collationFileName)
		put32(root, 8, uint32(d.bsize))
		if int64(d.bsize) >= v.csize {
			root[0x0C] = byte(int64(d.bsize) / v.csize)
		} else {
			root[0x0C] = byte(d.bsize / 512)
		}
		put32(root, 0x10, 0x10)
		put32(root, 0x14, 0x20)
		put32(root, 0x18, 0x20)
		put16(root, 0x20+8, 0x10)
		put16(root, 0x20+12, ieEnd)
		r.insertAttr(residentAttr(atIndexRoot, i30, root, 0))
	}
	for _, k := range keys {
		if err := d.insert(k, r.ref()); err != nil {
			return nil, err
		}
	}
	if err := d.flush(); err != nil {
		return nil, err
	}
	return r, nil
}

// security picks how a new file gets its access rights without touching
// $Secure: the security_id of a sibling of the same kind, else the
// parent's; on volumes without ids (fresh mkntfs) a resident descriptor
// copied from a sibling or the parent, else one granting Everyone full
// access (what ntfs-3g gives new files).
func (t *tx) security(parent *record, d *dirIndex, dir bool) (uint32, []byte, error) {
	key := parent.num << 1
	if dir {
		key |= 1
	}
	if c, ok := t.v.secCache[key]; ok {
		return c.id, c.sd, nil
	}
	id, sd, err := t.pickSecurity(parent, d, dir)
	if err == nil {
		t.v.secCache[key] = secChoice{id, sd}
	}
	return id, sd, err
}

func (t *tx) pickSecurity(parent *record, d *dirIndex, dir bool) (uint32, []byte, error) {
	var sid uint32
	var sd []byte
	seen := 0
	look := func(r *record) {
		as, err := r.attrs()
		if err != nil {
			return
		}
		if si := find(as, atStandardInformation, ""); si != nil && !si.nonRes && si.valLen >= 0x38 && sid == 0 {
			sid = u32(r.value(si), 0x34)
		}
		if s := find(as, atSecurityDescriptor, ""); s != nil && !s.nonRes && s.valLen <= 512 && sd == nil {
			sd = bytes.Clone(r.value(s))
		}
	}
	err := d.each(func(e *ientry) bool {
		seen++
		if n := refRecord(e.ref); n >= firstUserRecord || parent.num != recRoot {
			if fa := u32(e.key, 0x38); (fa&faIndexPresent != 0) == dir {
				if r, err := t.peek(n); err == nil && r.inUse() {
					look(r)
				}
			}
		}
		return sid == 0 && seen < 64
	})
	if err != nil {
		return 0, nil, err
	}
	if sid == 0 {
		look(parent)
	}
	if sid != 0 {
		return sid, nil, nil
	}
	if sd == nil {
		sd = everyoneSD(dir)
	}
	return 0, sd, nil
}

// everyoneSD builds a self-relative security descriptor: owner
// Administrators, group SYSTEM, a DACL granting Everyone full control
// (inherited by children for directories).
func everyoneSD(dir bool) []byte {
	sid := func(auth byte, subs ...uint32) []byte {
		b := make([]byte, 8+4*len(subs))
		b[0], b[1], b[7] = 1, byte(len(subs)), auth
		for i, s := range subs {
			put32(b, 8+4*i, s)
		}
		return b
	}
	owner, group, everyone := sid(5, 32, 544), sid(5, 18), sid(1, 0)
	ace := make([]byte, 8, 8+len(everyone))
	ace[0] = 0 // ACCESS_ALLOWED
	if dir {
		ace[1] = 0x03 // object and container inherit
	}
	put32(ace, 4, 0x1F01FF)
	ace = append(ace, everyone...)
	put16(ace, 2, uint16(len(ace)))
	acl := make([]byte, 8, 8+len(ace))
	acl[0] = 2
	put16(acl, 4, 1)
	acl = append(acl, ace...)
	put16(acl, 2, uint16(len(acl)))
	b := make([]byte, 20)
	b[0] = 1
	put16(b, 2, 0x8004) // self-relative, DACL present
	put32(b, 4, 20)
	put32(b, 8, uint32(20+len(owner)))
	put32(b, 16, uint32(20+len(owner)+len(group)))
	b = append(b, owner...)
	b = append(b, group...)
	return append(b, acl...)
}

// allocRecord takes a free MFT record, growing $MFT when none is left.
func (t *tx) allocRecord() (uint64, uint16, error) {
	v := t.v
	for pass := 0; pass < 2; pass++ {
		for i := int64(firstUserRecord); i < v.mftRecs; i++ {
			if v.mftBitmap[i>>3] == 0xFF {
				i |= 7
				continue
			}
			if bit(v.mftBitmap, i) {
				continue
			}
			if r, ok := t.recs[uint64(i)]; ok && r.inUse() {
				continue
			}
			seq := uint16(1)
			if r, ok := t.recs[uint64(i)]; ok {
				seq = max(1, r.seq())
			} else if old, err := v.record(uint64(i)); err == nil {
				if u16(old.b, 0x16)&recInUse != 0 {
					return 0, 0, recErr(i, 0x16, "record is in use but free in $MFT's $BITMAP; run chkdsk")
				}
				if s := u16(old.b, 0x10); s != 0 {
					seq = s
				}
			}
			t.setBitmap(true, i, true)
			return uint64(i), seq, nil
		}
		if pass == 0 {
			if err := t.growMFT(); err != nil {
				return 0, 0, err
			}
		}
	}
	return 0, 0, errors.New("no free MFT record after growing $MFT")
}

// growMFT extends $MFT's $DATA (and its $BITMAP when needed) by a batch of
// formatted, unused records, next to the current end of $MFT when
// possible (the MFT zone exists for this).
func (t *tx) growMFT() error {
	v := t.v
	per := max(1, v.csize/int64(v.recSize))
	clusters := max(1, 256/per)
	last := v.mftRuns[len(v.mftRuns)-1]
	add, err := t.allocMFTClusters(clusters, last.lcn+last.n)
	if err != nil {
		return fmt.Errorf("growing $MFT: %w", err)
	}
	mft, err := t.rec(recMFT)
	if err != nil {
		return err
	}
	as, err := mft.attrs()
	if err != nil {
		return err
	}
	d := find(as, atData, "")
	runs := appendRuns(append([]run(nil), v.mftRuns...), add...)
	enc := encodeRuns(runs)
	ro := d.runsOff - d.off
	if !mft.resizeAttr(d.off, align8(ro+len(enc))) {
		return refused("$MFT is too fragmented to grow without an $ATTRIBUTE_LIST")
	}
	copy(mft.b[d.off+ro:], enc)
	total := runClusters(runs)
	oldRecs := v.mftRecs
	newRecs := total * v.csize / int64(v.recSize)
	put64(mft.b, d.off+0x18, uint64(total-1))
	put64(mft.b, d.off+0x28, uint64(total*v.csize))
	put64(mft.b, d.off+0x30, uint64(newRecs*int64(v.recSize)))
	put64(mft.b, d.off+0x38, uint64(newRecs*int64(v.recSize)))
	v.mftRuns, v.mftRecs = runs, newRecs
	for i := oldRecs; i < newRecs; i++ {
		t.recs[uint64(i)] = &record{num: uint64(i), b: emptyRecord(uint64(i), 0, v.recSize)}
		t.fresh[uint64(i)] = true
	}
	// $MFT's $BITMAP: data size covers the records (in 8-byte steps).
	as, err = mft.attrs()
	if err != nil {
		return err
	}
	bm := find(as, atBitmap, "")
	want := int64(align8(int((newRecs + 7) / 8)))
	if want > bm.alloc {
		bruns, err := v.runs(mft, bm)
		if err != nil {
			return err
		}
		more := (want - bm.alloc + v.csize - 1) / v.csize
		last := bruns[len(bruns)-1]
		extra, err := t.allocClusters(more, last.lcn+last.n)
		if err != nil {
			return fmt.Errorf("growing $MFT's bitmap: %w", err)
		}
		bruns = appendRuns(bruns, extra...)
		benc := encodeRuns(bruns)
		bro := bm.runsOff - bm.off
		if !mft.resizeAttr(bm.off, align8(bro+len(benc))) {
			return refused("$MFT record is full: its bitmap cannot grow")
		}
		copy(mft.b[bm.off+bro:], benc)
		bc := runClusters(bruns)
		put64(mft.b, bm.off+0x18, uint64(bc-1))
		put64(mft.b, bm.off+0x28, uint64(bc*v.csize))
		grown := make([]byte, bc*v.csize)
		copy(grown, v.mftBitmap)
		v.mftBitmap, v.mbmRuns = grown, bruns
		// The new bitmap clusters hold garbage on disk: write them whole.
		for p := bm.alloc / 512; p < bc*v.csize/512; p++ {
			t.mbDirt[p] = true
		}
	}
	if want > bm.size {
		put64(mft.b, bm.off+0x30, uint64(want))
		put64(mft.b, bm.off+0x38, uint64(want))
		for p := bm.size / 512; p <= (want-1)/512; p++ {
			t.mbDirt[p] = true
		}
	}
	return nil
}

// allocMFTClusters prefers the clusters right after $MFT, then the MFT
// zone, then anywhere.
func (t *tx) allocMFTClusters(n, near int64) ([]run, error) {
	v := t.v
	ok := true
	for c := near; c < near+n; c++ {
		if c >= v.clusters || bit(v.bitmap, c) {
			ok = false
			break
		}
	}
	if ok {
		for c := near; c < near+n; c++ {
			t.setBitmap(false, c, true)
		}
		return []run{{near, n}}, nil
	}
	for c := v.zoneStart; c+n <= v.zoneEnd; c++ {
		s := c
		for c < s+n && !bit(v.bitmap, c) {
			c++
		}
		if c == s+n {
			for x := s; x < s+n; x++ {
				t.setBitmap(false, x, true)
			}
			return []run{{s, n}}, nil
		}
	}
	return t.allocClusters(n, -1)
}

// Mkdir creates the directory p; its parent must exist.
func (fs *FS) Mkdir(p string, mtime time.Time) error {
	return fs.do("mkdir", p, func(t *tx) error {
		parts := splitPath(p)
		if len(parts) == 0 {
			return iofs.ErrExist
		}
		name := parts[len(parts)-1]
		if err := validName(name); err != nil {
			return err
		}
		parent, err := t.walk(parts[:len(parts)-1])
		if err != nil {
			return fmt.Errorf("parent directory: %w", err)
		}
		_, _, found, err := t.lookup(parent, utf16.Encode([]rune(name)))
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

// FreeBytes is the free space of a writable volume by $Bitmap, or -1 when
// the volume cannot be written (read-only, or refused by the guard rails).
func (fs *FS) FreeBytes() int64 {
	v, err := fs.writable()
	if err != nil {
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
