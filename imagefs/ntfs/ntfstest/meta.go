package ntfstest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"syscall"

	"www.velocidex.com/golang/go-ntfs/parser"
)

type statfs struct{ free int64 }

func statFS(dir string, st *statfs) error {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return err
	}
	st.free = int64(s.Bavail) * s.Bsize
	return nil
}

// firstUserRecord is the first MFT record a writer hands out: records
// 16–23 are kept free for $MFT's own extension records (ntfs-3g and
// Windows both leave them alone).
const firstUserRecord = 24

// withGoNTFS opens the bare volume vol with go-ntfs.
func withGoNTFS(vol string, fn func(*parser.NTFSContext) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-ntfs panicked on %s: %v", vol, r)
		}
	}()
	f, err := os.Open(vol)
	if err != nil {
		return err
	}
	defer f.Close()
	paged, err := parser.NewPagedReader(f, 4096, 256)
	if err != nil {
		return err
	}
	nctx, err := parser.GetNTFSContext(paged, 0)
	if err != nil {
		return err
	}
	return fn(nctx)
}

// attribute returns the first attribute of type typ with an empty name.
func attribute(nctx *parser.NTFSContext, e *parser.MFT_ENTRY, typ uint64) *parser.NTFS_ATTRIBUTE {
	for _, a := range e.EnumerateAttributes(nctx) {
		if a.Type().Value == typ && a.Name() == "" {
			return a
		}
	}
	return nil
}

// freeMFTRecords counts the records from firstUserRecord on that $MFT's
// $DATA holds and its $BITMAP marks free, read with go-ntfs.
func freeMFTRecords(vol string) (free int64, err error) {
	return freeMFTRecordsFrom(vol, firstUserRecord)
}

// ntfs3gFirstRecord is the first record ntfs-3g (libntfs) hands out for a
// new file: it leaves 24–63 to the records of $MFT's own extensions, so a
// volume populated by ntfs-3g alone always has those free (37 of them on a
// mkntfs volume), and Windows or xpboot take them first.
const ntfs3gFirstRecord = 64

// freeMFTRecordsFrom counts the free records from record from on.
func freeMFTRecordsFrom(vol string, from int64) (free int64, err error) {
	err = withGoNTFS(vol, func(nctx *parser.NTFSContext) error {
		mft, err := nctx.GetMFT(0)
		if err != nil {
			return err
		}
		data, bm := attribute(nctx, mft, 0x80), attribute(nctx, mft, 0xB0)
		if data == nil || bm == nil {
			return fmt.Errorf("$MFT has no $DATA or $BITMAP")
		}
		recSize := int64(mft.Mft_entry_allocated())
		if recSize == 0 {
			return fmt.Errorf("$MFT record size 0")
		}
		records := data.DataSize() / recSize
		r, err := parser.OpenStream(nctx, mft, 0xB0, parser.WILDCARD_STREAM_ID, "")
		if err != nil {
			return err
		}
		b := make([]byte, bm.DataSize())
		if _, err := r.ReadAt(b, 0); err != nil && int64(len(b)) > 0 {
			return fmt.Errorf("$MFT:$BITMAP: %w", err)
		}
		for i := from; i < records; i++ {
			if i/8 >= int64(len(b)) || b[i/8]&(1<<(i%8)) == 0 {
				free++
			}
		}
		return nil
	})
	return free, err
}

// countFragments records how many data runs FixtureBasic's fragmented file
// has and fails when it is not fragmented enough to be a test.
func countFragments(ctx context.Context, fx *Fixture, vol string) error {
	err := withGoNTFS(vol, func(nctx *parser.NTFSContext) error {
		root, err := nctx.GetMFT(5)
		if err != nil {
			return err
		}
		e, err := root.Open(nctx, "frag/fragmented.bin")
		if err != nil {
			return err
		}
		a := attribute(nctx, e, 0x80)
		if a == nil || a.IsResident() {
			return fmt.Errorf("frag/fragmented.bin has no non-resident $DATA")
		}
		fx.Fragments = len(a.RunList())
		return nil
	})
	if err != nil {
		return err
	}
	if fx.Fragments < 8 {
		return fmt.Errorf("frag/fragmented.bin has %d data runs; the fixture needs at least 8", fx.Fragments)
	}
	return nil
}

// MaxFreeMFTRecords is the most free MFT records FixtureMFTFull has from
// record 64 on, where ntfs-3g allocates; below it are the 37 records
// 27–63 that ntfs-3g never uses (see ntfs3gFirstRecord).
const MaxFreeMFTRecords = 8

// MaxFreeMFTRecordsTotal bounds Fixture.FreeMFTRecords (from record 24 on)
// for FixtureMFTFull: the never-used 27–63 plus MaxFreeMFTRecords.
const MaxFreeMFTRecordsTotal = ntfs3gFirstRecord - 27 + MaxFreeMFTRecords

