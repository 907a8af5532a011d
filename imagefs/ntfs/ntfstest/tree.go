package ntfstest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is the value of a directory in a Tree.
const Dir = "dir"

// Tree is the expected or observed content of a volume: "/"-separated paths
// relative to the root, in their exact case, mapped to Dir or to the hex
// SHA-256 of the file's bytes. The root itself is not an entry.
type Tree map[string]string

// Hash returns the value a Tree holds for a file with content b.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Clone returns a copy of t.
func (t Tree) Clone() Tree {
	c := make(Tree, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

// Paths returns the paths of t, sorted.
func (t Tree) Paths() []string {
	p := make([]string, 0, len(t))
	for k := range t {
		p = append(p, k)
	}
	sort.Strings(p)
	return p
}

// Diff describes how got differs from want, one line per path ("missing",
// "unexpected", "is a directory", "content differs"), at most 40 lines; it
// returns "" when they are equal.
func Diff(want, got Tree) string {
	var lines []string
	for _, p := range want.Paths() {
		g, ok := got[p]
		switch {
		case !ok:
			lines = append(lines, "missing:         "+describe(p, want[p]))
		case g == want[p]:
		case g == Dir:
			lines = append(lines, "is a directory:  "+p)
		case want[p] == Dir:
			lines = append(lines, "is a file:       "+p)
		default:
			lines = append(lines, fmt.Sprintf("content differs: %s (sha256 %.12s…, want %.12s…)", p, g, want[p]))
		}
	}
	for _, p := range got.Paths() {
		if _, ok := want[p]; !ok {
			lines = append(lines, "unexpected:      "+describe(p, got[p]))
		}
	}
	if len(lines) > 40 {
		lines = append(lines[:40], fmt.Sprintf("… and %d more differences", len(lines)-40))
	}
	return strings.Join(lines, "\n")
}

func describe(p, v string) string {
	if v == Dir {
		return p + "/"
	}
	return p
}

// OpKind is what an Op does.
type OpKind int

// The operations of the model, the twin and the property test.
const (
	OpPut       OpKind = iota // create or overwrite the file Path with Data
	OpMkdir                   // create the directory Path; its parent exists
	OpRemove                  // remove the file or empty directory Path
	OpRemoveAll               // remove Path and everything below it
)

// Op is one file-system operation on a volume.
type Op struct {
	Kind OpKind
	Path string // "/"-separated, relative to the root, exact case
	Data []byte // OpPut only
}

// String names the operation for failure messages.
func (o Op) String() string {
	switch o.Kind {
	case OpPut:
		return fmt.Sprintf("put %s (%d bytes, sha256 %.12s…)", o.Path, len(o.Data), Hash(o.Data))
	case OpMkdir:
		return "mkdir " + o.Path
	case OpRemove:
		return "rm " + o.Path
	case OpRemoveAll:
		return "rm -r " + o.Path
	}
	return fmt.Sprintf("op %d %s", o.Kind, o.Path)
}

// Apply changes the model t as op changes a volume. It returns an error,
// and leaves t unchanged, where a file system would refuse op: a missing
// parent, putting over a directory, mkdir over an existing entry, removing
// a missing entry or a non-empty directory without OpRemoveAll.
func (t Tree) Apply(op Op) error {
	p := op.Path
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p {
		return fmt.Errorf("%v: path must be relative and clean", op)
	}
	if dir := path.Dir(p); dir != "." && t[dir] != Dir {
		return fmt.Errorf("%v: parent %s is not a directory", op, dir)
	}
	cur, exists := t[p]
	switch op.Kind {
	case OpPut:
		if cur == Dir {
			return fmt.Errorf("%v: is a directory", op)
		}
		t[p] = Hash(op.Data)
	case OpMkdir:
		if exists {
			return fmt.Errorf("%v: already exists", op)
		}
		t[p] = Dir
	case OpRemove, OpRemoveAll:
		if !exists {
			return fmt.Errorf("%v: does not exist", op)
		}
		below := t.below(p)
		if len(below) > 0 && op.Kind == OpRemove {
			return fmt.Errorf("%v: directory is not empty", op)
		}
		for _, q := range below {
			delete(t, q)
		}
		delete(t, p)
	default:
		return fmt.Errorf("%v: unknown operation", op)
	}
	return nil
}

// below lists the paths strictly inside directory p.
func (t Tree) below(p string) []string {
	var out []string
	for q := range t {
		if strings.HasPrefix(q, p+"/") {
			out = append(out, q)
		}
	}
	return out
}

// ApplyDir applies op to a directory tree of the host (a mounted volume).
func ApplyDir(root string, op Op) error {
	full := filepath.Join(root, filepath.FromSlash(op.Path))
	switch op.Kind {
	case OpPut:
		return os.WriteFile(full, op.Data, 0o644)
	case OpMkdir:
		return os.Mkdir(full, 0o755)
	case OpRemove:
		return os.Remove(full)
	case OpRemoveAll:
		if _, err := os.Lstat(full); err != nil {
			return err
		}
		return os.RemoveAll(full)
	}
	return errors.New("unknown operation")
}

// ReadDirTree reads the Tree of a directory of the host, typically an
// ntfs-3g mount point. Names that ntfs-3g shows for metadata (a leading $
// in the root) are left out.
func ReadDirTree(root string) (Tree, error) {
	t := Tree{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !strings.Contains(rel, "/") && strings.HasPrefix(rel, "$") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			t[rel] = Dir
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%v)", rel, d.Type())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t[rel] = Hash(b)
		return nil
	})
	return t, err
}
