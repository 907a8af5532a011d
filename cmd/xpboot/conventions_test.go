package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestNormalizeArgs(t *testing.T) {
	app := newApp(nil, io.Discard, io.Discard)
	tests := []struct {
		in, want []string
	}{
		{[]string{"image", "info", "disk.img", "--json"}, []string{"image", "info", "--json", "disk.img"}},
		{[]string{"image", "convert", "s.img", "out.vmdk", "--to", "vmdk"}, []string{"image", "convert", "--to", "vmdk", "s.img", "out.vmdk"}},
		// The value of an option stays with it, also when it looks like one.
		{[]string{"hive", "set", "M", "K", "v", "-t", "multi_sz", "a", "b"}, []string{"hive", "set", "-t", "multi_sz", "M", "K", "v", "a", "b"}},
		// "--" ends the options: what follows is data, and stays data.
		{[]string{"hive", "set", "M", "K", "v", "--", "--json"}, []string{"hive", "set", "--", "M", "K", "v", "--json"}},
		// A negative number that names no option is an argument.
		{[]string{"hive", "set", "-t", "dword", "M", "K", "v", "-1"}, []string{"hive", "set", "-t", "dword", "--", "M", "K", "v", "-1"}},
		// "-" is stdin/stdout, an argument.
		{[]string{"image", "get", "d.img:/f", "-", "--quiet"}, []string{"--quiet", "image", "get", "d.img:/f", "-"}},
		// App-wide options move before the command.
		{[]string{"image", "ls", "d.img:/", "--log-level", "debug"}, []string{"--log-level", "debug", "image", "ls", "d.img:/"}},
		{[]string{"--quiet", "image", "ls", "d.img:/"}, []string{"--quiet", "image", "ls", "d.img:/"}},
		// --opt=value is one token.
		{[]string{"image", "create", "d.img", "--size=64M"}, []string{"image", "create", "--size=64M", "d.img"}},
		// Unknown options stay options, so that they are reported.
		{[]string{"image", "info", "d.img", "--bogus"}, []string{"image", "info", "--bogus", "d.img"}},
		// Unknown commands are left to the app.
		{[]string{"bogus", "x", "--json"}, []string{"bogus", "x", "--json"}},
		{[]string{"image", "info", "--help"}, []string{"image", "info", "--help"}},
	}
	for _, tt := range tests {
		got := normalizeArgs(app, append([]string{"xpboot"}, tt.in...))[1:]
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// commandPaths lists every command of the app as the words that run it.
func commandPaths(cmds []*cli.Command, prefix []string) (leaves, groups [][]string) {
	for _, c := range cmds {
		if c.Hidden || c.Name == "help" {
			continue
		}
		path := append(append([]string{}, prefix...), c.Name)
		if len(c.Subcommands) > 0 {
			groups = append(groups, path)
			l, g := commandPaths(c.Subcommands, path)
			leaves, groups = append(leaves, l...), append(groups, g...)
			continue
		}
		leaves = append(leaves, path)
	}
	return leaves, groups
}

// TestConventionsEveryCommand runs the built binary: every command answers
// --help on stdout with status 0, and an unknown option or subcommand with
// status 2, a usage on stderr and nothing on stdout.
func TestConventionsEveryCommand(t *testing.T) {
	app := newApp(nil, io.Discard, io.Discard)
	leaves, groups := commandPaths(app.Commands, nil)
	if len(leaves) < 15 {
		t.Fatalf("only %d commands found: %q", len(leaves), leaves)
	}
	dir := t.TempDir()
	for _, path := range leaves {
		name := strings.Join(path, " ")
		r := xpboot(t, dir, append(path, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, path[len(path)-1]) {
			t.Errorf("%s --help: %+v", name, r)
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Count(line, "(default") > 1 || strings.Contains(line, "(default: false)") {
				t.Errorf("%s --help: default shown twice or for a boolean: %q", name, line)
			}
		}
		for _, bad := range [][]string{{"--no-such-option"}, {"arg", "--no-such-option"}} {
			r = xpboot(t, dir, append(path, bad...)...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "usage: xpboot "+name) {
				t.Errorf("%s %q: want exit 2, usage on stderr, empty stdout; got %+v", name, bad, r)
			}
		}
	}
	for _, path := range append(groups, []string{}) {
		name := strings.Join(path, " ")
		for _, extra := range [][]string{nil, {"no-such-command"}} {
			r := xpboot(t, dir, append(append([]string{}, path...), extra...)...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "usage: xpboot") {
				t.Errorf("xpboot %s %q: want exit 2, usage on stderr, empty stdout; got %+v", name, extra, r)
			}
		}
	}
}

// TestOptionsAfterArguments: an option after the arguments is an option,
// never data.
func TestOptionsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"image", "create", "disk.img", "--size", "64M"},
		{"hive", "new", "M"},
		{"hive", "set", "M", `K`, "v", "a", "b", "--type", "multi_sz"},
	} {
		if r := xpboot(t, dir, args...); r.code != 0 {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	r := xpboot(t, dir, "image", "info", "disk.img", "--json")
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
		t.Errorf("image info IMG --json: %+v", r)
	}
	if r := xpboot(t, dir, "hive", "get", "M", "K", "v"); r.code != 0 || r.stdout != "a\nb\n" {
		t.Errorf("multi_sz set with --type after the data: %+v", r)
	}
	// hive set has no --json: refused as a usage error, the hive untouched.
	before := xpboot(t, dir, "hive", "get", "M", "K", "v").stdout
	r = xpboot(t, dir, "hive", "set", "M", "K", "v", "x", "--json")
	if r.code != exitUsage {
		t.Errorf("hive set … --json: %+v", r)
	}
	if after := xpboot(t, dir, "hive", "get", "M", "K", "v").stdout; after != before {
		t.Errorf("refused set changed the value: %q → %q", before, after)
	}
}

// TestInterruptedExitStatus: a command whose context a signal cancelled
// ends with status 130 and "interrupted", not with its own error.
func TestInterruptedExitStatus(t *testing.T) {
	dir := t.TempDir()
	if r := xpboot(t, dir, "image", "create", "--size", "64M", "disk.img"); r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	var stderr strings.Builder
	app := newApp(nil, io.Discard, &stderr)
	code := -1
	saved := cli.OsExiter
	cli.OsExiter = func(c int) { code = c }
	defer func() { cli.OsExiter = saved }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as SIGINT does in main
	runApp(ctx, app, []string{"xpboot", "image", "convert", filepath.Join(dir, "disk.img"), filepath.Join(dir, "out.vmdk"), "--to", "vmdk"})
	if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q; want 130 and \"interrupted\"", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "out.vmdk")); err == nil {
		t.Error("an interrupted convert left its output")
	}
}

func TestFormatVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}}
	if got := formatVersion(info); !strings.Contains(got, "-buildvcs=auto") {
		t.Errorf("without VCS: %q", got)
	}
	info.Settings = []debug.BuildSetting{
		{Key: "vcs.revision", Value: "058d3cb0123456789abcdef"},
		{Key: "vcs.time", Value: "2026-12-06T17:03:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	want := "(devel) commit 058d3cb01234 2026-12-06T17:03:00Z dirty go1.26.0"
	if got := formatVersion(info); got != want {
		t.Errorf("formatVersion = %q, want %q", got, want)
	}
}

func TestDefaultInUsage(t *testing.T) {
	for _, c := range []struct {
		in, rest, def string
		ok            bool
	}{
		{"worker goroutines (default: all cores)", "worker goroutines", "all cores", true},
		{"address to serve on (default the interface's first IPv4)", "address to serve on", "the interface's first IPv4", true},
		{"container (default: from OUT's extension: .vmdk vmdk, .img/.raw/.bin raw) ", "container", "from OUT's extension: .vmdk vmdk, .img/.raw/.bin raw", true},
		{"name (default: the source CD's (if any), else 4)", "name", "the source CD's (if any), else 4", true},
		{"no default here", "", "", false},
		{"a note (see docs)", "", "", false},
		{"(defaulted) value", "", "", false},
		{"x (defaults: 1)", "", "", false},
		{"x (default:)", "", "", false},
		{"unbalanced default: 1)", "", "", false},
	} {
		rest, def, ok := defaultInUsage(c.in)
		if rest != c.rest || def != c.def || ok != c.ok {
			t.Errorf("defaultInUsage(%q) = %q, %q, %v; want %q, %q, %v", c.in, rest, def, ok, c.rest, c.def, c.ok)
		}
	}
}
