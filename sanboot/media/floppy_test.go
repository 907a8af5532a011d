package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// TestFloppyLoaderAssembles re-assembles floppy.asm and compares it with
// the embedded floppy.bin, so the binary is always built from the source.
func TestFloppyLoaderAssembles(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	out := filepath.Join(t.TempDir(), "floppy.bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", out, "floppy.asm")
	if got := mustRead(t, out); !bytes.Equal(got, floppyLoader) {
		t.Fatalf("floppy.asm assembles to %d bytes that differ from the embedded %d; run go generate", len(got), len(floppyLoader))
	}
	if len(floppyLoader) != LoaderSectors*512 || string(floppyLoader[floppyParamsOff:floppyParamsOff+4]) != "XPBL" {
		t.Errorf("loader layout: %d bytes, params %q", len(floppyLoader), floppyLoader[floppyParamsOff:floppyParamsOff+4])
	}
	// The BPB area is left for the Go side.
	if !bytes.Equal(floppyLoader[3:62], make([]byte, 59)) {
		t.Error("the loader has bytes in the BPB area")
	}
}

// TestFloppyImage checks the floppy against dosfstools and mtools: a clean
// FAT12 file system holding IPXE.KRN and SANBOOT.IPX byte for byte, and
// the loader's parameters pointing at their data.
func TestFloppyImage(t *testing.T) {
	needInputs(t)
	fsck := peertest.Need(t, "fsck.fat", "dosfstools")
	mtype := peertest.Need(t, "mtype", "mtools")
	mdir := peertest.Need(t, "mdir", "mtools")
	out, res := write(t, Config{Format: Floppy, Script: testScript, Secret: true})
	img := mustRead(t, out)
	if len(img) != 1474560 || res.Bytes != 1474560 || res.Loader != FloppyLoaderName || res.Hybrid || res.Mode != "0600" {
		t.Errorf("%d bytes, result %+v", len(img), res)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	peertest.Run(t, 30*time.Second, fsck, "-n", "-v", out)
	ls := string(peertest.Run(t, 30*time.Second, mdir, "-a", "-i", out, "::"))
	for _, want := range []string{"IPXE     KRN", "SANBOOT  IPX", "XPBOOT"} {
		if !strings.Contains(ls, want) {
			t.Errorf("mdir lacks %q:\n%s", want, ls)
		}
	}
	kernel := mustRead(t, res.IPXEPath)
	for name, want := range map[string][]byte{"IPXE.KRN": kernel, "SANBOOT.IPX": []byte(testScript)} {
		if got := peertest.Run(t, 30*time.Second, mtype, "-i", out, "::"+name); !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the %d written", name, len(got), len(want))
		}
	}
	p := img[floppyParamsOff:]
	kl, kn := binary.LittleEndian.Uint32(p[4:]), binary.LittleEndian.Uint32(p[8:])
	il, in := binary.LittleEndian.Uint32(p[12:]), binary.LittleEndian.Uint32(p[16:])
	if int(kn) != len(kernel) || !bytes.Equal(img[kl*512:][:kn], kernel) {
		t.Errorf("kernel parameters %d/%d do not point at ipxe.krn", kl, kn)
	}
	if int(in) != len(testScript) || string(img[il*512:][:in]) != testScript {
		t.Errorf("initrd parameters %d/%d do not point at the script", il, in)
	}
	if !bytes.Equal(img[512 : LoaderSectors*512][20:], floppyLoader[512+20:]) {
		t.Error("stage 2 differs from the loader")
	}
	again, _ := write(t, Config{Format: Floppy, Script: testScript, Secret: true})
	if !bytes.Equal(mustRead(t, again), img) {
		t.Error("the same inputs gave different floppies")
	}
}

// TestFloppyTooBig refuses an iPXE that does not fit, before writing.
func TestFloppyTooBig(t *testing.T) {
	needInputs(t)
	dir := t.TempDir()
	big := append([]byte(nil), mustRead(t, filepath.Join(DefaultIPXEDir, "ipxe.lkrn"))...)
	big = append(big, make([]byte, 1200<<10)...)
	if err := os.WriteFile(filepath.Join(dir, "ipxe.lkrn"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "f.img")
	_, err := Write(out, Config{Format: Floppy, Script: testScript, IPXEDir: dir})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "1.44 MB") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an image was written")
	}
}

// TestFloppyLoaderErrors boots damaged floppies: the loader must say what
// is wrong on the screen and stop, not run off into garbage.
func TestFloppyLoaderErrors(t *testing.T) {
	needInputs(t)
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	out, _ := write(t, Config{Format: Floppy, Script: testScript})
	good := mustRead(t, out)
	kl := binary.LittleEndian.Uint32(good[floppyParamsOff+4:])
	for _, tc := range []struct {
		name string
		mess func(b []byte)
		want string
	}{
		{"not a kernel", func(b []byte) { copy(b[kl*512+0x202:], "XXXX") }, "xpboot: ipxe.krn is not a bzImage"},
		{"past the end", func(b []byte) { binary.LittleEndian.PutUint32(b[floppyParamsOff+12:], floppySectors+100) }, "xpboot: floppy read error"},
		{"no stage 2", func(b []byte) { copy(b[floppyParamsOff:], "XXXX") }, "xpboot: floppy read error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			tc.mess(b)
			p := filepath.Join(t.TempDir(), "bad.img")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			con := BootQEMU(t, qemu, 150*time.Second, tc.want, "-drive", "file="+p+",format=raw,if=floppy", "-boot", "a", "-nic", "none")
			if strings.Contains(con, "iPXE 1.") {
				t.Errorf("iPXE started from a damaged floppy:\n%s", con)
			}
		})
	}
}
