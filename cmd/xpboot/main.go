// Command xpboot takes a Linux box or a CI job from nothing to a diskless
// Windows XP / Server 2003 / 2000 PC booting over iSCSI: disk images, offline
// registry hives, driver integration and the boot server in one binary.
//
// This package only parses flags, fills config structs, calls the library
// packages and renders their results as text or JSON.
package main

import (
	"context"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the command winds down (exit status 130);
		// a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	// Temporary files that killed xpboot runs left in this directory go
	// (their owner process is gone); outputs clean their own directories.
	atomicfile.Clean(".")
	// XPBOOT_CPUPROFILE=FILE writes a CPU profile of the whole command, up
	// to its exit whatever the status (for `go tool pprof`; `serve` ends
	// with Ctrl-C; docs/performance.md).
	if path := os.Getenv("XPBOOT_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stopProfile := func() {
				pprof.StopCPUProfile()
				f.Close()
			}
			defer stopProfile()
			exit := cli.OsExiter
			cli.OsExiter = func(code int) {
				stopProfile()
				exit(code)
			}
		}
	}
	app := newApp(os.Stdin, os.Stdout, os.Stderr)
	if err := runApp(ctx, app, os.Args); err != nil {
		// cli.Exit errors are printed and turned into exit codes by the
		// app's ExitErrHandler; anything else lands here.
		app.ErrWriter.Write([]byte("xpboot: " + err.Error() + "\n"))
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
