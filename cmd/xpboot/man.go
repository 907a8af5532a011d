package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// The manual page is written here from the command tree, with man(7)
// macros, instead of with urfave/cli's ToMan: that one goes through a
// Markdown renderer (blackfriday) whose package initialisers compile
// dozens of regular expressions, about 2.4 million instructions, at the
// start of every xpboot command. Built with -tags urfave_cli_no_docs (as
// README and the bench scripts build it), the binary links neither.

// manCommand prints the manual page, generated from the command tree so
// that it never disagrees with --help.
func manCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff), generated from the commands' help",
		Description: "Install it with, for example:\n" +
			"   ./xpboot man > xpboot.1 && sudo install -m 644 xpboot.1 /usr/local/share/man/man1/",
		Action: func(c *cli.Context) error {
			_, err := io.WriteString(e.stdout, manPage(c.App))
			return err
		},
	}
}

// manPage renders app as a section-1 manual page: name, synopsis,
// description, global options, every visible command with its usage,
// description and options (subcommands under their group's name), and
// the exit statuses of docs/cli.md (TestManPage holds them to its table).
func manPage(app *cli.App) string {
	var b strings.Builder
	b.WriteString(".nh\n")
	version, _, _ := strings.Cut(app.Version, " ") // the module version, without the commit
	fmt.Fprintf(&b, ".TH %s 1 \"\" %s \"User Commands\"\n", app.Name, roffQuote(app.Name+" "+version))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", app.Name, roffText(app.Usage))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIcommand options\\fR] [\\fIarguments\\fR ...]\n", app.Name)
	if app.Description != "" {
		b.WriteString(".SH DESCRIPTION\n")
		manParagraphs(&b, app.Description)
	}
	b.WriteString(".SH GLOBAL OPTIONS\n")
	manFlags(&b, app.VisibleFlags())
	b.WriteString(".SH COMMANDS\n")
	for _, c := range app.Commands {
		manCommandEntry(&b, app.Name, c)
	}
	b.WriteString(".SH EXIT STATUS\n" +
		".TP\n0\nsuccess\n" +
		".TP\n1\nfailure, or findings of a check command\n" +
		".TP\n2\nusage error (the usage goes to standard error)\n" +
		".TP\n3\na check command or a reader (iso ls, get, info) could not read its input at all\n" +
		".TP\n130\ninterrupted by SIGINT or SIGTERM\n")
	b.WriteString(".SH SEE ALSO\n\\fBqemu-img\\fR(1), \\fBhivexsh\\fR(1), \\fBtgtadm\\fR(8); README.md and docs/ in the xpboot sources\n")
	return b.String()
}

// helpName is the help command urfave/cli adds to the app and to each
// command it runs; the page describes --help once instead.
const helpName = "help"

// manCommandEntry writes one command and, under it, its subcommands.
func manCommandEntry(b *strings.Builder, parent string, c *cli.Command) {
	if c.Hidden || c.Name == helpName {
		return
	}
	path := parent + " " + c.Name
	fmt.Fprintf(b, ".SS %s\n", roffQuote(strings.TrimSpace(path+" "+c.ArgsUsage)))
	if len(c.Aliases) > 0 {
		fmt.Fprintf(b, "(also: %s)\n.br\n", roffText(strings.Join(c.Aliases, ", ")))
	}
	b.WriteString(roffText(c.Usage) + "\n")
	if c.Description != "" {
		b.WriteString(".PP\n")
		manParagraphs(b, c.Description)
	}
	// Every command takes --help; the page says so once, under GLOBAL
	// OPTIONS.
	flags := slices.DeleteFunc(slices.Clone(c.VisibleFlags()), func(f cli.Flag) bool { return f.Names()[0] == helpName })
	if len(flags) > 0 {
		b.WriteString(".PP\nOptions:\n")
		manFlags(b, flags)
	}
	for _, sub := range c.Subcommands {
		manCommandEntry(b, path, sub)
	}
}

// manFlags writes one tagged paragraph per visible flag: its names with
// the value placeholder, then its usage, default and environment.
func manFlags(b *strings.Builder, flags []cli.Flag) {
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		placeholder, usage := "", ""
		var env []string
		if d, ok := f.(cli.DocGenerationFlag); ok {
			placeholder, usage = splitPlaceholder(d.GetUsage())
			if !d.TakesValue() {
				placeholder = ""
			} else if placeholder == "" {
				placeholder = "value"
			}
			// As --help shows them: every default but that of a boolean
			// whose default text is off.
			if def := d.GetDefaultText(); def != "" {
				if bf, ok := f.(*cli.BoolFlag); !ok || !bf.DisableDefaultText {
					usage += " (default: " + def + ")"
				}
			}
			if sf, ok := f.(cli.DocGenerationSliceFlag); ok && sf.IsSliceFlag() {
				usage += "; may be given more than once"
			}
			env = d.GetEnvVars()
		}
		var names []string
		for _, n := range f.Names() {
			dashes := "\\-\\-"
			if len(n) == 1 {
				dashes = "\\-"
			}
			name := "\\fB" + dashes + roffText(n) + "\\fR"
			if placeholder != "" {
				name += " \\fI" + roffText(placeholder) + "\\fR"
			}
			names = append(names, name)
		}
		fmt.Fprintf(b, ".TP\n%s\n%s\n", strings.Join(names, ", "), roffText(usage))
		if len(env) > 0 {
			fmt.Fprintf(b, "(environment: %s)\n", roffText(strings.Join(env, ", ")))
		}
	}
}

// splitPlaceholder takes the `quoted` word of a flag's usage as its value
// placeholder, the way --help shows it, and returns the usage without the
// backquotes.
func splitPlaceholder(usage string) (placeholder, text string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	placeholder = usage[i+1 : i+1+j]
	return placeholder, usage[:i] + placeholder + usage[i+1+j+1:]
}

// manParagraphs writes a description: blank lines separate paragraphs,
// and indented lines (the examples of the help texts) are set as they are.
func manParagraphs(b *strings.Builder, text string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	example := false
	for i, l := range lines {
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		switch {
		case indented && !example:
			b.WriteString(".PP\n.EX\n")
			example = true
		case !indented && example:
			b.WriteString(".EE\n")
			example = false
		}
		switch {
		case example:
			b.WriteString(roffText(strings.TrimSpace(l)) + "\n")
		case strings.TrimSpace(l) == "":
			if i > 0 && i < len(lines)-1 {
				b.WriteString(".PP\n")
			}
		default:
			b.WriteString(roffText(l) + "\n")
		}
	}
	if example {
		b.WriteString(".EE\n")
	}
}

// roffText escapes text for a roff input line: backslashes, hyphens
// (which roff would otherwise set as typographic hyphens), characters
// outside ASCII (as \[uXXXX], which groff and mandoc read whatever the
// input encoding), and a leading period or apostrophe that roff would
// take for a request.
func roffText(s string) string {
	var b strings.Builder
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		b.WriteString(`\&`)
	}
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 0x7E:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffQuote makes s one argument of a macro: escaped, in double quotes
// (a double quote inside is written twice, as groff reads it).
func roffQuote(s string) string {
	return `"` + strings.ReplaceAll(roffText(s), `"`, `""`) + `"`
}
