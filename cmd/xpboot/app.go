package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// env is what every command action needs from the process: its streams, its
// logger and the output preferences chosen by global flags. It is built once
// per run by newApp and passed to the command builders, so the program has no
// package-level state.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	log            *slog.Logger
	quiet          bool
}

// newApp builds the xpboot command tree over the given streams.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, nil))}
	app := &cli.App{
		Name:      "xpboot",
		Usage:     "build and serve diskless Windows XP / 2003 / 2000 iSCSI boot images",
		Version:   version(),
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "log level: debug, info, warn or error"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars and only warnings in the log"},
		},
		Before: func(c *cli.Context) error { return e.configure(c) },
		Commands: []*cli.Command{
			imageCommand(e),
			hiveCommand(e),
			integrateCommand(e),
			checkCommand(e),
			setupCommand(e),
			isoCommand(e),
			serveCommand(e),
			overlayCommand(e),
			sanbootCommand(e),
			completionCommand(e),
			manCommand(e),
			completeCommand(e),
		},
		ExitErrHandler: func(c *cli.Context, err error) {
			if err == nil {
				return
			}
			code := 1
			var ec cli.ExitCoder
			if errors.As(err, &ec) {
				code = ec.ExitCode()
			}
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(stderr, "xpboot: "+msg)
			}
			cli.OsExiter(code)
		},
	}
	applyConventions(app)
	return app
}

func (e *env) configure(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.String("log-level")), 2)
	}
	e.quiet = c.Bool("quiet")
	if e.quiet && level < slog.LevelWarn {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		e.log = slog.New(slog.NewTextHandler(e.stderr, opts))
	case "json":
		e.log = slog.New(slog.NewJSONHandler(e.stderr, opts))
	default:
		return cli.Exit(fmt.Sprintf("--log-format %q: want text or json", c.String("log-format")), 2)
	}
	return nil
}

// version reports the module version and the commit, commit time and dirty
// flag the binary was built from. Go stamps them only when the build asks
// for VCS information; a GOFLAGS of -buildvcs=false (set on some build
// machines) turns that off, so README's build command passes -buildvcs=auto.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return formatVersion(info)
}

func formatVersion(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v + " (no commit recorded: build with go build -buildvcs=auto)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v += " commit " + rev
	if at != "" {
		v += " " + at
	}
	if modified == "true" {
		v += " dirty"
	}
	return v + " " + info.GoVersion
}

// printJSON writes v as indented JSON, the machine-readable form of every
// command with --json.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress returns a callback that draws a progress bar on a terminal and
// does nothing otherwise (or with --quiet), and a function that finishes the
// bar. Packages report progress through such callbacks and never print.
func (e *env) progress(desc string, total int64) (update func(done int64), finish func()) {
	u, f := e.meter(desc)
	return func(done int64) { u(done, total) }, f
}

// meter is progress for operations that learn their total as they go: the
// bar is created on the first update and resized when the total changes.
func (e *env) meter(desc string) (update func(done, total int64), finish func()) {
	f, ok := e.stderr.(*os.File)
	if e.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return func(int64, int64) {}, func() {}
	}
	var bar *progressbar.ProgressBar
	update = func(done, total int64) {
		if total <= 0 {
			return
		}
		if bar == nil {
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(f),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100_000_000),
				// The finished bar stays, showing 100 % and the time taken.
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
			)
			_ = bar.RenderBlank() // starts the bar's clock now, for its rate
		} else if bar.GetMax64() != total {
			bar.ChangeMax64(total)
		}
		_ = bar.Set64(done)
	}
	return update, func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}
