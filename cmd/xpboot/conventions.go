package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"
)

// The command-line conventions every xpboot command follows (docs/cli.md):
//
//   - options may come before or after the arguments; "--" ends the
//     options, and an argument that looks like an option is never stored as
//     data;
//   - exit status 0 success, 1 failure or findings, 2 usage error, 3 could
//     not read the input (check commands), 130 interrupted;
//   - usage errors print a short usage on stderr, never help text on stdout
//     where a script expects data or JSON.
//
// urfave/cli stops parsing options at the first argument and answers usage
// errors with help on stdout and exit status 1 or 3, so the app is adjusted
// once here (applyConventions) and the arguments are put in its order
// before it runs (normalizeArgs).

// Exit statuses shared by every command.
const (
	exitFailure     = 1
	exitUsage       = 2
	exitUnreadable  = 3
	exitInterrupted = 130
)

// usageError is a usage error: exit status 2 after a short usage on stderr.
func usageError(c *cli.Context, err error) error {
	path := commandPath(c)
	msg := fmt.Sprintf("%s: %v\n", path, err)
	if u := usageLine(c); u != "" {
		msg += "usage: " + u + "\n"
	}
	msg += fmt.Sprintf("Run '%s --help' for the options.\n", path)
	io.WriteString(c.App.ErrWriter, msg)
	return cli.Exit("", exitUsage)
}

// commandPath names the running command as the user typed it, e.g.
// "xpboot image info".
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" {
			names = append(names, ctx.Command.Name)
		}
	}
	names = append(names, c.App.Name)
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	// The root command carries the app's name too.
	if len(names) > 1 && names[0] == names[1] {
		names = names[1:]
	}
	return strings.Join(names, " ")
}

func usageLine(c *cli.Context) string {
	cmd := c.Command
	if cmd == nil {
		return ""
	}
	path := commandPath(c)
	var subs []string
	for _, s := range cmd.Subcommands {
		if !s.Hidden && s.Name != "help" {
			subs = append(subs, s.Name)
		}
	}
	if len(subs) > 0 {
		return path + " " + strings.Join(subs, "|") + " [options] [arguments]"
	}
	args := strings.TrimSpace(cmd.ArgsUsage)
	if args == "" {
		return path + " [options]"
	}
	return path + " [options] " + args
}

// applyConventions adjusts every command of app to the conventions above:
// usage errors (unknown options, missing required options, unknown
// subcommands, a group run without a subcommand) exit 2 with a short usage
// on stderr, and an interrupted run exits 130.
func applyConventions(app *cli.App) {
	onUsage := func(c *cli.Context, err error, _ bool) error { return usageError(c, err) }
	app.OnUsageError = onUsage
	app.CommandNotFound = func(c *cli.Context, name string) {
		usageError(c, fmt.Errorf("unknown command %q", name))
		cli.OsExiter(exitUsage)
	}
	if app.Action == nil {
		app.Action = groupAction
	}
	for _, f := range app.Flags {
		tidyHelp(f)
	}
	for _, cmd := range app.Commands {
		adjustCommand(cmd, onUsage)
	}
	next := app.ExitErrHandler
	app.ExitErrHandler = func(c *cli.Context, err error) {
		if err != nil && interrupted(c, err) {
			io.WriteString(c.App.ErrWriter, "xpboot: interrupted\n")
			cli.OsExiter(exitInterrupted)
			return
		}
		if next != nil {
			next(c, err)
		}
	}
}

