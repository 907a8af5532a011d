package blockdev

import "context"

// CopyData copies the parts of src's first n bytes that hold data (by
// src.Extents) to the same offsets of dst; holes and zero ranges are left
// as dst has them. A cancelled ctx stops it between 1 MiB pieces.
func CopyData(ctx context.Context, src, dst Device, n int64) error {
	exts, err := src.Extents(0, n)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, x := range exts {
		if x.State != Data {
			continue
		}
		for off := x.Off; off < x.Off+x.Len; {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := min(int64(len(buf)), x.Off+x.Len-off)
			if _, err := src.ReadAt(buf[:k], off); err != nil {
				return err
			}
			if _, err := dst.WriteAt(buf[:k], off); err != nil {
				return err
			}
			off += k
		}
	}
	return nil
}
