package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/iso"
)

// needInputs skips (fails under CI) without the Debian files media are
// made of.
func needInputs(t *testing.T) {
	t.Helper()
	peertest.NeedFile(t, filepath.Join(DefaultIPXEDir, "ipxe.lkrn"), "ipxe")
	peertest.NeedFile(t, filepath.Join(DefaultISOLinuxDir, "isolinux.bin"), "isolinux")
	peertest.NeedFile(t, filepath.Join(DefaultISOLinuxDir, "isohdpfx.bin"), "isolinux")
	peertest.NeedFile(t, filepath.Join(DefaultModulesDir, "ldlinux.c32"), "syslinux-common")
}

const testScript = "#!ipxe\necho XPBOOT-MEDIA-MARK ${version}\n"

func write(t *testing.T, c Config) (string, *Result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "boot.img")
	res, err := Write(out, c)
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

// TestWriteReadBack reads a written image back: the files ISOLINUX and
// iPXE need, the script byte for byte, the boot information table, the
// isohybrid MBR, the mode and the result's version strings.
func TestWriteReadBack(t *testing.T) {
	needInputs(t)
	for _, tc := range []struct {
		format Format
		secret bool
		mode   os.FileMode
	}{{ISO, true, 0o600}, {USB, false, 0o644}} {
		t.Run(string(tc.format), func(t *testing.T) {
			out, res := write(t, Config{Format: tc.format, Script: testScript, Secret: tc.secret})
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.mode || st.Size() != res.Bytes || res.Bytes%cylinderBytes != 0 {
				t.Errorf("mode %v size %d (result %d), want mode %v and whole MiB", st.Mode().Perm(), st.Size(), res.Bytes, tc.mode)
			}
			if !strings.HasPrefix(res.Loader, "ISOLINUX 6.") || res.IPXEVersion == "" || !strings.HasSuffix(res.IPXEPath, "ipxe.lkrn") {
				t.Errorf("result %+v", res)
			}
			if p, _ := filepath.EvalSymlinks(filepath.Join(DefaultIPXEDir, "ipxe.lkrn")); p != res.IPXEPath {
				t.Errorf("iPXE path %s, want the link's target %s", res.IPXEPath, p)
			}
			x, err := iso.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			for _, f := range res.Files {
				if _, err := x.Stat(f); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			got := readFile(t, x.Reader, fileScript)
			if string(got) != testScript {
				t.Errorf("script %q", got)
			}
			if cfg := string(readFile(t, x.Reader, "isolinux/isolinux.cfg")); !strings.Contains(cfg, "LINUX /ipxe.krn") || !strings.Contains(cfg, "INITRD /sanboot.ipx") {
				t.Errorf("isolinux.cfg:\n%s", cfg)
			}
			if x.Boot == nil || len(x.Boot.Entries) != 1 || x.Boot.Entries[0].LoadRBA != res.BootSector {
				t.Fatalf("boot catalog %+v", x.Boot)
			}
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			bin := raw[int64(res.BootSector)*iso.SectorSize:]
			if binary.LittleEndian.Uint32(bin[8:]) != 16 || binary.LittleEndian.Uint32(bin[12:]) != res.BootSector {
				t.Errorf("no boot information table: % x", bin[8:24])
			}
			if binary.LittleEndian.Uint64(raw[432:]) != uint64(res.BootSector)*4 || raw[510] != 0x55 || raw[511] != 0xAA {
				t.Errorf("MBR boot pointer % x, signature % x", raw[432:440], raw[510:512])
			}
			p := raw[446:462]
			if p[0] != 0x80 || p[4] != 0x17 || binary.LittleEndian.Uint32(p[8:]) != 0 || int64(binary.LittleEndian.Uint32(p[12:]))*512 != res.Bytes {
				t.Errorf("partition entry % x", p)
			}
		})
	}
}

func readFile(t *testing.T, x *iso.Reader, name string) []byte {
	t.Helper()
	f, err := x.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f.Reader())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReproducible writes the same inputs twice (at different times) and
// compares the bytes; another script gives another disk signature.
func TestReproducible(t *testing.T) {
	needInputs(t)
	a, _ := write(t, Config{Format: ISO, Script: testScript})
	time.Sleep(1100 * time.Millisecond)
	b, _ := write(t, Config{Format: ISO, Script: testScript})
	c, _ := write(t, Config{Format: ISO, Script: testScript + "echo more\n"})
	ab, bb, cb := mustRead(t, a), mustRead(t, b), mustRead(t, c)
	if !bytes.Equal(ab, bb) {
		t.Error("the same inputs gave different images")
	}
	if bytes.Equal(ab[440:444], cb[440:444]) {
		t.Error("different scripts gave the same disk signature")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestXorrisoReadsOurs lets xorriso describe the image: it must see the
// El Torito entry, the boot information table's image and the MBR
// partition isohybrid would make.
func TestXorrisoReadsOurs(t *testing.T) {
	needInputs(t)
	xorriso := peertest.Need(t, "xorriso", "xorriso")
	out, res := write(t, Config{Format: ISO, Script: testScript})
	rep := string(peertest.Run(t, 60*time.Second, xorriso, "-indev", out, "-report_el_torito", "plain", "-report_system_area", "plain"))
	for _, want := range []string{
		"El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4",
		"/isolinux/isolinux.bin",
		"boot-info-table isohybrid-suitable",
		"System area summary: MBR isohybrid cyl-align-on",
		"MBR partition      :   1   0x80  0x17            0 " + fmt.Sprintf("%12d", res.Bytes/512),
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("xorriso report lacks %q:\n%s", want, rep)
		}
	}
}

// TestWriteRefuses checks that unusable inputs are refused before anything
// is written, with the file named.
func TestWriteRefuses(t *testing.T) {
	needInputs(t)
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "ipxe.lkrn"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	notHybrid := t.TempDir()
	for _, n := range []string{"isolinux.bin", "isohdpfx.bin"} {
		b := mustRead(t, filepath.Join(DefaultISOLinuxDir, n))
		if n == "isolinux.bin" {
			b = append([]byte(nil), b...)
			b[hybridSigOff] ^= 0xFF
		}
		if err := os.WriteFile(filepath.Join(notHybrid, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		c    Config
		is   error
		want string
	}{
		{"unknown format", Config{Format: "zip", Script: testScript}, ErrUnsupported, `"zip"`},
		{"no #!ipxe", Config{Format: ISO, Script: "dhcp\nsanboot iscsi:x\n"}, ErrInput, "#!ipxe"},
		{"#!ipxex", Config{Format: ISO, Script: "#!ipxex\n"}, ErrInput, "#!ipxe"},
		{"NUL", Config{Format: ISO, Script: "#!ipxe\necho \x00\n"}, ErrInput, "offset 12"},
		{"huge", Config{Format: ISO, Script: "#!ipxe\n" + strings.Repeat("#", MaxScript)}, ErrInput, "more than"},
		{"no iPXE", Config{Format: ISO, Script: testScript, IPXEDir: t.TempDir()}, ErrInput, "ipxe.lkrn"},
		{"iPXE not a kernel", Config{Format: ISO, Script: testScript, IPXEDir: fake}, ErrInput, "offset 0x1fe"},
		{"not isohybrid", Config{Format: USB, Script: testScript, ISOLinuxDir: notHybrid}, ErrInput, "offset 0x40"},
		{"no ldlinux", Config{Format: ISO, Script: testScript, ModulesDir: t.TempDir()}, ErrInput, "syslinux-common"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "boot.iso")
			_, err := Write(out, tc.c)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v naming %s", err, tc.is, tc.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left %v behind", ents[0].Name())
			}
		})
	}
}

