package main

import (
	"context"
	"fmt"

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

// migrateCmd applies the sync schemas' migrations and exits. It reads the same config file as
// serve, so one file serves both.
type migrateCmd struct {
	Config      configFile `name:"config" env:"PULSESYNC_CONFIG" placeholder:"FILE" help:"YAML file of settings, keyed by flag name"`
	DatabaseURL string     `name:"database-url" env:"PULSESYNC_DATABASE_URL,DATABASE_URL" placeholder:"URL" help:"PostgreSQL connection URL (required)"`
}

// Run connects, migrates and reports what it applied.
func (cmd *migrateCmd) Run(e *runEnv) error {
	if cmd.DatabaseURL == "" {
		return usageError{"--database-url / PULSESYNC_DATABASE_URL: no database given"}
	}
	pool, err := connect(e.ctx, cmd.DatabaseURL, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := migrateAll(e.ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate the sync schemas: %w", err)
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "the sync schemas are up to date")
	}
	for _, name := range applied {
		fmt.Fprintln(e.stdout, "applied", name)
	}
	return nil
}
