package integrate

import "encoding/binary"

// peMachine returns the COFF machine of a PE image, or 0 when b is not
// one. Only the headers are read: a driver's architecture is all we need.
func peMachine(b []byte) uint16 {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return 0
	}
	off := int64(binary.LittleEndian.Uint32(b[0x3c:]))
	if off+6 > int64(len(b)) || string(b[off:off+4]) != "PE\x00\x00" {
		return 0
	}
	return binary.LittleEndian.Uint16(b[off+4:])
}

// peChecksumOffset returns the offset of the optional header's CheckSum
// field, or -1 when b is not a PE image.
func peChecksumOffset(b []byte) int {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return -1
	}
	off := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if off < 0 || off+24+68 > len(b) || string(b[off:off+4]) != "PE\x00\x00" {
		return -1
	}
	return off + 24 + 64 // signature, COFF header, then CheckSum at 64 in both PE32 and PE32+
}

// peChecksum computes the image checksum the loader and setupldr verify
// (the ImageHlp CheckSumMappedFile algorithm): a 16-bit one's-complement
// style sum over the file with the CheckSum field taken as zero, plus the
// file length.
func peChecksum(b []byte) uint32 {
	at := peChecksumOffset(b)
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		if at >= 0 && i >= at && i < at+4 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}

// setPEChecksum rewrites b's CheckSum field; it reports false when b is
// not a PE image.
func setPEChecksum(b []byte) bool {
	at := peChecksumOffset(b)
	if at < 0 {
		return false
	}
	binary.LittleEndian.PutUint32(b[at:], peChecksum(b))
	return true
}
