package convert

import (
	"context"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

// Errors for errors.Is.
var (
	// ErrExists reports an output that exists while Options.Force is off.
	// It is imagefs.ErrExists, so errors.Is matches either name.
	ErrExists = imagefs.ErrExists
	// ErrSize reports a size the output format cannot hold exactly while
	// Options.Exact is on (or, for CreateDevice, always).
	ErrSize = errors.New("convert: size not representable exactly")
	// ErrStreamOnly reports a request for a writable streamOptimized
	// device; that format is only written by Convert.
	ErrStreamOnly = errors.New("convert: streamOptimized VMDK is written only by Convert")
)

// Options controls Convert.
type Options struct {
	// To is the output format; "" means imagefs.FormatRaw.
	To imagefs.Format
	// Exact refuses any change of the virtual size (VHD CHS rounding,
	// rounding to whole sectors) instead of rounding up with a notice.
	Exact bool
	// Force replaces an existing output, even one that delta or
	// differencing disks depend on (they are named in a warning).
	Force bool
	// Adapter is the VMDK ddb.adapterType: "ide" (default), "lsilogic" or
	// "buslogic".
	Adapter string
	// Level is the deflate level of streamOptimized grains, 1 to 9; 0
	// means 6, zlib's default, which qemu uses.
	Level int
	// Workers is the number of compressing goroutines for
	// streamOptimized; 0 means runtime.GOMAXPROCS(0).
	Workers int
	// Sync makes the output durable (fsync of the files, then of the
	// directory after the rename). Off by default: like qemu-img convert
	// and cp, the output then reaches the disk when the kernel writes it
	// back; the rename still makes it appear complete or not at all.
	Sync bool
	// Progress, if set, is called from one goroutine with the bytes of the
	// source processed so far and the source size.
	Progress func(done, total int64)
	// Log receives notices (size rounding, replaced base disks); nil
	// discards them.
	Log *slog.Logger
	// SkipFree reads only what the file systems of the source use (see
	// skipfree.go and docs/convert.md): free clusters of FAT32 and NTFS
	// partitions become holes; everything else is copied. The source must
	// not change meanwhile (ErrSourceChanged), and a source block device
	// must not be mounted (ErrInUse).
	SkipFree bool
	// ForceShare opens the source without its lock and, with SkipFree,
	// copies a block device in use and keeps a copy whose source changed,
	// with a notice.
	ForceShare bool
}

// Summary reports what a conversion did; it is the --json output of
// image convert.
type Summary struct {
	Input        string         `json:"input"`
	Output       string         `json:"output"`
	InputFormat  imagefs.Format `json:"input_format"`
	OutputFormat imagefs.Format `json:"output_format"`
	InputSize    int64          `json:"input_size"`    // virtual size of the source
	OutputSize   int64          `json:"output_size"`   // virtual size of the output
	BytesRead    int64          `json:"bytes_read"`    // source bytes read (holes are not read)
	BytesWritten int64          `json:"bytes_written"` // disk bytes stored in the output, before compression
	BytesSkipped int64          `json:"bytes_skipped"` // source bytes not stored: holes and zero runs
	FileBytes    int64          `json:"file_bytes"`    // space the output file(s) occupy on disk
	Notices      []string       `json:"notices,omitempty"`
	Seconds      float64        `json:"seconds"`
	// Partitions says how each partition was read, with SkipFree.
	Partitions []PartitionCapture `json:"partitions,omitempty"`
}

// OutputSize returns the virtual size an image of format to gets for a
// source of size bytes, with a notice for every change: VMDK and VHD sizes
// are whole sectors, VHD sizes are rounded up to C×H×S×512 (see
// vhd.RoundSize). With exact, any change is an ErrSize error instead.
func OutputSize(to imagefs.Format, size int64, exact bool) (int64, []string, error) {
	if size <= 0 {
		return 0, nil, fmt.Errorf("convert: image size %d is not positive", size)
	}
	out := size
	var notices []string
	switch {
	case to == imagefs.FormatRaw:
	case to.IsVMDK():
		out = (size + 511) / 512 * 512
		if out > vmdk.MaxSize {
			return 0, nil, fmt.Errorf("convert: size %d exceeds the VMDK limit of %d bytes", size, int64(vmdk.MaxSize))
		}
		if out != size {
			notices = append(notices, fmt.Sprintf("size %d is not a multiple of 512: the VMDK is %d bytes (rounded up)", size, out))
		}
	case to.IsVHD():
		var ok bool
		out, ok = vhd.RoundSize(size)
		if out > vhd.MaxSize {
			return 0, nil, fmt.Errorf("convert: size %d exceeds the VHD limit of %d bytes", size, int64(vhd.MaxSize))
		}
		if !ok {
			notices = append(notices, fmt.Sprintf("size %d is not a VHD CHS size: the VHD is %d bytes (rounded up to geometry %v so that every VHD reader agrees)", size, out, vhd.CHS(out/512)))
		}
	default:
		return 0, nil, fmt.Errorf("convert: cannot write format %q", to)
	}
	if exact && out != size {
		return 0, nil, fmt.Errorf("%w: %s", ErrSize, notices[0])
	}
	return out, notices, nil
}

// CreateOptions tunes CreateDevice.
type CreateOptions struct {
	// Adapter is the VMDK ddb.adapterType: "ide" (default), "lsilogic"
	// or "buslogic".
	Adapter string

	flatPath, flatName string // monolithicFlat data file, set by Convert
}

// CreateDevice creates a new, empty image of the given format and size at
// path (which must not exist) and returns it as a writable Device,
// exclusively locked; fill it through WriteAt and Close it. size must be
// one the format holds exactly: pass it through OutputSize first. A
// FormatVMDKFlat image is a descriptor at path plus a data file named like
// path with "-flat" before ".vmdk". FormatVMDKStream is refused with
// ErrStreamOnly: build the image in a raw file and Convert it.
func CreateDevice(path string, format imagefs.Format, size int64, opts *CreateOptions) (blockdev.Device, error) {
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if format == imagefs.FormatVMDKStream {
		return nil, ErrStreamOnly
	}
	if s, _, err := OutputSize(format, size, true); err != nil || s != size {
		if err == nil {
			err = ErrSize
		}
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	switch format {
	case imagefs.FormatRaw:
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
		d, err := blockdev.NewRaw(f, true)
		if err != nil {
			f.Close()
			os.Remove(path)
			return nil, err
		}
		return d, nil
	case imagefs.FormatVMDKSparse, imagefs.FormatVMDKFlat:
		vo := &vmdk.CreateOptions{CreateType: vmdk.TypeMonolithicSparse, AdapterType: o.Adapter}
		if format == imagefs.FormatVMDKFlat {
			vo.CreateType = vmdk.TypeMonolithicFlat
			vo.FlatExtentPath, vo.FlatExtentName = o.flatPath, o.flatName
		}
		return vmdk.Create(path, size, vo)
	case imagefs.FormatVHDDynamic:
		return vhd.Create(path, size, &vhd.CreateOptions{Type: vhd.TypeDynamic})
	case imagefs.FormatVHDFixed:
		return vhd.Create(path, size, &vhd.CreateOptions{Type: vhd.TypeFixed})
	}
	return nil, fmt.Errorf("create %s: cannot write format %q", path, format)
}

// FlatExtentPath returns the data file of a monolithicFlat VMDK at path:
// path with "-flat" before its extension (".vmdk" when it has none), as
// qemu names it.
func FlatExtentPath(path string) string {
	ext := filepath.Ext(path)
	if ext == "" {
		ext = ".vmdk"
	}
	return strings.TrimSuffix(path, filepath.Ext(path)) + "-flat" + ext
}

// zeroUnit is the granularity at which zero runs are left unwritten.
func zeroUnit(f imagefs.Format) int {
	switch f {
	case imagefs.FormatVMDKSparse, imagefs.FormatVMDKStream:
		return vmdk.DefaultGrainSectors * 512
	case imagefs.FormatVHDDynamic:
		return vhd.DefaultBlockSize
	}
	return 4096
}

// chunkFor returns the unit of reading and writing for a zero unit: small
// pieces for outputs that are plain files (zero unit 4 KiB), whole 4 MiB
// chunks for the container formats, whose writers gather grains and blocks.
func chunkFor(unit int) int {
	if unit <= 4096 {
		return rawChunkSize
	}
	return chunkSize
}

// Convert copies the image at in into a new image at out in format
// opts.To. See the package documentation for the guarantees.
func Convert(ctx context.Context, in, out string, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.To == "" {
		opts.To = imagefs.FormatRaw
	}
	if _, err := imagefs.ParseFormat(string(opts.To)); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if si, err := os.Stat(in); err == nil {
		if so, err := os.Stat(out); err == nil && os.SameFile(si, so) {
			return nil, fmt.Errorf("convert: %s: input and output are the same file", out)
		}
	}
	open := imagefs.OpenDevice
	if opts.ForceShare {
		open = func(p string, _ bool) (blockdev.Device, imagefs.Format, error) { return imagefs.OpenDeviceUnlocked(p) }
	}
	src, inFmt, err := open(in, false)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	sum := &Summary{Input: in, Output: out, InputFormat: inFmt, OutputFormat: opts.To, InputSize: src.Size()}
	sum.OutputSize, sum.Notices, err = OutputSize(opts.To, src.Size(), opts.Exact)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in, err)
	}
	var capt *capture
	if opts.SkipFree {
		if capt, src, err = beginSkipFree(in, src, sum, opts); err != nil {
			return nil, err
		}
	}

	// Final names, and the existing files they replace.
	finals := []string{out}
	if opts.To == imagefs.FormatVMDKFlat {
		finals = append(finals, FlatExtentPath(out))
	}
	for _, p := range finals {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		kids, _ := imagefs.Children(p)
		if !opts.Force {
			if len(kids) > 0 {
				return nil, fmt.Errorf("%s: %w; it is the base of %s, which replacing it invalidates", p, ErrExists, strings.Join(kids, ", "))
			}
			return nil, fmt.Errorf("%s: %w", p, ErrExists)
		}
		// Hold the old file's lock until it is replaced, so a running
		// server keeps it out of our hands.
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := blockdev.Lock(f, true); err != nil {
			return nil, fmt.Errorf("convert: replacing %s: %w", p, err)
		}
		if len(kids) > 0 {
			sum.Notices = append(sum.Notices, fmt.Sprintf("replacing %s invalidates the delta disks based on it: %s", p, strings.Join(kids, ", ")))
		}
	}
	for _, n := range sum.Notices {
		log.Warn(n, "image", out)
	}

	// Outputs are created by path (a flat VMDK is two files), under names
	// a later run recognises and removes if this one is killed.
	outs := make([]*atomicfile.Named, len(finals))
	tmps := make([]string, len(finals))
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Abort() // nothing after a commit
			}
		}
	}()
	for i, p := range finals {
		if outs[i], err = atomicfile.CreateNamed(p); err != nil {
			return nil, err
		}
		tmps[i] = outs[i].Temp
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts.Progress = dataProgress(src, opts.Progress)
	if opts.To == imagefs.FormatVMDKStream {
		f, err := os.OpenFile(tmps[0], os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		err = blockdev.Lock(f, true)
		if err == nil {
			err = copyStream(ctx, src, f, sum, opts)
		}
		if err == nil && opts.Sync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	} else {
		co := &CreateOptions{Adapter: opts.Adapter}
		if len(tmps) > 1 {
			abs, err := filepath.Abs(tmps[1])
			if err != nil {
				return nil, err
			}
			co.flatPath, co.flatName = abs, filepath.Base(finals[1])
		}
		dst, err := CreateDevice(tmps[0], opts.To, sum.OutputSize, co)
		if err != nil {
			return nil, err
		}
		unit := zeroUnit(opts.To)
		err = copyDevice(ctx, src, dst, unit, chunkFor(unit), sum, opts.Progress)
		if cerr := closeDevice(dst, opts.Sync); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	if capt != nil {
		notice, err := capt.finish()
		if err != nil {
			return nil, err
		}
		if notice != "" {
			sum.Notices = append(sum.Notices, notice)
			log.Warn(notice, "image", in)
		}
	}
	// Data files first, the file that names them last.
	for i := len(outs) - 1; i >= 0; i-- {
		commit := outs[i].CommitNoSync
		if opts.Sync {
			commit = outs[i].Commit
		}
		if err := commit(); err != nil {
			return nil, err
		}
	}
	for _, p := range finals {
		if st, err := os.Stat(p); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				sum.FileBytes += sys.Blocks * 512
			} else {
				sum.FileBytes += st.Size()
			}
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

// closeDevice closes a device made by CreateDevice, flushing it only when
// sync is set.
func closeDevice(d blockdev.Device, sync bool) error {
	if sync {
		return d.Close()
	}
	switch d := d.(type) {
	case *blockdev.Raw:
		return d.File().Close()
	case interface{ Release() error }:
		return d.Release()
	}
	return d.Close()
}

// dataProgress turns the copy's progress, an offset into the virtual disk,
// into bytes of data: what the input stores below that offset, out of all it
// stores. Holes then neither hold the bar back nor show as a rate of
// terabytes a second, and the bar ends at 100 %. Without an extent map the
// offsets are reported as they are.
func dataProgress(src blockdev.Device, progress func(done, total int64)) func(done, total int64) {
	if progress == nil {
		return nil
	}
	ext, err := src.Extents(0, src.Size())
	if err != nil {
		return progress
	}
	var starts, before []int64 // data extents: start offset, data bytes before it
	var data int64
	var ends []int64
	for _, e := range ext {
		if e.State == blockdev.Zero {
			continue
		}
		starts, before, ends = append(starts, e.Off), append(before, data), append(ends, e.Off+e.Len)
		data += e.Len
	}
	return func(done, _ int64) {
		i := sort.Search(len(starts), func(i int) bool { return starts[i] >= done })
		// Extents before i start below done; the last of them may reach
		// past it.
		n := int64(0)
		if i > 0 {
			n = before[i-1] + min(done, ends[i-1]) - starts[i-1]
		}
		progress(n, data)
	}
}
