package pgv1

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/jcs"
	"github.com/pulsesync/pulsesync/pgv1/wire"
	"github.com/pulsesync/pulsesync/sequencer"
)

// stagedRow is one validated chunk row as it is staged.
type stagedRow struct {
	ordinal int64
	table   *table
	key     string
	op      string
	base    int64
	request []byte // the payload as sent, canonical (docs/protocol-v1.md §4.4); nil for DELETE
	apply   []byte // the JSON object PostgreSQL is given; nil for DELETE
	columns string // apply's member names, sorted, comma-separated
}

// chunkInvalid is the 400 of a chunk that breaks a rule of docs/protocol-v1.md §3.4.
func chunkInvalid(format string, args ...any) *Error {
	return &Error{Code: "push_chunk_invalid", Message: fmt.Sprintf(format, args...)}
}

// validateChunk applies steps 3 and 4 of docs/protocol-v1.md §3.4: bounds, then every row
// against the registry, the key rules of §1.4 and the typed value rules of §1.6, with no two
// rows of the chunk on the same key. Messages name the row by its ordinal in the bundle.
func (s *Store) validateChunk(start int64, rows []PushRow) ([]stagedRow, error) {
	switch {
	case start < 0:
		return nil, chunkInvalid("start_row_ordinal must not be negative")
	case len(rows) == 0:
		return nil, chunkInvalid("rows must not be empty")
	case len(rows) > s.cfg.MaxRowsPerChunk:
		return nil, chunkInvalid("a chunk holds at most %d rows, got %d", s.cfg.MaxRowsPerChunk, len(rows))
	}
	out := make([]stagedRow, len(rows))
	type rowID struct {
		table *table
		key   string
	}
	seen := make(map[rowID]int64, len(rows))
	for i := range rows {
		ord := start + int64(i)
		r, err := s.validateRow(ord, &rows[i])
		if err != nil {
			return nil, err
		}
		id := rowID{r.table, r.key}
		if first, dup := seen[id]; dup {
			return nil, chunkInvalid("row %d (%s): key %s is also the key of row %d", ord, r.table.qualified(), r.key, first)
		}
		seen[id] = ord
		out[i] = r
	}
	return out, nil
}

// validateRow checks one row and prepares what is staged for it.
func (s *Store) validateRow(ord int64, in *PushRow) (stagedRow, error) {
	schema := strings.ToLower(strings.TrimSpace(in.Schema))
	if schema == "" {
		schema = "public"
	}
	name := strings.ToLower(strings.TrimSpace(in.Table))
	r := stagedRow{ordinal: ord, op: strings.ToUpper(strings.TrimSpace(in.Op)), base: in.BaseRowVersion}
	if !validIdentifier(schema) || !validIdentifier(name) {
		return r, chunkInvalid("row %d: %q.%q is not a valid table name", ord, schema, name)
	}
	if r.table = s.reg.lookup(schema, name); r.table == nil {
		return r, chunkInvalid("row %d: table %s.%s is not registered", ord, schema, name)
	}
	q := r.table.qualified()
	if r.op != "INSERT" && r.op != "UPDATE" && r.op != "DELETE" {
		return r, chunkInvalid("row %d (%s): op must be INSERT, UPDATE or DELETE", ord, q)
	}
	if r.base < 0 {
		return r, chunkInvalid("row %d (%s): base_row_version must not be negative", ord, q)
	}
	var err error
	if r.key, err = parseKey(r.table, in.Key); err != nil {
		return r, chunkInvalid("row %d (%s): %v", ord, q, err)
	}
	hasPayload := len(in.Payload) > 0 && !bytes.Equal(bytes.TrimSpace(in.Payload), []byte("null"))
	if r.op == "DELETE" {
		if hasPayload {
			return r, chunkInvalid("row %d (%s): a DELETE carries no payload", ord, q)
		}
		return r, nil
	}
	if !hasPayload {
		return r, chunkInvalid("row %d (%s): an %s needs a payload object", ord, q, r.op)
	}
	if err := s.preparePayload(&r, in.Payload); err != nil {
		return r, chunkInvalid("row %d (%s): %v", ord, q, err)
	}
	return r, nil
}

