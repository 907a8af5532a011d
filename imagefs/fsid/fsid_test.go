package fsid_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/imagefs/fat32"
	"github.com/xpboot/xpboot/imagefs/fsid"
	"github.com/xpboot/xpboot/internal/peertest"
)

// volume formats a file of size bytes with the given peer and returns its
// boot sector.
func volume(t *testing.T, size int64, prog, pkg string, args ...string) []byte {
	t.Helper()
	return peertest.Volume(t, size, peertest.Need(t, prog, pkg), args...)[:fsid.SectorSize]
}

// messWith returns a copy of b changed by fn.
func messWith(b []byte, fn func(b []byte)) []byte {
	c := append([]byte(nil), b...)
	fn(c)
	return c
}

// exfatBootSector is an exFAT main boot sector as the exFAT specification
// (Microsoft, 2019, section 3.1) lays it out: jump EB 76 90, the name
// "EXFAT   ", 53 zero bytes where a FAT BPB would be, then the exFAT fields.
// dosfstools cannot make one and exfatprogs is not among the peers.
func exfatBootSector() []byte {
	b := make([]byte, fsid.SectorSize)
	copy(b, []byte{0xEB, 0x76, 0x90})
	copy(b[3:], "EXFAT   ")
	binary.LittleEndian.PutUint64(b[0x48:], 1<<16) // VolumeLength
	binary.LittleEndian.PutUint32(b[0x50:], 24)    // FatOffset
	binary.LittleEndian.PutUint32(b[0x54:], 512)   // FatLength
	binary.LittleEndian.PutUint16(b[0x68:], 0x100) // FileSystemRevision 1.00
	b[0x6C], b[0x6D], b[0x6E] = 9, 3, 1            // 512-byte sectors, 8 per cluster, 1 FAT
	b[510], b[511] = 0x55, 0xAA
	return b
}

func TestDetect(t *testing.T) {
	const mib = 1 << 20
	fat12 := volume(t, 1440<<10, "mkfs.fat", "dosfstools", "-F", "12")
	fat16 := volume(t, 32*mib, "mkfs.fat", "dosfstools", "-F", "16")
	fat32v := volume(t, 40*mib, "mkfs.fat", "dosfstools", "-F", "32", "-s", "1")
	ntfsv := volume(t, 8*mib, "mkntfs", "ntfs-3g", "-F", "-Q", "-q")
	random := make([]byte, fsid.SectorSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[510], random[511] = 0x55, 0xAA

	le := binary.LittleEndian
	tests := []struct {
		name   string
		boot   []byte
		size   int64
		want   fsid.Kind
		sentry error  // nil: no error
		msg    string // in the error text
		is     error  // further errors.Is target
		off    int64  // fat32.FormatError offset, when >0
	}{
		{name: "mkfs.fat FAT32", boot: fat32v, size: 40 * mib, want: fsid.FAT32},
		{name: "FAT32 size unknown", boot: fat32v, want: fsid.FAT32},
		{name: "mkntfs", boot: ntfsv, size: 8 * mib, want: fsid.NTFS},
		{name: "FAT32 without type string", boot: messWith(fat32v, func(b []byte) { copy(b[0x52:], "        ") }), want: fsid.FAT32},
		{name: "mkfs.fat FAT12", boot: fat12, want: fsid.FAT12, sentry: fsid.ErrUnsupported, msg: "FAT12 file system (", is: fat32.ErrNotFAT32},
		{name: "mkfs.fat FAT16", boot: fat16, want: fsid.FAT16, sentry: fsid.ErrUnsupported, msg: "FAT16 file system (", is: fat32.ErrNotFAT32},
		{name: "exFAT", boot: exfatBootSector(), want: fsid.ExFAT, sentry: fsid.ErrUnsupported, msg: "exFAT file system: xpboot reads FAT32 and NTFS"},
		{name: "zeros", boot: make([]byte, 4096), want: fsid.None, sentry: fsid.ErrUnsupported, msg: "all zeros"},
		{name: "short", boot: fat32v[:100], want: fsid.Unknown, sentry: fsid.ErrUnsupported, msg: "100 bytes"},
		{name: "random", boot: random, want: fsid.Unknown, sentry: fsid.ErrUnsupported, msg: "unknown file system (OEM id"},
		{name: "FAT32 sectors per cluster 3", boot: messWith(fat32v, func(b []byte) { b[0x0D] = 3 }),
			want: fsid.FAT32, sentry: fsid.ErrDamaged, msg: "damaged FAT32 boot sector: fat32: volume byte 0xd: sectors per cluster 3", off: 0x0D},
		{name: "FAT32 too few clusters", boot: messWith(fat32v, func(b []byte) { le.PutUint32(b[0x20:], 60000) }),
			want: fsid.FAT32, sentry: fsid.ErrDamaged, msg: "clusters (FAT32 needs at least 65525)", is: fat32.ErrNotFAT32},
		{name: "FAT32 larger than its partition", boot: fat32v, size: 20 * mib,
			want: fsid.FAT32, sentry: fsid.ErrDamaged, msg: "larger than its", off: 0x20},
		{name: "FAT32 without 55 AA", boot: messWith(fat32v, func(b []byte) { b[510] = 0 }),
			want: fsid.FAT32, sentry: fsid.ErrDamaged, msg: "55 AA", off: 510},
		{name: "damaged BPB without type string", boot: messWith(fat32v, func(b []byte) { b[0x0D] = 3; copy(b[0x52:], "        ") }),
			want: fsid.Unknown, sentry: fsid.ErrUnsupported, msg: `OEM id "mkfs.fat"`},
		{name: "NTFS with damaged BPB", boot: messWith(ntfsv, func(b []byte) { b[0x0D] = 3 }), want: fsid.NTFS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, err := fsid.Detect(tc.boot, tc.size)
			if kind != tc.want {
				t.Errorf("kind %q, want %q (err %v)", kind, tc.want, err)
			}
			if tc.sentry == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tc.sentry) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.sentry)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			var de *fsid.Error
			if !errors.As(err, &de) || de.Kind != kind {
				t.Errorf("error %#v is not an *fsid.Error of kind %q", err, kind)
			}
			if tc.off > 0 {
				var fe *fat32.FormatError
				if !errors.As(err, &fe) || fe.Off != tc.off {
					t.Errorf("error %v: want a fat32.FormatError at 0x%x", err, tc.off)
				}
			}
		})
	}
}
