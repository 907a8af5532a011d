package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate/installed/installedtest"
	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/overlay"
)

// TestServeOverlayNames: with --overlay-dir and a --clients entry naming a
// computer, serve writes that name into the client's own overlay when it
// creates it (ComputerName, ActiveComputerName, Tcpip Hostname and NV
// Hostname in every control set), so two clients of one base are two named
// PCs; the base is not touched, and a client without a name keeps the
// base's.
func TestServeOverlayNames(t *testing.T) {
	for _, fs := range []string{"fat32", "ntfs"} {
		t.Run(fs, func(t *testing.T) { serveOverlayNames(t, fs) })
	}
}

func serveOverlayNames(t *testing.T, fsType string) {
	peertest.NeedRoot(t, "binds the DHCP ports 67 and 4011 on lo")
	inq := peertest.Need(t, "iscsi-inq", "libiscsi-bin")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	installedtest.WriteXP(t, tree)
	if fsType == "ntfs" {
		ntfsImage(t, filepath.Join(dir, "base.img"))
	} else if r := xpboot(t, dir, "image", "create", "--size", "64M", "base.img"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	if r := xpboot(t, dir, "image", "put", filepath.Join(tree, "WINDOWS"), filepath.Join(tree, "boot.ini"), "base.img:/"); r.code != 0 {
		t.Fatalf("put: %+v", r)
	}
	base := filepath.Join(dir, "base.img")
	before := sha256File(t, base)
	const target = "iqn.2026-01.org.xpboot:xp"
	clients := clientsFile(t, `[
		{"mac":"52:54:00:7a:00:01","iqn":"iqn.2026-01.org.example:lab-a","name":"LAB-A"},
		{"mac":"52:54:00:7a:00:02","iqn":"iqn.2026-01.org.example:lab-b","name":"lab-b"},
		{"mac":"52:54:00:7a:00:03","iqn":"iqn.2026-01.org.example:lab-c"}]`)
	ov := filepath.Join(dir, "overlays")
	var stderr syncBuffer
	addr, stop := startServe(t, &stderr, "serve", "--image", base, "--iqn", target, "--overlay-dir", ov,
		"--dhcp", "proxy", "--interface", "lo", "--server-ip", "127.0.0.1", "--ipxe-dir", dir, "--clients", clients)
	for _, ini := range []string{"iqn.2026-01.org.example:lab-a", "iqn.2026-01.org.example:lab-b", "iqn.2026-01.org.example:lab-c"} {
		out := peertest.Run(t, 30*time.Second, inq, "-i", ini, "iscsi://"+addr+"/"+target+"/0")
		if !bytes.Contains(out, []byte("Vendor:XPBOOT")) {
			t.Fatalf("login as %s: %s", ini, out)
		}
	}
	stop()
	log := stderr.String()
	if strings.Count(log, "computer name written") != 2 {
		t.Errorf("want two named overlays in the log:\n%s", log)
	}
	system := "/WINDOWS/system32/config/SYSTEM"
	for ini, want := range map[string][2]string{
		"iqn.2026-01.org.example:lab-a": {"LAB-A", "LAB-A"},
		"iqn.2026-01.org.example:lab-b": {"LAB-B", "lab-b"},
	} {
		img := filepath.Join(ov, overlay.Name(ini)) + ":" + system
		for _, cs := range []string{"ControlSet001", "ControlSet002"} {
			for _, v := range []struct{ key, name, want string }{
				{cs + `\Control\ComputerName\ComputerName`, "ComputerName", want[0]},
				{cs + `\Control\ComputerName\ActiveComputerName`, "ComputerName", want[0]},
				{cs + `\Services\Tcpip\Parameters`, "Hostname", want[1]},
				{cs + `\Services\Tcpip\Parameters`, "NV Hostname", want[1]},
			} {
				r := xpboot(t, dir, "hive", "get", img, v.key, v.name)
				if r.code != 0 || strings.TrimSpace(r.stdout) != v.want {
					t.Errorf("%s: %s\\%s = %q (exit %d, %s), want %q", ini, v.key, v.name, r.stdout, r.code, r.stderr, v.want)
				}
			}
		}
		if r := xpboot(t, dir, "hive", "check", img); r.code != 0 {
			t.Errorf("hive check of %s: %+v", img, r)
		}
	}
	// The unnamed client's overlay keeps the base's name; the base is
	// byte-unchanged.
	unnamed := filepath.Join(ov, overlay.Name("iqn.2026-01.org.example:lab-c")) + ":" + system
	baseName := xpboot(t, dir, "hive", "get", "base.img:"+system, `ControlSet001\Control\ComputerName\ComputerName`, "ComputerName")
	if r := xpboot(t, dir, "hive", "get", unnamed, `ControlSet001\Control\ComputerName\ComputerName`, "ComputerName"); r.stdout != baseName.stdout {
		t.Errorf("unnamed client: %q, base: %q", r.stdout, baseName.stdout)
	}
	if sha256File(t, base) != before {
		t.Error("the base changed")
	}
}

func sha256File(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// ntfsImage makes a 64 MiB disk image at path whose one partition mkntfs
// formats with the XP geometry.
func ntfsImage(t *testing.T, path string) {
	t.Helper()
	mkntfs := peertest.Need(t, "mkntfs", "ntfs-3g")
	if r := xpboot(t, filepath.Dir(path), "image", "create", "--fs", "none", "--size", "64M", filepath.Base(path)); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	img, err := imagefs.Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	p := img.Partitions()[0]
	img.Dev.Close()
	part := path + ".part"
	if err := os.WriteFile(part, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(part)
	if err := os.Truncate(part, p.Size); err != nil {
		t.Fatal(err)
	}
	peertest.Run(t, time.Minute, mkntfs, "-q", "-F", "-f", "-p", "63", "-H", "255", "-S", "63", part)
	b, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, p.Offset); err != nil {
		t.Fatal(err)
	}
}