// parseKey checks a key object (docs/protocol-v1.md §1.4): exactly one member, the table's key
// column, whose value is a string: a canonical lowercase UUID for uuid keys, non-empty text
// otherwise.
func parseKey(t *table, raw json.RawMessage) (string, error) {
	canonical, err := jcs.Canonicalize(raw)
	if err != nil || len(canonical) == 0 || canonical[0] != '{' {
		return "", fmt.Errorf("key must be an object")
	}
	var v []byte
	n, scoped := 0, false
	for name, value := range jcs.Members(canonical) {
		n++
		switch string(name) {
		case scopeColumn:
			scoped = true
		case t.key.name:
			v = value
		}
	}
	if scoped {
		return "", fmt.Errorf("key must not contain %s", scopeColumn)
	}
	if v == nil || n != 1 {
		return "", fmt.Errorf("key must have exactly one member, %q", t.key.name)
	}
	key, ok := jsonString(v)
	switch {
	case !ok:
		return "", fmt.Errorf("key %s must be a string", t.key.name)
	case t.key.kind == wire.KindUUID && !wire.ValidUUID(key):
		return "", fmt.Errorf("key %s must be a lowercase dashed UUID", t.key.name)
	case key == "":
		return "", fmt.Errorf("key %s must not be empty", t.key.name)
	}
	return key, nil
}

// jsonString decodes the canonical JSON value v when it is a string.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// preparePayload checks an INSERT or UPDATE payload and fills r.request, r.apply and
// r.columns. The payload must be an object of the table's columns without the hidden scope
// column, its key column (when present) must repeat the key, and each value must fit its
// column's kind; generated columns are accepted and ignored, since clients send back what they
// were served (docs/protocol-v1.md §6.1 M1). The key column is filled in when absent.
//
// One walk over the canonical payload does it all: its members come sorted, and column names
// are ASCII, so apply is built in the same (JCS) order with the key column slotted in.
func (s *Store) preparePayload(r *stagedRow, raw json.RawMessage) error {
	canonical, err := jcs.Canonicalize(raw)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if len(canonical) == 0 || canonical[0] != '{' {
		return fmt.Errorf("payload must be an object")
	}
	key := r.table.key
	keyDone := false
	apply := make([]byte, 1, len(canonical)+len(key.jsonName)+len(r.key)+8)
	apply[0] = '{'
	columns := make([]byte, 0, 64)
	add := func(col *column, token []byte) {
		if len(apply) > 1 {
			apply = append(apply, ',')
			columns = append(columns, ',')
		}
		apply = append(append(apply, col.jsonName...), token...)
		columns = append(columns, col.name...)
	}
	for name, v := range jcs.Members(canonical) {
		if string(name) == scopeColumn {
			return fmt.Errorf("payload must not contain %s", scopeColumn)
		}
		if !validIdentifier(name) {
			return fmt.Errorf("payload member %q is not a valid column name", name)
		}
		col := r.table.byName[string(name)]
		if col == nil {
			return fmt.Errorf("payload column %s is not a column of %s", name, r.table.qualified())
		}
		if !keyDone && key.name <= col.name {
			keyDone = true
			keyToken := jcs.AppendString(nil, r.key)
			if col == key {
				if !bytes.Equal(v, keyToken) {
					return fmt.Errorf("payload column %s must equal the key", key.name)
				}
			} else {
				add(key, keyToken)
			}
		}
		if col.generated {
			continue
		}
		value, err := wire.RequestValue(col.kind, v)
		if err != nil {
			var ve *wire.ValueError
			if errors.As(err, &ve) {
				return fmt.Errorf("column %s: category=%s: %s", name, ve.Category, ve.Message)
			}
			return fmt.Errorf("column %s: %w", name, err)
		}
		token, ok := value.(json.RawMessage)
		if !ok {
			return fmt.Errorf("column %s: unexpected value form %T", name, value)
		}
		add(col, token)
	}
	if !keyDone {
		add(key, jcs.AppendString(nil, r.key))
	}
	r.request, r.apply, r.columns = canonical, append(apply, '}'), string(columns)
	return nil
}

