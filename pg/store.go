package pg

import (
	"context"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/sequencer"
)

// StoreConfig configures a Store. The zero value means the documented defaults.
type StoreConfig struct {
	// MaxPayloadBytes caps one change's payload as received (docs/protocol-v0.md §3.5 rule 7).
	// 0 = no cap beyond the request body limit.
	MaxPayloadBytes int
	// MaxChanges caps the changes of one upload; a larger upload is refused whole with
	// batch_too_large (§3.4 step 4). 0 = no cap, which docs/protocol-v0.md §9.3 recommends.
	MaxChanges int
	// Logger receives warnings about suspicious traffic; nil discards them.
	Logger *slog.Logger
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Store is the sync state of all users in one PostgreSQL database. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	reg  *Registry
	cfg  StoreConfig

	projectionSQLs sync.Map // statement text by projection shape, see projectionSQL
}

// NewStore returns a Store over pool for the tables in reg. The sync schema must be migrated.
func NewStore(pool *pgxpool.Pool, reg *Registry, cfg StoreConfig) *Store {
	return &Store{pool: pool, reg: reg, cfg: cfg.withDefaults()}
}

// Registry returns the registered tables.
func (s *Store) Registry() *Registry { return s.reg }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Stat reports the connection pool's state, for metrics.
func (s *Store) Stat() *pgxpool.Stat { return s.pool.Stat() }

// Watermark returns user's last committed server id (0 if none): the value behind
// highest_server_seq, window_until and push notifications.
func (s *Store) Watermark(ctx context.Context, user string) (int64, error) {
	return sequencer.Watermark(ctx, s.pool, user)
}