// fillMFT leaves $MFT with at most MaxFreeMFTRecords free records from
// record 64 on. ntfs-3g
// always keeps a reserve of free records in $MFT's $DATA (it grows $MFT
// before it runs out), so filling through it alone never gets there.
// Instead the fixture's files are made through ntfs-3g and then $MFT's
// $DATA is cut back to the whole clusters that hold the last record in
// use: the data and initialized sizes shrink, the allocation (and
// $BITMAP) stay as they are. That is a legal NTFS state (allocated size
// may exceed data size; Windows' own $MFT often looks like this) and
// every checker accepts it; a writer that needs a record must extend
// $DATA, using the clusters already allocated first.
func fillMFT(ctx context.Context, fx *Fixture, vol string) error {
	f, err := os.OpenFile(vol, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	boot := make([]byte, 512)
	if _, err := f.ReadAt(boot, 0); err != nil {
		return err
	}
	sector := int64(binary.LittleEndian.Uint16(boot[0x0B:]))
	csize := sector * int64(boot[0x0D])
	mftAt := int64(binary.LittleEndian.Uint64(boot[0x30:])) * csize
	mirrAt := int64(binary.LittleEndian.Uint64(boot[0x38:])) * csize
	recSize := int64(1024)
	if c := int8(boot[0x40]); c < 0 {
		recSize = 1 << -c
	} else {
		recSize = int64(c) * csize
	}
	last, err := lastUsedMFTRecord(vol)
	if err != nil {
		return err
	}
	size := ((last+1)*recSize + csize - 1) / csize * csize
	rec := make([]byte, recSize)
	if _, err := f.ReadAt(rec, mftAt); err != nil {
		return err
	}
	// Undo the multi-sector fixups, patch, and redo them with the same
	// update sequence number.
	uo, uc := int(binary.LittleEndian.Uint16(rec[4:])), int(binary.LittleEndian.Uint16(rec[6:]))
	if string(rec[:4]) != "FILE" || uo+2*uc > len(rec) || (uc-1)*512 != len(rec) {
		return fmt.Errorf("$MFT record 0 is not a FILE record with fixups")
	}
	for i := 1; i < uc; i++ {
		copy(rec[i*512-2:i*512], rec[uo+2*i:uo+2*i+2])
	}
	patched := false
	for pos := int(binary.LittleEndian.Uint16(rec[0x14:])); pos+16 <= len(rec); {
		typ, ln := binary.LittleEndian.Uint32(rec[pos:]), int(binary.LittleEndian.Uint32(rec[pos+4:]))
		if typ == 0xFFFFFFFF || ln < 16 || pos+ln > len(rec) {
			break
		}
		if typ == 0x80 && rec[pos+8] == 1 && rec[pos+9] == 0 {
			if alloc := int64(binary.LittleEndian.Uint64(rec[pos+0x28:])); size > alloc {
				return fmt.Errorf("$MFT: %d bytes of data needed, %d allocated", size, alloc)
			}
			binary.LittleEndian.PutUint64(rec[pos+0x30:], uint64(size))
			binary.LittleEndian.PutUint64(rec[pos+0x38:], uint64(size))
			patched = true
		}
		pos += ln
	}
	if !patched {
		return fmt.Errorf("$MFT record 0 has no non-resident $DATA")
	}
	for i := 1; i < uc; i++ {
		copy(rec[uo+2*i:uo+2*i+2], rec[i*512-2:i*512])
		copy(rec[i*512-2:i*512], rec[uo:uo+2])
	}
	for _, at := range []int64{mftAt, mirrAt} {
		if _, err := f.WriteAt(rec, at); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	free, err := freeMFTRecordsFrom(vol, ntfs3gFirstRecord)
	if err != nil {
		return err
	}
	if free > MaxFreeMFTRecords {
		return fmt.Errorf("$MFT has %d free records from record %d on after the cut, the fixture needs at most %d", free, ntfs3gFirstRecord, MaxFreeMFTRecords)
	}
	return nil
}

// lastUsedMFTRecord is the highest record $MFT's $BITMAP marks in use.
func lastUsedMFTRecord(vol string) (last int64, err error) {
	err = withGoNTFS(vol, func(nctx *parser.NTFSContext) error {
		mft, err := nctx.GetMFT(0)
		if err != nil {
			return err
		}
		bm := attribute(nctx, mft, 0xB0)
		if bm == nil {
			return fmt.Errorf("$MFT has no $BITMAP")
		}
		r, err := parser.OpenStream(nctx, mft, 0xB0, parser.WILDCARD_STREAM_ID, "")
		if err != nil {
			return err
		}
		b := make([]byte, bm.DataSize())
		if _, err := r.ReadAt(b, 0); err != nil && len(b) > 0 {
			return fmt.Errorf("$MFT:$BITMAP: %w", err)
		}
		for i := int64(len(b))*8 - 1; i >= 0; i-- {
			if b[i/8]&(1<<(i%8)) != 0 {
				last = i
				return nil
			}
		}
		return fmt.Errorf("$MFT:$BITMAP marks no record in use")
	})
	return last, err
}

// makeLogUnclean writes into $LogFile the two restart pages of a log that
// a client is still using, with the "volume is clean" flag off: what a
// crash or power loss during Windows' own writes leaves behind. The pages
// follow the published NTFS $LogFile layout (version 1.1 restart page and
// restart area with one client, "NTFS"); ntfs-3g then refuses a
// read-write mount unless asked to recover.
func makeLogUnclean(ctx context.Context, fx *Fixture, vol string) error {
	var lcn, size int64
	var cluster int64
	err := withGoNTFS(vol, func(nctx *parser.NTFSContext) error {
		e, err := nctx.GetMFT(2)
		if err != nil {
			return err
		}
		a := attribute(nctx, e, 0x80)
		if a == nil || a.IsResident() {
			return fmt.Errorf("$LogFile has no non-resident $DATA")
		}
		runs := a.RunList()
		if len(runs) == 0 {
			return fmt.Errorf("$LogFile has no data runs")
		}
		lcn, size, cluster = runs[0].Offset, a.DataSize(), nctx.ClusterSize
		if runs[0].Length*cluster < 2*4096 {
			return fmt.Errorf("$LogFile's first run is too short")
		}
		return nil
	})
	if err != nil {
		return err
	}
	page := restartPage(size)
	f, err := os.OpenFile(vol, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	for i := int64(0); i < 2; i++ {
		if _, err := f.WriteAt(page, lcn*cluster+i*4096); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// restartPage builds one 4,096-byte $LogFile restart page ("RSTR") for a
// log of logSize bytes whose single client "NTFS" is in use and whose
// restart area lacks the clean flag.
func restartPage(logSize int64) []byte {
	const (
		pageSize  = 4096
		usaOfs    = 0x1e
		usaCount  = pageSize/512 + 1
		raOfs     = 0x30 // after the update sequence array, 8-aligned
		raLen     = 0x30
		clientLen = 0xa0
		noClient  = 0xffff
	)
	b := make([]byte, pageSize)
	le := binary.LittleEndian
	copy(b, "RSTR")
	le.PutUint16(b[0x04:], usaOfs)
	le.PutUint16(b[0x06:], usaCount)
	le.PutUint32(b[0x10:], pageSize) // system page size
	le.PutUint32(b[0x14:], pageSize) // log page size
	le.PutUint16(b[0x18:], raOfs)
	le.PutUint16(b[0x1a:], 1) // minor version
	le.PutUint16(b[0x1c:], 1) // major version
	ra := b[raOfs:]
	le.PutUint64(ra[0x00:], 0x200000) // current LSN
	le.PutUint16(ra[0x08:], 1)        // log clients
	le.PutUint16(ra[0x0a:], noClient) // free list: empty
	le.PutUint16(ra[0x0c:], 0)        // in-use list: client 0
	le.PutUint16(ra[0x0e:], 0)        // flags: not RESTART_VOLUME_IS_CLEAN
	le.PutUint32(ra[0x10:], uint32(67-bits.Len64(uint64(logSize))))
	le.PutUint16(ra[0x14:], raLen+clientLen)
	le.PutUint16(ra[0x16:], raLen) // client array offset
	le.PutUint64(ra[0x18:], uint64(logSize))
	le.PutUint16(ra[0x24:], 0x30) // log record header length
	le.PutUint16(ra[0x26:], 0x40) // log page data offset
	le.PutUint32(ra[0x28:], 1)    // restart log open count
	c := ra[raLen:]
	le.PutUint64(c[0x00:], 0x100000) // oldest LSN
	le.PutUint64(c[0x08:], 0x180000) // client restart LSN
	le.PutUint16(c[0x10:], noClient) // prev
	le.PutUint16(c[0x12:], noClient) // next
	le.PutUint32(c[0x1c:], 8)        // name length in bytes
	for i, r := range "NTFS" {
		le.PutUint16(c[0x20+2*i:], uint16(r))
	}
	// Multi-sector protection: the update sequence number goes to the end
	// of every sector, what was there into the array.
	const usn = 1
	le.PutUint16(b[usaOfs:], usn)
	for i := 1; i < usaCount; i++ {
		end := i*512 - 2
		copy(b[usaOfs+2*i:usaOfs+2*i+2], b[end:end+2])
		le.PutUint16(b[end:], usn)
	}
	return b
}
