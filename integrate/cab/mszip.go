package cab

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
)

// inflateBlock decodes one MSZIP CFDATA payload: the "CK" signature then a
// raw deflate stream, ending with a final block, that may refer back into
// hist (the previous block's output, [MS-MCI] 2.1) and must expand to
// exactly n bytes.
// n is the block's output cap: at most maxBlockData (32 KiB).
func inflateBlock(data, hist []byte, n int) ([]byte, error) {
	if n <= 0 || n > maxBlockData {
		return nil, fmt.Errorf("block size %d outside 1..%d", n, maxBlockData)
	}
	if len(data) < 2 || data[0] != 'C' || data[1] != 'K' {
		return nil, errors.New("missing CK signature")
	}
	zr := flate.NewReaderDict(bytes.NewReader(data[2:]), hist)
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, int64(n)+1))
	switch {
	case err != nil:
		return nil, err
	case len(out) > n:
		return nil, errors.New("block expands beyond its stated size")
	case len(out) < n:
		return nil, errors.New("block expands to less than its stated size")
	}
	return out, nil
}

// deflateStrict walks a raw deflate stream to its final block and reports
// whether every Huffman code in it is complete. RFC 1951 allows a distance
// code with a single one-bit code (compress/flate writes one when a block
// uses one distance, or none), but libmspack's MSZIP decoder — cabextract —
// rejects incomplete codes, and nothing says Windows' FDI accepts them, so
// Writer never emits such a block.
func deflateStrict(data []byte) bool {
	br := &lsbReader{b: data}
	var lit, dist, cl huffman
	for {
		final := br.bits(1)
		switch br.bits(2) {
		case 0:
			br.align()
			n := br.bits(16)
			if br.bits(16) != n^0xffff || !br.skipBytes(int(n)) {
				return false
			}
		case 1:
			var l [288]uint8
			for i := range l {
				switch {
				case i < 144, i >= 280:
					l[i] = 8
				case i < 256:
					l[i] = 9
				default:
					l[i] = 7
				}
			}
			var d [30]uint8
			for i := range d {
				d[i] = 5
			}
			// The fixed codes are complete save the two unused distance
			// codes; check the walk only.
			if lit.build(l[:], 0) != nil {
				return false
			}
			dist.build(append(d[:], 5, 5), 0)
			if !br.symbols(&lit, &dist) {
				return false
			}
		case 2:
			hlit, hdist, hclen := int(br.bits(5))+257, int(br.bits(5))+1, int(br.bits(4))+4
			var cll [19]uint8
			for i := 0; i < hclen; i++ {
				cll[[19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}[i]] = uint8(br.bits(3))
			}
			if cl.build(cll[:], 0) != nil || cl.empty {
				return false
			}
			lens := make([]uint8, hlit+hdist)
			for i := 0; i < len(lens); {
				s := br.sym(&cl)
				var n int
				var v uint8
				switch {
				case s < 0:
					return false
				case s < 16:
					lens[i] = uint8(s)
					i++
					continue
				case s == 16:
					if i == 0 {
						return false
					}
					v, n = lens[i-1], 3+int(br.bits(2))
				case s == 17:
					n = 3 + int(br.bits(3))
				default:
					n = 11 + int(br.bits(7))
				}
				if i+n > len(lens) {
					return false
				}
				for ; n > 0; n-- {
					lens[i] = v
					i++
				}
			}
			if lit.build(lens[:hlit], 0) != nil || lit.empty || dist.build(lens[hlit:], 0) != nil || dist.empty {
				return false
			}
			if !br.symbols(&lit, &dist) {
				return false
			}
		default:
			return false
		}
		if br.err {
			return false
		}
		if final == 1 {
			return true
		}
	}
}

// lsbReader reads deflate's least-significant-bit-first bitstream.
type lsbReader struct {
	b     []byte
	pos   int // next byte
	buf   uint32
	nbits uint
	err   bool
}

func (r *lsbReader) bits(n uint) uint32 {
	for r.nbits < n {
		if r.pos >= len(r.b) {
			r.err = true
			return 0
		}
		r.buf |= uint32(r.b[r.pos]) << r.nbits
		r.pos++
		r.nbits += 8
	}
	v := r.buf & (1<<n - 1)
	r.buf >>= n
	r.nbits -= n
	return v
}

func (r *lsbReader) align() { r.buf, r.nbits = 0, 0 }

func (r *lsbReader) skipBytes(n int) bool {
	if n > len(r.b)-r.pos {
		r.err = true
		return false
	}
	r.pos += n
	return true
}

// sym decodes one symbol bit by bit (codes are sent most significant bit
// first), or returns -1.
func (r *lsbReader) sym(h *huffman) int {
	code, first, idx := 0, 0, 0
	for l := 1; l <= 15; l++ {
		code |= int(r.bits(1))
		if r.err {
			return -1
		}
		cnt := int(h.count[l])
		if code-first < cnt {
			return int(h.sorted[idx+code-first])
		}
		idx += cnt
		first = (first + cnt) << 1
		code <<= 1
	}
	return -1
}

var (
	lenExtra  = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// symbols walks one block's symbols up to end-of-block.
func (r *lsbReader) symbols(lit, dist *huffman) bool {
	for {
		s := r.sym(lit)
		switch {
		case s < 0 || s > 285:
			return false
		case s == 256:
			return true
		case s > 256:
			r.bits(uint(lenExtra[s-257]))
			d := r.sym(dist)
			if d < 0 || d > 29 {
				return false
			}
			r.bits(uint(distExtra[d]))
		}
		if r.err {
			return false
		}
	}
}
