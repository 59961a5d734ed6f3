// Command funnel runs Funnel: the admin service, the sending workers, the
// tracking endpoints, or all of them at once for development.
//
// main only wires: it hands the process's arguments, environment and
// output to run, which the end-to-end tests call the same way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the usage
		}
		fmt.Fprintln(os.Stderr, "funnel:", err)
		os.Exit(2)
	}
}

// command is one subcommand.
type command interface {
	// Run parses args (everything after the subcommand's name) and runs.
	Run(ctx context.Context, args []string) error
}

// env is what every subcommand receives from the process.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// commands lists the subcommands with a one-line summary, in the order
// help shows them.
var commandSummaries = [][2]string{
	{"dev", "run everything in one process on SQLite and in-process Redis and SMTP"},
	{"serve", "run the admin API (production, stateless: run many)"},
	{"work", "run a background worker (production: run many)"},
	{"track", "serve only the tracking endpoints (production, stateless: run many)"},
	{"migrate", "apply pending database migrations"},
	{"import", "import contacts from a CSV file"},
	{"segment", "count the contacts a segment rule selects"},
	{"attribute", "index a contact attribute that segments filter on"},
	{"user", "create a user who signs in to the web UI"},
	{"version", "print the version"},
}

func newCommand(name string, e env) command {
	switch name {
	case "dev":
		return &devCommand{env: e}
	case "serve":
		return &serveCommand{env: e}
	case "work":
		return &workCommand{env: e}
	case "track":
		return &trackCommand{env: e}
	case "migrate":
		return &migrateCommand{env: e}
	case "import":
		return &importCommand{env: e}
	case "segment":
		return &segmentCommand{env: e}
	case "attribute":
		return &attributeCommand{env: e}
	case "user":
		return &userCommand{env: e, stdin: os.Stdin}
	case "version":
		return &versionCommand{env: e}
	}
	return nil
}

// run runs the subcommand named by args[0].
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	cmd := newCommand(args[0], e)
	if cmd == nil {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return cmd.Run(ctx, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: funnel <command> [flags]\n\nCommands:")
	for _, c := range commandSummaries {
		fmt.Fprintf(w, "  %-8s %s\n", c[0], c[1])
	}
	fmt.Fprintln(w, "\nRun 'funnel <command> -h' for the flags of a command.")
}
