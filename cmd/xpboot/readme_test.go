package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xpboot/xpboot/internal/peertest"
)

// readmeSkip marks, on the line before a README code block, a block this
// test does not run, with the reason.
const readmeSkip = "<!-- TestREADMEExamples skips this: "

// readmeBuild is README's build command. TestMain builds the binary the
// tests run with the same flags, so in the examples this command stands
// for that binary.
const readmeBuild = "CGO_ENABLED=0 go build -buildvcs=auto -tags urfave_cli_no_docs -o xpboot ./cmd/xpboot"

// readmeBlock is one ```sh block of README.md.
type readmeBlock struct {
	line int    // of the opening fence
	skip string // the reason README gives for not running it
	text string
}

// readmeBlocks returns README's shell blocks in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sh" {
			continue
		}
		b := readmeBlock{line: i + 1}
		if i > 0 && strings.HasPrefix(lines[i-1], readmeSkip) {
			b.skip = strings.TrimSuffix(strings.TrimPrefix(lines[i-1], readmeSkip), " -->")
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b.text = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, b)
	}
	return blocks
}

// TestREADMEExamples runs README's shell examples as written, in order,
// in one directory, with the binary the tests built as ./xpboot: every
// command must succeed. Blocks that need what only a user has (an XP CD,
// driver folders, an installed image), servers, and the test commands are
// marked in README and skipped here.
func TestREADMEExamples(t *testing.T) {
	// sanboot media's ISO carries iPXE and ISOLINUX from Debian's packages.
	peertest.NeedFile(t, "/usr/lib/ipxe/ipxe.lkrn", "ipxe")
	peertest.NeedFile(t, "/usr/lib/ISOLINUX/isolinux.bin", "isolinux")
	dir := t.TempDir()
	if err := os.Symlink(xpbootBinary, filepath.Join(dir, "xpboot")); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, b := range readmeBlocks(t) {
		if b.skip != "" {
			t.Logf("README.md:%d: skipped: %s", b.line, b.skip)
			continue
		}
		if strings.Contains(b.text, "go build") {
			if !strings.Contains(b.text, readmeBuild) {
				t.Fatalf("README.md:%d: the build command is not %q, the one TestMain builds with", b.line, readmeBuild)
			}
			b.text = strings.ReplaceAll(b.text, readmeBuild, "true")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+b.text)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README.md:%d: %v\n%s\noutput:\n%s", b.line, err, b.text, out)
		}
		ran++
	}
	// The examples that make and use images must have run, not been
	// marked away.
	if ran < 7 {
		t.Errorf("only %d README blocks ran", ran)
	}
}
