package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckSecret(t *testing.T) {
	tests := []struct {
		secret string
		ok     bool
	}{
		{"", false},
		{"short", false},
		{"elevenchars", false},
		{"twelve-bytes", true},
		{"sixteen-bytes-ok", true},
		{"seventeen-bytes-x", false},
	}
	for _, tt := range tests {
		err := CheckSecret("CHAP", "u", []byte(tt.secret))
		if (err == nil) != tt.ok {
			t.Errorf("CheckSecret(%d bytes) = %v, want ok %v", len(tt.secret), err, tt.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), "at least 12 and at most 16") {
				t.Errorf("CheckSecret(%d bytes) = %v", len(tt.secret), err)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the secret is in the error %q", err)
			}
		}
	}
}

func TestCheckAccountAndPair(t *testing.T) {
	good := Account{User: "pcuser", Secret: []byte("pcsecret12345")}
	if err := CheckAccount("CHAP", good); err != nil {
		t.Fatal(err)
	}
	for _, a := range []Account{{User: "", Secret: good.Secret}, {User: "a b", Secret: good.Secret}, {User: "u", Secret: []byte("x")}} {
		if err := CheckAccount("CHAP", a); !errors.Is(err, ErrSecret) {
			t.Errorf("CheckAccount(%q) = %v", a.User, err)
		}
	}
	mutual := Account{User: "tgt", Secret: []byte("targetsecret99")}
	tests := []struct {
		name string
		in   []Account
		out  *Account
		want string
	}{
		{"none", nil, nil, ""},
		{"one-way", []Account{good}, nil, ""},
		{"mutual", []Account{good}, &mutual, ""},
		{"mutual alone", nil, &mutual, "one-way"},
		{"same secret", []Account{good, {User: "x", Secret: mutual.Secret}}, &mutual, `incoming secret of "x" equals the outgoing secret`},
	}
	for _, tt := range tests {
		err := CheckPair(tt.in, tt.out)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrSecret)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"iqn.2026-01.org.xpboot:disk", true},
		{"IQN.2026-01.ORG.XPBOOT:Disk", true}, // names compare without case
		{"iqn.x:d", true},
		{"iqn.1991-05.com.microsoft:pc-01.example", true},
		{"iqn.2026-01.org.example:café", true},
		{"eui.02004567A425678D", true},
		{"naa.52004567BA64678D", true},
		{"naa.62004567BA64678D0123456789ABCDEF", true},
		{"", false},
		{"disk", false},
		{"iqn.", false},
		{"iqn.2026-01.org.xpboot:a b", false},
		{"iqn.2026-01.org.xpboot:a\tb", false},
		{"iqn.2026-01.org.xpboot:a_b", false},
		{"iqn.2026-01.org.xpboot:a/b", false},
		{"iqn.2026-01.org.xpboot:\u200b", false},
		{"eui.02004567A425678", false},
		{"eui.02004567A425678G", false},
		{"naa.52004567BA64678D01", false},
		{"iqn.2026-01.org.xpboot:" + strings.Repeat("a", MaxNameLen), false},
		{"iqn.2026-01.org.xpboot:\xff", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrName) {
			t.Errorf("CheckName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// FuzzCheckName: names come from configuration files, clients files and
// logins; the validator never panics, accepts only what it documents, and
// an accepted name stays accepted in lower case.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"iqn.2026-01.org.xpboot:disk", "eui.02004567A425678D", "naa.52004567BA64678D", "disk", "iqn.x:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if len(name) > MaxNameLen || strings.ContainsAny(name, " \t\r\n/_\x00") {
			t.Fatalf("accepted %q", name)
		}
		if err := CheckName(strings.ToLower(name)); err != nil {
			t.Fatalf("%q accepted but its lower case not: %v", name, err)
		}
	})
}
