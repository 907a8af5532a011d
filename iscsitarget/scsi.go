package iscsitarget

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/xpboot/xpboot/blockdev"
)

// SCSI status codes and sense keys (SAM-5, SPC-4).
const (
	statusGood                = 0x00
	statusCheckCondition      = 0x02
	statusConditionMet        = 0x04
	statusReservationConflict = 0x18
	statusTaskSetFull         = 0x28

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
//
// READ data is not in data: src names the device range (srcOff, srcLen
// bytes) the transport copies into bounded chunks as it sends them, so a
// command never holds its whole transfer in memory (see sendResult).
type scsiResult struct {
	status  byte
	sense   []byte
	data    []byte
	wantOut int

	src    *lu
	srcOff int64
	srcLen int
}

// dataLen is the length of the command's Data-In, buffered or streamed.
func (r *scsiResult) dataLen() int {
	if r.src != nil {
		return r.srcLen
	}
	return len(r.data)
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
	cawMu   sync.RWMutex             // COMPARE AND WRITE excludes other writes

	mu      sync.Mutex
	swp     bool   // software write protect (control mode page)
	dsense  bool   // descriptor sense (control mode page)
	reserve string // SPC-2 reservation holder nexus
	pr      prState
}

func newLU(t *target, l LUN, maxXfer int) *lu {
	// A device that refuses writes is served write-protected whatever
	// the LUN says, so writes end in DATA PROTECT, not a medium error.
	ro := l.ReadOnly || l.Device.ReadOnly()
	u := &lu{tgt: t, num: l.Number, maxXfer: maxXfer, dev: l.Device, ro: ro, blocks: uint64(l.Device.Size()) / blockSize, serial: l.Serial}
	sum := sha256.Sum256([]byte(t.name + "\x00" + string(rune(l.Number)) + "\x00" + l.Serial))
	// NAA 3 (locally assigned), 60 bits from the hash: unique per target+LUN.
	copy(u.naa[:], sum[:8])
	u.naa[0] = 0x30 | u.naa[0]&0x0f
	if u.serial == "" {
		u.serial = "XPB" + hexUpper(sum[8:16])
	}
	u.pr.regs = make(map[string]uint64)
	// Thin provisioning (UNMAP, WRITE SAME with UNMAP, GET LBA STATUS,
	// LBPU/LBPWS in VPD B2) is offered where the device can deallocate
	// and the unit is writable.
	if !u.ro && blockdev.CanDiscard(l.Device) {
		u.punch = l.Device.Discard
	}
	return u
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
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

func trunc(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
