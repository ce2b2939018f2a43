package importv0_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/pg/importv0"
)

// referenceSchemaSQL creates the tables of the go-oversync v0 reference server as it creates
// them at start; %s is the payload type (json today, jsonb in older installations).
const referenceSchemaSQL = `
DROP SCHEMA sync CASCADE;
CREATE SCHEMA sync;
CREATE TABLE sync.sync_row_meta (
    user_id        text        NOT NULL,
    schema_name    text        NOT NULL,
    table_name     text        NOT NULL,
    pk_uuid        uuid        NOT NULL,
    server_version bigint      NOT NULL DEFAULT 0,
    deleted        boolean     NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, schema_name, table_name, pk_uuid)
);
CREATE TABLE sync.sync_state (
    user_id     text NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    pk_uuid     uuid NOT NULL,
    payload     %[1]s NOT NULL,
    PRIMARY KEY (user_id, schema_name, table_name, pk_uuid)
);
CREATE TABLE sync.server_change_log (
    server_id        bigserial   PRIMARY KEY,
    user_id          text        NOT NULL,
    schema_name      text        NOT NULL,
    table_name       text        NOT NULL,
    op               text        NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
    pk_uuid          uuid        NOT NULL,
    payload          %[1]s,
    source_id        text        NOT NULL,
    source_change_id bigint      NOT NULL,
    server_version   bigint      NOT NULL DEFAULT 0,
    ts               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, source_id, source_change_id)
);
CREATE INDEX server_change_log_user_id ON sync.server_change_log (user_id, server_id);
CREATE INDEX server_change_log_user_schema_id ON sync.server_change_log (user_id, schema_name, server_id);
CREATE TABLE sync.materialize_failures (
    id                bigserial   PRIMARY KEY,
    user_id           text        NOT NULL,
    schema_name       text        NOT NULL,
    table_name        text        NOT NULL,
    pk_uuid           uuid        NOT NULL,
    attempted_version bigint      NOT NULL,
    op                text        NOT NULL,
    payload           %[1]s,
    error             text        NOT NULL,
    first_seen        timestamptz NOT NULL DEFAULT now(),
    retry_count       integer     NOT NULL DEFAULT 0,
    UNIQUE (user_id, schema_name, table_name, pk_uuid, attempted_version)
);`

// entry is one change the reference recorded: what a device uploaded, the global id it got and
// the version it produced. A leaked entry is one the reference streamed without applying it
// (docs/protocol-v0.md §10.2): it is in the log, but the row's version and image are not its.
type entry struct {
	id      int64
	user    string
	source  string
	scid    int64
	table   string // in schema business
	op      string
	pk      string
	payload string // "" for a DELETE
	version int64
	leaked  bool
}

// reference is a go-oversync-shaped source database.
type reference struct {
	url  string
	pool *pgxpool.Pool
}

// newReference creates a source database with the reference's tables, payloads of type
// payloadType.
func newReference(t *testing.T, payloadType string) *reference {
	t.Helper()
	url := pgtest.NewDB(t)
	pool := connect(t, url)
	if _, err := pool.Exec(t.Context(), fmt.Sprintf(referenceSchemaSQL, payloadType)); err != nil {
		t.Fatalf("create the reference's tables: %v", err)
	}
	return &reference{url: url, pool: pool}
}

