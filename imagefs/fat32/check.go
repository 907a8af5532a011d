package fat32

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
)

// Severities of a Finding.
const (
	SeverityError   = "error"   // data is lost or will be damaged by the next write
	SeverityWarning = "warning" // a hint or count is stale; nothing is lost
)

// Finding is one inconsistency Check found. Offset is a byte offset in the
// volume (0 is the boot sector); Path names the file or directory inside
// the volume when the finding belongs to one.
type Finding struct {
	Severity  string
	Structure string // "boot sector", "FSInfo", "FAT", "directory entry", "cluster chain"
	Offset    int64
	Path      string
	Message   string
}

// maxFindingsPerKind bounds the findings of one kind, so that a volume
// whose FAT was overwritten gives a readable report, not millions of lines.
const maxFindingsPerKind = 50

// checker holds the state of one Check run.
type checker struct {
	ctx    context.Context
	fs     *FS
	out    []Finding
	kinds  map[string]int
	owner  []uint32 // per cluster: 0 unowned, else 1 + index into paths
	paths  []string
	nDirs  int
	budget int // directory entries left to visit; bounds work on garbage
}

func (c *checker) add(sev, structure string, off int64, path, format string, a ...any) {
	c.kinds[structure]++
	if n := c.kinds[structure]; n > maxFindingsPerKind {
		return
	}
	c.out = append(c.out, Finding{Severity: sev, Structure: structure, Offset: off, Path: path, Message: fmt.Sprintf(format, a...)})
}

// Check reads the FAT32 file system in [off, off+size) of r and reports
// its inconsistencies, as fsck.fat -n and chkdsk do without repairing:
// a backup boot sector that differs, FSInfo signatures, a stale free
// count or an out-of-range next-free hint, FAT copies that differ, lost
// clusters, cross-linked chains, chains that end in a free or bad cluster
// or are shorter or longer than the file size, directory entries pointing
// outside the volume, and bad "." and ".." entries. It never writes.
//
// The error is non-nil only when the volume cannot be checked at all (the
// boot sector is unreadable or not FAT32) or ctx is cancelled (polled per
// directory and per MiB of FAT); damage is reported as findings.
func Check(ctx context.Context, r io.ReaderAt, off, size int64) ([]Finding, error) {
	fs, err := Open(readOnlyDev{r}, off, size, true)
	if err != nil {
		return nil, err
	}
	c := &checker{ctx: ctx, fs: fs, kinds: map[string]int{}, owner: make([]uint32, len(fs.fat)), budget: 1 << 24}
	c.checkBoot()
	c.checkFATCopies()
	c.walkRoot()
	c.checkLost()
	c.checkFSInfo()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for k, n := range c.kinds {
		if n > maxFindingsPerKind {
			c.out = append(c.out, Finding{Severity: SeverityError, Structure: k, Offset: 0,
				Message: fmt.Sprintf("%d more findings of this kind not listed", n-maxFindingsPerKind)})
		}
	}
	return c.out, nil
}

// readOnlyDev lets Open take a plain io.ReaderAt; Check never writes.
type readOnlyDev struct{ io.ReaderAt }

func (readOnlyDev) WriteAt([]byte, int64) (int, error) { return 0, ErrReadOnly }

func (c *checker) read(b []byte, volOff int64) error {
	_, err := c.fs.dev.ReadAt(b, c.fs.off+volOff)
	return err
}

func (c *checker) checkBoot() {
	bs := c.fs.bs
	if bs.BackupBootSector == 0 || bs.BackupBootSector >= bs.ReservedSectors {
		if bs.BackupBootSector != 0 {
			c.add(SeverityError, "boot sector", 0x32, "", "backup boot sector %d lies outside the %d reserved sectors", bs.BackupBootSector, bs.ReservedSectors)
		}
		return
	}
	ss := int64(bs.BytesPerSector)
	a, b := make([]byte, 512), make([]byte, 512)
	if c.read(a, 0) != nil || c.read(b, int64(bs.BackupBootSector)*ss) != nil {
		c.add(SeverityError, "boot sector", int64(bs.BackupBootSector)*ss, "", "backup boot sector unreadable")
		return
	}
	if !bytes.Equal(a, b) {
		i := 0
		for a[i] == b[i] {
			i++
		}
		c.add(SeverityWarning, "boot sector", int64(bs.BackupBootSector)*ss+int64(i), "", "backup boot sector (sector %d) differs from the boot sector at byte 0x%x", bs.BackupBootSector, i)
	}
}

