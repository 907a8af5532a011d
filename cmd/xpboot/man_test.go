package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"github.com/xpboot/xpboot/internal/peertest"
)

// TestManPage: the page is roff for section 1, has a subsection for every
// visible command under its full name (and none for hidden ones or for
// urfave/cli's help command), lists each command's options with their
// value placeholders, and its exit statuses are docs/cli.md's.
func TestManPage(t *testing.T) {
	r := xpboot(t, "", "man")
	if r.code != 0 || !strings.HasPrefix(r.stdout, ".nh\n.TH xpboot 1 ") {
		t.Fatalf("man: code %d, %.80q", r.code, r.stdout)
	}
	page := r.stdout
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			path := prefix + " " + c.Name
			head := ".SS " + roffQuote(strings.TrimSpace(path+" "+c.ArgsUsage)) + "\n"
			if c.Hidden {
				if strings.Contains(page, ".SS "+roffQuote(path)) || strings.Contains(page, ".SS "+roffQuote(path+" ")) {
					t.Errorf("hidden command %q is on the page", path)
				}
				continue
			}
			if !strings.Contains(page, head) {
				t.Errorf("no subsection %q", head)
			}
			walk(path, c.Subcommands)
		}
	}
	walk("xpboot", app.Commands)
	for _, bad := range []string{"__complete", `"xpboot help`, " help [command]"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, want := range []string{
		`\fB\-\-format\fR \fIvalue\fR, \fB\-O\fR \fIvalue\fR` + "\n",
		`\fB\-\-quiet\fR, \fB\-q\fR` + "\n",
		`(default: "raw")`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(string(doc), -1) {
		if !strings.Contains(page, ".TP\n"+m[1]+"\n") {
			t.Errorf("exit status %s of docs/cli.md is not on the page", m[1])
		}
	}
	// The page is valid input for groff, the formatter man(1) runs: no
	// warning of any kind.
	groff := peertest.Need(t, "groff", "groff-base")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

func TestRoffText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain words", "plain words"},
		{"--to vmdk-flat", `\-\-to vmdk\-flat`},
		{`C:\WINDOWS`, `C:\eWINDOWS`},
		{".LOG files", `\&.LOG files`},
		{"'quoted'", `\&'quoted'`},
		{"10–20 µs", `10\[u2013]20 \[u00B5]s`},
	} {
		if got := roffText(c.in); got != c.want {
			t.Errorf("roffText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := roffQuote(`say "hi"`); got != `"say ""hi"""` {
		t.Errorf("roffQuote: %q", got)
	}
}

func TestManParagraphs(t *testing.T) {
	var b strings.Builder
	manParagraphs(&b, "First line\nsame paragraph.\n\nSecond:\n   xpboot man > x.1\n   man ./x.1\nAfter.")
	want := "First line\nsame paragraph.\n.PP\nSecond:\n.PP\n.EX\nxpboot man > x.1\nman ./x.1\n.EE\nAfter.\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
