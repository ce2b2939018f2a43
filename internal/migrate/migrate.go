// Package migrate applies numbered SQL migrations to one PostgreSQL schema: the v0 sync schema
// (package pg) and the v1 sync_v1 schema (package pgv1) each have their own set, version table
// and advisory lock, and share this runner.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Set is a family of numbered SQL files (NNNN_description.sql) that one schema's
// migrations consist of, applied in order and recorded in <Schema>.schema_migrations.
type Set struct {
	// Schema holds the version table; it is created if missing.
	Schema string
	// Files holds the migration files at its root.
	Files fs.FS
	// LockKey is the advisory lock under which nodes apply this set; each set has its own.
	LockKey int64
}

// migration is one numbered SQL file of a set.
type migration struct {
	version int
	name    string
	sql     string
}

const createMigrationsTableSQL = `
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// Apply applies the migrations of set that its schema has not recorded yet and reports
// which it applied. Nodes starting at once serialise on the set's advisory lock, and each
// migration commits together with its record, so a failure leaves every earlier one in place.
func Apply(ctx context.Context, pool *pgxpool.Pool, set Set) (applied []string, err error) {
	migrations, err := loadMigrations(set.Files)
	if err != nil {
		return nil, err
	}
	schema := pgx.Identifier{set.Schema}.Sanitize()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection for migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, set.LockKey); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A session-level advisory lock outlives errors; release it on a fresh context so a
		// cancelled ctx cannot leave the lock with a pooled connection.
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, set.LockKey)
	}()
	if _, err := conn.Exec(ctx, fmt.Sprintf(createMigrationsTableSQL, schema)); err != nil {
		return nil, fmt.Errorf("create migrations table: %w", err)
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM `+schema+`.schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	for _, v := range versions {
		done[int(v)] = true
	}
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		applied = append(applied, m.name)
	}
	return applied, nil
}

// loadMigrations reads the files at the root of files, named NNNN_description.sql, in version
// order.
func loadMigrations(files fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		number, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(number)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_description.sql", e.Name())
		}
		body, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: version, name: strings.TrimSuffix(e.Name(), ".sql"), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}
