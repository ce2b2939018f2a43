package pgv1

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/jcs"
	"github.com/pulsesync/pulsesync/pgv1/wire"
	"github.com/pulsesync/pulsesync/sequencer"
)

// commitRow is a staged row as the commit reads it, with its row's current state.
type commitRow struct {
	ordinal int64
	table   *table
	schema  string
	name    string
	key     string
	op      string
	base    int64
	request []byte // nil for DELETE
	columns string
	version int64 // current row_version; 0 when the row never existed
	exists  bool  // the row has a state (live or tombstone)
	deleted bool
}

// stagedForCommitSQL reads a session's staged rows in order, each with its row's current
// version and tombstone flag. The row states are looked up one key at a time (LATERAL), so the
// cost follows the bundle's size whatever the user's row count and the tables' statistics: a
// join the planner is free to turn around read all of a user's row states on every commit.
const stagedForCommitSQL = `
SELECT pr.row_ordinal, pr.schema_name, pr.table_name, pr.key_value, pr.op, pr.base_row_version,
       pr.request_payload, coalesce(pr.apply_columns, ''), rs.row_version, coalesce(rs.deleted, false)
FROM sync_v1.push_rows pr
LEFT JOIN LATERAL (
    SELECT row_version, deleted FROM sync_v1.row_state
    WHERE user_id = $2 AND schema_name = pr.schema_name AND table_name = pr.table_name AND key_value = pr.key_value
    LIMIT 1 -- keeps the subquery a per-row lookup: the planner does not flatten it into a join
) rs ON true
WHERE pr.push_id = $1
ORDER BY pr.row_ordinal`

// commitInvalid is the 400 of a commit the protocol refuses (docs/protocol-v1.md §3.5).
func commitInvalid(format string, args ...any) *Error {
	return &Error{Code: "push_commit_invalid", Message: fmt.Sprintf(format, args...)}
}

// CommitPush resolves POST /sync/push-sessions/{push_id}/commit: the steps of
// docs/protocol-v1.md §3.5 in order, in one transaction under the user's lock. The staged rows
// are applied to the business tables with their effects captured (capture.go), the effects
// become the bundle's rows, and the bundle takes the user's next bundle_seq. The caller
// announces the advance after this returns; nothing is notified from inside the transaction.
//
// The commit takes three round trips: BEGIN, the lock and the reads every check needs; the
// applies, the effects and the payloads of the rows they touched; the writes of the bundle, row
// states, source watermark, retention and session removal, and the COMMIT. A business rule PostgreSQL enforces
// (unique, foreign key, check, not-null, a trigger raising) is a 400 push_commit_invalid naming
// the category, never a 500 (§6.2 #4).
func (s *Store) CommitPush(ctx context.Context, c Caller, pushID string) (BundleMeta, error) {
	if !wire.ValidUUID(pushID) {
		return BundleMeta{}, errNoSession()
	}
	var meta BundleMeta
	err := s.inUserLock(ctx, c.User, func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error {
		var err error
		meta, err = s.commitLocked(ctx, tx, seq, c, pushID)
		return err
	})
	if err != nil {
		if rej := businessRejection(err); rej != nil {
			return BundleMeta{}, rej
		}
		return BundleMeta{}, wrap("commit push", err)
	}
	return meta, nil
}

