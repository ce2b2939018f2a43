package pgv1

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// newTestStore returns a Store over a fresh test database with the test tables registered.
func newTestStore(t testing.TB, cfg Config) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t, 0)
	reg, err := Discover(t.Context(), pool, append([]TableSpec(nil), testTables...))
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	return NewStore(pool, reg, cfg), pool
}

// newAliceStore returns a Store with cfg over a fresh test database, its pool, and the caller
// most push tests push as, alice's source a, with her scope initialized.
func newAliceStore(t *testing.T, cfg Config) (*Store, *pgxpool.Pool, Caller) {
	t.Helper()
	s, pool := newTestStore(t, cfg)
	c := Caller{User: "alice", Source: "a"}
	initialized(t, s, c)
	return s, pool, c
}

// requestHash computes a push's canonical_request_hash as a client does (docs/protocol-v1.md
// §4.4), from the rows it sends.
func requestHash(t testing.TB, rows []PushRow) string {
	t.Helper()
	hr := make([]wire.HashRow, len(rows))
	for i, r := range rows {
		hr[i] = wireRow{Schema: r.Schema, Table: r.Table, Key: r.Key, Op: r.Op, RowVersion: r.BaseRowVersion, Payload: r.Payload}.hashRow(t)
	}
	return wire.RequestHash(hr)
}

// row builds a chunk row of business.<table> with a one-member key.
func row(table, keyCol, key, op string, base int64, payload string) PushRow {
	k, _ := json.Marshal(map[string]string{keyCol: key})
	r := PushRow{Schema: "business", Table: table, Key: k, Op: op, BaseRowVersion: base}
	if payload != "" {
		r.Payload = json.RawMessage(payload)
	}
	return r
}

// pushOpts tunes push.
type pushOpts struct {
	initID    string
	chunkSize int // 0 = all rows in one chunk
}

// push runs create, chunks and commit of one bundle and returns the commit's answer or the
// first refusal. An already_committed create is returned as the bundle.
func push(t testing.TB, s *Store, c Caller, sourceBundleID int64, rows []PushRow, o pushOpts) (BundleMeta, error) {
	t.Helper()
	ctx := t.Context()
	created, err := s.CreatePushSession(ctx, c, CreatePush{SourceBundleID: sourceBundleID, PlannedRowCount: int64(len(rows)),
		RequestHash: requestHash(t, rows), InitializationID: o.initID})
	if err != nil {
		return BundleMeta{}, err
	}
	if created.AlreadyCommitted != nil {
		return *created.AlreadyCommitted, nil
	}
	size := o.chunkSize
	if size == 0 {
		size = len(rows)
	}
	for start := 0; start < len(rows); start += size {
		end := min(start+size, len(rows))
		next, err := s.StageChunk(ctx, c, created.PushID, int64(start), rows[start:end])
		if err != nil {
			return BundleMeta{}, err
		}
		if next != int64(end) {
			t.Fatalf("chunk at %d: next ordinal %d, want %d", start, next, end)
		}
	}
	return s.CommitPush(ctx, c, created.PushID)
}

// mustPush is push that fails the test on a refusal.
func mustPush(t testing.TB, s *Store, c Caller, sourceBundleID int64, rows []PushRow, o pushOpts) BundleMeta {
	t.Helper()
	m, err := push(t, s, c, sourceBundleID, rows, o)
	if err != nil {
		t.Fatalf("push %d of %s: %v", sourceBundleID, c.Source, err)
	}
	return m
}

// protocolError returns err's protocol code, or fails the test if err is not a refusal.
func protocolError(t testing.TB, err error) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a protocol refusal", err)
	}
	return pe
}

// bundleWires reads the stored wire rows of a bundle in order.
func bundleWires(t testing.TB, pool *pgxpool.Pool, user string, seq int64) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT wire FROM sync_v1.bundle_rows WHERE user_id = $1 AND bundle_seq = $2 ORDER BY row_ordinal`, user, seq)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
