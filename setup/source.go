package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/iso"
)

// Source is installation media opened for staging.
type Source struct {
	// Name is what the user gave: a directory, an ISO or IMG:/path.iso.
	Name string
	// Kind is "directory", "iso" or "iso-in-image".
	Kind string
	// Root is the media's file tree.
	Root *iso.Node
	// ISO is the image's reader when the source is an ISO.
	ISO *iso.Reader

	closers []func() error
}

// Close releases the files the source holds open.
func (s *Source) Close() error {
	var first error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	s.closers = nil
	return first
}

// OpenSource opens installation media: a directory, an ISO 9660 file, or
// IMG:/path naming an ISO inside a disk image (any container imagefs
// reads). The kind is told from content, not from the name.
func OpenSource(spec string) (*Source, error) {
	st, err := os.Stat(spec)
	if err == nil && st.IsDir() {
		root, err := iso.DirTree(spec)
		if err != nil {
			return nil, fmt.Errorf("setup: source %s: %w", spec, err)
		}
		return &Source{Name: spec, Kind: "directory", Root: root}, nil
	}
	if err == nil {
		rc, err := iso.Open(spec)
		if err != nil {
			if errors.Is(err, iso.ErrNotISO) {
				return nil, fmt.Errorf("setup: source %s is neither a directory nor an ISO 9660 image (for a CD image inside a disk image give IMG:/path/to/cd.iso)", spec)
			}
			return nil, fmt.Errorf("setup: source: %w", err)
		}
		s := &Source{Name: spec, Kind: "iso", ISO: rc.Reader, closers: []func() error{rc.Close}}
		if s.Root, err = rc.Tree(); err != nil {
			s.Close()
			return nil, fmt.Errorf("setup: source: %w", err)
		}
		return s, nil
	}
	loc, ok := imagefs.ParseImagePath(spec)
	if !ok {
		return nil, fmt.Errorf("setup: source %s: %w", spec, fs.ErrNotExist)
	}
	img, err := imagefs.Open(loc.Image, false)
	if err != nil {
		return nil, fmt.Errorf("setup: source: %w", err)
	}
	s := &Source{Name: spec, Kind: "iso-in-image", closers: []func() error{img.Dev.Close}}
	fsys, err := img.FS(0)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("setup: source: %w", err)
	}
	f, err := fsys.Open(loc.Path)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("setup: source %s: %w", spec, err)
	}
	x, err := iso.NewNamedReader(f, f.Size(), spec)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("setup: source: %w", err)
	}
	s.ISO = x
	if s.Root, err = x.Tree(); err != nil {
		s.Close()
		return nil, fmt.Errorf("setup: source: %w", err)
	}
	return s, nil
}

// find returns the node at the slash path p below root, matching each
// element case-insensitively (an exact match wins); nil when absent.
func find(root *iso.Node, p string) *iso.Node {
	cur := root
	for _, el := range strings.Split(strings.Trim(path.Clean("/"+strings.ReplaceAll(p, `\`, "/")), "/"), "/") {
		if el == "" {
			continue
		}
		if !cur.Dir {
			return nil
		}
		var next *iso.Node
		for _, c := range cur.Children {
			if c.Name == el {
				next = c
				break
			}
			if next == nil && strings.EqualFold(c.Name, el) {
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

func readNode(n *iso.Node) ([]byte, error) {
	if n.Size > 256<<20 {
		return nil, fmt.Errorf("%s: %d bytes is too large to read into memory", n.Path, n.Size)
	}
	r, err := n.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := make([]byte, n.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%s: %w", n.Path, err)
	}
	return b, nil
}

// nodeFS is the read-only imagefs.FS view of a source tree, so that
// integrate.Detect identifies the media exactly as it identifies a tree
// it integrates into.
type nodeFS struct{ root *iso.Node }

var errReadOnly = errors.New("setup: the source is read-only")

func (n nodeFS) get(name string) (*iso.Node, error) {
	if x := find(n.root, name); x != nil {
		return x, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (nodeFS) Type() string           { return "iso9660" }
func (nodeFS) Label() (string, error) { return "", nil }

// Open reads the file name whole (readNode bounds its size): the media's
// files are read once each, by Detect and the setup text files.
func (n nodeFS) Open(name string) (imagefs.File, error) {
	x, err := n.get(name)
	if err != nil {
		return nil, err
	}
	if x.Dir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	b, err := readNode(x)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

func (n nodeFS) Stat(name string) (imagefs.FileInfo, error) {
	x, err := n.get(name)
	if err != nil {
		return nil, err
	}
	return nodeInfo{x}, nil
}

func (n nodeFS) ReadDir(name string) ([]imagefs.FileInfo, error) {
	x, err := n.get(name)
	if err != nil {
		return nil, err
	}
	out := make([]imagefs.FileInfo, len(x.Children))
	for i, c := range x.Children {
		out[i] = nodeInfo{c}
	}
	return out, nil
}

func (nodeFS) WriteFile(string, io.Reader, int64, time.Time) error { return errReadOnly }
func (nodeFS) Mkdir(string, time.Time) error                       { return errReadOnly }
func (nodeFS) MkdirAll(string, time.Time) error                    { return errReadOnly }
func (nodeFS) Remove(string) error                                 { return errReadOnly }
func (nodeFS) Flush() error                                        { return nil }
func (nodeFS) FreeBytes() int64                                    { return 0 }
func (nodeFS) CheckWritable() error                                { return errReadOnly }

var _ imagefs.FS = nodeFS{}

type nodeInfo struct{ n *iso.Node }

func (i nodeInfo) Name() string       { return i.n.Name }
func (i nodeInfo) Size() int64        { return i.n.Size }
func (i nodeInfo) ModTime() time.Time { return i.n.ModTime }
func (i nodeInfo) IsDir() bool        { return i.n.Dir }