// commitLocked is CommitPush inside the user's lock.
func (s *Store) commitLocked(ctx context.Context, tx pgx.Tx, seq *sequencer.Block, c Caller, pushID string) (BundleMeta, error) {
	// Round trip 1: every read the checks need. The capture table is created here, before
	// the statements of round trip 2 that read it are prepared.
	batch := &pgx.Batch{}
	batch.Queue(readPushSessionSQL, pushID)
	batch.Queue(lockScopeSQL, c.User)
	batch.Queue(readSourceSQL, c.User, c.Source)
	batch.Queue(stagedForCommitSQL, pushID, c.User)
	batch.Queue(prepareCaptureSQL)
	br := tx.SendBatch(ctx, batch)
	ps, sc, src, rows, err := s.readCommitState(br, c, pushID)
	if closeErr := br.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("read commit state: %w", closeErr)
	}
	if err != nil {
		return BundleMeta{}, err
	}

	if err := s.checkCommit(ps, sc, src, rows, c); err != nil {
		return BundleMeta{}, err
	}
	if err := s.checkConflicts(ctx, tx, c.User, rows); err != nil {
		return BundleMeta{}, err
	}

	// Round trip 2: apply, surface deferred constraint violations, read the effects and the
	// current after-images of every row they touched.
	effects, images, err := s.apply(ctx, tx, c.User, pushID, rows)
	if err != nil {
		return BundleMeta{}, err
	}
	changes := normalise(effects)
	if len(changes) == 0 {
		return BundleMeta{}, commitInvalid("the bundle produced no captured business-table effects")
	}

	bundleSeq := seq.Take(1)
	b, err := buildBundle(bundleSeq, changes, images)
	if err != nil {
		return BundleMeta{}, err
	}
	meta := BundleMeta{BundleSeq: bundleSeq, SourceID: c.Source, SourceBundleID: ps.sourceBundleID,
		RowCount: int64(len(changes)), BundleHash: b.hash, RequestHash: ps.requestHash}

	// Round trip 3: the writes and the COMMIT.
	batch = &pgx.Batch{}
	s.queueBundleWrites(batch, c.User, meta, b)
	batch.Queue(upsertSourceSQL, c.User, c.Source, ps.sourceBundleID)
	if ps.initID != "" {
		batch.Queue(`UPDATE sync_v1.scopes SET state = 'initialized', initialization_id = NULL,
			lease_source_id = NULL, lease_expires_at = NULL WHERE user_id = $1`, c.User)
	}
	s.queueRetention(batch, c.User, sc.retainedFloor, bundleSeq)
	batch.Queue(deletePushSessionSQL, pushID)
	seq.QueueStore(batch)
	queueCommit(batch)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return BundleMeta{}, fmt.Errorf("write bundle: %w", err)
	}
	return meta, nil
}

// readCommitState reads round trip 1's results in order.
func (s *Store) readCommitState(br pgx.BatchResults, c Caller, pushID string) (pushSession, scope, source, []commitRow, error) {
	var sc scope
	src := source{state: "active"}
	ps, err := readPushSession(br.QueryRow(), c, pushID)
	if err != nil {
		return ps, sc, src, nil, err
	}
	rows, err := br.Query()
	if err == nil {
		err = scanScope(rows, &sc)
	}
	if err != nil {
		return ps, sc, src, nil, err
	}
	if err := br.QueryRow().Scan(&src.state, &src.watermark, &src.replacedBy); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ps, sc, src, nil, fmt.Errorf("read source: %w", err)
	}
	staged, err := br.Query()
	if err != nil {
		return ps, sc, src, nil, fmt.Errorf("read staged rows: %w", err)
	}
	var out []commitRow
	for staged.Next() {
		var r commitRow
		var request *string
		var version *int64
		if err := staged.Scan(&r.ordinal, &r.schema, &r.name, &r.key, &r.op, &r.base, &request, &r.columns, &version, &r.deleted); err != nil {
			staged.Close()
			return ps, sc, src, nil, fmt.Errorf("read staged rows: %w", err)
		}
		if request != nil {
			r.request = []byte(*request)
		}
		if version != nil {
			r.version, r.exists = *version, true
		}
		r.table = s.reg.lookup(r.schema, r.name)
		out = append(out, r)
	}
	if err := staged.Err(); err != nil {
		return ps, sc, src, nil, fmt.Errorf("read staged rows: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return ps, sc, src, nil, fmt.Errorf("create capture table: %w", err)
	}
	return ps, sc, src, out, nil
}

