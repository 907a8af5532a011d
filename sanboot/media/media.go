package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/xpboot/xpboot/iso"
)

// Format is the kind of medium to write.
type Format string

// Formats Write knows.
const (
	// ISO is an El Torito CD image that is also an isohybrid disk image.
	ISO Format = "iso"
	// USB is the same image, named for writing to a USB stick.
	USB Format = "usb"
	// Floppy is a 1.44 MB FAT12 floppy image booted by xpboot's own
	// loader (floppy.asm).
	Floppy Format = "floppy"
)

// Default locations of the Debian files the media are made of.
const (
	DefaultIPXEDir     = "/usr/lib/ipxe"                  // package ipxe
	DefaultISOLinuxDir = "/usr/lib/ISOLINUX"              // package isolinux
	DefaultModulesDir  = "/usr/lib/syslinux/modules/bios" // package syslinux-common
)

// MaxScript bounds the script (iPXE keeps it in memory; a real SAN-boot
// script is a few hundred bytes).
const MaxScript = 64 << 10

// FloppyLoaderName is Result.Loader for floppies.
const FloppyLoaderName = "xpboot floppy loader"

// ErrUnsupported is returned for a format Write does not know.
var ErrUnsupported = errors.New("media: format not supported")

// ErrInput marks an input file or script that cannot go on the medium.
var ErrInput = errors.New("media: unusable input")

// Config chooses what Write puts on the medium.
type Config struct {
	Format Format
	// Script is the iPXE script iPXE runs; it must start with "#!ipxe".
	Script string
	// Secret marks a script that holds credentials: the image gets mode
	// 0600.
	Secret bool
	// IPXEDir holds ipxe.lkrn; empty means DefaultIPXEDir.
	IPXEDir string
	// ISOLinuxDir holds isolinux.bin and isohdpfx.bin; empty means
	// DefaultISOLinuxDir.
	ISOLinuxDir string
	// ModulesDir holds ldlinux.c32; empty means DefaultModulesDir.
	ModulesDir string
}

// Result describes a written medium.
type Result struct {
	Format Format `json:"format"`
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	Mode   string `json:"mode"`
	// Loader names what starts iPXE, with its version when found.
	Loader      string `json:"loader"`
	LoaderPath  string `json:"loader_path,omitempty"`
	IPXEPath    string `json:"ipxe_path"`
	IPXEVersion string `json:"ipxe_version,omitempty"`
	// Hybrid is true when sector 0 holds an MBR, so the image also boots
	// as a disk.
	Hybrid bool `json:"hybrid"`
	// Files are the image's files, slash-separated.
	Files []string `json:"files"`
	// BootSector is the CD sector of isolinux.bin (0 for a floppy).
	BootSector uint32 `json:"boot_sector,omitempty"`
}

// Paths inside the image. ISOLINUX reads the primary ISO 9660 tree, so
// every name is an exact 8.3 name there.
const (
	dirISOLinux  = "isolinux"
	fileISOLinux = "isolinux.bin"
	fileLDLinux  = "ldlinux.c32"
	fileConfig   = "isolinux.cfg"
	fileKernel   = "ipxe.krn"
	fileScript   = "sanboot.ipx"
)

// mediaTime stamps every file and the volume, so equal inputs give equal
// bytes.
var mediaTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// isolinuxConfig boots iPXE at once: no prompt, no menu, no timeout. The
// LINUX keyword (not KERNEL) makes ISOLINUX treat ipxe.krn as a kernel
// whatever its extension.
const isolinuxConfig = `# Written by xpboot sanboot media: start iPXE (a Linux-boot-protocol
# kernel) with the SAN boot script as its initrd; iPXE runs an initrd that
# begins with #!ipxe as its script.
DEFAULT sanboot
PROMPT 0
TIMEOUT 0
LABEL sanboot
  LINUX /` + fileKernel + `
  INITRD /` + fileScript + `
`

// Offsets and values checked or written in the inputs and the MBR.
const (
	hybridSigOff    = 0x40       // isolinux.bin: isohybrid entry signature
	hybridSig       = 0x7078c0fb // its value in an isohybrid-capable isolinux.bin
	isohdpfxSize    = 432        // isohdpfx.bin: MBR code up to the boot file pointer
	mbrBootLBAOff   = 432        // uint64: isolinux.bin's 512-byte sector
	mbrDiskSigOff   = 440        // uint32 disk signature
	mbrPartTableOff = 446
	mbrHeads        = 64
	mbrSectors      = 32
	cylinderBytes   = mbrHeads * mbrSectors * 512
	partTypeHybrid  = 0x17 // what isohybrid writes by default
	linuxHdrSOff    = 0x202
	linuxKernVerOff = 0x20E
	linuxSetupBase  = 0x200 // kernel_version is relative to this
)

// input is one file read from the machine.
type input struct {
	path string // resolved
	data []byte
}

