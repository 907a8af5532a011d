package iscsitarget

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"os"
	"sort"
	"sync"
	"syscall"

	"github.com/xpboot/xpboot/imagefs/blockdev"
)

// SCSI status codes and sense keys (SAM-5, SPC-4).
const (
	statusGood                = 0x00
	statusCheckCondition      = 0x02
	statusConditionMet        = 0x04
	statusReservationConflict = 0x18

	senseNoSense        = 0x00
	senseNotReady       = 0x02
	senseMediumError    = 0x03
	senseHardwareError  = 0x04
	senseIllegalRequest = 0x05
	senseUnitAttention  = 0x06
	senseDataProtect    = 0x07
	senseAbortedCommand = 0x0b
	senseMiscompare     = 0x0e

	ascInvalidOpcode       = 0x2000
	ascLBAOutOfRange       = 0x2100
	ascInvalidFieldInCDB   = 0x2400
	ascLUNotSupported      = 0x2500
	ascInvalidFieldInParam = 0x2600
	ascParamListLength     = 0x1a00
	ascWriteProtected      = 0x2700
	ascMiscompareVerify    = 0x1d00
	ascInvalidFieldInIU    = 0x0e03
	ascSavingNotSupported  = 0x3900
	ascInvalidRelease      = 0x2604
	ascWriteError          = 0x0c00
	ascReadError           = 0x1100
)

const blockSize = blockdev.SectorSize

// maxWriteSame is the MAXIMUM WRITE SAME LENGTH in blocks (8 MiB).
const maxWriteSame = 16384

// scsiResult is what a command produced: status, sense, Data-In, and how
// many bytes of Data-Out it expected (for residuals).
type scsiResult struct {
	status  byte
	sense   []byte
	data    []byte
	wantOut int
	pool    *bufPool
}

func (r *scsiResult) release() {
	if r.pool != nil && r.data != nil {
		r.pool.put(r.data)
		r.data = nil
	}
}

func good(data []byte) *scsiResult { return &scsiResult{status: statusGood, data: data} }

// fixedSense builds fixed-format sense data (SPC-4 §4.5.3).
func fixedSense(key byte, asc uint16, info uint32, infoValid bool) []byte {
	s := make([]byte, 18)
	s[0] = 0x70
	if infoValid {
		s[0] |= 0x80
		binary.BigEndian.PutUint32(s[3:], info)
	}
	s[2] = key
	s[7] = 10
	s[12], s[13] = byte(asc>>8), byte(asc)
	return s
}

func checkCondition(key byte, asc uint16) *scsiResult {
	return &scsiResult{status: statusCheckCondition, sense: fixedSense(key, asc, 0, false)}
}

func illegal(asc uint16) *scsiResult { return checkCondition(senseIllegalRequest, asc) }

// bufPool recycles Data-In buffers by power-of-two size class.
type bufPool struct{ classes [16]sync.Pool }

func (p *bufPool) get(n int) []byte {
	c := 0
	for (4096 << c) < n {
		c++
	}
	if c >= len(p.classes) {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 4096<<c)
}

func (p *bufPool) put(b []byte) {
	c := 0
	for (4096 << c) < cap(b) {
		c++
	}
	if c < len(p.classes) && cap(b) == 4096<<c {
		b = b[:cap(b)]
		p.classes[c].Put(&b)
	}
}

// lu is a logical unit: a block device with SCSI state.
type lu struct {
	tgt     *target
	num     uint16
	dev     blockdev.Device
	ro      bool
	blocks  uint64
	serial  string
	naa     [8]byte
	punch   func(off, n int64) error // nil unless the backend can deallocate
	maxXfer int                      // bytes per command (VPD B0)
	pool    bufPool
	cawMu   sync.RWMutex // COMPARE AND WRITE excludes other writes

	mu      sync.Mutex
	swp     bool   // software write protect (control mode page)
	dsense  bool   // descriptor sense (control mode page)
	reserve string // SPC-2 reservation holder nexus
	pr      prState
}