// checkCommit applies steps 2, 3, 5 and 6 of docs/protocol-v1.md §3.5 (step 1 is
// readPushSession, step 4 is apply's).
func (s *Store) checkCommit(ps pushSession, sc scope, src source, rows []commitRow, c Caller) error {
	if int64(len(rows)) != ps.planned {
		return commitInvalid("the session staged %d rows, planned_row_count is %d", len(rows), ps.planned)
	}
	seen := make(map[[3]string]bool, len(rows))
	hashRows := make([]wire.HashRow, len(rows))
	for i, r := range rows {
		if r.ordinal != int64(i) {
			return commitInvalid("staged row ordinals are not contiguous from 0 (ordinal %d at position %d)", r.ordinal, i)
		}
		if r.table == nil {
			return commitInvalid("row %d: table %s.%s is no longer registered", i, r.schema, r.name)
		}
		id := [3]string{r.schema, r.name, r.key}
		if seen[id] {
			return commitInvalid("row %d (%s): two staged rows target key %s", i, r.table.qualified(), r.key)
		}
		seen[id] = true
		hashRows[i] = wire.HashRow{Schema: r.schema, Table: r.name, Key: wire.CanonicalKey(r.table.key.name, r.key),
			Op: r.op, Version: r.base, Payload: r.request}
	}
	if wire.RequestHash(hashRows) != ps.requestHash {
		return commitInvalid("the staged rows do not match canonical_request_hash")
	}
	if ps.initID != "" {
		if err := checkLease(sc, c.Source, ps.initID); err != nil {
			return err
		}
	}
	switch {
	case src.state == "retired":
		return retiredError(c.Source, src)
	case src.watermark+1 != ps.sourceBundleID:
		return &Error{Code: "source_sequence_changed", Message: fmt.Sprintf("source_bundle_id %d no longer follows the source's last committed %d", ps.sourceBundleID, src.watermark)}
	}
	return nil
}

// rowStatePayloadSQL reads a row's current wire payload for a conflict answer.
const rowStatePayloadSQL = `SELECT payload FROM sync_v1.row_state
WHERE user_id = $1 AND schema_name = $2 AND table_name = $3 AND key_value = $4`

// checkConflicts applies step 7 of docs/protocol-v1.md §3.5 over the whole bundle in staged
// order: an INSERT needs a row that never existed (base 0) or a tombstone at its version; an
// UPDATE or DELETE needs a live row at its version. The first row that fails is answered with
// 409 push_conflict carrying the row's current state.
func (s *Store) checkConflicts(ctx context.Context, tx pgx.Tx, user string, rows []commitRow) error {
	for _, r := range rows {
		var ok bool
		if r.op == "INSERT" {
			ok = (!r.exists && r.base == 0) || (r.exists && r.deleted && r.base == r.version)
		} else {
			ok = r.exists && !r.deleted && r.base == r.version
		}
		if ok {
			continue
		}
		serverRow := json.RawMessage("null")
		if r.exists && !r.deleted {
			var payload *string
			if err := tx.QueryRow(ctx, rowStatePayloadSQL, user, r.schema, r.name, r.key).Scan(&payload); err != nil {
				return fmt.Errorf("read conflicting row: %w", err)
			}
			if payload != nil {
				serverRow = json.RawMessage(*payload)
			}
		}
		return &Error{
			Code: "push_conflict",
			Message: fmt.Sprintf("%s conflict on %s %s: expected version %d, got %d",
				strings.ToLower(r.op), r.table.qualified(), r.key, r.version, r.base),
			Conflict: &Conflict{Schema: r.schema, Table: r.name, Key: wire.CanonicalKey(r.table.key.name, r.key),
				Op: r.op, BaseRowVersion: r.base, ServerRowVersion: r.version, ServerRowDeleted: r.deleted,
				ServerRow: serverRow},
		}
	}
	return nil
}

// apply runs round trip 2: it defers deferrable constraints (so parent/child and cyclic rows
// of one bundle apply in any order), turns capture on, applies the staged rows in staged order
// with one statement per run of rows sharing table, op and columns, makes the deferred
// constraints immediate (a violation fails here, naming its constraint, rather than at
// COMMIT), then reads the captured effects and the current after-image of every captured row
// that still exists, rendered for the wire.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, user, pushID string, rows []commitRow) ([]effect, map[*table]map[string][]byte, error) {
	batch := &pgx.Batch{}
	batch.Queue(`SET CONSTRAINTS ALL DEFERRED`)
	batch.Queue(captureOnSQL)
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].table == rows[start].table && rows[end].op == rows[start].op && rows[end].columns == rows[start].columns {
			end++
		}
		r := rows[start]
		batch.Queue(r.table.applySQL(r.op, r.columns), user, pushID, r.ordinal, rows[end-1].ordinal)
		start = end
	}
	batch.Queue(`SET CONSTRAINTS ALL IMMEDIATE`)
	batch.Queue(readCaptureSQL)
	for _, t := range s.reg.tables {
		batch.Queue(t.renderSQL, user, t.qualified())
	}

	br := tx.SendBatch(ctx, batch)
	defer br.Close()
	for range batch.Len() - 1 - len(s.reg.tables) {
		if _, err := br.Exec(); err != nil {
			return nil, nil, fmt.Errorf("apply bundle: %w", err)
		}
	}
	var effects []effect
	if err := readEffects(br, s.reg, user, &effects); err != nil {
		return nil, nil, err
	}
	images := make(map[*table]map[string][]byte)
	for _, t := range s.reg.tables {
		if err := readImages(br, t, images); err != nil {
			return nil, nil, err
		}
	}
	if err := br.Close(); err != nil {
		return nil, nil, fmt.Errorf("apply bundle: %w", err)
	}
	return effects, images, nil
}

