package pgv1

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

// migrateLockKey is the advisory lock under which nodes apply the v1 migrations; it differs
// from the v0 schema's so the two sets never wait for each other.
const migrateLockKey = 0x70756c73657631 // "pulsev1"

// Migrate brings the sync_v1 schema up to date and reports which migrations it applied. It is
// idempotent and safe when several nodes start at once: they serialise on an advisory lock,
// and each migration commits together with its record in sync_v1.schema_migrations. The v1
// store also needs sync.user_seq, which the v0 migrations (pg.Migrate) create.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded v1 migrations: %w", err)
	}
	return migrate.Apply(ctx, pool, migrate.Set{Schema: "sync_v1", Files: files, LockKey: migrateLockKey})
}
