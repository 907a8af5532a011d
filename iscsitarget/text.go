package iscsitarget

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Text keys (RFC 7143 §6.1): "key=value" pairs separated by NUL bytes.

const (
	maxKeyLen   = 63   // RFC 7143 §6.1
	maxValueLen = 8192 // longest value we accept (CHAP_C may be 2+2048 hex digits)
	maxKeys     = 128  // keys in one negotiation step
	maxTextLen  = 64 * 1024
)

// ErrText reports malformed text key data.
var ErrText = errors.New("iscsitarget: malformed text key")

type kv struct{ key, value string }

// parseText splits a complete (reassembled) text data segment into ordered
// pairs. A trailing fragment without NUL is accepted, as some initiators
// omit the last terminator.
func parseText(b []byte) ([]kv, error) {
	if len(b) > maxTextLen {
		return nil, fmt.Errorf("%w: %d bytes of text", ErrText, len(b))
	}
	var out []kv
	for len(b) > 0 {
		var item []byte
		if i := bytes.IndexByte(b, 0); i >= 0 {
			item, b = b[:i], b[i+1:]
		} else {
			item, b = b, nil
		}
		if len(item) == 0 {
			continue // padding or doubled NUL
		}
		eq := bytes.IndexByte(item, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("%w: %q has no key=value form", ErrText, truncate(item))
		}
		if eq > maxKeyLen {
			return nil, fmt.Errorf("%w: key %q longer than %d bytes", ErrText, truncate(item[:eq]), maxKeyLen)
		}
		if len(item)-eq-1 > maxValueLen {
			return nil, fmt.Errorf("%w: value of %q longer than %d bytes", ErrText, item[:eq], maxValueLen)
		}
		if len(out) == maxKeys {
			return nil, fmt.Errorf("%w: more than %d keys", ErrText, maxKeys)
		}
		out = append(out, kv{string(item[:eq]), string(item[eq+1:])})
	}
	return out, nil
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}

// appendText appends the NUL-terminated pairs.
func appendText(b []byte, pairs []kv) []byte {
	for _, p := range pairs {
		b = append(b, p.key...)
		b = append(b, '=')
		b = append(b, p.value...)
		b = append(b, 0)
	}
	return b
}

// Special values of RFC 7143 §6.2.
const (
	valNotUnderstood = "NotUnderstood"
	valReject        = "Reject"
	valIrrelevant    = "Irrelevant"
)

// parseNumber parses a decimal, 0x-hex or 0b-base64-free numeric value.
func parseNumber(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var v uint64
	var err error
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		v, err = strconv.ParseUint(s[2:], 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
	}
	return v, err == nil
}

func parseBool(s string) (v, ok bool) {
	switch s {
	case "Yes":
		return true, true
	case "No":
		return false, true
	}
	return false, false
}

