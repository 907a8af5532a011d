package cab

import (
	"errors"
	"fmt"
)

// LZX as used in cabinets ([MS-PATCH] 2 without the DELTA extensions):
// a bitstream of 16-bit little-endian words read most significant bit
// first, made of blocks (verbatim, aligned offset, uncompressed) whose
// Huffman code lengths are delta-coded against the previous block's. The
// output is cut into frames of one CFDATA block each (32 KiB); the window
// and the repeated offsets R0-R2 persist across frames, the bitstream is
// re-aligned to 16 bits after each frame, and E8 call translation is undone
// per frame.

const (
	lzxMinMatch     = 2
	lzxNumChars     = 256
	lzxPretreeNum   = 20
	lzxLengthNum    = 249
	lzxAlignedNum   = 8
	lzxMaxCodeLen   = 16
	lzxBlockVerb    = 1
	lzxBlockAligned = 2
	lzxBlockUncomp  = 3
)

var lzxPositionSlots = [...]int{15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}

var lzxExtraBits, lzxPositionBase = func() (e [51]uint8, b [51]uint32) {
	for i := range e {
		x := i/2 - 1
		if x < 0 {
			x = 0
		}
		if x > 17 {
			x = 17
		}
		e[i] = uint8(x)
		if i > 0 {
			b[i] = b[i-1] + 1<<e[i-1]
		}
	}
	return
}()

type lzxDecoder struct {
	in     *lzxInput
	bitbuf uint64
	nbits  uint

	win     []byte
	mask    int64
	winSize int64
	pos     int64 // total bytes decoded
	next    int64 // start of the next frame
	r0      uint32
	r1, r2  uint32
	started bool
	e8size  int32
	frames  int

	blockType   int
	blockLen    int
	blockRemain int
	raw         bool // inside an uncompressed block: bytes, not bits

	mainLen  []uint8
	lenLen   [lzxLengthNum]uint8
	alignLen [lzxAlignedNum]uint8
	main     huffman
	length   huffman
	aligned  huffman
	pre      huffman
	out      []byte
}

func newLZXDecoder(windowBits int, in *lzxInput) *lzxDecoder {
	// The buffer holds at least two frames, so that a match running past
	// the end of a frame never overwrites that frame before it is copied
	// out (with a 32 KiB window the window alone would not do). Any
	// power of two not below the window size resolves the same offsets.
	n := max(1<<windowBits, 2*maxBlockData)
	return &lzxDecoder{
		in:      in,
		win:     make([]byte, n),
		mask:    int64(n - 1),
		winSize: 1 << windowBits,
		r0:      1,
		r1:      1,
		r2:      1,
		mainLen: make([]uint8, lzxNumChars+lzxPositionSlots[windowBits]*8),
	}
}

var errLZXBadTree = errors.New("invalid Huffman code lengths")

// ensure buffers at least n (≤ 32) bits.
func (d *lzxDecoder) ensure(n uint) error {
	for d.nbits < n {
		lo, err := d.in.byte()
		if err != nil {
			return err
		}
		hi, err := d.in.byte()
		if err != nil {
			return err
		}
		d.bitbuf = d.bitbuf<<16 | uint64(lo) | uint64(hi)<<8
		d.nbits += 16
	}
	return nil
}

func (d *lzxDecoder) bits(n uint) (uint32, error) {
	if n == 0 {
		return 0, nil
	}
	if err := d.ensure(n); err != nil {
		return 0, err
	}
	v := uint32(d.bitbuf>>(d.nbits-n)) & (1<<n - 1)
	d.nbits -= n
	return v, nil
}

// huffman is a canonical Huffman decoder: a direct table for short codes,
// a walk over the per-length counts for the others.
type huffman struct {
	table  []uint16 // sym<<5 | len, or 0xffff
	tbits  uint
	count  [lzxMaxCodeLen + 1]uint16
	sorted []uint16
	empty  bool
}

