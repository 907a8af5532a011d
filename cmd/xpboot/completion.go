package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// Shell completion. The scripts that `xpboot completion SHELL` prints call
// the hidden command `xpboot __complete WORD…` with the words typed so far
// (the last one being the word under the cursor, maybe empty), which
// answers from the command tree itself: subcommands of a group, the
// options of a command, and the values of options that take one of a fixed
// set. Files are left to the shell.

// flagChoices lists the values of options that take one of a fixed set,
// by option name (the same name means the same set in every command).
var flagChoices = map[string][]string{
	"to":         {"raw", "vmdk", "vmdk-flat", "vmdk-stream", "vhd", "vhd-fixed"},
	"format":     {"raw", "vmdk", "vmdk-flat", "vmdk-stream", "vhd", "vhd-fixed"},
	"fs":         {"fat32", "none"},
	"adapter":    {"ide", "lsilogic", "buslogic"},
	"type":       {"sz", "expand_sz", "multi_sz", "dword", "dword_big_endian", "qword", "binary", "none", "link"},
	"log-format": {"text", "json"},
	"log-level":  {"debug", "info", "warn", "error"},
	"dhcp":       {"off", "full", "proxy"},
	"unknown":    {"serve", "ignore"},
	"align":      {"63", "2048"},
}

// complete returns the candidates for the last of words (the word being
// typed) after the words before it.
func complete(app *cli.App, words []string) []string {
	cur := ""
	if len(words) > 0 {
		cur, words = words[len(words)-1], words[:len(words)-1]
	}
	flags := withBuiltins(app.Flags, true)
	cmds := app.Commands
	var valueOf cli.Flag // the option whose value is being typed
	operands := false
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			operands = true
			continue
		}
		if name, hasValue, ok := optionName(w); ok && !operands {
			f := lookupFlag(flags, name)
			if f != nil && takesValue(f) && !hasValue && i == len(words)-1 {
				valueOf = f
			} else if f != nil && takesValue(f) && !hasValue {
				i++
			}
			continue
		}
		if c := findCommand(cmds, w); c != nil && !operands {
			flags, cmds = withBuiltins(c.Flags, false), c.Subcommands
		}
	}
	var out []string
	add := func(s ...string) {
		for _, x := range s {
			if strings.HasPrefix(x, cur) {
				out = append(out, x)
			}
		}
	}
	switch {
	case valueOf != nil:
		for _, n := range valueOf.Names() {
			add(flagChoices[n]...)
		}
	case strings.HasPrefix(cur, "-") && !operands:
		for _, f := range flags {
			if bf, ok := f.(*cli.BoolFlag); ok && bf.Hidden {
				continue
			}
			for _, n := range f.Names() {
				if len(n) == 1 {
					add("-" + n)
				} else {
					add("--" + n)
				}
			}
		}
	default:
		for _, c := range cmds {
			if !c.Hidden && c.Name != "help" {
				add(c.Name)
			}
		}
	}
	return out
}

// completeCommand is the hidden `xpboot __complete WORD…` the completion
// scripts call.
func completeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			for _, s := range complete(c.App, c.Args().Slice()) {
				fmt.Fprintln(e.stdout, s)
			}
			return nil
		},
	}
}

// completionCommand prints shell completion scripts.
func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Completes subcommands, options and the values of options with a fixed set\n" +
			"(--to, --format, --log-level …), for the program name as you invoked it\n" +
			"(xpboot, ./xpboot or a path). Load it with, for example:\n" +
			"   source <(./xpboot completion bash)",
		Action: func(c *cli.Context) error {
			names := programNames(os.Args[0])
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion(names)
			case "zsh":
				script = zshCompletion(names)
			case "fish":
				script = fishCompletion(names)
			default:
				return cli.Exit(fmt.Sprintf("completion: unknown shell %q: want bash, zsh or fish", shell), 2)
			}
			_, err := io.WriteString(e.stdout, script)
			return err
		},
	}
}

// programNames returns the names to register completion for: "xpboot" and
// the name the program was invoked as, when that differs (./xpboot,
// /opt/bin/xpboot).
func programNames(arg0 string) []string {
	names := []string{"xpboot"}
	if arg0 != "" && arg0 != "xpboot" && !strings.ContainsAny(arg0, " '\"\\$`") {
		names = append(names, arg0)
		if base := filepath.Base(arg0); base != "xpboot" && base != arg0 {
			names = append(names, base)
		}
	}
	return names
}

func bashCompletion(names []string) string {
	return `_xpboot_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\n'
  COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:$COMP_CWORD-1}" "$cur" 2>/dev/null))
  if [ ${#COMPREPLY[@]} -eq 0 ] && [[ $cur != -* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -o filenames -F _xpboot_complete ` + strings.Join(names, " ") + "\n"
}

func zshCompletion(names []string) string {
	return `#compdef ` + strings.Join(names, " ") + `
_xpboot() {
  local -a c
  c=("${(@f)$(${words[1]} __complete "${(@)words[2,$CURRENT-1]}" "${words[$CURRENT]}" 2>/dev/null)}")
  if [[ -n "${c[1]}" ]]; then
    compadd -a c
  else
    _files
  fi
}
compdef _xpboot ` + strings.Join(names, " ") + "\n"
}

func fishCompletion(names []string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "complete -c %s -a '(%s __complete (commandline -opc)[2..-1] (commandline -ct))'\n", n, n)
	}
	return b.String()
}
