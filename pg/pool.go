package pg

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is what the package needs from a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PoolConfig configures Connect. The zero value means the documented defaults.
type PoolConfig struct {
	URL      string
	MaxConns int32 // 0 = pgxpool's default; ignored when the URL sets pool_max_conns
}

// Connect opens a pgx pool to url and checks that the database answers.
func Connect(ctx context.Context, cfg PoolConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's parse errors can quote the URL, password included: keep them out.
		return nil, fmt.Errorf("parse database URL: invalid connection string")
	}
	if cfg.MaxConns > 0 && !strings.Contains(cfg.URL, "pool_max_conns") {
		pc.MaxConns = cfg.MaxConns
	}
	if _, set := pc.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		// The server's statements are written for generic plans (arrays through unnest, one
		// LATERAL probe per key), which pgx prepares once per connection. Left to choose, the
		// planner replans some of them on every call because a one-element array looks cheaper
		// to a custom plan: about a quarter of one-change uploads paid half a millisecond of
		// planning for it (BENCHMARKS.md, "Where one upload's cost goes").
		pc.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return pool, nil
}
