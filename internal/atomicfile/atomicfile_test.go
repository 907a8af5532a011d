package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCommitAndAbort(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprint("named=", named), func(t *testing.T) {
			dir := t.TempDir()
			final := filepath.Join(dir, "out.img")
			create := Create
			if named {
				create = createNamed
			}
			f, err := create(final, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("first")
			if _, err := os.Stat(final); err == nil {
				t.Fatal("the output has its name before Commit")
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(final); string(b) != "first" {
				t.Errorf("content %q", b)
			}
			if st, _ := os.Stat(final); st.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want 0640", st.Mode().Perm())
			}
			// Replacing keeps the existing file's mode; Abort leaves it.
			os.Chmod(final, 0o600)
			g, err := create(final, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			g.WriteString("second")
			g.Abort()
			g.Abort()
			if b, _ := os.ReadFile(final); string(b) != "first" {
				t.Errorf("aborted write changed the output: %q", b)
			}
			h, _ := Create(final, 0o644)
			h.WriteString("third")
			if err := h.Commit(); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(final); st.Mode().Perm() != 0o600 {
				t.Errorf("replaced file's mode %v, want 0600 kept", st.Mode().Perm())
			}
			if err := h.Commit(); err == nil {
				t.Error("second Commit succeeded")
			}
			if left, _ := os.ReadDir(dir); len(left) != 1 {
				t.Errorf("left in the directory: %v", left)
			}
		})
	}
}

// TestKilledWriterLeavesNothing kills a process in the middle of a write,
// with SIGKILL: an unnamed file leaves nothing; a named temporary file is
// removed by the next Clean of the directory, while a live writer's is
// kept.
func TestKilledWriterLeavesNothing(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprint("named=", named), func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$")
			cmd.Env = append(os.Environ(), "ATOMICFILE_HELPER="+dir, fmt.Sprint("ATOMICFILE_NAMED=", named))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 7)
			if _, err := out.Read(buf); err != nil || string(buf) != "writing" {
				t.Fatalf("helper: %q %v", buf, err)
			}
			// Our own temporary file, alive: Clean must keep it.
			mine, err := createNamed(filepath.Join(dir, "mine"), 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer mine.Abort()
			cmd.Process.Kill()
			cmd.Wait()
			removed := Clean(dir)
			left, _ := os.ReadDir(dir)
			var names []string
			for _, e := range left {
				names = append(names, e.Name())
			}
			if len(names) != 1 || !strings.HasPrefix(names[0], ".mine"+marker) {
				t.Errorf("after Clean (removed %v): %v, want only the live temporary file", removed, names)
			}
			if named && len(removed) != 1 {
				t.Errorf("Clean removed %v, want the killed writer's file", removed)
			}
		})
	}
}

// TestHelperWriter is the process TestKilledWriterLeavesNothing kills.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv("ATOMICFILE_HELPER")
	if dir == "" {
		t.Skip("helper process only")
	}
	create := Create
	if os.Getenv("ATOMICFILE_NAMED") == "true" {
		create = createNamed
	}
	f, err := create(filepath.Join(dir, "big.img"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 1<<20))
	os.Stdout.WriteString("writing")
	time.Sleep(time.Minute) // killed here
}

func TestOwner(t *testing.T) {
	for name, want := range map[string]bool{
		".disk.img.xpboot-tmp-123.4567-abcdef": true,
		".a.b.xpboot-tmp-1.2-x":                true,
		"disk.img.xpboot-tmp-123.4567-abcdef":  false, // not hidden
		".disk.img.xpboot-tmp-abc.4567-x":      false,
		".disk.img.xpboot-tmp-123-abcdef":      false, // no start time
		".disk.img.tmp-123":                    false,
	} {
		if _, _, ok := owner(name); ok != want {
			t.Errorf("owner(%q) ok=%v, want %v", name, ok, want)
		}
	}
}

// TestCreateModeDoesNotInherit: an output holding secrets gets exactly its
// mode even when it replaces a world-readable file.
func TestCreateModeDoesNotInherit(t *testing.T) {
	final := filepath.Join(t.TempDir(), "media.iso")
	os.WriteFile(final, []byte("old"), 0o644)
	f, err := CreateMode(final, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("secret")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(final); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

// TestNamed covers outputs created by path: Commit replaces and keeps the
// replaced file's mode, CommitNew refuses an existing name, Abort and a
// failed commit leave nothing, and a dead process's name is cleaned.
func TestNamed(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "disk.vmdk")
	write := func(n *Named, s string) {
		t.Helper()
		if err := os.WriteFile(n.Temp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, commit := range []struct {
		name string
		fn   func(*Named) error
	}{{"Commit", (*Named).Commit}, {"CommitNoSync", (*Named).CommitNoSync}} {
		os.WriteFile(final, []byte("old"), 0o600)
		os.Chmod(final, 0o600)
		n, err := CreateNamed(final)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(n.Temp) != dir || !strings.Contains(n.Temp, marker) {
			t.Fatalf("temporary name %s", n.Temp)
		}
		write(n, commit.name)
		if b, _ := os.ReadFile(final); string(b) != "old" {
			t.Fatalf("%s: output replaced before commit: %q", commit.name, b)
		}
		if err := commit.fn(n); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(final); string(b) != commit.name {
			t.Errorf("%s: content %q", commit.name, b)
		}
		if st, _ := os.Stat(final); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want the replaced file's 0600", commit.name, st.Mode().Perm())
		}
		if err := commit.fn(n); err == nil {
			t.Errorf("%s: second commit succeeded", commit.name)
		}
	}

	// CommitNew never replaces, also a name that appeared after the check.
	n, _ := CreateNamed(final)
	write(n, "new")
	if err := n.CommitNew(); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CommitNew over an existing file: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(final); string(b) != "CommitNoSync" {
		t.Errorf("refused CommitNew changed the output: %q", b)
	}
	fresh := filepath.Join(dir, "delta.vmdk")
	n, _ = CreateNamed(fresh)
	write(n, "delta")
	if err := n.CommitNew(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(fresh); string(b) != "delta" {
		t.Errorf("CommitNew content %q", b)
	}

	// Abort removes the temporary file, twice is harmless.
	n, _ = CreateNamed(filepath.Join(dir, "aborted"))
	write(n, "x")
	n.Abort()
	n.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("left in the directory: %v", ents)
	}

	// A temporary name of a process that is gone is removed by the next
	// CreateNamed in the directory.
	stale := filepath.Join(dir, ".disk.vmdk"+marker+"999999999.1-dead")
	os.WriteFile(stale, nil, 0o644)
	n, _ = CreateNamed(final)
	defer n.Abort()
	if _, err := os.Stat(stale); err == nil {
		t.Error("a dead process's temporary file survived CreateNamed")
	}
}
