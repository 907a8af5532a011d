package iso

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// fixedTime is the volume time of the test images.
var fixedTime = time.Date(2004, 8, 4, 12, 0, 0, 0, time.UTC)

// makeTree writes an XP-CD-shaped tree: upper-case 8.3 names in I386 as
// Microsoft's CDs have them, compressed-looking files, long and
// lower-case names, a deep chain of directories, an empty file and a
// file of several sectors. It returns the tree's root.
func makeTree(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "cd")
	rng := rand.New(rand.NewPCG(1, 2))
	files := map[string]int{
		"WIN51":                                 10,
		"WIN51IP":                               10,
		"WIN51IP.SP2":                           10,
		"SETUP.EXE":                             3000,
		"I386/TXTSETUP.SIF":                     5000,
		"I386/DOSNET.INF":                       1200,
		"I386/NTLDR":                            250000,
		"I386/NTDETECT.COM":                     47000,
		"I386/SETUPLDR.BIN":                     260000,
		"I386/KDCOM.DL_":                        4000,
		"I386/SYSTEM32/SMSS.EXE":                9000,
		"I386/LANG/README.TXT":                  0,
		"DOCS/Readme for the integrated CD.txt": 700,
		"DOCS/lower case name.htm":              300,
		"VALUEADD/MSFT/NTBACKUP/a/b/c/d/e/f/g/h/i/j/deepest file.dat":                                                        4097,
		"SUPPORT/TOOLS/a name exactly one hundred and three characters long, which is the Joliet limit set by mkisofs!!.txt": 1,
	}
	for name, size := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, fixedTime, fixedTime.Add(time.Duration(size)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "EMPTYDIR"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// bootImage is a 2048-byte boot image with a recognisable last word.
func bootImage() []byte {
	b := bytes.Repeat([]byte{0x90}, 2048)
	copy(b[2044:], "TAG4")
	return b
}

func build(t testing.TB, tree *Node, opts Options) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.iso")
	if _, err := Build(tree, out, opts); err != nil {
		t.Fatal(err)
	}
	return out
}

