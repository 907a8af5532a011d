package overlay

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/blockdev"
	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
)

func TestName(t *testing.T) {
	for _, tc := range []struct{ iqn, want string }{
		{"iqn.2026-01.org.xpboot:client-a", "iqn.2026-01.org.xpboot_client-a.vmdk"},
		{"iqn.2026-01.org.xpboot:Client A/../x", "iqn.2026-01.org.xpboot_client_a_.._x.vmdk"},
		{"eui.02004567A425678D", "eui.02004567a425678d.vmdk"},
	} {
		got := Name(tc.iqn)
		if got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.iqn, got, tc.want)
		}
		// The stem names the same file.
		if again := Name(strings.TrimSuffix(got, ".vmdk")); again != got {
			t.Errorf("Name of the stem %q = %q", got, again)
		}
	}
}

func TestPath(t *testing.T) {
	dir := "/srv/ov"
	for _, tc := range []struct {
		client, want string
		bad          bool
	}{
		{client: "iqn.2026-01.org.xpboot:pc1", want: "/srv/ov/iqn.2026-01.org.xpboot_pc1.vmdk"},
		{client: "iqn.2026-01.org.xpboot_pc1", want: "/srv/ov/iqn.2026-01.org.xpboot_pc1.vmdk"},
		{client: "pc1.vmdk", want: "/srv/ov/pc1.vmdk"},
		{client: "../pc1.vmdk", bad: true},
		{client: "sub/pc1.vmdk", bad: true},
		{client: ".vmdk", bad: true},
		{client: "", bad: true},
		{client: "../../etc/passwd", want: "/srv/ov/.._.._etc_passwd.vmdk"},
	} {
		got, err := Path(dir, tc.client)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q (error %v)", tc.client, got, err, tc.want, tc.bad)
		}
	}
}

