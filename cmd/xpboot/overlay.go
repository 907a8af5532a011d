package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/overlay"
)

func overlayCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "overlay",
		Usage: "list and reset the per-client overlays of xpboot serve --overlay-dir",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list the client overlays in an overlay directory",
				ArgsUsage: "DIR",
				Description: "Shows each client's delta disk: its name (the initiator IQN as the file name\n" +
					"has it), virtual size, bytes allocated, state (ok; stale: the base was written\n" +
					"after the overlay was made, so it no longer opens; parent-missing), whether a\n" +
					"running xpboot serve holds it open (the client is connected), and its parent.\n" +
					"Reads descriptors only and takes no lock, so it is safe beside a running server.",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print as JSON"}},
				Action: func(c *cli.Context) error { return e.overlayList(c) },
			},
			{
				Name:      "reset",
				Usage:     "remove a client's overlay so that it boots the base again",
				ArgsUsage: "DIR CLIENT...",
				Description: "CLIENT is an initiator IQN or a name overlay list shows. The client's delta is\n" +
					"removed; xpboot serve makes a fresh one (with the client's computer name) at its\n" +
					"next login, so everything the client wrote is lost. An overlay a running server\n" +
					"holds open (the client is connected) is refused: shut the client down first.\n" +
					"Exit status 1 when any client could not be reset.",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}},
				Action: func(c *cli.Context) error { return e.overlayReset(c) },
			},
		},
	}
}

func (e *env) overlayList(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, errors.New("want one overlay directory"))
	}
	list, err := overlay.List(c.Args().First())
	if err != nil {
		return cli.Exit(fmt.Errorf("overlay list: %w", err), exitFailure)
	}
	if c.Bool("json") {
		if list == nil {
			list = []overlay.Info{}
		}
		return e.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no client overlays in %s\n", c.Args().First())
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSIZE\tALLOCATED\tSTATE\tIN USE\tMODIFIED\tPARENT")
	for _, in := range list {
		use := "no"
		if in.InUse {
			use = "yes"
		}
		parent := in.Parent
		if in.Base != "" {
			parent = in.Base
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Client, humanSize(in.Size), humanSize(in.Allocated), in.State, use,
			in.Modified.Format("2006-01-02 15:04"), parent)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, in := range list {
		if in.Problem != "" {
			fmt.Fprintf(e.stdout, "%s: %s\n", in.Client, in.Problem)
		}
	}
	return nil
}

// resetResult is one client of overlay reset --json.
type resetResult struct {
	Client string `json:"client"`
	Path   string `json:"path,omitempty"`
	Reset  bool   `json:"reset"`
	InUse  bool   `json:"in_use,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (e *env) overlayReset(c *cli.Context) error {
	if c.NArg() < 2 {
		return usageError(c, errors.New("want the overlay directory and at least one client"))
	}
	dir := c.Args().First()
	var results []resetResult
	failed := 0
	for _, client := range c.Args().Slice()[1:] {
		p, err := overlay.Reset(dir, client)
		r := resetResult{Client: client, Path: p, Reset: err == nil}
		if err != nil {
			failed++
			r.Error, r.InUse = err.Error(), errors.Is(err, overlay.ErrInUse)
			if !c.Bool("json") {
				fmt.Fprintf(e.stderr, "xpboot: overlay reset %s: %v\n", client, err)
			}
		} else if !c.Bool("json") {
			fmt.Fprintf(e.stdout, "%s: removed %s; the client boots the base at its next login\n", client, p)
		}
		results = append(results, r)
	}
	if c.Bool("json") {
		if err := e.printJSON(results); err != nil {
			return err
		}
	}
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("overlay reset: %d of %d clients not reset", failed, len(results)), exitFailure)
	}
	return nil
}
