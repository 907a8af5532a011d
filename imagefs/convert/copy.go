package convert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// chunkSize is the largest unit of reading; a multiple of every zero unit.
const chunkSize = 4 << 20

// rawChunkSize is the unit of reading and writing when the output is a
// plain file (raw, flat VMDK, fixed VHD), qemu-img convert's: 2 MiB pieces
// keep more of the buffer in the CPU caches between pread, the zero scan and
// pwrite than 4 MiB ones (measured on 2 vCPUs: best of three 0.36 s against
// 0.44 s for an 8 GiB raw image with 1 GiB of data; 1 MiB was no faster,
// 256 KiB slower).
const rawChunkSize = 2 << 20

// mapWindow is how much of the source one Extents call describes: the
// extent map is walked once per conversion, a window at a time, instead of
// once per chunk (a SEEK_DATA/SEEK_HOLE pair for every 4 MiB of a raw
// source).
const mapWindow = 1 << 30

// chunk is one piece of the source on its way to the output.
type chunk struct {
	off     int64
	n       int
	ext     []blockdev.Extent // how [off, off+n) is stored
	buf     []byte
	runs    [][2]int // non-zero runs, relative to off
	read    int64
	skipped int64
	err     error
}

// zeros is compared against to find zero runs. An array, not a slice made
// at start-up: it costs nothing until a conversion reads it (every xpboot
// command paid a 4 MiB allocation and a GC cycle for it).
var zeros [chunkSize]byte

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// extentMap walks the extents of a device in ascending order, asking the
// device for mapWindow bytes at a time.
type extentMap struct {
	dev  blockdev.Device
	ext  []blockdev.Extent // mapped extents not yet passed
	end  int64             // end of the mapped range
	size int64
}

func newExtentMap(dev blockdev.Device) *extentMap {
	return &extentMap{dev: dev, size: dev.Size()}
}

// next returns the extents of [off, off+n), clipped to it, and whether they
// are all Zero. Calls must ascend and not overlap.
func (m *extentMap) next(off int64, n int) (ext []blockdev.Extent, hole bool, err error) {
	end := off + int64(n)
	hole = true
	for off < end {
		for len(m.ext) > 0 && m.ext[0].Off+m.ext[0].Len <= off {
			m.ext = m.ext[1:]
		}
		if len(m.ext) == 0 {
			if m.end < off {
				m.end = off
			}
			if m.end >= m.size {
				return nil, false, fmt.Errorf("extent map ends at 0x%x", m.end)
			}
			e, err := m.dev.Extents(m.end, min(mapWindow, m.size-m.end))
			if err != nil {
				return nil, false, err
			}
			if len(e) == 0 || e[0].Off != m.end {
				return nil, false, fmt.Errorf("extent map of 0x%x does not start there", m.end)
			}
			last := e[len(e)-1]
			m.ext, m.end = e, last.Off+last.Len
			if m.end <= e[0].Off {
				return nil, false, fmt.Errorf("empty extent map at 0x%x", e[0].Off)
			}
			continue
		}
		e := m.ext[0]
		lo, hi := max(e.Off, off), min(e.Off+e.Len, end)
		ext = append(ext, blockdev.Extent{Off: lo, Len: hi - lo, State: e.State})
		if e.State != blockdev.Zero {
			hole = false
		}
		off = hi
	}
	return ext, hole, nil
}

// readChunk fills buf with [off, off+len(buf)) of src, described by ext,
// reading only what is not Zero.
func readChunk(src blockdev.Device, off int64, ext []blockdev.Extent, buf []byte) (read int64, err error) {
	for _, e := range ext {
		b := buf[e.Off-off : e.Off-off+e.Len]
		if e.State == blockdev.Zero {
			clear(b)
			continue
		}
		if _, err := src.ReadAt(b, e.Off); err != nil {
			return read, err
		}
		read += e.Len
	}
	return read, nil
}

