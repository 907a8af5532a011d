package ntfs

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// The writer's own read path: when the volume is open for writing, Stat
// and ReadDir answer from the writer's caches and B+tree descent instead of
// go-ntfs, which would have to be reopened after every write and reads
// directories linearly.

func fromNT(t uint64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(t-ntfsEpochDelta)*100).UTC()
}

// ownStat is Stat through the writer.
func (fs *FS) ownStat(v *vol, p string) (*FileInfo, error) {
	t := v.begin()
	defer t.abort()
	parts := splitPath(p)
	if len(parts) == 0 {
		return &FileInfo{name: "/", dir: true}, nil
	}
	parent, err := t.walk(parts[:len(parts)-1])
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, iofs.ErrNotExist
		}
		return nil, err
	}
	ref, key, found, err := t.lookup(parent, utf16.Encode([]rune(parts[len(parts)-1])))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, iofs.ErrNotExist
	}
	r, err := t.peek(refRecord(ref))
	if err != nil {
		return nil, err
	}
	fi := &FileInfo{name: string(utf16.Decode(keyName(key))), dir: r.isDir()}
	as, err := r.attrs()
	if err != nil {
		return nil, err
	}
	// Report the long name when the lookup matched the DOS one.
	if key[0x41] == nsDOS {
		for _, a := range as {
			if a.typ == atFileName && !a.nonRes && a.valLen >= 0x42 && r.value(&a)[0x41] != nsDOS {
				fi.name = string(utf16.Decode(keyName(r.value(&a))))
			}
		}
	}
	if si := find(as, atStandardInformation, ""); si != nil && !si.nonRes && si.valLen >= 0x10 {
		fi.modTime = fromNT(u64(r.value(si), 0x08))
	}
	_, size := t.sizes(r)
	if !fi.dir {
		fi.size = int64(size)
	}
	return fi, nil
}

// ownReadDir is ReadDir through the writer.
func (fs *FS) ownReadDir(v *vol, p string) ([]*FileInfo, error) {
	t := v.begin()
	defer t.abort()
	dir, err := t.walk(splitPath(p))
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return nil, iofs.ErrNotExist
		}
		return nil, err
	}
	d, err := t.openIndex(dir.num)
	if err != nil {
		return nil, err
	}
	var list []*FileInfo
	err = d.each(func(e *ientry) bool {
		if e.key[0x41] == nsDOS {
			return true
		}
		name := string(utf16.Decode(keyName(e.key)))
		// The root's metadata files ($MFT … $Extend) are records 0..15;
		// a user's file may start with "$" ($LDR$, $WIN_NT$.~BT).
		if dir.num == recRoot && refRecord(e.ref) < 16 {
			return true
		}
		isDir := u32(e.key, 0x38)&faIndexPresent != 0
		fi := &FileInfo{name: name, dir: isDir, modTime: fromNT(u64(e.key, 0x10))}
		if !isDir {
			fi.size = int64(u64(e.key, 0x30))
		}
		list = append(list, fi)
		return true
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(a, b int) bool { return strings.ToLower(list[a].name) < strings.ToLower(list[b].name) })
	return list, nil
}

// own returns the package's reader when it can read the volume.
func (fs *FS) own() *vol { return fs.reader() }

// errFallback makes OpenFile use go-ntfs for files whose data this
// package does not decode (compressed, encrypted, attribute lists).
var errFallback = errors.New("ntfs: not a plain file")

// ownOpen opens the unnamed data stream of p through the package's reader.
func (fs *FS) ownOpen(v *vol, p string) (*File, error) {
	fi, err := fs.ownStat(v, p)
	if err != nil {
		return nil, err
	}
	if fi.dir {
		return nil, errors.New("is a directory")
	}
	t := v.begin()
	defer t.abort()
	parts := splitPath(p)
	parent, err := t.walk(parts[:len(parts)-1])
	if err != nil {
		return nil, err
	}
	ref, _, _, err := t.lookup(parent, utf16.Encode([]rune(parts[len(parts)-1])))
	if err != nil {
		return nil, err
	}
	r, err := t.peek(refRecord(ref))
	if err != nil {
		return nil, err
	}
	as, err := r.attrs()
	if err != nil {
		return nil, err
	}
	if find(as, atAttributeList, "") != nil {
		return nil, errFallback
	}
	d := find(as, atData, "")
	switch {
	case d == nil:
		return &File{r: bytes.NewReader(nil), size: 0, info: fi}, nil
	case d.flags&(attrCompressed|attrEncrypted) != 0:
		return nil, errFallback
	case !d.nonRes:
		b := bytes.Clone(r.value(d))
		return &File{r: bytes.NewReader(b), size: int64(len(b)), info: fi}, nil
	}
	runs, err := v.runs(r, d)
	if err != nil {
		return nil, err
	}
	if d.size > runClusters(runs)*v.csize {
		return nil, recErr(int64(r.num), d.off, "data size %d exceeds the runlist", d.size)
	}
	return &File{r: &runReader{v: v, runs: runs, init: d.init}, size: d.size, info: fi}, nil
}

// runReader reads a non-resident stream; holes and bytes past the
// initialized size read as zeros.
type runReader struct {
	v    *vol
	runs []run
	init int64
}

func (rr *runReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		vcn, in := pos/rr.v.csize, pos%rr.v.csize
		var lcn, left int64 = -2, 0
		for _, r := range rr.runs {
			if vcn < r.n {
				lcn, left = r.lcn, r.n-vcn
				if r.lcn >= 0 {
					lcn = r.lcn + vcn
				}
				break
			}
			vcn -= r.n
		}
		if lcn == -2 {
			return n, io.EOF
		}
		chunk := min(int64(len(p)-n), left*rr.v.csize-in)
		dst := p[n : n+int(chunk)]
		switch {
		case lcn < 0 || pos >= rr.init:
			clear(dst)
		default:
			if pos+chunk > rr.init {
				clear(dst[rr.init-pos:])
				dst = dst[:rr.init-pos]
			}
			if err := rr.v.readAt(dst, lcn*rr.v.csize+in); err != nil {
				return n, err
			}
		}
		n += int(chunk)
	}
	return n, nil
}
