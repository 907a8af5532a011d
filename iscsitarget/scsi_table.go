package iscsitarget

import (
	"encoding/binary"
)

// SCSI operation codes this target knows (SPC-4, SBC-3).
const (
	cmdTestUnitReady   = 0x00
	cmdRequestSense    = 0x03
	cmdRead6           = 0x08
	cmdWrite6          = 0x0a
	cmdInquiry         = 0x12
	cmdModeSelect6     = 0x15
	cmdReserve6        = 0x16
	cmdRelease6        = 0x17
	cmdModeSense6      = 0x1a
	cmdStartStopUnit   = 0x1b
	cmdPreventAllow    = 0x1e
	cmdReadCapacity10  = 0x25
	cmdRead10          = 0x28
	cmdWrite10         = 0x2a
	cmdWriteVerify10   = 0x2e
	cmdVerify10        = 0x2f
	cmdPrefetch10      = 0x34
	cmdSyncCache10     = 0x35
	cmdWriteSame10     = 0x41
	cmdUnmap           = 0x42
	cmdModeSelect10    = 0x55
	cmdReserve10       = 0x56
	cmdRelease10       = 0x57
	cmdModeSense10     = 0x5a
	cmdPRIn            = 0x5e
	cmdPROut           = 0x5f
	cmdRead16          = 0x88
	cmdCompareAndWrite = 0x89
	cmdWrite16         = 0x8a
	cmdOrWrite16       = 0x8b
	cmdWriteVerify16   = 0x8e
	cmdVerify16        = 0x8f
	cmdPrefetch16      = 0x90
	cmdSyncCache16     = 0x91
	cmdWriteSame16     = 0x93
	cmdServiceIn16     = 0x9e // READ CAPACITY(16), GET LBA STATUS
	cmdReportLUNs      = 0xa0
	cmdMaintenanceIn   = 0xa3 // REPORT SUPPORTED OPERATION CODES
	cmdRead12          = 0xa8
	cmdWrite12         = 0xaa
	cmdWriteVerify12   = 0xae
	cmdVerify12        = 0xaf
)

// Service actions of the commands that have them.
const (
	saReadCapacity16 = 0x10
	saGetLBAStatus   = 0x12
	saReportOpcodes  = 0x0c
)

// dataDir is the direction of a command's data phase.
type dataDir uint8

const (
	dirNone dataDir = iota
	dirIn           // Data-In: target to initiator
	dirOut          // Data-Out: initiator to target
)

// access classifies a command for reservations (SPC-4 §5.9, §5.13).
type access uint8

const (
	accOther  access = iota // conflicts with any SPC-2 reservation of another nexus
	accExempt               // allowed whatever the reservation (INQUIRY, REPORT LUNS, …)
	accPR                   // PERSISTENT RESERVE IN/OUT: only SPC-2 reservations conflict
	accRead                 // reads the medium
	accWrite                // changes the medium (or its cache)
)

// scsiTask is one command as a handler sees it, with the LBA range the
// dispatcher decoded and checked.
type scsiTask struct {
	cdb    []byte
	out    []byte // Data-Out received
	edtl   int
	nexus  string
	sess   *session
	lba, n uint64 // block commands only
}

// scsiCmd is one row of the command table: everything the target knows
// about an operation code (and service action) is here, and execSCSI,
// cdbLen, REPORT SUPPORTED OPERATION CODES and the reservation checks all
// read it.
type scsiCmd struct {
	op     byte
	sa     int // service action (CDB byte 1, bits 0-4), -1 for none
	name   string
	cdbLen int
	dir    dataDir
	acc    access
	// sas are the service actions of a row whose handler decodes them
	// itself (PERSISTENT RESERVE IN/OUT): one row, one RSOC entry each.
	sas []int
	// thin commands exist only on LUs whose device can deallocate
	// (blockdev.CanDiscard: a raw file); elsewhere they are reported as
	// unsupported.
	thin bool

	// Block commands (rng != nil) are checked by the dispatcher before
	// their handler runs, in this order: check (the command's own CDB
	// fields), LBA range, write protection (wp), and the bytes the data
	// phase moves (moved) against the LU's MAXIMUM TRANSFER LENGTH.
	// Failures after check carry outLen as the Data-Out the command would
	// have had, so the transport can still drain and report it.
	rng    func(cdb []byte) (lba, n uint64)
	check  func(l *lu, cdb []byte) *scsiResult
	wp     bool
	outLen func(cdb []byte, n uint64) int
	moved  func(cdb []byte, n uint64) uint64

	run func(l *lu, x scsiTask) *scsiResult
}

