// Package oversynctest builds go-oversync-shaped databases for tests: the tables the v0
// reference server creates in its sync schema (docs/operations.md "Migrating from go-oversync"),
// filled as devices syncing through it would have left them. It knows nothing of pulsesync's
// own storage.
package oversynctest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaSQL creates the tables of the go-oversync v0 reference server as it creates them at
// start, replacing any sync schema; %[1]s is the payload type.
const schemaSQL = `
DROP SCHEMA IF EXISTS sync CASCADE;
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

// CreateSchema replaces the sync schema of the database behind pool with the reference's
// tables, payloads of payloadType: "json" as today, "jsonb" as in older installations.
func CreateSchema(ctx context.Context, pool *pgxpool.Pool, payloadType string) error {
	if _, err := pool.Exec(ctx, fmt.Sprintf(schemaSQL, payloadType)); err != nil {
		return fmt.Errorf("create the reference's tables: %w", err)
	}
	return nil
}

// Entry is one change the reference recorded: what a device uploaded (to schema business),
// the global id it got and the version it produced. A Leaked entry is one the reference
// streamed without applying it (docs/protocol-v0.md §10.2): it is in the log, but the row's
// version and image are not its.
type Entry struct {
	ID      int64
	User    string
	Source  string
	SCID    int64
	Table   string
	Op      string
	PK      string
	Payload string // "" for a DELETE
	Version int64
	Leaked  bool
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

// Record stores entries as the reference would have, in the order given (which may differ from
// their ids' order, as concurrent uploads commit), in one round trip, and moves the global
// sequence past them.
func Record(ctx context.Context, pool *pgxpool.Pool, entries ...Entry) error {
	b := &pgx.Batch{}
	for _, e := range entries {
		var payload *string
		if e.Payload != "" {
			payload = &e.Payload
		}
		b.Queue(recordSQL, e.ID, e.User, e.Table, e.Op, e.PK, payload, e.Source, e.SCID, e.Version, e.Leaked)
	}
	b.Queue(`SELECT setval('sync.server_change_log_server_id_seq', (SELECT max(server_id) FROM sync.server_change_log))`)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record %d entries: %w", len(entries), err)
	}
	return nil
}

const failSQL = `INSERT INTO sync.materialize_failures
    (user_id, schema_name, table_name, pk_uuid, attempted_version, op, payload, error, first_seen, retry_count)
VALUES ($1, 'business', $2, $3, $4, $5, $6, 'violates check constraint', '2026-01-20T10:00:00Z', 2)`

// Fail records a failed projection of a row's version, as the reference's materializer does.
func Fail(ctx context.Context, pool *pgxpool.Pool, user, table, pk string, version int64, op, payload string) error {
	if _, err := pool.Exec(ctx, failSQL, user, table, pk, version, op, payload); err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	return nil
}
