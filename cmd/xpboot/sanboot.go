package main

import "github.com/urfave/cli/v2"

func sanbootCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "sanboot",
		Usage:  "print an iPXE root-path or sanboot script (not built yet)",
		Action: notBuilt("xpboot sanboot", "#6"),
	}
}
