package pgv1

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
)

// errScaffold marks an operation whose implementation has not landed yet. It must not survive
// into a commit on main.
var errScaffold = errors.New("pgv1: not implemented yet")

// Config configures a Store; the zero value of every field means its documented default.
type Config struct {
	// (helper B fills in: retention, TTLs, limits, snapshot admission, lock wait bound …)
}

// TableSpec names a registered v1 table and its sync key column ("" = the primary key's one
// column besides _sync_scope_id).
type TableSpec struct {
	Schema, Table, KeyColumn string
}

// Registry is the set of registered v1 tables with the type of every column, discovered from
// the catalogue.
type Registry struct{}

// Store is the v1 bundle state of all users in one PostgreSQL database. Safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	reg  *Registry
	cfg  Config
}

// NewStore returns a Store over pool for the tables in reg.
func NewStore(pool *pgxpool.Pool, reg *Registry, cfg Config) *Store {
	return &Store{pool: pool, reg: reg, cfg: cfg}
}

// Specs returns the registered tables sorted by schema.table, for capabilities.
func (s *Store) Specs() []TableSpec { return nil }

// Connect resolves POST /sync/connect.
func (s *Store) Connect(ctx context.Context, c Caller, hasLocalPendingRows bool) (ConnectResult, error) {
	return ConnectResult{}, errScaffold
}

// CreatePushSession resolves POST /sync/push-sessions.
func (s *Store) CreatePushSession(ctx context.Context, c Caller, req CreatePush) (CreatePushResult, error) {
	return CreatePushResult{}, errScaffold
}

// StageChunk resolves POST /sync/push-sessions/{push_id}/chunks and returns the session's next
// expected row ordinal.
func (s *Store) StageChunk(ctx context.Context, c Caller, pushID string, start int64, rows []PushRow) (int64, error) {
	return 0, errScaffold
}

// CommitPush resolves POST /sync/push-sessions/{push_id}/commit.
func (s *Store) CommitPush(ctx context.Context, c Caller, pushID string) (BundleMeta, error) {
	return BundleMeta{}, errScaffold
}

// DeletePushSession resolves DELETE /sync/push-sessions/{push_id}.
func (s *Store) DeletePushSession(ctx context.Context, c Caller, pushID string) error {
	return errScaffold
}

// CommittedRows resolves GET /sync/committed-bundles/{bundle_seq}/rows; after is -1 when the
// query has no after_row_ordinal.
func (s *Store) CommittedRows(ctx context.Context, c Caller, bundleSeq, after int64, maxRows int) (CommittedRowsPage, error) {
	return CommittedRowsPage{}, errScaffold
}

// Pull resolves GET /sync/pull.
func (s *Store) Pull(ctx context.Context, c Caller, req PullRequest) (PullPage, error) {
	return PullPage{}, errScaffold
}

// CreateSnapshot resolves POST /sync/snapshot-sessions; repl is nil without a replacement.
func (s *Store) CreateSnapshot(ctx context.Context, c Caller, repl *SourceReplacement) (SnapshotInfo, error) {
	return SnapshotInfo{}, errScaffold
}

// SnapshotChunk resolves GET /sync/snapshot-sessions/{snapshot_id}.
func (s *Store) SnapshotChunk(ctx context.Context, c Caller, snapshotID string, after int64, maxRows int, maxBytes int64) (SnapshotChunk, error) {
	return SnapshotChunk{}, errScaffold
}

// DeleteSnapshot resolves DELETE /sync/snapshot-sessions/{snapshot_id}.
func (s *Store) DeleteSnapshot(ctx context.Context, c Caller, snapshotID string) error {
	return errScaffold
}

// CheckWatch answers whether user's scope allows a watch (409 scope_uninitialized /
// scope_initializing as *Error otherwise).
func (s *Store) CheckWatch(ctx context.Context, user string) error { return errScaffold }

// LatestBundleSeq returns user's highest committed bundle_seq, 0 when none.
func (s *Store) LatestBundleSeq(ctx context.Context, user string) (int64, error) { return 0, errScaffold }