func readInput(dir, name string, max int64) (input, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(dir, name))
	if err != nil {
		return input{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return input{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if !st.Mode().IsRegular() {
		return input{}, fmt.Errorf("%w: %s: not a regular file", ErrInput, p)
	}
	if st.Size() > max {
		return input{}, fmt.Errorf("%w: %s: %d bytes, more than the %d expected", ErrInput, p, st.Size(), max)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return input{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return input{path: p, data: b}, nil
}

// KernelVersion returns the kernel_version string of a Linux boot
// protocol image (for ipxe.lkrn: iPXE's version), or an error naming the
// offset when the image has no such header.
func KernelVersion(b []byte) (string, error) {
	if len(b) < 0x210 || binary.LittleEndian.Uint16(b[0x1FE:]) != 0xAA55 {
		return "", fmt.Errorf("no boot sector signature 55 AA at offset 0x1fe")
	}
	if string(b[linuxHdrSOff:linuxHdrSOff+4]) != "HdrS" {
		return "", fmt.Errorf("no Linux boot protocol header (HdrS) at offset %#x", linuxHdrSOff)
	}
	v := int(binary.LittleEndian.Uint16(b[linuxKernVerOff:]))
	if v == 0 {
		return "", nil
	}
	off := v + linuxSetupBase
	if off >= len(b) {
		return "", fmt.Errorf("kernel_version pointer %#x at offset %#x points past the end", v, linuxKernVerOff)
	}
	s := b[off:min(off+128, len(b))]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7E {
			return "", fmt.Errorf("kernel_version at offset %#x is not text", off)
		}
	}
	return string(s), nil
}

// (Compiled at first use: every xpboot command pays for what package
// variables compute at start.)
var isolinuxVersion = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`ISOLINUX [0-9][0-9A-Za-z.~+-]* [0-9]{8}`)
})

