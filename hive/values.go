package hive

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
)

// String returns the Windows name of the type ("REG_SZ"), or "REG_0xN" for
// types without a name.
func (t ValueType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("REG_0x%x", uint32(t))
}

// ParseValueType parses a type name: "REG_SZ", "sz", "dword", "qword",
// "multi_sz", "expand_sz", "binary", "none", "link", "dword_big_endian",
// or a number ("0x20", "7") for any type.
func ParseValueType(s string) (ValueType, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	u = strings.TrimPrefix(u, "REG_")
	for i, n := range typeNames {
		if strings.TrimPrefix(n, "REG_") == u {
			return ValueType(i), nil
		}
	}
	if n, err := strconv.ParseUint(strings.TrimPrefix(u, "0X"), pickBase(u), 32); err == nil {
		return ValueType(n), nil
	}
	return 0, fmt.Errorf("%w: unknown value type %q", ErrInvalid, s)
}

func pickBase(u string) int {
	if strings.HasPrefix(u, "0X") {
		return 16
	}
	return 10
}

// EncodeString encodes s as REG_SZ / REG_EXPAND_SZ data: UTF-16LE with a
// terminating NUL.
func EncodeString(s string) []byte {
	n := 2 // the NUL
	for _, r := range s {
		n += 2 * utf16.RuneLen(r)
	}
	return appendString(make([]byte, 0, n), s)
}

// appendString appends s to b as EncodeString encodes it.
func appendString(b []byte, s string) []byte {
	// Ranging over a string yields valid runes (U+FFFD for bad UTF-8).
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			b = binary.LittleEndian.AppendUint16(b, uint16(r1))
			r = r2
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(r))
	}
	return binary.LittleEndian.AppendUint16(b, 0)
}

// EncodeMultiString encodes REG_MULTI_SZ data: each string NUL-terminated,
// then a final NUL.
func EncodeMultiString(ss []string) []byte {
	var u []uint16
	for _, s := range ss {
		u = append(append(u, utf16.Encode([]rune(s))...), 0)
	}
	return utf16le(append(u, 0))
}

// EncodeDWORD encodes REG_DWORD data.
func EncodeDWORD(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// EncodeQWORD encodes REG_QWORD data.
func EncodeQWORD(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// DecodeString decodes UTF-16LE string data up to the first NUL (an odd
// trailing byte is ignored).
func DecodeString(b []byte) string {
	u := decodeName(b[:len(b)&^1], false)
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	return unitsString(u)
}

// DecodeMultiString decodes REG_MULTI_SZ data into its strings (the empty
// string ending the list is not returned).
func DecodeMultiString(b []byte) []string {
	u := decodeName(b[:len(b)&^1], false)
	var out []string
	start := 0
	for i, c := range u {
		if c == 0 {
			if i == start {
				break
			}
			out = append(out, unitsString(u[start:i]))
			start = i + 1
		}
	}
	if start < len(u) && u[len(u)-1] != 0 {
		out = append(out, unitsString(u[start:]))
	}
	return out
}

// ParseData converts command-line text to value data of type t: strings
// for SZ, EXPAND_SZ and LINK (LINK without NUL); one argument per string
// for MULTI_SZ; a decimal or 0x-hex number for DWORD, DWORD_BIG_ENDIAN and
// QWORD; hex bytes ("de,ad,be,ef" or "deadbeef") for everything else.
func ParseData(t ValueType, args []string) ([]byte, error) {
	one := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("%w: %v takes one argument, got %d", ErrInvalid, t, len(args))
		}
		return args[0], nil
	}
	switch t {
	case SZ, ExpandSZ:
		s, err := one()
		return EncodeString(s), err
	case Link:
		s, err := one()
		return utf16le(utf16.Encode([]rune(s))), err
	case MultiSZ:
		return EncodeMultiString(args), nil
	case DWORD, DWORDBigEndian, QWORD:
		s, err := one()
		if err != nil {
			return nil, err
		}
		bits := 32
		if t == QWORD {
			bits = 64
		}
		v, err := strconv.ParseUint(s, 0, bits)
		if err != nil {
			why := "not a number: give decimal, 0x hex or 0 octal digits"
			if errors.Is(err, strconv.ErrRange) {
				why = fmt.Sprintf("larger than %d bits", bits)
			} else if strings.HasPrefix(s, "-") {
				why = "negative; registry numbers are unsigned (write -1 as 0xffffffff for a DWORD)"
			}
			return nil, fmt.Errorf("%w: %v %q: %s", ErrInvalid, t, s, why)
		}
		switch t {
		case DWORD:
			return EncodeDWORD(uint32(v)), nil
		case DWORDBigEndian:
			return binary.BigEndian.AppendUint32(nil, uint32(v)), nil
		}
		return EncodeQWORD(v), nil
	}
	s := strings.Join(args, "")
	s = strings.NewReplacer(",", "", " ", "", ":", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v data %q is not hex bytes: %v", ErrInvalid, t, s, err)
	}
	return b, nil
}

// Text renders a value's data for people: strings as text (MULTI_SZ one
// per line), numbers in decimal and hex, anything else (or data that does
// not fit its type) as hex bytes.
func (v *Value) Text() string {
	d := v.Data
	switch v.Type {
	case SZ, ExpandSZ, Link:
		if len(d)%2 == 0 {
			return DecodeString(d)
		}
	case MultiSZ:
		if len(d)%2 == 0 {
			return strings.Join(DecodeMultiString(d), "\n")
		}
	case DWORD:
		if len(d) == 4 {
			n := binary.LittleEndian.Uint32(d)
			return fmt.Sprintf("0x%08x (%d)", n, n)
		}
	case DWORDBigEndian:
		if len(d) == 4 {
			n := binary.BigEndian.Uint32(d)
			return fmt.Sprintf("0x%08x (%d)", n, n)
		}
	case QWORD:
		if len(d) == 8 {
			n := binary.LittleEndian.Uint64(d)
			return fmt.Sprintf("0x%016x (%d)", n, n)
		}
	}
	return hex.EncodeToString(d)
}
