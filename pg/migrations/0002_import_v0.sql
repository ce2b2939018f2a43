-- State of `pulsesync import-v0`, which copies a go-oversync v0 deployment into this schema
-- (docs/operations.md "Migrating from go-oversync"). Both tables stay empty unless it runs.

-- One row: the import into this database. Every batch the importer writes commits together
-- with its cursor here, so a crashed or interrupted import resumes where it stopped.
CREATE TABLE sync.import_v0_progress (
    id              integer     PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    -- host/database/schema of the source: an import resumes only from the source it began with.
    source          text        NOT NULL,
    -- The source's highest server_id when the import (re)started. Imported ids stay as they
    -- were; every imported user's sequence continues above this value.
    floor           bigint      NOT NULL,
    -- How many change-log entries the source held then; a differing count on a later run
    -- means the source changed and must be imported afresh.
    source_entries  bigint      NOT NULL,
    -- The floor the user sequences were last set to (0 before the first finished import).
    -- A sequence anywhere else means pulsesync accepted uploads since.
    seq_floor       bigint      NOT NULL DEFAULT 0,
    -- changes, rows, failures, finish, then done once rows, owners and sequences are written.
    phase           text        NOT NULL,
    -- Source records the current phase has written so far, for the progress report.
    phase_done      bigint      NOT NULL DEFAULT 0,
    changes_after   bigint      NOT NULL DEFAULT 0,
    rows_after_user   text,
    rows_after_schema text,
    rows_after_table  text,
    rows_after_pk     uuid,
    failures_after  bigint      NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);

-- The source's row versions and current after-images, staged until the change log is complete:
-- the last step turns them into sync.rows (pointing each at the entry holding its image) and
-- sync.business_owners in one transaction, then empties this table.
CREATE TABLE sync.import_v0_rows (
    user_id        text        NOT NULL,
    schema_name    text        NOT NULL,
    table_name     text        NOT NULL,
    pk             uuid        NOT NULL,
    server_version bigint      NOT NULL,
    deleted        boolean     NOT NULL,
    updated_at     timestamptz NOT NULL,
    payload        text,
    PRIMARY KEY (user_id, schema_name, table_name, pk)
);