func (c *checker) checkFSInfo() {
	bs := c.fs.bs
	if bs.FSInfoSector == 0 || bs.FSInfoSector >= bs.ReservedSectors {
		c.add(SeverityError, "FSInfo", 0x30, "", "FSInfo sector %d lies outside the %d reserved sectors", bs.FSInfoSector, bs.ReservedSectors)
		return
	}
	base := int64(bs.FSInfoSector) * int64(bs.BytesPerSector)
	b := make([]byte, 512)
	if err := c.read(b, base); err != nil {
		c.add(SeverityError, "FSInfo", base, "", "unreadable: %v", err)
		return
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != fsInfoLeadSig || le.Uint32(b[484:]) != fsInfoStructSig || le.Uint32(b[508:]) != fsInfoTrailSig {
		c.add(SeverityError, "FSInfo", base, "", "signatures 0x%08x/0x%08x/0x%08x, want 0x%08x/0x%08x/0x%08x",
			le.Uint32(b[0:]), le.Uint32(b[484:]), le.Uint32(b[508:]), fsInfoLeadSig, fsInfoStructSig, fsInfoTrailSig)
		return
	}
	free := c.fs.freeCount
	if got := le.Uint32(b[488:]); got != 0xFFFFFFFF && got != free {
		c.add(SeverityWarning, "FSInfo", base+488, "", "free cluster count %d, the FAT has %d free clusters", got, free)
	}
	if hint := le.Uint32(b[492:]); hint != 0xFFFFFFFF && (hint < 2 || hint >= uint32(len(c.fs.fat))) {
		c.add(SeverityWarning, "FSInfo", base+492, "", "next free cluster hint %d outside 2..%d", hint, len(c.fs.fat)-1)
	}
}

// checkFATCopies compares every copy of the FAT with the active one when
// the FATs are mirrored (the normal case); a difference is what a crash
// between the writes of two copies leaves.
func (c *checker) checkFATCopies() {
	bs := c.fs.bs
	if !bs.mirrored() || bs.NumFATs < 2 {
		return
	}
	n := int64(len(c.fs.fat)) * 4
	const chunk = 1 << 20
	a, b := make([]byte, chunk), make([]byte, chunk)
	for i := 1; i < int(bs.NumFATs); i++ {
		diff, first := int64(0), int64(-1)
		for pos := int64(0); pos < n; pos += chunk {
			if c.ctx.Err() != nil {
				return
			}
			m := min(chunk, n-pos)
			if c.read(a[:m], bs.fatStart(0)+pos) != nil || c.read(b[:m], bs.fatStart(i)+pos) != nil {
				c.add(SeverityError, "FAT", bs.fatStart(i)+pos, "", "FAT copy %d unreadable", i+1)
				break
			}
			if bytes.Equal(a[:m], b[:m]) {
				continue
			}
			for j := int64(0); j < m; j += 4 {
				if !bytes.Equal(a[j:j+4], b[j:j+4]) {
					diff++
					if first < 0 {
						first = pos + j
					}
				}
			}
		}
		if diff > 0 {
			// Entries 0 and 1 hold the media byte and dirty flags,
			// which Windows keeps only in the first copy.
			if diff <= 1 && first == 4 {
				continue
			}
			c.add(SeverityError, "FAT", bs.fatStart(i)+first, "", "FAT copy %d differs from copy 1 in %d entries, first at cluster %d", i+1, diff, first/4)
		}
	}
}

// entryOff returns the volume byte offset of directory slot i in a
// directory whose chain is chain.
func (c *checker) entryOff(chain []uint32, i int) int64 {
	pos := int64(i) * dirEntrySize
	ci := pos / c.fs.csize
	if ci >= int64(len(chain)) {
		return 0
	}
	return c.fs.clusterOffset(chain[ci]) - c.fs.off + pos%c.fs.csize
}

func (c *checker) fatOff(cl uint32) int64 { return c.fs.bs.fatStart(0) + int64(cl)*4 }

// follow walks the chain from first for path, claiming each cluster. It
// stops at an end mark, at a cluster already claimed (cross-link or loop),
// at a free or bad cluster or outside the volume, reporting each. It
// returns the clusters claimed.
func (c *checker) follow(first uint32, path string, entOff int64) []uint32 {
	c.paths = append(c.paths, path)
	id := uint32(len(c.paths))
	var chain []uint32
	cl := first
	for {
		if !c.fs.validCluster(cl) {
			if len(chain) == 0 {
				c.add(SeverityError, "directory entry", entOff, path, "first cluster %d lies outside the volume (clusters 2..%d)", cl, len(c.fs.fat)-1)
			} else {
				c.add(SeverityError, "cluster chain", c.fatOff(chain[len(chain)-1]), path, "cluster %d links to %d, outside the volume", chain[len(chain)-1], cl)
			}
			return chain
		}
		if o := c.owner[cl]; o != 0 {
			if o == id {
				c.add(SeverityError, "cluster chain", c.fatOff(chain[len(chain)-1]), path, "cluster chain loops back to cluster %d", cl)
			} else {
				c.add(SeverityError, "cluster chain", c.fatOff(cl), path, "cross-linked: cluster %d also belongs to %s", cl, c.paths[o-1])
			}
			return chain
		}
		next := c.fs.entry(cl)
		if next == 0 || next == badCluster {
			what := "free"
			if next == badCluster {
				what = "marked bad"
			}
			if len(chain) == 0 {
				c.add(SeverityError, "directory entry", entOff, path, "first cluster %d is %s in the FAT", cl, what)
			} else {
				c.add(SeverityError, "cluster chain", c.fatOff(chain[len(chain)-1]), path, "chain reaches cluster %d, which is %s", cl, what)
			}
			return chain
		}
		c.owner[cl] = id
		chain = append(chain, cl)
		if next >= eocMin {
			return chain
		}
		cl = next
	}
}

func (c *checker) walkRoot() {
	root := c.fs.bs.RootCluster
	chain := c.follow(root, "/", 0x2C)
	c.walkDir(chain, root, 0, "/", 0)
}

// walkDir checks the entries of the directory whose clusters are chain.
func (c *checker) walkDir(chain []uint32, self, parent uint32, dirPath string, depth int) {
	if len(chain) == 0 || c.ctx.Err() != nil {
		return
	}
	c.nDirs++
	if depth > 128 {
		c.add(SeverityError, "directory entry", c.entryOff(chain, 0), dirPath, "directories nested more than 128 levels deep")
		return
	}
	if int64(len(chain))*c.fs.csize > maxDirEntries*dirEntrySize {
		c.add(SeverityError, "directory entry", c.entryOff(chain, 0), dirPath, "directory of %d clusters exceeds the FAT limit of %d entries", len(chain), maxDirEntries)
		chain = chain[:maxDirEntries*dirEntrySize/c.fs.csize]
	}
	data, err := c.fs.readClusters(chain)
	if err != nil {
		c.add(SeverityError, "directory entry", c.entryOff(chain, 0), dirPath, "directory unreadable: %v", err)
		return
	}
	isRoot := self == c.fs.bs.RootCluster && dirPath == "/"
	slots := len(data) / dirEntrySize
	if !isRoot {
		c.checkDots(data, chain, self, parent, dirPath)
	}
	type sub struct {
		chain   []uint32
		cluster uint32
		path    string
		entOff  int64
	}
	var subs []sub
	lfn := newLFNRun()
	for i := 0; i < slots; i++ {
		if c.budget--; c.budget < 0 {
			return
		}
		e := data[i*dirEntrySize : (i+1)*dirEntrySize]
		if e[0] == 0x00 {
			break
		}
		if e[0] == 0xE5 {
			lfn.reset()
			continue
		}
		attr := e[11]
		if attr&0x3F == attrLongName {
			lfn.add(e, i)
			continue
		}
		var s shortName
		copy(s[:], e[:11])
		name := s.display(e[12])
		if long, _, ok := lfn.name(s); ok {
			name = long
		}
		if attr&attrVolumeID != 0 && attr&attrDirectory == 0 {
			continue
		}
		if s[0] == '.' && (string(s[:]) == ".          " || string(s[:]) == "..         ") {
			if isRoot || i > 1 {
				c.add(SeverityError, "directory entry", c.entryOff(chain, i), dirPath, "stray %q entry at slot %d", s.display(0), i)
			}
			continue
		}
		p := dirPath + name
		off := c.entryOff(chain, i)
		cl := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		size := binary.LittleEndian.Uint32(e[28:])
		if attr&attrDirectory != 0 {
			if cl == 0 {
				c.add(SeverityError, "directory entry", off, p, "directory has no first cluster")
				continue
			}
			if size != 0 {
				c.add(SeverityWarning, "directory entry", off+28, p, "directory entry has size %d, want 0", size)
			}
			ch := c.follow(cl, p+"/", off)
			subs = append(subs, sub{ch, cl, p + "/", off})
			continue
		}
		if cl == 0 {
			if size != 0 {
				c.add(SeverityError, "directory entry", off+28, p, "file of %d bytes has no clusters", size)
			}
			continue
		}
		ch := c.follow(cl, p, off)
		if len(ch) == 0 {
			continue
		}
		need := (int64(size) + c.fs.csize - 1) / c.fs.csize
		switch got := int64(len(ch)); {
		case got < need:
			c.add(SeverityError, "cluster chain", c.fatOff(ch[len(ch)-1]), p, "chain of %d clusters is shorter than the file size %d (needs %d)", got, size, need)
		case got > need && c.complete(ch):
			c.add(SeverityError, "cluster chain", c.fatOff(ch[need-boolInt(need > 0)]), p, "chain of %d clusters is longer than the file size %d needs (%d)", got, size, need)
		}
	}
	for _, s := range subs {
		c.walkDir(s.chain, s.cluster, self, s.path, depth+1)
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// complete reports whether chain ended at an end-of-chain mark, so that a
// length comparison is meaningful (a broken chain was already reported).
func (c *checker) complete(chain []uint32) bool {
	return c.fs.entry(chain[len(chain)-1]) >= eocMin
}

// checkDots checks the "." and ".." entries every subdirectory starts with.
func (c *checker) checkDots(data []byte, chain []uint32, self, parent uint32, p string) {
	if len(data) < 2*dirEntrySize {
		return
	}
	want := [2]struct {
		name string
		cl   uint32
	}{{".          ", self}, {"..         ", parent}}
	if parent == c.fs.bs.RootCluster {
		want[1].cl = 0 // ".." of a top-level directory stores 0 for the root
	}
	for i, w := range want {
		e := data[i*dirEntrySize:]
		if string(e[:11]) != w.name || e[11]&attrDirectory == 0 {
			c.add(SeverityError, "directory entry", c.entryOff(chain, i), p, "slot %d is %q, want the %q directory entry", i, bytes.TrimRight(e[:11], " \x00"), bytes.TrimRight([]byte(w.name), " "))
			continue
		}
		cl := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		if cl != w.cl && !(i == 1 && w.cl == 0 && cl == c.fs.bs.RootCluster) {
			c.add(SeverityError, "directory entry", c.entryOff(chain, i)+26, p, "%q entry points at cluster %d, want %d", bytes.TrimRight([]byte(w.name), " "), cl, w.cl)
		}
	}
}

// checkLost reports clusters in use in the FAT that no file or directory
// reaches, one finding per lost chain (by its first cluster).
func (c *checker) checkLost() {
	n := uint32(len(c.fs.fat))
	// A lost cluster that another lost cluster links to is not a chain head.
	linked := make(map[uint32]bool)
	var lost []uint32
	for cl := uint32(2); cl < n; cl++ {
		if cl%(1<<18) == 0 && c.ctx.Err() != nil {
			return
		}
		v := c.fs.entry(cl)
		if v == 0 || v == badCluster || c.owner[cl] != 0 {
			continue
		}
		lost = append(lost, cl)
		if v < eocMin && c.fs.validCluster(v) {
			linked[v] = true
		}
	}
	if len(lost) == 0 {
		return
	}
	heads := 0
	for _, cl := range lost {
		if linked[cl] {
			continue
		}
		heads++
		c.add(SeverityWarning, "lost clusters", c.fatOff(cl), "", "lost chain starting at cluster %d: allocated in the FAT, reached by no directory entry", cl)
	}
	if heads == 0 {
		c.add(SeverityWarning, "lost clusters", c.fatOff(lost[0]), "", "lost clusters form a loop starting at cluster %d", lost[0])
	}
	c.add(SeverityWarning, "lost clusters", c.fatOff(lost[0]), "", "%d lost clusters (%d bytes) in %d chains", len(lost), int64(len(lost))*c.fs.csize, max(heads, 1))
}
