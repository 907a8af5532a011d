package iso

// File and directory identifiers: ISO 9660 level 1 (8.3) names made
// unique, Joliet names, and the orders each directory sorts them in.

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// nameChildren gives w's children their primary and Joliet identifiers
// and sorts both lists.
func nameChildren(w *wnode) error {
	used := map[string]bool{}
	jused := map[string]*wnode{}
	// Names are chosen in source-name order so the result does not depend
	// on the order the source listed them.
	order := append([]*wnode(nil), w.kids...)
	sort.Slice(order, func(i, j int) bool { return order[i].Name < order[j].Name })
	// First pass: names whose 8.3 form is exact keep it, so that setupldr,
	// which reads the primary tree, finds I386\TXTSETUP.SIF as it is.
	var later []*wnode
	for _, k := range order {
		base, ext, exact := short83(k.Name, k.Dir)
		id := joinID(base, ext, k.Dir)
		if exact && !used[id] {
			used[id], k.pname = true, id
		} else {
			later = append(later, k)
		}
	}
	for _, k := range later {
		base, ext, _ := short83(k.Name, k.Dir)
		id := joinID(base, ext, k.Dir)
		// A name taken already gets a number in its last characters,
		// "LONG NAM.TXT" then "LONG 000.TXT", as genisoimage numbers them.
		for n := 0; used[id]; n++ {
			num := fmt.Sprintf("%03d", n)
			b := base
			if len(b)+len(num) > 8 {
				b = b[:8-len(num)]
			}
			id = joinID(b+num, ext, k.Dir)
		}
		used[id], k.pname = true, id
	}
	for _, k := range order {
		jn := jolietName(k.Name)
		if len(utf16.Encode([]rune(jn))) > maxJolietName {
			return fmt.Errorf("iso: %s: name of %d characters exceeds Joliet's %d (mkisofs -joliet-long)", k.Path, len([]rune(jn)), maxJolietName)
		}
		if o, ok := jused[jn]; ok {
			return fmt.Errorf("iso: %s and %s have the same Joliet name %q", o.Path, k.Path, jn)
		}
		jused[jn] = k
		k.jname = encodeUCS2(jn)
	}
	w.kids = order
	sort.SliceStable(w.kids, func(i, j int) bool { return lessPrimary(w.kids[i].pname, w.kids[j].pname) })
	w.jkids = append([]*wnode(nil), order...)
	sort.SliceStable(w.jkids, func(i, j int) bool { return lessJoliet(w.jkids[i].Name, w.jkids[j].Name) })
	return nil
}

// short83 maps a name to ISO 9660 level 1 parts the way genisoimage
// (mkisofs) does under -relaxed-filenames: upper case, every 7-bit
// printable byte kept (space, ";" and "\\" included), any other byte
// "_"; the last dot separates an extension of at most 3 characters (also
// for directories: "dir.name" is "DIR.NAM"), earlier dots and a leading
// one become "_"; at most 8 characters of name. exact reports that
// nothing was lost.
func short83(name string, dir bool) (base, ext string, exact bool) {
	exact = true
	clean := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			switch {
			case c >= 'a' && c <= 'z':
				b[i] = c - 'a' + 'A'
			case c < 0x20 || c > 0x7E || c == '/' || c == '.':
				b[i] = '_'
				exact = false
			}
		}
		return string(b)
	}
	b, e := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		b, e = name[:i], name[i+1:]
	}
	base, ext = clean(b), clean(e)
	if len(base) > 8 {
		base, exact = base[:8], false
	}
	if len(ext) > 3 {
		ext, exact = ext[:3], false
	}
	if base == "" {
		base, exact = "_", false
	}
	return base, ext, exact
}

// joinID forms the recorded identifier: "NAME.EXT", "NAME." for a file
// without extension (mkisofs without -d), "NAME" for a directory without
// one; no ";1" (mkisofs -N).
func joinID(base, ext string, dir bool) string {
	if dir && ext == "" {
		return base
	}
	return base + "." + ext
}

// lessName orders identifiers as mkisofs (genisoimage) does: character
// by character, with ";" before any other character and, when dot is
// set, "." next, then the shorter first. For level 1 names (dot set) this
// is ECMA-119 9.3's order (name, then extension, space-padded), and it
// places relaxed names holding ";" where mkisofs does.
func lessName[T byte | uint16](a, b []T, dot bool) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		switch {
		case ca == cb:
			continue
		case ca == ';':
			return true
		case cb == ';':
			return false
		case dot && ca == '.':
			return true
		case dot && cb == '.':
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}

func lessPrimary(a, b string) bool { return lessName([]byte(a), []byte(b), true) }

// lessJoliet orders Joliet entries by their source names (before the
// Joliet character replacements) in UTF-16 with ";" first, as mkisofs
// does: "file;x" (Joliet "file_x") before "file.html", "a+b.txt" before
// "a.b".
func lessJoliet(a, b string) bool {
	return lessName(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)), false)
}

// jolietName replaces the characters Joliet forbids (* / : ; ? \).
func jolietName(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '*', '/', ':', ';', '?', '\\':
			return '_'
		}
		return r
	}, s)
}

func encodeUCS2(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.BigEndian.PutUint16(b[2*i:], c)
	}
	return b
}