// Data-phase sizes of the block commands.
func blocksOut(_ []byte, n uint64) int       { return int(n) * blockSize }
func blocksMoved(_ []byte, n uint64) uint64  { return n * blockSize }
func noData(_ []byte, _ uint64) int          { return 0 }
func nothingMoved(_ []byte, _ uint64) uint64 { return 0 }

// verifyOut is VERIFY's Data-Out: BYTCHK 01b sends every block, 11b one.
func verifyOut(cdb []byte, n uint64) int {
	switch (cdb[1] >> 1) & 3 {
	case 1:
		return blocksOut(cdb, n)
	case 3:
		return blockSize
	}
	return 0
}

func verifyMoved(cdb []byte, n uint64) uint64 { return uint64(verifyOut(cdb, n)) }

// COMPARE AND WRITE and WRITE SAME have their own limits in the Block
// Limits page (MAXIMUM COMPARE AND WRITE LENGTH, MAXIMUM WRITE SAME
// LENGTH), checked by their handlers; their data phase is small.
func cawOut(_ []byte, n uint64) int { return int(2 * n * blockSize) }

// writeSameOut: one block of pattern, none with NDOB (WRITE SAME(16)).
func writeSameOut(cdb []byte, _ uint64) int {
	if cdb[0] == cmdWriteSame16 && cdb[1]&0x01 != 0 {
		return 0
	}
	return blockSize
}

// checkProtect refuses protection information fields: the LUs have none.
func checkProtect(_ *lu, cdb []byte) *scsiResult {
	if protectField(cdb) != 0 {
		return illegal(ascInvalidFieldInCDB)
	}
	return nil
}

// Handlers that ignore the task or the LU.
func runGood(*lu, scsiTask) *scsiResult { return good(nil) }

// The command table and its opcode index are built once at package
// initialisation (init, because handlers such as REPORT SUPPORTED
// OPERATION CODES read the table themselves) and never changed after.
var (
	scsiCommands []scsiCmd
	opIndex      [256]int16 // first row of each opcode, -1: unknown
)

func init() {
	scsiCommands = commandTable()
	for i := range opIndex {
		opIndex[i] = -1
	}
	for i := len(scsiCommands) - 1; i >= 0; i-- {
		opIndex[scsiCommands[i].op] = int16(i)
	}
}

