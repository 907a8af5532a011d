package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoLeftoversAfterKill kills xpboot with SIGKILL in the middle of
// writing outputs: a raw image (an unnamed file) leaves nothing; outputs
// made by path (convert to VMDK, create --format vhd) leave temporary
// names that the next xpboot run in that directory removes.
func TestNoLeftoversAfterKill(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.img")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(2 << 30)
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + i>>9)
	}
	for off := int64(0); off < 96<<20; off += 1 << 20 {
		f.WriteAt(chunk, off)
	}
	f.Close()
	for _, args := range [][]string{
		{"image", "convert", "--to", "vmdk-stream", "src.img", "out.vmdk"},
		{"image", "convert", "--to", "raw", "src.img", "out.img"},
		{"image", "create", "--size", "1G", "--format", "vhd", "made.vhd"},
	} {
		t.Run(strings.Join(args[:3], " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, xpbootBinary, args...)
			cmd.Dir = dir
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill it as soon as it has started writing (or after 300 ms).
			for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if leftovers(t, dir) != nil {
					break
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			if r := xpboot(t, dir, "image", "info", "src.img"); r.code != 0 {
				t.Fatalf("next run: %+v", r)
			}
			if left := leftovers(t, dir); left != nil {
				t.Errorf("left after the next run: %v", left)
			}
			os.Remove(filepath.Join(dir, args[len(args)-1]))
		})
	}
}

// leftovers lists the directory's hidden temporary names.
func leftovers(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}
