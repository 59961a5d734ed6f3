package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/funnel-email/funnel/campaign"
)

// segmentCommand answers questions about segment rules:
//
//	funnel segment count 'attr.country = "DE" and clicked(within: 30d)'
type segmentCommand struct{ env }

func (c *segmentCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "segment", "segment count [flags] 'RULE'",
		"Count the contacts that match a segment rule written in the text form, such as\n"+
			"  attr.country = \"DE\" and tag \"customer\" and clicked(within: 30d) and not unsubscribed")
	cfg.bind(fs, c.getenv, "")
	if len(args) == 0 || args[0] != "count" {
		if err := parseHelp(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errors.New("segment: the only action is count")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("segment count: give exactly one rule (quote it)")
	}
	rule, err := campaign.ParseRule(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := cfg.validate(needDatabase); err != nil {
		return err
	}
	db, err := openCurrentStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	n, err := db.CountSegment(ctx, rule)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d contacts match %s (%s)\n", n, rule, time.Since(start).Round(time.Millisecond))
	return nil
}

// attributeCommand manages custom attributes:
//
//	funnel attribute index country
type attributeCommand struct{ env }

func (c *attributeCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "attribute", "attribute index [flags] KEY",
		"Create the index that segment conditions on attribute KEY use (idempotent).\n"+
			"Writes to contacts wait while it is built: on PostgreSQL it adds a stored\n"+
			"column, which rewrites the contacts table (about 13 s per million contacts).")
	cfg.bind(fs, c.getenv, "")
	if len(args) == 0 || args[0] != "index" {
		if err := parseHelp(fs, args); err != nil {
			return err
		}
		fs.Usage()
		return errors.New("attribute: the only action is index")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("attribute index: give exactly one attribute name")
	}
	key := fs.Arg(0)
	if !campaign.ValidAttributeKey(key) {
		return fmt.Errorf("attribute index: %q is not a valid attribute name", key)
	}
	if err := cfg.validate(needDatabase); err != nil {
		return err
	}
	db, err := openCurrentStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := db.CreateAttributeIndex(ctx, key); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "attribute %s is indexed (%s)\n", key, time.Since(start).Round(time.Millisecond))
	return nil
}

// parseHelp parses args given before the action, so that -h prints the
// usage and ends the command as a request for help, not as an error.
func parseHelp(fs *flag.FlagSet, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fs.Parse(args)
}
