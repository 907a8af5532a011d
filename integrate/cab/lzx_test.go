package cab

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// This file holds a small LZX compressor, for tests only: no LZX
// compressor is packaged for Debian, and the corpus's LZX cabinets are a
// few hundred bytes. It produces every construct the decoder must handle
// — verbatim, aligned and uncompressed blocks, blocks spanning 32 KiB
// frames (and so CFDATA blocks), the three repeated offsets, every
// pretree code (plain deltas, 17, 18, 19), the length tree, E8
// translation — so that cabextract and this package can be compared on
// the same streams.

type lzxBitWriter struct {
	out []byte
	acc uint32
	n   uint
}

func (w *lzxBitWriter) bits(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.n++
		if w.n == 16 {
			w.out = append(w.out, byte(w.acc), byte(w.acc>>8))
			w.acc, w.n = 0, 0
		}
	}
}

func (w *lzxBitWriter) align() {
	if w.n > 0 {
		w.bits(0, 16-w.n)
	}
}

type lzxCode struct {
	lens  []uint8
	codes []uint32
}

func canonical(lens []uint8) lzxCode {
	c := lzxCode{lens: lens, codes: make([]uint32, len(lens))}
	code := uint32(0)
	for l := uint8(1); l <= 16; l++ {
		for s, sl := range lens {
			if sl == l {
				c.codes[s] = code
				code++
			}
		}
		code <<= 1
	}
	return c
}

func (w *lzxBitWriter) sym(c lzxCode, s int) {
	if c.lens[s] == 0 {
		panic(fmt.Sprintf("symbol %d has no code", s))
	}
	w.bits(c.codes[s], uint(c.lens[s]))
}

type hnode struct {
	w     int
	sym   int
	left  *hnode
	right *hnode
}
type hheap []*hnode

func (h hheap) Len() int           { return len(h) }
func (h hheap) Less(i, j int) bool { return h[i].w < h[j].w || h[i].w == h[j].w && h[i].sym < h[j].sym }
func (h hheap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hheap) Push(x any)        { *h = append(*h, x.(*hnode)) }
func (h *hheap) Pop() any          { o := *h; x := o[len(o)-1]; *h = o[:len(o)-1]; return x }
func huffDepth(n *hnode, d uint8, l []uint8) {
	if n.left == nil {
		l[n.sym] = d
		return
	}
	huffDepth(n.left, d+1, l)
	huffDepth(n.right, d+1, l)
}

// huffLengths returns complete code lengths (≤ maxLen) for freq; a
// single used symbol gets a partner, none gives an empty code.
func huffLengths(freq []int, maxLen uint8) []uint8 {
	f := append([]int(nil), freq...)
	used := 0
	for _, x := range f {
		if x > 0 {
			used++
		}
	}
	if used == 0 {
		return make([]uint8, len(f))
	}
	if used == 1 {
		for i := range f {
			if f[i] == 0 {
				f[i] = 1
				break
			}
		}
	}
	for {
		h := &hheap{}
		for s, x := range f {
			if x > 0 {
				*h = append(*h, &hnode{w: x, sym: s})
			}
		}
		heap.Init(h)
		seq := len(f)
		for h.Len() > 1 {
			a, b := heap.Pop(h).(*hnode), heap.Pop(h).(*hnode)
			heap.Push(h, &hnode{w: a.w + b.w, sym: seq, left: a, right: b})
			seq++
		}
		l := make([]uint8, len(f))
		huffDepth((*h)[0], 0, l)
		ok := true
		for _, d := range l {
			if d > maxLen {
				ok = false
			}
		}
		if ok {
			return l
		}
		for i := range f {
			if f[i] > 0 {
				f[i] = f[i]/2 + 1
			}
		}
	}
}

type lzxToken struct {
	lit      byte
	length   int // 0: literal
	slot     int
	extra    uint32
	extraLen uint
}

type lzxEncoder struct {
	w          lzxBitWriter
	window     int
	slots      int
	mainPrev   []uint8
	lenPrev    []uint8
	r          [3]uint32
	data       []byte // E8-translated input
	pos        int
	frameEnds  []int
	head       map[uint32][]int
	cross      bool // let matches run across frame boundaries
	pretreeLen []uint8
	pre        lzxCode
}

