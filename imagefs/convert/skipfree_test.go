package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/mbr"
	"github.com/xpboot/xpboot/internal/peertest"
)

// randomBytes returns n bytes of a seeded generator.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b
}

// writeFiles writes files into the image's partition (0: the first
// readable one) and removes the names in remove afterwards.
func writeFiles(t *testing.T, path string, partition int, files map[string][]byte, remove ...string) {
	t.Helper()
	img, err := imagefs.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := img.FS(partition)
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for name, b := range files {
		if err := fs.WriteFile(name, bytes.NewReader(b), int64(len(b)), mt); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range remove {
		if err := fs.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
}

// fatDisk makes a raw disk with one FAT32 partition whose free clusters
// hold old data: a 24 MiB file is written and removed, then smaller files
// are written.
func fatDisk(t *testing.T, dir string) (string, map[string][]byte) {
	t.Helper()
	path := filepath.Join(dir, "fat.raw")
	if _, err := imagefs.Create(path, imagefs.CreateOptions{Size: 96 << 20, FS: "fat32"}); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, path, 0, map[string][]byte{"/OLD.BIN": randomBytes(1, 24<<20)})
	files := map[string][]byte{"/NEW1.BIN": randomBytes(2, 3<<20+77), "/NEW2.TXT": []byte("hello\r\n")}
	writeFiles(t, path, 0, files, "/OLD.BIN")
	return path, files
}

// spliceNTFS formats [off, off+size) of the raw disk at path with mkntfs,
// after filling it with old data, and copies a file in with ntfscp.
func spliceNTFS(t *testing.T, path string, off, size int64, hidden int64, seed uint64) {
	t.Helper()
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	ntfscp := peertest.Need(t, "ntfscp", "ntfs-3g")
	vol := path + fmt.Sprintf(".%d.ntfs", off)
	if err := os.WriteFile(vol, randomBytes(seed, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(vol)
	peertest.Run(t, time.Minute, mkntfs, "-F", "-f", "-q", "-p", fmt.Sprint(hidden), "-H", "255", "-S", "63", vol)
	old := path + ".old"
	if err := os.WriteFile(old, randomBytes(seed+1, 6<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(old)
	peertest.Run(t, time.Minute, ntfscp, "-q", vol, old, "/old.bin")
	b, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// ntfsDisk makes a raw disk with one NTFS partition (mkntfs) whose free
// clusters hold old data: the volume is filled with random bytes before
// mkntfs, a file copied in by ntfscp is removed by xpboot's writer, and
// new files are written.
func ntfsDisk(t *testing.T, dir string) (string, map[string][]byte) {
	t.Helper()
	path := filepath.Join(dir, "ntfs.raw")
	res, err := imagefs.Create(path, imagefs.CreateOptions{Size: 64 << 20, FS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Partition
	spliceNTFS(t, path, p.Offset, p.Size, p.Offset/512, 10)
	files := map[string][]byte{"/new1.bin": randomBytes(11, 2<<20+5), "/new2.txt": []byte("hello\r\n")}
	writeFiles(t, path, 0, files, "/old.bin")
	return path, files
}

// zeroFAT clears, in the raw disk at path, the free clusters of the FAT32
// volume at [off, off+size), by the inverse of fat32.AllocatedRanges. The
// FAT and file contents are checked independently by fsck.fat and mtools.
func zeroFAT(t *testing.T, path string, off, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := fat32.AllocatedRanges(f, off, size)
	if err != nil {
		t.Fatal(err)
	}
	pos := int64(0)
	for _, r := range append(a.Ranges, fat32.Range{Off: size}) {
		if r.Off > pos {
			if _, err := f.WriteAt(make([]byte, r.Off-pos), off+pos); err != nil {
				t.Fatal(err)
			}
		}
		pos = r.Off + r.Len
	}
}

// zeroNTFS clears the unused clusters of the NTFS volume at [off,
// off+size) of the raw disk at path with ntfswipe --unused, the peer's
// own idea of what is free.
func zeroNTFS(t *testing.T, path string, off, size int64) {
	t.Helper()
	wipe := peertest.Need(t, "ntfswipe", "ntfs-3g")
	b := make([]byte, size)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	vol := path + ".wipe.ntfs"
	if err := os.WriteFile(vol, b, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(vol)
	peertest.Run(t, time.Minute, wipe, "--unused", "--force", "--quiet", vol)
	if b, err = os.ReadFile(vol); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// partitionOf writes [off, off+size) of the image at path, read through
// qemu-img as raw, into a file of its own for fsck.fat and ntfsfix, which
// take no offset.
func partitionOf(t *testing.T, path, qfmt string, off, size int64) string {
	t.Helper()
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	raw := path + ".check.raw"
	peertest.Run(t, 2*time.Minute, qemu, "convert", "-f", qfmt, "-O", "raw", path, raw)
	defer os.Remove(raw)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	part := path + fmt.Sprintf(".p%d", off)
	if err := os.WriteFile(part, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(part) })
	return part
}

// captureFormats are the containers the capture tests write, with qemu's
// driver name for each.
var captureFormats = []struct {
	to   imagefs.Format
	qemu string
}{
	{imagefs.FormatRaw, "raw"},
	{imagefs.FormatVMDKSparse, "vmdk"},
	{imagefs.FormatVMDKStream, "vmdk"},
	{imagefs.FormatVHDDynamic, "vpc"},
}

// TestCaptureFAT32AndNTFS captures a FAT32 and an NTFS disk whose free
// clusters hold old data into raw, VMDK (sparse and stream) and VHD: each
// output compares equal (qemu-img compare) to the source with its free
// clusters zeroed, reads less than the whole disk, and passes fsck.fat -n
// or ntfsfix -n; mtools and ntfscat read the files back.
func TestCaptureFAT32AndNTFS(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
	mtype := peertest.Need(t, "mtype", "mtools")
	ntfscat := peertest.Need(t, "ntfscat", "ntfs-3g")
	dir := t.TempDir()
	for _, kind := range []string{"fat32", "ntfs"} {
		t.Run(kind, func(t *testing.T) {
			var src string
			var files map[string][]byte
			if kind == "fat32" {
				src, files = fatDisk(t, dir)
			} else {
				src, files = ntfsDisk(t, dir)
			}
			img, err := imagefs.Open(src, false)
			if err != nil {
				t.Fatal(err)
			}
			p := img.Partitions()[0]
			img.Close()
			ref := src + ".ref"
			copyFile(t, src, ref)
			if kind == "fat32" {
				zeroFAT(t, ref, p.Offset, p.Size)
			} else {
				zeroNTFS(t, ref, p.Offset, p.Size)
			}
			// The old data is really there: the source differs from the
			// reference.
			if out, err := peertest.Try(t, time.Minute, qemu, "compare", "-q", "-f", "raw", "-F", "raw", src, ref); err == nil {
				t.Fatalf("source equals its zero-filled copy: the test has no old data (%s)", out)
			}
			for _, cf := range captureFormats {
				t.Run(string(cf.to), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					out := filepath.Join(dir, kind+"-"+string(cf.to)+".img")
					var lastDone, lastTotal int64
					sum, err := Convert(ctx, src, out, Options{To: cf.to, SkipFree: true, Progress: func(d, tot int64) { lastDone, lastTotal = d, tot }})
					if err != nil {
						t.Fatal(err)
					}
					if len(sum.Partitions) != 1 || sum.Partitions[0].Method != MethodAllocated || sum.Partitions[0].FS != kind {
						t.Fatalf("partitions %+v", sum.Partitions)
					}
					pc := sum.Partitions[0]
					if pc.BytesRead+pc.BytesSkipped != pc.Size || pc.BytesRead > pc.UsedBytes || pc.BytesSkipped < p.Size/2 {
						t.Errorf("partition read %d, skipped %d of %d (used %d)", pc.BytesRead, pc.BytesSkipped, pc.Size, pc.UsedBytes)
					}
					if sum.BytesRead > pc.BytesRead+1<<20 {
						t.Errorf("read %d bytes, the partition only %d", sum.BytesRead, pc.BytesRead)
					}
					if lastTotal != sum.BytesRead || lastDone != lastTotal {
						t.Errorf("progress ended at %d of %d; %d bytes were read", lastDone, lastTotal, sum.BytesRead)
					}
					peertest.Run(t, 2*time.Minute, qemu, "compare", "-f", "raw", "-F", cf.qemu, ref, out)
					part := partitionOf(t, out, cf.qemu, p.Offset, p.Size)
					if kind == "fat32" {
						peertest.Run(t, time.Minute, fsck, "-n", part)
						for name, want := range files {
							got := peertest.Run(t, time.Minute, mtype, "-i", part, "::"+name)
							if !bytes.Equal(got, want) {
								t.Errorf("%s: mtype read %d bytes, want %d", name, len(got), len(want))
							}
						}
					} else {
						peertest.Run(t, time.Minute, ntfsfix, "-n", part)
						for name, want := range files {
							got := peertest.Run(t, time.Minute, ntfscat, part, name)
							if !bytes.Equal(got, want) {
								t.Errorf("%s: ntfscat read %d bytes, want %d", name, len(got), len(want))
							}
						}
					}
				})
			}
		})
	}
}

// putEntry writes an MBR partition entry (LBA fields; CHS set to the
// "use LBA" maximum) at slot i of sector.
func putEntry(sector []byte, i int, typ byte, start, sectors uint32) {
	e := sector[446+16*i:]
	e[0] = 0
	copy(e[1:4], []byte{0xFE, 0xFF, 0xFF})
	e[4] = typ
	copy(e[5:8], []byte{0xFE, 0xFF, 0xFF})
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], sectors)
	sector[510], sector[511] = 0x55, 0xAA
}

// TestCaptureLogicalAndUnknown captures a disk with an unknown (type 0x83)
// primary partition, full of data, that must be copied whole, and an
// extended partition holding a FAT32 and an NTFS logical partition, both
// with old data in their free clusters, that must be read through their
// allocation; EBRs and gaps are copied.
func TestCaptureLogicalAndUnknown(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	ntfsfix := peertest.Need(t, "ntfsfix", "ntfs-3g")
	dir := t.TempDir()
	src := filepath.Join(dir, "multi.raw")
	const (
		unkStart, unkSectors = 63, 8192 // 4 MiB
		extStart             = 8256
		fatStart             = extStart + 63
		fatSectors           = 80 << 11 // 80 MiB
		ebr2                 = fatStart + fatSectors
		ntfsStart            = ebr2 + 63
		ntfsSectors          = 16 << 11 // 16 MiB
		diskSectors          = ntfsStart + ntfsSectors + 100
	)
	mbrSec := make([]byte, 512)
	binary.LittleEndian.PutUint32(mbrSec[440:], 0x12345678)
	putEntry(mbrSec, 0, 0x83, unkStart, unkSectors)
	putEntry(mbrSec, 1, mbr.TypeExtLBA, extStart, diskSectors-extStart)
	ebr := make([]byte, 512)
	putEntry(ebr, 0, mbr.TypeFAT32LBA, fatStart-extStart, fatSectors)
	putEntry(ebr, 1, mbr.TypeExtended, ebr2-extStart, ntfsStart+ntfsSectors-ebr2)
	ebrB := make([]byte, 512)
	putEntry(ebrB, 0, mbr.TypeNTFS, ntfsStart-ebr2, ntfsSectors)
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ int, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(0, f.Truncate(diskSectors*512))
	must(f.WriteAt(mbrSec, 0))
	must(f.WriteAt(randomBytes(20, unkSectors*512), unkStart*512))
	must(f.WriteAt(ebr, extStart*512))
	must(f.WriteAt(ebrB, ebr2*512))
	must(f.WriteAt([]byte("data in the gap after an EBR"), (extStart+5)*512))
	// The FAT32 logical partition: old data first, then the format.
	must(f.WriteAt(randomBytes(21, fatSectors*512), fatStart*512))
	if err := fat32.Format(f, fatStart*512, fatSectors*512, fat32.FormatOptions{HiddenSectors: fatStart, Heads: 255, SectorsPerTrack: 63}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	spliceNTFS(t, src, ntfsStart*512, ntfsSectors*512, ntfsStart, 30)
	writeFiles(t, src, 5, map[string][]byte{"/A.BIN": randomBytes(22, 1<<20)})
	writeFiles(t, src, 6, map[string][]byte{"/b.bin": randomBytes(23, 1<<20)}, "/old.bin")

	ref := src + ".ref"
	copyFile(t, src, ref)
	zeroFAT(t, ref, fatStart*512, fatSectors*512)
	zeroNTFS(t, ref, ntfsStart*512, ntfsSectors*512)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "multi.vmdk")
	sum, err := Convert(ctx, src, out, Options{To: imagefs.FormatVMDKSparse, SkipFree: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][2]string{1: {fsUnknown, MethodWhole}, 2: {fsExtended, MethodContainer}, 5: {fsFAT32, MethodAllocated}, 6: {fsNTFS, MethodAllocated}}
	if len(sum.Partitions) != len(want) {
		t.Fatalf("partitions %+v", sum.Partitions)
	}
	for _, p := range sum.Partitions {
		if w := want[p.Index]; p.FS != w[0] || p.Method != w[1] {
			t.Errorf("partition %d: %s read %s, want %s read %s", p.Index, p.FS, p.Method, w[0], w[1])
		}
		if p.Method == MethodWhole && (p.Fallback == "" || p.BytesRead != p.Size) {
			t.Errorf("partition %d copied whole: read %d of %d, fallback %q", p.Index, p.BytesRead, p.Size, p.Fallback)
		}
	}
	peertest.Run(t, 2*time.Minute, qemu, "compare", "-f", "raw", "-F", "vmdk", ref, out)
	peertest.Run(t, time.Minute, fsck, "-n", partitionOf(t, out, "vmdk", fatStart*512, fatSectors*512))
	peertest.Run(t, time.Minute, ntfsfix, "-n", partitionOf(t, out, "vmdk", ntfsStart*512, ntfsSectors*512))
}

// TestCaptureNoTable: a disk without a partition table, or with damage in
// a file system, is copied whole (per disk, per partition) and says why.
func TestCaptureFallbacks(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	blank := filepath.Join(dir, "blank.raw")
	if err := os.WriteFile(blank, randomBytes(40, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := Convert(ctx, blank, filepath.Join(dir, "blank.img"), Options{SkipFree: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.BytesRead != 1<<20 || len(sum.Notices) == 0 || !strings.Contains(strings.Join(sum.Notices, "\n"), "whole disk") {
		t.Errorf("no table: read %d, notices %q", sum.BytesRead, sum.Notices)
	}
	// A FAT32 volume whose FAT cannot be read past the device end: its
	// boot sector claims more than the partition holds.
	src, _ := fatDisk(t, dir)
	img, err := imagefs.Open(src, false)
	if err != nil {
		t.Fatal(err)
	}
	p := img.Partitions()[0]
	img.Close()
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xFF, 0xFF, 0xFF, 0x7F}, p.Offset+0x20) // total sectors
	f.Close()
	sum, err = Convert(ctx, src, filepath.Join(dir, "damaged.img"), Options{SkipFree: true})
	if err != nil {
		t.Fatal(err)
	}
	if pc := sum.Partitions[0]; pc.Method != MethodWhole || !strings.Contains(pc.Fallback, "fat32") {
		t.Errorf("damaged FAT32: %+v", pc)
	}
}

// TestCaptureSourceChanges changes the source while it is copied: the
// capture fails with ErrSourceChanged and leaves no output, whether the
// change shows in the modification time or only in the allocation; with
// ForceShare the output is kept and a notice says so.
func TestCaptureSourceChanges(t *testing.T) {
	dir := t.TempDir()
	src, _ := fatDisk(t, dir)
	img, err := imagefs.Open(src, false)
	if err != nil {
		t.Fatal(err)
	}
	p := img.Partitions()[0]
	img.Close()
	fs, err := fat32.Open(readOnlyFile(t, src), p.Offset, p.Size, true)
	if err != nil {
		t.Fatal(err)
	}
	bs := fs.BootSector()
	// The FAT entry of the last cluster, free in the fixture.
	entry := p.Offset + int64(bs.ReservedSectors)*512 + int64(bs.Clusters()+1)*4
	for _, tc := range []struct {
		name       string
		keepMtime  bool
		forceShare bool
	}{{"mtime", false, false}, {"allocation", true, false}, {"force-share", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := os.Stat(src)
			if err != nil {
				t.Fatal(err)
			}
			changed := false
			change := func(done, total int64) {
				if changed {
					return
				}
				changed = true
				f, err := os.OpenFile(src, os.O_RDWR, 0)
				if err != nil {
					t.Error(err)
					return
				}
				old := make([]byte, 4)
				f.ReadAt(old, entry)
				v := binary.LittleEndian.Uint32(old) ^ 0x0FFFFFFF
				binary.LittleEndian.PutUint32(old, v)
				f.WriteAt(old, entry)
				f.Close()
				if tc.keepMtime {
					os.Chtimes(src, st.ModTime(), st.ModTime())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out := filepath.Join(dir, "changed-"+tc.name+".vmdk")
			sum, err := Convert(ctx, src, out, Options{To: imagefs.FormatVMDKSparse, SkipFree: true, ForceShare: tc.forceShare, Progress: change})
			if !changed {
				t.Fatal("the progress callback never ran")
			}
			if tc.forceShare {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(strings.Join(sum.Notices, "\n"), "changed during the capture") {
					t.Errorf("notices %q", sum.Notices)
				}
				if _, err := os.Stat(out); err != nil {
					t.Error(err)
				}
				return
			}
			if !errors.Is(err, ErrSourceChanged) {
				t.Fatalf("got %v, want ErrSourceChanged", err)
			}
			if tc.keepMtime && !strings.Contains(err.Error(), "allocation") {
				t.Errorf("error %q does not name the allocation", err)
			}
			assertNoOutput(t, dir, out)
		})
	}
}

// readOnlyFile opens path read-only for fat32.Open.
func readOnlyFile(t *testing.T, path string) blockdev.ReaderWriterAt {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// assertNoOutput fails if out or any temporary file is in dir.
func assertNoOutput(t *testing.T, dir, out string) {
	t.Helper()
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("%s exists after a failed capture", out)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "xpboot-tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestCaptureBadSize: a size the output format cannot hold exactly is
// refused before anything is written.
func TestCaptureBadSize(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "odd.raw")
	if err := os.WriteFile(src, randomBytes(50, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "odd.vmdk")
	_, err := Convert(context.Background(), src, out, Options{To: imagefs.FormatVMDKSparse, SkipFree: true, Exact: true})
	if !errors.Is(err, ErrSize) {
		t.Fatalf("got %v, want ErrSize", err)
	}
	assertNoOutput(t, dir, out)
}

// TestCaptureFullDestination captures into a tmpfs too small for the
// output: a clear error naming the output, and nothing left there.
func TestCaptureFullDestination(t *testing.T) {
	peertest.NeedRoot(t, "mounts a small tmpfs")
	dir := t.TempDir()
	src, _ := fatDisk(t, dir)
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	out := filepath.Join(mnt, "full.vmdk")
	_, err := Convert(context.Background(), src, out, Options{To: imagefs.FormatVMDKSparse, SkipFree: true})
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), out) {
		t.Fatalf("got %v, want ENOSPC naming %s", err, out)
	}
	assertNoOutput(t, mnt, out)
}

// TestCaptureBlockDevice captures a loop device over a FAT32 disk: the
// same output as capturing the file; the device held exclusively by
// another opener (as a mount holds it) is refused with ErrInUse, and
// copied with ForceShare.
func TestCaptureBlockDevice(t *testing.T) {
	peertest.NeedRoot(t, "attaches a loop device")
	losetup := peertest.Need(t, "losetup", "mount")
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src, _ := fatDisk(t, dir)
	dev := strings.TrimSpace(string(peertest.Run(t, 30*time.Second, losetup, "--find", "--show", "--read-only", src)))
	t.Cleanup(func() { peertest.Try(t, 30*time.Second, losetup, "-d", dev) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fromFile := filepath.Join(dir, "file.vmdk")
	if _, err := Convert(ctx, src, fromFile, Options{To: imagefs.FormatVMDKSparse, SkipFree: true}); err != nil {
		t.Fatal(err)
	}
	fromDev := filepath.Join(dir, "dev.vmdk")
	sum, err := Convert(ctx, dev, fromDev, Options{To: imagefs.FormatVMDKSparse, SkipFree: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Partitions) != 1 || sum.Partitions[0].Method != MethodAllocated {
		t.Fatalf("partitions %+v", sum.Partitions)
	}
	peertest.Run(t, time.Minute, qemu, "compare", "-f", "vmdk", "-F", "vmdk", fromFile, fromDev)

	// Held: an O_EXCL open is what a mount or device mapper takes.
	fd, err := syscall.Open(dev, syscall.O_RDONLY|syscall.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	held := filepath.Join(dir, "held.vmdk")
	if _, err := Convert(ctx, dev, held, Options{To: imagefs.FormatVMDKSparse, SkipFree: true}); !errors.Is(err, ErrInUse) {
		t.Fatalf("held device: %v, want ErrInUse", err)
	}
	assertNoOutput(t, dir, held)
	sum, err = Convert(ctx, dev, held, Options{To: imagefs.FormatVMDKSparse, SkipFree: true, ForceShare: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(sum.Notices, "\n"), "in use") {
		t.Errorf("notices %q", sum.Notices)
	}
}
