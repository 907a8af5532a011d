package fat32

import (
	"encoding/binary"
	"fmt"
)

// dir is a directory held in memory: its raw entries and indexes over them.
type dir struct {
	cluster    uint32 // first cluster
	chain      []uint32
	data       []byte // every 32-byte slot of the chain
	end        int    // index of the first never-used slot (0x00)
	deleted    int    // deleted slots before end that could be reused
	dirty      bool
	entries    map[int]*dirEntry    // by slot of the short entry
	byName     map[string]*dirEntry // upper-cased long and short names
	shortNames map[shortName]bool
	nextTail   map[string]int // next ~N to try per 8.3 basis
	label      []byte         // root only: the volume label entry
}

// dirEntry is one visible entry (file or subdirectory).
type dirEntry struct {
	name    string // long name, or the short name as displayed
	short   shortName
	ntRes   byte
	attr    byte
	cluster uint32
	size    uint32
	mtime   timeValue
	slot    int // slot of the short entry
	first   int // slot of the first long-name slot (== slot without one)
}

// dir returns the directory whose chain starts at cluster, reading it once.
func (fs *FS) dir(cluster uint32) (*dir, error) {
	if d, ok := fs.dirs[cluster]; ok {
		return d, nil
	}
	chain, err := fs.chain(cluster)
	if err != nil {
		return nil, err
	}
	if int64(len(chain))*fs.csize > maxDirEntries*dirEntrySize {
		return nil, &FormatError{fs.clusterOffset(cluster) - fs.off, fmt.Sprintf("directory of %d clusters exceeds the FAT limit of %d entries", len(chain), maxDirEntries)}
	}
	data, err := fs.readClusters(chain)
	if err != nil {
		return nil, err
	}
	d := &dir{cluster: cluster, chain: chain, data: data, entries: map[int]*dirEntry{},
		byName: map[string]*dirEntry{}, shortNames: map[shortName]bool{}, nextTail: map[string]int{}}
	if err := d.parse(fs); err != nil {
		return nil, err
	}
	fs.dirs[cluster] = d
	return d, nil
}

func (d *dir) slots() int { return len(d.data) / dirEntrySize }

func (d *dir) slot(i int) []byte { return d.data[i*dirEntrySize : (i+1)*dirEntrySize] }

// parse indexes the raw entries. Long-name slots whose sequence or checksum
// does not match the short entry are ignored, as Windows does.
func (d *dir) parse(fs *FS) error {
	lfn := newLFNRun()
	d.end = d.slots()
	for i := 0; i < d.slots(); i++ {
		e := d.slot(i)
		switch {
		case e[0] == 0x00:
			d.end = i
			return nil
		case e[0] == 0xE5:
			d.deleted++
			lfn.reset()
			continue
		case e[11]&0x3F == attrLongName:
			lfn.add(e, i)
			continue
		}
		var s shortName
		copy(s[:], e[:11])
		attr := e[11]
		if attr&attrVolumeID != 0 && attr&attrDirectory == 0 {
			if d.cluster == fs.bs.RootCluster && d.label == nil {
				d.label = append([]byte{}, e[:11]...)
			}
			lfn.reset()
			continue
		}
		if s[0] == '.' && (string(s[:]) == ".          " || string(s[:]) == "..         ") {
			lfn.reset()
			continue
		}
		ent := &dirEntry{
			short:   s,
			ntRes:   e[12],
			attr:    attr,
			cluster: uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:])),
			size:    binary.LittleEndian.Uint32(e[28:]),
			mtime:   timeValue{date: binary.LittleEndian.Uint16(e[24:]), time: binary.LittleEndian.Uint16(e[22:])},
			slot:    i,
			first:   i,
		}
		if name, start, ok := lfn.name(s); ok {
			ent.name, ent.first = name, start
		} else {
			ent.name = s.display(ent.ntRes)
		}
		if ent.cluster != 0 && !fs.validCluster(ent.cluster) {
			return &FormatError{fs.clusterOffset(d.chain[i*dirEntrySize/int(fs.csize)]) - fs.off + int64(i*dirEntrySize)%fs.csize,
				fmt.Sprintf("entry %q points at invalid cluster %d", ent.name, ent.cluster)}
		}
		d.index(ent)
	}
	return nil
}

func (d *dir) index(e *dirEntry) {
	d.entries[e.slot] = e
	d.byName[upperKey(e.name)] = e
	if k := upperKey(e.short.display(0)); d.byName[k] == nil {
		d.byName[k] = e
	}
	d.shortNames[e.short] = true
}

func (d *dir) unindex(e *dirEntry) {
	delete(d.entries, e.slot)
	if d.byName[upperKey(e.name)] == e {
		delete(d.byName, upperKey(e.name))
	}
	if k := upperKey(e.short.display(0)); d.byName[k] == e {
		delete(d.byName, k)
	}
	delete(d.shortNames, e.short)
}

