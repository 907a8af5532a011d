package hive

// On-disk layout of regf hives. Offsets and values follow Maxim Suhanov's
// "Windows registry file format specification"
// (https://github.com/msuhanov/regf) and the Windows Server 2003 SP1 kernel
// (WRK base/ntos/inc/hivedata.h, cmdata.h), see ../shared/research/hive.md.

const (
	baseBlockSize = 4096 // the regf header before the hive bins data
	binAlign      = 4096 // hbin sizes and offsets are multiples of this
	binHeaderSize = 32
	cellAlign     = 8 // HCELL_PAD for hive version ≥ 2

	nilOff = 0xFFFFFFFF // HCELL_NIL: "no cell"

	// Base block field offsets.
	hdrSignature  = 0
	hdrSeq1       = 4
	hdrSeq2       = 8
	hdrTimestamp  = 12
	hdrMajor      = 20
	hdrMinor      = 24
	hdrType       = 28
	hdrFormat     = 32
	hdrRoot       = 36
	hdrLength     = 40
	hdrCluster    = 44
	hdrFileName   = 48
	hdrChecksum   = 508
	hdrBootType   = 4088
	hdrBootRecov  = 4092
	checksumWords = 127

	// hbin header field offsets.
	binOffset    = 4
	binSize      = 8
	binTimestamp = 20

	// nk record field offsets (relative to the cell data, after the size).
	nkFlags        = 2
	nkTimestamp    = 4
	nkAccess       = 12
	nkParent       = 16
	nkNumSubkeys   = 20
	nkNumVolatile  = 24
	nkSubkeys      = 28
	nkVolatile     = 32
	nkNumValues    = 36
	nkValues       = 40
	nkSecurity     = 44
	nkClass        = 48
	nkMaxName      = 52
	nkMaxClass     = 56
	nkMaxValueName = 60
	nkMaxValueData = 64
	nkWorkVar      = 68
	nkNameLen      = 72
	nkClassLen     = 74
	nkName         = 76

	// nk flags.
	keyHiveExit  = 0x0002
	keyHiveEntry = 0x0004 // the root key
	keyNoDelete  = 0x0008
	keySymLink   = 0x0010
	keyCompName  = 0x0020 // name stored as Latin-1

	// vk record field offsets.
	vkNameLen   = 2
	vkDataLen   = 4
	vkData      = 8
	vkType      = 12
	vkFlags     = 16
	vkSpare     = 18
	vkName      = 20
	valCompName = 0x0001 // name stored as Latin-1

	dataInline = 0x80000000 // bit 31 of the vk data length: data in the offset field

	// sk record field offsets.
	skFlink   = 4
	skBlink   = 8
	skRefs    = 12
	skDescLen = 16
	skDesc    = 20

	// bigDataSegment is CM_KEY_VALUE_BIG: values longer than this are stored
	// as db big data in hives with minor version ≥ 4 (CmpIsHKeyValueBig).
	bigDataSegment = 0x3FD8
	// maxCellSize is HSANE_CELL_MAX: Windows refuses larger cells.
	maxCellSize = 1 << 20

	// Leaf limits (WRK cmindex.c): an lf is converted to li at 507 entries
	// (CM_MAX_FAST_INDEX), an li/lh gets an ri parent at 1013 entries.
	maxFastLeaf = 506
	maxLeaf     = 1012

	maxKeyNameChars   = 255
	maxValueNameChars = 16383
)

// ValueType is a registry value type (REG_SZ, REG_DWORD, …). Types without a
// name are legal and kept as raw bytes.
type ValueType uint32

// The value types Windows defines.
const (
	None                     ValueType = 0  // REG_NONE
	SZ                       ValueType = 1  // REG_SZ: UTF-16LE string with NUL
	ExpandSZ                 ValueType = 2  // REG_EXPAND_SZ: like SZ, with %VAR% references
	Binary                   ValueType = 3  // REG_BINARY
	DWORD                    ValueType = 4  // REG_DWORD: little-endian uint32
	DWORDBigEndian           ValueType = 5  // REG_DWORD_BIG_ENDIAN
	Link                     ValueType = 6  // REG_LINK: UTF-16LE target path, no NUL
	MultiSZ                  ValueType = 7  // REG_MULTI_SZ: NUL-terminated strings and a final NUL
	ResourceList             ValueType = 8  // REG_RESOURCE_LIST
	FullResourceDescriptor   ValueType = 9  // REG_FULL_RESOURCE_DESCRIPTOR
	ResourceRequirementsList ValueType = 10 // REG_RESOURCE_REQUIREMENTS_LIST
	QWORD                    ValueType = 11 // REG_QWORD: little-endian uint64
)

var typeNames = [...]string{
	"REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD",
	"REG_DWORD_BIG_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
	"REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD",
}
