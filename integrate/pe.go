package integrate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// PE (Portable Executable) reading and patching, as much as integration
// needs: a driver's machine, its import table (to rename a dependency in
// place, research §6.5), the sections of a setup loader (§7.5) and the
// image checksum the loaders verify. Layout: Microsoft's "PE Format"
// specification (https://learn.microsoft.com/windows/win32/debug/pe-format).

// peHeader returns the offset of the PE signature that e_lfanew points
// to, requiring need bytes from there to be in b. Every reader of PE
// headers in xpboot starts here.
func peHeader(b []byte, need int64) (int64, error) {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return 0, &peFormatError{0, "no MZ header"}
	}
	off := int64(binary.LittleEndian.Uint32(b[0x3c:]))
	if off+max(need, 4) > int64(len(b)) || string(b[off:off+4]) != "PE\x00\x00" {
		return 0, &peFormatError{0x3c, "no PE signature where e_lfanew points"}
	}
	return off, nil
}

// peMachine returns the COFF machine of a PE image, or 0 when b is not
// one. Only the headers are read: a driver's architecture is all we need.
func peMachine(b []byte) uint16 {
	off, err := peHeader(b, 6)
	if err != nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b[off+4:])
}

// COFF machine types of the architectures NT 5.x runs on.
const (
	peI386  = 0x14c
	peAMD64 = 0x8664
)

// PEArch returns the architecture of a PE image ("x86" or "amd64") from
// its COFF header; any other machine is an error naming it.
func PEArch(b []byte) (string, error) {
	off, err := peHeader(b, 6)
	if err != nil {
		return "", err
	}
	switch m := binary.LittleEndian.Uint16(b[off+4:]); m {
	case peI386:
		return "x86", nil
	case peAMD64:
		return "amd64", nil
	default:
		return "", &peFormatError{off + 4, fmt.Sprintf("machine type 0x%04x is not x86 or amd64", m)}
	}
}

// peChecksumOffset returns the offset of the optional header's CheckSum
// field, or -1 when b is not a PE image.
func peChecksumOffset(b []byte) int {
	off, err := peHeader(b, 24+68)
	if err != nil {
		return -1
	}
	return int(off) + 24 + 64 // signature, COFF header, then CheckSum at 64 in both PE32 and PE32+
}

