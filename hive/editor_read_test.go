package hive

import (
	"errors"
	"reflect"
	"testing"
)

// TestEditorRead: what an Editor reads back is the hive with its edits
// applied, equal to what the written hive reads.
func TestEditorRead(t *testing.T) {
	e, err := New(5)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.CreateKey(`A\b`))
	must(e.CreateKey(`A\C`))
	must(e.SetValue(`A`, "s", SZ, EncodeString("one")))
	must(e.SetValue(`A`, "d", DWORD, EncodeDWORD(7)))
	must(e.SetValue(`A`, "", MultiSZ, EncodeMultiString([]string{"x", "y"})))
	v, err := e.Value(`a`, "S")
	if err != nil || v.Type != SZ || DecodeString(v.Data) != "one" {
		t.Fatalf("Value: %+v %v", v, err)
	}
	must(e.SetValue(`A`, "s", SZ, EncodeString("two")))
	if DecodeString(v.Data) != "one" {
		t.Error("a later edit changed a value returned before it")
	}
	if v, _ = e.Value(`A`, "s"); DecodeString(v.Data) != "two" {
		t.Errorf("after replace: %q", DecodeString(v.Data))
	}
	subs, err := e.Subkeys(`A`)
	if err != nil || !reflect.DeepEqual(subs, []string{"b", "C"}) {
		t.Errorf("Subkeys: %q %v", subs, err)
	}
	vals, err := e.Values(`A`)
	if err != nil || len(vals) != 3 || vals[0].Name != "s" || vals[1].Name != "d" || vals[2].Name != "" {
		t.Fatalf("Values: %+v %v", vals, err)
	}
	f, err := e.File()
	must(err)
	k, err := f.Key("A")
	must(err)
	for _, want := range vals {
		got, err := k.Value(want.Name)
		if err != nil || got.Type != want.Type || string(got.Data) != string(want.Data) {
			t.Errorf("value %q: editor %+v, file %+v %v", want.Name, want, got, err)
		}
	}
	if _, err := e.Value(`A`, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing value: %v", err)
	}
	if _, err := e.Values(`nope`); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := e.Subkeys(`A\nope`); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key: %v", err)
	}
}