func newLZXEncoder(windowBits int, data []byte) *lzxEncoder {
	e := &lzxEncoder{window: 1 << windowBits, slots: lzxPositionSlots[windowBits], data: data, head: map[uint32][]int{}}
	e.mainPrev = make([]uint8, 256+e.slots*8)
	e.lenPrev = make([]uint8, lzxLengthNum)
	e.r = [3]uint32{1, 1, 1}
	e.pretreeLen = make([]uint8, 20)
	for i := range e.pretreeLen {
		e.pretreeLen[i] = 4
		if i >= 12 {
			e.pretreeLen[i] = 5
		}
	}
	e.pre = canonical(e.pretreeLen)
	return e
}

func (e *lzxEncoder) frameEnd(p int) int { return (p/32768 + 1) * 32768 }

func (e *lzxEncoder) insert(p int) {
	if p+3 <= len(e.data) {
		k := uint32(e.data[p]) | uint32(e.data[p+1])<<8 | uint32(e.data[p+2])<<16
		e.head[k] = append(e.head[k], p)
	}
}

func (e *lzxEncoder) matchLen(p, off, max int) int {
	n := 0
	for n < max && e.data[p+n] == e.data[p+n-off] {
		n++
	}
	return n
}

// tokens tokenizes data[start:end], updating the repeated offsets.
func (e *lzxEncoder) tokens(start, end int, aligned bool) []lzxToken {
	var out []lzxToken
	for p := start; p < end; {
		max := min(257, end-p, e.frameEnd(p)-p)
		if e.cross {
			max = min(257, end-p)
		}
		bestLen, bestOff := 0, 0
		for _, off := range e.r {
			if int(off) <= p && int(off) <= e.window-3 {
				if n := e.matchLen(p, int(off), max); n > bestLen {
					bestLen, bestOff = n, int(off)
				}
			}
		}
		if p+3 <= len(e.data) {
			k := uint32(e.data[p]) | uint32(e.data[p+1])<<8 | uint32(e.data[p+2])<<16
			c := e.head[k]
			for i, tries := len(c)-1, 0; i >= 0 && tries < 48; i, tries = i-1, tries+1 {
				off := p - c[i]
				if off > e.window-3 {
					break
				}
				if n := e.matchLen(p, off, max); n > bestLen+1 {
					bestLen, bestOff = n, off
				}
			}
		}
		if bestLen < 3 {
			out = append(out, lzxToken{lit: e.data[p]})
			e.insert(p)
			p++
			continue
		}
		t := lzxToken{length: bestLen}
		switch uint32(bestOff) {
		case e.r[0]:
			t.slot = 0
		case e.r[1]:
			t.slot = 1
			e.r[0], e.r[1] = e.r[1], e.r[0]
		case e.r[2]:
			t.slot = 2
			e.r[0], e.r[2] = e.r[2], e.r[0]
		default:
			f := uint32(bestOff + 2)
			s := 3
			for s+1 < e.slots && lzxPositionBase[s+1] <= f {
				s++
			}
			t.slot, t.extra, t.extraLen = s, f-lzxPositionBase[s], uint(lzxExtraBits[s])
			e.r[2], e.r[1], e.r[0] = e.r[1], e.r[0], uint32(bestOff)
		}
		out = append(out, t)
		for i := 0; i < bestLen; i++ {
			e.insert(p + i)
		}
		p += bestLen
	}
	return out
}

// writeLengths writes lens[first:last] through the fixed pretree.
func (e *lzxEncoder) writeLengths(lens, prev []uint8, first, last int) {
	for _, l := range e.pretreeLen {
		e.w.bits(uint32(l), 4)
	}
	for x := first; x < last; {
		run := 1
		for x+run < last && lens[x+run] == lens[x] {
			run++
		}
		switch {
		case lens[x] == 0 && run >= 20:
			n := min(run, 51)
			e.w.sym(e.pre, 18)
			e.w.bits(uint32(n-20), 5)
			x += n
		case lens[x] == 0 && run >= 4:
			n := min(run, 19)
			e.w.sym(e.pre, 17)
			e.w.bits(uint32(n-4), 4)
			x += n
		case run >= 4:
			n := min(run, 5)
			e.w.sym(e.pre, 19)
			e.w.bits(uint32(n-4), 1)
			e.w.sym(e.pre, (int(prev[x])-int(lens[x])+17)%17)
			x += n
		default:
			e.w.sym(e.pre, (int(prev[x])-int(lens[x])+17)%17)
			x++
		}
	}
}

