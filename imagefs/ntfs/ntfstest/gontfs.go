package ntfstest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"www.velocidex.com/golang/go-ntfs/parser"
)

func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// checkGoNTFS walks the volume with go-ntfs, a third parser written
// independently of ntfs-3g and Sleuth Kit, and hashes every file.
func checkGoNTFS(ctx context.Context, tg *Target) (err error) {
	// go-ntfs is forensics code that may panic on a damaged volume: that
	// is a finding, not a crash of the test binary.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("go-ntfs panicked: %v", r)
		}
	}()
	f, err := os.Open(tg.Image)
	if err != nil {
		return err
	}
	defer f.Close()
	paged, err := parser.NewPagedReader(&parser.OffsetReader{Offset: tg.Offset, Reader: f}, 4096, 1024)
	if err != nil {
		return err
	}
	nctx, err := parser.GetNTFSContext(paged, 0)
	if err != nil {
		return fmt.Errorf("go-ntfs: %w", err)
	}
	root, err := nctx.GetMFT(5)
	if err != nil {
		return fmt.Errorf("go-ntfs: root directory: %w", err)
	}
	got := Tree{}
	if err := walkGoNTFS(ctx, nctx, root, "", got, 0); err != nil {
		return err
	}
	if d := Diff(tg.Want, got); d != "" {
		return fmt.Errorf("go-ntfs reads another tree:\n%s", d)
	}
	return nil
}

func walkGoNTFS(ctx context.Context, nctx *parser.NTFSContext, dir *parser.MFT_ENTRY, prefix string, got Tree, depth int) error {
	if depth > 64 {
		return fmt.Errorf("go-ntfs: %s: directories nested deeper than 64 (an index loop?)", prefix)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// ListDir gives one FileInfo per name and stream of each child record:
	// keep the unnamed stream under its Win32 name.
	byRecord := map[string]*parser.FileInfo{}
	var order []string
	for _, fi := range parser.ListDir(nctx, dir) {
		if fi.Name == "" || fi.Name == "." || strings.Contains(fi.Name, ":") {
			continue
		}
		if prefix == "" && strings.HasPrefix(fi.Name, "$") {
			continue
		}
		id, _, _, _, err := parser.ParseMFTId(fi.MFTId)
		if err != nil {
			return fmt.Errorf("go-ntfs: %s: %w", prefix, err)
		}
		key := strconv.FormatInt(id, 10)
		if prev, ok := byRecord[key]; ok {
			if prev.NameType == "DOS" {
				byRecord[key] = fi
			}
			continue
		}
		byRecord[key] = fi
		order = append(order, key)
	}
	for _, key := range order {
		fi := byRecord[key]
		p := fi.Name
		if prefix != "" {
			p = prefix + "/" + fi.Name
		}
		if _, dup := got[p]; dup {
			return fmt.Errorf("go-ntfs: %s listed twice", p)
		}
		id, _ := strconv.ParseInt(key, 10, 64)
		entry, err := nctx.GetMFT(id)
		if err != nil {
			return fmt.Errorf("go-ntfs: %s: MFT record %d: %w", p, id, err)
		}
		if fi.IsDir {
			got[p] = Dir
			if err := walkGoNTFS(ctx, nctx, entry, p, got, depth+1); err != nil {
				return err
			}
			continue
		}
		b, err := readGoNTFS(nctx, entry, fi.Size)
		if err != nil {
			return fmt.Errorf("go-ntfs: %s: MFT record %d: %w", p, id, err)
		}
		got[p] = Hash(b)
	}
	return nil
}

func readGoNTFS(nctx *parser.NTFSContext, entry *parser.MFT_ENTRY, size int64) ([]byte, error) {
	if size < 0 || size > 1<<32 {
		return nil, fmt.Errorf("implausible size %d", size)
	}
	r, err := parser.OpenStream(nctx, entry, 128, parser.WILDCARD_STREAM_ID, "")
	if err != nil {
		if size == 0 {
			return nil, nil
		}
		return nil, err
	}
	b := make([]byte, size)
	n, err := r.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if int64(n) != size {
		return nil, fmt.Errorf("read %d of %d bytes", n, size)
	}
	return b, nil
}
