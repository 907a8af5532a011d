package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Account is one CHAP user name and secret.
type Account struct {
	User   string
	Secret []byte
}

// Secret lengths the Microsoft iSCSI initiator accepts without IPsec.
const (
	MinSecret = 12
	MaxSecret = 16
)

// MaxNameLen is the longest iSCSI name in bytes (RFC 3720 §3.2.6.1).
const MaxNameLen = 223

// ErrSecret is wrapped by every refused secret or account.
var ErrSecret = errors.New("bad CHAP secret")

// ErrName is wrapped by every refused iSCSI name.
var ErrName = errors.New("bad iSCSI name")

// credError keeps the message as written and answers errors.Is for the
// sentinel, so that messages do not repeat the sentinel's words.
type credError struct {
	msg  string
	kind error
}

func (e *credError) Error() string { return e.msg }
func (e *credError) Unwrap() error { return e.kind }

// CheckSecret applies the secret rule to the secret of user; what names
// the kind of account in the message ("CHAP", "mutual CHAP").
func CheckSecret(what, user string, secret []byte) error {
	if n := len(secret); n < MinSecret || n > MaxSecret {
		return &credError{fmt.Sprintf("%s secret for %q is %d characters; the Microsoft initiator needs at least %d and at most %d",
			what, user, n, MinSecret, MaxSecret), ErrSecret}
	}
	return nil
}

// CheckAccount checks that an account has a user name and that its
// secret follows CheckSecret.
func CheckAccount(what string, a Account) error {
	if a.User == "" {
		return &credError{what + " account without a user name", ErrSecret}
	}
	if strings.ContainsFunc(a.User, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return &credError{fmt.Sprintf("%s user name %q contains white space or control characters", what, a.User), ErrSecret}
	}
	return CheckSecret(what, a.User, a.Secret)
}

// CheckPair checks the mutual account out (nil: none) against the one-way
// accounts in: mutual CHAP follows one-way CHAP, and no one-way secret may
// equal the mutual one (RFC 7143 §9.2.1: a secret used to authenticate
// the initiator must not authenticate the target).
func CheckPair(in []Account, out *Account) error {
	if out == nil {
		return nil
	}
	if len(in) == 0 {
		return &credError{"mutual CHAP needs one-way CHAP too", ErrSecret}
	}
	for _, a := range in {
		if bytes.Equal(a.Secret, out.Secret) {
			return &credError{fmt.Sprintf("incoming secret of %q equals the outgoing secret (RFC 7143 §9.2.1 forbids it)", a.User), ErrSecret}
		}
	}
	return nil
}

// CheckName reports whether name is an iSCSI name: "iqn." followed by the
// rest of the name, "eui." and 16 hexadecimal digits, or "naa." and 16 or
// 32 hexadecimal digits (RFC 3720 §3.2.6.3); at most MaxNameLen bytes of
// valid UTF-8; of ASCII only letters, digits, '-', '.' and ':' (RFC 3722's
// stringprep output, upper case folded since names compare without case).
// The date and naming authority of an iqn. name are not checked: iPXE,
// libiscsi, open-iscsi and the Microsoft initiator all accept names
// without them, and refusing them here would only refuse working setups.
func CheckName(name string) error {
	bad := func(why string) error {
		return &credError{fmt.Sprintf("%q is not an iSCSI name: %s", name, why), ErrName}
	}
	switch {
	case name == "":
		return &credError{"empty iSCSI name", ErrName}
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("%d bytes, longer than %d", len(name), MaxNameLen))
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	}
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(lower, "iqn."):
		if len(name) == 4 {
			return bad("nothing after iqn.")
		}
	case strings.HasPrefix(lower, "eui."):
		if len(name) != 4+16 || !isHex(name[4:]) {
			return bad("eui. needs 16 hexadecimal digits")
		}
	case strings.HasPrefix(lower, "naa."):
		if n := len(name) - 4; (n != 16 && n != 32) || !isHex(name[4:]) {
			return bad("naa. needs 16 or 32 hexadecimal digits")
		}
	default:
		return bad("not an iqn., eui. or naa. name")
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == ':':
		case r < utf8.RuneSelf:
			return bad(fmt.Sprintf("character %q at byte %d", r, i))
		case unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r):
			return bad(fmt.Sprintf("character %U at byte %d", r, i))
		}
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
