package installed

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// regHive is one hive of the installed system as a plan leaves it: the
// file as read (for what was there) and an Editor holding the edits,
// which reads back the hive as the plan leaves it. A set that leaves a
// value as it was is not an edit, so a second run finds nothing to do and
// writes nothing.
type regHive struct {
	path  string // path in the tree, for messages and the file list
	name  string // SYSTEM or SOFTWARE
	orig  []byte
	file  *hive.File
	ed    *hive.Editor
	edits []Edit
}

// loadHive reads and checks a hive of the tree: a hive that hive.Check
// finds fault with (dirty, bad checksum, broken cells) is refused, naming
// the file and the first problem, before anything is planned.
func loadHive(fsys imagefs.FS, p, name string) (*regHive, error) {
	b, err := imagefs.ReadFile(fsys, p)
	if err != nil {
		return nil, fmt.Errorf("installed: %s: %w", p, err)
	}
	f, ed, err := integrate.CheckedHive(b, p)
	if err != nil {
		return nil, fmt.Errorf("installed: %w", err)
	}
	return &regHive{path: p, name: name, orig: b, file: f, ed: ed}, nil
}

// origValue returns a value of the hive as read.
func (h *regHive) origValue(key, name string) (hive.Value, bool) {
	k, err := h.file.Key(key)
	if err != nil {
		return hive.Value{}, false
	}
	v, err := k.Value(name)
	if err != nil {
		return hive.Value{}, false
	}
	return *v, true
}

// value returns a value as the plan leaves it.
func (h *regHive) value(key, name string) (hive.Value, bool) {
	v, err := h.ed.Value(key, name)
	if err != nil {
		return hive.Value{}, false
	}
	return *v, true
}

// hasKey reports whether key exists as the plan leaves the hive.
func (h *regHive) hasKey(key string) bool {
	return h.ed.HasKey(key)
}

// str returns a REG_SZ or REG_EXPAND_SZ value.
func (h *regHive) str(key, name string) (string, bool) {
	v, ok := h.value(key, name)
	if !ok || (v.Type != hive.SZ && v.Type != hive.ExpandSZ) {
		return "", false
	}
	return hive.DecodeString(v.Data), true
}

// multi returns a REG_MULTI_SZ value (a REG_SZ as a list of one).
func (h *regHive) multi(key, name string) ([]string, bool) {
	v, ok := h.value(key, name)
	if !ok {
		return nil, false
	}
	switch v.Type {
	case hive.MultiSZ:
		return hive.DecodeMultiString(v.Data), true
	case hive.SZ, hive.ExpandSZ:
		return []string{hive.DecodeString(v.Data)}, true
	}
	return nil, false
}

// dword returns a REG_DWORD value.
func (h *regHive) dword(key, name string) (uint32, bool) {
	v, ok := h.value(key, name)
	if !ok || v.Type != hive.DWORD || len(v.Data) != 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(v.Data), true
}

// subkeys returns the names of key's subkeys as the plan leaves them,
// sorted.
func (h *regHive) subkeys(key string) []string {
	out, _ := h.ed.Subkeys(key)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(strings.ToUpper(a), strings.ToUpper(b)) })
	return out
}

// createKey creates key and its missing parents.
func (h *regHive) createKey(key, why string) error {
	if h.hasKey(key) {
		return nil
	}
	parts := strings.Split(key, `\`)
	for i := range parts {
		k := strings.Join(parts[:i+1], `\`)
		if !h.hasKey(k) {
			h.edits = append(h.edits, Edit{Hive: h.name, Key: k, Why: why})
		}
	}
	if err := h.ed.CreateKey(key); err != nil {
		return fmt.Errorf("installed: %s: key %s: %w", h.path, key, err)
	}
	return nil
}

// set plans a value; a value already so is left alone.
func (h *regHive) set(key, name string, t hive.ValueType, b []byte, why string) error {
	if cur, ok := h.value(key, name); ok && cur.Type == t && bytes.Equal(cur.Data, b) {
		return nil
	}
	if err := h.createKey(key, why); err != nil {
		return err
	}
	if err := h.ed.SetValue(key, name, t, b); err != nil {
		return fmt.Errorf("installed: %s: %s\\%s: %w", h.path, key, name, err)
	}
	e := Edit{Hive: h.name, Key: key, Name: name, Value: integrate.RenderValue(t, b), Why: why}
	if o, ok := h.origValue(key, name); ok {
		e.Was = integrate.RenderValue(o.Type, o.Data)
	}
	h.record(e)
	return nil
}

// record keeps one edit per key and value name: a value set again (a
// list that grows) replaces the earlier edit.
func (h *regHive) record(e Edit) {
	for i := range h.edits {
		o := &h.edits[i]
		if o.Name == e.Name && o.Name != "" && strings.EqualFold(o.Key, e.Key) {
			*o = e
			return
		}
	}
	h.edits = append(h.edits, e)
}

func (h *regHive) setDWORD(key, name string, v uint32, why string) error {
	return h.set(key, name, hive.DWORD, hive.EncodeDWORD(v), why)
}

func (h *regHive) setSZ(key, name, v string, why string) error {
	return h.set(key, name, hive.SZ, hive.EncodeString(v), why)
}

func (h *regHive) setExpandSZ(key, name, v string, why string) error {
	return h.set(key, name, hive.ExpandSZ, hive.EncodeString(v), why)
}

func (h *regHive) setMulti(key, name string, v []string, why string) error {
	return h.set(key, name, hive.MultiSZ, hive.EncodeMultiString(v), why)
}

// appendMulti adds the strings of add missing from a REG_MULTI_SZ
// (case-insensitively), keeping what is there.
func (h *regHive) appendMulti(key, name string, why string, add ...string) error {
	cur, _ := h.multi(key, name)
	if len(cur) == 1 && cur[0] == "" {
		cur = nil
	}
	out := slices.Clone(cur)
	for _, a := range add {
		if !hasFold(out, a) {
			out = append(out, a)
		}
	}
	return h.setMulti(key, name, out, why)
}

// dirty reports whether the plan changed the hive.
func (h *regHive) dirty() bool { return len(h.edits) > 0 }

// bytes returns the hive file as the plan leaves it: the original bytes
// when nothing changed (hive.Editor.Bytes lays every cell out anew), else
// the edited hive, which must pass hive.Check.
func (h *regHive) bytes() ([]byte, error) {
	if !h.dirty() {
		return h.orig, nil
	}
	b, err := h.ed.Bytes()
	if err != nil {
		return nil, fmt.Errorf("installed: %s: %w", h.path, err)
	}
	if probs, err := hive.Check(bytes.NewReader(b), int64(len(b))); err != nil || len(probs) > 0 {
		return nil, fmt.Errorf("installed: %s as edited fails the hive check (%v %v); nothing written", h.path, err, probs)
	}
	return b, nil
}

func hasFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
