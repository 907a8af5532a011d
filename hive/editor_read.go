package hive

import (
	"bytes"
	"fmt"
)

// Reading through an Editor: what the hive holds with every edit so far
// applied, so that a caller editing a hive keeps no copy of its own
// changes. The methods read the cells the Editor works on and change
// nothing (the subkey and value lists they load are the ones later edits
// use).

// Value returns the value name ("" is the default value) of the key at
// path, as edited. A missing key or value is an error matching
// ErrNotFound.
func (e *Editor) Value(path, name string) (*Value, error) {
	v, err := e.value(path, name)
	if err != nil {
		return nil, err
	}
	v.Data = bytes.Clone(v.Data) // later edits must not change what was returned
	return v, nil
}

// Values returns every value of the key at path in list order, as
// edited.
func (e *Editor) Values(path string) ([]Value, error) {
	_, l, err := e.valuesAt(path)
	if err != nil {
		return nil, err
	}
	out := make([]Value, 0, len(l.offs))
	for _, vo := range l.offs {
		rv, err := e.f.vk(vo)
		if err != nil {
			return nil, err
		}
		d, err := e.f.valueData(vo, rv)
		if err != nil {
			return nil, fmt.Errorf("key %q value %q: %w", path, unitsString(rv.name), err)
		}
		out = append(out, Value{Name: unitsString(rv.name), Type: ValueType(rv.typ), Data: bytes.Clone(d)})
	}
	return out, nil
}

// Subkeys returns the names of the subkeys of the key at path, as edited,
// in the hive's order (case-insensitive, as Windows sorts them).
func (e *Editor) Subkeys(path string) ([]string, error) {
	nk, err := e.lookup(path, false)
	if err != nil {
		return nil, err
	}
	l, err := e.children(nk)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(l.kids))
	for i, k := range l.kids {
		n, err := e.kidName(k)
		if err != nil {
			return nil, err
		}
		out[i] = unitsString(n.units())
	}
	return out, nil
}
