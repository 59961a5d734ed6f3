package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionCommand prints the version and the revision it was built from.
type versionCommand struct{ env }

func (c *versionCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.env, "version", "version", "Print the version of this binary.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = " (" + s.Value + ")"
			}
		}
	}
	fmt.Fprintf(c.stdout, "funnel %s%s\n", version, rev)
	return nil
}
