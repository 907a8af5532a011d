package main

import "github.com/urfave/cli/v2"

func integrateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "integrate",
		Usage:  "integrate NIC, iSCSI and sanbootconf drivers into a setup tree or installed system (not built yet)",
		Action: notBuilt("xpboot integrate", "#7"),
	}
}