func TestKernelVersion(t *testing.T) {
	lkrn := peertest.NeedFile(t, filepath.Join(DefaultIPXEDir, "ipxe.lkrn"), "ipxe")
	b := mustRead(t, lkrn)
	v, err := KernelVersion(b)
	if err != nil || v == "" || strings.ContainsAny(v, "\x00\n") {
		t.Fatalf("version %q, %v", v, err)
	}
	// Debian's iPXE prints the same string as its banner.
	if !bytes.Contains(b, []byte(v)) {
		t.Errorf("%q not in the file", v)
	}
	bad := append([]byte(nil), b[:0x400]...)
	binary.LittleEndian.PutUint16(bad[linuxKernVerOff:], 0xFFF0)
	if _, err := KernelVersion(bad); err == nil || !strings.Contains(err.Error(), "0x20e") {
		t.Errorf("pointer past the end: %v", err)
	}
}

// FuzzKernelVersion feeds KernelVersion arbitrary bytes: an error or a
// printable string, never a panic.
func FuzzKernelVersion(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(DefaultIPXEDir, "ipxe.lkrn")); err == nil {
		f.Add(b[:0x1000])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := KernelVersion(b)
		if err == nil {
			for _, c := range []byte(v) {
				if c < 0x20 || c > 0x7E {
					t.Fatalf("unprintable version %q", v)
				}
			}
		}
	})
}

