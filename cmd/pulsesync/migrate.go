package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pulsesync/pulsesync/pg"
)

// migrateCommand applies the sync schema's migrations and exits.
func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Apply the sync schema's migrations to DATABASE_URL and exit.", stderr)
	url := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL connection URL (env DATABASE_URL)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return usageError{"no database: set DATABASE_URL or --database-url"}
	}
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: *url})
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := pg.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "the sync schema is up to date")
	}
	for _, name := range applied {
		fmt.Fprintln(stdout, "applied", name)
	}
	return nil
}