// readEffects reads the captured effects. Effects outside user's scope, or on a table this
// node does not know, fail the commit: a bundle can only hold its user's registered rows.
func readEffects(br pgx.BatchResults, reg *Registry, user string, out *[]effect) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("read captured effects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := rows.RawValues()
		tbl, key, op, scope := string(vals[0]), string(vals[1]), vals[2], string(vals[3])
		t := reg.byName[tbl]
		if t == nil {
			return fmt.Errorf("read captured effects: table %s is not registered on this node", tbl)
		}
		if scope != user {
			return commitInvalid("category=cross_scope_effect: the bundle changed a row of %s outside the user's scope", tbl)
		}
		if len(op) != 1 {
			return fmt.Errorf("read captured effects: op %q", op)
		}
		*out = append(*out, effect{table: t, key: key, op: op[0]})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read captured effects: %w", err)
	}
	return nil
}

// readImages reads t's rendered after-images into images[t], keyed by key text.
func readImages(br pgx.BatchResults, t *table, images map[*table]map[string][]byte) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("render %s: %w", t.qualified(), err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := rows.RawValues()
		payload := make([]byte, 0, 256)
		payload = append(payload, '{')
		for i := range t.columns {
			col := &t.columns[i]
			if i > 0 {
				payload = append(payload, ',')
			}
			payload = append(payload, col.jsonName...)
			v := vals[i+1]
			payload = wire.AppendWireValue(payload, col.kind, string(v), v == nil)
		}
		payload = append(payload, '}')
		if images[t] == nil {
			images[t] = map[string][]byte{}
		}
		images[t][string(vals[0])] = payload
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("render %s: %w", t.qualified(), err)
	}
	return nil
}

// builtBundle is a bundle's rows in stored form and its hash.
type builtBundle struct {
	hash     string
	size     int64
	wires    []string // the wire objects, in bundle order
	schemas  []string
	tables   []string
	keys     []string
	keyJSON  []string
	deleted  []bool
	payloads []*string // nil for deleted rows
}

// buildBundle turns the normalised changes into the bundle's wire rows and hash. Every
// non-DELETE change must still have its row, whose after-image is the one the hash covers and
// every read serves (docs/protocol-v1.md §4.3).
func buildBundle(bundleSeq int64, changes []change, images map[*table]map[string][]byte) (*builtBundle, error) {
	n := len(changes)
	b := &builtBundle{wires: make([]string, n), schemas: make([]string, n), tables: make([]string, n),
		keys: make([]string, n), keyJSON: make([]string, n), deleted: make([]bool, n), payloads: make([]*string, n)}
	hashRows := make([]wire.HashRow, n)
	version := strconv.FormatInt(bundleSeq, 10)
	var buf []byte
	for i, ch := range changes {
		t := ch.table
		key := wire.CanonicalKey(t.key.name, ch.key)
		var payload []byte
		if ch.op != "DELETE" {
			payload = images[t][ch.key]
			if payload == nil {
				return nil, fmt.Errorf("build bundle: %s %s was changed but cannot be read back", t.qualified(), ch.key)
			}
			p := string(payload)
			b.payloads[i] = &p
		}
		buf = append(buf[:0], `{"schema":`...)
		buf = jcs.AppendString(buf, t.schema)
		buf = append(buf, `,"table":`...)
		buf = jcs.AppendString(buf, t.name)
		buf = append(buf, `,"key":`...)
		buf = append(buf, key...)
		buf = append(buf, `,"op":"`...)
		buf = append(buf, ch.op...)
		buf = append(buf, `","row_version":`...)
		buf = append(buf, version...)
		if payload != nil {
			buf = append(buf, `,"payload":`...)
			buf = append(buf, payload...)
		}
		buf = append(buf, '}')
		b.wires[i] = string(buf)
		b.schemas[i], b.tables[i], b.keys[i], b.keyJSON[i] = t.schema, t.name, ch.key, string(key)
		b.deleted[i] = ch.op == "DELETE"
		hashRows[i] = wire.HashRow{Schema: t.schema, Table: t.name, Key: key, Op: ch.op, Version: bundleSeq, Payload: payload}
	}
	b.hash, b.size = wire.BundleHash(hashRows)
	return b, nil
}

