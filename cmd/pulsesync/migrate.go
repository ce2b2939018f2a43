package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pgv1"
)

// migrateAll brings both protocols' schemas up to date: the v0 stream's (sync) and the v1
// bundle store's (sync_v1). It returns the migrations it applied, named by schema.
func migrateAll(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var applied []string
	for _, m := range []struct {
		schema  string
		migrate func(context.Context, *pgxpool.Pool) ([]string, error)
	}{{"sync", pg.Migrate}, {"sync_v1", pgv1.Migrate}} {
		names, err := m.migrate(ctx, pool)
		if err != nil {
			return applied, err
		}
		for _, name := range names {
			applied = append(applied, m.schema+"/"+name)
		}
	}
	return applied, nil
}

// migrateCommand applies the sync schema's migrations and exits.
func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "Apply the migrations of the sync schemas (v0 and v1) to DATABASE_URL and exit.", stderr)
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
	applied, err := migrateAll(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "the sync schemas are up to date")
	}
	for _, name := range applied {
		fmt.Fprintln(stdout, "applied", name)
	}
	return nil
}