// existingRowsSQL reads the rows a session already staged at the ordinals of a chunk, to
// recognise a retried chunk.
const existingRowsSQL = `
SELECT row_ordinal, schema_name, table_name, key_value, op, base_row_version, coalesce(request_payload, '')
FROM sync_v1.push_rows WHERE push_id = $1 AND row_ordinal >= $2 AND row_ordinal < $3
ORDER BY row_ordinal`

// stageRowsSQL stages a chunk's rows in one statement.
const stageRowsSQL = `
INSERT INTO sync_v1.push_rows (push_id, row_ordinal, schema_name, table_name, key_value, op,
                               base_row_version, request_payload, apply_payload, apply_columns)
SELECT $1, r.ord, r.sch, r.tbl, r.key, r.op, r.base, r.req, r.apply::jsonb, r.cols
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
            $8::text[], $9::text[], $10::text[]) AS r (ord, sch, tbl, key, op, base, req, apply, cols)`

// advanceSessionSQL moves a session's next ordinal and pushes its expiry out by another TTL.
const advanceSessionSQL = `
UPDATE sync_v1.push_sessions
SET next_row_ordinal = $2, staged_bytes = staged_bytes + $3, expires_at = now() + $4 * interval '1 microsecond'
WHERE push_id = $1`

// preflightSQL casts a table's staged values to the column types in PostgreSQL, so a value it
// cannot convert fails the chunk rather than the commit.
const preflightSQL = `SELECT count(*) FROM jsonb_to_recordset($1::jsonb) AS x (%s)`

// StageChunk resolves POST /sync/push-sessions/{push_id}/chunks with the checks of
// docs/protocol-v1.md §3.4 in order and returns the session's next expected row ordinal. The
// rows are validated before the user's lock is taken; under it, in one round trip with the
// BEGIN and the lock, the session is looked up, the rows already staged at these ordinals are
// read and the values are cast to their columns' types (the destination preflight); a second
// round trip stages the rows and commits. A retried chunk whose rows equal those already staged
// at the same ordinals is answered with the current next ordinal instead of 409 (§6.2 #5).
func (s *Store) StageChunk(ctx context.Context, c Caller, pushID string, start int64, rows []PushRow) (int64, error) {
	if !wire.ValidUUID(pushID) {
		return 0, errNoSession()
	}
	staged, err := s.validateChunk(start, rows)
	if err != nil {
		return 0, err
	}
	var bytesIn int64
	for _, r := range staged {
		bytesIn += int64(len(r.request))
	}
	end := start + int64(len(staged))
	var next int64
	err = s.inUserLock(ctx, c.User, func(ctx context.Context, tx pgx.Tx, _ *sequencer.Block) error {
		batch := &pgx.Batch{}
		batch.Queue(readPushSessionSQL, pushID)
		batch.Queue(lockScopeSQL, c.User)
		batch.Queue(existingRowsSQL, pushID, start, end)
		s.queuePreflight(batch, staged)
		br := tx.SendBatch(ctx, batch)
		defer br.Close()

		ps, err := readPushSession(br.QueryRow(), c, pushID)
		if err != nil {
			return err
		}
		var sc scope
		rows, err := br.Query()
		if err == nil {
			err = scanScope(rows, &sc)
		}
		if err != nil {
			return err
		}
		if ps.initID != "" {
			if err := checkLease(sc, c.Source, ps.initID); err != nil {
				return err
			}
		}
		if start != ps.next {
			retried, err := sameAsStaged(br, staged)
			if err != nil {
				return err
			}
			if retried && end <= ps.next {
				next = ps.next
				return nil
			}
			return &Error{Code: "push_chunk_out_of_order", Message: fmt.Sprintf("start_row_ordinal %d is out of order: expected %d", start, ps.next)}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("read staged rows: %w", err)
		}
		if end > ps.planned {
			return chunkInvalid("rows up to ordinal %d exceed planned_row_count %d", end-1, ps.planned)
		}
		if ps.stagedBytes+bytesIn > s.cfg.MaxStagedBytes {
			return &Error{Code: "request_too_large", Message: fmt.Sprintf("the push session would stage more than %d payload bytes", s.cfg.MaxStagedBytes)}
		}
		for _, t := range preflightTables(staged) {
			if _, err := br.Exec(); err != nil {
				if strings.HasPrefix(pgCode(err), "22") {
					return chunkInvalid("table %s: category=destination_type_invalid: %s", t.qualified(), pgMessage(err))
				}
				return fmt.Errorf("preflight %s: %w", t.qualified(), err)
			}
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("preflight: %w", err)
		}
		next = end
		return stage(ctx, tx, s, c, ps, staged, end, bytesIn)
	})
	if err != nil {
		return 0, wrap("stage chunk", err)
	}
	return next, nil
}