// commandTable is the command table, sorted by opcode; rows of one opcode
// are adjacent and sorted by service action. REPORT SUPPORTED OPERATION
// CODES lists them in this order.
func commandTable() []scsiCmd {
	return []scsiCmd{
		{op: cmdTestUnitReady, sa: -1, name: "TEST UNIT READY", cdbLen: 6, run: runGood},
		{op: cmdRequestSense, sa: -1, name: "REQUEST SENSE", cdbLen: 6, dir: dirIn, acc: accExempt,
			run: func(_ *lu, x scsiTask) *scsiResult { return requestSense(x.cdb, nil) }},
		{op: cmdRead6, sa: -1, name: "READ(6)", cdbLen: 6, dir: dirIn, acc: accRead,
			rng: rwRange, check: checkProtect, outLen: noData, moved: blocksMoved, run: (*lu).read},
		{op: cmdWrite6, sa: -1, name: "WRITE(6)", cdbLen: 6, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdInquiry, sa: -1, name: "INQUIRY", cdbLen: 6, dir: dirIn, acc: accExempt,
			run: func(l *lu, x scsiTask) *scsiResult { return l.inquiry(x.cdb) }},
		{op: cmdModeSelect6, sa: -1, name: "MODE SELECT(6)", cdbLen: 6, dir: dirOut, acc: accWrite,
			run: func(l *lu, x scsiTask) *scsiResult { return l.modeSelect(x.cdb, x.out) }},
		{op: cmdReserve6, sa: -1, name: "RESERVE(6)", cdbLen: 6, run: runReserveRelease},
		{op: cmdRelease6, sa: -1, name: "RELEASE(6)", cdbLen: 6, run: runReserveRelease},
		{op: cmdModeSense6, sa: -1, name: "MODE SENSE(6)", cdbLen: 6, dir: dirIn,
			run: func(l *lu, x scsiTask) *scsiResult { return l.modeSense(x.cdb) }},
		{op: cmdStartStopUnit, sa: -1, name: "START STOP UNIT", cdbLen: 6, run: runGood},
		{op: cmdPreventAllow, sa: -1, name: "PREVENT ALLOW MEDIUM REMOVAL", cdbLen: 6, run: runGood},
		{op: cmdReadCapacity10, sa: -1, name: "READ CAPACITY(10)", cdbLen: 10, dir: dirIn, acc: accExempt,
			run: func(l *lu, x scsiTask) *scsiResult { return l.readCapacity10(x.cdb) }},
		{op: cmdRead10, sa: -1, name: "READ(10)", cdbLen: 10, dir: dirIn, acc: accRead,
			rng: rwRange, check: checkProtect, outLen: noData, moved: blocksMoved, run: (*lu).read},
		{op: cmdWrite10, sa: -1, name: "WRITE(10)", cdbLen: 10, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdWriteVerify10, sa: -1, name: "WRITE AND VERIFY(10)", cdbLen: 10, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdVerify10, sa: -1, name: "VERIFY(10)", cdbLen: 10, dir: dirOut, acc: accRead,
			rng: rwRange, check: checkVerify, outLen: verifyOut, moved: verifyMoved, run: (*lu).verify},
		{op: cmdPrefetch10, sa: -1, name: "PRE-FETCH(10)", cdbLen: 10, acc: accRead,
			rng: rwRange, outLen: noData, moved: nothingMoved, run: runGood},
		{op: cmdSyncCache10, sa: -1, name: "SYNCHRONIZE CACHE(10)", cdbLen: 10, acc: accWrite,
			rng: rwRange, outLen: noData, moved: nothingMoved, run: (*lu).syncCache},
		{op: cmdWriteSame10, sa: -1, name: "WRITE SAME(10)", cdbLen: 10, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkWriteSame, wp: true, outLen: writeSameOut, moved: nothingMoved, run: (*lu).writeSame},
		{op: cmdUnmap, sa: -1, name: "UNMAP", cdbLen: 10, dir: dirOut, acc: accWrite, thin: true,
			run: func(l *lu, x scsiTask) *scsiResult { return l.unmap(x.cdb, x.out) }},
		{op: cmdModeSelect10, sa: -1, name: "MODE SELECT(10)", cdbLen: 10, dir: dirOut, acc: accWrite,
			run: func(l *lu, x scsiTask) *scsiResult { return l.modeSelect(x.cdb, x.out) }},
		{op: cmdReserve10, sa: -1, name: "RESERVE(10)", cdbLen: 10, run: runReserveRelease},
		{op: cmdRelease10, sa: -1, name: "RELEASE(10)", cdbLen: 10, run: runReserveRelease},
		{op: cmdModeSense10, sa: -1, name: "MODE SENSE(10)", cdbLen: 10, dir: dirIn,
			run: func(l *lu, x scsiTask) *scsiResult { return l.modeSense(x.cdb) }},
		{op: cmdPRIn, sa: -1, sas: []int{0, 1, 2, 3}, name: "PERSISTENT RESERVE IN", cdbLen: 10, dir: dirIn, acc: accPR, run: runPRIn},
		{op: cmdPROut, sa: -1, sas: []int{0, 1, 2, 3, 4, 5, 6}, name: "PERSISTENT RESERVE OUT", cdbLen: 10, dir: dirOut, acc: accPR, run: runPROut},
		{op: cmdRead16, sa: -1, name: "READ(16)", cdbLen: 16, dir: dirIn, acc: accRead,
			rng: rwRange, check: checkProtect, outLen: noData, moved: blocksMoved, run: (*lu).read},
		{op: cmdCompareAndWrite, sa: -1, name: "COMPARE AND WRITE", cdbLen: 16, dir: dirOut, acc: accWrite,
			rng: cawRange, check: checkProtect, wp: true, outLen: cawOut, moved: nothingMoved, run: (*lu).compareAndWrite},
		{op: cmdWrite16, sa: -1, name: "WRITE(16)", cdbLen: 16, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdOrWrite16, sa: -1, name: "ORWRITE(16)", cdbLen: 16, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).orWrite},
		{op: cmdWriteVerify16, sa: -1, name: "WRITE AND VERIFY(16)", cdbLen: 16, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdVerify16, sa: -1, name: "VERIFY(16)", cdbLen: 16, dir: dirOut, acc: accRead,
			rng: rwRange, check: checkVerify, outLen: verifyOut, moved: verifyMoved, run: (*lu).verify},
		{op: cmdPrefetch16, sa: -1, name: "PRE-FETCH(16)", cdbLen: 16, acc: accRead,
			rng: rwRange, outLen: noData, moved: nothingMoved, run: runGood},
		{op: cmdSyncCache16, sa: -1, name: "SYNCHRONIZE CACHE(16)", cdbLen: 16, acc: accWrite,
			rng: rwRange, outLen: noData, moved: nothingMoved, run: (*lu).syncCache},
		{op: cmdWriteSame16, sa: -1, name: "WRITE SAME(16)", cdbLen: 16, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkWriteSame, wp: true, outLen: writeSameOut, moved: nothingMoved, run: (*lu).writeSame},
		{op: cmdServiceIn16, sa: saReadCapacity16, name: "READ CAPACITY(16)", cdbLen: 16, dir: dirIn, acc: accExempt,
			run: func(l *lu, x scsiTask) *scsiResult { return l.readCapacity16(x.cdb) }},
		{op: cmdServiceIn16, sa: saGetLBAStatus, name: "GET LBA STATUS", cdbLen: 16, dir: dirIn, acc: accExempt, thin: true,
			run: func(l *lu, x scsiTask) *scsiResult { return l.getLBAStatus(x.cdb) }},
		{op: cmdReportLUNs, sa: -1, name: "REPORT LUNS", cdbLen: 12, dir: dirIn, acc: accExempt,
			run: func(l *lu, x scsiTask) *scsiResult { return reportLUNs(l.tgt, x.cdb) }},
		{op: cmdMaintenanceIn, sa: saReportOpcodes, name: "REPORT SUPPORTED OPERATION CODES", cdbLen: 12, dir: dirIn, acc: accExempt,
			run: func(l *lu, x scsiTask) *scsiResult { return l.reportOpcodes(x.cdb) }},
		{op: cmdRead12, sa: -1, name: "READ(12)", cdbLen: 12, dir: dirIn, acc: accRead,
			rng: rwRange, check: checkProtect, outLen: noData, moved: blocksMoved, run: (*lu).read},
		{op: cmdWrite12, sa: -1, name: "WRITE(12)", cdbLen: 12, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdWriteVerify12, sa: -1, name: "WRITE AND VERIFY(12)", cdbLen: 12, dir: dirOut, acc: accWrite,
			rng: rwRange, check: checkProtect, wp: true, outLen: blocksOut, moved: blocksMoved, run: (*lu).write},
		{op: cmdVerify12, sa: -1, name: "VERIFY(12)", cdbLen: 12, dir: dirOut, acc: accRead,
			rng: rwRange, check: checkVerify, outLen: verifyOut, moved: verifyMoved, run: (*lu).verify},
	}
}

