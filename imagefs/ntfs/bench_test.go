package ntfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// BenchmarkPut4000 writes 4,000 files of 1-12 KiB into one new directory
// of a 2 GiB volume made by mkntfs, the workload of issue 11's speed goal
// (bench/ntfs runs it side by side with ntfs-3g). One op is the whole run.
func BenchmarkPut4000(b *testing.B) {
	peertest.Need(b, "mkntfs", "ntfs-3g")
	dir := b.TempDir()
	master := filepath.Join(dir, "master.ntfs")
	f, _ := os.Create(master)
	f.Truncate(2 << 30)
	f.Close()
	peertest.Run(b, time.Minute, "mkntfs", "-F", "-f", "-q", master)
	data := make([][]byte, 4000)
	for i := range data {
		data[i] = bytes.Repeat([]byte{byte(i)}, 1024+(i*2654435761)%(11*1024))
	}
	for b.Loop() {
		b.StopTimer()
		vol := filepath.Join(dir, "vol.ntfs")
		peertest.Run(b, time.Minute, "cp", "--sparse=always", master, vol)
		f, err := os.OpenFile(vol, os.O_RDWR, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		fs, err := OpenWritable(f, 0, 2<<30)
		if err != nil {
			b.Fatal(err)
		}
		if err := fs.Mkdir("/new", testTime); err != nil {
			b.Fatal(err)
		}
		for i, d := range data {
			p := fmt.Sprintf("/new/file%04d.bin", i)
			if _, err := fs.Stat(p); err == nil {
				b.Fatal("exists")
			}
			if err := fs.WriteFile(p, bytes.NewReader(d), int64(len(d)), testTime); err != nil {
				b.Fatal(err)
			}
		}
		if err := fs.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		os.Remove(vol)
		b.StartTimer()
	}
}
