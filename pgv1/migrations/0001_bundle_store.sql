-- The v1 bundle protocol's state, in a schema of its own: nothing here is shared with the v0
-- stream in schema sync. A user's bundle_seq lives in sync.user_seq under the key
-- sequencer.BundleStream(user), whose row lock serialises the user's v1 mutations.

CREATE SCHEMA IF NOT EXISTS sync_v1;

-- One row per user who made a v1 call: the scope's state, its initialization lease and the
-- retention floor (the highest bundle_seq whose history was discarded).
CREATE TABLE sync_v1.scopes (
    user_id           text        PRIMARY KEY,
    state             text        NOT NULL DEFAULT 'uninitialized'
                                  CHECK (state IN ('uninitialized', 'initializing', 'initialized')),
    initialization_id uuid,
    lease_source_id   text,
    lease_expires_at  timestamptz,
    retained_floor    bigint      NOT NULL DEFAULT 0
);

-- The writers of each user: state, the watermark of committed source_bundle_ids, and where a
-- retired source went.
CREATE TABLE sync_v1.sources (
    user_id                        text   NOT NULL,
    source_id                      text   NOT NULL,
    state                          text   NOT NULL DEFAULT 'active'
                                          CHECK (state IN ('active', 'reserved', 'retired')),
    max_committed_source_bundle_id bigint NOT NULL DEFAULT 0,
    replaced_by_source_id          text,
    retire_reason                  text,
    PRIMARY KEY (user_id, source_id)
);

-- Push sessions staging a bundle. A tuple has at most one live session: creating another
-- replaces it.
CREATE TABLE sync_v1.push_sessions (
    push_id           uuid        PRIMARY KEY,
    user_id           text        NOT NULL,
    source_id         text        NOT NULL,
    source_bundle_id  bigint      NOT NULL,
    planned_row_count bigint      NOT NULL,
    request_hash      text        NOT NULL,
    initialization_id uuid,
    next_row_ordinal  bigint      NOT NULL DEFAULT 0,
    staged_bytes      bigint      NOT NULL DEFAULT 0,
    expires_at        timestamptz NOT NULL,
    UNIQUE (user_id, source_id, source_bundle_id)
);
CREATE INDEX push_sessions_expiry ON sync_v1.push_sessions (expires_at);

-- Staged rows. request_payload is the payload exactly as the client sent it, canonicalised
-- (RFC 8785), for the request hash; apply_payload holds the values PostgreSQL is given, and
-- apply_columns their names, sorted and comma-separated, so that a commit groups rows that
-- one statement can apply. A session stages each (table, key) once.
--
-- There is no foreign key to push_sessions: its check per staged row cost a quarter of a
-- chunk's write. Every statement that deletes sessions deletes their rows too, and a chunk reads
-- its session FOR UPDATE, so the sweeper (which skips locked sessions) cannot remove it while
-- rows are being staged for it.
CREATE TABLE sync_v1.push_rows (
    push_id          uuid   NOT NULL,
    row_ordinal      bigint NOT NULL,
    schema_name      text   NOT NULL,
    table_name       text   NOT NULL,
    key_value        text   NOT NULL,
    op               text   NOT NULL,
    base_row_version bigint NOT NULL,
    request_payload  text,
    apply_payload    jsonb,
    apply_columns    text,
    PRIMARY KEY (push_id, row_ordinal),
    CONSTRAINT push_rows_one_per_key UNIQUE (push_id, schema_name, table_name, key_value)
);

-- Committed bundles. byte_count is the length of the bundle hash's canonical input.
CREATE TABLE sync_v1.bundles (
    user_id          text        NOT NULL,
    bundle_seq       bigint      NOT NULL,
    source_id        text        NOT NULL,
    source_bundle_id bigint      NOT NULL,
    row_count        bigint      NOT NULL,
    bundle_hash      text        NOT NULL,
    request_hash     text        NOT NULL,
    byte_count       bigint      NOT NULL,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, bundle_seq),
    UNIQUE (user_id, source_id, source_bundle_id)
);

-- The rows of committed bundles, each stored as the wire object every read serves:
-- {"schema","table","key","op","row_version"[,"payload"]}.
CREATE TABLE sync_v1.bundle_rows (
    user_id     text   NOT NULL,
    bundle_seq  bigint NOT NULL,
    row_ordinal int    NOT NULL,
    wire        text   NOT NULL,
    PRIMARY KEY (user_id, bundle_seq, row_ordinal)
);

-- Every row a user's bundles ever touched: its version (the bundle_seq of its last change),
-- whether it is a tombstone, and for a live row its current wire payload, from which snapshots
-- are cut. key_json is the key object as the wire carries it.
CREATE TABLE sync_v1.row_state (
    user_id     text    NOT NULL,
    schema_name text    NOT NULL,
    table_name  text    NOT NULL,
    key_value   text    NOT NULL,
    key_json    text    NOT NULL,
    row_version bigint  NOT NULL,
    deleted     boolean NOT NULL,
    payload     text,
    PRIMARY KEY (user_id, schema_name, table_name, key_value)
);

-- Snapshot sessions: every live row of a user frozen at snapshot_bundle_seq. expires_at slides
-- forward as a client reads, never past hard_expires_at; retired marks a DELETEd session (or one
-- the per-user cap pushed out), whose expiry is then set to the moment of retirement, so the
-- sweeper finds every removable session by expires_at.
--
-- Both snapshot tables are UNLOGGED: a session is derived data that lives minutes, so its rows
-- are written without WAL (the build's largest cost otherwise). A crash empties both tables
-- together; clients then get 404 and build a new snapshot. For the same reason snapshot_rows has
-- no foreign key (its check per frozen row doubled a build's time): the sweeper deletes a
-- session's rows itself.
CREATE UNLOGGED TABLE sync_v1.snapshots (
    snapshot_id         uuid        PRIMARY KEY,
    user_id             text        NOT NULL,
    snapshot_bundle_seq bigint      NOT NULL,
    row_count           bigint      NOT NULL,
    byte_count          bigint      NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    hard_expires_at     timestamptz NOT NULL,
    retired             boolean     NOT NULL DEFAULT false
);
CREATE INDEX snapshots_user ON sync_v1.snapshots (user_id);
CREATE INDEX snapshots_expiry ON sync_v1.snapshots (expires_at);

-- Snapshot rows, 1-based ordinals, each stored as the exact bytes the chunk emits:
-- {"schema","table","key","row_version","payload"}.
CREATE UNLOGGED TABLE sync_v1.snapshot_rows (
    snapshot_id uuid   NOT NULL,
    row_ordinal bigint NOT NULL,
    wire        text   NOT NULL,
    byte_count  int    NOT NULL,
    PRIMARY KEY (snapshot_id, row_ordinal)
);
