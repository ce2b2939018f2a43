package importv0

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/pg"
)

// batch is one batch read from the source: the statements writing it into the target, its
// cursor's move included, and how many source records it holds. The batch with n == 0 ends
// its phase and moves the import to the next one.
type batch struct {
	n      int
	writes pgx.Batch
}

// fetcher reads a phase's next batch from the source, moving its own cursor.
type fetcher func(ctx context.Context) (*batch, error)

// copyPhase copies one phase: a goroutine reads the next batch from the source while the
// current one is written to the target, each batch in one target transaction together with
// its cursor, so an interrupted run leaves whole batches and a cursor that matches them.
func (r *run) copyPhase(ctx context.Context, phase string, total int64, fetch fetcher) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *batch, 1)
	var readErr error
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(batches)
		for {
			b, err := fetch(ctx)
			if err != nil {
				readErr = fmt.Errorf("read %s from the source: %w", phase, err)
				return
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			if b.n == 0 {
				return
			}
		}
	}()
	var err error
	for b := range batches {
		if err != nil {
			continue // drain until the reader sees the cancellation
		}
		if err = r.write(ctx, b); err != nil {
			err = fmt.Errorf("write %s: %w", phase, err)
			cancel()
			continue
		}
		r.done += int64(b.n)
		r.report(Progress{Phase: phase, Done: r.done, Total: total})
	}
	<-readDone
	if err != nil {
		return err
	}
	return readErr
}

// write runs one batch's statements in one target transaction.
func (r *run) write(ctx context.Context, b *batch) error {
	return pgx.BeginFunc(ctx, r.dst, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b.writes).Close()
	})
}

// endPhase is the batch that closes a phase: it moves the import to next.
func endPhase(next string) *batch {
	b := &batch{}
	b.writes.Queue(advanceSQL, next)
	return b
}

// readChangesSQL reads the next entries of the change log (%s) in server_id order, one range
// scan of its primary key. payload::text accepts json and jsonb columns alike.
const readChangesSQL = `SELECT server_id, user_id, schema_name, table_name, op, pk_uuid, payload::text,
       server_version, source_id, source_change_id, ts
FROM %s WHERE server_id > $1 ORDER BY server_id LIMIT $2`

// writeChangesSQL appends entries to the stream keeping their server ids. An entry already
// there (an import restarted over a grown source) is left as it is.
const writeChangesSQL = `INSERT INTO sync.changes
    (user_id, server_id, schema_name, table_name, op, pk, payload, server_version, source_id, source_change_id, ts)
SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[],
                     $8::int8[], $9::text[], $10::int8[], $11::timestamptz[])
ON CONFLICT DO NOTHING`

const changesCursorSQL = `UPDATE sync.import_v0_progress
SET changes_after = $1, phase_done = phase_done + $2, updated_at = now()`

