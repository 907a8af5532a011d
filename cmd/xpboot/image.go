package main

import "github.com/urfave/cli/v2"

func imageCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "image",
		Usage:       "create, inspect and convert disk images and the files inside them",
		Subcommands: []*cli.Command{},
	}
}