func (h *huffman) build(lengths []uint8, tbits uint) error {
	h.tbits = tbits
	if tbits > 0 && len(h.table) != 1<<tbits {
		h.table = make([]uint16, 1<<tbits)
	}
	h.count = [lzxMaxCodeLen + 1]uint16{}
	for _, l := range lengths {
		if l > lzxMaxCodeLen {
			return errLZXBadTree
		}
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l <= lzxMaxCodeLen; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return errLZXBadTree // over-subscribed
		}
	}
	h.empty = left == 1<<lzxMaxCodeLen
	if h.empty {
		return nil // no symbols: fine until something is decoded
	}
	if left != 0 {
		return errLZXBadTree // incomplete
	}
	var offs [lzxMaxCodeLen + 2]uint16
	for l := 1; l <= lzxMaxCodeLen; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.sorted = h.sorted[:0]
	h.sorted = append(h.sorted, make([]uint16, offs[lzxMaxCodeLen+1])...)
	for s, l := range lengths {
		if l != 0 {
			h.sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	for i := range h.table {
		h.table[i] = 0xffff
	}
	code, idx := 0, 0
	for l := uint(1); l <= tbits; l++ {
		for k := 0; k < int(h.count[l]); k++ {
			s := h.sorted[idx]
			idx++
			start := code << (tbits - l)
			for j := 0; j < 1<<(tbits-l); j++ {
				h.table[start+j] = s<<5 | uint16(l)
			}
			code++
		}
		code <<= 1
	}
	return nil
}

func (d *lzxDecoder) decode(h *huffman) (int, error) {
	if h.empty {
		return 0, errors.New("symbol read from an empty Huffman tree")
	}
	if err := d.ensure(lzxMaxCodeLen); err != nil {
		return 0, err
	}
	peek := uint32(d.bitbuf>>(d.nbits-lzxMaxCodeLen)) & 0xffff
	if e := h.table[peek>>(lzxMaxCodeLen-h.tbits)]; e != 0xffff {
		d.nbits -= uint(e & 31)
		return int(e >> 5), nil
	}
	code, first, idx := 0, 0, 0
	for l := 1; l <= lzxMaxCodeLen; l++ {
		code |= int(peek>>(lzxMaxCodeLen-l)) & 1
		cnt := int(h.count[l])
		if code-first < cnt {
			d.nbits -= uint(l)
			return int(h.sorted[idx+code-first]), nil
		}
		idx += cnt
		first = (first + cnt) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

// readLengths reads the code lengths lens[first:last] through a pretree,
// as deltas against their previous values.
func (d *lzxDecoder) readLengths(lens []uint8, first, last int) error {
	var pl [lzxPretreeNum]uint8
	for i := range pl {
		v, err := d.bits(4)
		if err != nil {
			return err
		}
		pl[i] = uint8(v)
	}
	if err := d.pre.build(pl[:], 8); err != nil {
		return fmt.Errorf("pretree: %w", err)
	}
	for x := first; x < last; {
		z, err := d.decode(&d.pre)
		if err != nil {
			return err
		}
		switch {
		case z == 17, z == 18:
			var n uint32
			if z == 17 {
				n, err = d.bits(4)
				n += 4
			} else {
				n, err = d.bits(5)
				n += 20
			}
			if err != nil {
				return err
			}
			// A run may spill past last into the following lengths (the
			// next readLengths call overwrites them); never past the
			// table.
			for ; n > 0 && x < len(lens); n-- {
				lens[x] = 0
				x++
			}
		case z == 19:
			n, err := d.bits(1)
			if err != nil {
				return err
			}
			n += 4
			z, err = d.decode(&d.pre)
			if err != nil {
				return err
			}
			if z > 16 {
				return errors.New("pretree: run of a run code")
			}
			v := uint8((int(lens[x]) - z + 17) % 17)
			for ; n > 0 && x < len(lens); n-- {
				lens[x] = v
				x++
			}
		default:
			lens[x] = uint8((int(lens[x]) - z + 17) % 17)
			x++
		}
	}
	return nil
}

func (d *lzxDecoder) readBlockHeader() error {
	if d.raw {
		d.raw = false
		if d.blockLen&1 != 0 {
			if _, err := d.in.byte(); err != nil { // pad to 16 bits
				return err
			}
		}
	}
	t, err := d.bits(3)
	if err != nil {
		return err
	}
	hi, err := d.bits(16)
	if err != nil {
		return err
	}
	lo, err := d.bits(8)
	if err != nil {
		return err
	}
	d.blockType = int(t)
	d.blockLen = int(hi<<8 | lo)
	d.blockRemain = d.blockLen
	switch d.blockType {
	case lzxBlockAligned:
		for i := range d.alignLen {
			v, err := d.bits(3)
			if err != nil {
				return err
			}
			d.alignLen[i] = uint8(v)
		}
		if err := d.aligned.build(d.alignLen[:], 7); err != nil {
			return fmt.Errorf("aligned tree: %w", err)
		}
		fallthrough
	case lzxBlockVerb:
		if err := d.readLengths(d.mainLen, 0, lzxNumChars); err != nil {
			return err
		}
		if err := d.readLengths(d.mainLen, lzxNumChars, len(d.mainLen)); err != nil {
			return err
		}
		if err := d.main.build(d.mainLen, 10); err != nil {
			return fmt.Errorf("main tree: %w", err)
		}
		if d.main.empty {
			return errors.New("main tree has no codes")
		}
		if err := d.readLengths(d.lenLen[:], 0, lzxLengthNum); err != nil {
			return err
		}
		if err := d.length.build(d.lenLen[:], 10); err != nil {
			return fmt.Errorf("length tree: %w", err)
		}
	case lzxBlockUncomp:
		// Realign to 16 bits: 1 to 16 bits of padding.
		if d.nbits == 0 {
			if _, err := d.bits(16); err != nil {
				return err
			}
		} else {
			d.nbits = 0
		}
		var r [12]byte
		for i := range r {
			if r[i], err = d.in.byte(); err != nil {
				return err
			}
		}
		d.r0 = uint32(r[0]) | uint32(r[1])<<8 | uint32(r[2])<<16 | uint32(r[3])<<24
		d.r1 = uint32(r[4]) | uint32(r[5])<<8 | uint32(r[6])<<16 | uint32(r[7])<<24
		d.r2 = uint32(r[8]) | uint32(r[9])<<8 | uint32(r[10])<<16 | uint32(r[11])<<24
		d.raw = true
	default:
		return fmt.Errorf("invalid block type %d", d.blockType)
	}
	if d.blockLen == 0 {
		return errors.New("empty block")
	}
	return nil
}

// decodeFrame decodes the next n (≤ 32768) bytes of output; n is the
// frame's output cap, checked here so no caller can ask for more.
func (d *lzxDecoder) decodeFrame(n int) ([]byte, error) {
	if n <= 0 || n > maxBlockData {
		return nil, fmt.Errorf("LZX frame size %d outside 1..%d", n, maxBlockData)
	}
	if !d.started {
		d.started = true
		v, err := d.bits(1)
		if err != nil {
			return nil, err
		}
		if v != 0 {
			hi, err := d.bits(16)
			if err != nil {
				return nil, err
			}
			lo, err := d.bits(16)
			if err != nil {
				return nil, err
			}
			d.e8size = int32(hi<<16 | lo)
		}
	}
	// A match may have run past the previous frame: this frame starts
	// where that one ended, not at pos.
	start := d.next
	end := start + int64(n)
	d.next = end
	for d.pos < end {
		if d.blockRemain == 0 {
			if err := d.readBlockHeader(); err != nil {
				return nil, err
			}
		}
		if d.raw {
			k := min(int64(d.blockRemain), end-d.pos)
			for ; k > 0; k-- {
				c, err := d.in.byte()
				if err != nil {
					return nil, err
				}
				d.win[d.pos&d.mask] = c
				d.pos++
				d.blockRemain--
			}
			continue
		}
		if err := d.symbol(); err != nil {
			return nil, err
		}
	}
	// A match may run past the frame end; its tail belongs to the next
	// frame (the window keeps it).
	if cap(d.out) < n {
		d.out = make([]byte, n)
	}
	out := d.out[:n]
	for i := range out {
		out[i] = d.win[(start+int64(i))&d.mask]
	}
	if d.e8size != 0 && d.frames < 32768 {
		e8undo(out, int32(start), d.e8size)
	}
	d.frames++
	if !d.raw {
		d.nbits -= d.nbits % 16
	}
	// The caller owns out until the next call.
	d.out = nil
	return out, nil
}

func (d *lzxDecoder) symbol() error {
	sym, err := d.decode(&d.main)
	if err != nil {
		return err
	}
	if sym < lzxNumChars {
		d.win[d.pos&d.mask] = byte(sym)
		d.pos++
		d.blockRemain--
		return nil
	}
	sym -= lzxNumChars
	length := sym&7 + lzxMinMatch
	if sym&7 == 7 {
		ls, err := d.decode(&d.length)
		if err != nil {
			return err
		}
		length += ls
	}
	slot := sym >> 3
	var off uint32
	switch slot {
	case 0:
		off = d.r0
	case 1:
		off = d.r1
		d.r1 = d.r0
		d.r0 = off
	case 2:
		off = d.r2
		d.r2 = d.r0
		d.r0 = off
	default:
		extra := uint(lzxExtraBits[slot])
		base := lzxPositionBase[slot]
		var v uint32
		if d.blockType == lzxBlockAligned && extra >= 3 {
			hi, err := d.bits(extra - 3)
			if err != nil {
				return err
			}
			a, err := d.decode(&d.aligned)
			if err != nil {
				return err
			}
			v = hi<<3 + uint32(a)
		} else if v, err = d.bits(extra); err != nil {
			return err
		}
		off = base + v - 2
		d.r2 = d.r1
		d.r1 = d.r0
		d.r0 = off
	}
	if off == 0 || int64(off) > d.pos || int64(off) > d.winSize {
		return fmt.Errorf("match offset %d at output position %d is out of range", off, d.pos)
	}
	if length > d.blockRemain {
		return fmt.Errorf("match of %d bytes runs past the end of the block (%d left)", length, d.blockRemain)
	}
	src := d.pos - int64(off)
	for i := 0; i < length; i++ {
		d.win[(d.pos+int64(i))&d.mask] = d.win[(src+int64(i))&d.mask]
	}
	d.pos += int64(length)
	d.blockRemain -= length
	return nil
}

// e8undo reverses the encoder's E8 (x86 CALL) translation in one frame:
// absolute targets in [-pos, size) become relative again. The last 10
// bytes of the frame are never translated.
func e8undo(b []byte, start, size int32) {
	for i := 0; i < len(b)-10; {
		if b[i] != 0xe8 {
			i++
			continue
		}
		abs := int32(uint32(b[i+1]) | uint32(b[i+2])<<8 | uint32(b[i+3])<<16 | uint32(b[i+4])<<24)
		cur := start + int32(i)
		if abs >= -cur && abs < size {
			var rel int32
			if abs >= 0 {
				rel = abs - cur
			} else {
				rel = abs + size
			}
			b[i+1], b[i+2], b[i+3], b[i+4] = byte(rel), byte(rel>>8), byte(rel>>16), byte(rel>>24)
		}
		i += 5
	}
}
