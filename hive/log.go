package hive

import (
	"fmt"
	"io"
	"slices"
)

// Old-format transaction logs (Windows NT to XP/2003: system.LOG, file
// type 1; yarp's OldDirtyHive.LOG1 is one): a 512-byte copy of the base
// block, then at offset 512 the signature "DIRT" and a bitmap with one bit
// per 512-byte sector of the hive bins data, then, from the next 512-byte
// boundary, the dirty sectors in bitmap order. See Suhanov's specification,
// "Format of transaction log files", and ../shared/research/hive.md §6.

const (
	logHeaderSize = 512
	logSector     = 512
	logTypeOld    = 1
	logTypeOldAlt = 2 // .ALT files of the same layout
)

// RecoverOldLog replays an old-format transaction log over a dirty hive
// and returns the recovered hive file, clean (equal sequence numbers,
// valid checksum) and ready for NewFile or NewEditor. The log must be
// complete (equal sequence numbers, valid checksum) and belong to this
// hive (same timestamp in both base blocks), otherwise nothing is
// replayed and the error says why. A hive that is not dirty is returned
// unchanged.
func RecoverOldLog(hive io.ReaderAt, hiveSize int64, log io.ReaderAt, logSize int64) ([]byte, error) {
	if hiveSize < baseBlockSize {
		return nil, fileErr(0, "file of %d bytes is shorter than the base block", hiveSize)
	}
	primary := make([]byte, baseBlockSize)
	if _, err := hive.ReadAt(primary, 0); err != nil {
		return nil, fmt.Errorf("hive: reading base block: %w", err)
	}
	if string(primary[:4]) != "regf" {
		return nil, fileErr(0, "signature %q is not \"regf\"", primary[:4])
	}
	pLen := le.Uint32(primary[hdrLength:])
	if pLen%binAlign != 0 || int64(pLen) > hiveSize-baseBlockSize {
		return nil, fileErr(hdrLength, "hive bins data length 0x%x does not fit the file", pLen)
	}
	logErr := func(off int64, format string, args ...any) error {
		return &FormatError{Off: off, Msg: "log: " + fmt.Sprintf(format, args...)}
	}
	if logSize < logHeaderSize+logSector {
		return nil, logErr(0, "log of %d bytes is too short", logSize)
	}
	hdr := make([]byte, logHeaderSize)
	if _, err := log.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("hive: reading log header: %w", err)
	}
	switch {
	case string(hdr[:4]) != "regf":
		return nil, logErr(0, "signature %q is not \"regf\"", hdr[:4])
	case le.Uint32(hdr[hdrType:]) != logTypeOld && le.Uint32(hdr[hdrType:]) != logTypeOldAlt:
		return nil, logErr(hdrType, "file type %d is not an old-format log (1); new-format logs (6) are not supported", le.Uint32(hdr[hdrType:]))
	case le.Uint32(hdr[hdrSeq1:]) != le.Uint32(hdr[hdrSeq2:]):
		return nil, logErr(hdrSeq2, "the log itself is incomplete (sequence numbers differ)")
	case checksum(hdr) != le.Uint32(hdr[hdrChecksum:]):
		return nil, logErr(hdrChecksum, "checksum mismatch")
	case string(hdr[hdrTimestamp:hdrTimestamp+8]) != string(primary[hdrTimestamp:hdrTimestamp+8]):
		return nil, logErr(hdrTimestamp, "timestamp differs from the hive's: the log belongs to another write")
	}
	if le.Uint32(primary[hdrSeq1:]) == le.Uint32(primary[hdrSeq2:]) && checksum(primary) == le.Uint32(primary[hdrChecksum:]) {
		b := make([]byte, hiveSize)
		_, err := hive.ReadAt(b, 0)
		return b, err
	}
	length := le.Uint32(hdr[hdrLength:])
	if length%binAlign != 0 || length == 0 {
		return nil, logErr(hdrLength, "hive bins data length 0x%x is not a multiple of 4096", length)
	}
	sectors := int64(length) / logSector
	vecOff := int64(logHeaderSize)
	vecLen := (sectors + 7) / 8
	if vecOff+4+vecLen > logSize {
		return nil, logErr(vecOff, "dirty vector of %d bytes exceeds the log", vecLen)
	}
	vec := make([]byte, 4+vecLen)
	if _, err := log.ReadAt(vec, vecOff); err != nil {
		return nil, fmt.Errorf("hive: reading dirty vector: %w", err)
	}
	if string(vec[:4]) != "DIRT" {
		return nil, logErr(vecOff, "dirty vector signature %q is not \"DIRT\"", vec[:4])
	}
	vec = vec[4:]
	dirty, last := int64(0), int64(-1)
	for s := int64(0); s < sectors; s++ {
		if vec[s/8]&(1<<(s%8)) != 0 {
			dirty++
			last = s
		}
	}
	dataOff := (vecOff + 4 + vecLen + logSector - 1) / logSector * logSector
	if dataOff+dirty*logSector > logSize {
		return nil, logErr(dataOff, "%d dirty sectors exceed the log", dirty)
	}
	// The recovered hive may be longer than the primary, but only by
	// sectors the log supplies.
	if int64(length) > max(int64(pLen), (last+1)*logSector+binAlign) {
		return nil, logErr(hdrLength, "hive bins data length 0x%x is beyond what the hive and the log hold", length)
	}
	out := make([]byte, baseBlockSize+int64(length))
	if _, err := hive.ReadAt(out[:baseBlockSize+min(int64(pLen), int64(length))], 0); err != nil {
		return nil, fmt.Errorf("hive: reading hive: %w", err)
	}
	copy(out, hdr) // the log's base block is the one the write was making
	pos := dataOff
	for s := int64(0); s < sectors; s++ {
		if vec[s/8]&(1<<(s%8)) == 0 {
			continue
		}
		dst := out[baseBlockSize+s*logSector : baseBlockSize+(s+1)*logSector]
		if _, err := log.ReadAt(dst, pos); err != nil {
			return nil, fmt.Errorf("hive: reading dirty sector %d: %w", s, err)
		}
		pos += logSector
	}
	le.PutUint32(out[hdrType:], 0)
	le.PutUint32(out[hdrSeq2:], le.Uint32(out[hdrSeq1:]))
	le.PutUint32(out[hdrChecksum:], checksum(out))
	return slices.Clip(out), nil
}
