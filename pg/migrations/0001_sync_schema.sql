-- The sync state of every user: sequences, the change stream, row versions, business-row
-- ownership and the materialization failure log.

CREATE SCHEMA IF NOT EXISTS sync;

-- One row per user; last_seq is the user's last committed server id. Uploads lock this row
-- for the length of their transaction (package sequencer).
CREATE TABLE sync.user_seq (
    user_id  text   PRIMARY KEY,
    last_seq bigint NOT NULL
);

-- The change stream. Only applied changes are written here, so the idempotency key below is
-- consumed only by applied changes (docs/protocol-v0.md §3.8). payload keeps the client's JSON text
-- (compacted), NULL for deletes; ts defaults to the transaction start, shared by one upload.
CREATE TABLE sync.changes (
    user_id          text        NOT NULL,
    server_id        bigint      NOT NULL,
    schema_name      text        NOT NULL,
    table_name       text        NOT NULL,
    op               text        NOT NULL,
    pk               uuid        NOT NULL,
    payload          text,
    server_version   bigint      NOT NULL,
    source_id        text        NOT NULL,
    source_change_id bigint      NOT NULL,
    ts               timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, server_id),
    CONSTRAINT changes_idempotency_key UNIQUE (user_id, source_id, source_change_id)
);

-- The server's record of every row a user ever synced. server_id points at the stream entry
-- holding the row's current after-image, so the payload is stored once.
CREATE TABLE sync.rows (
    user_id        text    NOT NULL,
    schema_name    text    NOT NULL,
    table_name     text    NOT NULL,
    pk             uuid    NOT NULL,
    server_version bigint  NOT NULL,
    deleted        boolean NOT NULL,
    server_id      bigint  NOT NULL,
    PRIMARY KEY (user_id, schema_name, table_name, pk)
);

-- Which user a business-table row belongs to. Business tables are keyed by id alone, so two
-- users syncing the same UUID would otherwise overwrite each other's rows (docs/protocol-v0.md §10.3 #9).
CREATE TABLE sync.business_owners (
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    pk          uuid NOT NULL,
    user_id     text NOT NULL,
    PRIMARY KEY (schema_name, table_name, pk)
);

-- Projections into business tables that failed; the change itself stayed applied (§3.11).
-- One record per row: a later failure of the same row replaces it, a later success removes it.
CREATE TABLE sync.materialize_failures (
    id                bigserial   PRIMARY KEY,
    user_id           text        NOT NULL,
    schema_name       text        NOT NULL,
    table_name        text        NOT NULL,
    pk                uuid        NOT NULL,
    attempted_version bigint      NOT NULL,
    op                text        NOT NULL,
    payload           text,
    error             text        NOT NULL,
    first_seen        timestamptz NOT NULL DEFAULT now(),
    retry_count       integer     NOT NULL DEFAULT 0,
    CONSTRAINT materialize_failures_row UNIQUE (user_id, schema_name, table_name, pk)
);

CREATE INDEX materialize_failures_by_user ON sync.materialize_failures (user_id, first_seen DESC);