// TestBootInQEMU boots the image as a CD and as a hard disk in QEMU (no
// network needed): ISOLINUX must start iPXE, which must run the embedded
// script. SeaBIOS copies the screen to COM1 (etc/sercon-port), so the
// script's echo is seen there.
func TestBootInQEMU(t *testing.T) {
	needInputs(t)
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	out, _ := write(t, Config{Format: USB, Script: testScript})
	fd, _ := write(t, Config{Format: Floppy, Script: testScript})
	for _, tc := range []struct {
		name   string
		dev    []string
		loader string
	}{
		{"cdrom", []string{"-cdrom", out, "-boot", "d"}, "ISOLINUX"},
		{"disk", []string{"-drive", "file=" + out + ",format=raw,if=ide,snapshot=on", "-boot", "c"}, "ISOLINUX"},
		{"floppy", []string{"-drive", "file=" + fd + ",format=raw,if=floppy,snapshot=on", "-boot", "a"}, "xpboot: starting iPXE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			con := BootQEMU(t, qemu, 150*time.Second, "XPBOOT-MEDIA-MARK", append(tc.dev, "-nic", "none")...)
			if !strings.Contains(con, tc.loader) {
				t.Errorf("console does not show %q:\n%s", tc.loader, con)
			}
		})
	}
}

// BootQEMU runs a PC with args until its console (COM1, with SeaBIOS's
// screen copy) shows want, and returns the console; it fails after
// timeout. The machine is always killed.
func BootQEMU(t *testing.T, qemu string, timeout time.Duration, want string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	sercon := filepath.Join(dir, "sercon")
	if err := os.WriteFile(sercon, []byte{0xF8, 0x03}, 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "serial.log")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"-machine", "pc", "-m", "128", "-display", "none", "-vga", "none", "-no-reboot",
		"-serial", "file:" + serial, "-monitor", "none", "-parallel", "none",
		"-fw_cfg", "name=etc/sercon-port,file=" + sercon}, peertest.QEMUAccel()...)
	vm := exec.CommandContext(ctx, qemu, append(full, args...)...)
	var vout bytes.Buffer
	vm.Stdout, vm.Stderr = &vout, &vout
	vm.WaitDelay = 5 * time.Second
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { vm.Wait(); close(done) }()
	defer func() { vm.Process.Kill(); <-done }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(serial)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no %q on the console within %v; console:\n%s", want, timeout, b)
		case <-done:
			b, _ = os.ReadFile(serial)
			if strings.Contains(string(b), want) {
				return string(b)
			}
			t.Fatalf("QEMU ended before %q: %s\nconsole:\n%s", want, vout.String(), b)
		case <-tick.C:
		}
	}
}