// recordSQL does what the reference does for one applied change, in one statement: the log
// entry with its global id, the row's version, and its after-image (removed by a delete).
// Versions only move up, so entries may be recorded in any order of their ids, as concurrent
// uploads commit. A leaked entry writes the log entry only.
const recordSQL = `WITH log AS (
    INSERT INTO sync.server_change_log
        (server_id, user_id, schema_name, table_name, op, pk_uuid, payload, source_id, source_change_id, server_version, ts)
    VALUES ($1::int8, $2, 'business', $3, $4, $5, $6, $7, $8, $9, '2026-01-20T09:00:00Z'::timestamptz + $1::int8 * interval '1 second')),
meta AS (
    INSERT INTO sync.sync_row_meta AS m (user_id, schema_name, table_name, pk_uuid, server_version, deleted, updated_at)
    SELECT $2, 'business', $3, $5, $9, $4 = 'DELETE', '2026-01-20T09:00:00Z'::timestamptz + $1::int8 * interval '1 second'
    WHERE NOT $10
    ON CONFLICT (user_id, schema_name, table_name, pk_uuid) DO UPDATE
    SET server_version = excluded.server_version, deleted = excluded.deleted, updated_at = excluded.updated_at
    WHERE m.server_version < excluded.server_version
    RETURNING deleted),
gone AS (
    DELETE FROM sync.sync_state
    WHERE user_id = $2 AND schema_name = 'business' AND table_name = $3 AND pk_uuid = $5
      AND EXISTS (SELECT 1 FROM meta WHERE deleted))
INSERT INTO sync.sync_state AS s (user_id, schema_name, table_name, pk_uuid, payload)
SELECT $2, 'business', $3, $5, $6 FROM meta WHERE NOT deleted
ON CONFLICT (user_id, schema_name, table_name, pk_uuid) DO UPDATE SET payload = excluded.payload`

// record stores entries as the reference would have, in the order given, in one round trip.
func (r *reference) record(t *testing.T, entries ...entry) {
	t.Helper()
	b := &pgx.Batch{}
	for _, e := range entries {
		var payload *string
		if e.payload != "" {
			payload = &e.payload
		}
		b.Queue(recordSQL, e.id, e.user, e.table, e.op, e.pk, payload, e.source, e.scid, e.version, e.leaked)
	}
	b.Queue(`SELECT setval('sync.server_change_log_server_id_seq', (SELECT max(server_id) FROM sync.server_change_log))`)
	if err := r.pool.SendBatch(t.Context(), b).Close(); err != nil {
		t.Fatalf("record %d entries: %v", len(entries), err)
	}
}

// fail records a failed projection of a row's version, as the reference's materializer does.
func (r *reference) fail(t *testing.T, user, table, pk string, version int64, op, payload string) {
	t.Helper()
	_, err := r.pool.Exec(t.Context(), `INSERT INTO sync.materialize_failures
		(user_id, schema_name, table_name, pk_uuid, attempted_version, op, payload, error, first_seen, retry_count)
		VALUES ($1, 'business', $2, $3, $4, $5, $6, 'violates check constraint', '2026-01-20T10:00:00Z', 2)`, user, table, pk, version, op, payload)
	if err != nil {
		t.Fatalf("record failure: %v", err)
	}
}

// connect opens a pool to url that closes with the test.
func connect(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(t.Context(), pg.PoolConfig{URL: url})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// snapshotSQL reads everything an import writes, as text, in a stable order. Payloads compare
// as jsonb: sources with jsonb columns hand out their keys in jsonb's order.
var snapshotSQL = []string{
	`SELECT row(user_id, server_id, schema_name, table_name, op, pk, payload::jsonb, server_version, source_id, source_change_id, ts)::text
	 FROM sync.changes ORDER BY user_id, server_id`,
	`SELECT r::text FROM sync.rows r ORDER BY user_id, schema_name, table_name, pk`,
	`SELECT o::text FROM sync.business_owners o ORDER BY schema_name, table_name, pk`,
	`SELECT row(user_id, schema_name, table_name, pk, attempted_version, op, payload::jsonb, error, first_seen, retry_count)::text
	 FROM sync.materialize_failures ORDER BY user_id, schema_name, table_name, pk`,
	`SELECT q::text FROM sync.user_seq q ORDER BY user_id`,
	`SELECT 'staged rows: ' || count(*) FROM sync.import_v0_rows`,
}

// snapshot returns the target's sync state, one line per record, each table's lines prefixed
// with the table's position in snapshotSQL.
func snapshot(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	var lines []string
	for i, sql := range snapshotSQL {
		rows, err := pool.Query(t.Context(), sql)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		for _, text := range texts {
			lines = append(lines, fmt.Sprintf("%d %s", i, text))
		}
	}
	return lines
}

// mustRun imports src into dst and fails the test on error.
func mustRun(t *testing.T, ctx context.Context, src, dst *pgxpool.Pool, cfg importv0.Config) importv0.Result {
	t.Helper()
	res, err := importv0.Run(ctx, src, dst, cfg)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}