func newLU(t *target, l LUN, maxXfer int) *lu {
	u := &lu{tgt: t, num: l.Number, maxXfer: maxXfer, dev: l.Device, ro: l.ReadOnly, blocks: uint64(l.Device.Size()) / blockSize, serial: l.Serial}
	sum := sha256.Sum256([]byte(t.name + "\x00" + string(rune(l.Number)) + "\x00" + l.Serial))
	// NAA 3 (locally assigned), 60 bits from the hash: unique per target+LUN.
	copy(u.naa[:], sum[:8])
	u.naa[0] = 0x30 | u.naa[0]&0x0f
	if u.serial == "" {
		u.serial = "XPB" + hexUpper(sum[8:16])
	}
	u.pr.regs = make(map[string]uint64)
	if dc, ok := l.Device.(Discarder); ok && !l.ReadOnly {
		u.punch = dc.Discard
	} else if raw, ok := l.Device.(*blockdev.Raw); ok && !l.ReadOnly {
		if fi, err := raw.File().Stat(); err == nil && fi.Mode().IsRegular() {
			f := raw.File()
			u.punch = func(off, n int64) error { return punchHole(f, off, n) }
		}
	}
	return u
}

// Discarder is implemented by backends that can deallocate a range so that
// it reads back as zeros afterwards. LUNs on such devices (and on sparse raw
// files) advertise thin provisioning and support UNMAP, WRITE SAME with
// UNMAP and GET LBA STATUS.
type Discarder interface {
	Discard(off, length int64) error
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

// punchHole deallocates a range of a regular file (FALLOC_FL_PUNCH_HOLE |
// FALLOC_FL_KEEP_SIZE); the range then reads as zeros.
func punchHole(f *os.File, off, n int64) error {
	const punch = 0x02 | 0x01
	return syscall.Fallocate(int(f.Fd()), punch, off, n)
}

func (u *lu) writeProtected() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ro || u.swp
}

// reset is a logical unit reset: SPC-2 reservations go, PRs stay.
func (u *lu) reset() {
	u.mu.Lock()
	u.reserve = ""
	u.mu.Unlock()
}

// nexusLost releases what an ended I_T nexus held (SPC-2 reservation).
func (u *lu) nexusLost(nexus string) {
	u.mu.Lock()
	if u.reserve == nexus {
		u.reserve = ""
	}
	u.mu.Unlock()
}