func hashFile(t testing.TB, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// listTree maps every relative path below dir to its content ("/" suffix
// for directories).
func listTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if fi.IsDir() {
			out[filepath.ToSlash(rel)+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func listISO(t testing.TB, x *Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := x.Walk(func(p string, fi FileInfo) error {
		if fi.IsDir() {
			out[p+"/"] = ""
			return nil
		}
		f, err := x.Open(p)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(f.Reader())
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t testing.TB, want, got map[string]string) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: missing", p)
		case g != w:
			t.Errorf("%s: %d bytes differ from the source's %d", p, len(g), len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: not in the source", p)
		}
	}
}

func TestBuildReadBack(t *testing.T) {
	src := makeTree(t)
	tree, err := DirTree(src)
	if err != nil {
		t.Fatal(err)
	}
	out := build(t, tree, Options{VolumeID: "WXPFPP_EN", Time: fixedTime, Boot: &Boot{Image: bootImage()}})
	rc, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if !rc.HasJoliet() || rc.Joliet.Level != 3 {
		t.Errorf("Joliet: %v, level %+v", rc.HasJoliet(), rc.Joliet)
	}
	if rc.Primary.VolumeID != "WXPFPP_EN" || !rc.Primary.Created.Equal(fixedTime) {
		t.Errorf("primary volume %+v", rc.Primary)
	}
	sameTree(t, listTree(t, src), listISO(t, rc.Reader))
	if rc.Boot == nil || len(rc.Boot.Entries) != 1 {
		t.Fatalf("boot catalog %+v", rc.Boot)
	}
	e := rc.Boot.Entries[0]
	if !e.Bootable || e.Media != MediaNoEmulation || e.SectorCount != 4 {
		t.Errorf("boot entry %+v", e)
	}
	img, err := rc.BootImage(e)
	if err != nil || !bytes.Equal(img, bootImage()) {
		t.Errorf("boot image: %v, equal %v", err, bytes.Equal(img, bootImage()))
	}
	// Paths resolve case-insensitively, as on Windows.
	if fi, err := rc.Stat("/i386/txtsetup.sif"); err != nil || fi.Size() != 5000 {
		t.Errorf("Stat(/i386/txtsetup.sif) = %v, %v", fi, err)
	}
	if _, err := rc.Stat("/I386/NOSUCH.SIF"); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestReproducible: the same tree gives the same bytes, and rebuilding
// an image from itself (times from its records, volume time and boot
// image from its descriptors) gives the image back.
func TestReproducible(t *testing.T) {
	src := makeTree(t)
	tree, err := DirTree(src)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{VolumeID: "WXPFPP_EN", Boot: &Boot{Image: bootImage()}}
	a, b := build(t, tree, opts), build(t, tree, opts)
	if hashFile(t, a) != hashFile(t, b) {
		t.Fatal("two builds of the same tree differ")
	}
	rc, err := Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	again, err := rc.Tree()
	if err != nil {
		t.Fatal(err)
	}
	img, err := rc.BootImage(rc.Boot.Entries[0])
	if err != nil {
		t.Fatal(err)
	}
	c := build(t, again, Options{VolumeID: rc.Primary.VolumeID, Time: rc.Primary.Created, Boot: &Boot{Image: img, LoadSize: rc.Boot.Entries[0].SectorCount}})
	if hashFile(t, a) != hashFile(t, c) {
		t.Fatal("rebuilding the image from itself changed it")
	}
}

// TestXorrisoReadsOurs checks the image with xorriso: the boot catalog it
// reports and every file it extracts.
func TestXorrisoReadsOurs(t *testing.T) {
	xorriso := peertest.Need(t, "xorriso", "xorriso")
	src := makeTree(t)
	tree, err := DirTree(src)
	if err != nil {
		t.Fatal(err)
	}
	out := build(t, tree, Options{VolumeID: "WXPFPP_EN", Boot: &Boot{Image: bootImage()}})
	rep := string(peertest.Run(t, time.Minute, xorriso, "-indev", out, "-report_el_torito", "plain"))
	if !strings.Contains(rep, "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4") {
		t.Errorf("xorriso -report_el_torito:\n%s", rep)
	}
	dst := filepath.Join(t.TempDir(), "x")
	// Joliet names only: no Rock Ridge in the image, as with mkisofs -J.
	peertest.Run(t, 2*time.Minute, xorriso, "-osirrox", "on", "-indev", out, "-extract", "/", dst)
	got := listTree(t, dst)
	sameTree(t, listTree(t, src), got)
}

// TestIsoinfo checks the descriptors and the primary names with isoinfo
// (genisoimage): 8.3 upper case, no ";1", Joliet level 3.
func TestIsoinfo(t *testing.T) {
	isoinfo := peertest.Need(t, "isoinfo", "genisoimage")
	src := makeTree(t)
	tree, err := DirTree(src)
	if err != nil {
		t.Fatal(err)
	}
	out := build(t, tree, Options{VolumeID: "WXPFPP_EN", Boot: &Boot{Image: bootImage()}})
	d := string(peertest.Run(t, time.Minute, isoinfo, "-d", "-i", out))
	for _, want := range []string{"Volume id: WXPFPP_EN", "Joliet with UCS level 3 found", "Boot media 0 (No Emulation Boot)", "Nsect 4"} {
		if !strings.Contains(d, want) {
			t.Errorf("isoinfo -d lacks %q:\n%s", want, d)
		}
	}
	f := string(peertest.Run(t, time.Minute, isoinfo, "-f", "-i", out))
	for _, want := range []string{"/I386/TXTSETUP.SIF\n", "/I386/NTLDR.\n", "/I386/SYSTEM32/SMSS.EXE\n", "/WIN51IP.SP2\n"} {
		if !strings.Contains(f, want) {
			t.Errorf("primary names lack %q:\n%s", want, f)
		}
	}
	if strings.Contains(f, ";1") {
		t.Errorf("primary names carry version suffixes:\n%s", f)
	}
	j := string(peertest.Run(t, time.Minute, isoinfo, "-f", "-J", "-i", out))
	if !strings.Contains(j, "/DOCS/Readme for the integrated CD.txt") {
		t.Errorf("Joliet names:\n%s", j)
	}
}

// TestReadXorrisoImage reads an image xorriso made as mkisofs would, with
// the options of an integrated XP CD, and compares it with the source.
func TestReadXorrisoImage(t *testing.T) {
	xorriso := peertest.Need(t, "xorriso", "xorriso")
	src := makeTree(t)
	boot := filepath.Join(src, "BOOT.BIN")
	if err := os.WriteFile(boot, bootImage(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.iso")
	peertest.Run(t, 2*time.Minute, xorriso, "-as", "mkisofs", "-N", "-D", "-J", "-joliet-long", "-relaxed-filenames",
		"-V", "WXPFPP_EN", "-b", "BOOT.BIN", "-no-emul-boot", "-boot-load-size", "4", "-hide", "boot.catalog", "-o", out, src)
	rc, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := listISO(t, rc.Reader)
	if _, ok := got["boot.catalog"]; !ok {
		t.Error("xorriso's boot.catalog is not listed") // hidden from ISO 9660 only
	}
	delete(got, "boot.catalog")
	sameTree(t, listTree(t, src), got)
	// Tree, what a rebuild reads, leaves the catalog out.
	tree, err := rc.Tree()
	if err != nil {
		t.Fatal(err)
	}
	if tree.Find("boot.catalog") != nil {
		t.Error("Tree lists the boot catalog")
	}
	if rc.Boot == nil || rc.Boot.Entries[0].SectorCount != 4 {
		t.Fatalf("boot catalog %+v", rc.Boot)
	}
	img, err := rc.BootImage(rc.Boot.Entries[0])
	if err != nil || !bytes.Equal(img, bootImage()) {
		t.Fatalf("boot image %v", err)
	}
}

// TestBootInQEMU boots the El Torito image of a built CD in QEMU: the
// stand-in boot image prints its marker on COM1 only when the BIOS loaded
// all four virtual sectors.
func TestBootInQEMU(t *testing.T) {
	nasm := peertest.Need(t, "nasm", "nasm")
	qemu := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	dir := t.TempDir()
	bin := filepath.Join(dir, "cdboot.bin")
	peertest.Run(t, time.Minute, nasm, "-f", "bin", "-o", bin, "testdata/cdboot.asm")
	img, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := DirTree(makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	out := build(t, tree, Options{VolumeID: "BOOTTEST", Boot: &Boot{Image: img}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"-machine", "pc", "-display", "none", "-m", "32", "-net", "none", "-no-reboot",
		"-boot", "d", "-monitor", "none", "-parallel", "none", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-drive", "file=" + strings.ReplaceAll(out, ",", ",,") + ",format=raw,media=cdrom,if=ide"}, peertest.QEMUAccel()...)
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.WaitDelay = 5 * time.Second
	var serial, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &serial, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("QEMU did not finish in time; serial:\n%s", serial.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 33 {
		t.Fatalf("QEMU: %v\nserial:\n%s\nstderr:\n%s", err, serial.String(), stderr.String())
	}
	if !strings.Contains(serial.String(), "CDBOOT-OK DL=") {
		t.Fatalf("no marker on COM1:\n%s", serial.String())
	}
}

// TestBootImageFromTree points the catalog at a file of the tree (mkisofs
// -b) instead of a hidden copy.
func TestBootImageFromTree(t *testing.T) {
	src := makeTree(t)
	if err := os.WriteFile(filepath.Join(src, "BOOT.BIN"), bootImage(), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := DirTree(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "o.iso")
	res, err := Build(tree, out, Options{Boot: &Boot{TreePath: "BOOT.BIN"}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if rc.Boot.Entries[0].LoadRBA != res.BootSector {
		t.Errorf("catalog LBA %d, result %d", rc.Boot.Entries[0].LoadRBA, res.BootSector)
	}
	img, _ := rc.BootImage(rc.Boot.Entries[0])
	if !bytes.Equal(img, bootImage()) {
		t.Error("boot image differs")
	}
	if _, err := Build(tree, out, Options{Boot: &Boot{TreePath: "NOSUCH.BIN"}}); err == nil {
		t.Error("a missing boot image was accepted")
	}
}

func TestBuildRefuses(t *testing.T) {
	long := strings.Repeat("n", 104)
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"joliet name too long", []string{long}, "exceeds Joliet's 103"},
		{"joliet names collide", []string{"a:b", "a?b"}, "same Joliet name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := &Node{Dir: true}
			for _, f := range tc.files {
				root.Children = append(root.Children, &Node{Name: f, Size: 1, Path: f, Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }})
			}
			out := filepath.Join(t.TempDir(), "o.iso")
			_, err := Build(root, out, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused build left %s", out)
			}
		})
	}
}

// TestFailedBuildLeavesNothing: a source file shorter than listed fails
// the build and leaves the previous output untouched, no temp file.
func TestFailedBuildLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "o.iso")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := &Node{Dir: true, Children: []*Node{{Name: "F", Size: 10, Path: "F",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("short")), nil }}}}
	_, err := Build(root, out, Options{})
	if err == nil || !strings.Contains(err.Error(), "did the file change") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Error("the old output was replaced")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

// messWith returns a copy of img with b written at off.
func messWith(img []byte, off int, b ...byte) []byte {
	c := append([]byte(nil), img...)
	copy(c[off:], b)
	return c
}

// TestCorrupt: every damaged structure gives an error naming it (and its
// offset), never a panic or a hang.
func TestCorrupt(t *testing.T) {
	tree, err := DirTree(makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(build(t, tree, Options{VolumeID: "X", Time: fixedTime, Boot: &Boot{Image: bootImage()}}))
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	pvd := 16 * SectorSize
	jroot := int(x.root.extents[0].lba) * SectorSize // Joliet root directory
	cat := int(x.Boot.Sector) * SectorSize
	tests := []struct {
		name string
		img  []byte
		want string
	}{
		{"no CD001", messWith(good, pvd+1, 'X'), "not an ISO 9660 image"},
		{"truncated", good[:17*SectorSize], "beyond the end of the image"},
		{"no terminator", messWith(good, pvd+3*SectorSize, vdPartition), "has identifier"},
		{"block size", messWith(good, pvd+128, 0, 4), "logical block size 1024"},
		{"root record length", messWith(good, pvd+156, 10), "directory record of 10 bytes"},
		{"root extent past end", messWith(good, pvd+156+2, 0xff, 0xff, 0xff, 0x0f), "beyond the end of the image"},
		{"catalog checksum", messWith(good, cat+4, 1), "checksum"},
		{"catalog key", messWith(good, cat+30, 0), "validation entry"},
		{"boot image past end", messWith(good, cat+32+8, 0xff, 0xff, 0xff, 0), "boot image at sector"},
		{"identifier longer than record", messWith(good, jroot+68+32, 250), "exceeds the"},
		{"odd joliet name", messWith(good, jroot+68+32, 3), "odd length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := NewReader(bytes.NewReader(tc.img), int64(len(tc.img)))
			if err == nil {
				err = x.Walk(func(string, FileInfo) error { return nil })
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLoop: a directory record pointing at its own parent is a loop
// error, not an endless walk.
func TestLoop(t *testing.T) {
	root := &Node{Dir: true, Children: []*Node{{Name: "A", Dir: true, Path: "A"}}}
	good, err := WriteToBytes(root, Options{Time: fixedTime})
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	rootLBA := x.root.extents[0].lba
	// The Joliet root's third record is A: point it at the root itself.
	off := int(rootLBA)*SectorSize + 68 + 2
	bad := messWith(good, off, byte(rootLBA), byte(rootLBA>>8), byte(rootLBA>>16), byte(rootLBA>>24))
	x, err = NewReader(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	err = x.Walk(func(string, FileInfo) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("err = %v", err)
	}
}

// WriteToBytes builds an image in memory (tests and fuzz seeds).
func WriteToBytes(root *Node, opts Options) ([]byte, error) {
	var b bytes.Buffer
	_, err := WriteTo(root, &b, opts)
	return b.Bytes(), err
}

func TestShort83(t *testing.T) {
	tests := []struct {
		in   string
		dir  bool
		want string
	}{
		{"TXTSETUP.SIF", false, "TXTSETUP.SIF"},
		{"ntldr", false, "NTLDR."},
		{"kdcom.dl_", false, "KDCOM.DL_"},
		{"Long Directory", true, "LONG DIR"},
		{"dir.name", true, "DIR.NAM"},
		{".hidden", false, "_HIDDEN."},
		{"file;x", false, "FILE;X."},
		{"\u00e9.txt", false, "__.TXT"},
		{"a.b.c", false, "A_B.C"},
		{"I386", true, "I386"},
		{"$OEM$", true, "$OEM$"},
	}
	for _, tc := range tests {
		b, e, _ := short83(tc.in, tc.dir)
		if got := joinID(b, e, tc.dir); got != tc.want {
			t.Errorf("short83(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func ExampleBuild() {
	root := &Node{Dir: true, Children: []*Node{{Name: "README.TXT", Size: 5,
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello")), nil }}}}
	b, _ := WriteToBytes(root, Options{VolumeID: "DEMO", Time: fixedTime})
	x, _ := NewReader(bytes.NewReader(b), int64(len(b)))
	fi, _ := x.Stat("/readme.txt")
	fmt.Println(x.Primary.VolumeID, fi.Name(), fi.Size(), len(b)/SectorSize)
	// Output: DEMO README.TXT 5 26
}

// TestNamesLikeGenisoimage builds the same tree with genisoimage -N -D -J
// -joliet-long -relaxed-filenames (mkisofs) and with Build, and compares
// what isoinfo lists, in directory order: the primary names (8.3 upper
// case, numbering of names that collide, directories with extensions)
// and the Joliet names.
func TestNamesLikeGenisoimage(t *testing.T) {
	genisoimage := peertest.Need(t, "genisoimage", "genisoimage")
	isoinfo := peertest.Need(t, "isoinfo", "genisoimage")
	src := makeTree(t)
	for _, name := range []string{"a.b.c", "file;x", `x\y`, "\u00e9.txt", "Long Name 1.txt", "Long Name 2.txt", "file.html",
		"dir.name/in", "noext", "UPPER.TXT", "a+b=c.txt", ".hidden", "tilde~1.txt", `q"uote.txt`, "weird*?.txt"} {
		p := filepath.Join(src, "EDGE", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	theirs := filepath.Join(t.TempDir(), "g.iso")
	peertest.Run(t, 2*time.Minute, genisoimage, "-quiet", "-N", "-D", "-J", "-joliet-long", "-relaxed-filenames", "-o", theirs, src)
	tree, err := DirTree(src)
	if err != nil {
		t.Fatal(err)
	}
	ours := build(t, tree, Options{})
	for _, args := range [][]string{{"-f"}, {"-f", "-J"}} {
		want := peertest.Run(t, time.Minute, isoinfo, append(args, "-i", theirs)...)
		got := peertest.Run(t, time.Minute, isoinfo, append(args, "-i", ours)...)
		if !bytes.Equal(got, want) {
			t.Errorf("isoinfo %v differs from genisoimage's image:\n%s", args, lineDiff(string(want), string(got)))
		}
	}
}

// lineDiff lists the lines only one side has, in order.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	n := max(len(w), len(g))
	for i := 0; i < n; i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			fmt.Fprintf(&out, "line %d: genisoimage %q, xpboot %q\n", i+1, a, b)
		}
	}
	return out.String()
}

// TestBootInfoTable checks the boot information table (mkisofs
// -boot-info-table) patched into the boot image: the PVD's sector, the
// image's own sector and length, and the checksum of its bytes from 64
// on, which xorriso must compute the same for the same file.
func TestBootInfoTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	img := make([]byte, 38*1024+3) // not a whole number of 32-bit words
	for i := range img {
		img[i] = byte(rng.Uint32())
	}
	want := func(b []byte) uint32 {
		var sum uint32
		for i := 64; i < len(b); i++ {
			sum += uint32(b[i]) << (8 * ((i - 64) % 4))
		}
		return sum
	}(img)
	for _, tc := range []struct {
		name string
		boot Boot
	}{
		{"tree file", Boot{TreePath: "ISOLINUX/ISOLINUX.BIN", InfoTable: true}},
		{"hidden image", Boot{Image: img, InfoTable: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "cd")
			if err := os.MkdirAll(filepath.Join(src, "ISOLINUX"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "ISOLINUX", "ISOLINUX.BIN"), img, 0o644); err != nil {
				t.Fatal(err)
			}
			tree, err := DirTree(src)
			if err != nil {
				t.Fatal(err)
			}
			boot := tc.boot
			out := build(t, tree, Options{Time: fixedTime, Boot: &boot})
			rc, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			e := rc.Boot.Entries[0]
			raw, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := raw[int64(e.LoadRBA)*SectorSize:][:len(img)]
			le := func(off int) uint32 {
				return uint32(got[off]) | uint32(got[off+1])<<8 | uint32(got[off+2])<<16 | uint32(got[off+3])<<24
			}
			if le(8) != 16 || le(12) != e.LoadRBA || le(16) != uint32(len(img)) || le(20) != want {
				t.Errorf("table pvd=%d file=%d len=%d sum=%#x; want 16 %d %d %#x", le(8), le(12), le(16), le(20), e.LoadRBA, len(img), want)
			}
			if !bytes.Equal(got[24:64], make([]byte, 40)) || !bytes.Equal(got[:8], img[:8]) || !bytes.Equal(got[64:], img[64:]) {
				t.Error("bytes outside the table's fields changed")
			}
			if tc.boot.Image != nil && !bytes.Equal(tc.boot.Image, img) {
				t.Error("the caller's image was patched in place")
			}
		})
	}
	t.Run("xorriso agrees", func(t *testing.T) {
		xorriso := peertest.Need(t, "xorriso", "xorriso")
		src := filepath.Join(t.TempDir(), "cd")
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "BOOT.BIN"), img, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "x.iso")
		peertest.Run(t, 60*time.Second, xorriso, "-as", "mkisofs", "-quiet", "-o", out, "-b", "BOOT.BIN", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", src)
		rc, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		theirs, err := rc.BootImage(rc.Boot.Entries[0])
		if err != nil {
			t.Fatal(err)
		}
		mine := append([]byte(nil), img...)
		if err := patchInfoTable(mine, rc.Boot.Entries[0].LoadRBA); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(theirs[:64], mine[:len(theirs[:64])]) {
			t.Errorf("xorriso's table %x, ours %x", theirs[8:24], mine[8:24])
		}
	})
	t.Run("too short", func(t *testing.T) {
		tree := &Node{Dir: true, Children: []*Node{{Name: "B.BIN", Size: 32, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(make([]byte, 32))), nil }}}}
		_, err := WriteTo(tree, io.Discard, Options{Boot: &Boot{TreePath: "B.BIN", LoadSize: 1, InfoTable: true}})
		if err == nil || !strings.Contains(err.Error(), "boot information table") {
			t.Errorf("a 32-byte image took a boot information table: %v", err)
		}
	})
}