// opRows returns the table rows of op (several for service actions).
func opRows(op byte) []scsiCmd {
	i := opIndex[op]
	if i < 0 {
		return nil
	}
	j := int(i)
	for j < len(scsiCommands) && scsiCommands[j].op == op {
		j++
	}
	return scsiCommands[i:j]
}

// hasServiceActions reports whether op's rows are told apart by service
// action.
func hasServiceActions(op byte) bool {
	rows := opRows(op)
	return len(rows) > 0 && (rows[0].sa >= 0 || len(rows[0].sas) > 0)
}

// lookupCmd returns the row for cdb's opcode and service action, or nil.
func lookupCmd(cdb []byte) *scsiCmd {
	rows := opRows(cdb[0])
	if len(rows) == 0 {
		return nil
	}
	if rows[0].sa < 0 {
		return &rows[0]
	}
	sa := int(cdb[1] & 0x1f)
	for i := range rows {
		if rows[i].sa == sa {
			return &rows[i]
		}
	}
	return nil
}

// available reports whether this LU offers the command.
func (c *scsiCmd) available(l *lu) bool { return !c.thin || l.punch != nil }

// opAccess is the reservation class of op (all rows of an opcode share it).
func opAccess(op byte) access {
	if rows := opRows(op); len(rows) > 0 {
		return rows[0].acc
	}
	return accOther
}

