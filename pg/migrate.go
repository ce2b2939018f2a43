package pg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the advisory lock under which nodes migrate; any constant unlikely to be
// used by an application sharing the database will do.
const migrateLockKey = 0x70756c7365 // "pulse"

// Migrate brings the sync schema up to date and reports which migrations it applied. It is
// idempotent and safe when several nodes start at once: they serialise on an advisory lock, and
// each migration commits together with its record in sync.schema_migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (applied []string, err error) {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	return migrate.Apply(ctx, pool, migrate.Set{Schema: "sync", Files: files, LockKey: migrateLockKey})
}
