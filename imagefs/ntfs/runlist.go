package ntfs

// run is one extent of a non-resident attribute: length clusters at lcn,
// or a hole when lcn < 0.
type run struct {
	lcn, n int64
}

// decodeRuns decodes mapping pairs at b (starting at VCN low), checking
// that every run lies inside a volume of total clusters and that the pairs
// stay inside b. rec and off name the place for errors.
func decodeRuns(b []byte, low int64, total int64, rec int64, off int) ([]run, error) {
	var out []run
	lcn := int64(0)
	vcn := low
	for i := 0; i < len(b); {
		h := b[i]
		if h == 0 {
			return out, nil
		}
		ln, lo := int(h&0x0F), int(h>>4)
		if ln == 0 || ln > 8 || lo > 8 || i+1+ln+lo > len(b) {
			return nil, recErr(rec, off+i, "mapping pair header 0x%02x is invalid or runs past the attribute", h)
		}
		n := signed(b[i+1 : i+1+ln])
		if n <= 0 || n > total {
			return nil, recErr(rec, off+i, "run length %d is invalid", n)
		}
		r := run{lcn: -1, n: n}
		if lo > 0 {
			lcn += signed(b[i+1+ln : i+1+ln+lo])
			if lcn < 0 || lcn+n > total {
				return nil, recErr(rec, off+i, "run of %d clusters at LCN %d lies outside the volume (%d clusters)", n, lcn, total)
			}
			r.lcn = lcn
		}
		out = append(out, r)
		vcn += n
		if vcn > total*2 {
			return nil, recErr(rec, off+i, "runlist longer than the volume")
		}
		i += 1 + ln + lo
	}
	return nil, recErr(rec, off+len(b), "mapping pairs have no terminator")
}

func signed(b []byte) int64 {
	var v int64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	if len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		v -= 1 << (8 * len(b))
	}
	return v
}

// sigBytes is the number of bytes v needs as a signed little-endian value.
func sigBytes(v int64) int {
	n := 1
	for ; n < 8; n++ {
		lim := int64(1) << (8*n - 1)
		if v >= -lim && v < lim {
			break
		}
	}
	return n
}

// encodeRuns encodes runs as mapping pairs, terminator included.
func encodeRuns(runs []run) []byte {
	var out []byte
	prev := int64(0)
	for _, r := range runs {
		ln := sigBytes(r.n)
		lo := 0
		var delta int64
		if r.lcn >= 0 {
			delta = r.lcn - prev
			lo = sigBytes(delta)
			prev = r.lcn
		}
		out = append(out, byte(lo<<4|ln))
		for i := 0; i < ln; i++ {
			out = append(out, byte(r.n>>(8*i)))
		}
		for i := 0; i < lo; i++ {
			out = append(out, byte(delta>>(8*i)))
		}
	}
	return append(out, 0)
}

func runClusters(runs []run) int64 {
	var n int64
	for _, r := range runs {
		n += r.n
	}
	return n
}

// truncRuns keeps the first n clusters of runs and returns the kept runs
// and the cut-off ones.
func truncRuns(runs []run, n int64) (keep, cut []run) {
	for _, r := range runs {
		switch {
		case n <= 0:
			cut = append(cut, r)
		case r.n <= n:
			keep = append(keep, r)
			n -= r.n
		default:
			keep = append(keep, run{r.lcn, n})
			tail := run{-1, r.n - n}
			if r.lcn >= 0 {
				tail.lcn = r.lcn + n
			}
			cut = append(cut, tail)
			n = 0
		}
	}
	return keep, cut
}

// appendRuns appends add to runs, merging adjacent extents.
func appendRuns(runs []run, add ...run) []run {
	for _, r := range add {
		if k := len(runs); k > 0 && runs[k-1].lcn >= 0 && r.lcn == runs[k-1].lcn+runs[k-1].n {
			runs[k-1].n += r.n
			continue
		}
		runs = append(runs, r)
	}
	return runs
}

// setRuns rewrites the mapping pairs of the non-resident attribute a of
// record r (the record's other attributes move as needed) and its highest
// VCN and allocated size; size and init, unless negative, become its data
// and initialized sizes. It reports false, changing nothing, when the
// record has no room for the runlist: the caller says why that matters
// (an $ATTRIBUTE_LIST would be needed, which xpboot does not write).
func setRuns(r *record, a *attr, runs []run, csize, size, init int64) bool {
	enc := encodeRuns(runs)
	ro := a.runsOff - a.off
	n := align8(ro + len(enc))
	if n != a.length && !r.resizeAttr(a.off, n) {
		return false
	}
	clear(r.b[a.runsOff : a.off+n])
	copy(r.b[a.runsOff:], enc)
	clusters := runClusters(runs)
	put64(r.b, a.off+0x18, uint64(clusters-1))
	put64(r.b, a.off+0x28, uint64(clusters*csize))
	if size >= 0 {
		put64(r.b, a.off+0x30, uint64(size))
	}
	if init >= 0 {
		put64(r.b, a.off+0x38, uint64(init))
	}
	return true
}
