package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pulsesync/pulsesync/sequencer"
)

// errIsolateProjections ends an attempt whose bare projections failed because of their data:
// the next attempt runs them in savepoints to find which.
var errIsolateProjections = errors.New("a projection failed: isolate projections")

// errNoSequence ends an attempt that found the user without a sequence row, so that it locked
// nothing: the next attempt creates the row in its own transaction.
var errNoSequence = errors.New("the user has no sequence row")

// attemptMode is what an earlier attempt of the same upload learnt the next one must do.
type attemptMode struct {
	isolate        bool // run projections in savepoints (errIsolateProjections)
	createSequence bool // create the user's sequence row before locking it (errNoSequence)
}

// maxAttempts bounds how often an upload transaction is re-run after a transient failure
// (serialization failure, deadlock, lock timeout), as the reference does (§3.4 step 11).
const maxAttempts = 3

// Upload judges and applies one upload of user from source, in one transaction, and returns
// one outcome per change in request order (docs/protocol-v0.md §3).
//
// Only applied changes enter the stream and consume their idempotency key (invariant I2,
// §10.2): statuses are decided in Go from a few bulk reads taken under the user's sequence
// lock, then the stream entries, row versions and the sequence move are written in bulk. A
// *RequestError means the request as a whole breaks a rule and nothing was applied. Any other
// error means the database failed (after retries) and nothing was applied either.
func (s *Store) Upload(ctx context.Context, user, source string, in []ChangeInput) (UploadResult, error) {
	res := UploadResult{Accepted: true, Outcomes: make([]Outcome, len(in))}
	if s.cfg.MaxChanges > 0 && len(in) > s.cfg.MaxChanges {
		return s.refuseBatch(ctx, user, in, res)
	}
	changes, err := s.prepare(in, res.Outcomes)
	if err != nil {
		return UploadResult{}, err
	}
	for _, o := range res.Outcomes {
		if o.Invalid != nil && o.Invalid.Reason == ReasonUnregisteredTable {
			res.Accepted = false
		}
	}
	if len(changes) == 0 {
		res.Highest, err = s.Watermark(ctx, user)
		return res, err
	}
	isolate, create := false, false
	for attempt := 1; ; attempt++ {
		err = s.applyOnce(ctx, user, source, changes, attemptMode{isolate: isolate, createSequence: create}, &res)
		if errors.Is(err, errIsolateProjections) && !isolate {
			isolate, attempt = true, attempt-1 // not a failure of the database: no backoff
			continue
		}
		if errors.Is(err, errNoSequence) && !create {
			// The user's first upload (not a failure of the database: no backoff).
			create, attempt = true, attempt-1
			continue
		}
		if err == nil || !transient(err) || attempt == maxAttempts {
			break
		}
		s.cfg.Logger.Warn("upload transaction retried", "user", user, "source", source, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return UploadResult{}, ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * 40 * time.Millisecond):
		}
	}
	if err != nil {
		return UploadResult{}, err
	}
	return res, nil
}

// refuseBatch answers an upload over the configured size: every change batch_too_large,
// accepted false, nothing applied (§3.4 step 4).
func (s *Store) refuseBatch(ctx context.Context, user string, in []ChangeInput, res UploadResult) (UploadResult, error) {
	message := fmt.Sprintf("batch too large: changes=%d limit=%d", len(in), s.cfg.MaxChanges)
	for i := range in {
		res.Outcomes[i] = Outcome{SourceChangeID: in[i].SourceChangeID, Status: StatusInvalid,
			Invalid: &Invalid{Reason: ReasonBatchTooLarge, Message: message, Details: InvalidDetails{Error: message}}}
	}
	res.Accepted = false
	var err error
	res.Highest, err = s.Watermark(ctx, user)
	return res, err
}

// prepare validates every change, fills the outcomes of invalid ones, refuses requests that
// repeat a source_change_id or a row key, and returns the valid changes in processing order:
// upserts parents first, then deletes children first, request order within a table (§3.4).
func (s *Store) prepare(in []ChangeInput, outcomes []Outcome) ([]*change, error) {
	seenIDs := make(map[int64]struct{}, len(in))
	seenRows := make(map[rowKey]struct{}, len(in))
	changes := make([]*change, 0, len(in))
	for i := range in {
		outcomes[i].SourceChangeID = in[i].SourceChangeID
		if _, dup := seenIDs[in[i].SourceChangeID]; dup {
			return nil, &RequestError{Message: fmt.Sprintf("duplicate source_change_id %d in one request", in[i].SourceChangeID)}
		}
		seenIDs[in[i].SourceChangeID] = struct{}{}
		c, invalid := s.validate(i, &in[i])
		if invalid != nil {
			outcomes[i].Status, outcomes[i].Invalid = StatusInvalid, invalid
			continue
		}
		if _, dup := seenRows[c.key()]; dup {
			return nil, &RequestError{Message: fmt.Sprintf("more than one change for row %s pk=%s in one request", c.table.Name, c.pk)}
		}
		seenRows[c.key()] = struct{}{}
		changes = append(changes, c)
	}
	slices.SortStableFunc(changes, func(a, b *change) int {
		if a.upsert() != b.upsert() {
			if a.upsert() {
				return -1
			}
			return 1
		}
		if a.upsert() {
			return a.table.rank - b.table.rank
		}
		return b.table.rank - a.table.rank
	})
	return changes, nil
}