// CheckScript reports why s cannot be run by iPXE as an embedded script.
func CheckScript(s string) error {
	first, _, _ := strings.Cut(s, "\n")
	first = strings.TrimRight(first, "\r")
	if first != "#!ipxe" && !strings.HasPrefix(first, "#!ipxe ") && !strings.HasPrefix(first, "#!ipxe\t") {
		return fmt.Errorf("%w: the script's first line is %q; iPXE runs an initrd as a script only when it starts with #!ipxe", ErrInput, truncate(first, 40))
	}
	if len(s) > MaxScript {
		return fmt.Errorf("%w: the script has %d bytes, more than %d", ErrInput, len(s), MaxScript)
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("%w: the script has a NUL byte at offset %d", ErrInput, i)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Write builds the medium c describes at out (see the package
// documentation).
func Write(out string, c Config) (*Result, error) {
	switch c.Format {
	case ISO, USB, Floppy:
	default:
		return nil, fmt.Errorf("%w: %q (want iso, usb or floppy)", ErrUnsupported, c.Format)
	}
	if err := CheckScript(c.Script); err != nil {
		return nil, err
	}
	dir := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	kernel, err := readInput(dir(c.IPXEDir, DefaultIPXEDir), "ipxe.lkrn", 16<<20)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package ipxe)", err)
	}
	ver, err := KernelVersion(kernel.data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInput, kernel.path, err)
	}
	mode := os.FileMode(0o644)
	if c.Secret {
		mode = 0o600
	}
	if c.Format == Floppy {
		sum := sha256.Sum256(append(append([]byte(nil), kernel.data...), c.Script...))
		img, err := buildFloppy(kernel.data, []byte(c.Script), binary.LittleEndian.Uint32(sum[:]))
		if err != nil {
			return nil, err
		}
		if err := writeAtomic(out, img, mode); err != nil {
			return nil, err
		}
		return &Result{
			Format: c.Format, Path: out, Bytes: int64(len(img)), Mode: fmt.Sprintf("%04o", mode),
			Loader: FloppyLoaderName, IPXEPath: kernel.path, IPXEVersion: ver,
			Files: []string{"IPXE.KRN", "SANBOOT.IPX"},
		}, nil
	}
	loader, err := readInput(dir(c.ISOLinuxDir, DefaultISOLinuxDir), fileISOLinux, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package isolinux)", err)
	}
	if len(loader.data) < 2048 || binary.LittleEndian.Uint32(loader.data[hybridSigOff:]) != hybridSig {
		return nil, fmt.Errorf("%w: %s: no isohybrid signature %#x at offset %#x: not an isohybrid-capable ISOLINUX (3.72 or later)", ErrInput, loader.path, hybridSig, hybridSigOff)
	}
	mbr, err := readInput(dir(c.ISOLinuxDir, DefaultISOLinuxDir), "isohdpfx.bin", 512)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package isolinux)", err)
	}
	if len(mbr.data) != isohdpfxSize {
		return nil, fmt.Errorf("%w: %s: %d bytes, want the %d of an isohybrid MBR", ErrInput, mbr.path, len(mbr.data), isohdpfxSize)
	}
	ldlinux, err := readInput(dir(c.ModulesDir, DefaultModulesDir), fileLDLinux, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian package syslinux-common)", err)
	}
	if !bytes.HasPrefix(ldlinux.data, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%w: %s: not an ELF module (no \\x7fELF at offset 0)", ErrInput, ldlinux.path)
	}

	file := func(name string, b []byte) *iso.Node {
		return &iso.Node{Name: name, Size: int64(len(b)), ModTime: mediaTime, Path: name,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	tree := &iso.Node{Dir: true, ModTime: mediaTime, Children: []*iso.Node{
		{Name: dirISOLinux, Dir: true, ModTime: mediaTime, Path: dirISOLinux, Children: []*iso.Node{
			file(fileISOLinux, loader.data),
			file(fileLDLinux, ldlinux.data),
			file(fileConfig, []byte(isolinuxConfig)),
		}},
		file(fileKernel, kernel.data),
		file(fileScript, []byte(c.Script)),
	}}
	opts := iso.Options{VolumeID: "XPBOOT_SANBOOT", Time: mediaTime, FixedTime: true,
		Boot: &iso.Boot{TreePath: dirISOLinux + "/" + fileISOLinux, LoadSize: iso.DefaultLoadSize, InfoTable: true}}
	var img bytes.Buffer
	res, err := iso.WriteTo(tree, &img, opts)
	if err != nil {
		return nil, err
	}
	b := img.Bytes()
	// Whole cylinders, as isohybrid pads, so BIOSes that trust the
	// partition's CHS end find the image whole.
	if r := len(b) % cylinderBytes; r != 0 {
		b = append(b, make([]byte, cylinderBytes-r)...)
	}
	sig := sha256.Sum256(b)
	putHybridMBR(b, mbr.data, res.BootSector, binary.LittleEndian.Uint32(sig[:]))

	if err := writeAtomic(out, b, mode); err != nil {
		return nil, err
	}
	loaderName := "ISOLINUX"
	if m := isolinuxVersion().Find(loader.data); m != nil {
		loaderName = string(m)
	}
	return &Result{
		Format: c.Format, Path: out, Bytes: int64(len(b)), Mode: fmt.Sprintf("%04o", mode),
		Loader: loaderName, LoaderPath: loader.path,
		IPXEPath: kernel.path, IPXEVersion: ver, Hybrid: true,
		Files: []string{
			dirISOLinux + "/" + fileConfig, dirISOLinux + "/" + fileISOLinux, dirISOLinux + "/" + fileLDLinux,
			fileKernel, fileScript,
		},
		BootSector: res.BootSector,
	}, nil
}

// putHybridMBR writes the isohybrid MBR into sector 0 of img (the ISO's
// system area, which the writer leaves zero): the MBR code, the 512-byte
// sector of isolinux.bin it loads, the disk signature and one active
// partition from sector 0 to the end of the (cylinder-padded) image.
func putHybridMBR(img, code []byte, bootCDSector uint32, diskSig uint32) {
	m := img[:512]
	copy(m, code)
	binary.LittleEndian.PutUint64(m[mbrBootLBAOff:], uint64(bootCDSector)*(iso.SectorSize/512))
	binary.LittleEndian.PutUint32(m[mbrDiskSigOff:], diskSig)
	binary.LittleEndian.PutUint16(m[mbrDiskSigOff+4:], 0)
	sectors := uint32(len(img) / 512)
	cyls := sectors / (mbrHeads * mbrSectors)
	p := m[mbrPartTableOff : mbrPartTableOff+16]
	p[0] = 0x80
	p[1], p[2], p[3] = chs(0, 0, 1)
	p[4] = partTypeHybrid
	c := cyls - 1
	if c > 1023 {
		c = 1023
	}
	p[5], p[6], p[7] = chs(c, mbrHeads-1, mbrSectors)
	binary.LittleEndian.PutUint32(p[8:], 0)
	binary.LittleEndian.PutUint32(p[12:], sectors)
	clear(m[mbrPartTableOff+16 : 510])
	m[510], m[511] = 0x55, 0xAA
}

// chs packs a cylinder/head/sector address the way MBR entries hold it.
func chs(c, h, s uint32) (byte, byte, byte) {
	return byte(h), byte(s&0x3F) | byte((c>>8)&3)<<6, byte(c)
}

// writeAtomic writes b to out with exactly mode (0600 when it holds
// secrets, from the first byte on): complete or not at all, and nothing
// left behind by a killed run (package atomicfile).
func writeAtomic(out string, b []byte, mode os.FileMode) error {
	f, err := atomicfile.CreateMode(out, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Abort()
		return fmt.Errorf("media: %s: %w", out, err)
	}
	return f.Commit()
}
