package convert

import (
	"context"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"os"
	"path/filepath"

	"github.com/xpboot/xpboot/imagefs"
)

// CreateImage writes a new disk image like imagefs.Create, in any output
// format. The disk is laid out raw in a temporary directory beside path and
// then converted, so every format gets the same layout and boot code, and a
// failure leaves nothing behind. Only the Format, Exact and Force settings
// of copts and its progress and logging hooks are used.
func CreateImage(ctx context.Context, path string, format imagefs.Format, opts imagefs.CreateOptions, copts Options) (*imagefs.CreateResult, *Summary, error) {
	if format == "" || format == imagefs.FormatRaw {
		res, err := imagefs.Create(path, opts)
		return res, nil, err
	}
	if _, err := imagefs.ParseFormat(string(format)); err != nil {
		return nil, nil, err
	}
	if !opts.Force {
		if _, err := os.Lstat(path); err == nil {
			return nil, nil, fmt.Errorf("create %s: %w", path, imagefs.ErrExists)
		}
	}
	// Refuse sizes the format cannot hold before building anything.
	if _, _, err := OutputSize(format, opts.Size, copts.Exact); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", path, err)
	}
	// The raw image is built in a directory beside path under a name a
	// later run removes if this one is killed.
	atomicfile.Clean(filepath.Dir(path))
	tmp, err := atomicfile.TempName(path)
	if err != nil {
		return nil, nil, err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	raw := filepath.Join(tmp, "disk.raw")
	res, err := imagefs.Create(raw, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", path, err)
	}
	copts.To, copts.Force = format, opts.Force
	sum, err := Convert(ctx, raw, path, copts)
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", path, err)
	}
	res.Path, res.Size = path, sum.OutputSize
	return res, sum, nil
}