// rowState is the server's record of a row before this upload.
type rowState struct {
	version  int64
	deleted  bool
	serverID int64 // stream entry holding the current after-image
}

// applyOnce runs the upload transaction once, filling res. On error nothing is committed and
// res may hold partial outcomes, which the next attempt overwrites.
//
// The transaction takes two round trips when nothing goes wrong: BEGIN, the user's lock and
// every read the decisions need; then the writes, the projections into business tables, and
// COMMIT. Projections rarely fail, so they first run bare; if one fails because of its data,
// the attempt ends with errIsolateProjections and the next one runs them inside savepoints,
// which costs a round trip per change to isolate the failing ones. Conflicts cost one round
// trip to read the rows they report.
func (s *Store) applyOnce(ctx context.Context, user, source string, changes []*change, mode attemptMode, res *UploadResult) (err error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer pc.Release()
	c := pc.Conn()
	open := true
	defer func() {
		if open {
			// A connection left inside a transaction is destroyed by the pool on release.
			_, _ = c.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()

	// Statements after the lock take their snapshots after it, so they see the user's latest
	// commits (READ COMMITTED, the default).
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN`)
	if s.reg.deferrable {
		// Projection failures must surface inside the projection's savepoint, not at commit
		// where they would fail the whole upload (docs/protocol-v0.md §10.3 #5).
		batch.Queue(`SET CONSTRAINTS ALL IMMEDIATE`)
	}
	block := sequencer.QueueLock(batch, user, mode.createSequence)
	state := queueUploadState(batch, user, source, changes)
	if err := c.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("read upload state: %w", err)
	}
	if block.Missing() {
		return errNoSequence
	}

	applied := s.decide(changes, state.recorded, state.rows, res.Outcomes)
	if err := fillConflictRows(ctx, c, user, changes, state.rows, res.Outcomes); err != nil {
		return err
	}
	var first int64
	var p pipeline
	if len(applied) > 0 {
		first = block.Take(len(applied))
		for i, a := range applied {
			a.serverID = first + int64(i)
		}
		queueStreamWrites(&p, user, source, applied, block.Last())
	}
	groups, unconverted := planProjections(applied)
	queueRecordFailures(&p, user, unconverted)
	projFirst, projEnd := s.queueProjections(&p, user, groups, state.hasFailures, nil, mode.isolate)
	p.exec(`COMMIT`)
	failed, err := p.send(ctx, c)
	if err != nil {
		switch {
		case failed < projFirst || failed >= projEnd || !projectionError(err):
			return fmt.Errorf("write changes: %w", err)
		case !mode.isolate:
			return errIsolateProjections
		}
		// The COMMIT was skipped with the rest of the pipeline: the transaction is open.
		rejected, err := s.recoverProjections(ctx, c, user, groups, state.hasFailures, nil)
		if err != nil {
			return err
		}
		var tail pipeline
		queueRecordFailures(&tail, user, rejected)
		tail.exec(`COMMIT`)
		if _, err := tail.send(ctx, c); err != nil {
			return fmt.Errorf("commit upload: %w", err)
		}
	}
	open = false
	res.Highest = block.Last()
	res.Advance = sequencer.Advance{User: user, Source: source}
	if len(applied) > 0 {
		res.Advance.Seq, res.Advance.From, res.Advance.Schemas = block.Last(), first, schemasOf(applied)
	}
	return nil
}

// appliedChange is a change the upload applies, with the id and version it gets.
type appliedChange struct {
	*change
	version  int64
	serverID int64
}

// schemasOf lists the distinct schemas of the applied changes.
func schemasOf(applied []*appliedChange) []string {
	var schemas []string
	for _, a := range applied {
		if !slices.Contains(schemas, a.table.Name.Schema) {
			schemas = append(schemas, a.table.Name.Schema)
		}
	}
	return schemas
}

// uploadStateSQL reads, in one statement, everything the decisions of an upload depend on:
// the current state of every row it touches or references as a parent (kind 1, by position in
// the key arrays), which of its idempotency keys are recorded (kind 2), and whether the user has
// failure records the upload may clear (kind 3).
//
// Each key is probed on its own (LATERAL … LIMIT 1 keeps the planner from flattening the
// lookups): a generic plan otherwise prefers to scan a device's whole key history, which grows
// without bound, and hash-join it with the batch.
const uploadStateSQL = `SELECT 1, k.ord, r.server_version, r.deleted, r.server_id
FROM unnest($2::text[], $3::text[], $4::uuid[]) WITH ORDINALITY AS k (schema_name, table_name, pk, ord),
LATERAL (SELECT server_version, deleted, server_id FROM sync.rows
         WHERE user_id = $1 AND schema_name = k.schema_name AND table_name = k.table_name AND pk = k.pk
         LIMIT 1) r
UNION ALL
SELECT 2, k.source_change_id, 0, false, 0
FROM unnest($6::int8[]) AS k (source_change_id),
LATERAL (SELECT 1 FROM sync.changes
         WHERE user_id = $1 AND source_id = $5 AND source_change_id = k.source_change_id
         LIMIT 1) c
UNION ALL
SELECT 3, 0, 0, false, 0 WHERE EXISTS (SELECT 1 FROM sync.materialize_failures WHERE user_id = $1)`

// uploadState is what an upload's decisions depend on, read under the user's lock.
type uploadState struct {
	rows        map[rowKey]rowState // rows the changes touch or reference; absent = never synced
	recorded    map[int64]bool      // source_change_ids of this source already applied
	hasFailures bool                // the user has failure records
}

// queueUploadState queues the read of the upload's state into batch; the result is filled in
// when the batch's results are read.
func queueUploadState(batch *pgx.Batch, user, source string, changes []*change) *uploadState {
	var keys []rowKey
	index := map[rowKey]bool{}
	add := func(k rowKey) {
		if !index[k] {
			index[k] = true
			keys = append(keys, k)
		}
	}
	ids := make([]int64, len(changes))
	for i, c := range changes {
		ids[i] = c.scid
		add(c.key())
		for _, p := range c.parents {
			add(p.key)
		}
	}
	schemas, tables, pks := keyArrays(keys)
	st := &uploadState{rows: make(map[rowKey]rowState, len(keys)), recorded: map[int64]bool{}}
	batch.Queue(uploadStateSQL, user, schemas, tables, pks, source, ids).Query(func(rows pgx.Rows) error {
		var kind int32
		var n int64
		var row rowState
		_, err := pgx.ForEachRow(rows, []any{&kind, &n, &row.version, &row.deleted, &row.serverID}, func() error {
			switch kind {
			case 1:
				st.rows[keys[n-1]] = row
			case 2:
				st.recorded[n] = true
			case 3:
				st.hasFailures = true
			}
			return nil
		})
		return err
	})
	return st
}

// decide judges every change in processing order (§3.6, §3.7, §3.8), fills its outcome, updates
// states as if the applied ones were written, and returns those to write, in processing order.
// Because states moves along, a parent upserted earlier in the request counts as present for
// its children, as §3.7 asks.
func (s *Store) decide(changes []*change, recorded map[int64]bool, states map[rowKey]rowState, outcomes []Outcome) []*appliedChange {
	var applied []*appliedChange
	for _, c := range changes {
		out := &outcomes[c.index]
		*out = Outcome{SourceChangeID: c.scid} // a retried attempt must not inherit the last one's
		if recorded[c.scid] {
			out.Status = StatusApplied // a replay: no effect, no version (§3.8)
			continue
		}
		if missing := missingParents(c, states); len(missing) > 0 {
			out.Status, out.Invalid = StatusInvalid, &Invalid{Reason: ReasonFKMissing, Details: InvalidDetails{Missing: missing}}
			continue
		}
		st, exists := states[c.key()]
		switch {
		case !exists && !c.upsert():
			out.Status = StatusApplied // deleting a row the server never had: nothing to record
			continue
		case !exists && c.base != 0:
			message := fmt.Sprintf("conflict without server_row for %s pk=%s", c.table.Name, c.pk)
			s.cfg.Logger.Warn("upload based on a row the server does not have", "table", c.table.Name.String(), "pk", c.pk.String())
			out.Status, out.Invalid = StatusInvalid, &Invalid{Reason: ReasonInternalError, Message: message, Details: InvalidDetails{Error: message}}
			continue
		case exists && c.base != st.version:
			out.Status = StatusConflict // the row is filled in by fillConflictRows
			continue
		}
		a := &appliedChange{change: c, version: st.version + 1}
		applied = append(applied, a)
		out.Status, out.NewVersion = StatusApplied, a.version
		states[c.key()] = rowState{version: a.version, deleted: !c.upsert()}
	}
	return applied
}

// missingParents lists the parents of c that are not live rows of the uploading user. Parents
// are looked up only among the user's own rows, so nobody can probe or attach to another
// user's keys (§10.3 #8). A request never holds two changes of one row, so a parent it upserts
// cannot also be deleted by it.
func missingParents(c *change, states map[rowKey]rowState) []string {
	var missing []string
	for _, p := range c.parents {
		if st, ok := states[p.key]; !ok || st.deleted {
			missing = append(missing, p.key.table.Name.String()+":"+p.raw)
		}
	}
	return missing
}

const conflictRowsSQL = `SELECT server_id, payload FROM sync.changes WHERE user_id = $1 AND server_id = ANY ($2)`

// fillConflictRows reads the current after-image of every conflicting row and completes its
// outcome's server_row (§3.2: a conflict always carries one).
func fillConflictRows(ctx context.Context, c *pgx.Conn, user string, changes []*change, states map[rowKey]rowState, outcomes []Outcome) error {
	var ids []int64
	for _, c := range changes {
		if outcomes[c.index].Status == StatusConflict && !states[c.key()].deleted {
			ids = append(ids, states[c.key()].serverID)
		}
	}
	payloads := make(map[int64][]byte, len(ids))
	if len(ids) > 0 {
		rows, err := c.Query(ctx, conflictRowsSQL, user, ids)
		if err != nil {
			return fmt.Errorf("read conflicting rows: %w", err)
		}
		var id int64
		var payload []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &payload}, func() error {
			payloads[id] = slices.Clone(payload)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read conflicting rows: %w", err)
		}
	}
	for _, c := range changes {
		out := &outcomes[c.index]
		if out.Status != StatusConflict {
			continue
		}
		st := states[c.key()]
		out.ServerRow = &ServerRow{Schema: c.table.Name.Schema, Table: c.table.Name.Table, PK: c.pk,
			Version: st.version, Deleted: st.deleted}
		if !st.deleted {
			out.ServerRow.Payload = payloads[st.serverID]
		}
	}
	return nil
}

// streamWritesSQL appends the applied changes to the stream, moves their rows' versions and
// stores the user's new last id ($11) in one statement, so each change's fields cross the wire
// once and the transaction runs one statement fewer.
var streamWritesSQL = `WITH seq AS (` + sequencer.StoreStatement("$1", "$11") + `),
c AS (
    INSERT INTO sync.changes
        (user_id, server_id, schema_name, table_name, op, pk, payload, server_version, source_id, source_change_id)
    SELECT $1, u.server_id, u.schema_name, u.table_name, u.op, u.pk, u.payload, u.server_version, $2, u.source_change_id
    FROM unnest($3::int8[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::text[], $9::int8[], $10::int8[])
        AS u (server_id, schema_name, table_name, op, pk, payload, server_version, source_change_id)
    RETURNING server_id, schema_name, table_name, op, pk, server_version)
INSERT INTO sync.rows AS r (user_id, schema_name, table_name, pk, server_version, deleted, server_id)
SELECT $1, c.schema_name, c.table_name, c.pk, c.server_version, c.op = 'DELETE', c.server_id FROM c
ON CONFLICT (user_id, schema_name, table_name, pk) DO UPDATE
SET server_version = excluded.server_version, deleted = excluded.deleted, server_id = excluded.server_id`

// queueStreamWrites queues the stream entries and row versions of the applied changes and the
// store of last, the user's new last id: one statement whatever the batch size. A request never
// holds two changes of one row, so the upsert meets each row once.
func queueStreamWrites(p *pipeline, user, source string, applied []*appliedChange, last int64) {
	n := len(applied)
	ids, versions, scids := make([]int64, n), make([]int64, n), make([]int64, n)
	schemas, tables, ops := make([]string, n), make([]string, n), make([]string, n)
	pks, payloads := make([]UUID, n), make([]*string, n)
	for i, a := range applied {
		ids[i], versions[i], scids[i] = a.serverID, a.version, a.scid
		schemas[i], tables[i], ops[i] = a.table.Name.Schema, a.table.Name.Table, a.op
		pks[i] = a.pk
		if a.payload != nil {
			p := string(a.payload)
			payloads[i] = &p
		}
	}
	p.exec(streamWritesSQL, user, source, ids, schemas, tables, ops, pks, payloads, versions, scids, last)
}

// transient reports whether err is worth re-running the whole transaction for.
func transient(err error) bool {
	switch pgCode(err) {
	case "40001", "40P01", "55P03": // serialization_failure, deadlock_detected, lock_not_available
		return true
	}
	return false
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "" for any other error.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