// insertBundleSQL records a committed bundle.
const insertBundleSQL = `INSERT INTO sync_v1.bundles
    (user_id, bundle_seq, source_id, source_bundle_id, row_count, bundle_hash, request_hash, byte_count)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// insertBundleRowsSQL stores a bundle's wire rows with 0-based ordinals.
const insertBundleRowsSQL = `INSERT INTO sync_v1.bundle_rows (user_id, bundle_seq, row_ordinal, wire)
SELECT $1, $2, (r.ord - 1)::int, r.wire FROM unnest($3::text[]) WITH ORDINALITY AS r (wire, ord)`

// upsertRowStateSQL moves every row of a bundle to the bundle's version.
const upsertRowStateSQL = `INSERT INTO sync_v1.row_state AS rs
    (user_id, schema_name, table_name, key_value, key_json, row_version, deleted, payload)
SELECT $1, r.sch, r.tbl, r.key, r.key_json, $2, r.deleted, r.payload
FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[])
     AS r (sch, tbl, key, key_json, deleted, payload)
ON CONFLICT (user_id, schema_name, table_name, key_value) DO UPDATE
SET key_json = EXCLUDED.key_json, row_version = EXCLUDED.row_version,
    deleted = EXCLUDED.deleted, payload = EXCLUDED.payload`

// upsertSourceSQL moves a source's watermark to the committed source_bundle_id; a reserved
// source becomes active with its first commit (docs/protocol-v1.md §3.5 step 10).
const upsertSourceSQL = `INSERT INTO sync_v1.sources AS s (user_id, source_id, max_committed_source_bundle_id)
VALUES ($1, $2, $3)
ON CONFLICT (user_id, source_id) DO UPDATE
SET max_committed_source_bundle_id = EXCLUDED.max_committed_source_bundle_id,
    state = CASE WHEN s.state = 'reserved' THEN 'active' ELSE s.state END`

// queueBundleWrites queues the bundle, its rows and the row states it moves.
func (s *Store) queueBundleWrites(batch *pgx.Batch, user string, m BundleMeta, b *builtBundle) {
	batch.Queue(insertBundleSQL, user, m.BundleSeq, m.SourceID, m.SourceBundleID, m.RowCount, m.BundleHash, m.RequestHash, b.size)
	batch.Queue(insertBundleRowsSQL, user, m.BundleSeq, b.wires)
	batch.Queue(upsertRowStateSQL, user, m.BundleSeq, b.schemas, b.tables, b.keys, b.keyJSON, b.deleted, b.payloads)
}

// businessRejection turns a failure PostgreSQL reports for the data itself — a constraint, a
// value, a trigger raising an exception — into 400 push_commit_invalid with a category: the
// same bundle would fail the same way again, so it is no outage (docs/protocol-v1.md §6.2 #4).
// Other errors give nil.
func businessRejection(err error) *Error {
	code := pgCode(err)
	var category string
	switch {
	case code == "23505":
		category = "unique_violation"
	case code == "23503":
		category = "foreign_key_violation"
	case code == "23502":
		category = "not_null_violation"
	case code == "23514":
		category = "check_violation"
	case strings.HasPrefix(code, "23"):
		category = "integrity_constraint_violation"
	case strings.HasPrefix(code, "22"):
		category = "destination_type_invalid"
	case code == "P0001":
		category = "trigger_rejected"
	default:
		return nil
	}
	return commitInvalid("category=%s: %s", category, pgMessage(err))
}
