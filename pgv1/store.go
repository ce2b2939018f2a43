package pgv1

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Store; the zero value of every field means its documented default.
type Config struct {
	// RetainBundles is how many of a user's most recent bundles stay pullable; older ones are
	// discarded and the user's retained floor moves up. 0 = 10,000.
	RetainBundles int64
	// PruneBatch bounds the bundles one commit discards. 0 = 1,000.
	PruneBatch int
	// PushSessionTTL is how long a push session lives after its last create or chunk. 0 = 15 min.
	PushSessionTTL time.Duration
	// LeaseTTL is the lifetime of a scope initialization lease. 0 = 15 min.
	LeaseTTL time.Duration
	// MaxRowsPerChunk bounds the rows of one chunk request. 0 = 5,000.
	MaxRowsPerChunk int
	// MaxStagedBytes bounds the bytes one push session may stage (the sum of its rows' request
	// payloads); rows per bundle are not capped. 0 = 1 GiB.
	MaxStagedBytes int64
	// SnapshotTTL is how long a snapshot session lives after its creation or its last chunk
	// read. 0 = 15 min.
	SnapshotTTL time.Duration
	// SnapshotMaxLifetime caps how far reads can slide a snapshot's expiry. 0 = 2 h.
	SnapshotMaxLifetime time.Duration
	// MaxSnapshotsPerUser bounds a user's live snapshot sessions; creating one more retires the
	// oldest. 0 = 4.
	MaxSnapshotsPerUser int
	// MaxConcurrentSnapshotBuilds and MaxConcurrentSnapshotChunks bound the snapshot work of this
	// process; work beyond them is refused with 429. 0 = 8 and 4.
	MaxConcurrentSnapshotBuilds int
	MaxConcurrentSnapshotChunks int
	// MaxRowsPerSnapshot and MaxBytesPerSnapshot bound one snapshot session; 0 = unlimited.
	MaxRowsPerSnapshot  int64
	MaxBytesPerSnapshot int64
	// MaxBytesPerSnapshotRow bounds one snapshot row's wire bytes. 0 = 4 MiB (what default
	// clients accept).
	MaxBytesPerSnapshotRow int64
	// MaxPullBytes is a pull page's byte budget: bundles stop being added once it is exceeded
	// (at least one is always delivered). 0 = 8 MiB.
	MaxPullBytes int64
	// LockWait bounds how long a mutating call waits for its user's lock, in this process and
	// in the database together; past it the call is refused with 503. 0 = 10 s.
	LockWait time.Duration
	// ReservedSources are source ids kept for the server's own writes; clients may not use them.
	ReservedSources []string
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its documented default.
func (c Config) withDefaults() Config {
	const minute = time.Minute
	if c.RetainBundles <= 0 {
		c.RetainBundles = 10_000
	}
	if c.PruneBatch <= 0 {
		c.PruneBatch = 1_000
	}
	if c.PushSessionTTL <= 0 {
		c.PushSessionTTL = 15 * minute
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * minute
	}
	if c.MaxRowsPerChunk <= 0 {
		c.MaxRowsPerChunk = 5_000
	}
	if c.MaxStagedBytes <= 0 {
		c.MaxStagedBytes = 1 << 30
	}
	if c.SnapshotTTL <= 0 {
		c.SnapshotTTL = 15 * minute
	}
	if c.SnapshotMaxLifetime <= 0 {
		c.SnapshotMaxLifetime = 2 * time.Hour
	}
	if c.MaxSnapshotsPerUser <= 0 {
		c.MaxSnapshotsPerUser = 4
	}
	if c.MaxConcurrentSnapshotBuilds <= 0 {
		c.MaxConcurrentSnapshotBuilds = 8
	}
	if c.MaxConcurrentSnapshotChunks <= 0 {
		c.MaxConcurrentSnapshotChunks = 4
	}
	if c.MaxBytesPerSnapshotRow <= 0 {
		c.MaxBytesPerSnapshotRow = 4 << 20
	}
	if c.MaxPullBytes <= 0 {
		c.MaxPullBytes = 8 << 20
	}
	if c.LockWait <= 0 {
		c.LockWait = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Store is the v1 bundle state of all users in one PostgreSQL database. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	reg    *Registry
	cfg    Config
	queues userQueues
	// snapshots admits snapshot builds and chunk reads (snapshot_admission.go).
	snapshots snapshotWork
	// counters are the event counts of Status (status.go).
	counters counters
}

// NewStore returns a Store over pool for the tables in reg; cfg's zero fields take their
// documented defaults.
func NewStore(pool *pgxpool.Pool, reg *Registry, cfg Config) *Store {
	return &Store{pool: pool, reg: reg, cfg: cfg.withDefaults()}
}

// Specs returns the registered tables sorted by schema.table, for capabilities.
func (s *Store) Specs() []TableSpec { return s.reg.Specs() }
