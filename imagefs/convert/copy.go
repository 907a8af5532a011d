package convert

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/xpboot/xpboot/imagefs/blockdev"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// chunkSize is the unit of reading; a multiple of every zero unit.
const chunkSize = 4 << 20

// chunk is one piece of the source on its way to the output.
type chunk struct {
	off     int64
	n       int
	buf     []byte
	runs    [][2]int // non-zero runs, relative to off
	read    int64
	skipped int64
	err     error
}

// zeros is compared against to find zero runs.
var zeros = make([]byte, chunkSize)

func isZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

// readChunk fills buf with [off, off+n) of src, reading only what Extents
// does not report as a hole.
func readChunk(src blockdev.Device, off int64, n int, buf []byte) (read int64, hole bool, err error) {
	ext, err := src.Extents(off, int64(n))
	if err != nil {
		return 0, false, err
	}
	hole = true
	for _, e := range ext {
		if e.State != blockdev.Zero {
			hole = false
		}
	}
	if hole {
		return 0, true, nil
	}
	for _, e := range ext {
		b := buf[e.Off-off : e.Off-off+e.Len]
		if e.State == blockdev.Zero {
			clear(b)
			continue
		}
		if _, err := src.ReadAt(b, e.Off); err != nil {
			return read, false, err
		}
		read += e.Len
	}
	return read, false, nil
}

// copyDevice copies src into dst (at least as large), writing only the
// non-zero runs of unit bytes. Reader goroutines (one per core) read chunks
// and find their zero runs in parallel; this goroutine writes the chunks in
// order. readers+2 buffers bound the memory.
func copyDevice(ctx context.Context, src, dst blockdev.Device, unit int, sum *Summary, progress func(done, total int64)) error {
	total := src.Size()
	readers := max(2, runtime.GOMAXPROCS(0))
	free := make(chan []byte, readers+2)
	for range cap(free) {
		free <- make([]byte, chunkSize)
	}
	type slot struct {
		c    chunk
		done chan struct{}
	}
	work := make(chan *slot, readers)
	order := make(chan *slot, cap(free))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// The dispatcher hands out chunks in order, each with a buffer.
	wg.Go(func() {
		defer close(order)
		defer close(work)
		for off := int64(0); off < total; off += chunkSize {
			sl := &slot{c: chunk{off: off, n: int(min(chunkSize, total-off))}, done: make(chan struct{})}
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
				if c.err = cctx.Err(); c.err == nil {
					var hole bool
					c.read, hole, c.err = readChunk(src, c.off, c.n, c.buf)
					if hole {
						c.skipped = int64(c.n)
						c.runs = nil
					} else if c.err == nil {
						c.runs, c.skipped = zeroRuns(c.buf[:c.n], unit)
					}
				}
				close(sl.done)
			}
		})
	}
	var err error
	for sl := range order {
		<-sl.done
		c := &sl.c
		if err == nil && c.err != nil {
			err = fmt.Errorf("convert: reading %s at 0x%x: %w", sum.Input, c.off, c.err)
		}
		if err == nil {
			sum.BytesRead += c.read
			sum.BytesSkipped += c.skipped
			for _, r := range c.runs {
				if _, werr := dst.WriteAt(c.buf[r[0]:r[1]], c.off+int64(r[0])); werr != nil {
					err = fmt.Errorf("convert: writing %s: %w", sum.Output, werr)
					break
				}
				sum.BytesWritten += int64(r[1] - r[0])
			}
			if err == nil && progress != nil {
				progress(c.off+int64(c.n), total)
			}
		}
		if err != nil {
			cancel()
		}
		free <- c.buf
	}
	wg.Wait()
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
		for off := int64(0); off < total; off += chunkSize {
			n := int(min(chunkSize, total-off))
			r, hole, err := readChunk(src, off, n, buf)
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
