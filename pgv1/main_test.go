package pgv1

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/pg"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: template})
}

// template prepares the database every test database is cloned from: the v0 schema (for
// sync.user_seq), the v1 schema and the test business schema.
func template(ctx context.Context, url string) error {
	pool, err := pg.Connect(ctx, pg.PoolConfig{URL: url})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pg.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate v0: %w", err)
	}
	if _, err := Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate v1: %w", err)
	}
	if _, err := pool.Exec(ctx, testSchemaSQL); err != nil {
		return fmt.Errorf("create test schema: %w", err)
	}
	return nil
}

// newPool returns a pool of at most maxConns connections (0 = 8) over a fresh test database.
func newPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	if maxConns == 0 {
		maxConns = 8
	}
	pool, err := pg.Connect(t.Context(), pg.PoolConfig{URL: pgtest.NewDB(t), MaxConns: maxConns})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