// peChecksum computes the image checksum the loader and setupldr verify
// (the ImageHlp CheckSumMappedFile algorithm): a 16-bit sum with the
// carries folded back in, over the file read as little-endian words with
// the CheckSum field taken as zero (an odd last byte counts as a word of
// its own), plus the file length. Checked against the checksums
// Microsoft's linker wrote and against pefile and osslsigncode
// (pe_test.go).
func peChecksum(b []byte) uint32 {
	at := peChecksumOffset(b)
	byteAt := func(i int) uint32 {
		if at >= 0 && i >= at && i < at+4 {
			return 0
		}
		return uint32(b[i])
	}
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		w := byteAt(i)
		if i+1 < len(b) {
			w |= byteAt(i+1) << 8
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return sum + uint32(len(b))
}

// setPEChecksum rewrites b's CheckSum field; it reports false when b is
// not a PE image.
func setPEChecksum(b []byte) bool {
	at := peChecksumOffset(b)
	if at < 0 {
		return false
	}
	binary.LittleEndian.PutUint32(b[at:], peChecksum(b))
	return true
}

// peChecksumValid reports whether b is a PE image whose CheckSum field
// holds its checksum.
func peChecksumValid(b []byte) bool {
	at := peChecksumOffset(b)
	return at >= 0 && binary.LittleEndian.Uint32(b[at:]) == peChecksum(b)
}

// Limits on counts read from an image, far above what a driver or a
// setup loader has.
const (
	peMaxSections = 96   // the loader's own limit
	peMaxImports  = 4096 // import descriptors
	peMaxName     = 256  // bytes of an imported module's name
)

// peFormatError is a malformed PE image; the message names the offset.
type peFormatError struct {
	Off int64
	Msg string
}

func (e *peFormatError) Error() string {
	return fmt.Sprintf("PE image: %s at byte 0x%x", e.Msg, e.Off)
}

// A peSection is one section header.
type peSection struct {
	Name           string
	VirtualSize    uint32
	VirtualAddress uint32
	SizeOfRaw      uint32
	PointerToRaw   uint32
}

// peFile is a parsed PE image. Its offsets are into the slice it was
// parsed from.
type peFile struct {
	b             []byte
	Machine       uint16
	SizeOfHeaders uint32
	// dirs are the optional header's data directories (RVA, size).
	dirs     [][2]uint32
	Sections []peSection
}

// parsePE reads the headers of the PE image b, checking every offset and
// count against the size of b.
func parsePE(b []byte) (*peFile, error) {
	off, err := peHeader(b, 24)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	f := &peFile{b: b, Machine: le.Uint16(b[off+4:])}
	nsec := int64(le.Uint16(b[off+6:]))
	optSize := int64(le.Uint16(b[off+20:]))
	opt := off + 24
	if nsec > peMaxSections {
		return nil, &peFormatError{off + 6, fmt.Sprintf("%d sections", nsec)}
	}
	if optSize < 2 || opt+optSize > int64(len(b)) {
		return nil, &peFormatError{off + 20, fmt.Sprintf("optional header of %d bytes", optSize)}
	}
	var ddOff int64 // offset of NumberOfRvaAndSizes in the optional header
	switch magic := le.Uint16(b[opt:]); magic {
	case 0x10b: // PE32
		ddOff = 92
	case 0x20b: // PE32+
		ddOff = 108
	default:
		return nil, &peFormatError{opt, fmt.Sprintf("optional header magic 0x%x", magic)}
	}
	if optSize < ddOff+4 {
		return nil, &peFormatError{off + 20, fmt.Sprintf("optional header of %d bytes", optSize)}
	}
	f.SizeOfHeaders = le.Uint32(b[opt+60:])
	ndirs := int64(le.Uint32(b[opt+ddOff:]))
	if ndirs > (optSize-ddOff-4)/8 {
		ndirs = (optSize - ddOff - 4) / 8 // the loader, too, reads only what the header holds
	}
	for i := int64(0); i < ndirs; i++ {
		d := opt + ddOff + 4 + 8*i
		f.dirs = append(f.dirs, [2]uint32{le.Uint32(b[d:]), le.Uint32(b[d+4:])})
	}
	sh := opt + optSize
	if sh+40*nsec > int64(len(b)) {
		return nil, &peFormatError{sh, fmt.Sprintf("%d section headers run past the end of the file", nsec)}
	}
	for i := int64(0); i < nsec; i++ {
		h := b[sh+40*i:]
		s := peSection{
			Name:           strings.TrimRight(string(h[:8]), "\x00"),
			VirtualSize:    le.Uint32(h[8:]),
			VirtualAddress: le.Uint32(h[12:]),
			SizeOfRaw:      le.Uint32(h[16:]),
			PointerToRaw:   le.Uint32(h[20:]),
		}
		// A section running past the end of the file is not refused
		// here: only the bytes read (raw, offset) are checked against it.
		f.Sections = append(f.Sections, s)
	}
	return f, nil
}

// raw returns the bytes of section i stored in the file (fewer than
// SizeOfRaw when the file ends first).
func (f *peFile) raw(i int) []byte {
	s := f.Sections[i]
	start := min(uint64(s.PointerToRaw), uint64(len(f.b)))
	end := min(uint64(s.PointerToRaw)+uint64(s.SizeOfRaw), uint64(len(f.b)))
	return f.b[start:end]
}

// offset maps an RVA to a file offset, requiring n bytes there to be
// stored in the file.
func (f *peFile) offset(rva, n uint32) (int, bool) {
	end := uint64(rva) + uint64(n)
	if end <= uint64(f.SizeOfHeaders) && end <= uint64(len(f.b)) {
		return int(rva), true
	}
	for _, s := range f.Sections {
		if rva < s.VirtualAddress || end > uint64(s.VirtualAddress)+uint64(s.SizeOfRaw) {
			continue
		}
		off := uint64(s.PointerToRaw) + uint64(rva-s.VirtualAddress)
		if off+uint64(n) > uint64(len(f.b)) {
			return 0, false
		}
		return int(off), true
	}
	return 0, false
}

// cstring reads the NUL-terminated name at rva.
func (f *peFile) cstring(rva uint32) (string, int, error) {
	off, ok := f.offset(rva, 1)
	if !ok {
		return "", 0, &peFormatError{0, fmt.Sprintf("name RVA 0x%x is not in the file", rva)}
	}
	end := bytes.IndexByte(f.b[off:min(len(f.b), off+peMaxName)], 0)
	if end < 0 {
		return "", 0, &peFormatError{int64(off), "unterminated name"}
	}
	// The name must lie inside the section that holds its start.
	if _, ok := f.offset(rva, uint32(end)+1); !ok {
		return "", 0, &peFormatError{int64(off), "name runs past its section"}
	}
	return string(f.b[off : off+end]), off, nil
}

// A peImport is one import descriptor: the module's name and where the
// name is stored in the file.
type peImport struct {
	Name string
	Off  int
}

// Imports returns the modules the image imports (the import directory,
// data directory 1), in descriptor order.
func (f *peFile) Imports() ([]peImport, error) {
	if len(f.dirs) < 2 || f.dirs[1][0] == 0 {
		return nil, nil
	}
	rva := f.dirs[1][0]
	var out []peImport
	for i := uint32(0); ; i++ {
		if i >= peMaxImports {
			return nil, &peFormatError{0, fmt.Sprintf("more than %d import descriptors", peMaxImports)}
		}
		off, ok := f.offset(rva+20*i, 20)
		if !ok {
			return nil, &peFormatError{0, fmt.Sprintf("import descriptor %d (RVA 0x%x) is not in the file", i, rva+20*i)}
		}
		d := f.b[off : off+20]
		if bytes.Equal(d, make([]byte, 20)) {
			return out, nil
		}
		name, noff, err := f.cstring(binary.LittleEndian.Uint32(d[12:]))
		if err != nil {
			return nil, fmt.Errorf("import descriptor %d: %w", i, err)
		}
		out = append(out, peImport{name, noff})
	}
}

// peImports returns the names of the modules b imports.
func peImports(b []byte) ([]string, error) {
	f, err := parsePE(b)
	if err != nil {
		return nil, err
	}
	imps, err := f.Imports()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range imps {
		out = append(out, im.Name)
	}
	return out, nil
}

// peRenameImport returns a copy of the PE image b whose import
// descriptors naming module old (case-insensitively) name module new
// instead, with the checksum recomputed. The names must have the same
// length: the name is rewritten in place. n is how many descriptors
// changed; with n 0 the copy equals b.
func peRenameImport(b []byte, old, new string) (out []byte, n int, err error) {
	if len(old) != len(new) {
		return nil, 0, fmt.Errorf("cannot rename import %s to %s: the names differ in length", old, new)
	}
	f, err := parsePE(b)
	if err != nil {
		return nil, 0, err
	}
	imps, err := f.Imports()
	if err != nil {
		return nil, 0, err
	}
	out = bytes.Clone(b)
	for _, im := range imps {
		if strings.EqualFold(im.Name, old) {
			copy(out[im.Off:], new)
			n++
		}
	}
	if n == 0 {
		return out, 0, nil
	}
	// A name may overlap the headers or another name (a crafted file
	// does that): the result must read back as intended.
	g, err := parsePE(out)
	if err == nil {
		var after []peImport
		if after, err = g.Imports(); err == nil && len(after) == len(imps) {
			for i := range imps {
				want := imps[i].Name
				if strings.EqualFold(want, old) {
					want = new
				}
				if after[i].Name != want {
					err = &peFormatError{int64(after[i].Off), "import names overlap"}
				}
			}
		} else if err == nil {
			err = &peFormatError{0, "import table changed by the rename"}
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("renaming import %s: %w", old, err)
	}
	setPEChecksum(out)
	return out, n, nil
}
