package bootcheck_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/xpboot/xpboot/bootcheck"
	"github.com/xpboot/xpboot/integrate"
	"github.com/xpboot/xpboot/integrate/installed/installedtest"
)

// FuzzCheck feeds arbitrary SYSTEM hives to the check: it reports or
// fails, never panics or hangs.
func FuzzCheck(f *testing.F) {
	f.Add(installedtest.SystemHive(f))
	root := f.TempDir()
	installedtest.WriteXP(f, root)
	p := filepath.Join(root, "WINDOWS/system32/config/SYSTEM")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, err := bootcheck.Check(integrate.DirFS(root), bootcheck.Options{Devices: []string{installedtest.NICID}})
		if err == nil && rep == nil {
			t.Fatal("no report and no error")
		}
	})
}
