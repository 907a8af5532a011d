package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestComplete(t *testing.T) {
	app := newApp(nil, io.Discard, io.Discard)
	tests := []struct {
		words []string
		want  string
	}{
		{[]string{"im"}, "image"},
		{[]string{"image", "conv"}, "convert"},
		{[]string{"image", "convert", "--ex"}, "--exact"},
		{[]string{"image", "convert", "--to", "vmdk-s"}, "vmdk-stream"},
		{[]string{"image", "convert", "in.img", "--to", "vhd-"}, "vhd-fixed"},
		{[]string{"image", "create", "--fs", ""}, "fat32 none"},
		{[]string{"--log-level", "w"}, "warn"},
		{[]string{"hive", "set", "-t", "multi"}, "multi_sz"},
		{[]string{"hive", "set", "-t", "dword", "M", "K", "--", "--"}, ""}, // after --, files
		{[]string{"image", "info", "x"}, ""},
	}
	for _, tt := range tests {
		got := strings.Join(complete(app, tt.words), " ")
		if got != tt.want {
			t.Errorf("complete(%q) = %q, want %q", tt.words, got, tt.want)
		}
	}
}

// TestCompletionScripts loads the bash script into a real bash under the
// name the binary was invoked as, and completes a value of --to.
func TestCompletionScripts(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "xpboot")
	b, err := os.ReadFile(xpbootBinary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `source <(./xpboot completion bash)
complete -p ./xpboot >/dev/null || exit 3
COMP_WORDS=(./xpboot image convert --to vmdk-)
COMP_CWORD=4
_xpboot_complete
echo "${COMPREPLY[*]}"`
	cmd := exec.Command(bash, "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "vmdk-flat vmdk-stream" {
		t.Errorf("bash completion: %v %q", err, out)
	}
	for _, shell := range []string{"zsh", "fish"} {
		r := xpboot(t, dir, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: %+v", shell, r)
		}
	}
}
