package hive

import (
	"errors"
	"testing"
)

// TestCurrentControlSetResolver covers the one \Select\Current reader:
// the default for a hive without it, the existence check, and the values
// it refuses (0 and numbers past 999, which ResolveCurrentControlSet used
// to turn into ControlSet000 and ControlSet1000).
func TestCurrentControlSetResolver(t *testing.T) {
	tests := []struct {
		name    string
		current *Value // nil: no \Select\Current
		sets    []string
		def     string
		want    string
		wantErr error
	}{
		{"current", &Value{Type: DWORD, Data: EncodeDWORD(2)}, []string{"ControlSet001", "ControlSet002"}, "", "ControlSet002", nil},
		{"absent, default", nil, []string{"ControlSet001"}, "ControlSet001", "ControlSet001", nil},
		{"absent, required", nil, []string{"ControlSet001"}, "", "", ErrNotFound},
		{"missing set", &Value{Type: DWORD, Data: EncodeDWORD(3)}, []string{"ControlSet001"}, "", "", ErrNotFound},
		{"missing default", nil, nil, "ControlSet001", "", ErrNotFound},
		{"zero", &Value{Type: DWORD, Data: EncodeDWORD(0)}, []string{"ControlSet001"}, "", "", ErrInvalid},
		{"1000", &Value{Type: DWORD, Data: EncodeDWORD(1000)}, []string{"ControlSet001"}, "", "", ErrInvalid},
		{"string", &Value{Type: SZ, Data: []byte("1\x00")}, []string{"ControlSet001"}, "ControlSet001", "", ErrInvalid},
	}
	for _, tt := range tests {
		e, err := New(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tt.sets {
			if err := e.CreateKey(s); err != nil {
				t.Fatal(err)
			}
		}
		if tt.current != nil {
			if err := e.CreateKey("Select"); err != nil {
				t.Fatal(err)
			}
			if err := e.SetValue("Select", "Current", tt.current.Type, tt.current.Data); err != nil {
				t.Fatal(err)
			}
		}
		f, err := e.File()
		if err != nil {
			t.Fatal(err)
		}
		for who, ccs := range map[string]func(string) (string, error){"editor": e.CurrentControlSet, "file": f.CurrentControlSet} {
			got, err := ccs(tt.def)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("%s (%s): %q, %v; want %q, %v", tt.name, who, got, err, tt.want, tt.wantErr)
			}
		}
	}
}
