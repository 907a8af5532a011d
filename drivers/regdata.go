package drivers

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// RegKind says which field of a RegData holds the data.
type RegKind uint8

// Kinds of registry data.
const (
	KindNone   RegKind = iota // no data: OpKey, OpDelValue, OpDelKey
	KindString                // Str: REG_SZ, REG_EXPAND_SZ, OpDelString's string
	KindMulti                 // Multi: REG_MULTI_SZ
	KindDWORD                 // DWord: REG_DWORD
	KindBinary                // Bin: REG_BINARY, REG_NONE and other types
)

// RegData is typed registry data as an INF or txtsetup.oem line gives it
// (or as integration computes it): Kind names the one field that holds
// it. It crosses from package drivers to package integrate, which encodes
// it for a hive or writes it into a hive INF.
type RegData struct {
	Kind  RegKind
	Str   string
	Multi []string
	DWord uint32
	Bin   Binary
}

// StringData returns string data (REG_SZ, REG_EXPAND_SZ).
func StringData(s string) RegData { return RegData{Kind: KindString, Str: s} }

// MultiData returns REG_MULTI_SZ data.
func MultiData(ss []string) RegData {
	if ss == nil {
		ss = []string{}
	}
	return RegData{Kind: KindMulti, Multi: ss}
}

// DWORDData returns REG_DWORD data.
func DWORDData(v uint32) RegData { return RegData{Kind: KindDWORD, DWord: v} }

// BinaryData returns raw data (REG_BINARY, REG_NONE, other types).
func BinaryData(b []byte) RegData { return RegData{Kind: KindBinary, Bin: Binary(b)} }

// String renders the data for messages: a quoted string, a list of quoted
// strings, a number, or hex bytes.
func (d RegData) String() string {
	switch d.Kind {
	case KindString:
		return fmt.Sprintf("%q", d.Str)
	case KindMulti:
		return fmt.Sprintf("%q", d.Multi)
	case KindDWORD:
		return fmt.Sprint(d.DWord)
	case KindBinary:
		t, _ := d.Bin.MarshalText()
		return string(t)
	}
	return "none"
}

// MarshalJSON renders the data as JSON of its kind: a string, an array
// of strings, a number, hex text for bytes, null for none.
func (d RegData) MarshalJSON() ([]byte, error) {
	var v any
	switch d.Kind {
	case KindString:
		v = d.Str
	case KindMulti:
		v = d.Multi
	case KindDWORD:
		v = d.DWord
	case KindBinary:
		v = d.Bin
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The caller's encoder decides about HTML escaping; escaping here
	// would be final.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
