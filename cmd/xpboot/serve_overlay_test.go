package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/imagefs/vhd"
	"github.com/xpboot/xpboot/imagefs/vmdk"
	"github.com/xpboot/xpboot/internal/peertest"
	"github.com/xpboot/xpboot/overlay"
	"github.com/xpboot/xpboot/sanboot"
	"github.com/xpboot/xpboot/serve"
)

// startServe runs `xpboot serve args…` on 127.0.0.1:0 and returns its
// address and a stop function that cancels it and waits.
func startServe(t *testing.T, stderr *syncBuffer, args ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServeApp(ctx, stderr, append(args, "--listen", "127.0.0.1:0")...) }()
	stop := func() { stopServe(t, cancel, done, stderr) }
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stop
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeOverlays serves a VMDK base with --overlay-dir to two initiators
// (qemu's iscsi driver with different initiator-name values): each writes
// different data to the same LBAs and reads back its own; the base file is
// byte-unchanged; each overlay is DIR/<iqn>.vmdk, a delta qemu-img checks
// and flattens to base+that client's writes; after a restart a client's
// overlay is reopened with its data, and deleting it resets the client.
func TestServeOverlays(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	qio := peertest.Need(t, "qemu-io", "qemu-utils")
	if out, _ := peertest.Try(t, 20*time.Second, qemu, "--help"); !bytes.Contains(out, []byte("iscsi")) {
		peertest.Missing(t, "qemu-img's iscsi driver", "qemu-block-extra")
	}
	dir := t.TempDir()
	const size = 8 << 20
	base := filepath.Join(dir, "xp.vmdk")
	d, err := vmdk.Create(base, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for i := range want[:1<<20] {
		want[i] = byte(i * 7)
	}
	if _, err := d.WriteAt(want[:1<<20], 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	baseBytes, _ := os.ReadFile(base)
	ovDir := filepath.Join(dir, "overlays")
	iqn := "iqn.2026-01.org.xpboot:xp"
	clients := map[string]byte{"iqn.2026-01.org.xpboot:client-a": 0xaa, "iqn.2026-01.org.xpboot:client-b": 0xbb}

	var stderr syncBuffer
	addr, stop := startServe(t, &stderr, "serve", "--image", base, "--overlay-dir", ovDir)
	host, port, _ := strings.Cut(addr, ":")
	opts := func(initiator string) string {
		return fmt.Sprintf("driver=iscsi,transport=tcp,portal=%s:%s,target=%s,lun=0,initiator-name=%s", host, port, iqn, initiator)
	}
	read := func(initiator string) []byte {
		out := filepath.Join(dir, "read.raw")
		os.Remove(out)
		peertest.Run(t, time.Minute, qemu, "convert", "--image-opts", opts(initiator), "-O", "raw", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	expect := map[string][]byte{}
	for ini, p := range clients {
		// A partial grain at 1000 (copy-on-write from the base) and a
		// whole grain at 4 MiB.
		peertest.Run(t, time.Minute, qio, "--image-opts", opts(ini),
			"-c", fmt.Sprintf("write -P 0x%02x 1024 4096", p), "-c", fmt.Sprintf("write -P 0x%02x 4M 64k", p), "-c", "flush")
		w := bytes.Clone(want)
		copy(w[1024:], bytes.Repeat([]byte{p}, 4096))
		copy(w[4<<20:], bytes.Repeat([]byte{p}, 64<<10))
		expect[ini] = w
	}
	for ini := range clients {
		if !bytes.Equal(read(ini), expect[ini]) {
			t.Errorf("%s reads other data than base + its own writes", ini)
		}
	}
	stop()
	log := stderr.String()
	for ini := range clients {
		if !strings.Contains(log, "client overlay created") || !strings.Contains(log, "initiator="+ini) {
			t.Errorf("no overlay log line for %s:\n%s", ini, log)
		}
	}
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Fatal("the base image changed")
	}
	for ini := range clients {
		ov := filepath.Join(ovDir, overlay.Name(ini))
		info := peertest.Run(t, time.Minute, qemu, "info", ov)
		if !bytes.Contains(info, []byte("backing file: ")) {
			t.Errorf("qemu-img info %s: no backing file\n%s", ov, info)
		}
		peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", ov)
		flat := filepath.Join(dir, "flat.raw")
		os.Remove(flat)
		peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", ov, flat)
		if b, _ := os.ReadFile(flat); !bytes.Equal(b, expect[ini]) {
			t.Errorf("overlay %s flattened by qemu-img differs from base + writes", ov)
		}
	}
	// An overlay becomes a new base with xpboot image convert.
	{
		ov := filepath.Join(ovDir, overlay.Name("iqn.2026-01.org.xpboot:client-a"))
		nb := filepath.Join(dir, "new-base.vmdk")
		app := newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		app.ExitErrHandler = func(*cli.Context, error) {}
		if err := app.Run([]string{"xpboot", "image", "convert", "--to", "vmdk", ov, nb}); err != nil {
			t.Fatalf("image convert of an overlay: %v", err)
		}
		nd, err := vmdk.Open(nb, false)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, nd.Size())
		nd.ReadAt(got, 0)
		nd.Close()
		if nd.Parent() != nil || !bytes.Equal(got, expect["iqn.2026-01.org.xpboot:client-a"]) {
			t.Error("image convert of an overlay is not base + the client's writes")
		}
	}
	if got := overlay.Name("iqn.2026-01.org.xpboot:Client A/../x"); got != "iqn.2026-01.org.xpboot_client_a_.._x.vmdk" {
		t.Errorf("overlayName = %q", got)
	}

	// Restart: client a's overlay is reopened; b is reset by deleting its
	// overlay.
	a, b := "iqn.2026-01.org.xpboot:client-a", "iqn.2026-01.org.xpboot:client-b"
	if err := os.Remove(filepath.Join(ovDir, overlay.Name(b))); err != nil {
		t.Fatal(err)
	}
	var stderr2 syncBuffer
	_, stop = startServe(t, &stderr2, "serve", "--image", base, "--overlay-dir", ovDir)
	addr2 := listenRE.FindStringSubmatch(stderr2.String())[1]
	host, port, _ = strings.Cut(addr2, ":")
	if !bytes.Equal(read(a), expect[a]) {
		t.Error("client a lost its data across a restart")
	}
	if !bytes.Equal(read(b), want) {
		t.Error("client b does not read the base after its overlay was deleted")
	}
	stop()
	if !strings.Contains(stderr2.String(), "client overlay reopened") {
		t.Errorf("no reopen log line:\n%s", stderr2.String())
	}
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Fatal("the base image changed")
	}
}

// TestServeOverlayFlagErrors checks the refusals of --overlay-dir.
func TestServeOverlayFlagErrors(t *testing.T) {
	raw := sparseImage(t, "disk.img", 1<<20)
	dir := t.TempDir()
	vhdBase := filepath.Join(t.TempDir(), "disk.vhd")
	vd, err := vhd.Create(vhdBase, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	vd.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--image", raw, "--overlay-dir", dir, "--read-only"}, "exclude each other"},
		{[]string{"serve", "--config", raw, "--overlay-dir", dir}, "needs --image"},
		{[]string{"serve", "--image", vhdBase, "--overlay-dir", dir, "--listen", "127.0.0.1:0"}, "overlays need a raw or VMDK base"},
	} {
		var stderr syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := runServeApp(ctx, &stderr, tc.args...)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestOverlayWanted: clients listed with "overlay": false get the base, all
// other clients and initiator names xpboot did not hand out get overlays.
func TestOverlayWanted(t *testing.T) {
	no := false
	p, err := sanboot.NewStaticPolicy(sanboot.PolicyConfig{
		Default: sanboot.Target{Server: "192.0.2.1", IQN: "iqn.2026-01.org.xpboot:xp"},
		Overlay: true, // what --overlay-dir sets
		Clients: []sanboot.ClientEntry{
			{MAC: "52:54:00:00:00:01", IQN: "iqn.2026-01.org.example:nooverlay", Overlay: &no},
			{MAC: "52:54:00:00:00:02"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for iqn, want := range map[string]bool{
		"iqn.2026-01.org.example:nooverlay":                false,
		"iqn.2026-01.org.xpboot:client-52-54-00-00-00-02":  true,
		"iqn.2026-01.org.xpboot:client-52-54-00-00-00-99":  true, // unlisted, served by default
		"iqn.1991-05.com.microsoft:somewhere-else.example": true,
	} {
		if got := serve.OverlayWanted(p, iqn); got != want {
			t.Errorf("serve.OverlayWanted(%s) = %v, want %v", iqn, got, want)
		}
	}
	if !serve.OverlayWanted(nil, "iqn.2026-01.x:y") {
		t.Error("no policy (--dhcp off): want an overlay")
	}
}

// TestServeOverlayKill9 runs `xpboot serve --overlay-dir` in a child process
// (this test binary re-executed), writes through iSCSI with a SYNCHRONIZE
// CACHE, kills the server with SIGKILL and checks that the overlay passes
// qemu-img check and holds every flushed write, the base unchanged.
func TestServeOverlayKill9(t *testing.T) {
	if args := os.Getenv("XPBOOT_TEST_SERVE_ARGS"); args != "" {
		// The child: serve until killed.
		app := newApp(strings.NewReader(""), &bytes.Buffer{}, os.Stderr)
		app.ExitErrHandler = func(*cli.Context, error) {}
		err := app.RunContext(context.Background(), append([]string{"xpboot"}, strings.Split(args, "\n")...))
		fmt.Fprintln(os.Stderr, "serve returned:", err)
		os.Exit(3)
	}
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	qio := peertest.Need(t, "qemu-io", "qemu-utils")
	if out, _ := peertest.Try(t, 20*time.Second, qemu, "--help"); !bytes.Contains(out, []byte("iscsi")) {
		peertest.Missing(t, "qemu-img's iscsi driver", "qemu-block-extra")
	}
	dir := t.TempDir()
	const size = 8 << 20
	base := filepath.Join(dir, "xp.vmdk")
	d, err := vmdk.Create(base, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0x5a}, size)
	if _, err := d.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	d.Close()
	baseBytes, _ := os.ReadFile(base)
	ovDir := filepath.Join(dir, "ov")
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeOverlayKill9$")
	cmd.Env = append(os.Environ(), "XPBOOT_TEST_SERVE_ARGS="+strings.Join([]string{"serve", "--image", base, "--overlay-dir", ovDir, "--listen", "127.0.0.1:0"}, "\n"))
	cmd.Stderr, cmd.Stdout = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var addr string
	for deadline := time.Now().Add(60 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		if m := listenRE.FindSubmatch(b); m != nil {
			addr = string(m[1])
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", b)
		}
	}
	host, port, _ := strings.Cut(addr, ":")
	ini := "iqn.2026-01.org.xpboot:client-k"
	opts := fmt.Sprintf("driver=iscsi,transport=tcp,portal=%s:%s,target=iqn.2026-01.org.xpboot:xp,lun=0,initiator-name=%s", host, port, ini)
	var cmds []string
	for i := range 40 {
		off := int64(i) * 200 * 1024
		n := int64(512 + i*1000)
		cmds = append(cmds, "-c", fmt.Sprintf("write -P 0x%02x %d %d", i+1, off, n))
		copy(want[off:off+n], bytes.Repeat([]byte{byte(i + 1)}, int(n)))
	}
	cmds = append(cmds, "-c", "flush")
	peertest.Run(t, time.Minute, qio, append([]string{"--image-opts", opts}, cmds...)...)
	// The session is over; log in again and keep writing while the server
	// is killed: only the flushed writes above are promised.
	// qemu's iSCSI driver retries a vanished target forever, so the busy
	// writer is bounded and killed once the server is gone.
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer bcancel()
	busy := exec.CommandContext(bctx, qio, "--image-opts", opts, "-c", "write -P 0xee 7M 512k", "-c", "write -P 0xef 7M 512k", "-c", "write -P 0xee 7M 512k")
	busy.WaitDelay = 5 * time.Second
	busy.Start()
	time.Sleep(50 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	if busy.Process != nil {
		busy.Process.Kill()
	}
	busy.Wait()

	ov := filepath.Join(ovDir, overlay.Name(ini))
	peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", ov)
	flat := filepath.Join(dir, "flat.raw")
	peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", ov, flat)
	got, _ := os.ReadFile(flat)
	if len(got) != size || !bytes.Equal(got[:7<<20], want[:7<<20]) {
		t.Error("flushed writes lost after kill -9")
	}
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Error("the base image changed")
	}
	// xpboot reopens the overlay too.
	od, err := vmdk.Open(ov, true)
	if err != nil {
		t.Fatalf("xpboot cannot reopen the overlay after kill -9: %v", err)
	}
	od.Close()
}

// overlayBootASM is a boot sector that writes a per-boot token (RDTSC) into
// LBA 100 through INT 13h extended write, waits a second, reads LBA 100
// back and prints "TOKEN=xxxxxxxx OK" on COM1 if it holds its own token
// ("MISMATCH" if another client's write shows through).
const overlayBootASM = `bits 16
org 0x7c00
start:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, 0x7c00
	sti
	mov [drive], dl
	mov dx, 0x3f9
	xor al, al
	out dx, al
	mov dx, 0x3fb
	mov al, 0x80
	out dx, al
	mov dx, 0x3f8
	mov al, 1
	out dx, al
	mov dx, 0x3f9
	xor al, al
	out dx, al
	mov dx, 0x3fb
	mov al, 3
	out dx, al
	rdtsc
	xor eax, edx
	mov [token], eax
	call fill
	mov si, dap
	mov ah, 0x43
	xor al, al
	mov dl, [drive]
	int 0x13
	jc fail
	mov ah, 0x86
	mov cx, 0x000f
	mov dx, 0x4240
	int 0x15
	xor eax, eax
	mov [word dap+2], word 1
	call fill0
	mov si, dap
	mov ah, 0x42
	mov dl, [drive]
	int 0x13
	jc fail
	mov ebx, [token]
	push ds
	mov ax, 0x1000
	mov ds, ax
	xor si, si
	mov cx, 128
.cmp:
	lodsd
	cmp eax, ebx
	jne bad
	loop .cmp
	pop ds
	mov si, msg_tok
	call puts
	mov ebp, [token]
	mov cx, 8
.hex:
	rol ebp, 4
	mov ax, bp
	and al, 0x0f
	add al, '0'
	cmp al, '9'
	jbe .digit
	add al, 'a' - '9' - 1
.digit:
	call putc
	loop .hex
	mov si, msg_ok
	call puts
halt:
	cli
	hlt
	jmp halt
bad:
	pop ds
	mov si, msg_bad
	call puts
	jmp halt
fail:
	mov si, msg_err
	call puts
	jmp halt
fill:
	mov eax, [token]
fill0:
	push es
	push ax
	mov ax, 0x1000
	mov es, ax
	pop ax
	xor di, di
	mov cx, 128
	rep stosd
	pop es
	ret
puts:
	lodsb
	test al, al
	jz .done
	call putc
	jmp puts
.done:
	ret
putc:
	push dx
	push ax
	mov dx, 0x3fd
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	pop ax
	mov dx, 0x3f8
	out dx, al
	pop dx
	ret
msg_tok: db "TOKEN=", 0
msg_ok: db " OK", 13, 10, 0
msg_bad: db "MISMATCH", 13, 10, 0
msg_err: db "INT13 ERROR", 13, 10, 0
drive: db 0
align 4
token: dd 0
dap: db 16, 0
	dw 1
	dw 0, 0x1000
	dq 100
times 510 - ($ - $$) db 0
	dw 0xaa55
`

var tokenRE = regexp.MustCompile(`TOKEN=([0-9a-f]{8}) OK`)

// TestServeOverlayE2E is issue 6 (e): two QEMU clients with Debian's iPXE
// ROM boot the same VMDK base at the same time from `xpboot serve --dhcp
// full --overlay-dir` in a network namespace; each boot sector writes its
// own token to LBA 100 through INT 13h, waits, reads it back and prints it.
// Each client must read its own token, each overlay (named after the IQN
// DHCP gave the client) must hold it and pass qemu-img check, and the base
// must be unchanged.
func TestServeOverlayE2E(t *testing.T) {
	peertest.NeedRoot(t, "creates network namespaces and tap devices")
	ip := peertest.Need(t, "ip", "iproute2")
	qemuSys := peertest.Need(t, "qemu-system-x86_64", "qemu-system-x86")
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	nasm := peertest.Need(t, "nasm", "nasm")
	peertest.NeedFile(t, e2eROM, "ipxe-qemu")
	if testing.Short() {
		t.Skip("boots virtual machines")
	}
	dir := t.TempDir()
	asm := filepath.Join(dir, "boot.asm")
	if err := os.WriteFile(asm, []byte(overlayBootASM), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "boot.bin")
	peertest.Run(t, 30*time.Second, nasm, "-f", "bin", "-o", bin, asm)
	boot, err := os.ReadFile(bin)
	if err != nil || len(boot) != 512 {
		t.Fatalf("boot sector: %d bytes, %v", len(boot), err)
	}
	base := filepath.Join(dir, "xp.vmdk")
	d, err := vmdk.Create(base, 32<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(boot, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(bytes.Repeat([]byte{0x42}, 512), 100*512); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	baseBytes, _ := os.ReadFile(base)
	ovDir := filepath.Join(dir, "overlays")

	const subnet = "10.78.6."
	ns := fmt.Sprintf("xpbo%d", os.Getpid())
	peertest.Run(t, 10*time.Second, ip, "netns", "add", ns)
	t.Cleanup(func() { peertest.Try(t, 10*time.Second, ip, "netns", "del", ns) })
	in := func(args ...string) {
		peertest.Run(t, 10*time.Second, ip, append([]string{"netns", "exec", ns, "ip"}, args...)...)
	}
	in("link", "set", "lo", "up")
	in("link", "add", "br0", "type", "bridge")
	in("addr", "add", subnet+"1/24", "dev", "br0")
	in("link", "set", "br0", "up")
	for _, tap := range []string{"tap0", "tap1"} {
		in("tuntap", "add", tap, "mode", "tap")
		in("link", "set", tap, "master", "br0")
		in("link", "set", tap, "up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	slog, stop := startNetnsServe(t, ctx, ip, "netns", "exec", ns, xpbootBinary, "--log-level", "debug", "serve",
		"--image", base, "--overlay-dir", ovDir, "--iqn", "iqn.2026-01.org.xpboot:e2e", "--listen", subnet+"1:3260",
		"--interface", "br0", "--no-gateway", "--ipxe-dir", t.TempDir(), "--dhcp", "full",
		"--dhcp-range", subnet+"100-"+subnet+"110", "--state-dir", filepath.Join(dir, "state"))
	macs := []string{"52:54:00:78:06:01", "52:54:00:78:06:02"}
	serials := make([]string, len(macs))
	for i, mac := range macs {
		serials[i] = filepath.Join(dir, fmt.Sprintf("serial%d.log", i))
		vm := exec.CommandContext(ctx, ip, "netns", "exec", ns, qemuSys, "-machine", "pc", "-m", "128", "-display", "none", "-no-reboot",
			"-boot", "n", "-serial", "file:"+serials[i], "-monitor", "none", "-parallel", "none",
			"-netdev", fmt.Sprintf("tap,id=n0,ifname=tap%d,script=no,downscript=no", i),
			"-device", "e1000,netdev=n0,mac="+mac+",romfile="+e2eROM,
			peertest.QEMUAccel()[0], peertest.QEMUAccel()[1])
		var vout syncBuffer
		vm.Stdout, vm.Stderr = &vout, &vout
		vm.WaitDelay = 5 * time.Second
		if err := vm.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			vm.Process.Kill()
			vm.Wait()
		}()
	}
	tokens := make([]string, len(macs))
	deadline := time.Now().Add(120 * time.Second)
	for done := 0; done < len(macs); {
		if time.Now().After(deadline) {
			t.Fatalf("no result within 120 s; tokens %q", tokens)
		}
		time.Sleep(250 * time.Millisecond)
		done = 0
		for i := range macs {
			b, _ := os.ReadFile(serials[i])
			con := string(b)
			if strings.Contains(con, "MISMATCH") || strings.Contains(con, "INT13 ERROR") {
				t.Fatalf("client %s: %q", macs[i], con)
			}
			if m := tokenRE.FindStringSubmatch(con); m != nil {
				tokens[i] = m[1]
				done++
			}
		}
	}
	t.Logf("tokens %q", tokens)
	if tokens[0] == tokens[1] {
		t.Fatalf("both clients wrote the same token %s: isolation not shown", tokens[0])
	}
	if err := stop(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	log := slog.String()
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Error("the base image changed")
	}
	for i, mac := range macs {
		iqn := "iqn.2026-01.org.xpboot:client-" + strings.ReplaceAll(mac, ":", "-")
		ov := filepath.Join(ovDir, overlay.Name(iqn))
		peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", ov)
		od, err := vmdk.Open(ov, false)
		if err != nil {
			t.Fatal(err)
		}
		sec := make([]byte, 512)
		od.ReadAt(sec, 100*512)
		od.Close()
		var want [4]byte
		tok, _ := hexToken(tokens[i])
		binary.LittleEndian.PutUint32(want[:], tok)
		if !bytes.Equal(sec, bytes.Repeat(want[:], 128)) {
			t.Errorf("overlay %s does not hold client %s's token %s at LBA 100: %x", ov, mac, tokens[i], sec[:8])
		}
		found := false
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "client overlay created") && strings.Contains(line, "client="+mac) {
				found = true
			}
		}
		if !found {
			t.Errorf("no 'client overlay created' log line naming client=%s", mac)
		}
	}
}

func hexToken(s string) (uint32, error) {
	var v uint32
	_, err := fmt.Sscanf(s, "%08x", &v)
	return v, err
}

// TestServeOverlayRawBase serves a raw disk made by `xpboot image create`
// with overlays in a directory elsewhere: a client's write lands in its
// overlay, which qemu-img reads as a chain through the flat descriptor
// serve wrote beside it; the base is unchanged; after serve stops, `xpboot
// image put` into the base is refused while the overlay exists and works
// once it is deleted.
func TestServeOverlayRawBase(t *testing.T) {
	qemu := peertest.Need(t, "qemu-img", "qemu-utils")
	qio := peertest.Need(t, "qemu-io", "qemu-utils")
	if out, _ := peertest.Try(t, 20*time.Second, qemu, "--help"); !bytes.Contains(out, []byte("iscsi")) {
		peertest.Missing(t, "qemu-img's iscsi driver", "qemu-block-extra")
	}
	dir := t.TempDir()
	if r := xpboot(t, dir, "image", "create", "--size", "40M", "base.img"); r.code != 0 {
		t.Fatalf("image create: %+v", r)
	}
	base := filepath.Join(dir, "base.img")
	baseBytes, _ := os.ReadFile(base)
	ovDir := filepath.Join(t.TempDir(), "overlays")
	var stderr syncBuffer
	addr, stop := startServe(t, &stderr, "serve", "--image", base, "--iqn", "iqn.2026-01.org.xpboot:raw", "--overlay-dir", ovDir)
	host, port, _ := strings.Cut(addr, ":")
	ini := "iqn.2026-01.org.xpboot:client-raw"
	peertest.Run(t, time.Minute, qio, "--image-opts",
		fmt.Sprintf("driver=iscsi,transport=tcp,portal=%s:%s,target=iqn.2026-01.org.xpboot:raw,lun=0,initiator-name=%s", host, port, ini),
		"-c", "write -P 0x5a 30M 8k", "-c", "flush")
	stop()
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Fatal("the raw base changed")
	}
	ov := filepath.Join(ovDir, overlay.Name(ini))
	chain := peertest.Run(t, time.Minute, qemu, "info", "--backing-chain", ov)
	if !bytes.Contains(chain, []byte("@base-base.img.vmdk")) {
		t.Errorf("qemu-img info --backing-chain:\n%s", chain)
	}
	peertest.Run(t, time.Minute, qemu, "check", "-f", "vmdk", ov)
	flat := filepath.Join(dir, "flat.raw")
	peertest.Run(t, time.Minute, qemu, "convert", "-f", "vmdk", "-O", "raw", ov, flat)
	want := bytes.Clone(baseBytes)
	copy(want[30<<20:], bytes.Repeat([]byte{0x5a}, 8<<10))
	if b, _ := os.ReadFile(flat); !bytes.Equal(b, want) {
		t.Error("qemu-img convert of the overlay is not the base plus the client's write")
	}

	if err := os.WriteFile(filepath.Join(dir, "NEW.TXT"), []byte("hello\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := xpboot(t, dir, "image", "put", "NEW.TXT", "base.img:/")
	if r.code == 0 || !strings.Contains(r.stderr, "base of delta disks") || !strings.Contains(r.stderr, overlay.Name(ini)) {
		t.Errorf("image put into a base with an overlay elsewhere: %+v", r)
	}
	if b, _ := os.ReadFile(base); !bytes.Equal(b, baseBytes) {
		t.Fatal("the refused put changed the base")
	}
	if err := os.Remove(ov); err != nil {
		t.Fatal(err)
	}
	if r := xpboot(t, dir, "image", "put", "NEW.TXT", "base.img:/"); r.code != 0 {
		t.Errorf("image put after the overlay was deleted: %+v", r)
	}
}
