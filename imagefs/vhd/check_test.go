package vhd_test

import (
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
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/internal/peertest"
)

// vhdSource makes a 64 MiB raw disk with data in four 2 MiB blocks.
func vhdSource(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "src.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for _, off := range []int64{0, 3 << 20, 20 << 20, size - 4096} {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// vhdFile is a VHD read into memory for patching.
type vhdFile struct {
	t      *testing.T
	b      []byte
	hdr    int64 // dynamic header offset
	bat    int64 // BAT offset
	blocks int   // BAT entries
}

func openVHD(t *testing.T, p string) *vhdFile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	v := &vhdFile{t: t, b: b}
	foot := b[len(b)-512:]
	if binary.BigEndian.Uint32(foot[60:]) != uint32(vhd.TypeFixed) {
		v.hdr = int64(binary.BigEndian.Uint64(foot[16:]))
		v.bat = int64(binary.BigEndian.Uint64(b[v.hdr+16:]))
		v.blocks = int(binary.BigEndian.Uint32(b[v.hdr+28:]))
	}
	return v
}

func (v *vhdFile) entry(i int) int64 { return v.bat + 4*int64(i) }
func (v *vhdFile) get(i int) uint32  { return binary.BigEndian.Uint32(v.b[v.entry(i):]) }
func (v *vhdFile) set(i int, s uint32) {
	binary.BigEndian.PutUint32(v.b[v.entry(i):], s)
}

// sum rewrites the checksum of a footer (at off, field at 64) or dynamic
// header (field at 36, 1024 bytes), so that only the intended damage is
// seen.
func (v *vhdFile) sum(off int64, n, field int) {
	b := v.b[off : off+int64(n)]
	var s uint32
	for i, c := range b {
		if i < field || i >= field+4 {
			s += uint32(c)
		}
	}
	binary.BigEndian.PutUint32(b[field:], ^s)
}

func (v *vhdFile) save(p string) {
	if err := os.WriteFile(p, v.b, 0o644); err != nil {
		v.t.Fatal(err)
	}
}

