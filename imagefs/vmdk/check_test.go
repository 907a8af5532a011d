package vmdk_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/convert"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
)

// checkSource makes an 80 MiB raw disk with data in three grain tables
// (at 0, 1 MiB, 40 MiB and in the last grain), so that every sparse
// container made from it has several grain tables and grains.
func checkSource(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "src.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 80 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 16))
	for _, off := range []int64{0, 1 << 20, 40 << 20, size - 64<<10} {
		b := make([]byte, 200<<10)
		if off+int64(len(b)) > size {
			b = b[:size-off]
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// vmdkSources are the VMDK files the corruption cases start from: each
// subformat made by qemu-img convert and by xpboot's converter, and
// empty disks made by qemu-img create.
type vmdkSources map[string]string

func makeVMDKSources(t *testing.T) vmdkSources {
	t.Helper()
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src := checkSource(t, dir)
	out := vmdkSources{}
	for name, sub := range map[string]string{"qemu-sparse": "monolithicSparse", "qemu-stream": "streamOptimized", "qemu-flat": "monolithicFlat"} {
		p := filepath.Join(dir, name+".vmdk")
		peertest.Run(t, 2*time.Minute, qemuImg, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat="+sub, src, p)
		out[name] = p
	}
	for name, sub := range map[string]string{"qemu-create-sparse": "monolithicSparse", "qemu-create-flat": "monolithicFlat"} {
		p := filepath.Join(dir, name+".vmdk")
		peertest.Run(t, time.Minute, qemuImg, "create", "-f", "vmdk", "-o", "subformat="+sub, p, "80M")
		out[name] = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, to := range map[string]imagefs.Format{"xpboot-sparse": imagefs.FormatVMDKSparse, "xpboot-stream": imagefs.FormatVMDKStream, "xpboot-flat": imagefs.FormatVMDKFlat} {
		p := filepath.Join(dir, name+".vmdk")
		if _, err := convert.Convert(ctx, src, p, convert.Options{To: to}); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

// copyDisk copies a VMDK and, for a descriptor, the extent files it names
// into a fresh directory and returns the new descriptor's path.
func copyDisk(t *testing.T, p string) string {
	t.Helper()
	dir := t.TempDir()
	files := []string{p}
	if d, err := vmdk.ReadDescriptor(p); err == nil && !isSparse(t, p) {
		for _, el := range d.Extents {
			files = append(files, filepath.Join(filepath.Dir(p), el.File))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(p))
}

func isSparse(t *testing.T, p string) bool {
	b := make([]byte, 4)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, _ = f.ReadAt(b, 0)
	return binary.LittleEndian.Uint32(b) == vmdk.Magic
}

// sparseFile is a sparse extent opened for patching.
type sparseFile struct {
	t    *testing.T
	b    []byte
	h    *vmdk.Header // the header that names the grain directory (the footer's for a stream)
	hOff int64        // where that header is
}

func openSparse(t *testing.T, p string) *sparseFile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := vmdk.ParseHeader(b[:512])
	if err != nil {
		t.Fatal(err)
	}
	s := &sparseFile{t: t, b: b, h: h}
	if h.GDOffset == vmdk.GDAtEnd {
		s.hOff = int64(len(b)) - 1024
		if s.h, err = vmdk.ParseHeader(b[s.hOff : s.hOff+512]); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *sparseFile) u32(off int64) uint32           { return binary.LittleEndian.Uint32(s.b[off:]) }
func (s *sparseFile) put32(off int64, v uint32)      { binary.LittleEndian.PutUint32(s.b[off:], v) }
func (s *sparseFile) gdEntry(gd uint64, i int) int64 { return int64(gd)*512 + 4*int64(i) }

// gte returns the offset of entry j of grain table i of the directory gd.
func (s *sparseFile) gte(gd uint64, i, j int) int64 {
	gt := s.u32(s.gdEntry(gd, i))
	if gt == 0 {
		s.t.Fatalf("grain table %d is not allocated", i)
	}
	return int64(gt)*512 + 4*int64(j)
}

// grain returns the sector of grain (i, j) as the primary table names it.
func (s *sparseFile) grain(i, j int) uint32 { return s.u32(s.gte(s.h.GDOffset, i, j)) }

// descriptor replaces old with new in the embedded descriptor, keeping
// its size (the rest stays zero-padded).
func (s *sparseFile) descriptor(old, new string) {
	off, n := int64(512), int64(0)
	if s.h.DescriptorOffset != 0 {
		off, n = int64(s.h.DescriptorOffset)*512, int64(s.h.DescriptorSize)*512
	}
	area := s.b[off : off+n]
	end := bytes.IndexByte(area, 0)
	if end < 0 {
		end = len(area)
	}
	text := string(area[:end])
	if !strings.Contains(text, old) {
		s.t.Fatalf("descriptor has no %q:\n%s", old, text)
	}
	text = strings.Replace(text, old, new, 1)
	clear(area)
	copy(area, text)
}

func (s *sparseFile) save(p string) {
	if err := os.WriteFile(p, s.b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// qemu-img check exit statuses: 0 clean, 1 check not completed (the image
// does not open), 2 corruptions, 3 leaks only.
// The tests compare clean against not clean.
const (
	qemuNotRun   = -1 // qemu-img check is not run: it does not read this structure
	qemuClean    = 0  // qemu-img check exits 0
	qemuNotClean = 1  // qemu-img check exits non-zero (1: check failed, 2: corruptions)
)

func TestCheckVMDKFindings(t *testing.T) {
	src := makeVMDKSources(t)
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	le := binary.LittleEndian
	tests := []struct {
		name      string
		sources   []string
		corrupt   func(t *testing.T, p string)
		severity  string
		structure string
		msg       string
		qemu      int // what qemu-img check says about the damage
	}{
		{"clean", []string{"qemu-create-sparse", "qemu-create-flat", "qemu-sparse", "qemu-stream", "qemu-flat", "xpboot-sparse", "xpboot-stream", "xpboot-flat"},
			func(*testing.T, string) {}, "", "", "", qemuClean},
		{"grain directory entry past EOF", []string{"qemu-sparse", "xpboot-sparse", "qemu-stream", "xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.put32(s.gdEntry(s.h.GDOffset, 1), 0x7fffff00)
			s.save(p)
		}, "error", "grain directory", "entry 1: grain table at sector 2147483392 extends past the end of the file",
			// qemu reads the table past EOF as zeros, so its grains read
			// as zeros and qemu-img check finds nothing: xpboot reports the
			// lost table.
			qemuClean},
		{"grain table entry past EOF", []string{"qemu-sparse", "xpboot-sparse", "qemu-stream", "xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.put32(s.gte(s.h.GDOffset, 0, 0), 0x7fffff00)
			if s.h.RGDOffset != 0 && s.h.Flags&vmdk.FlagRedundantGD != 0 {
				s.put32(s.gte(s.h.RGDOffset, 0, 0), 0x7fffff00)
			}
			s.save(p)
		}, "error", "grain table", "past the end of the file", qemuNotClean},
		{"grains overlap", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			g := s.grain(0, 0)
			for _, gd := range []uint64{s.h.GDOffset, s.h.RGDOffset} {
				if gd != 0 {
					s.put32(s.gte(gd, 0, 16), g) // grain 16 (1 MiB) onto grain 0
				}
			}
			s.save(p)
		}, "error", "grain", "overlaps grain", qemuNotRun},
		{"compressed grains overlap", []string{"qemu-stream", "xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.put32(s.gte(s.h.GDOffset, 0, 16), s.grain(0, 0))
			s.save(p)
		}, "error", "grain", "marker names sector 0, want 2048", qemuNotRun},
		{"grain tables overlap", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			for _, gd := range []uint64{s.h.GDOffset, s.h.RGDOffset} {
				if gd != 0 {
					s.put32(s.gdEntry(gd, 1), s.u32(s.gdEntry(gd, 0)))
				}
			}
			s.save(p)
		}, "error", "grain", "grain table 1 at", qemuNotRun},
		{"grain over the header", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			for _, gd := range []uint64{s.h.GDOffset, s.h.RGDOffset} {
				if gd != 0 {
					s.put32(s.gte(gd, 0, 0), 0)
					s.put32(s.gte(gd, 0, 5), 2) // sector 2: the descriptor
				}
			}
			s.save(p)
		}, "error", "grain", "overlaps", qemuNotRun},
		{"redundant grain table differs", []string{"qemu-sparse", "xpboot-sparse", "qemu-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			if s.h.Flags&vmdk.FlagRedundantGD == 0 {
				t.Skip("no redundant grain directory")
			}
			s.put32(s.gte(s.h.RGDOffset, 1, 128), 0) // grain 640, at 40 MiB
			s.save(p)
		}, "error", "redundant grain directory", "redundant grain table 1 differs from the primary at entry 128 (0 vs", qemuClean},
		{"redundant grain directory lacks a table", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			if s.h.Flags&vmdk.FlagRedundantGD == 0 {
				t.Skip("no redundant grain directory")
			}
			s.put32(s.gdEntry(s.h.RGDOffset, 1), 0)
			s.save(p)
		}, "error", "redundant grain directory", "entry 1: the redundant grain directory has no table, the primary has one", qemuClean},
		{"descriptor extent size", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.descriptor("RW 163840 SPARSE", "RW 163000 SPARSE")
			s.save(p)
		}, "error", "descriptor", "extent of 163000 sectors, the sparse header's capacity is 163840", qemuNotRun},
		{"descriptor create type", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.descriptor(`createType="monolithicSparse"`, `createType="monolithicFlat"`)
			s.save(p)
		}, "error", "descriptor", "createType monolithicFlat with a SPARSE extent", qemuNotRun},
		{"descriptor parent without hint", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.descriptor("parentCID=ffffffff", "parentCID=12345678")
			s.save(p)
		}, "error", "descriptor", "parentCID 12345678 but no parentFileNameHint", qemuNotRun},
		{"stream descriptor says sparse", []string{"qemu-stream", "xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.descriptor(`createType="streamOptimized"`, `createType="monolithicSparse"`)
			s.save(p)
		}, "error", "descriptor", "compressed flag is true", qemuNotRun},
		{"unclean shutdown", []string{"qemu-sparse", "xpboot-sparse"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.b[72] = 1
			s.save(p)
		}, "warning", "header", "unclean shutdown", qemuClean},
		{"grain marker names another sector", []string{"qemu-stream", "xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			g := int64(s.grain(0, 16)) * 512
			le.PutUint64(s.b[g:], 99)
			s.save(p)
		}, "error", "grain", "grain 16: marker names sector 99, want 2048", qemuClean},
		// qemu-img writes streamOptimized files whose header names the
		// grain directory, without footer or markers; xpboot writes the
		// footer and markers the specification describes.
		{"footer marker", []string{"xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.put32(int64(len(s.b))-1536+12, 7)
			s.save(p)
		}, "error", "header", "marker type 7 before the footer, want 3", qemuNotRun},
		{"end-of-stream marker", []string{"xpboot-stream"}, func(t *testing.T, p string) {
			s := openSparse(t, p)
			s.put32(int64(len(s.b))-512+12, 5)
			s.save(p)
		}, "error", "header", "marker type 5 after the footer, want 0", qemuNotRun},
		{"stream truncated", []string{"xpboot-stream"}, func(t *testing.T, p string) {
			if err := os.Truncate(p, 3*512); err != nil {
				t.Fatal(err)
			}
		}, "error", "header", "has no footer", qemuNotClean},
		{"stream truncated", []string{"qemu-stream"}, func(t *testing.T, p string) {
			if err := os.Truncate(p, 3*512); err != nil {
				t.Fatal(err)
			}
		}, "error", "grain directory", "extends past the end of the file (size 1536)", qemuNotClean},
		{"missing flat extent", []string{"qemu-flat", "xpboot-flat"}, func(t *testing.T, p string) {
			d, err := vmdk.ReadDescriptor(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(filepath.Dir(p), d.Extents[0].File)); err != nil {
				t.Fatal(err)
			}
		}, "error", "descriptor", "no such file", qemuNotClean},
		{"flat extent too short", []string{"qemu-flat", "xpboot-flat"}, func(t *testing.T, p string) {
			d, err := vmdk.ReadDescriptor(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(filepath.Join(filepath.Dir(p), d.Extents[0].File), 40<<20); err != nil {
				t.Fatal(err)
			}
		}, "error", "descriptor", "has 41943040 bytes, the extent needs 83886080", qemuNotRun},
		{"flat descriptor create type", []string{"qemu-flat", "xpboot-flat"}, func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(`createType="monolithicFlat"`), []byte(`createType="streamOptimized"`), 1)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "error", "descriptor", "createType streamOptimized with a FLAT extent", qemuNotRun},
	}
	for _, tc := range tests {
		for _, from := range tc.sources {
			t.Run(tc.name+"/"+from, func(t *testing.T) {
				p := copyDisk(t, src[from])
				tc.corrupt(t, p)
				fs, err := vmdk.Check(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				var got *vmdk.Finding
				for i, f := range fs {
					if f.Structure == tc.structure && strings.Contains(f.Message, tc.msg) && f.Severity == tc.severity {
						got = &fs[i]
						break
					}
				}
				switch {
				case tc.structure == "" && len(fs) != 0:
					t.Fatalf("clean image has findings: %+v", fs)
				case tc.structure != "" && got == nil:
					t.Fatalf("no %s %s finding %q; got %+v", tc.severity, tc.structure, tc.msg, fs)
				case got != nil && (got.File == "" || got.Offset < 0):
					t.Fatalf("finding without file or offset: %+v", got)
				}
				if tc.qemu == qemuNotRun {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := exec.CommandContext(ctx, qemuImg, "check", "-f", "vmdk", p).CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if min(code, 1) != tc.qemu {
					t.Fatalf("qemu-img check exit %d, want %d:\n%s", code, tc.qemu, out)
				}
				// Where qemu-img sees corruption or refuses the image,
				// xpboot must report an error, not only warnings.
				if code != 0 && got.Severity != vmdk.SeverityError {
					t.Fatalf("qemu-img check exit %d but xpboot's finding is a %s", code, got.Severity)
				}
			})
		}
	}
}
