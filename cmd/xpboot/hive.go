package main

import "github.com/urfave/cli/v2"

func hiveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "hive",
		Usage:  "read and edit offline registry hives (not built yet)",
		Action: notBuilt("xpboot hive", "#4"),
	}
}
