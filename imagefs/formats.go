package imagefs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/overlay/registry"
)

// Format names a disk image container.
type Format string

// Container formats xpboot reads. All but FormatVMDKOther and FormatVHDDiff
// are also written (image convert --to, image create --format).
const (
	FormatRaw Format = "raw"
	// FormatVMDKSparse is a monolithicSparse VMDK (also a delta disk).
	FormatVMDKSparse Format = "vmdk"
	// FormatVMDKFlat is a monolithicFlat VMDK: a descriptor file and a raw
	// data file.
	FormatVMDKFlat Format = "vmdk-flat"
	// FormatVMDKStream is a streamOptimized VMDK (compressed, read-only as
	// a device).
	FormatVMDKStream Format = "vmdk-stream"
	// FormatVMDKOther is any other VMDK descriptor xpboot reads
	// (twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs).
	FormatVMDKOther Format = "vmdk-other"
	// FormatVHDDynamic is a dynamic VHD.
	FormatVHDDynamic Format = "vhd"
	// FormatVHDFixed is a fixed VHD.
	FormatVHDFixed Format = "vhd-fixed"
	// FormatVHDDiff is a differencing VHD (read-only).
	FormatVHDDiff Format = "vhd-diff"
)

// OutputFormats lists the formats image convert and image create write.
var OutputFormats = []Format{FormatRaw, FormatVMDKSparse, FormatVMDKFlat, FormatVMDKStream, FormatVHDDynamic, FormatVHDFixed}

// ParseFormat checks the name of an output format.
func ParseFormat(s string) (Format, error) {
	for _, f := range OutputFormats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(OutputFormats))
	for i, f := range OutputFormats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown image format %q: want %s", s, strings.Join(names, ", "))
}

// IsVMDK reports whether f is one of the VMDK formats.
func (f Format) IsVMDK() bool { return strings.HasPrefix(string(f), "vmdk") }

// IsVHD reports whether f is one of the VHD formats.
func (f Format) IsVHD() bool { return strings.HasPrefix(string(f), "vhd") }

// Detect returns the container format of the file at path from its
// content, never from its name: a VMDK sparse header ("KDMV") or text
// descriptor ("# Disk DescriptorFile", or "version=" as the first entry) at
// offset 0, a VHD footer ("conectix") at offset 0 (dynamic and
// differencing disks keep a copy there) or in the last 512 bytes (fixed),
// else raw.
func Detect(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	return detect(f, st.Size())
}

func detect(r io.ReaderAt, size int64) (Format, error) {
	head := make([]byte, min(size, 512))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return "", err
	}
	switch {
	case len(head) >= 4 && binary.LittleEndian.Uint32(head) == vmdk.Magic:
		if h, err := vmdk.ParseHeader(head); err == nil && h.Flags&vmdk.FlagCompressed != 0 {
			return FormatVMDKStream, nil
		}
		return FormatVMDKSparse, nil
	case vmdk.IsDescriptor(head):
		return vmdkDescriptorFormat(r, size)
	case bytes.HasPrefix(head, []byte(vhd.FooterCookie)):
		if ft, err := vhd.ParseFooter(head); err == nil && ft.DiskType == vhd.TypeDifferencing {
			return FormatVHDDiff, nil
		}
		return FormatVHDDynamic, nil
	}
	if size >= 2*vhd.FooterSize {
		tail := make([]byte, vhd.FooterSize)
		if _, err := r.ReadAt(tail, size-vhd.FooterSize); err != nil && err != io.EOF {
			return "", err
		}
		if bytes.HasPrefix(tail, []byte(vhd.FooterCookie)) {
			ft, err := vhd.ParseFooter(tail)
			switch {
			case err != nil:
				// A corrupt footer: let the VHD reader report it.
				return FormatVHDFixed, nil
			case ft.DiskType == vhd.TypeDifferencing:
				return FormatVHDDiff, nil
			case ft.DiskType == vhd.TypeDynamic:
				return FormatVHDDynamic, nil
			}
			return FormatVHDFixed, nil
		}
	}
	return FormatRaw, nil
}