// chooseShortName returns a unique 8.3 name for name, and whether a long
// name entry is needed.
func (d *dir) chooseShortName(name string) (shortName, byte, bool, error) {
	c := makeShortCandidate(name)
	if !c.lossy {
		if s := c.withTail(0); !d.shortNames[s] {
			if c.exact {
				return s, c.ntRes, false, nil
			}
			return s, 0, true, nil
		}
	}
	basis := string(c.base) + "." + string(c.ext)
	for n := max(d.nextTail[basis], 1); n < 1000000; n++ {
		s := c.withTail(n)
		if !d.shortNames[s] && d.byName[upperKey(s.display(0))] == nil {
			d.nextTail[basis] = n + 1
			return s, 0, true, nil
		}
	}
	return shortName{}, 0, false, fmt.Errorf("no free 8.3 name for %q", name)
}

// reserve finds n consecutive free slots, growing the directory by a cluster
// when needed, and returns the first.
func (fs *FS) reserve(d *dir, n int) (int, error) {
	if d.deleted >= n {
		run := 0
		for i := 0; i < d.end; i++ {
			if d.data[i*dirEntrySize] != 0xE5 {
				run = 0
				continue
			}
			run++
			if run == n {
				d.deleted -= n
				return i - n + 1, nil
			}
		}
	}
	for d.end+n > d.slots() {
		if (d.slots() + int(fs.csize)/dirEntrySize) > maxDirEntries {
			return 0, fmt.Errorf("directory is full (%d entries is the FAT limit)", maxDirEntries)
		}
		c, err := fs.allocate(1)
		if err != nil {
			return 0, err
		}
		fs.setEntry(d.chain[len(d.chain)-1], c[0])
		d.chain = append(d.chain, c[0])
		d.data = append(d.data, make([]byte, fs.csize)...)
	}
	i := d.end
	d.end += n
	return i, nil
}

// add writes a new entry with the given short-entry template into d.
func (fs *FS) add(d *dir, name string, attr byte, cluster, size uint32, mtime timeValue) (*dirEntry, error) {
	if d.byName[upperKey(name)] != nil {
		return nil, fmt.Errorf("%q already exists", name)
	}
	short, ntRes, needLFN, err := d.chooseShortName(name)
	if err != nil {
		return nil, err
	}
	var lfn [][dirEntrySize]byte
	if needLFN {
		lfn = encodeLFN(name, short.checksum())
	}
	first, err := fs.reserve(d, len(lfn)+1)
	if err != nil {
		return nil, err
	}
	for i, s := range lfn {
		copy(d.slot(first+i), s[:])
	}
	e := &dirEntry{name: name, short: short, ntRes: ntRes, attr: attr, cluster: cluster, size: size,
		mtime: mtime, slot: first + len(lfn), first: first}
	if !needLFN {
		e.name = short.display(ntRes)
	}
	d.encode(e)
	d.index(e)
	d.dirty = true
	return e, nil
}

// encode writes e's short entry into its slot.
func (d *dir) encode(e *dirEntry) {
	b := d.slot(e.slot)
	clear(b)
	copy(b[:11], e.short[:])
	b[11] = e.attr
	b[12] = e.ntRes
	le := binary.LittleEndian
	b[13] = e.mtime.tenths
	le.PutUint16(b[14:], e.mtime.time)
	le.PutUint16(b[16:], e.mtime.date)
	le.PutUint16(b[18:], e.mtime.date)
	le.PutUint16(b[20:], uint16(e.cluster>>16))
	le.PutUint16(b[22:], e.mtime.time)
	le.PutUint16(b[24:], e.mtime.date)
	le.PutUint16(b[26:], uint16(e.cluster))
	le.PutUint32(b[28:], e.size)
}

// remove marks e's slots deleted.
func (d *dir) remove(e *dirEntry) {
	for i := e.first; i <= e.slot; i++ {
		d.data[i*dirEntrySize] = 0xE5
		d.deleted++
	}
	d.unindex(e)
	d.dirty = true
}

// isEmpty reports whether the directory holds nothing but "." and "..".
func (d *dir) isEmpty() bool { return len(d.entries) == 0 }

// initDir fills a new directory cluster with "." and "..".
func initDir(data []byte, self, parent uint32, t timeValue) {
	mk := func(b []byte, name string, c uint32) {
		copy(b[:11], name)
		b[11] = attrDirectory
		binary.LittleEndian.PutUint16(b[14:], t.time)
		binary.LittleEndian.PutUint16(b[16:], t.date)
		binary.LittleEndian.PutUint16(b[18:], t.date)
		binary.LittleEndian.PutUint16(b[20:], uint16(c>>16))
		binary.LittleEndian.PutUint16(b[22:], t.time)
		binary.LittleEndian.PutUint16(b[24:], t.date)
		binary.LittleEndian.PutUint16(b[26:], uint16(c))
	}
	mk(data[0:32], ".          ", self)
	mk(data[32:64], "..         ", parent)
}
