package ntfs

// The fixed contents of a new volume's metadata files: $AttrDef, the
// security descriptors of $Secure and of the system files, and the
// default $Quota entries. The values are facts of the NTFS 3.1 format
// (attribute types, sizes and flags; well-known SIDs and access masks),
// listed from the public NTFS documentation and checked against what
// mkntfs writes by format_test.go.

import "unicode/utf16"

// attrDef is one row of $AttrDef.
type attrDef struct {
	name     string
	typ      uint32
	flags    uint32
	min, max int64
}

// $AttrDef flags.
const (
	adIndexable   = 0x02
	adAlwaysRes   = 0x40
	adAlwaysNonRe = 0x80
)

// xpAttrDefs is the attribute table of NTFS 3.1 as Windows XP defines it.
var xpAttrDefs = [...]attrDef{
	{"$STANDARD_INFORMATION", 0x10, adAlwaysRes, 48, 72},
	{"$ATTRIBUTE_LIST", 0x20, adAlwaysNonRe, 0, -1},
	{"$FILE_NAME", 0x30, adAlwaysRes | adIndexable, 68, 578},
	{"$OBJECT_ID", 0x40, adAlwaysRes, 0, 256},
	{"$SECURITY_DESCRIPTOR", 0x50, adAlwaysNonRe, 0, -1},
	{"$VOLUME_NAME", 0x60, adAlwaysRes, 2, 256},
	{"$VOLUME_INFORMATION", 0x70, adAlwaysRes, 12, 12},
	{"$DATA", 0x80, 0, 0, -1},
	{"$INDEX_ROOT", 0x90, adAlwaysRes, 0, -1},
	{"$INDEX_ALLOCATION", 0xA0, adAlwaysNonRe, 0, -1},
	{"$BITMAP", 0xB0, adAlwaysNonRe, 0, -1},
	{"$REPARSE_POINT", 0xC0, adAlwaysNonRe, 0, 16384},
	{"$EA_INFORMATION", 0xD0, adAlwaysRes, 8, 8},
	{"$EA", 0xE0, 0, 0, 65536},
	{"$LOGGED_UTILITY_STREAM", 0x100, adAlwaysNonRe, 0, 65536},
}

// AttrDefTable returns the contents of a new volume's $AttrDef: one
// 160-byte row per attribute type (name, type, display and collation
// rules, flags, minimum and maximum size) and an empty closing row.
func AttrDefTable() []byte {
	b := make([]byte, fmtAttrDefLen)
	for i, d := range xpAttrDefs {
		row := b[i*160:]
		for j, c := range utf16.Encode([]rune(d.name)) {
			put16(row, 2*j, c)
		}
		put32(row, 0x80, d.typ)
		put32(row, 0x8C, d.flags)
		put64(row, 0x90, uint64(d.min))
		put64(row, 0x98, uint64(d.max))
	}
	return b
}

// Well-known SIDs.
var (
	sidSystem       = mkSID(5, 18)
	sidAdmins       = mkSID(5, 32, 544)
	sidUsers        = mkSID(5, 32, 545)
	sidEveryone     = mkSID(1, 0)
	sidCreatorOwner = mkSID(3, 0)
)

func mkSID(auth byte, subs ...uint32) []byte {
	b := make([]byte, 8+4*len(subs))
	b[0], b[1], b[7] = 1, byte(len(subs)), auth
	for i, s := range subs {
		put32(b, 8+4*i, s)
	}
	return b
}

// ACE inheritance flags.
const (
	aceOI = 0x01 // object inherit
	aceCI = 0x02 // container inherit
	aceIO = 0x08 // inherit only
)

// Access masks.
const (
	maskFull    = 0x1F01FF
	maskRWX     = 0x12019F // read, write, execute (no delete)
	maskRX      = 0x1200A9 // read and execute
	maskReadOnl = 0x120089 // read
)

func mkACE(flags byte, mask uint32, sid []byte) []byte {
	b := make([]byte, 8+len(sid))
	b[1] = flags
	put16(b, 2, uint16(len(b)))
	put32(b, 4, mask)
	copy(b[8:], sid)
	return b
}

// secDesc builds a self-relative security descriptor with a DACL of aces,
// laid out as Windows does: header, DACL, owner, group.
func secDesc(owner, group []byte, aces ...[]byte) []byte {
	acl := make([]byte, 8)
	acl[0] = 2
	put16(acl, 4, uint16(len(aces)))
	for _, a := range aces {
		acl = append(acl, a...)
	}
	put16(acl, 2, uint16(len(acl)))
	b := make([]byte, 20)
	b[0] = 1
	put16(b, 2, 0x8004) // self-relative, DACL present
	put32(b, 16, 20)
	b = append(b, acl...)
	put32(b, 4, uint32(len(b)))
	b = append(b, owner...)
	put32(b, 8, uint32(len(b)))
	return append(b, group...)
}

// sysFileSD is the resident descriptor of the system files without a
// security id: owner SYSTEM, group Administrators, access mask for both.
func sysFileSD(mask uint32) []byte {
	return secDesc(sidSystem, sidAdmins, mkACE(0, mask, sidSystem), mkACE(0, mask, sidAdmins))
}

