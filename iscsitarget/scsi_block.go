package iscsitarget

import (
	"bytes"
	"encoding/binary"

	"github.com/xpboot/xpboot/blockdev"
)

// SBC-3 block commands. execSCSI has already checked each one's CDB
// fields, LBA range, write protection and transfer length (the x.lba and
// x.n they get are inside the LU); what is left here is the work.

// readChunkBlocks bounds the buffers of the commands that read the medium
// in a loop (VERIFY with BYTCHK 11b, WRITE SAME).
const readChunkBlocks = 256

// read hands the range to the transport, which copies it from the device
// into bounded chunks while it sends Data-In (see conn.sendResult): no
// buffer of the whole transfer is ever allocated.
func (l *lu) read(x scsiTask) *scsiResult {
	if x.n == 0 {
		return good(nil)
	}
	return &scsiResult{status: statusGood, src: l, srcOff: int64(x.lba) * blockSize, srcLen: int(x.n) * blockSize}
}

func (l *lu) write(x scsiTask) *scsiResult {
	op := x.cdb[0]
	verify := op == cmdWriteVerify10 || op == cmdWriteVerify12 || op == cmdWriteVerify16
	need := int(x.n) * blockSize
	// iSCSI EDTL smaller than the SCSI transfer: write what was sent and
	// report the overflow residual (FCP-4 option a, what libiscsi's
	// iSCSIResiduals suite expects).
	data := x.out[:min(need, len(x.out))]
	if len(data) == 0 {
		return &scsiResult{status: statusGood, wantOut: need}
	}
	l.cawMu.RLock()
	_, err := l.dev.WriteAt(data, int64(x.lba)*blockSize)
	l.cawMu.RUnlock()
	if err != nil {
		r := checkCondition(senseMediumError, ascWriteError)
		r.wantOut = need
		return r
	}
	fua := cdbLen(op) != 6 && x.cdb[1]&0x08 != 0
	if fua || verify {
		if err := l.dev.Flush(); err != nil {
			r := checkCondition(senseMediumError, ascWriteError)
			r.wantOut = need
			return r
		}
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

// checkVerify: BYTCHK 10b is reserved; no protection information.
func checkVerify(l *lu, cdb []byte) *scsiResult {
	if res := checkProtect(l, cdb); res != nil {
		return res
	}
	if (cdb[1]>>1)&3 == 2 {
		return illegal(ascInvalidFieldInCDB)
	}
	return nil
}

// verify compares the medium with the Data-Out (BYTCHK 01b: every block
// sent; 11b: one block sent, compared with each), readChunkBlocks at a
// time.
func (l *lu) verify(x scsiTask) *scsiResult {
	bytchk := (x.cdb[1] >> 1) & 3
	need := verifyOut(x.cdb, x.n)
	if bytchk == 0 || x.n == 0 {
		return &scsiResult{status: statusGood, wantOut: need}
	}
	out := x.out
	if len(out) < need {
		r := illegal(ascInvalidFieldInIU)
		r.wantOut = need
		return r
	}
	buf := make([]byte, min(x.n, readChunkBlocks)*blockSize)
	for done := uint64(0); done < x.n; {
		k := min(x.n-done, readChunkBlocks)
		chunk := buf[:k*blockSize]
		if _, err := l.dev.ReadAt(chunk, int64(x.lba+done)*blockSize); err != nil {
			return checkCondition(senseMediumError, ascReadError)
		}
		for i := 0; i < len(chunk); i += blockSize {
			want := out[:blockSize]
			if bytchk == 1 {
				at := int(done)*blockSize + i
				want = out[at : at+blockSize]
			}
			if !bytes.Equal(chunk[i:i+blockSize], want) {
				bad := x.lba + done + uint64(i/blockSize)
				return &scsiResult{status: statusCheckCondition, sense: fixedSense(senseMiscompare, ascMiscompareVerify, uint32(bad), true), wantOut: need}
			}
		}
		done += k
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

// syncCache is SYNCHRONIZE CACHE(10/16): the whole device is flushed.
func (l *lu) syncCache(scsiTask) *scsiResult {
	if err := l.dev.Flush(); err != nil {
		return checkCondition(senseMediumError, ascWriteError)
	}
	return good(nil)
}

// checkWriteSame refuses ANCHOR and the obsolete PBDATA/LBDATA bits, and
// UNMAP where nothing can be deallocated.
func checkWriteSame(l *lu, cdb []byte) *scsiResult {
	if res := checkProtect(l, cdb); res != nil {
		return res
	}
	if cdb[1]&0x16 != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	if cdb[1]&0x08 != 0 && l.punch == nil {
		return illegal(ascInvalidFieldInCDB)
	}
	return nil
}

func (l *lu) writeSame(x scsiTask) *scsiResult {
	cdb, out, lba, n := x.cdb, x.out, x.lba, x.n
	unmap := cdb[1]&0x08 != 0
	ndob := cdb[0] == cmdWriteSame16 && cdb[1]&0x01 != 0
	need := writeSameOut(cdb, n)
	if len(out) < need {
		r := illegal(ascInvalidFieldInIU)
		r.wantOut = need
		return r
	}
	if n == 0 {
		// VPD B0 sets WSNZ: a zero NUMBER OF LOGICAL BLOCKS ("to the end
		// of the medium") is not supported.
		r := illegal(ascInvalidFieldInCDB)
		r.wantOut = need
		return r
	}
	if n > maxWriteSame {
		r := illegal(ascInvalidFieldInCDB)
		r.wantOut = need
		return r
	}
	pattern := make([]byte, blockSize)
	if !ndob {
		copy(pattern, out[:blockSize])
	}
	// UNMAP: deallocate whatever the pattern (LBPRZ: it then reads as
	// zeros), as tgt does and libiscsi's WriteSame*.Unmap* tests expect.
	if unmap {
		l.cawMu.RLock()
		err := l.punch(int64(lba)*blockSize, int64(n)*blockSize)
		l.cawMu.RUnlock()
		if err == nil {
			return &scsiResult{status: statusGood, wantOut: need}
		}
	}
	chunk := make([]byte, 0, readChunkBlocks*blockSize)
	for len(chunk) < cap(chunk) {
		chunk = append(chunk, pattern...)
	}
	l.cawMu.RLock()
	defer l.cawMu.RUnlock()
	for done := uint64(0); done < n; {
		k := min(n-done, readChunkBlocks)
		if _, err := l.dev.WriteAt(chunk[:k*blockSize], int64(lba+done)*blockSize); err != nil {
			r := checkCondition(senseMediumError, ascWriteError)
			r.wantOut = need
			return r
		}
		done += k
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

func (l *lu) compareAndWrite(x scsiTask) *scsiResult {
	cdb, out, lba, n := x.cdb, x.out, x.lba, x.n
	need := cawOut(cdb, n)
	if len(out) != need {
		// Includes 256 blocks wrapped to 0 in the one-byte field.
		r := illegal(ascInvalidFieldInCDB)
		r.wantOut = need
		return r
	}
	if n == 0 {
		return &scsiResult{status: statusGood, wantOut: need}
	}
	half := need / 2
	l.cawMu.Lock()
	defer l.cawMu.Unlock()
	cur := make([]byte, half)
	if _, err := l.dev.ReadAt(cur, int64(lba)*blockSize); err != nil {
		return checkCondition(senseMediumError, ascReadError)
	}
	for i := range cur {
		if cur[i] != out[i] {
			return &scsiResult{status: statusCheckCondition, sense: fixedSense(senseMiscompare, ascMiscompareVerify, uint32(i), true), wantOut: need}
		}
	}
	if _, err := l.dev.WriteAt(out[half:need], int64(lba)*blockSize); err != nil {
		return checkCondition(senseMediumError, ascWriteError)
	}
	if cdb[1]&0x08 != 0 {
		if err := l.dev.Flush(); err != nil {
			return checkCondition(senseMediumError, ascWriteError)
		}
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

// orWrite ORs the Data-Out into the medium; its length is bounded by the
// transfer-length check in execSCSI.
func (l *lu) orWrite(x scsiTask) *scsiResult {
	out, lba, n := x.out, x.lba, x.n
	need := int(n) * blockSize
	if n == 0 {
		return &scsiResult{status: statusGood}
	}
	if len(out) < need {
		r := illegal(ascInvalidFieldInIU)
		r.wantOut = need
		return r
	}
	l.cawMu.Lock()
	defer l.cawMu.Unlock()
	cur := make([]byte, need)
	if _, err := l.dev.ReadAt(cur, int64(lba)*blockSize); err != nil {
		return checkCondition(senseMediumError, ascReadError)
	}
	for i := range cur {
		cur[i] |= out[i]
	}
	if _, err := l.dev.WriteAt(cur, int64(lba)*blockSize); err != nil {
		return checkCondition(senseMediumError, ascWriteError)
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

func (l *lu) unmap(cdb []byte, out []byte) *scsiResult {
	plen := int(be16(cdb[7:]))
	if l.writeProtected() {
		r := checkCondition(senseDataProtect, ascWriteProtected)
		r.wantOut = plen
		return r
	}
	if plen == 0 {
		return &scsiResult{status: statusGood}
	}
	if plen < 8 || len(out) < plen {
		r := illegal(ascParamListLength)
		r.wantOut = plen
		return r
	}
	p := out[:plen]
	dlen := int(be16(p[2:]))
	if dlen%16 != 0 || 8+dlen > plen {
		r := illegal(ascParamListLength)
		r.wantOut = plen
		return r
	}
	descs := p[8 : 8+dlen]
	if len(descs)/16 > 256 {
		r := illegal(ascInvalidFieldInParam)
		r.wantOut = plen
		return r
	}
	for i := 0; i < len(descs); i += 16 {
		lba, n := be64(descs[i:]), uint64(be32(descs[i+8:]))
		if res := l.checkRange(lba, n); res != nil {
			res.wantOut = plen
			return res
		}
	}
	l.cawMu.RLock()
	defer l.cawMu.RUnlock()
	for i := 0; i < len(descs); i += 16 {
		lba, n := be64(descs[i:]), uint64(be32(descs[i+8:]))
		if n == 0 {
			continue
		}
		if err := l.punch(int64(lba)*blockSize, int64(n)*blockSize); err != nil {
			r := checkCondition(senseMediumError, ascWriteError)
			r.wantOut = plen
			return r
		}
	}
	return &scsiResult{status: statusGood, wantOut: plen}
}

func (l *lu) getLBAStatus(cdb []byte) *scsiResult {
	lba := be64(cdb[2:])
	alloc := int(be32(cdb[10:]))
	if lba >= l.blocks {
		return illegal(ascLBAOutOfRange)
	}
	length := int64(min(l.blocks-lba, 1<<20)) * blockSize
	ext, err := l.dev.Extents(int64(lba)*blockSize, length)
	if err != nil || len(ext) == 0 {
		return checkCondition(senseMediumError, ascReadError)
	}
	var descs []byte
	for i, e := range ext {
		if i == 64 {
			break
		}
		d := make([]byte, 16)
		binary.BigEndian.PutUint64(d, uint64(e.Off/blockSize))
		binary.BigEndian.PutUint32(d[8:], uint32((e.Len+blockSize-1)/blockSize))
		if e.State == blockdev.Zero {
			d[12] = 1 // deallocated
		}
		descs = append(descs, d...)
	}
	hdr := make([]byte, 8)
	binary.BigEndian.PutUint32(hdr, uint32(4+len(descs)))
	return good(trunc(append(hdr, descs...), alloc))
}
