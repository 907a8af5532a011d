package ntfs

import "unicode"

// UpcaseTable returns the $UpCase table of a new volume: for every UTF-16
// code unit, the code unit it compares equal to. It is generated from the
// Unicode simple case mappings in Go's unicode package, with the rules
// that make it the table Windows writes (and mkntfs reproduces):
//
//   - a unit maps to its simple upper case only when that maps back to
//     it (so the micro sign, dotless i, long s, final sigma, the Greek
//     symbol forms and title-case digraphs stay themselves);
//   - mappings outside the Basic Multilingual Plane or into the surrogate
//     range are dropped, as NTFS compares one 16-bit unit at a time;
//   - letters whose case pairs Unicode defined after the table was fixed
//     (Unicode 5.0 and later: Georgian Mtavruli, Cherokee lower case,
//     Latin Extended-D and others, listed in upcaseNewer) stay
//     themselves.
func UpcaseTable() []uint16 {
	t := make([]uint16, 65536)
	for i := range t {
		t[i] = uint16(i)
		if i >= 0xD800 && i <= 0xDFFF {
			continue
		}
		u := unicode.ToUpper(rune(i))
		if u != rune(i) && u < 0x10000 && (u < 0xD800 || u > 0xDFFF) && unicode.ToLower(u) == rune(i) {
			t[i] = uint16(u)
		}
	}
	for _, r := range upcaseNewer {
		for c := int(r[0]); c <= int(r[1]); c++ {
			t[c] = uint16(c)
		}
	}
	return t
}

// upcaseNewer are the ranges of lower-case units whose upper-case
// mapping is newer than Windows' $UpCase table; Windows and mkntfs leave
// them unmapped.
var upcaseNewer = [][2]uint16{
	{0x023F, 0x0240},
	{0x0252, 0x0252},
	{0x025C, 0x025C},
	{0x0261, 0x0261},
	{0x0265, 0x0266},
	{0x026A, 0x026A},
	{0x026C, 0x026C},
	{0x0282, 0x0282},
	{0x0287, 0x0287},
	{0x029D, 0x029E},
	{0x03F3, 0x03F3},
	{0x0525, 0x0525},
	{0x0527, 0x0527},
	{0x0529, 0x0529},
	{0x052B, 0x052B},
	{0x052D, 0x052D},
	{0x052F, 0x052F},
	{0x10D0, 0x10FA},
	{0x10FD, 0x10FF},
	{0x13F8, 0x13FD},
	{0x1D8E, 0x1D8E},
	{0x2C5F, 0x2C5F},
	{0x2CEC, 0x2CEC},
	{0x2CEE, 0x2CEE},
	{0x2CF3, 0x2CF3},
	{0x2D27, 0x2D27},
	{0x2D2D, 0x2D2D},
	{0xA661, 0xA661},
	{0xA699, 0xA699},
	{0xA69B, 0xA69B},
	{0xA791, 0xA791},
	{0xA793, 0xA794},
	{0xA797, 0xA797},
	{0xA799, 0xA799},
	{0xA79B, 0xA79B},
	{0xA79D, 0xA79D},
	{0xA79F, 0xA79F},
	{0xA7A1, 0xA7A1},
	{0xA7A3, 0xA7A3},
	{0xA7A5, 0xA7A5},
	{0xA7A7, 0xA7A7},
	{0xA7A9, 0xA7A9},
	{0xA7B5, 0xA7B5},
	{0xA7B7, 0xA7B7},
	{0xA7B9, 0xA7B9},
	{0xA7BB, 0xA7BB},
	{0xA7BD, 0xA7BD},
	{0xA7BF, 0xA7BF},
	{0xA7C1, 0xA7C1},
	{0xA7C3, 0xA7C3},
	{0xA7C8, 0xA7C8},
	{0xA7CA, 0xA7CA},
	{0xA7D1, 0xA7D1},
	{0xA7D7, 0xA7D7},
	{0xA7D9, 0xA7D9},
	{0xA7F6, 0xA7F6},
	{0xAB53, 0xAB53},
	{0xAB70, 0xABBF},
}