// fetchChanges returns the fetcher of the change log after server id after.
func (r *run) fetchChanges(after int64) fetcher {
	var scratch bytes.Buffer
	query := fmt.Sprintf(readChangesSQL, r.src.log)
	return func(ctx context.Context) (*batch, error) {
		rows, err := r.src.pool.Query(ctx, query, after, r.cfg.BatchSize)
		if err != nil {
			return nil, err
		}
		var (
			id, version, scid                 int64
			user, schema, table, op, sourceID string
			pk                                pg.UUID
			payload                           []byte
			ts                                time.Time
			c                                 changeColumns
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &user, &schema, &table, &op, &pk, &payload, &version, &sourceID, &scid, &ts}, func() error {
			text, err := compactPayload(payload, &scratch)
			if err != nil {
				return fmt.Errorf("entry %d: payload is not JSON: %w", id, err)
			}
			c.add(id, user, schema, table, op, pk, text, version, sourceID, scid, ts)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(c.ids) == 0 {
			return endPhase(phaseRows), nil
		}
		after = c.ids[len(c.ids)-1]
		b := &batch{n: len(c.ids)}
		b.writes.Queue(writeChangesSQL, c.users, c.ids, c.schemas, c.tables, c.ops, c.pks, c.payloads, c.versions, c.sources, c.scids, c.ts)
		b.writes.Queue(changesCursorSQL, after, b.n)
		return b, nil
	}
}

// changeColumns holds a batch of entries column by column, as unnest takes them.
type changeColumns struct {
	ids, versions, scids            []int64
	users, schemas, tables, sources []string
	ops                             []string
	pks                             []pg.UUID
	payloads                        []*string
	ts                              []time.Time
}

func (c *changeColumns) add(id int64, user, schema, table, op string, pk pg.UUID, payload *string, version int64, source string, scid int64, ts time.Time) {
	c.ids, c.versions, c.scids = append(c.ids, id), append(c.versions, version), append(c.scids, scid)
	c.users, c.schemas, c.tables, c.sources = append(c.users, user), append(c.schemas, schema), append(c.tables, table), append(c.sources, source)
	c.ops, c.pks, c.payloads, c.ts = append(c.ops, op), append(c.pks, pk), append(c.payloads, payload), append(c.ts, ts)
}

// readRowsSQL reads the next row versions (%[1]s) with their current after-images (%[2]s) in
// primary-key order; %[3]s is the keyset condition, empty for the first batch, and %[4]s the
// limit's parameter. The batch is cut from the versions first, so its images are looked up by
// key rather than by joining the whole image table for every batch.
const readRowsSQL = `WITH m AS (
    SELECT user_id, schema_name, table_name, pk_uuid, server_version, deleted, updated_at FROM %[1]s m
    %[3]s
    ORDER BY user_id, schema_name, table_name, pk_uuid LIMIT %[4]s)
SELECT m.user_id, m.schema_name, m.table_name, m.pk_uuid, m.server_version, m.deleted, m.updated_at, s.payload::text
FROM m LEFT JOIN %[2]s s
  ON s.user_id = m.user_id AND s.schema_name = m.schema_name AND s.table_name = m.table_name AND s.pk_uuid = m.pk_uuid
ORDER BY m.user_id, m.schema_name, m.table_name, m.pk_uuid`

// stageRowsSQL stages row versions; the finishing transaction turns them into sync.rows.
const stageRowsSQL = `INSERT INTO sync.import_v0_rows
    (user_id, schema_name, table_name, pk, server_version, deleted, updated_at, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::int8[], $6::bool[], $7::timestamptz[], $8::text[])`

const rowsCursorSQL = `UPDATE sync.import_v0_progress
SET rows_after_user = $1, rows_after_schema = $2, rows_after_table = $3, rows_after_pk = $4,
    phase_done = phase_done + $5, updated_at = now()`

// fetchRows returns the fetcher of row versions after key (nil = from the first).
func (r *run) fetchRows(after *rowKey) fetcher {
	var scratch bytes.Buffer
	first := fmt.Sprintf(readRowsSQL, r.src.meta, r.src.state, "", "$1")
	next := fmt.Sprintf(readRowsSQL, r.src.meta, r.src.state,
		"WHERE (m.user_id, m.schema_name, m.table_name, m.pk_uuid) > ($1, $2, $3, $4)", "$5")
	return func(ctx context.Context) (*batch, error) {
		var rows pgx.Rows
		var err error
		if after == nil {
			rows, err = r.src.pool.Query(ctx, first, r.cfg.BatchSize)
		} else {
			rows, err = r.src.pool.Query(ctx, next, after.user, after.schema, after.table, after.pk, r.cfg.BatchSize)
		}
		if err != nil {
			return nil, err
		}
		var (
			k        rowKey
			version  int64
			deleted  bool
			updated  time.Time
			payload  []byte
			users    []string
			schemas  []string
			tables   []string
			pks      []pg.UUID
			versions []int64
			dels     []bool
			times    []time.Time
			images   []*string
		)
		_, err = pgx.ForEachRow(rows, []any{&k.user, &k.schema, &k.table, &k.pk, &version, &deleted, &updated, &payload}, func() error {
			text, err := compactPayload(payload, &scratch)
			if err != nil {
				return fmt.Errorf("row %s.%s %x: after-image is not JSON: %w", k.schema, k.table, k.pk, err)
			}
			users, schemas, tables, pks = append(users, k.user), append(schemas, k.schema), append(tables, k.table), append(pks, k.pk)
			versions, dels, times, images = append(versions, version), append(dels, deleted), append(times, updated), append(images, text)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(users) == 0 {
			return endPhase(phaseFailures), nil
		}
		last := rowKey{user: users[len(users)-1], schema: schemas[len(users)-1], table: tables[len(users)-1], pk: pks[len(users)-1]}
		after = &last
		b := &batch{n: len(users)}
		b.writes.Queue(stageRowsSQL, users, schemas, tables, pks, versions, dels, times, images)
		b.writes.Queue(rowsCursorSQL, last.user, last.schema, last.table, last.pk, b.n)
		return b, nil
	}
}

// readFailuresSQL reads (%[1]s failures, %[2]s row versions) the next failures that concern a
// row's current version: pulsesync keeps one record per row, and a failure of an older version
// was overtaken by the row's later changes.
const readFailuresSQL = `SELECT f.id, f.user_id, f.schema_name, f.table_name, f.pk_uuid, f.attempted_version, f.op,
       f.payload::text, f.error, f.first_seen, f.retry_count
FROM %[1]s f JOIN %[2]s m
  ON m.user_id = f.user_id AND m.schema_name = f.schema_name AND m.table_name = f.table_name
 AND m.pk_uuid = f.pk_uuid AND m.server_version = f.attempted_version
WHERE f.id > $1 ORDER BY f.id LIMIT $2`

// writeFailuresSQL records failures, keeping per row the one of the highest version.
const writeFailuresSQL = `INSERT INTO sync.materialize_failures AS f
    (user_id, schema_name, table_name, pk, attempted_version, op, payload, error, first_seen, retry_count)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::int8[], $6::text[], $7::text[], $8::text[],
                     $9::timestamptz[], $10::int4[])
ON CONFLICT (user_id, schema_name, table_name, pk) DO UPDATE
SET attempted_version = excluded.attempted_version, op = excluded.op, payload = excluded.payload,
    error = excluded.error, first_seen = excluded.first_seen, retry_count = excluded.retry_count
WHERE f.attempted_version < excluded.attempted_version`

const failuresCursorSQL = `UPDATE sync.import_v0_progress
SET failures_after = $1, phase_done = phase_done + $2, updated_at = now()`

// fetchFailures returns the fetcher of failures after source id after.
func (r *run) fetchFailures(after int64) fetcher {
	var scratch bytes.Buffer
	query := fmt.Sprintf(readFailuresSQL, r.src.failures, r.src.meta)
	return func(ctx context.Context) (*batch, error) {
		if r.src.failures == "" {
			return endPhase(phaseFinish), nil
		}
		rows, err := r.src.pool.Query(ctx, query, after, r.cfg.BatchSize)
		if err != nil {
			return nil, err
		}
		var (
			id, version                    int64
			retries                        int32
			user, schema, table, op, cause string
			pk                             pg.UUID
			payload                        []byte
			seen                           time.Time
			users, schemas, tables, ops    []string
			causes                         []string
			pks                            []pg.UUID
			versions                       []int64
			images                         []*string
			seens                          []time.Time
			retryCounts                    []int32
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &user, &schema, &table, &pk, &version, &op, &payload, &cause, &seen, &retries}, func() error {
			text, err := compactPayload(payload, &scratch)
			if err != nil {
				return fmt.Errorf("failure %d: payload is not JSON: %w", id, err)
			}
			after = id
			users, schemas, tables, pks = append(users, user), append(schemas, schema), append(tables, table), append(pks, pk)
			versions, ops, images, causes = append(versions, version), append(ops, op), append(images, text), append(causes, cause)
			seens, retryCounts = append(seens, seen), append(retryCounts, retries)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(users) == 0 {
			return endPhase(phaseFinish), nil
		}
		b := &batch{n: len(users)}
		b.writes.Queue(writeFailuresSQL, users, schemas, tables, pks, versions, ops, images, causes, seens, retryCounts)
		b.writes.Queue(failuresCursorSQL, after, b.n)
		return b, nil
	}
}