func (e *lzxEncoder) advance(n int) {
	for ; n > 0; n-- {
		e.pos++
		if e.pos%32768 == 0 || e.pos == len(e.data) {
			e.w.align()
			e.frameEnds = append(e.frameEnds, len(e.w.out))
		}
	}
}

func (e *lzxEncoder) block(typ, size int) {
	start, end := e.pos, e.pos+size
	e.w.bits(uint32(typ), 3)
	e.w.bits(uint32(size>>8), 16)
	e.w.bits(uint32(size&0xff), 8)
	if typ == lzxBlockUncomp {
		if e.w.n == 0 {
			e.w.bits(0, 16)
		} else {
			e.w.align()
		}
		for _, r := range e.r {
			e.w.out = binary.LittleEndian.AppendUint32(e.w.out, r)
		}
		for p := start; p < end; p++ {
			e.w.out = append(e.w.out, e.data[p])
			e.insert(p)
			e.advance(1)
		}
		if size&1 != 0 {
			e.w.out = append(e.w.out, 0)
		}
		return
	}
	toks := e.tokens(start, end, typ == lzxBlockAligned)
	mainFreq := make([]int, len(e.mainPrev))
	lenFreq := make([]int, lzxLengthNum)
	for _, t := range toks {
		if t.length == 0 {
			mainFreq[t.lit]++
			continue
		}
		h := min(t.length-2, 7)
		mainFreq[256+t.slot*8+h]++
		if h == 7 {
			lenFreq[t.length-9]++
		}
	}
	mainLens := huffLengths(mainFreq, 16)
	lenLens := huffLengths(lenFreq, 16)
	if typ == lzxBlockAligned {
		for i := 0; i < 8; i++ {
			e.w.bits(3, 3)
		}
	}
	e.writeLengths(mainLens, e.mainPrev, 0, 256)
	e.writeLengths(mainLens, e.mainPrev, 256, len(mainLens))
	e.writeLengths(lenLens, e.lenPrev, 0, lzxLengthNum)
	e.mainPrev, e.lenPrev = mainLens, lenLens
	mc, lc := canonical(mainLens), canonical(lenLens)
	for _, t := range toks {
		if t.length == 0 {
			e.w.sym(mc, int(t.lit))
			e.advance(1)
			continue
		}
		h := min(t.length-2, 7)
		e.w.sym(mc, 256+t.slot*8+h)
		if h == 7 {
			e.w.sym(lc, t.length-9)
		}
		if t.slot >= 3 {
			if typ == lzxBlockAligned && t.extraLen >= 3 {
				e.w.bits(t.extra>>3, t.extraLen-3)
				e.w.bits(t.extra&7, 3) // aligned tree: all lengths 3, code = symbol
			} else {
				e.w.bits(t.extra, t.extraLen)
			}
		}
		e.advance(t.length)
	}
}

// e8Encode applies the compressor's E8 translation per frame and checks
// that e8undo reverses it.
func e8Encode(t *testing.T, data []byte, size int32) []byte {
	out := bytes.Clone(data)
	for fs := 0; fs < len(out); fs += 32768 {
		fr := out[fs:min(fs+32768, len(out))]
		for i := 0; i < len(fr)-10; {
			if fr[i] != 0xe8 {
				i++
				continue
			}
			rel := int32(binary.LittleEndian.Uint32(fr[i+1:]))
			cur := int32(fs + i)
			if a := rel + cur; a >= 0 && a < size {
				binary.LittleEndian.PutUint32(fr[i+1:], uint32(a))
			} else if a := rel - size; a >= -cur && a < 0 {
				binary.LittleEndian.PutUint32(fr[i+1:], uint32(a))
			}
			i += 5
		}
		chk := bytes.Clone(fr)
		e8undo(chk, int32(fs), size)
		if !bytes.Equal(chk, data[fs:fs+len(fr)]) {
			t.Fatalf("test data: E8 translation of frame at %d does not round-trip", fs)
		}
	}
	return out
}