// copyDevice copies src into dst (at least as large), writing only the
// non-zero runs of unit bytes, in pieces of size bytes (a multiple of unit,
// at most chunkSize). This goroutine walks the extent map once and hands out
// the chunks that are not holes; reader goroutines (one per core) read them
// and find their zero runs in parallel; this goroutine writes them in
// order. readers+2 buffers bound the memory.
func copyDevice(ctx context.Context, src, dst blockdev.Device, unit, size int, sum *Summary, progress func(done, total int64)) error {
	total := src.Size()
	readers := max(2, runtime.GOMAXPROCS(0))
	free := make(chan []byte, readers+2)
	for range cap(free) {
		free <- make([]byte, size)
	}
	type slot struct {
		c    chunk
		hole bool
		done chan struct{}
	}
	work := make(chan *slot, readers)
	order := make(chan *slot, cap(free))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// The dispatcher hands out chunks in order, each with a buffer; holes
	// go straight to the writer, without a buffer.
	wg.Go(func() {
		defer close(order)
		defer close(work)
		m := newExtentMap(src)
		for off := int64(0); off < total; off += int64(size) {
			sl := &slot{c: chunk{off: off, n: int(min(int64(size), total-off))}, done: make(chan struct{})}
			var err error
			sl.c.ext, sl.hole, err = m.next(off, sl.c.n)
			if err == nil {
				err = cctx.Err()
			}
			if err != nil || sl.hole {
				sl.c.err = err
				close(sl.done)
				select {
				case order <- sl:
				case <-cctx.Done():
					return
				}
				if err != nil {
					return
				}
				continue
			}
			select {
			case sl.c.buf = <-free:
			case <-cctx.Done():
				return
			}
			order <- sl // capacity: one per buffer
			work <- sl
		}
	})
	for range readers {
		wg.Go(func() {
			for sl := range work {
				c := &sl.c
				buf := c.buf[:c.n]
				if c.err = cctx.Err(); c.err == nil {
					c.read, c.err = readChunk(src, c.off, c.ext, buf)
					if c.err == nil {
						c.runs, c.skipped = zeroRuns(buf, unit)
					}
				}
				close(sl.done)
			}
		})
	}
	var err error
	lastProgress := int64(-1)
	for sl := range order {
		<-sl.done
		c := &sl.c
		if err == nil && c.err != nil {
			err = fmt.Errorf("convert: reading %s at 0x%x: %w", sum.Input, c.off, c.err)
		}
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			if sl.hole {
				c.skipped = int64(c.n)
			}
			sum.BytesRead += c.read
			sum.BytesSkipped += c.skipped
			for _, r := range c.runs {
				if _, werr := dst.WriteAt(c.buf[r[0]:r[1]], c.off+int64(r[0])); werr != nil {
					err = fmt.Errorf("convert: writing %s: %w", sum.Output, werr)
					break
				}
				sum.BytesWritten += int64(r[1] - r[0])
			}
			// Report about every 4 MiB, and the end.
			if done := c.off + int64(c.n); err == nil && progress != nil && (done/chunkSize != lastProgress || done == total) {
				lastProgress = done / chunkSize
				progress(done, total)
			}
		}
		if err != nil {
			cancel()
		}
		if c.buf != nil {
			free <- c.buf
		}
	}
	wg.Wait()
	if err == nil {
		// The dispatcher stops early only when cancelled.
		err = ctx.Err()
	}
	return err
}

// zeroRuns returns the runs of b that are not all zeros, in units of unit
// bytes (the last may be shorter), and the number of zero bytes skipped.
func zeroRuns(b []byte, unit int) (runs [][2]int, skipped int64) {
	for u := 0; u < len(b); u += unit {
		ue := min(u+unit, len(b))
		if isZero(b[u:ue]) {
			skipped += int64(ue - u)
			continue
		}
		if r := len(runs); r > 0 && runs[r-1][1] == u {
			runs[r-1][1] = ue
		} else {
			runs = append(runs, [2]int{u, ue})
		}
	}
	return runs, skipped
}

