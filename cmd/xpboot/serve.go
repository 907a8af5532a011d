package main

import "github.com/urfave/cli/v2"

func serveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "serve",
		Usage:  "serve a disk image over iSCSI (not built yet)",
		Action: notBuilt("xpboot serve", "#5"),
	}
}