func be16(b []byte) uint32 { return uint32(binary.BigEndian.Uint16(b)) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// cdbLen returns the CDB length implied by the opcode group.
func cdbLen(op byte) int {
	switch op >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 16
}

// execSCSI runs one command. l is nil for a LUN that does not exist.
func execSCSI(l *lu, sess *session, cdb []byte, out []byte, edtl int) *scsiResult {
	op := cdb[0]
	if l == nil {
		switch op {
		case 0x12: // INQUIRY to an absent LUN: peripheral qualifier 011b
			if cdb[1]&1 != 0 {
				return illegal(ascLUNotSupported)
			}
			d := standardInquiry(nil)
			d[0] = 0x7f
			return good(trunc(d, int(be16(cdb[3:]))))
		case 0xa0:
			return reportLUNs(sess.tgt, cdb)
		case 0x03:
			return requestSense(cdb, fixedSense(senseIllegalRequest, ascLUNotSupported, 0, false))
		}
		return illegal(ascLUNotSupported)
	}
	if res := l.conflict(sess.nexus, op, cdb); res != nil {
		return res
	}
	switch op {
	case 0x00: // TEST UNIT READY
		return good(nil)
	case 0x03:
		return requestSense(cdb, nil)
	case 0x12:
		return l.inquiry(cdb)
	case 0x25:
		return l.readCapacity10(cdb)
	case 0x9e:
		switch cdb[1] & 0x1f {
		case 0x10:
			return l.readCapacity16(cdb)
		case 0x12:
			if l.punch == nil {
				return illegal(ascInvalidFieldInCDB)
			}
			return l.getLBAStatus(cdb)
		}
		return illegal(ascInvalidFieldInCDB)
	case 0x08, 0x28, 0xa8, 0x88:
		return l.read(cdb)
	case 0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e:
		return l.write(cdb, out)
	case 0x2f, 0xaf, 0x8f:
		return l.verify(cdb, out)
	case 0x35, 0x91: // SYNCHRONIZE CACHE 10/16
		lba, n := rwRange(cdb)
		if res := l.checkRange(lba, n); res != nil {
			return res
		}
		if err := l.dev.Flush(); err != nil {
			return checkCondition(senseMediumError, ascWriteError)
		}
		return good(nil)
	case 0x34, 0x90: // PRE-FETCH 10/16: page cache does it
		lba, n := rwRange(cdb)
		if res := l.checkRange(lba, n); res != nil {
			return res
		}
		return good(nil)
	case 0x1a, 0x5a:
		return l.modeSense(cdb)
	case 0x15, 0x55:
		return l.modeSelect(cdb, out)
	case 0x1b, 0x1e: // START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL
		return good(nil)
	case 0x16, 0x56, 0x17, 0x57:
		return l.reserveRelease(sess.nexus, op)
	case 0x5e:
		return l.prIn(cdb)
	case 0x5f:
		return l.prOut(sess.nexus, cdb, out)
	case 0xa0:
		return reportLUNs(l.tgt, cdb)
	case 0x41, 0x93:
		return l.writeSame(cdb, out)
	case 0x89:
		return l.compareAndWrite(cdb, out)
	case 0x8b:
		return l.orWrite(cdb, out)
	case 0x42:
		if l.punch == nil {
			return illegal(ascInvalidOpcode)
		}
		return l.unmap(cdb, out)
	case 0xa3:
		if cdb[1]&0x1f == 0x0c {
			return l.reportOpcodes(cdb)
		}
		return illegal(ascInvalidFieldInCDB)
	}
	return illegal(ascInvalidOpcode)
}

func trunc(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func requestSense(cdb []byte, sense []byte) *scsiResult {
	if sense == nil {
		sense = fixedSense(senseNoSense, 0, 0, false)
	}
	if cdb[1]&1 != 0 { // DESC: descriptor format
		d := make([]byte, 8)
		d[0] = 0x72
		d[1] = sense[2]
		d[2], d[3] = sense[12], sense[13]
		sense = d
	}
	return good(trunc(sense, int(cdb[4])))
}

// rwRange decodes LBA and transfer length of READ/WRITE/VERIFY-style CDBs.
func rwRange(cdb []byte) (uint64, uint64) {
	switch cdbLen(cdb[0]) {
	case 6:
		lba := uint64(cdb[1]&0x1f)<<16 | uint64(cdb[2])<<8 | uint64(cdb[3])
		n := uint64(cdb[4])
		if n == 0 && (cdb[0] == 0x08 || cdb[0] == 0x0a) {
			n = 256
		}
		return lba, n
	case 10:
		return uint64(be32(cdb[2:])), uint64(be16(cdb[7:]))
	case 12:
		return uint64(be32(cdb[2:])), uint64(be32(cdb[6:]))
	}
	return be64(cdb[2:]), uint64(be32(cdb[10:]))
}

func (l *lu) checkRange(lba, n uint64) *scsiResult {
	if lba > l.blocks || n > l.blocks-lba {
		return illegal(ascLBAOutOfRange)
	}
	return nil
}

// checkWrite refuses a write of n blocks at lba that lies outside the LU
// (ILLEGAL REQUEST) or hits a write-protected LU (DATA PROTECT). wantOut is
// the data-out length the command would have carried, so the transport can
// still drain it.
func (l *lu) checkWrite(lba, n uint64, wantOut int) *scsiResult {
	if res := l.checkRange(lba, n); res != nil {
		res.wantOut = wantOut
		return res
	}
	if l.writeProtected() {
		r := checkCondition(senseDataProtect, ascWriteProtected)
		r.wantOut = wantOut
		return r
	}
	return nil
}

// protectField returns the RDPROTECT/WRPROTECT/VRPROTECT field (no PI here).
func protectField(cdb []byte) byte {
	if cdbLen(cdb[0]) == 6 {
		return 0
	}
	return cdb[1] >> 5
}

func (l *lu) read(cdb []byte) *scsiResult {
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	lba, n := rwRange(cdb)
	if res := l.checkRange(lba, n); res != nil {
		return res
	}
	if n == 0 {
		return good(nil)
	}
	buf := l.pool.get(int(n) * blockSize)
	if _, err := l.dev.ReadAt(buf, int64(lba)*blockSize); err != nil {
		l.pool.put(buf)
		return checkCondition(senseMediumError, ascReadError)
	}
	return &scsiResult{status: statusGood, data: buf, pool: &l.pool}
}

func (l *lu) write(cdb []byte, out []byte) *scsiResult {
	op := cdb[0]
	verify := op == 0x2e || op == 0xae || op == 0x8e
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	lba, n := rwRange(cdb)
	need := int(n) * blockSize
	if res := l.checkWrite(lba, n, need); res != nil {
		return res
	}
	// iSCSI EDTL smaller than the SCSI transfer: write what was sent and
	// report the overflow residual (FCP-4 option a, what libiscsi's
	// iSCSIResiduals suite expects).
	data := out[:min(need, len(out))]
	if len(data) == 0 {
		return &scsiResult{status: statusGood, wantOut: need}
	}
	l.cawMu.RLock()
	_, err := l.dev.WriteAt(data, int64(lba)*blockSize)
	l.cawMu.RUnlock()
	if err != nil {
		r := checkCondition(senseMediumError, ascWriteError)
		r.wantOut = need
		return r
	}
	fua := cdbLen(op) != 6 && cdb[1]&0x08 != 0
	if fua || verify {
		if err := l.dev.Flush(); err != nil {
			r := checkCondition(senseMediumError, ascWriteError)
			r.wantOut = need
			return r
		}
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

func (l *lu) verify(cdb []byte, out []byte) *scsiResult {
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	lba, n := rwRange(cdb)
	bytchk := (cdb[1] >> 1) & 3
	need := 0
	switch bytchk {
	case 1:
		need = int(n) * blockSize
	case 3:
		need = blockSize
	case 2:
		return illegal(ascInvalidFieldInCDB)
	}
	if res := l.checkRange(lba, n); res != nil {
		res.wantOut = need
		return res
	}
	if bytchk == 0 || n == 0 {
		return &scsiResult{status: statusGood, wantOut: need}
	}
	if len(out) < need {
		r := illegal(ascInvalidFieldInIU)
		r.wantOut = need
		return r
	}
	buf := make([]byte, int(n)*blockSize)
	if _, err := l.dev.ReadAt(buf, int64(lba)*blockSize); err != nil {
		return checkCondition(senseMediumError, ascReadError)
	}
	for i := 0; i < len(buf); i += blockSize {
		want := out[:blockSize]
		if bytchk == 1 {
			want = out[i : i+blockSize]
		}
		if !bytes.Equal(buf[i:i+blockSize], want) {
			r := &scsiResult{status: statusCheckCondition, sense: fixedSense(senseMiscompare, ascMiscompareVerify, uint32(lba)+uint32(i/blockSize), true), wantOut: need}
			return r
		}
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

func (l *lu) writeSame(cdb []byte, out []byte) *scsiResult {
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	var lba, n uint64
	if cdb[0] == 0x41 {
		lba, n = uint64(be32(cdb[2:])), uint64(be16(cdb[7:]))
	} else {
		lba, n = be64(cdb[2:]), uint64(be32(cdb[10:]))
	}
	unmap := cdb[1]&0x08 != 0
	ndob := cdb[0] == 0x93 && cdb[1]&0x01 != 0
	need := blockSize
	if ndob {
		need = 0
	}
	if cdb[1]&0x16 != 0 { // ANCHOR, obsolete PBDATA/LBDATA: unsupported
		return illegal(ascInvalidFieldInCDB)
	}
	if unmap && l.punch == nil {
		return illegal(ascInvalidFieldInCDB)
	}
	if res := l.checkWrite(lba, n, need); res != nil {
		return res
	}
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
	chunk := make([]byte, 0, 256*blockSize)
	for len(chunk) < cap(chunk) {
		chunk = append(chunk, pattern...)
	}
	l.cawMu.RLock()
	defer l.cawMu.RUnlock()
	for done := uint64(0); done < n; {
		k := min(n-done, 256)
		if _, err := l.dev.WriteAt(chunk[:k*blockSize], int64(lba+done)*blockSize); err != nil {
			r := checkCondition(senseMediumError, ascWriteError)
			r.wantOut = need
			return r
		}
		done += k
	}
	return &scsiResult{status: statusGood, wantOut: need}
}

func (l *lu) compareAndWrite(cdb []byte, out []byte) *scsiResult {
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	lba := be64(cdb[2:])
	n := uint64(cdb[13])
	need := int(2 * n * blockSize)
	if n > 255 {
		return illegal(ascInvalidFieldInCDB)
	}
	if res := l.checkWrite(lba, n, need); res != nil {
		return res
	}
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

func (l *lu) orWrite(cdb []byte, out []byte) *scsiResult {
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	lba, n := be64(cdb[2:]), uint64(be32(cdb[10:]))
	need := int(n) * blockSize
	if res := l.checkWrite(lba, n, need); res != nil {
		return res
	}
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

// Version descriptors: SAM-5, iSCSI, SPC-4, SBC-3.
var versionDescriptors = [...]uint16{0x00a0, 0x0960, 0x0460, 0x04c0}

func standardInquiry(l *lu) []byte {
	d := make([]byte, 96)
	d[2] = 0x06 // SPC-4
	d[3] = 0x12 // HiSup, response data format 2
	d[4] = byte(len(d) - 5)
	d[7] = 0x02 // CmdQue
	copy(d[8:16], "XPBOOT  ")
	copy(d[16:32], "VIRTUAL-DISK    ")
	copy(d[32:36], "0001")
	for i, v := range versionDescriptors {
		binary.BigEndian.PutUint16(d[58+2*i:], v)
	}
	return d
}

func (l *lu) inquiry(cdb []byte) *scsiResult {
	alloc := int(be16(cdb[3:]))
	evpd := cdb[1]&1 != 0
	page := cdb[2]
	if !evpd {
		if page != 0 {
			return illegal(ascInvalidFieldInCDB)
		}
		return good(trunc(standardInquiry(l), alloc))
	}
	var body []byte
	switch page {
	case 0x00:
		body = []byte{0x00, 0x80, 0x83, 0xb0, 0xb1}
		if l.punch != nil {
			body = append(body, 0xb2)
		}
	case 0x80:
		body = []byte(l.serial)
	case 0x83:
		// NAA (locally assigned) designator of the LU.
		body = append(body, 0x01, 0x03, 0x00, 0x08)
		body = append(body, l.naa[:]...)
		// T10 vendor ID designator.
		t10 := "XPBOOT  " + l.serial
		body = append(body, 0x02, 0x01, 0x00, byte(len(t10)))
		body = append(body, t10...)
		// SCSI name string of the target device (association 10b, type 8).
		name := l.tgt.name
		n := len(name) + 1
		n += (4 - n%4) % 4
		body = append(body, 0x53, 0x28, 0x00, byte(n))
		nb := make([]byte, n)
		copy(nb, name)
		body = append(body, nb...)
	case 0xb0: // block limits
		body = make([]byte, 0x3c)
		body[0] = 0x01 // WSNZ
		body[1] = 255  // MAXIMUM COMPARE AND WRITE LENGTH
		binary.BigEndian.PutUint16(body[2:], 8)
		binary.BigEndian.PutUint32(body[4:], uint32(l.maxXfer/blockSize))
		binary.BigEndian.PutUint32(body[8:], uint32(min(l.maxXfer, 1<<20)/blockSize))
		if l.punch != nil {
			binary.BigEndian.PutUint32(body[16:], 0xffffffff) // max unmap LBA count
			binary.BigEndian.PutUint32(body[20:], 256)        // max unmap descriptors
			binary.BigEndian.PutUint32(body[24:], 1)          // unmap granularity
		}
		binary.BigEndian.PutUint64(body[32:], maxWriteSame) // MAXIMUM WRITE SAME LENGTH
	case 0xb1: // block device characteristics: non-rotating
		body = make([]byte, 0x3c)
		binary.BigEndian.PutUint16(body[0:], 1)
	case 0xb2:
		if l.punch == nil {
			return illegal(ascInvalidFieldInCDB)
		}
		body = make([]byte, 4)
		body[1] = 0x80 | 0x40 | 0x20 | 0x04 // LBPU, LBPWS, LBPWS10, LBPRZ
		body[2] = 0x02                      // thin provisioned
	default:
		return illegal(ascInvalidFieldInCDB)
	}
	d := make([]byte, 4, 4+len(body))
	d[1] = page
	binary.BigEndian.PutUint16(d[2:], uint16(len(body)))
	return good(trunc(append(d, body...), alloc))
}

func (l *lu) readCapacity10(cdb []byte) *scsiResult {
	if cdb[8]&1 == 0 && be32(cdb[2:]) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	d := make([]byte, 8)
	last := l.blocks - 1
	if last > 0xffffffff {
		last = 0xffffffff
	}
	binary.BigEndian.PutUint32(d, uint32(last))
	binary.BigEndian.PutUint32(d[4:], blockSize)
	return good(d)
}

func (l *lu) readCapacity16(cdb []byte) *scsiResult {
	d := make([]byte, 32)
	binary.BigEndian.PutUint64(d, l.blocks-1)
	binary.BigEndian.PutUint32(d[8:], blockSize)
	if l.punch != nil {
		d[14] = 0x80 | 0x40 // LBPME, LBPRZ
	}
	return good(trunc(d, int(be32(cdb[10:]))))
}

func reportLUNs(t *target, cdb []byte) *scsiResult {
	alloc := int(be32(cdb[6:]))
	if alloc < 16 {
		return illegal(ascInvalidFieldInCDB)
	}
	switch cdb[2] {
	case 0, 1, 2:
	default:
		return illegal(ascInvalidFieldInCDB)
	}
	d := make([]byte, 8, 8+8*len(t.lunNo))
	if cdb[2] != 1 {
		for _, n := range t.lunNo {
			f := encodeLUN(n)
			d = append(d, f[:]...)
		}
	}
	binary.BigEndian.PutUint32(d, uint32(len(d)-8))
	return good(trunc(d, alloc))
}

// Mode pages: caching (0x08), control (0x0a), informational exceptions (0x1c).
func (l *lu) modePage(page byte, pc byte) []byte {
	changeable := pc == 1
	switch page {
	case 0x08:
		p := make([]byte, 20)
		p[0], p[1] = 0x08, 18
		if !changeable {
			p[2] = 0x04 // WCE: writes are cached until SYNCHRONIZE CACHE/FUA
		}
		return p
	case 0x0a:
		p := make([]byte, 12)
		p[0], p[1] = 0x0a, 10
		l.mu.Lock()
		if changeable {
			p[2] = 0x04 // D_SENSE
			p[4] = 0x08 // SWP
		} else {
			if l.dsense {
				p[2] |= 0x04
			}
			if l.swp {
				p[4] |= 0x08
			}
			p[3] = 0x10 // QUEUE ALGORITHM MODIFIER 1: unrestricted
		}
		l.mu.Unlock()
		if !changeable {
			binary.BigEndian.PutUint16(p[8:], 0xffff) // busy timeout: unlimited
		}
		return p
	case 0x1c:
		p := make([]byte, 12)
		p[0], p[1] = 0x1c, 10
		return p
	}
	return nil
}

func (l *lu) modeSense(cdb []byte) *scsiResult {
	six := cdb[0] == 0x1a
	dbd := cdb[1]&0x08 != 0
	pc := cdb[2] >> 6
	page := cdb[2] & 0x3f
	sub := cdb[3]
	var alloc int
	if six {
		alloc = int(cdb[4])
	} else {
		alloc = int(be16(cdb[7:]))
	}
	if pc == 3 {
		return illegal(ascSavingNotSupported)
	}
	if sub != 0 && !(sub == 0xff && page == 0x3f) {
		return illegal(ascInvalidFieldInCDB)
	}
	var pages []byte
	if page == 0x3f {
		for _, p := range []byte{0x08, 0x0a, 0x1c} {
			pages = append(pages, l.modePage(p, pc)...)
		}
	} else {
		pages = l.modePage(page, pc)
		if pages == nil {
			return illegal(ascInvalidFieldInCDB)
		}
	}
	var bd []byte
	if !dbd {
		bd = make([]byte, 8)
		n := l.blocks
		if n > 0xffffffff {
			n = 0xffffffff
		}
		binary.BigEndian.PutUint32(bd, uint32(n))
		binary.BigEndian.PutUint32(bd[4:], blockSize)
	}
	devSpecific := byte(0x10) // DPOFUA
	if l.writeProtected() {
		devSpecific |= 0x80 // WP
	}
	var d []byte
	if six {
		d = []byte{0, 0, devSpecific, byte(len(bd))}
		d = append(d, bd...)
		d = append(d, pages...)
		d[0] = byte(min(len(d)-1, 255))
	} else {
		d = []byte{0, 0, 0, devSpecific, 0, 0, 0, byte(len(bd))}
		d = append(d, bd...)
		d = append(d, pages...)
		binary.BigEndian.PutUint16(d, uint16(len(d)-2))
	}
	return good(trunc(d, alloc))
}

// modeSelect accepts the control page's D_SENSE and SWP; everything else
// must equal the current values.
func (l *lu) modeSelect(cdb []byte, out []byte) *scsiResult {
	six := cdb[0] == 0x15
	var plen int
	if six {
		plen = int(cdb[4])
	} else {
		plen = int(be16(cdb[7:]))
	}
	if cdb[1]&0x01 != 0 { // SP: saving not supported
		r := illegal(ascInvalidFieldInCDB)
		r.wantOut = plen
		return r
	}
	if plen == 0 {
		return &scsiResult{status: statusGood}
	}
	if len(out) < plen {
		r := illegal(ascParamListLength)
		r.wantOut = plen
		return r
	}
	p := out[:plen]
	var hdr, bdl int
	if six {
		if plen < 4 {
			return &scsiResult{status: statusCheckCondition, sense: fixedSense(senseIllegalRequest, ascParamListLength, 0, false), wantOut: plen}
		}
		hdr, bdl = 4, int(p[3])
	} else {
		if plen < 8 {
			return &scsiResult{status: statusCheckCondition, sense: fixedSense(senseIllegalRequest, ascParamListLength, 0, false), wantOut: plen}
		}
		hdr, bdl = 8, int(be16(p[6:]))
	}
	rest := p[min(hdr+bdl, len(p)):]
	bad := func() *scsiResult {
		r := illegal(ascInvalidFieldInParam)
		r.wantOut = plen
		return r
	}
	for len(rest) >= 2 {
		page := rest[0] & 0x3f
		n := int(rest[1]) + 2
		if n > len(rest) {
			return bad()
		}
		cur := l.modePage(page, 0)
		if cur == nil || len(cur) != n {
			return bad()
		}
		if page == 0x0a {
			l.mu.Lock()
			l.dsense = rest[2]&0x04 != 0
			l.swp = rest[4]&0x08 != 0
			l.mu.Unlock()
		}
		rest = rest[n:]
	}
	return &scsiResult{status: statusGood, wantOut: plen}
}

// Opcodes REPORT SUPPORTED OPERATION CODES lists: opcode, service action
// (or -1) and CDB length.
var supportedOps = [...]struct {
	op  byte
	sa  int
	len int
}{
	{0x00, -1, 6}, {0x03, -1, 6}, {0x08, -1, 6}, {0x0a, -1, 6}, {0x12, -1, 6},
	{0x15, -1, 6}, {0x16, -1, 6}, {0x17, -1, 6}, {0x1a, -1, 6}, {0x1b, -1, 6},
	{0x1e, -1, 6}, {0x25, -1, 10}, {0x28, -1, 10}, {0x2a, -1, 10}, {0x2e, -1, 10},
	{0x2f, -1, 10}, {0x34, -1, 10}, {0x35, -1, 10}, {0x41, -1, 10}, {0x55, -1, 10},
	{0x56, -1, 10}, {0x57, -1, 10}, {0x5a, -1, 10},
	{0x5e, 0, 10}, {0x5e, 1, 10}, {0x5e, 2, 10}, {0x5e, 3, 10},
	{0x5f, 0, 10}, {0x5f, 1, 10}, {0x5f, 2, 10}, {0x5f, 3, 10}, {0x5f, 4, 10}, {0x5f, 5, 10}, {0x5f, 6, 10},
	{0x88, -1, 16}, {0x89, -1, 16}, {0x8a, -1, 16}, {0x8b, -1, 16}, {0x8e, -1, 16},
	{0x8f, -1, 16}, {0x90, -1, 16}, {0x91, -1, 16}, {0x93, -1, 16}, {0x9e, 0x10, 16},
	{0xa0, -1, 12}, {0xa3, 0x0c, 12}, {0xa8, -1, 12}, {0xaa, -1, 12}, {0xae, -1, 12}, {0xaf, -1, 12},
}

func (l *lu) opSupported(op byte, sa int) (int, bool) {
	switch {
	case op == 0x42 || (op == 0x9e && sa == 0x12):
		if l.punch == nil {
			return 0, false
		}
		if op == 0x42 {
			return 10, true
		}
		return 16, true
	}
	for _, s := range supportedOps {
		if s.op == op && s.sa == sa {
			return s.len, true
		}
	}
	return 0, false
}

func (l *lu) reportOpcodes(cdb []byte) *scsiResult {
	opts := cdb[2] & 0x07
	rctd := cdb[2]&0x80 != 0
	reqOp := cdb[3]
	reqSA := int(be16(cdb[4:]))
	alloc := int(be32(cdb[6:]))
	tdesc := func() []byte {
		t := make([]byte, 12)
		binary.BigEndian.PutUint16(t, 0x0a)
		return t
	}
	switch opts {
	case 0:
		d := make([]byte, 4)
		var list []struct {
			op  byte
			sa  int
			len int
		}
		list = append(list, supportedOps[:]...)
		if l.punch != nil {
			list = append(list, struct {
				op  byte
				sa  int
				len int
			}{0x42, -1, 10}, struct {
				op  byte
				sa  int
				len int
			}{0x9e, 0x12, 16})
		}
		sort.SliceStable(list, func(i, j int) bool { return list[i].op < list[j].op })
		for _, s := range list {
			e := make([]byte, 8)
			e[0] = s.op
			if s.sa >= 0 {
				binary.BigEndian.PutUint16(e[2:], uint16(s.sa))
				e[5] |= 0x01 // SERVACTV
			}
			binary.BigEndian.PutUint16(e[6:], uint16(s.len))
			if rctd {
				e[5] |= 0x02 // CTDP
				e = append(e, tdesc()...)
			}
			d = append(d, e...)
		}
		binary.BigEndian.PutUint32(d, uint32(len(d)-4))
		return good(trunc(d, alloc))
	case 1, 2, 3:
		sa := -1
		if opts == 2 || (opts == 3) {
			sa = reqSA
		}
		n, ok := l.opSupported(reqOp, sa)
		if !ok && opts == 3 {
			n, ok = l.opSupported(reqOp, -1)
			if ok && reqSA != 0 {
				ok = false
			}
		}
		if opts == 1 {
			// Commands with service actions cannot be asked without one.
			for _, s := range supportedOps {
				if s.op == reqOp && s.sa >= 0 {
					return illegal(ascInvalidFieldInCDB)
				}
			}
		}
		if opts == 2 {
			hasSA := false
			for _, s := range supportedOps {
				if s.op == reqOp && s.sa >= 0 {
					hasSA = true
				}
			}
			if !hasSA && !(reqOp == 0x9e) {
				return illegal(ascInvalidFieldInCDB)
			}
		}
		d := make([]byte, 4)
		if ok {
			d[1] = 0x03 // supported as in the standard
			binary.BigEndian.PutUint16(d[2:], uint16(n))
			usage := make([]byte, n)
			usage[0] = reqOp
			for i := 1; i < n; i++ {
				usage[i] = 0xff
			}
			if sa >= 0 {
				usage[1] = byte(sa)
			}
			d = append(d, usage...)
		} else {
			d[1] = 0x01 // not supported
		}
		if rctd {
			d[1] |= 0x80
			d = append(d, tdesc()...)
		}
		return good(trunc(d, alloc))
	}
	return illegal(ascInvalidFieldInCDB)
}

// SPC-2 RESERVE/RELEASE.
func (l *lu) reserveRelease(nexus string, op byte) *scsiResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch op {
	case 0x16, 0x56:
		if l.pr.rtype != 0 {
			return &scsiResult{status: statusReservationConflict}
		}
		if l.reserve != "" && l.reserve != nexus {
			return &scsiResult{status: statusReservationConflict}
		}
		l.reserve = nexus
	default:
		if l.reserve == nexus {
			l.reserve = ""
		}
	}
	return good(nil)
}

// conflict applies SPC-2 and persistent reservations to a command.
func (l *lu) conflict(nexus string, op byte, cdb []byte) *scsiResult {
	switch op {
	case 0x12, 0xa0, 0x03, 0x5e, 0x5f, 0xa3, 0x25, 0x9e:
		if op == 0x5f || op == 0x5e {
			l.mu.Lock()
			held := l.reserve != "" && l.reserve != nexus
			l.mu.Unlock()
			if held {
				return &scsiResult{status: statusReservationConflict}
			}
		}
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserve != "" && l.reserve != nexus {
		if op == 0x17 || op == 0x57 {
			return nil
		}
		return &scsiResult{status: statusReservationConflict}
	}
	if l.pr.rtype == 0 || l.pr.isHolder(nexus) {
		return nil
	}
	_, registered := l.pr.regs[nexus]
	write := isWriteOp(op)
	read := isReadOp(op)
	switch l.pr.rtype {
	case prWE:
		if write {
			return &scsiResult{status: statusReservationConflict}
		}
	case prEA:
		if write || read {
			return &scsiResult{status: statusReservationConflict}
		}
	case prWERO, prWEAR:
		if write && !registered {
			return &scsiResult{status: statusReservationConflict}
		}
	case prEARO, prEAAR:
		if (write || read) && !registered {
			return &scsiResult{status: statusReservationConflict}
		}
	}
	if (op == 0x16 || op == 0x56) && l.pr.rtype != 0 {
		return &scsiResult{status: statusReservationConflict}
	}
	return nil
}

func isWriteOp(op byte) bool {
	switch op {
	case 0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e, 0x41, 0x93, 0x89, 0x8b, 0x42, 0x35, 0x91, 0x15, 0x55:
		return true
	}
	return false
}

func isReadOp(op byte) bool {
	switch op {
	case 0x08, 0x28, 0xa8, 0x88, 0x2f, 0xaf, 0x8f, 0x34, 0x90:
		return true
	}
	return false
}