func vmdkDescriptorFormat(r io.ReaderAt, size int64) (Format, error) {
	if size > 1<<20 {
		return FormatVMDKOther, nil // the VMDK reader reports the size
	}
	text := make([]byte, size)
	if _, err := r.ReadAt(text, 0); err != nil && err != io.EOF {
		return "", err
	}
	d, err := vmdk.ParseDescriptor(text)
	if err != nil {
		return FormatVMDKOther, nil
	}
	switch d.CreateType {
	case vmdk.TypeMonolithicFlat:
		return FormatVMDKFlat, nil
	case vmdk.TypeMonolithicSparse:
		return FormatVMDKSparse, nil
	}
	return FormatVMDKOther, nil
}

// OpenDevice opens a disk image of any supported container format, detected
// from the file's content, never from its name. A writable open locks the
// image exclusively; a read-only one takes a shared lock. streamOptimized
// VMDKs and differencing VHDs open read-only only. Delta disks and
// differencing disks read through to their parents.
func OpenDevice(path string, writable bool) (blockdev.Device, Format, error) {
	format, err := Detect(path)
	if err != nil {
		return nil, "", err
	}
	var d blockdev.Device
	switch {
	case format.IsVMDK():
		d, err = vmdk.Open(path, writable)
	case format.IsVHD():
		d, err = vhd.Open(path, writable)
	default:
		d, err = blockdev.OpenRaw(path, writable)
	}
	if err != nil {
		if strings.Contains(err.Error(), path) {
			return nil, "", err // the format's error names the file already
		}
		return nil, "", fmt.Errorf("open %s: %w", path, err)
	}
	return d, format, nil
}

// OpenDeviceUnlocked opens a disk image of any supported container
// read-only without taking locks (the --force-share of read-only commands,
// like qemu-img's -U), so that an image xpboot serve holds can be
// inspected. What it reads may be a state the server is changing.
func OpenDeviceUnlocked(path string) (blockdev.Device, Format, error) {
	format, err := Detect(path)
	if err != nil {
		return nil, "", err
	}
	var d blockdev.Device
	switch {
	case format.IsVMDK():
		d, err = vmdk.OpenUnlocked(path)
	case format.IsVHD():
		d, err = vhd.OpenUnlocked(path)
	default:
		d, err = blockdev.OpenRawUnlocked(path)
	}
	if err != nil {
		if strings.Contains(err.Error(), path) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("open %s: %w", path, err)
	}
	return d, format, nil
}

// Children returns the images that depend on the image at path: VMDK delta
// disks naming it as parent with its current CID, or differencing VHDs
// naming its unique id, found in the same directory; and VMDK deltas in
// that directory or in an overlay directory registered for path (package
// overlay/registry) whose parent is path or a monolithicFlat descriptor
// there whose extent is path (how overlays of a raw base name it). Writing
// into an image with children invalidates them, so writers refuse unless
// forced.
func Children(path string) ([]string, error) {
	format, err := Detect(path)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case format.IsVMDK():
		out, err = vmdk.Children(path)
	case format.IsVHD():
		out, err = vhd.Children(path)
	}
	if err != nil {
		return nil, err
	}
	if format.IsVHD() {
		return out, nil
	}
	var cid uint32
	isVMDK := format.IsVMDK()
	if isVMDK {
		desc, err := vmdk.ReadDescriptor(path)
		if err != nil {
			return nil, err
		}
		cid = desc.CID
	}
	deltas, err := registry.Deltas(path, isVMDK, cid)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range out {
		seen[p] = true
	}
	for _, p := range deltas {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrHasChildren reports a write into an image that delta or differencing
// disks depend on.
var ErrHasChildren = errors.New("image is the base of delta disks")

// CheckNoChildren returns an error wrapping ErrHasChildren, naming the
// dependent disks, when Children finds any for path. Commands that write
// into an image call it first and skip it only when forced.
func CheckNoChildren(path string) error {
	kids, err := Children(path)
	if err != nil {
		return err
	}
	if len(kids) > 0 {
		return fmt.Errorf("%s: %w (%s); writing into it would invalidate them", path, ErrHasChildren, strings.Join(kids, ", "))
	}
	return nil
}