// lzxCabinet compresses data into a one-file LZX cabinet.
func lzxCabinet(t *testing.T, windowBits int, data []byte, e8 bool, plan [][2]int) []byte {
	return lzxCabinetOpt(t, windowBits, data, e8, plan, false)
}

func lzxCabinetOpt(t *testing.T, windowBits int, data []byte, e8 bool, plan [][2]int, cross bool) []byte {
	input := data
	if e8 {
		input = e8Encode(t, data, int32(len(data)))
	}
	e := newLZXEncoder(windowBits, input)
	e.cross = cross
	if e8 {
		e.w.bits(1, 1)
		e.w.bits(uint32(len(data))>>16, 16)
		e.w.bits(uint32(len(data))&0xffff, 16)
	} else {
		e.w.bits(0, 1)
	}
	left := len(data)
	for i := 0; left > 0; i++ {
		p := plan[i%len(plan)]
		n := min(p[1], left)
		e.block(p[0], n)
		left -= n
	}
	// CFDATA blocks: one per frame.
	var blocks bytes.Buffer
	prev := 0
	for i, end := range e.frameEnds {
		payload := e.w.out[prev:end]
		if i == len(e.frameEnds)-1 {
			payload = e.w.out[prev:] // with a trailing pad byte, if any
		}
		prev = end
		unc := min(32768, len(data)-i*32768)
		var h [8]byte
		binary.LittleEndian.PutUint16(h[4:], uint16(len(payload)))
		binary.LittleEndian.PutUint16(h[6:], uint16(unc))
		binary.LittleEndian.PutUint32(h[:], checksum(h[4:8], checksum(payload, 0)))
		blocks.Write(h[:])
		blocks.Write(payload)
	}
	name := "lzx.bin"
	coffFiles := headerSize + folderSize
	coffData := coffFiles + fileEntrySize + len(name) + 1
	var c bytes.Buffer
	le := binary.LittleEndian
	var h [headerSize + folderSize + fileEntrySize]byte
	copy(h[:], "MSCF")
	le.PutUint32(h[8:], uint32(coffData+blocks.Len()))
	le.PutUint32(h[16:], uint32(coffFiles))
	h[24], h[25] = 3, 1
	le.PutUint16(h[26:], 1)
	le.PutUint16(h[28:], 1)
	le.PutUint32(h[36:], uint32(coffData))
	le.PutUint16(h[40:], uint16(len(e.frameEnds)))
	le.PutUint16(h[42:], uint16(LZX)|uint16(windowBits)<<8)
	le.PutUint32(h[44:], uint32(len(data)))
	le.PutUint16(h[54:], 0x3021) // 2004-01-01
	le.PutUint16(h[58:], AttrArchive)
	c.Write(h[:])
	c.WriteString(name + "\x00")
	c.Write(blocks.Bytes())
	return c.Bytes()
}

// lzxTestData mixes text, E8 calls with in-file targets, noise and long
// repeats.
func lzxTestData(n int) []byte {
	var b bytes.Buffer
	x := uint32(7)
	rnd := func() uint32 { x = x*1664525 + 1013904223; return x >> 8 }
	for i := 0; b.Len() < n; i++ {
		switch rnd() % 6 {
		case 0:
			fmt.Fprintf(&b, "HKR,Ndi\\params\\Param%d,ParamDesc,0,\"Parameter %d\"\r\n", rnd()%50, i)
		case 1:
			for k := 0; k < 20; k++ {
				pos := b.Len()
				b.WriteByte(0xe8)
				rel := int32(rnd()%4096) - 2048
				if k%4 == 3 {
					// a target past the end of the file: stored as a
					// negative absolute address
					rel = int32(n-pos) + int32(rnd()%64)
				}
				binary.Write(&b, binary.LittleEndian, rel)
				b.WriteString("\x90\x55")
			}
		case 2:
			for k := 0; k < 300; k++ {
				b.WriteByte(byte(rnd()))
			}
		case 3:
			if b.Len() > 70000 {
				// a far repeat, beyond the smallest window
				b.Write(bytes.Clone(b.Bytes()[b.Len()-66000 : b.Len()-65000]))
			}
		case 4:
			b.Write(bytes.Repeat([]byte{'A' + byte(rnd()%3)}, int(rnd()%600)))
		default:
			b.WriteString("The quick brown fox jumps over the lazy dog. ")
		}
	}
	return b.Bytes()[:n]
}