func isWriteOp(op byte) bool { return opAccess(op) == accWrite }
func isReadOp(op byte) bool  { return opAccess(op) == accRead }

// cdbLen returns the CDB length of op: the table's, or for unknown
// opcodes the one implied by the opcode group.
func cdbLen(op byte) int {
	if rows := opRows(op); len(rows) > 0 {
		return rows[0].cdbLen
	}
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

// cmdName names a CDB's command for logs.
func cmdName(cdb []byte) string {
	if len(cdb) == 0 {
		return ""
	}
	if c := lookupCmd(cdb); c != nil {
		return c.name
	}
	return "unknown"
}

// execSCSI runs one command. l is nil for a LUN that does not exist. Every
// command goes through here: reservations, the table lookup, and for
// block commands the CDB, range, write-protection and transfer-length
// checks, all before the handler allocates anything.
func execSCSI(l *lu, sess *session, cdb []byte, out []byte, edtl int) *scsiResult {
	if len(cdb) == 0 || len(cdb) < cdbLen(cdb[0]) {
		return illegal(ascInvalidFieldInCDB)
	}
	op := cdb[0]
	if l == nil {
		switch op {
		case cmdInquiry: // to an absent LUN: peripheral qualifier 011b
			if cdb[1]&1 != 0 {
				return illegal(ascLUNotSupported)
			}
			d := standardInquiry(nil)
			d[0] = 0x7f
			return good(trunc(d, int(be16(cdb[3:]))))
		case cmdReportLUNs:
			return reportLUNs(sess.tgt, cdb)
		case cmdRequestSense:
			return requestSense(cdb, fixedSense(senseIllegalRequest, ascLUNotSupported, 0, false))
		}
		return illegal(ascLUNotSupported)
	}
	if res := l.conflict(sess.nexus, op, cdb); res != nil {
		return res
	}
	c := lookupCmd(cdb)
	if c == nil || !c.available(l) {
		if hasServiceActions(op) {
			return illegal(ascInvalidFieldInCDB)
		}
		return illegal(ascInvalidOpcode)
	}
	x := scsiTask{cdb: cdb, out: out, edtl: edtl, nexus: sess.nexus, sess: sess}
	if c.rng != nil {
		if c.check != nil {
			if res := c.check(l, cdb); res != nil {
				return res
			}
		}
		x.lba, x.n = c.rng(cdb)
		want := c.outLen(cdb, x.n)
		fail := func(r *scsiResult) *scsiResult { r.wantOut = want; return r }
		if res := l.checkRange(x.lba, x.n); res != nil {
			return fail(res)
		}
		if c.wp && l.writeProtected() {
			return fail(checkCondition(senseDataProtect, ascWriteProtected))
		}
		// MAXIMUM TRANSFER LENGTH of the Block Limits VPD page (SBC-3
		// §6.5.3): longer transfers are refused, not served.
		if c.moved(cdb, x.n) > uint64(l.maxXfer) {
			return fail(illegal(ascInvalidFieldInCDB))
		}
	}
	return c.run(l, x)
}

func runReserveRelease(l *lu, x scsiTask) *scsiResult { return l.reserveRelease(x.nexus, x.cdb[0]) }
func runPRIn(l *lu, x scsiTask) *scsiResult           { return l.prIn(x.cdb) }
func runPROut(l *lu, x scsiTask) *scsiResult          { return l.prOut(x.nexus, x.cdb, x.out) }

// rwRange decodes LBA and transfer length of READ/WRITE/VERIFY-style CDBs.
func rwRange(cdb []byte) (uint64, uint64) {
	switch cdbLen(cdb[0]) {
	case 6:
		lba := uint64(cdb[1]&0x1f)<<16 | uint64(cdb[2])<<8 | uint64(cdb[3])
		n := uint64(cdb[4])
		if n == 0 && (cdb[0] == cmdRead6 || cdb[0] == cmdWrite6) {
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

// cawRange: COMPARE AND WRITE has a one-byte NUMBER OF LOGICAL BLOCKS.
func cawRange(cdb []byte) (uint64, uint64) { return be64(cdb[2:]), uint64(cdb[13]) }

// protectField returns the RDPROTECT/WRPROTECT/VRPROTECT field (no PI here).
func protectField(cdb []byte) byte {
	if cdbLen(cdb[0]) == 6 {
		return 0
	}
	return cdb[1] >> 5
}

func (l *lu) checkRange(lba, n uint64) *scsiResult {
	if lba > l.blocks || n > l.blocks-lba {
		return illegal(ascLBAOutOfRange)
	}
	return nil
}

// opSupported reports the CDB length of op with service action sa (-1:
// none) if this LU offers it.
func (l *lu) opSupported(op byte, sa int) (int, bool) {
	for _, c := range opRows(op) {
		if !c.available(l) {
			continue
		}
		if c.sa == sa && len(c.sas) == 0 {
			return c.cdbLen, true
		}
		for _, x := range c.sas {
			if x == sa {
				return c.cdbLen, true
			}
		}
	}
	return 0, false
}

// reportOpcodes is REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), listed
// from the command table.
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
		for i := range scsiCommands {
			s := &scsiCommands[i]
			if !s.available(l) {
				continue
			}
			sas := s.sas
			if len(sas) == 0 {
				sas = []int{s.sa}
			}
			for _, sa := range sas {
				e := make([]byte, 8)
				e[0] = s.op
				if sa >= 0 {
					binary.BigEndian.PutUint16(e[2:], uint16(sa))
					e[5] |= 0x01 // SERVACTV
				}
				binary.BigEndian.PutUint16(e[6:], uint16(s.cdbLen))
				if rctd {
					e[5] |= 0x02 // CTDP
					e = append(e, tdesc()...)
				}
				d = append(d, e...)
			}
		}
		binary.BigEndian.PutUint32(d, uint32(len(d)-4))
		return good(trunc(d, alloc))
	case 1, 2, 3:
		sa := -1
		if opts == 2 || opts == 3 {
			sa = reqSA
		}
		n, ok := l.opSupported(reqOp, sa)
		if !ok && opts == 3 {
			n, ok = l.opSupported(reqOp, -1)
			if ok && reqSA != 0 {
				ok = false
			}
		}
		// Commands with service actions cannot be asked without one, and
		// those without cannot be asked with one.
		if opts == 1 && hasServiceActions(reqOp) {
			return illegal(ascInvalidFieldInCDB)
		}
		if opts == 2 && !hasServiceActions(reqOp) {
			return illegal(ascInvalidFieldInCDB)
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