func boolString(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// params are the negotiated operational parameters of a connection and its
// session (RFC 7143 §13), starting at the RFC defaults.
type params struct {
	headerDigest, dataDigest bool
	maxConnections           uint64
	initialR2T               bool
	immediateData            bool
	initMaxRecvData          int // initiator's MaxRecvDataSegmentLength: our Data-In limit
	maxBurst                 int
	firstBurst               int
	defaultTime2Wait         uint64
	defaultTime2Retain       uint64
	maxOutstandingR2T        int
	dataPDUInOrder           bool
	dataSequenceInOrder      bool
	errorRecoveryLevel       uint64
}

func defaultParams() params {
	return params{
		maxConnections:      1,
		initialR2T:          true,
		immediateData:       true,
		initMaxRecvData:     8192,
		maxBurst:            262144,
		firstBurst:          65536,
		defaultTime2Wait:    2,
		defaultTime2Retain:  20,
		maxOutstandingR2T:   1,
		dataPDUInOrder:      true,
		dataSequenceInOrder: true,
	}
}

// targetLimits are this target's side of the negotiation.
type targetLimits struct {
	maxRecvData       int
	maxBurst          int
	firstBurst        int
	maxOutstandingR2T int
	allowDigests      bool
	unsolicited       bool // offer ImmediateData=Yes and InitialR2T=No
}

// negotiateKey answers one operational key, updating p. It returns the value
// to send back ("" means no answer: declarative key). Unknown keys get
// NotUnderstood, bad values Reject; the connection is never dropped for it.
func negotiateKey(p *params, lim *targetLimits, key, value string) (answer string, known bool) {
	num := func(lo, hi uint64) (uint64, bool) {
		v, ok := parseNumber(value)
		if !ok || v < lo || v > hi {
			return 0, false
		}
		return v, true
	}
	switch key {
	case "HeaderDigest", "DataDigest":
		choice := ""
		for _, v := range strings.Split(value, ",") {
			if v == "None" || (v == "CRC32C" && lim.allowDigests) {
				choice = v
				break
			}
		}
		if choice == "" {
			return valReject, true
		}
		if key == "HeaderDigest" {
			p.headerDigest = choice == "CRC32C"
		} else {
			p.dataDigest = choice == "CRC32C"
		}
		return choice, true
	case "MaxConnections":
		if _, ok := num(1, 65535); !ok {
			return valReject, true
		}
		p.maxConnections = 1
		return "1", true
	case "InitialR2T":
		b, ok := parseBool(value)
		if !ok {
			return valReject, true
		}
		p.initialR2T = b || !lim.unsolicited // OR
		return boolString(p.initialR2T), true
	case "ImmediateData":
		b, ok := parseBool(value)
		if !ok {
			return valReject, true
		}
		p.immediateData = b && lim.unsolicited // AND
		return boolString(p.immediateData), true
	case "MaxRecvDataSegmentLength":
		v, ok := num(512, 1<<24-1)
		if !ok {
			return valReject, true
		}
		p.initMaxRecvData = int(v)
		return "", true // declarative
	case "MaxBurstLength":
		v, ok := num(512, 1<<24-1)
		if !ok {
			return valReject, true
		}
		p.maxBurst = min(int(v), lim.maxBurst)
		if p.firstBurst > p.maxBurst {
			p.firstBurst = p.maxBurst
		}
		return strconv.Itoa(p.maxBurst), true
	case "FirstBurstLength":
		v, ok := num(512, 1<<24-1)
		if !ok {
			return valReject, true
		}
		p.firstBurst = min(int(v), lim.firstBurst, p.maxBurst)
		return strconv.Itoa(p.firstBurst), true
	case "DefaultTime2Wait":
		v, ok := num(0, 3600)
		if !ok {
			return valReject, true
		}
		p.defaultTime2Wait = max(v, 2)
		return strconv.FormatUint(p.defaultTime2Wait, 10), true
	case "DefaultTime2Retain":
		v, ok := num(0, 3600)
		if !ok {
			return valReject, true
		}
		p.defaultTime2Retain = min(v, 20)
		return strconv.FormatUint(p.defaultTime2Retain, 10), true
	case "MaxOutstandingR2T":
		v, ok := num(1, 65535)
		if !ok {
			return valReject, true
		}
		p.maxOutstandingR2T = min(int(v), lim.maxOutstandingR2T)
		return strconv.Itoa(p.maxOutstandingR2T), true
	case "DataPDUInOrder", "DataSequenceInOrder":
		if _, ok := parseBool(value); !ok {
			return valReject, true
		}
		// OR with our "Yes": we only support ordered data.
		return "Yes", true
	case "ErrorRecoveryLevel":
		if _, ok := num(0, 2); !ok {
			return valReject, true
		}
		p.errorRecoveryLevel = 0
		return "0", true
	case "IFMarker", "OFMarker":
		// Removed by RFC 7143 but still sent by libiscsi; AND with "No".
		if _, ok := parseBool(value); !ok {
			return valReject, true
		}
		return "No", true
	case "IFMarkInt", "OFMarkInt":
		return valIrrelevant, true
	case "TaskReporting":
		return "RFC3720", true
	case "InitiatorAlias", "InitiatorName", "TargetName", "SessionType":
		return "", true
	}
	return "", false
}