// TestLZXAgainstCabextract compresses test data with every window size,
// block type mix and E8 translation on and off, and checks that this
// package and cabextract both restore it byte for byte.
func TestLZXAgainstCabextract(t *testing.T) {
	peertest.Need(t, "cabextract", "cabextract")
	data := lzxTestData(170_000)
	plans := map[string][][2]int{
		"verbatim":     {{lzxBlockVerb, 40000}},
		"aligned":      {{lzxBlockAligned, 70001}},
		"uncompressed": {{lzxBlockUncomp, 30001}},
		"mixed":        {{lzxBlockVerb, 20000}, {lzxBlockAligned, 45003}, {lzxBlockUncomp, 9999}, {lzxBlockAligned, 3}, {lzxBlockVerb, 33000}, {lzxBlockUncomp, 32768}},
	}
	var names []string
	for k := range plans {
		names = append(names, k)
	}
	sort.Strings(names)
	dir := t.TempDir()
	for wb := 15; wb <= 21; wb++ {
		for _, pn := range names {
			for _, e8 := range []bool{false, true} {
				if wb != 16 && wb != 21 && (pn != "mixed" || !e8) {
					continue // keep the run short: every window with the mixed plan
				}
				name := fmt.Sprintf("w%d-%s-e8=%v", wb, pn, e8)
				t.Run(name, func(t *testing.T) {
					cab := lzxCabinet(t, wb, data, e8, plans[pn])
					got, err := extractAllBytes(cab)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got["lzx.bin"], data) {
						t.Fatalf("own reader: output differs")
					}
					path := filepath.Join(dir, name+".cab")
					os.WriteFile(path, cab, 0o644)
					out := filepath.Join(dir, name)
					peertest.Run(t, 60*time.Second, "cabextract", "-q", "-d", out, path)
					ce, err := os.ReadFile(filepath.Join(out, "lzx.bin"))
					if err != nil || !bytes.Equal(ce, data) {
						t.Fatalf("cabextract output differs (%v)", err)
					}
				})
			}
		}
	}
}

// TestLZXCorrupt damages an LZX stream at many places: errors or wrong
// data, never a panic or a hang.
func TestLZXCorrupt(t *testing.T) {
	data := lzxTestData(70_000)
	good := lzxCabinet(t, 16, data, true, [][2]int{{lzxBlockVerb, 20000}, {lzxBlockAligned, 30000}, {lzxBlockUncomp, 9999}})
	for off := 70; off < len(good); off += 97 {
		bad := messWith(good, func(b []byte) { b[off] ^= 0x5a })
		r, err := NewReader(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			continue
		}
		fr, err := r.newFolderReader(r.Folder[0])
		if err != nil {
			continue
		}
		for i := range fr.blocks {
			fr.blocks[i].csum = 0 // let the damage reach the decoder
		}
		withDeadline(t, 10*time.Second, func() {
			for {
				if err := fr.decodeNext(); err != nil {
					break
				}
			}
		})
	}
}

// TestLZXMatchAcrossFrames lets matches run across 32 KiB frame
// boundaries (the block goes on): the next frame starts where the frame
// ended, with the match's tail already in the window, also with the
// smallest window, where a frame fills it. libmspack refuses such streams,
// so only this reader is checked.
func TestLZXMatchAcrossFrames(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz!"), 3000) // 111 000 bytes
	for _, wb := range []int{15, 17} {
		cab := lzxCabinetOpt(t, wb, data, false, [][2]int{{lzxBlockVerb, 60000}, {lzxBlockAligned, 60000}}, true)
		got, err := extractAllBytes(cab)
		if err != nil {
			t.Fatalf("window %d: %v", wb, err)
		}
		if !bytes.Equal(got["lzx.bin"], data) {
			t.Fatalf("window %d: output differs", wb)
		}
	}
}