// interrupted reports whether err ends a run whose context a signal
// cancelled (main's context is cancelled only by SIGINT or SIGTERM).
func interrupted(c *cli.Context, err error) bool {
	if c == nil || c.Context == nil || c.Context.Err() == nil {
		return false
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() == exitUsage {
		return false
	}
	return true
}

func adjustCommand(cmd *cli.Command, onUsage cli.OnUsageErrorFunc) {
	cmd.OnUsageError = onUsage
	for _, f := range cmd.Flags {
		tidyHelp(f)
	}
	// urfave/cli answers a missing required option with the whole help on
	// stdout; check them here instead, as a usage error.
	var required []string
	for _, f := range cmd.Flags {
		if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
			required = append(required, f.Names()[0])
			clearRequired(f)
		}
	}
	if len(required) > 0 {
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			for _, name := range required {
				if !c.IsSet(name) {
					return usageError(c, fmt.Errorf("option --%s is required", name))
				}
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
	if len(cmd.Subcommands) > 0 && cmd.Action == nil {
		cmd.Action = groupAction
	}
	for _, sub := range cmd.Subcommands {
		adjustCommand(sub, onUsage)
	}
}

// defaultInUsage finds a default stated at the end of a flag's usage
// text, such as "(default: all cores)" or "(default the interface's
// first IPv4)", parentheses inside it allowed, and returns the text before
// it and the default. (A scan rather than a regular expression: this runs
// over every flag at every start, and compiling and running the
// expression cost more than a million instructions of each command.)
func defaultInUsage(u string) (rest, def string, ok bool) {
	t := strings.TrimRightFunc(u, unicode.IsSpace)
	if !strings.HasSuffix(t, ")") {
		return "", "", false
	}
	open, depth := -1, 0
	for i := len(t) - 1; i >= 0 && open < 0; i-- {
		switch t[i] {
		case ')':
			depth++
		case '(':
			if depth--; depth == 0 {
				open = i
			}
		}
	}
	if open < 0 {
		return "", "", false
	}
	after, found := strings.CutPrefix(t[open+1:len(t)-1], "default")
	if !found {
		return "", "", false
	}
	after = strings.TrimPrefix(after, ":")
	if after == "" || !unicode.IsSpace(rune(after[0])) {
		return "", "", false
	}
	return strings.TrimRightFunc(t[:open], unicode.IsSpace), strings.TrimLeftFunc(after, unicode.IsSpace), true
}

// tidyHelp keeps --help free of urfave/cli's artefacts: a default written
// in the usage text becomes the flag's default text (instead of a second
// "(default: 0)" after it), and boolean flags show no "(default: false)"
// and no placeholder taken from a `quoted` word of their usage.
func tidyHelp(f cli.Flag) {
	usage := func(u *string, def *string) {
		if rest, d, ok := defaultInUsage(*u); ok {
			*u, *def = rest, d
		}
	}
	switch f := f.(type) {
	case *cli.BoolFlag:
		f.DisableDefaultText = true
		f.Usage = strings.ReplaceAll(f.Usage, "`", "")
	case *cli.StringFlag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.IntFlag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.Int64Flag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.UintFlag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.Uint64Flag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.DurationFlag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.StringSliceFlag:
		usage(&f.Usage, &f.DefaultText)
	case *cli.PathFlag:
		usage(&f.Usage, &f.DefaultText)
	}
}

// groupAction runs for a command group (or the app) given no subcommand or
// an unknown one.
func groupAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError(c, fmt.Errorf("unknown command %q", c.Args().First()))
	}
	return usageError(c, errors.New("a command is required"))
}

// clearRequired turns off the Required field of the flag types xpboot uses;
// applyConventions checks those flags itself.
func clearRequired(f cli.Flag) {
	switch f := f.(type) {
	case *cli.StringFlag:
		f.Required = false
	case *cli.IntFlag:
		f.Required = false
	case *cli.Int64Flag:
		f.Required = false
	case *cli.UintFlag:
		f.Required = false
	case *cli.Uint64Flag:
		f.Required = false
	case *cli.BoolFlag:
		f.Required = false
	case *cli.StringSliceFlag:
		f.Required = false
	case *cli.DurationFlag:
		f.Required = false
	case *cli.PathFlag:
		f.Required = false
	}
}