func TestCheckVHDFindings(t *testing.T) {
	qemuImg := peertest.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	src := vhdSource(t, dir)
	sources := map[string]string{}
	for name, sub := range map[string]string{"qemu-dynamic": "dynamic", "qemu-fixed": "fixed"} {
		p := filepath.Join(dir, name+".vhd")
		peertest.Run(t, 2*time.Minute, qemuImg, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat="+sub, src, p)
		sources[name] = p
	}
	for name, sub := range map[string]string{"qemu-create-dynamic": "dynamic", "qemu-create-fixed": "fixed"} {
		p := filepath.Join(dir, name+".vhd")
		peertest.Run(t, time.Minute, qemuImg, "create", "-f", "vpc", "-o", "subformat="+sub, p, "64M")
		sources[name] = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, to := range map[string]imagefs.Format{"xpboot-dynamic": imagefs.FormatVHDDynamic, "xpboot-fixed": imagefs.FormatVHDFixed} {
		p := filepath.Join(dir, name+".vhd")
		if _, err := convert.Convert(ctx, src, p, convert.Options{To: to}); err != nil {
			t.Fatal(err)
		}
		sources[name] = p
	}
	dynamic := []string{"qemu-dynamic", "xpboot-dynamic"}
	fixed := []string{"qemu-fixed", "xpboot-fixed"}
	// qemu-img check has no checks for VHD (exit 63 once the image
	// opens); its opinion is whether it opens the image at all.
	const (
		qemuOpens   = 63
		qemuRefuses = 1
	)
	tests := []struct {
		name      string
		sources   []string
		corrupt   func(v *vhdFile)
		severity  string
		structure string
		msg       string
		qemu      int
	}{
		{"clean", append(append(dynamic, fixed...), "qemu-create-dynamic", "qemu-create-fixed"), func(*vhdFile) {}, "", "", "", qemuOpens},
		// qemu reads the footer copy of a dynamic disk, not the footer.
		{"footer checksum", dynamic, func(v *vhdFile) {
			v.b[len(v.b)-512+24] ^= 1 // the time stamp
		}, "error", "footer", "footer checksum", qemuOpens},
		{"footer checksum", fixed, func(v *vhdFile) {
			v.b[len(v.b)-512+24] ^= 1
		}, "error", "footer", "footer checksum", qemuRefuses},
		{"footer cookie", fixed, func(v *vhdFile) {
			copy(v.b[len(v.b)-512:], "notectix")
		}, "error", "footer", "footer cookie", qemuRefuses},
		{"footer copy missing", dynamic, func(v *vhdFile) {
			clear(v.b[:512])
		}, "error", "footer copy", "must start with a copy of the footer", qemuRefuses},
		{"footer copy differs", dynamic, func(v *vhdFile) {
			v.b[24] ^= 1
			v.sum(0, 512, 64)
		}, "error", "footer copy", "differs from the footer at byte 24", qemuOpens},
		{"footer copy checksum", dynamic, func(v *vhdFile) {
			v.b[24] ^= 1
		}, "error", "footer copy", "footer checksum", qemuRefuses},
		{"footer lost, copy kept", dynamic, func(v *vhdFile) {
			clear(v.b[len(v.b)-512:])
		}, "error", "footer", "footer cookie", qemuOpens},
		{"dynamic header cookie", dynamic, func(v *vhdFile) {
			copy(v.b[v.hdr:], "cxsparsX")
		}, "error", "dynamic header", "cookie", qemuRefuses},
		{"dynamic header checksum", dynamic, func(v *vhdFile) {
			v.b[v.hdr+100] ^= 1 // the parent's unique id
		}, "error", "dynamic header", "checksum", qemuOpens},
		{"dynamic header offset outside the file", dynamic, func(v *vhdFile) {
			foot := int64(len(v.b) - 512)
			for _, f := range []int64{0, foot} {
				binary.BigEndian.PutUint64(v.b[f+16:], 1<<40)
				v.sum(f, 512, 64)
			}
		}, "error", "footer", "dynamic header offset 0x10000000000 outside the file", qemuRefuses},
		{"BAT past the end of the file", dynamic, func(v *vhdFile) {
			binary.BigEndian.PutUint64(v.b[v.hdr+16:], uint64(len(v.b)))
			v.sum(v.hdr, 1024, 36)
		}, "error", "dynamic header", "extends past the end of the file", qemuRefuses},
		{"BAT too small for the disk", dynamic, func(v *vhdFile) {
			binary.BigEndian.PutUint32(v.b[v.hdr+28:], 8)
			v.sum(v.hdr, 1024, 36)
		}, "error", "dynamic header", "8 BAT entries of 2097152 bytes cover less than the disk size", qemuRefuses},
		{"BAT entry past the footer", dynamic, func(v *vhdFile) {
			v.set(1, 0x7fffff00)
		}, "error", "BAT", "entry 1: block at 0xfffffe0000", qemuRefuses},
		{"BAT entries overlap", dynamic, func(v *vhdFile) {
			v.set(10, v.get(0))
		}, "error", "BAT", "entries 0 and 10: blocks at", qemuOpens},
		{"BAT entry over the dynamic header", dynamic, func(v *vhdFile) {
			v.set(3, uint32(v.hdr/512))
		}, "error", "BAT", "entry 3: block at", qemuOpens},
		{"BAT entry over the footer copy", dynamic, func(v *vhdFile) {
			v.set(3, 0)
		}, "error", "BAT", "overlaps", qemuOpens},
		{"BAT entry beyond the disk", dynamic, func(v *vhdFile) {
			// Give the BAT 8 more entries (its sector has room) and point
			// the last at block 0's data.
			n := v.blocks + 8
			binary.BigEndian.PutUint32(v.b[v.hdr+28:], uint32(n))
			v.sum(v.hdr, 1024, 36)
			for i := v.blocks; i < n-1; i++ {
				v.set(i, 0xffffffff)
			}
			v.set(n-1, v.get(0))
		}, "warning", "BAT", "lies beyond the disk size", qemuOpens},
		{"empty sector bitmap", dynamic, func(v *vhdFile) {
			b := int64(v.get(10)) * 512 // 20 MiB
			clear(v.b[b : b+512])
		}, "warning", "block bitmap", "block 10 is allocated but its sector bitmap marks no sector in use", qemuOpens},
		{"fixed size exceeds the data", fixed, func(v *vhdFile) {
			f := int64(len(v.b) - 512)
			binary.BigEndian.PutUint64(v.b[f+48:], uint64(len(v.b)))
			v.sum(f, 512, 64)
		}, "error", "footer", "exceeds the", qemuOpens},
		{"fixed size leaves data unused", fixed, func(v *vhdFile) {
			f := int64(len(v.b) - 512)
			binary.BigEndian.PutUint64(v.b[f+48:], uint64(len(v.b)-512-1<<20))
			v.sum(f, 512, 64)
		}, "warning", "footer", "leaves 1048576 bytes", qemuOpens},
		{"short file", fixed, func(v *vhdFile) { v.b = v.b[:300] }, "error", "footer", "shorter than a VHD footer", qemuRefuses},
	}
	for _, tc := range tests {
		for _, from := range tc.sources {
			t.Run(tc.name+"/"+from, func(t *testing.T) {
				b, err := os.ReadFile(sources[from])
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(t.TempDir(), "d.vhd")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				v := openVHD(t, p)
				tc.corrupt(v)
				v.save(p)
				fs, err := vhd.Check(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				var got *vhd.Finding
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
				case got != nil && (got.File != p || got.Offset < 0 || got.Offset > int64(len(v.b))):
					t.Fatalf("finding without file or with offset outside it: %+v", got)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := exec.CommandContext(ctx, qemuImg, "check", "-f", "vpc", p).CombinedOutput()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tc.qemu {
					t.Fatalf("qemu-img check exit %d, want %d:\n%s", code, tc.qemu, out)
				}
				if code == qemuRefuses && got.Severity != vhd.SeverityError {
					t.Fatalf("qemu-img refuses the image but xpboot's finding is a %s", got.Severity)
				}
			})
		}
	}
}