// rootSD is the root directory's descriptor: the permissions Windows XP
// gives the root of a freshly formatted volume (Microsoft KB 327522):
// Administrators, SYSTEM and CREATOR OWNER full control, Users read and
// execute, create folders and create files, Everyone read and execute on
// the root itself.
func rootSD() []byte {
	return secDesc(sidAdmins, sidSystem,
		mkACE(aceOI|aceCI, maskFull, sidAdmins),
		mkACE(aceOI|aceCI, maskFull, sidSystem),
		mkACE(aceOI|aceCI|aceIO, maskFull, sidCreatorOwner),
		mkACE(aceOI|aceCI, maskRX, sidUsers),
		mkACE(aceCI, 0x000004, sidUsers),
		mkACE(aceCI|aceIO, 0x000002, sidUsers),
		mkACE(0, maskRX, sidEveryone))
}

// secureSDs are the descriptors of $Secure, by security id: files get
// read access, directories read, write and execute, for SYSTEM and
// Administrators; both owned by Administrators.
func secureSD(id uint32) []byte {
	mask := uint32(maskReadOnl)
	if id == secIDDir {
		mask = maskRWX
	}
	return secDesc(sidAdmins, sidAdmins, mkACE(0, mask, sidSystem), mkACE(0, mask, sidAdmins))
}

// secHash is the hash $Secure keys descriptors by: over the descriptor's
// 32-bit words, rotate left by 3 and add.
func secHash(sd []byte) uint32 {
	var h uint32
	for i := 0; i+4 <= len(sd); i += 4 {
		h = (h<<3 | h>>29) + u32(sd, i)
	}
	return h
}

// sdsEntry is one descriptor of $SDS with its offset.
type sdsEntry struct {
	id, hash uint32
	off      uint64
	sd       []byte
}

func (e *sdsEntry) header() []byte {
	b := make([]byte, 20)
	put32(b, 0, e.hash)
	put32(b, 4, e.id)
	put64(b, 8, e.off)
	put32(b, 16, uint32(20+len(e.sd)))
	return b
}

func sdsEntries() []sdsEntry {
	var out []sdsEntry
	off := uint64(0)
	for _, id := range []uint32{secIDFile, secIDDir} {
		sd := secureSD(id)
		out = append(out, sdsEntry{id: id, hash: secHash(sd), off: off, sd: sd})
		off += uint64((20 + len(sd) + 15) &^ 15)
	}
	return out
}

// sdsUsed is the length of the $SDS data before its mirror copy.
const sdsUsed = 0x80 + 0x7C

// sdsData is $SDS: the descriptors, each after a 20-byte header and 16-byte
// aligned, and the same bytes again 256 KiB further (Windows keeps every
// $SDS block twice).
func sdsData() []byte {
	b := make([]byte, fmtSDSMirror+sdsUsed)
	for _, e := range sdsEntries() {
		rec := append(e.header(), e.sd...)
		copy(b[e.off:], rec)
		copy(b[fmtSDSMirror+e.off:], rec)
	}
	return b
}

// sdhEntries is the $SDH index (key: hash, id), in hash order.
func sdhEntries() []byte {
	es := sdsEntries()
	if es[1].hash < es[0].hash {
		es[0], es[1] = es[1], es[0]
	}
	var out []byte
	for _, e := range es {
		key := make([]byte, 8)
		put32(key, 0, e.hash)
		put32(key, 4, e.id)
		ent := viewEntry(key, e.header(), 0x30)
		copy(ent[0x2C:], "I\x00I\x00") // Windows pads $SDH entries with "II"
		out = append(out, ent...)
	}
	return append(out, endEntry()...)
}

// siiEntries is the $SII index (key: id).
func siiEntries() []byte {
	var out []byte
	for _, e := range sdsEntries() {
		key := make([]byte, 4)
		put32(key, 0, e.id)
		out = append(out, viewEntry(key, e.header(), 0x28)...)
	}
	return append(out, endEntry()...)
}

// quotaOEntries is $Quota:$O, SID to owner id: Administrators own id
// 0x100.
func quotaOEntries() []byte {
	data := make([]byte, 4)
	put32(data, 0, 0x100)
	return append(viewEntry(sidAdmins, data, 0x28), endEntry()...)
}

// quotaQEntries is $Quota:$Q, owner id to quota control entry: the
// default limits (id 1) and Administrators (0x100), both unlimited.
func quotaQEntries(now uint64) []byte {
	ctl := func(sid []byte) []byte {
		b := make([]byte, 0x30+len(sid))
		put32(b, 0, 2) // version
		put32(b, 4, 1) // QUOTA_FLAG_DEFAULT_LIMITS
		put64(b, 0x10, now)
		put64(b, 0x18, ^uint64(0)) // threshold: none
		put64(b, 0x20, ^uint64(0)) // limit: none
		copy(b[0x30:], sid)
		return b
	}
	k1, k2 := make([]byte, 4), make([]byte, 4)
	put32(k1, 0, 1)
	put32(k2, 0, 0x100)
	out := viewEntry(k1, ctl(nil), 0x48)
	out = append(out, viewEntry(k2, ctl(sidAdmins), 0x58)...)
	return append(out, endEntry()...)
}
