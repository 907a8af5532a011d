package imagefs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPutSetupTree copies an XP-sized I386 folder (4,000 files of 1 to
// 12 KiB in one directory) into a fresh 2 GiB image. bench/image-put.sh runs
// the same against mtools' mcopy.
func BenchmarkPutSetupTree(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "I386")
	os.MkdirAll(src, 0o755)
	var total int64
	for i := 0; i < 4000; i++ {
		size := 1024 + (i*7919)%11264
		total += int64(size)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(i + j)
		}
		os.WriteFile(filepath.Join(src, fmt.Sprintf("setup component %05d.dl_", i)), data, 0o644)
	}
	base := filepath.Join(dir, "base.img")
	if _, err := Create(base, CreateOptions{Size: 2 << 30}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		disk := filepath.Join(dir, "disk.img")
		os.Remove(disk)
		if _, err := Create(disk, CreateOptions{Size: 2 << 30}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		img, err := Open(disk, true)
		if err != nil {
			b.Fatal(err)
		}
		fs, err := img.FS(0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Put(fs, []string{src}, "/", nil); err != nil {
			b.Fatal(err)
		}
		if err := img.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