// grainJob is one grain on its way through the compressors.
type grainJob struct {
	index int64
	data  []byte // the full grain, zero-padded
	z     []byte // its zlib stream
	err   error
	done  chan struct{}
}

// copyStream writes src as a streamOptimized VMDK to w: a reader goroutine
// cuts the source into grains and drops zero ones, workers deflate them in
// parallel, and this goroutine writes them in order. The order queue bounds
// the grains in flight.
func copyStream(ctx context.Context, src blockdev.Device, w io.Writer, sum *Summary, opts Options) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	level := opts.Level
	if level == 0 {
		level = 6
	}
	if level < 1 || level > 9 {
		return fmt.Errorf("convert: deflate level %d, want 1 to 9", level)
	}
	sw, err := vmdk.NewStreamWriter(w, sum.OutputSize, &vmdk.CreateOptions{AdapterType: opts.Adapter, StreamName: filepath.Base(sum.Output)})
	if err != nil {
		return err
	}
	const grain = vmdk.DefaultGrainSectors * 512
	total := src.Size()
	inflight := 8 * workers
	pool := make(chan *grainJob, inflight+2*workers+1)
	for range cap(pool) {
		pool <- &grainJob{data: make([]byte, grain)}
	}
	jobs := make(chan *grainJob, 2*workers)
	order := make(chan *grainJob, inflight)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var readErr error
	var read, skipped int64
	wg.Go(func() {
		defer close(order)
		defer close(jobs)
		buf := make([]byte, chunkSize)
		m := newExtentMap(src)
		for off := int64(0); off < total; off += chunkSize {
			n := int(min(chunkSize, total-off))
			ext, hole, err := m.next(off, n)
			var r int64
			if err == nil && !hole {
				r, err = readChunk(src, off, ext, buf[:n])
			}
			if err == nil {
				err = cctx.Err()
			}
			if err != nil {
				readErr = fmt.Errorf("convert: reading %s at 0x%x: %w", sum.Input, off, err)
				return
			}
			read += r
			if hole {
				skipped += int64(n)
				continue
			}
			for g := 0; g < n; g += grain {
				ge := min(g+grain, n)
				if isZero(buf[g:ge]) {
					skipped += int64(ge - g)
					continue
				}
				var j *grainJob
				select {
				case j = <-pool:
				case <-cctx.Done():
					return
				}
				j.index = (off + int64(g)) / grain
				copy(j.data, buf[g:ge])
				clear(j.data[ge-g:])
				j.done = make(chan struct{})
				select {
				case order <- j:
				case <-cctx.Done():
					return
				}
				jobs <- j // never blocks for long: workers drain it
			}
		}
	})
	for range workers {
		wg.Go(func() {
			c, err := vmdk.NewGrainCompressor(level)
			for j := range jobs {
				if err != nil {
					j.err = err
				} else {
					var z []byte
					z, j.err = c.Compress(j.data)
					j.z = append(j.z[:0], z...)
				}
				close(j.done)
			}
		})
	}
	var werr error
	for j := range order {
		<-j.done
		if werr == nil {
			werr = j.err
		}
		if werr == nil {
			if werr = sw.WriteGrain(j.index, j.z); werr == nil {
				sum.BytesWritten += min(grain, total-j.index*grain)
				if opts.Progress != nil && j.index%64 == 0 {
					opts.Progress(min(total, (j.index+1)*grain), total)
				}
			}
		}
		if werr != nil {
			cancel()
		}
		pool <- j
	}
	wg.Wait()
	if werr != nil {
		return fmt.Errorf("convert: writing %s: %w", sum.Output, werr)
	}
	if readErr != nil {
		return readErr
	}
	if err := ctx.Err(); err != nil {
		// The reader stops early only when cancelled.
		return err
	}
	sum.BytesRead += read
	sum.BytesSkipped += skipped
	if err := sw.Close(); err != nil {
		return fmt.Errorf("convert: writing %s: %w", sum.Output, err)
	}
	if opts.Progress != nil {
		opts.Progress(total, total)
	}
	return nil
}
