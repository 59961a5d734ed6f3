package main

import (
	"context"
	"fmt"

	"github.com/funnel-email/funnel/store"
)

// migrateCommand applies pending migrations.
type migrateCommand struct{ env }

func (c *migrateCommand) Run(ctx context.Context, args []string) error {
	var cfg Config
	fs := newFlagSet(c.env, "migrate", "migrate [flags]", "Apply every pending database migration. Safe to run again and from several machines at once.")
	cfg.bind(fs, c.getenv, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := cfg.validate(needDatabase); err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("FUNNEL_DATABASE_URL: %w", err)
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(c.stdout, "database schema is current")
		return nil
	}
	fmt.Fprintf(c.stdout, "applied migrations %v\n", applied)
	return nil
}
