package ntfstest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/xpboot/xpboot/imagefs/mbr"
)

// Volume is an NTFS volume inside an image file, as the boot sector at
// Offset describes it.
type Volume struct {
	Image         string
	Offset        int64 // bytes from the start of Image
	Size          int64 // bytes, including the backup boot sector
	BytesPerSec   int
	ClusterSize   int
	MFTLCN        int64
	MFTMirrLCN    int64
	MFTRecordSize int
}

// OpenVolume reads the NTFS boot sector at byte off of image.
func OpenVolume(image string, off int64) (Volume, error) {
	f, err := os.Open(image)
	if err != nil {
		return Volume{}, err
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, off); err != nil {
		return Volume{}, fmt.Errorf("%s: boot sector at byte %d: %w", image, off, err)
	}
	if string(b[3:11]) != "NTFS    " {
		return Volume{}, fmt.Errorf("%s: byte %d: no NTFS boot sector (OEM id %q)", image, off, b[3:11])
	}
	v := Volume{Image: image, Offset: off}
	v.BytesPerSec = int(binary.LittleEndian.Uint16(b[0x0b:]))
	spc := int(b[0x0d])
	if spc > 0x80 { // a negative power of two, for clusters over 64 KiB
		spc = 1 << (256 - spc)
	}
	v.ClusterSize = v.BytesPerSec * spc
	total := int64(binary.LittleEndian.Uint64(b[0x28:]))
	v.Size = (total + 1) * int64(v.BytesPerSec)
	v.MFTLCN = int64(binary.LittleEndian.Uint64(b[0x30:]))
	v.MFTMirrLCN = int64(binary.LittleEndian.Uint64(b[0x38:]))
	if c := int8(b[0x40]); c < 0 {
		v.MFTRecordSize = 1 << -c
	} else {
		v.MFTRecordSize = int(c) * v.ClusterSize
	}
	if v.BytesPerSec < 256 || v.ClusterSize == 0 || v.MFTRecordSize < 256 || v.Size <= 0 {
		return Volume{}, fmt.Errorf("%s: byte %d: implausible NTFS geometry (%d bytes/sector, cluster %d, MFT record %d)",
			image, off, v.BytesPerSec, v.ClusterSize, v.MFTRecordSize)
	}
	return v, nil
}

// copyRange copies n bytes from src at srcOff to dst at dstOff, leaving
// holes where the source is zero (dst must already be that long), so that
// copies of mostly empty images stay cheap.
func copyRange(dst, src *os.File, dstOff, srcOff, n int64) error {
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for done := int64(0); done < n; {
		chunk := buf
		if rest := n - done; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		k, err := src.ReadAt(chunk, srcOff+done)
		if k < len(chunk) && err == nil {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && !(err == io.EOF && k == len(chunk)) {
			return fmt.Errorf("read %s at byte %d: %w", src.Name(), srcOff+done, err)
		}
		if !bytes.Equal(chunk, zero[:len(chunk)]) {
			if _, err := dst.WriteAt(chunk, dstOff+done); err != nil {
				return err
			}
		}
		done += int64(len(chunk))
	}
	return nil
}

// copySparse copies the file src to dst (created or truncated), keeping
// zero ranges as holes.
func copySparse(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	return writeSparse(dst, st.Size(), func(out *os.File) error { return copyRange(out, in, 0, 0, st.Size()) })
}

// writeSparse creates dst with the given size and fills it through fill.
func writeSparse(dst string, size int64, fill func(*os.File) error) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	if err := fill(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Extract copies the volume into the bare file dst.
func (v Volume) Extract(dst string) error {
	in, err := os.Open(v.Image)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if v.Offset+v.Size > st.Size() {
		return fmt.Errorf("%s: the NTFS volume at byte %d (%d bytes) reaches past the end of the image (%d bytes)",
			v.Image, v.Offset, v.Size, st.Size())
	}
	return writeSparse(dst, v.Size, func(out *os.File) error { return copyRange(out, in, 0, v.Offset, v.Size) })
}

// WriteBack copies the bare volume file src over the volume in v.Image.
func (v Volume) WriteBack(src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(v.Image, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	// Unlike copyRange into a fresh file, zeros must be written too.
	buf := make([]byte, 1<<20)
	for done := int64(0); done < v.Size; {
		chunk := buf
		if rest := v.Size - done; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		if _, err := in.ReadAt(chunk, done); err != nil {
			out.Close()
			return fmt.Errorf("read %s at byte %d: %w", src, done, err)
		}
		if _, err := out.WriteAt(chunk, v.Offset+done); err != nil {
			out.Close()
			return err
		}
		done += int64(len(chunk))
	}
	return out.Close()
}

// diskLayout returns the partition entry of a disk of about size bytes
// laid out as xpboot and XP setup do: one active partition of type type at
// LBA 63 ending on a 255×63 cylinder boundary.
func diskLayout(size int64, partType byte) (diskBytes int64, e mbr.Entry, err error) {
	cyl := int64(mbr.XPGeometry.CylinderSectors())
	sectors := (size/512 + cyl - 1) / cyl * cyl
	e, err = mbr.Layout(uint64(sectors), 63, mbr.XPGeometry, partType)
	return sectors * 512, e, err
}

// wrapMBR writes image: an MBR with entry e followed by the bare volume vol
// at the entry's start.
func wrapMBR(image, vol string, diskBytes int64, e mbr.Entry) error {
	in, err := os.Open(vol)
	if err != nil {
		return err
	}
	defer in.Close()
	m := &mbr.MBR{Signature: 0x78706274} // "xpbt"; any non-zero signature
	m.Entries[0] = e
	return writeSparse(image, diskBytes, func(out *os.File) error {
		if _, err := out.WriteAt(m.Bytes(), 0); err != nil {
			return err
		}
		return copyRange(out, in, int64(e.Start)*512, 0, int64(e.Sectors)*512)
	})
}