// rawBase writes a raw base of 4 MiB with a pattern in its first MiB.
func rawBase(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	data := make([]byte, 4<<20)
	for i := range data[:1<<20] {
		data[i] = byte(i*7 + i>>9)
	}
	p := filepath.Join(dir, "xp.img")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

// TestBaseOpen: a client's first Open creates its delta over the raw
// base's flat descriptor, writes go to the delta only, and the next Open
// reopens it; clients without an overlay share a read-only view that no
// client can close; the computer-name hook runs on new overlays only, and
// a failing hook leaves a fresh, unnamed overlay.
func TestBaseOpen(t *testing.T) {
	top := t.TempDir()
	ovDir := filepath.Join(top, "ov")
	os.Mkdir(ovDir, 0o755)
	raw, data := rawBase(t, top)
	var named []string
	b, err := OpenBase(raw, ovDir, Options{SetComputerName: func(path, name string) error {
		named = append(named, name)
		if name == "BAD" {
			return errors.New("no installed Windows")
		}
		d, err := vmdk.Open(path, true)
		if err != nil {
			return err
		}
		d.WriteAt([]byte(name), 2<<20)
		return d.Close()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Format() != "raw" || b.Size() != 4<<20 || filepath.Dir(b.ParentPath()) != ovDir {
		t.Errorf("base: format %s, size %d, parent %s", b.Format(), b.Size(), b.ParentPath())
	}
	if err := b.Register(); err != nil {
		t.Fatal(err)
	}

	const ini = "iqn.2026-01.org.xpboot:pc1"
	d, res, err := b.Open(ini, "PC1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Existed || res.Named != "PC1" || res.NameErr != nil || res.Path != filepath.Join(ovDir, Name(ini)) {
		t.Errorf("first Open: %+v", res)
	}
	if d.ReadOnly() || blockdev.CanDiscard(d) {
		t.Errorf("overlay: ReadOnly %v, CanDiscard %v", d.ReadOnly(), blockdev.CanDiscard(d))
	}
	got := make([]byte, 3)
	d.ReadAt(got, 2<<20)
	if string(got) != "PC1" {
		t.Errorf("the computer name hook's write is not in the overlay: %q", got)
	}
	if _, err := d.WriteAt([]byte("client data"), 100); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(raw); !bytes.Equal(b, data) {
		t.Error("the base changed")
	}
	d, res, err = b.Open(ini, "PC1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Existed || res.Named != "" || len(named) != 1 {
		t.Errorf("second Open: %+v, hook calls %q", res, named)
	}
	got = make([]byte, 11)
	d.ReadAt(got, 100)
	if string(got) != "client data" {
		t.Errorf("reopened overlay reads %q", got)
	}
	d.Close()

	d, res, err = b.Open("iqn.2026-01.org.xpboot:pc2", "BAD")
	if err != nil {
		t.Fatal(err)
	}
	if res.Existed || res.Named != "" || res.NameErr == nil || !strings.Contains(res.NameErr.Error(), "no installed Windows") {
		t.Errorf("Open with a failing name hook: %+v", res)
	}
	got = make([]byte, 3)
	d.ReadAt(got, 2<<20)
	if !bytes.Equal(got, data[2<<20:2<<20+3]) {
		t.Errorf("unnamed overlay does not read the base: %q", got)
	}
	d.Close()

	sh := b.Shared()
	if !sh.ReadOnly() || blockdev.CanDiscard(sh) {
		t.Errorf("shared base: ReadOnly %v, CanDiscard %v", sh.ReadOnly(), blockdev.CanDiscard(sh))
	}
	if _, err := sh.WriteAt([]byte("x"), 0); !errors.Is(err, blockdev.ErrReadOnly) {
		t.Errorf("write to the shared base: %v", err)
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.ReadAt(got, 0); err != nil {
		t.Errorf("the shared base was closed by a client: %v", err)
	}
}

// TestOpenBaseRefusals: a VHD base and a directory holding another raw
// base's overlays are ErrBase (the user must choose again).
func TestOpenBaseRefusals(t *testing.T) {
	top := t.TempDir()
	vd := filepath.Join(top, "xp.vhd")
	d, err := vhd.Create(vd, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := OpenBase(vd, top, Options{}); !errors.Is(err, ErrBase) || !strings.Contains(err.Error(), "overlays need a raw or VMDK base") {
		t.Errorf("VHD base: %v", err)
	}
	raw, _ := rawBase(t, top)
	ovDir := filepath.Join(top, "ov")
	os.Mkdir(ovDir, 0o755)
	b, err := OpenBase(raw, ovDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	other := filepath.Join(top, "other")
	os.Mkdir(other, 0o755)
	raw2, _ := rawBase(t, other)
	os.Truncate(raw2, 8<<20)
	if _, err := OpenBase(raw2, ovDir, Options{}); !errors.Is(err, ErrBase) || !strings.Contains(err.Error(), "another raw base") {
		t.Errorf("a second base in the same directory: %v", err)
	}
}

// TestListReset: List shows each client's overlay with its state (ok,
// stale after the base changed, parent missing) and whether a server has it
// open; Reset refuses an open overlay, missing clients and files that are
// not overlays, and removes the rest so that the next Open starts afresh.
func TestListReset(t *testing.T) {
	top := t.TempDir()
	ovDir := filepath.Join(top, "ov")
	os.Mkdir(ovDir, 0o755)
	raw, _ := rawBase(t, top)
	b, err := OpenBase(raw, ovDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	open := func(ini string) *vmdk.Disk {
		d, _, err := b.Open(ini, "")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	held := open("iqn.2026-01.org.xpboot:held")
	defer held.Close()
	open("iqn.2026-01.org.xpboot:idle").Close()

	// A VMDK base elsewhere whose overlay goes stale when it is written,
	// and an overlay whose parent is gone.
	vb := filepath.Join(top, "v.vmdk")
	vd, err := vmdk.Create(vb, 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	vd.Close()
	sd, err := vmdk.CreateDelta(filepath.Join(ovDir, "stale.vmdk"), vb, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd.Close()
	vd, _ = vmdk.Open(vb, true)
	vd.WriteAt([]byte("new"), 0) // a new CID
	vd.Close()
	gone := filepath.Join(top, "gone.vmdk")
	gd, _ := vmdk.Create(gone, 4<<20, nil)
	gd.Close()
	od, err := vmdk.CreateDelta(filepath.Join(ovDir, "orphan.vmdk"), gone, nil)
	if err != nil {
		t.Fatal(err)
	}
	od.Close()
	os.Remove(gone)
	os.WriteFile(filepath.Join(ovDir, "notes.txt"), []byte("x"), 0o644)

	list, err := List(ovDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		state string
		inUse bool
	}{
		"iqn.2026-01.org.xpboot_held": {StateOK, true},
		"iqn.2026-01.org.xpboot_idle": {StateOK, false},
		"orphan":                      {StateNoParent, false},
		"stale":                       {StateStale, false},
	}
	if len(list) != len(want) {
		t.Fatalf("List = %+v", list)
	}
	for _, in := range list {
		w, ok := want[in.Client]
		if !ok || in.State != w.state || in.InUse != w.inUse || in.Size != 4<<20 {
			t.Errorf("%s: %+v, want %+v", in.Client, in, w)
		}
		if strings.HasPrefix(in.Client, "iqn") && (in.Base != raw || in.Parent != b.ParentPath()) {
			t.Errorf("%s: parent %s base %s", in.Client, in.Parent, in.Base)
		}
	}

	if _, err := Reset(ovDir, "iqn.2026-01.org.xpboot:held"); !errors.Is(err, ErrInUse) {
		t.Errorf("Reset of an open overlay: %v", err)
	}
	if _, err := Reset(ovDir, "iqn.2026-01.org.xpboot:nobody"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reset of a missing overlay: %v", err)
	}
	if _, err := Reset(ovDir, filepath.Base(b.ParentPath())); !errors.Is(err, ErrNotOverlay) {
		t.Errorf("Reset of the base's descriptor: %v", err)
	}
	for _, c := range []string{"iqn.2026-01.org.xpboot:idle", "stale", "orphan.vmdk"} {
		p, err := Reset(ovDir, c)
		if err != nil {
			t.Errorf("Reset(%s): %v", c, err)
		} else if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Reset(%s) left %s", c, p)
		}
	}
	held.Close()
	if _, err := Reset(ovDir, "iqn.2026-01.org.xpboot_held"); err != nil {
		t.Errorf("Reset after the client closed: %v", err)
	}
	if list, err := List(ovDir); err != nil || len(list) != 0 {
		t.Errorf("List after the resets: %+v, %v", list, err)
	}
	// The next login starts from the base again.
	d, res, err := b.Open("iqn.2026-01.org.xpboot:held", "")
	if err != nil || res.Existed {
		t.Fatalf("Open after Reset: %+v, %v", res, err)
	}
	d.Close()
}

func TestParseLocks(t *testing.T) {
	const text = `1: FLOCK  ADVISORY  WRITE 4242 08:01:131090 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4243 08:01:555 0 EOF
2: POSIX  ADVISORY  READ 77 fd:00:9 0 EOF
3: OFDLCK ADVISORY  WRITE -1 103:02:12 0 EOF
garbage
4: FLOCK ADVISORY WRITE 1 zz:01:5 0 EOF
`
	got := parseLocks(strings.NewReader(text))
	want := []fileID{{mkdev(8, 1), 131090}, {mkdev(0xfd, 0), 9}, {mkdev(0x103, 2), 12}}
	if len(got) != len(want) {
		t.Errorf("parseLocks = %v, want %v", got, want)
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("%v missing from %v", w, got)
		}
	}
	if mkdev(8, 1) != 0x801 || mkdev(259, 2) != 0x10302 {
		t.Errorf("mkdev(8,1) = %#x, mkdev(259,2) = %#x", mkdev(8, 1), mkdev(259, 2))
	}
}
