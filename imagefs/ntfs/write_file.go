package ntfs

// Writing a file's data: the $DATA attribute resident or in runs, the
// queued cluster writes, sizes and times in the record and in every
// directory entry that names it.

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
)

// entry resolves the last element of parts for a write: its name
// (checked), its parent directory and the entry already there, if any.
// parts must not be empty.
func (t *tx) entry(parts []string) (name string, parent *record, ref uint64, found bool, err error) {
	name = parts[len(parts)-1]
	if err := validName(name); err != nil {
		return "", nil, 0, false, err
	}
	parent, err = t.walk(parts[:len(parts)-1])
	if err != nil {
		return "", nil, 0, false, fmt.Errorf("parent directory: %w", err)
	}
	ref, _, found, err = t.lookup(parent, utf16.Encode([]rune(name)))
	return name, parent, ref, found, err
}

func (t *tx) writeFile(p string, data fileData, mtime time.Time) error {
	parts := splitPath(p)
	if len(parts) == 0 {
		return errors.New("the root directory cannot be replaced")
	}
	name, parent, ref, found, err := t.entry(parts)
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
		// The new sizes go into the directory's index entry too.
		d, err := t.openIndex(parent.num)
		if err != nil {
			return err
		}
		if err := d.editable(); err != nil {
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
		if !setRuns(r, d, keep, v.csize, size, size) {
			return refused("%s is too fragmented: its runlist (%d bytes) no longer fits MFT record %d and would need an $ATTRIBUTE_LIST", name, len(enc), r.num)
		}
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
