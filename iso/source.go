package iso

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Node is one file or directory of the tree Build writes.
type Node struct {
	Name    string
	Dir     bool
	Size    int64
	ModTime time.Time
	// Open returns the file's content; it must yield exactly Size bytes.
	Open func() (io.ReadCloser, error)
	// Children of a directory, in any order (Build sorts them).
	Children []*Node
	// Path is where the entry comes from, for messages.
	Path string
}

// Count returns the number of files and the bytes of file data below n.
func (n *Node) Count() (files int, bytes int64) {
	for _, c := range n.Children {
		if c.Dir {
			f, b := c.Count()
			files, bytes = files+f, bytes+b
		} else {
			files++
			bytes += c.Size
		}
	}
	return files, bytes
}

// Find returns the node at the slash-separated path below n, matching
// names exactly; nil when absent.
func (n *Node) Find(elems ...string) *Node {
	cur := n
	for _, el := range elems {
		var next *Node
		for _, c := range cur.Children {
			if c.Name == el {
				next = c
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// DirTree reads the directory root of the host file system into a tree.
// Symbolic links are followed; anything that is neither a regular file nor
// a directory is an error naming it, as is nesting beyond 255 levels.
func DirTree(root string) (*Node, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", root)
	}
	n := &Node{Name: "", Dir: true, ModTime: st.ModTime(), Path: root}
	if err := dirTree(n, root, 0); err != nil {
		return nil, err
	}
	return n, nil
}

func dirTree(n *Node, dir string, depth int) error {
	if depth >= maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d levels", dir, maxDepth)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		c := &Node{Name: e.Name(), ModTime: st.ModTime(), Path: p}
		switch {
		case st.IsDir():
			c.Dir = true
			if err := dirTree(c, p, depth+1); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			c.Size = st.Size()
			c.Open = func() (io.ReadCloser, error) { return os.Open(p) }
		default:
			return fmt.Errorf("%s: not a regular file or directory (%s)", p, st.Mode().Type())
		}
		n.Children = append(n.Children, c)
	}
	sort.Slice(n.Children, func(i, j int) bool { return n.Children[i].Name < n.Children[j].Name })
	return nil
}

// Tree reads the whole file tree of the image (Joliet names when
// present). A file whose extent is the El Torito boot catalog is left out:
// mastering tools list the catalog as a file ("boot.catalog"), but it
// describes this image only and a rebuild writes its own.
func (x *Reader) Tree() (*Node, error) {
	root := &Node{Dir: true, ModTime: x.root.mtime, Path: x.name + ":/"}
	dirs := map[string]*Node{"": root}
	err := x.walkRecords(func(p string, r record) error {
		fi := info(r)
		parent := dirs[dirOf(p)]
		if x.Boot != nil && !fi.IsDir() && len(r.extents) == 1 && r.extents[0].lba == x.Boot.Sector {
			return nil
		}
		c := &Node{Name: fi.Name(), Dir: fi.IsDir(), Size: fi.Size(), ModTime: fi.ModTime(), Path: x.name + ":/" + p}
		if fi.IsDir() {
			c.Size = 0
			dirs[p] = c
		} else {
			content := x.content(r)
			c.Open = func() (io.ReadCloser, error) {
				return io.NopCloser(io.NewSectionReader(content, 0, r.size)), nil
			}
		}
		parent.Children = append(parent.Children, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return root, nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}
