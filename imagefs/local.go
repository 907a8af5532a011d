package imagefs

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"
)

// WithLocalCopy runs fn on a local copy of the file at loc, for tools that
// work on plain files (the hive editor saves by temp file and rename, which
// cannot happen inside an image). The copy lives in a private temporary
// directory under the name of the original. When writable is set and fn
// leaves the copy with different content, it is written back into the image
// as one replacement; on any error the image is left unchanged.
func WithLocalCopy(loc Location, partition int, writable bool, fn func(path string) error) error {
	img, err := Open(loc.Image, writable)
	if err != nil {
		return err
	}
	fs, err := img.FS(partition)
	if err != nil {
		img.Close()
		return err
	}
	tmp, err := os.MkdirTemp("", "xpboot-edit-")
	if err != nil {
		img.Close()
		return err
	}
	defer os.RemoveAll(tmp)
	local := filepath.Join(tmp, path.Base(loc.Path))
	if _, err := Get(fs, loc.Path, local, nil); err != nil {
		img.Close()
		return fmt.Errorf("%s: %w", loc, err)
	}
	before, err := os.ReadFile(local)
	if err != nil {
		img.Close()
		return err
	}
	if err := fn(local); err != nil {
		img.Close()
		return err
	}
	if writable {
		after, err := os.ReadFile(local)
		if err != nil {
			img.Close()
			return err
		}
		if !bytes.Equal(before, after) {
			if err := fs.WriteFile(loc.Path, bytes.NewReader(after), int64(len(after)), time.Now()); err != nil {
				img.Close()
				return fmt.Errorf("%s: %w", loc, err)
			}
		}
	}
	return img.Close()
}
