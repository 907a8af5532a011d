package iscsitarget

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// CHAP (RFC 7143 §12.1.3, RFC 1994) with MD5, the one algorithm every
// initiator (and iPXE exclusively) offers.

const (
	chapMD5         = 5
	chapChallengeSz = 16   // bytes of random challenge we send
	maxCHAPBinary   = 1024 // RFC 7143 §12.1.3 limit on CHAP_C/CHAP_R
)

// ErrAuth is the cause of every failed authentication; AuthLog receives an
// error wrapping it.
var ErrAuth = errors.New("iscsitarget: authentication failed")

// ErrUnknownUser is returned by a CHAPSecret callback for a user it does not
// know.
var ErrUnknownUser = errors.New("iscsitarget: unknown CHAP user")

// decodeCHAPBinary decodes a large-binary value: 0x/0X hexadecimal or 0b/0B
// base64 (RFC 7143 §6.1). Some initiators send base64 without padding.
func decodeCHAPBinary(s string) ([]byte, error) {
	if len(s) < 3 {
		return nil, fmt.Errorf("%w: binary value %q too short", ErrAuth, s)
	}
	var b []byte
	var err error
	switch s[:2] {
	case "0x", "0X":
		if len(s)-2 > 2*maxCHAPBinary {
			return nil, fmt.Errorf("%w: binary value longer than %d bytes", ErrAuth, maxCHAPBinary)
		}
		h := s[2:]
		if len(h)%2 == 1 {
			h = "0" + h
		}
		b, err = hex.DecodeString(h)
	case "0b", "0B":
		if len(s)-2 > (maxCHAPBinary+2)/3*4 {
			return nil, fmt.Errorf("%w: binary value longer than %d bytes", ErrAuth, maxCHAPBinary)
		}
		v := strings.TrimRight(s[2:], "=")
		b, err = base64.RawStdEncoding.DecodeString(v)
	default:
		return nil, fmt.Errorf("%w: binary value must start with 0x or 0b", ErrAuth)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: bad binary value: %v", ErrAuth, err)
	}
	if len(b) == 0 || len(b) > maxCHAPBinary {
		return nil, fmt.Errorf("%w: binary value of %d bytes", ErrAuth, len(b))
	}
	return b, nil
}

// chapMD5Response computes MD5(id ‖ secret ‖ challenge) (RFC 1994 §4.1).
func chapMD5Response(id byte, secret, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	return h.Sum(nil)
}

// chapEqual compares two responses in constant time.
func chapEqual(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// chapAlgorithm picks MD5 from a CHAP_A list, or reports that none is usable.
func chapAlgorithm(list string) bool {
	for _, v := range strings.Split(list, ",") {
		if n, ok := parseNumber(strings.TrimSpace(v)); ok && n == chapMD5 {
			return true
		}
	}
	return false
}