// normalizeArgs puts a command line into the order urfave/cli parses:
// every option of the command before its arguments, app-wide options
// (--quiet, --log-level …) before the command, and "--" before arguments
// that start with "-". Options may therefore follow arguments, as in
// `xpboot image info disk.img --json`. A value that an option takes is kept
// with it even when it starts with "-"; a token after "--" is always an
// argument; "-" alone (stdin/stdout) and negative numbers that name no
// option are arguments.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	rootFlags := withBuiltins(app.Flags, true)
	var global, path []string
	rest := args[1:]
	flags, cmds := rootFlags, app.Commands
	for {
		lead, i := takeOptions(rest, flags)
		if i < len(rest) && rest[i] != "--" {
			if cmd := findCommand(cmds, rest[i]); cmd != nil {
				if cmd.SkipFlagParsing {
					return args // __complete takes the words as typed
				}
				if len(path) == 0 {
					global = append(global, lead...)
				} else {
					path = append(path, lead...)
				}
				path = append(path, rest[i])
				flags, cmds = withBuiltins(cmd.Flags, false), cmd.Subcommands
				rest = rest[i+1:]
				continue
			}
		}
		break
	}
	if len(path) == 0 {
		return args // no known command: urfave/cli reports it
	}
	var opts, operands []string
	for i := 0; i < len(rest); i++ {
		tok := rest[i]
		if tok == "--" {
			operands = append(operands, rest[i+1:]...)
			break
		}
		name, hasValue, ok := optionName(tok)
		if !ok {
			operands = append(operands, tok)
			continue
		}
		f := lookupFlag(flags, name)
		dest := &opts
		if f == nil {
			if g := lookupFlag(rootFlags, name); g != nil && name != "help" && name != "h" {
				f, dest = g, &global
			} else if looksNumeric(name) {
				operands = append(operands, tok)
				continue
			}
		}
		*dest = append(*dest, tok)
		if f != nil && takesValue(f) && !hasValue && i+1 < len(rest) {
			i++
			*dest = append(*dest, rest[i])
		}
	}
	out := append([]string{args[0]}, global...)
	out = append(out, path...)
	out = append(out, opts...)
	for _, op := range operands {
		if len(op) > 1 && op[0] == '-' {
			out = append(out, "--")
			break
		}
	}
	return append(out, operands...)
}

// takeOptions returns the options (with their values) at the start of
// args, up to the first token that is not one, and that token's index.
func takeOptions(args []string, flags []cli.Flag) (opts []string, next int) {
	i := 0
	for i < len(args) {
		name, hasValue, ok := optionName(args[i])
		if !ok || args[i] == "--" {
			break
		}
		opts = append(opts, args[i])
		if f := lookupFlag(flags, name); f != nil && takesValue(f) && !hasValue && i+1 < len(args) {
			i++
			opts = append(opts, args[i])
		}
		i++
	}
	return opts, i
}

// optionName returns the name of an option token ("--json", "-t",
// "--type=dword"), whether the token carries its value, and false for an
// argument ("-", "x").
func optionName(tok string) (name string, hasValue, ok bool) {
	if len(tok) < 2 || tok[0] != '-' {
		return "", false, false
	}
	name = strings.TrimLeft(tok, "-")
	if name == "" {
		return "", false, tok == "--"
	}
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], true, true
	}
	return name, false, true
}

func looksNumeric(name string) bool {
	return name != "" && (name[0] >= '0' && name[0] <= '9' || name[0] == '.')
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return d.TakesValue()
	}
	return false
}

// withBuiltins adds the flags urfave/cli defines by itself: help on every
// command, version on the app.
func withBuiltins(flags []cli.Flag, root bool) []cli.Flag {
	out := append([]cli.Flag{&cli.BoolFlag{Name: "help", Aliases: []string{"h"}}}, flags...)
	if root {
		out = append(out, &cli.BoolFlag{Name: "version", Aliases: []string{"v"}})
	}
	return out
}

// runApp runs app on a command line in the conventions' order.
func runApp(ctx context.Context, app *cli.App, args []string) error {
	return app.RunContext(ctx, normalizeArgs(app, args))
}