// sameAsStaged reads the rows staged at the chunk's ordinals and reports whether the chunk
// repeats them exactly.
func sameAsStaged(br pgx.BatchResults, staged []stagedRow) (bool, error) {
	rows, err := br.Query()
	if err != nil {
		return false, fmt.Errorf("read staged rows: %w", err)
	}
	defer rows.Close()
	i := 0
	same := true
	for rows.Next() {
		var ord, base int64
		var schema, name, key, op, request string
		if err := rows.Scan(&ord, &schema, &name, &key, &op, &base, &request); err != nil {
			return false, fmt.Errorf("read staged rows: %w", err)
		}
		if i >= len(staged) {
			return false, nil
		}
		r := staged[i]
		same = same && ord == r.ordinal && schema == r.table.schema && name == r.table.name &&
			key == r.key && op == r.op && base == r.base && request == string(r.request)
		i++
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read staged rows: %w", err)
	}
	return same && i == len(staged), nil
}

// preflightTables lists the tables of staged's INSERT and UPDATE rows, in first-seen order:
// the order queuePreflight queues their casts in.
func preflightTables(staged []stagedRow) []*table {
	var out []*table
	for _, r := range staged {
		if r.apply != nil && !slices.Contains(out, r.table) {
			out = append(out, r.table)
		}
	}
	return out
}

// queuePreflight queues, per table, the cast of the chunk's values to the writable columns'
// types.
func (s *Store) queuePreflight(batch *pgx.Batch, staged []stagedRow) {
	for _, t := range preflightTables(staged) {
		arr := []byte{'['}
		for _, r := range staged {
			if r.table == t && r.apply != nil {
				if len(arr) > 1 {
					arr = append(arr, ',')
				}
				arr = append(arr, r.apply...)
			}
		}
		arr = append(arr, ']')
		batch.Queue(fmt.Sprintf(preflightSQL, t.recordDef(t.writable())), string(arr))
	}
}

// stage writes the chunk's rows, advances the session, refreshes a seed push's lease and
// commits, in one round trip.
func stage(ctx context.Context, tx pgx.Tx, s *Store, c Caller, ps pushSession, staged []stagedRow, end, bytesIn int64) error {
	n := len(staged)
	ords, bases := make([]int64, n), make([]int64, n)
	schemas, names, keys, ops := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	reqs, applies, cols := make([]*string, n), make([]*string, n), make([]*string, n)
	for i, r := range staged {
		ords[i], bases[i] = r.ordinal, r.base
		schemas[i], names[i], keys[i], ops[i] = r.table.schema, r.table.name, r.key, r.op
		if r.apply != nil {
			req, apply, c := string(r.request), string(r.apply), r.columns
			reqs[i], applies[i], cols[i] = &req, &apply, &c
		}
	}
	batch := &pgx.Batch{}
	if ps.initID != "" {
		s.queueSetScope(batch, c.User, "initializing", ps.initID, c.Source)
	}
	batch.Queue(stageRowsSQL, ps.id, ords, schemas, names, keys, ops, bases, reqs, applies, cols)
	batch.Queue(advanceSessionSQL, ps.id, end, bytesIn, s.cfg.PushSessionTTL.Microseconds())
	queueCommit(batch)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		if pgConstraint(err) == "push_rows_one_per_key" {
			return chunkInvalid("a row of this chunk targets a key an earlier chunk of the session staged")
		}
		return fmt.Errorf("stage rows: %w", err)
	}
	return nil
}
